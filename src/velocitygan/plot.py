"""Publication-style figures: velocity maps, prediction | truth | error panels, shot gathers.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, nothing is shown); :func:`save_figure` writes it atomically. Axes are in physical units:
offset and depth in metres, time in milliseconds, velocity in m/s.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)  # harmless if a backend is already chosen; never shows

import numpy as np  # noqa: E402
from matplotlib import rc_context  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .errors import DataError  # noqa: E402
from .io import atomic_path  # noqa: E402

__all__ = ["velocity_figure", "comparison_figure", "seismic_figure", "save_figure", "as_maps",
           "as_gathers", "STYLE", "VELOCITY_CMAP", "ERROR_CMAP"]

VELOCITY_CMAP = "viridis"  # perceptually uniform; readable in greyscale print
ERROR_CMAP = "RdBu_r"  # diverging, white at zero error: red = too fast, blue = too slow
# Local style (applied with rc_context, never globally): small serif-free fonts, thin frames.
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8,
         "ytick.labelsize": 8, "axes.linewidth": 0.6, "xtick.major.width": 0.6,
         "ytick.major.width": 0.6, "xtick.direction": "out", "ytick.direction": "out",
         "image.interpolation": "nearest", "savefig.bbox": "tight", "savefig.pad_inches": 0.04}


def as_maps(velocity: np.ndarray, what: str = "velocity") -> np.ndarray:
    """Velocity maps ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)`` -> float ``(N, H, W)``."""
    v = np.asarray(velocity, dtype=np.float64)
    if v.ndim == 4 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim == 2:
        v = v[None]
    if v.ndim != 3:
        raise DataError(f"{what}: expected (H, W), (N, H, W) or (N, 1, H, W), got {v.shape}")
    if v.size and np.nanmax(np.abs(v)) < 100:  # drawn and labelled as m/s below
        warnings.warn(f"{what}: values up to {np.nanmax(np.abs(v)):.3g} do not look like m/s "
                      "(normalised maps? km/s? multiply by 1000); the colour bar says m/s",
                      stacklevel=3)
    return v


def as_gathers(data: np.ndarray, what: str = "seismic") -> np.ndarray:
    """Seismic ``(shots, nt, receivers)`` or ``(N, shots, nt, receivers)`` -> ``(N, S, T, R)``."""
    d = np.asarray(data)
    if d.ndim == 3:
        d = d[None]
    if d.ndim != 4:
        raise DataError(f"{what}: expected (shots, time, receivers) or (N, shots, time, "
                        f"receivers), got {d.shape}")
    return d


def _map_axes(ax, label_y: bool = True) -> None:
    ax.set_xlabel("Offset (m)")
    if label_y:
        ax.set_ylabel("Depth (m)")
    ax.tick_params(top=False, right=False)


def _extent(shape: tuple[int, int], dx_m: float) -> tuple[float, float, float, float]:
    nz, nx = shape
    return (0.0, nx * dx_m, nz * dx_m, 0.0)


def velocity_figure(velocity_mps: np.ndarray, *, dx_m: float = 10.0,
                    indices: Sequence[int] | None = None, titles: Sequence[str] | None = None,
                    vmin_mps: float | None = None, vmax_mps: float | None = None,
                    cmap: str = VELOCITY_CMAP) -> Figure:
    """Velocity map(s) side by side with one colorbar in m/s.

    Args:
        velocity_mps: ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)`` velocities in m/s.
        dx_m: grid spacing in metres (same in depth and offset).
        indices: which samples to draw (default: the first up to 6).
        titles: one title per drawn panel (default "sample i" for several, none for one).
        vmin_mps, vmax_mps: colour limits in m/s (default: the data range of drawn panels).
        cmap: matplotlib colormap name.
    """
    maps = as_maps(velocity_mps)
    idx = list(range(min(len(maps), 6))) if indices is None else [int(i) for i in indices]
    for i in idx:
        if not 0 <= i < len(maps):
            raise DataError(f"velocity: sample index {i} out of range (holds {len(maps)} samples)")
    vmin = float(np.min(maps[idx])) if vmin_mps is None else vmin_mps
    vmax = float(np.max(maps[idx])) if vmax_mps is None else vmax_mps
    with rc_context(STYLE):
        fig = Figure(figsize=(0.6 + 2.6 * len(idx), 2.7), layout="constrained")
        axes = fig.subplots(1, len(idx), squeeze=False)[0]
        for k, (ax, i) in enumerate(zip(axes, idx, strict=True)):
            im = ax.imshow(maps[i], cmap=cmap, vmin=vmin, vmax=vmax,
                           extent=_extent(maps[i].shape, dx_m), aspect="equal")  # fmt: skip
            _map_axes(ax, label_y=k == 0)
            if titles is not None:
                ax.set_title(titles[k])
            elif len(idx) > 1:
                ax.set_title(f"sample {i}")
        fig.colorbar(im, ax=list(axes), shrink=0.9, pad=0.02).set_label("Velocity (m/s)")
    return fig


def comparison_figure(pred_mps: np.ndarray, true_mps: np.ndarray, *, dx_m: float = 10.0,
                      title: str | None = None, error_limit_mps: float | None = None,
                      cmap: str = VELOCITY_CMAP) -> Figure:
    """Prediction | truth | error (prediction - truth) for one velocity map, in m/s.

    Prediction and truth share colour limits (the truth's range widened to include the
    prediction) and one colorbar; the error uses a diverging map with symmetric limits
    (default: the largest absolute error, at least 1 m/s).

    Args:
        pred_mps: predicted map ``(H, W)`` or ``(1, H, W)`` in m/s.
        true_mps: true map, same shape, in m/s.
        dx_m: grid spacing in metres.
        title: figure title (e.g. sample name and MAE).
        error_limit_mps: symmetric error colour limit in m/s.
        cmap: colormap of the two velocity panels.
    """
    pred, true = as_maps(pred_mps, "prediction")[0], as_maps(true_mps, "truth")[0]
    if pred.shape != true.shape:
        raise DataError(f"prediction {pred.shape} and truth {true.shape} differ in shape")
    err = pred - true
    vmin, vmax = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
    lim = error_limit_mps or max(float(np.abs(err).max()), 1.0)
    ext = _extent(true.shape, dx_m)
    with rc_context(STYLE):
        fig = Figure(figsize=(8.6, 2.75), layout="constrained")
        axes = fig.subplots(1, 3)
        for k, (ax, arr, name) in enumerate(
            zip(axes[:2], (pred, true), ("Prediction", "Ground truth"), strict=True)
        ):
            im = ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax, extent=ext)
            ax.set_title(name)
            _map_axes(ax, label_y=k == 0)
        fig.colorbar(im, ax=list(axes[:2]), shrink=0.9, pad=0.02).set_label("Velocity (m/s)")
        ime = axes[2].imshow(err, cmap=ERROR_CMAP, vmin=-lim, vmax=lim, extent=ext)
        axes[2].set_title("Error (pred. - truth)")
        _map_axes(axes[2], label_y=False)
        fig.colorbar(ime, ax=axes[2], shrink=0.9, pad=0.02).set_label("Error (m/s)")
        if title:
            fig.suptitle(title, fontsize=10)
    return fig


def seismic_figure(data: np.ndarray, *, dt_s: float = 0.001, dx_m: float = 10.0, index: int = 0,
                   shots: Sequence[int] | None = None, clip_percentile: float = 98.0,
                   title: str | None = None) -> Figure:
    """Shot gathers of one sample in grey, time in ms down, offset in m across.

    Args:
        data: raw or normalised seismic, ``(shots, nt, receivers)`` or ``(N, shots, nt, rec)``.
        dt_s: time sampling in seconds.
        dx_m: receiver spacing in metres.
        index: which sample of a batch to draw.
        shots: which shots (default: all).
        clip_percentile: colour limits are +-this percentile of |amplitude| over the drawn
            shots (robust to the strong direct wave); 100 = no clipping.
        title: figure title.
    """
    gathers = as_gathers(data)
    if not 0 <= index < len(gathers):
        raise DataError(f"seismic: sample index {index} out of range (holds {len(gathers)})")
    g = np.asarray(gathers[index], dtype=np.float64)
    shot_idx = list(range(g.shape[0])) if shots is None else [int(s) for s in shots]
    if any(not 0 <= s < g.shape[0] for s in shot_idx):
        raise DataError(f"seismic: shot index out of range (sample has {g.shape[0]} shots)")
    if not 0 < clip_percentile <= 100:
        raise DataError(f"clip percentile must be in (0, 100], got {clip_percentile}")
    clip = float(np.percentile(np.abs(g[shot_idx]), clip_percentile)) or 1.0
    nt, nr = g.shape[1], g.shape[2]
    ext = (0.0, (nr - 1) * dx_m, nt * dt_s * 1000.0, 0.0)
    with rc_context(STYLE):
        fig = Figure(figsize=(0.8 + 1.75 * len(shot_idx), 3.8), layout="constrained")
        axes = fig.subplots(1, len(shot_idx), squeeze=False, sharey=True)[0]
        for k, (ax, s) in enumerate(zip(axes, shot_idx, strict=True)):
            im = ax.imshow(g[s], cmap="gray", vmin=-clip, vmax=clip, extent=ext, aspect="auto",
                           interpolation="bilinear")  # fmt: skip
            ax.set_title(f"Shot {s + 1}")
            ax.set_xlabel("Offset (m)")
            if k == 0:
                ax.set_ylabel("Time (ms)")
        cb = fig.colorbar(im, ax=list(axes), shrink=0.9, pad=0.01)
        cb.set_label(f"Amplitude (clipped at {clip_percentile:g}th pct.)")
        if title:
            fig.suptitle(title, fontsize=10)
    return fig


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 200) -> Path:
    """Write ``fig`` atomically; the format follows the suffix (.png, .pdf, .svg)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "pdf", "svg", "jpg", "jpeg"):
        raise DataError(f"{path}: unsupported figure format {fmt!r}; use .png, .pdf or .svg")
    with rc_context(STYLE), atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return path
