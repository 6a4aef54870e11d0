"""Hybrid inversion: a network prediction as the start model of a physics (FWI) refinement.

The network gives a good long-wavelength model in milliseconds; FWI from there needs few
iterations and, starting close, is less prone to cycle skipping than from a smooth guess.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..predict import predict
from .inversion import FWIResult, run_fwi

__all__ = ["HybridResult", "run_hybrid"]


@dataclass
class HybridResult:
    """Outcome of ``run_hybrid``.

    Attributes:
        pred_mps: network prediction ``(N, 1, nz, nx)`` in m/s (before clipping to the bounds).
        predict_time_s: wall time of the prediction (loading included) in s.
        fwi: the refinement (``fwi.velocity_mps`` is the refined model, m/s).
    """

    pred_mps: np.ndarray
    predict_time_s: float
    fwi: FWIResult


def run_hybrid(checkpoint: str | Path, observed_raw: np.ndarray, *, refine: int, dataset=None,
               device: str = "auto", vmin_mps: float = 1500.0, vmax_mps: float = 4500.0,
               log: Callable[[str], None] = print, **fwi_kwargs) -> HybridResult:
    """Predict with a trained generator, then refine with ``refine`` FWI iterations.

    Args:
        checkpoint: velocitygan or OpenFWI-reference checkpoint.
        observed_raw: raw seismic ``(N, shots, nt, receivers)``.
        refine: FWI iterations after the prediction (0: prediction only, misfit still reported).
        dataset: normalisation for the network when the checkpoint carries none.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` for both network and FWI.
        vmin_mps, vmax_mps: FWI velocity bounds; the prediction is clipped into them.
        log: receives one-line notes.
        **fwi_kwargs: further ``run_fwi`` keywords (acquisition, optimizer, lr, freqs_hz, ...).
    """
    obs = np.asarray(observed_raw, dtype=np.float32)
    if obs.ndim == 3:
        obs = obs[None]
    t0 = time.perf_counter()
    pred = predict(checkpoint, obs, dataset=dataset, device=device, log=log)
    predict_time_s = time.perf_counter() - t0
    result = run_fwi(obs, np.clip(pred, vmin_mps, vmax_mps), iterations=refine,
                     vmin_mps=vmin_mps, vmax_mps=vmax_mps, device=device, **fwi_kwargs)
    return HybridResult(pred_mps=pred, predict_time_s=predict_time_s, fwi=result)
