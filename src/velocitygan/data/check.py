"""Whole-dataset validation and summary (``velocitygan data check``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import check_file_pair
from .npyfile import open_npy
from .registry import DatasetSpec
from .splits import read_split

__all__ = ["DatasetSummary", "RANGE_TOLERANCE", "amplitude_problem", "check_split"]

_CHUNK = 64  # samples scanned at a time: bounded memory on 700 MB files
RANGE_TOLERANCE = 0.10  # raw amplitudes may exceed the dataset's bounds by this much


def amplitude_problem(lo: float, hi: float, spec: DatasetSpec, what: str) -> str | None:
    """A one-line description when raw amplitudes ``lo .. hi`` look unlike data of ``spec``
    (beyond its bounds by more than :data:`RANGE_TOLERANCE`, or far weaker: already
    normalised?); None when they fit."""
    if lo < spec.data_min * (1 + RANGE_TOLERANCE) or hi > spec.data_max * (1 + RANGE_TOLERANCE):
        return (f"{what}: raw amplitudes {lo:.4g} .. {hi:.4g} exceed the range "
                f"{spec.data_min:.4g} .. {spec.data_max:.4g} of dataset {spec.name} by more than "
                f"{RANGE_TOLERANCE:.0%}; check units and scaling, or pick the matching --dataset")
    if max(-lo, hi) < RANGE_TOLERANCE * min(-spec.data_min, spec.data_max):
        return (f"{what}: raw amplitudes {lo:.4g} .. {hi:.4g} are far weaker than data of "
                f"{spec.name} ({spec.data_min:.4g} .. {spec.data_max:.4g}); is the input "
                "already normalised? The tool expects raw amplitudes")
    return None


@dataclass
class DatasetSummary:
    """What ``check_split`` found: counts, ranges and problems (one line each)."""

    split: Path
    files: int = 0
    samples: int = 0
    labeled: bool = True
    seismic_min: float = float("inf")
    seismic_max: float = float("-inf")
    velocity_min: float = float("inf")
    velocity_max: float = float("-inf")
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def _scan(path: Path, per_sample: tuple[int, ...]) -> tuple[float, float, str | None]:
    arr = open_npy(path).reshape((-1, *per_sample))
    lo, hi = float("inf"), float("-inf")
    for start in range(0, arr.shape[0], _CHUNK):
        block = np.asarray(arr[start : start + _CHUNK], dtype=np.float32)
        finite = np.isfinite(block.reshape(block.shape[0], -1)).all(axis=1)
        if not finite.all():
            bad = start + int(np.argmin(finite))
            return lo, hi, f"{path}: sample {bad} contains NaN or Inf"
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    return lo, hi, None


def check_split(split: str | Path, spec: DatasetSpec) -> DatasetSummary:
    """Validate every file of a split and collect value ranges; never raises for bad data."""
    summary = DatasetSummary(split=Path(split))
    try:
        entries = read_split(split)
    except DataError as exc:
        summary.problems.append(str(exc))
        return summary
    summary.files = len(entries)
    for e in entries:
        summary.labeled &= e.label is not None
        try:
            n = check_file_pair(e, spec)
        except DataError as exc:
            summary.problems.append(str(exc))
            continue
        summary.samples += n
        lo, hi, err = _scan(e.data, spec.seismic_shape)
        summary.seismic_min = min(summary.seismic_min, lo)
        summary.seismic_max = max(summary.seismic_max, hi)
        if err:
            summary.problems.append(err)
        if e.label is not None:
            lo, hi, err = _scan(e.label, spec.velocity_shape)
            summary.velocity_min = min(summary.velocity_min, lo)
            summary.velocity_max = max(summary.velocity_max, hi)
            if err:
                summary.problems.append(err)
            elif lo < spec.label_min - 1e-3 or hi > spec.label_max + 1e-3:
                summary.problems.append(f"{e.label}: velocities {lo:.0f}-{hi:.0f} m/s fall "
                                        f"outside the dataset's {spec.label_min:.0f}-"
                                        f"{spec.label_max:.0f} m/s normalisation range")
    if summary.samples:
        if problem := amplitude_problem(summary.seismic_min, summary.seismic_max, spec,
                                        str(summary.split)):
            summary.problems.append(problem)
    elif not summary.problems:
        summary.problems.append(f"{summary.split}: the split's files hold no samples")
    return summary
