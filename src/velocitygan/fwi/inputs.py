"""Loading FWI inputs from files: observed data, sample selection, start and true models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ..data.npyfile import open_npy
from ..errors import ConfigError, DataError
from ..physics import Acquisition
from .model import gaussian_smooth, linear_gradient_model

__all__ = ["DEFAULT_SMOOTH_SIGMA_CELLS", "load_acquisition", "load_maps", "load_observed",
           "parse_samples", "start_model"]

# Standard benchmark start: the true model blurred by a Gaussian of 10 cells (100 m) std: layer
# boundaries are gone but the long-wavelength trend (what FWI cannot recover without low
# frequencies) is kept.
DEFAULT_SMOOTH_SIGMA_CELLS = 10.0


def parse_samples(text: str | None, n_available: int) -> list[int]:
    """Parse ``"3"``, ``"0,4,7"``, ``"0:20"`` or ``"all"`` into sample indices in range."""
    if text is None or str(text).strip().lower() == "all":
        return list(range(n_available))
    out: list[int] = []
    try:
        for part in str(text).split(","):
            if ":" in part:
                a, b = part.split(":", 1)
                out += list(range(int(a or 0), int(b) if b else n_available))
            else:
                out.append(int(part))
    except ValueError:
        raise ConfigError(f"bad --sample {text!r}; use e.g. 3, 0,4,7, 0:20 or all") from None
    bad = [i for i in out if not 0 <= i < n_available]
    if bad or not out:
        raise ConfigError(f"--sample {text!r} selects {bad or 'nothing'}; the data hold samples "
                          f"0..{n_available - 1}")
    return out


def load_observed(path: str | Path, samples: str | None) -> tuple[np.ndarray, list[int]]:
    """Raw seismic of the selected samples ``(n, shots, nt, receivers)`` and their indices."""
    arr = open_npy(Path(path).expanduser())
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise DataError(f"{path}: seismic shape {tuple(arr.shape)}; expected (N, shots, nt, "
                        "receivers) or (shots, nt, receivers) raw amplitudes")
    idx = parse_samples(samples, arr.shape[0])
    return np.asarray(arr[idx], dtype=np.float32), idx


def load_maps(path: str | Path, idx: list[int], n_in_data: int, what: str) -> np.ndarray:
    """Velocity maps (m/s) for the selected samples from a ``.npy`` file.

    The file holds one map per sample of the data file (indexed like it), exactly one map per
    selected sample, or a single ``(nz, nx)`` map used for all.
    """
    arr = open_npy(Path(path).expanduser())
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 2:
        return np.broadcast_to(arr, (len(idx), *arr.shape)).astype(np.float32)
    if arr.ndim == 3 and arr.shape[0] == n_in_data:
        return np.asarray(arr[idx], dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] == len(idx):
        return np.asarray(arr, dtype=np.float32)
    raise DataError(
        f"{path}: {what} shape {tuple(arr.shape)}; expected ({n_in_data}, 1, nz, nx) like the "
        f"data file, ({len(idx)}, 1, nz, nx) for the selected samples, or one (nz, nx) map"
    )


def load_acquisition(path: str | Path | None):
    """``Acquisition`` from a JSON file (a dataset.json card or a bare dict); OpenFWI's if None."""
    if path is None:
        return Acquisition()
    p = Path(path).expanduser()
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot read acquisition JSON ({exc})") from None
    if isinstance(d, dict) and isinstance(d.get("acquisition"), dict):
        d = d["acquisition"]
    if not isinstance(d, dict):
        raise DataError(f"{p}: expected a JSON object with acquisition fields")
    return Acquisition.from_dict(d)


def start_model(init: str, n: int, acquisition, *, true_mps: np.ndarray | None,
                sigma_cells: float = DEFAULT_SMOOTH_SIGMA_CELLS, vmin_mps: float = 1500.0,
                vmax_mps: float = 4500.0) -> np.ndarray:
    """Start maps ``(n, nz, nx)`` in m/s for ``init`` = ``"smooth"`` or ``"linear"``.

    ``smooth``: the true model Gaussian-smoothed by ``sigma_cells`` (the standard benchmark
    start, needs the true model). ``linear``: velocity growing linearly with depth from
    ``vmin_mps`` at the surface to ``vmax_mps`` at the bottom, the same for every sample.
    """
    if init == "smooth":
        if true_mps is None:
            raise ConfigError("--init smooth smooths the true model: give --true V.npy, or use "
                              "--init linear or --init START.npy")
        if not 0 <= sigma_cells < math.inf:
            raise ConfigError(f"--smooth-sigma must be a finite number >= 0 (cells), got "
                              f"{sigma_cells}")
        true = np.asarray(true_mps, dtype=np.float32)
        if true.size != n * acquisition.nz * acquisition.nx:
            raise DataError(f"true model has shape {true.shape}; expected ({n}, 1, "
                            f"{acquisition.nz}, {acquisition.nx}) m/s for --init smooth")
        t = torch.as_tensor(true).reshape(n, acquisition.nz, acquisition.nx)
        return gaussian_smooth(t, sigma_cells).numpy()
    if init == "linear":
        return linear_gradient_model(n, acquisition.nz, acquisition.nx, top_mps=vmin_mps,
                                     bottom_mps=vmax_mps).numpy()
    raise ConfigError(f"unknown --init {init!r}; use smooth, linear or a .npy file")
