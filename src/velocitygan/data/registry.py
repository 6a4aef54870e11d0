"""Normalisation constants of the OpenFWI benchmark datasets and user-defined datasets.

A dataset spec names the raw seismic amplitude bounds (``data_min``/``data_max``, before the
log transform) and the velocity bounds in m/s used to scale both to [-1, 1].
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import read_toml

__all__ = ["DatasetSpec", "OPENFWI_DATASETS", "get_dataset", "load_dataset_card", "load_toml"]


@dataclass(frozen=True)
class DatasetSpec:
    """Normalisation bounds and array shapes of one dataset.

    Attributes:
        name: dataset name (e.g. ``flatvel-a``).
        data_min: smallest raw seismic amplitude (pressure units, before log transform).
        data_max: largest raw seismic amplitude.
        label_min: smallest velocity in m/s (maps to -1).
        label_max: largest velocity in m/s (maps to +1).
        seismic_shape: per-sample seismic shape (shots, time samples, receivers).
        velocity_shape: per-sample label shape (channel, depth cells, x cells).
        extra: anything else the card carried (family, acquisition, ...).
    """

    name: str
    data_min: float
    data_max: float
    label_min: float = 1500.0
    label_max: float = 4500.0
    seismic_shape: tuple[int, int, int] = (5, 1000, 70)
    velocity_shape: tuple[int, int, int] = (1, 70, 70)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        bounds = (self.data_min, self.data_max, self.label_min, self.label_max)
        if not all(math.isfinite(b) for b in bounds):
            raise ConfigError(f"dataset {self.name!r}: data_min, data_max, label_min and "
                              f"label_max must be finite numbers, got {bounds}")
        for key in ("seismic_shape", "velocity_shape"):
            shape = getattr(self, key)
            if len(shape) != 3 or min(shape) < 1:
                raise ConfigError(f"dataset {self.name!r}: {key} must be 3 positive integers, "
                                  f"got {list(shape)}")
        if not self.data_min < 0 < self.data_max:
            raise ConfigError(f"dataset {self.name!r}: need data_min < 0 < data_max, got "
                              f"{self.data_min} and {self.data_max}")
        if not 0 < self.label_min < self.label_max:
            raise ConfigError(f"dataset {self.name!r}: need 0 < label_min < label_max (m/s), got "
                              f"{self.label_min} and {self.label_max}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/TOML/checkpoint friendly)."""
        return {**asdict(self), "seismic_shape": list(self.seismic_shape),
                "velocity_shape": list(self.velocity_shape)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "dict") -> DatasetSpec:
        """Build a spec from a dict holding at least ``name``, ``data_min``, ``data_max``."""
        missing = [k for k in ("data_min", "data_max") if k not in d]
        if missing:
            raise ConfigError(f"{source}: missing key(s) {', '.join(missing)}")
        known = {"name", "data_min", "data_max", "label_min", "label_max",
                 "seismic_shape", "velocity_shape"}
        try:
            return cls(
                name=str(d.get("name", Path(source).stem)),
                data_min=float(d["data_min"]),
                data_max=float(d["data_max"]),
                label_min=float(d.get("label_min", 1500.0)),
                label_max=float(d.get("label_max", 4500.0)),
                seismic_shape=tuple(int(v) for v in d.get("seismic_shape", (5, 1000, 70))),
                velocity_shape=tuple(int(v) for v in d.get("velocity_shape", (1, 70, 70))),
                extra={k: v for k, v in d.items() if k not in known and k != "extra"}
                | dict(d.get("extra", {})),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: bad value ({exc})") from None


# Published raw amplitude bounds of the 10 OpenFWI Vel/Fault/Style datasets (labels 1500-4500 m/s).
OPENFWI_DATASETS: dict[str, DatasetSpec] = {
    name: DatasetSpec(name=name, data_min=lo, data_max=hi)
    for name, lo, hi in (
        ("flatvel-a", -26.95, 52.77), ("flatvel-b", -27.17, 56.05),
        ("curvevel-a", -27.11, 55.10), ("curvevel-b", -29.04, 57.03),
        ("flatfault-a", -26.10, 50.86), ("flatfault-b", -24.86, 50.28),
        ("curvefault-a", -26.48, 52.32), ("curvefault-b", -24.93, 50.98),
        ("style-a", -24.96, 48.93), ("style-b", -23.76, 46.01),
    )
}


def load_dataset_card(path: str | Path) -> DatasetSpec:
    """Read a ``dataset.json`` card (written by ``velocitygan generate``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "dataset.json"
    if not path.is_file():
        raise ConfigError(f"{path}: dataset card not found")
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    norm = card.get("normalization", card)
    if not isinstance(norm, dict):
        raise ConfigError(f"{path}: 'normalization' must be an object with data_min, data_max, "
                          f"got {norm!r}")
    merged = {**card, **norm}
    merged.setdefault("name", card.get("name", path.parent.name))
    return DatasetSpec.from_dict(merged, source=str(path))


def load_toml(path: str | Path) -> dict[str, DatasetSpec]:
    """Read user-defined datasets from TOML: ``[datasets.NAME]`` tables with bounds."""
    path = Path(path).expanduser()
    doc = read_toml(path, "dataset TOML file")
    tables = doc.get("datasets")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{path}: expected at least one [datasets.NAME] table")
    bad = [name for name, t in tables.items() if not isinstance(t, dict)]
    if bad:
        raise ConfigError(f"{path}: datasets.{bad[0]} must be a table ([datasets.{bad[0]}] with "
                          "data_min, data_max)")
    return {name: DatasetSpec.from_dict({"name": name, **t}, source=f"{path}[datasets.{name}]")
            for name, t in tables.items()}


def get_dataset(ref: str | Path | DatasetSpec | dict) -> DatasetSpec:
    """Resolve a dataset reference to a spec.

    ``ref`` may be a benchmark name (``flatvel-a``), a ``dataset.json`` card or the folder
    holding one, a TOML file with one dataset, ``FILE.toml#NAME``, a dict, or a spec.
    """
    if isinstance(ref, DatasetSpec):
        return ref
    if isinstance(ref, dict):
        return DatasetSpec.from_dict(ref)
    text = str(ref)
    key = text.strip().lower().replace("_", "-")
    if key in OPENFWI_DATASETS:
        return OPENFWI_DATASETS[key]
    toml_path, _, toml_name = text.partition("#")
    if toml_path.endswith(".toml"):
        specs = load_toml(toml_path)
        if toml_name:
            if toml_name not in specs:
                raise ConfigError(f"{toml_path}: no dataset {toml_name!r} (has {', '.join(specs)})")
            return specs[toml_name]
        if len(specs) != 1:
            raise ConfigError(f"{toml_path}: holds {', '.join(specs)}; pick one as FILE.toml#NAME")
        return next(iter(specs.values()))
    p = Path(text).expanduser()
    if p.suffix == ".json" or p.is_dir():
        return load_dataset_card(p)
    raise ConfigError(f"unknown dataset {text!r}: use one of {', '.join(OPENFWI_DATASETS)}, "
                      "a dataset.json card or a TOML file")
