"""Robustness sweep: evaluate checkpoints on perturbed inputs, tabulate MAE/SSIM per model.

For every checkpoint and every condition (clean, noise at each SNR, each fraction of missing
traces, each number of missing shots, each time shift) the evaluation of
:func:`velocitygan.evaluate.evaluate_checkpoint` runs with the matching seeded
``raw_transform`` (:class:`velocitygan.perturb.RawPerturbation`): the same samples get the same
perturbation for every model, so the models are compared on identical inputs.

Writes ``DIR/robustness.csv``, ``DIR/robustness.md`` and each evaluation's own
``metrics.json``/``per_sample.csv`` under ``DIR/evals/<model>/<condition>/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data import DatasetSpec, read_split
from ..data.npyfile import open_npy
from ..errors import ConfigError
from ..evaluate import evaluate_once
from ..io import write_csv, write_text
from ..perturb import RawPerturbation
from ..predict import load_model
from ..pretrained import PREFIX, resolve_checkpoint
from .tables import markdown_table

__all__ = ["Condition", "robustness_conditions", "run_robustness", "CSV_COLUMNS"]

CSV_COLUMNS = ["model", "checkpoint", "perturbation", "value", "label", "samples", "mae",
               "rmse", "ssim", "mae_mps", "rmse_mps", "delta_mae_mps", "delta_ssim"]


@dataclass(frozen=True)
class Condition:
    """One input condition of the sweep.

    Attributes:
        kind: ``clean``, ``noise_snr_db``, ``missing_traces``, ``missing_shots`` or
            ``time_shift``.
        value: the setting (dB, fraction, shots, samples), None for clean.
        perturbation: the seeded raw perturbation.
    """

    kind: str
    value: float | int | None
    perturbation: RawPerturbation

    @property
    def slug(self) -> str:
        """Folder-safe name, e.g. ``noise_snr_db-10``."""
        return self.kind if self.value is None else f"{self.kind}-{self.value:g}"


def robustness_conditions(*, snr_db: Sequence[float] = (), missing_traces: Sequence[float] = (),
                          missing_shots: Sequence[int] = (), time_shifts: Sequence[int] = (),
                          seed: int = 0) -> list[Condition]:
    """The clean condition followed by one condition per requested value.

    Args:
        snr_db: noise levels, SNR in dB per shot gather.
        missing_traces: fractions of receivers zeroed (same receivers in all shots).
        missing_shots: numbers of whole shots zeroed.
        time_shifts: time shifts in samples (1 ms each for OpenFWI data), positive = later.
        seed: perturbation seed (sample ``i`` draws from ``(seed, i)``).
    """
    out = [Condition("clean", None, RawPerturbation(seed=seed))]
    for kind, values, key in (
        ("noise_snr_db", snr_db, "noise_snr_db"),
        ("missing_traces", missing_traces, "missing_trace_fraction"),
        ("missing_shots", missing_shots, "missing_shots"),
        ("time_shift", time_shifts, "time_shift_samples"),
    ):
        for v in values:
            cond = Condition(kind, v, RawPerturbation(seed=seed, **{key: v}))
            if cond.perturbation.is_identity:
                raise ConfigError(f"{kind} {v:g} leaves the data unchanged (the clean condition "
                                  "is always included); drop it")
            if any(c.slug == cond.slug for c in out):
                raise ConfigError(f"{kind} {v:g} is given twice")
            out.append(cond)
    return out


def _split_shape(split: str | Path) -> tuple[int, int, int]:
    """(shots, time samples, receivers) of the first data file of ``split``."""
    first = read_split(split)[0].data
    data = open_npy(first)
    if data.ndim not in (3, 4):
        raise ConfigError(f"{first}: seismic shape {data.shape}; expected "
                          "(N, shots, nt, receivers)")
    return tuple(int(v) for v in data.shape[-3:])


def _labels(checkpoints: Sequence[str | Path]) -> list[tuple[str, Path]]:
    """``(label, path)`` per checkpoint: ``KIND:FOLDER`` (the model kind and the checkpoint's
    folder) unless ``LABEL=PATH`` sets the label explicitly."""
    out: list[tuple[str, Path]] = []
    for item in checkpoints:
        text = str(item)
        label, sep, path = text.partition("=")
        if text.startswith(PREFIX):
            out.append((text, resolve_checkpoint(text)))
        elif sep and not Path(text).exists():
            out.append((label.strip(), resolve_checkpoint(path)))
        else:
            ckpt = Path(text)
            kind = load_model(ckpt).info.get("kind") or "model"
            out.append((f"{kind}:{ckpt.parent.name or ckpt.stem}", ckpt))
    seen: dict[str, int] = {}
    for i, (label, path) in enumerate(out):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            out[i] = (f"{label}#{seen[label]}", path)
    return out


def run_robustness(checkpoints: Sequence[str | Path], split: str | Path, out_dir: str | Path, *,
                   conditions: Sequence[Condition], dataset: str | Path | DatasetSpec | None = None,
                   batch_size: int = 64, device: str = "auto",
                   log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Evaluate each checkpoint under each condition; write ``robustness.csv`` and ``.md``.

    Args:
        checkpoints: checkpoint paths, or ``LABEL=PATH`` to name a model in the table.
        split: labelled split file (``DATA<TAB>LABEL``) to evaluate on.
        out_dir: output folder.
        conditions: from :func:`robustness_conditions` (the first should be clean).
        dataset: normalisation override (default: the one stored in each checkpoint).
        batch_size: samples per forward pass.
        device: ``auto``, ``cpu`` or ``cuda``.
        log: receives one progress line per evaluation.

    Returns:
        One row per (model, condition) with MAE/RMSE/SSIM (normalised), MAE/RMSE in m/s and the
        change against the clean condition.
    """
    if not checkpoints:
        raise ConfigError("no checkpoint given; pass --checkpoint CKPT (repeatable)")
    out_dir = Path(out_dir)
    shape = _split_shape(split)
    for cond in conditions:  # all settings checked before the first evaluation
        cond.perturbation.check_shape(*shape)
    labels = _labels(checkpoints)
    rows: list[dict[str, Any]] = []
    for label, path in labels:
        clean: dict[str, Any] | None = None
        for cond in conditions:
            t0 = time.perf_counter()
            pert = cond.perturbation
            m = evaluate_once(
                path, split, out_dir / "evals" / _safe(label) / cond.slug,
                settings={"perturbation": pert.to_dict(),
                          "dataset_override": None if dataset is None else str(dataset)},
                extra={"perturbation": pert.to_dict(), "perturbation_label": pert.label},
                dataset=dataset, batch_size=batch_size, device=device,
                raw_transform=None if pert.is_identity else pert)
            row = {"model": label, "checkpoint": str(path), "perturbation": cond.kind,
                   "value": "" if cond.value is None else cond.value, "label": pert.label,
                   **{k: m[k] for k in ("samples", "mae", "rmse", "ssim", "mae_mps", "rmse_mps")}}
            if clean is None and cond.kind == "clean":
                clean = row
            if clean is not None:
                row["delta_mae_mps"] = row["mae_mps"] - clean["mae_mps"]
                row["delta_ssim"] = row["ssim"] - clean["ssim"]
            rows.append(row)
            log(f"{label:>28}  {pert.label:<28} MAE {row['mae_mps']:7.1f} m/s  "
                f"SSIM {row['ssim']:.4f}  " + ("(kept from an earlier run)" if m.get("reused")
                                                else f"({time.perf_counter() - t0:.1f} s)"))
            # the tables so far after every evaluation: an interrupted sweep keeps its rows,
            # and a rerun reuses the finished evaluations
            write_csv(out_dir / "robustness.csv", rows, CSV_COLUMNS)
            write_text(out_dir / "robustness.md", robustness_markdown(rows, split=split))
    return rows


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "model"


