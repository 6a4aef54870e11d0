"""Cut a large velocity model (Marmousi-like) into 70 x 70 patches at 10 m for an OpenFWI dataset.

Velocities outside OpenFWI's 1500-4500 m/s label range are CLIPPED into it, with a warning that
says which fraction of cells changed (the card records it as ``clipped_fraction``): the labels
must lie in the normalisation range and a few fast or slow cells (salt, water slower than
1500 m/s) should not make a whole model unusable. Non-finite values, values <= 0 or >= 10000
m/s, models entirely below 1500 m/s (likely km/s) and patch sets more than half clipped (ft/s?)
are errors; a model that varies far more along x than with depth gets a warning (axes swapped?).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from .families import GRID_CELLS, VELOCITY_MAX_MPS, VELOCITY_MIN_MPS
from .generate import write_dataset

__all__ = ["PatchSource", "cut_patches", "generate_from_model", "load_velocity_model",
           "resample_model"]

TARGET_DX_M = 10.0  # OpenFWI grid spacing
MAX_RESAMPLED_CELLS = 2e8  # 800 MB of float32 at 10 m: a mistyped --dx, not a model
MAX_CLIPPED_FRACTION = 0.5  # above this the labels are mostly the clip value: wrong units?


def load_velocity_model(path: str | Path, *, shape: tuple[int, int] | None = None,
                        axis_order: str = "zx") -> np.ndarray:
    """Read a 2-D velocity model in m/s as float32 ``(nz, nx)``, depth first.

    Args:
        path: ``.npy`` (2-D array) or raw little-endian float32 (``.bin`` or any other suffix).
        shape: ``(nz, nx)``; required for raw files, checked for ``.npy``.
        axis_order: storage order: ``zx`` (rows are depths, x varies fastest) or ``xz``
            (rows are x positions, depth varies fastest, as in many Marmousi ``.bin`` files).
    """
    path = Path(path).expanduser()
    if axis_order not in ("zx", "xz"):
        raise ConfigError(f"axis order {axis_order!r}: use zx or xz")
    if not path.is_file():
        raise DataError(f"{path}: velocity model file not found")
    stored = None if shape is None else (shape if axis_order == "zx" else shape[::-1])
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"{path}: not a readable .npy file ({exc})") from None
        if arr.dtype.kind not in "fiu":
            raise DataError(f"{path}: holds {arr.dtype} values; expected numbers (velocity in m/s)")
        arr = np.squeeze(arr)
        if arr.ndim != 2:
            raise DataError(f"{path}: expected a 2-D velocity model, got shape {arr.shape}")
        if stored is not None and arr.shape != tuple(stored):
            raise DataError(f"{path}: array has shape {arr.shape}, but --shape gives {shape}")
    else:
        if shape is None:
            raise ConfigError(f"{path}: raw file needs --shape NZ,NX (and --axis-order)")
        size = path.stat().st_size
        if size != 4 * shape[0] * shape[1]:
            raise DataError(f"{path}: holds {size // 4} float32 values, but --shape "
                            f"{shape[0]},{shape[1]} needs {shape[0] * shape[1]}; check --shape")
        arr = np.fromfile(path, dtype="<f4").reshape(stored)
    model = np.ascontiguousarray(arr.T if axis_order == "xz" else arr, dtype=np.float32)
    _check_values(model, path, raw=path.suffix != ".npy")
    _check_orientation(model, path)
    return model


def _check_values(model: np.ndarray, path: Path, *, raw: bool = False) -> None:
    finite = np.isfinite(model)
    hint = "; is the file little-endian float32 (byte order, dtype)?" if raw else ""
    if not finite.all():
        raise DataError(f"{path}: {int((~finite).sum())} NaN/Inf value(s); fix the model "
                        f"first{hint}")
    lo, hi = float(model.min()), float(model.max())
    if raw and (hi < 1e-3 or hi > 1e30 or lo < -1e30):  # not velocities in any unit
        raise DataError(f"{path}: values {lo:.3g}..{hi:.3g} are not velocities{hint}")
    if lo <= 0 or hi >= 10000:
        raise DataError(f"{path}: velocities {lo:g}..{hi:g} outside (0, 10000) m/s; give m/s"
                        + (" (ft/s? multiply by 0.3048)" if hi >= 10000 and lo > 0 else ""))
    if hi < VELOCITY_MIN_MPS:
        raise DataError(f"{path}: all velocities below {VELOCITY_MIN_MPS:g} (max {hi:g}); "
                        "km/s? multiply by 1000")


def _check_orientation(model: np.ndarray, path: Path) -> None:
    """Warn when velocity varies much faster across rows' columns than down them: geological
    models change most with depth, so the axes are probably swapped."""
    if min(model.shape) < 3:
        return
    down = float(np.abs(np.diff(model, axis=0)).mean())
    across = float(np.abs(np.diff(model, axis=1)).mean())
    if across > 5 * max(down, 1e-6):
        warnings.warn(f"{path}: velocity varies {across / max(down, 1e-6):.0f}x more along x "
                      "than with depth; wrong --axis-order?", stacklevel=3)


def resample_model(model_mps: np.ndarray, dx_m: float) -> np.ndarray:
    """Resample a ``(nz, nx)`` model from ``dx_m`` to 10 m spacing (area when coarsening,
    bilinear when refining)."""
    if not 0 < dx_m < math.inf:
        raise ConfigError(f"--dx must be a positive spacing in metres, got {dx_m}")
    nz, nx = model_mps.shape
    size = (max(1, round(nz * dx_m / TARGET_DX_M)), max(1, round(nx * dx_m / TARGET_DX_M)))
    if size[0] * size[1] > MAX_RESAMPLED_CELLS:
        raise ConfigError(f"--dx {dx_m:g} m makes the {nz} x {nx} model {size[0]} x {size[1]} "
                          f"cells at 10 m (more than {MAX_RESAMPLED_CELLS:.0e}); check --dx")
    if size == (nz, nx):
        return model_mps.astype(np.float32, copy=True)
    t = torch.from_numpy(np.ascontiguousarray(model_mps, dtype=np.float32))[None, None]
    if dx_m < TARGET_DX_M:
        return F.interpolate(t, size=size, mode="area")[0, 0].numpy()
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def cut_patches(model_mps: np.ndarray, stride_cells: int = 35) -> np.ndarray:
    """All 70 x 70 windows of a 10 m model, top-left corners every ``stride_cells`` (row-major)."""
    if stride_cells < 1:
        raise ConfigError(f"--stride must be >= 1 cell, got {stride_cells}")
    nz, nx = model_mps.shape
    if nz < GRID_CELLS or nx < GRID_CELLS:
        raise DataError(f"model is {nz} x {nx} cells at 10 m; need at least {GRID_CELLS} x "
                        f"{GRID_CELLS} (check --dx)")
    return np.stack([
        model_mps[z:z + GRID_CELLS, x:x + GRID_CELLS]
        for z in range(0, nz - GRID_CELLS + 1, stride_cells)
        for x in range(0, nx - GRID_CELLS + 1, stride_cells)
    ]).astype(np.float32)


@dataclasses.dataclass
class PatchSource:
    """Patches cut from a velocity model file, clipped to 1500-4500 m/s."""

    patches: np.ndarray
    info: dict[str, Any]

    @property
    def n_samples(self) -> int:
        """Number of patches."""
        return len(self.patches)

    def describe(self) -> dict[str, Any]:
        """Where the patches come from (file, its SHA-256, spacing, stride, clipping)."""
        return {"kind": "from-model", **self.info}

    def maps(self, start: int, stop: int) -> np.ndarray:
        """Patches ``start..stop-1``."""
        return self.patches[start:stop]


def patch_source(path: str | Path, *, dx_m: float, shape: tuple[int, int] | None = None,
                 axis_order: str = "zx", stride_cells: int = 35,
                 max_samples: int | None = None) -> PatchSource:
    """Load, resample, cut and clip a model file into a :class:`PatchSource`."""
    model = resample_model(load_velocity_model(path, shape=shape, axis_order=axis_order), dx_m)
    patches = cut_patches(model, stride_cells)
    if max_samples is not None:
        if max_samples < 1:
            raise ConfigError(f"--samples must be >= 1, got {max_samples}")
        patches = patches[:max_samples]
    fraction = float(((patches < VELOCITY_MIN_MPS) | (patches > VELOCITY_MAX_MPS)).mean())
    if fraction > MAX_CLIPPED_FRACTION:
        raise DataError(
            f"{path}: {100 * fraction:.1f} % of patch cells lie outside "
            f"{VELOCITY_MIN_MPS:g}-{VELOCITY_MAX_MPS:g} m/s, so most labels would be the clip "
            "value; check the units (ft/s? multiply by 0.3048) or cut a part of the model")
    if fraction > 0:
        warnings.warn(f"{path}: {100 * fraction:.2f} % of patch cells lie outside "
                      f"{VELOCITY_MIN_MPS:g}-{VELOCITY_MAX_MPS:g} m/s and were clipped",
                      stacklevel=2)
    patches = np.clip(patches, VELOCITY_MIN_MPS, VELOCITY_MAX_MPS)
    digest = hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()
    return PatchSource(patches, {
        "file": str(Path(path).expanduser().resolve()), "sha256": digest, "dx_m": float(dx_m),
        "shape_10m": list(model.shape), "axis_order": axis_order,
        "stride_cells": int(stride_cells), "patches": len(patches), "clipped_fraction": fraction})


def generate_from_model(out_dir: str | Path, model_path: str | Path, *, dx_m: float,
                        shape: tuple[int, int] | None = None, axis_order: str = "zx",
                        stride_cells: int = 35, max_samples: int | None = None,
                        **writer: Any) -> Path:
    """Write an OpenFWI-layout dataset from the 70 x 70 patches of a large velocity model.

    Args:
        out_dir: output folder (same layout and resume rules as ``generate_dataset``).
        model_path: ``.npy`` or raw float32 file, m/s.
        dx_m: grid spacing of the file in metres (resampled to 10 m).
        shape: ``(nz, nx)`` of a raw file.
        axis_order: ``zx`` or ``xz`` storage order.
        stride_cells: patch step at 10 m (35 = half-overlapping patches).
        max_samples: keep only the first N patches.
        **writer: keyword arguments of :func:`velocitygan.synth.write_dataset`.

    Returns:
        Path of ``dataset.json``.
    """
    source = patch_source(model_path, dx_m=dx_m, shape=shape, axis_order=axis_order,
                          stride_cells=stride_cells, max_samples=max_samples)
    return write_dataset(out_dir, source, **writer)
