"""Evaluate a checkpoint on a labelled split: benchmark metrics, per-sample table, figures.

Writes into ``out_dir``:

* ``metrics.json``: ``mae``, ``rmse``, ``ssim`` (normalised scale, OpenFWI conventions, see
  :mod:`velocitygan.metrics`), ``mae_mps``, ``rmse_mps``, ``samples``, ``checkpoint``,
  ``dataset`` and a few more (``ssim_convention``, ``seconds``, ``samples_per_s`` ...);
* ``per_sample.csv``: ``index, file, index_in_file, mae, rmse, ssim, mae_mps`` (+ extra columns
  such as ``data_misfit`` when physics is on);
* ``figures/best.png``, ``median.png``, ``worst.png``: prediction | truth | error, ranked by MAE;
* ``predictions.npy`` (m/s) when asked.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from . import __version__
from .data import OPENFWI_DATASETS, DatasetSpec, OpenFWIDataset, read_split
from .data.check import amplitude_problem
from .data.transforms import denormalize_seismic, denormalize_velocity
from .errors import DataError
from .io import read_json, save_npy, stamp, write_csv, write_json
from .metrics import MetricAccumulator, mae_per_sample, rmse_per_sample, ssim_per_sample
from .predict import LoadedModel, load_model, resolve_spec

__all__ = ["evaluate_checkpoint", "evaluate_once", "evaluate_model", "write_sample_figures",
           "CSV_COLUMNS"]

CSV_COLUMNS = ["index", "file", "index_in_file", "mae", "rmse", "ssim", "mae_mps"]
RawTransform = Callable[[np.ndarray, int], np.ndarray]


def _physics_misfit(pred_mps: torch.Tensor, x_norm: torch.Tensor, spec: DatasetSpec):
    """Relative L2 data misfit of predictions against the observed (raw) seismic, ``(N,)``."""
    from .fwi import data_misfit  # imported only when asked
    from .physics import Acquisition

    # generated datasets carry their acquisition in the card; OpenFWI's otherwise
    acq_dict = spec.extra.get("acquisition")
    acquisition = Acquisition.from_dict(acq_dict) if isinstance(acq_dict, dict) else None
    observed_raw = denormalize_seismic(x_norm.double(), spec).float()
    return data_misfit(pred_mps, observed_raw, acquisition).detach().float().cpu()


@torch.no_grad()
def evaluate_model(
    loaded: LoadedModel, dataset: OpenFWIDataset, *, batch_size: int = 64, physics: bool = False,
    keep_predictions: bool = False,
) -> tuple[dict[str, float], list[dict[str, Any]], np.ndarray | None]:
    """Run the model over ``dataset``; return (global metrics, per-sample rows, predictions m/s)."""
    if not dataset.labeled:
        raise DataError("evaluation needs labels: the split file must list DATA<TAB>LABEL pairs")
    if len(dataset) == 0:
        raise DataError("the split's files hold no samples; nothing to evaluate")
    model, spec = loaded.model, dataset.spec
    x_lo, x_hi = float("inf"), float("-inf")  # normalised input range, checked after the loop
    device = next(model.parameters()).device
    half_range_mps = (spec.label_max - spec.label_min) / 2
    acc = MetricAccumulator(half_range_mps=half_range_mps)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    rows: list[dict[str, Any]] = []
    preds: list[np.ndarray] = []
    misfits: list[float] = []
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        x_lo, x_hi = min(x_lo, float(x.min())), max(x_hi, float(x.max()))
        p = model(x).float()
        acc.update(p, y)
        m, r, s = mae_per_sample(p, y), rmse_per_sample(p, y), ssim_per_sample(p, y)
        p_mps = denormalize_velocity(p, spec)
        if physics:
            misfits.extend(_physics_misfit(p_mps, x, spec).tolist())
        if keep_predictions:
            preds.append(p_mps.cpu().numpy().astype(np.float32))
        for k in range(len(x)):
            i = len(rows)
            f, j = dataset.locate(i)
            rows.append({
                "index": i, "file": dataset.entries[f].data.name, "index_in_file": j,
                "mae": float(m[k]), "rmse": float(r[k]), "ssim": float(s[k]),
                "mae_mps": float(m[k]) * half_range_mps,
            })  # fmt: skip
    raw = denormalize_seismic(np.array([x_lo, x_hi], dtype=np.float64), spec)
    problem = amplitude_problem(float(raw[0]), float(raw[1]), spec, "evaluated split")
    if problem:
        warnings.warn(f"{problem}; the metrics may mean little", stacklevel=2)
    metrics = acc.compute()
    if physics:
        for row, value in zip(rows, misfits, strict=True):
            row["data_misfit"] = value
        metrics["data_misfit"] = float(np.mean(misfits))
    return metrics, rows, (np.concatenate(preds) if keep_predictions else None)


def write_sample_figures(predictions_mps: np.ndarray, dataset: OpenFWIDataset,
                         rows: list[dict[str, Any]], out_dir: Path, *,
                         dx_m: float = 10.0) -> dict[str, str]:
    """Best, median and worst samples by MAE as prediction | truth | error PNGs.

    Args:
        predictions_mps: all predictions ``(N, 1, H, W)`` in m/s, in dataset order.
        dataset: the evaluated dataset (for the true maps).
        rows: per-sample rows from :func:`evaluate_model` (``mae`` ranks them).
        out_dir: figures go to ``out_dir/figures``.
        dx_m: grid spacing in metres.
    """
    from .plot import comparison_figure, save_figure

    order = sorted(range(len(rows)), key=lambda i: rows[i]["mae"])
    picks = {"best": order[0], "median": order[len(order) // 2], "worst": order[-1]}
    written = {}
    for name, i in picks.items():
        r = rows[i]
        title = (f"{name}: sample {i} ({r['file']} #{r['index_in_file']})   "
                 f"MAE {r['mae_mps']:.1f} m/s   SSIM {r['ssim']:.3f}")  # fmt: skip
        fig = comparison_figure(predictions_mps[i], dataset.raw(i)[1], dx_m=dx_m, title=title)
        written[name] = str(save_figure(fig, out_dir / "figures" / f"{name}.png").name)
    return written


def evaluate_checkpoint(checkpoint: str | Path, split: str | Path, out_dir: str | Path, *,
                        dataset: str | Path | DatasetSpec | None = None, batch_size: int = 64,
                        device: str = "auto", raw_transform: RawTransform | None = None,
                        physics: bool = False, figures: bool = True, save_predictions: bool = False,
                        extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on the labelled ``split``; write metrics, table and figures.

    Args:
        checkpoint: velocitygan or OpenFWI-reference checkpoint.
        split: split file with ``DATA<TAB>LABEL`` lines.
        out_dir: output folder (created).
        dataset: normalisation (name, card, TOML) if the checkpoint has none, or to override
            its amplitude bounds (:func:`~velocitygan.predict.resolve_spec`).
        batch_size: samples per forward pass.
        device: "auto", "cpu" or "cuda".
        raw_transform: pure ``(raw seismic, index) -> raw seismic`` applied before
            normalisation (perturbation studies).
        physics: also compute the relative L2 data misfit of each prediction
            (:func:`velocitygan.fwi.data_misfit`; forward modelling, slow on CPU).
        figures: write best / median / worst figures.
        save_predictions: also write ``predictions.npy`` (m/s, ``(N, 1, 70, 70)``).
        extra: additional JSON-friendly entries for ``metrics.json`` (e.g. perturbation
            settings).

    Returns:
        The ``metrics.json`` content.
    """
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    loaded = load_model(checkpoint, device=device)
    spec = resolve_spec(loaded, dataset)
    ds = OpenFWIDataset(split, spec, raw_transform=raw_transform)
    metrics, rows, preds = evaluate_model(
        loaded, ds, batch_size=batch_size, physics=physics,
        keep_predictions=save_predictions or figures)  # 20 kB per sample
    seconds = time.perf_counter() - t0
    result: dict[str, Any] = {
        **metrics,
        "checkpoint": str(loaded.path.resolve()),
        "checkpoint_source": loaded.source,
        "dataset": spec.name,
        # the published OpenFWI bounds, i.e. OpenFWI's own data (reports compare with the
        # published numbers only then)
        "dataset_is_openfwi": OPENFWI_DATASETS.get(spec.name) == spec,
        "split": str(Path(split).resolve()),
        "ssim_convention": "OpenFWI: [0,1] maps, Gaussian 11x11 sigma 1.5, zero padding",
        "device": str(next(loaded.model.parameters()).device),
        "seconds": round(seconds, 3),
        "samples_per_s": round(metrics["samples"] / seconds, 2),
        "velocitygan_version": __version__,
        **(extra or {}),
    }
    write_csv(out_dir / "per_sample.csv", rows,
              CSV_COLUMNS + [k for k in rows[0] if k not in CSV_COLUMNS])
    if save_predictions:
        save_npy(out_dir / "predictions.npy", preds)
    if figures:
        result["figures"] = write_sample_figures(preds, ds, rows, out_dir)
    write_json(out_dir / "metrics.json", result)
    return result


def evaluate_once(checkpoint: Path, split: Path, out_dir: Path, *,
                  settings: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                  stored_only: bool = False, **kw: Any) -> dict[str, Any] | None:
    """:func:`evaluate_checkpoint` without figures (``kw`` passed on), or the
    ``out_dir/metrics.json`` an earlier call made with the same ``settings`` while the
    checkpoint, the split and every file it lists are unchanged since (what the studies reuse),
    marked ``"reused": True``. ``stored_only``: None instead of evaluating."""
    files = [checkpoint, split] + [f for e in read_split(split) for f in (e.data, e.label) if f]
    st = stamp(settings or {}, files)
    m = read_json(Path(out_dir) / "metrics.json") or {}
    if m.get("stamp") == st:
        return {**m, "reused": True}
    if stored_only:
        return None
    return evaluate_checkpoint(checkpoint, split, out_dir, figures=False,
                               extra={**(extra or {}), "stamp": st}, **kw)