def robustness_markdown(rows: Sequence[dict[str, Any]], *, split: str | Path = "") -> str:
    """One table: a row per condition, MAE (m/s) and SSIM columns per model."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    # one table row per condition, keyed by (kind, value): labels may round alike
    keys = list(dict.fromkeys((r["perturbation"], str(r["value"])) for r in rows))
    label = {(r["perturbation"], str(r["value"])): r["label"] for r in rows}
    cell = {(r["model"], r["perturbation"], str(r["value"])): r for r in rows}
    header = ["input"] + [f"{m} {what}" for m in models for what in ("MAE m/s", "SSIM")]
    body = []
    for key in keys:
        line: list[Any] = [label[key]]
        for m in models:
            r = cell.get((m, *key))
            line += ["—", "—"] if r is None else [f"{r['mae_mps']:.1f}", f"{r['ssim']:.4f}"]
        body.append(line)
    n = rows[0]["samples"] if rows else 0
    intro = (f"Robustness on `{split}` ({n} samples). MAE in m/s, SSIM in the OpenFWI "
             "convention. Noise SNR is per shot gather; missing traces are the same receivers "
             "in all shots; time shifts are in samples of 1 ms, positive = later. The same "
             "seeded perturbation is applied for every model.\n\n")
    return intro + markdown_table(header, body)
