"""Perturbations of raw seismic numpy arrays: noise, dead traces and shots, shift, flip.

Seismic arrays hold raw amplitudes with the last three axes ``(shot, time sample, receiver)``:
one sample ``(5, 1000, 70)`` or a batch ``(N, 5, 1000, 70)``; random choices are drawn
independently for each sample of a batch. Every function returns a new array.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["OPENFWI_SRC_X", "add_noise_snr", "drop_traces", "drop_shots", "time_shift", "flip_lr",
           "flipped_source_columns", "measure_snr_db"]

# A numpy Generator, an integer seed, or None for fresh entropy.
Rng = np.random.Generator | int | None

# Source columns of the OpenFWI acquisition: round(linspace(0, 69, 5)).
OPENFWI_SRC_X: tuple[int, ...] = (0, 17, 34, 52, 69)


def _check_seismic(x: np.ndarray) -> None:
    if x.ndim not in (3, 4):
        raise ConfigError(f"seismic array has shape {tuple(x.shape)}; expected (shots, time, "
                          "receivers) or (N, shots, time, receivers)")


def _power_axes(per: str) -> tuple[int, ...]:
    if per == "shot":
        return (-2, -1)
    if per == "sample":
        return (-3, -2, -1)
    raise ConfigError(f"SNR reference {per!r} unknown; use 'shot' or 'sample'")


def _mean_power(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return np.square(x, dtype=np.float64).mean(axis=axes, keepdims=True)


def add_noise_snr(x: np.ndarray, snr_db: float, rng: Rng = None, *, per: str = "shot"
                  ) -> np.ndarray:
    """Add white Gaussian noise at a signal-to-noise ratio of ``snr_db`` decibels.

    SNR is ``10 log10(P_signal / P_noise)`` with ``P`` the mean squared amplitude per sample
    point. With ``per="shot"`` (default) each shot gather (1000 x 70 values) gets noise scaled
    to its own power, as each shot is a separate recording; ``per="sample"`` uses one power
    for the 5 shots of a sample. An all-zero gather stays zero.

    Args:
        x: raw seismic ``(5, nt, nr)`` or ``(N, 5, nt, nr)``.
        snr_db: requested SNR in dB (finite; ``inf`` returns a copy).
        rng: numpy Generator, integer seed, or None for fresh entropy.
        per: ``"shot"`` or ``"sample"``: the unit over which signal power is measured.

    Returns:
        A new array like ``x``.
    """
    _check_seismic(x)
    snr_db = float(snr_db)
    if math.isnan(snr_db):
        raise ConfigError("noise SNR is NaN; give a number of decibels, e.g. --noise-snr 10")
    if math.isinf(snr_db) and snr_db > 0:
        return x.copy()
    if math.isinf(snr_db):
        raise ConfigError("noise SNR of -inf dB means infinite noise; give a finite value")
    sigma = (_mean_power(x, _power_axes(per)) / 10.0 ** (snr_db / 10.0)) ** 0.5
    noise = np.random.default_rng(rng).standard_normal(x.shape, dtype=np.float32)
    return x + sigma.astype(x.dtype) * noise.astype(x.dtype, copy=False)


def measure_snr_db(clean: np.ndarray, noisy: np.ndarray, *, per: str = "shot") -> np.ndarray:
    """Measured SNR in dB of ``noisy`` against ``clean``, one value per shot (or per sample)."""
    axes = _power_axes(per)
    ratio = _mean_power(clean, axes) / _mean_power(noisy - clean, axes)
    return 10.0 * np.log10(ratio).reshape(-1)


def _count(fraction: float, total: int) -> int:
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"missing-trace fraction {fraction} must lie in [0, 1]")
    return int(round(fraction * total))


def drop_traces(x: np.ndarray, fraction: float, rng: Rng = None, *,
                same_for_all_shots: bool = True) -> np.ndarray:
    """Zero ``round(fraction * n_receivers)`` receivers (``fraction`` in [0, 1]) at random.

    With ``same_for_all_shots=True`` (default) the same receivers are dead in every shot of a
    sample, as for dead geophones in a fixed spread; otherwise each shot loses its own set.
    Dead traces are exact zeros.
    """
    _check_seismic(x)
    n_rec = int(x.shape[-1])
    k = _count(fraction, n_rec)
    out = x.copy()
    if k == 0:
        return out
    gen = np.random.default_rng(rng)
    for sample in out.reshape(-1, *out.shape[-3:]):  # views: writes land in ``out``
        rows = [slice(None)] if same_for_all_shots else range(sample.shape[0])
        for shot in rows:
            sample[shot, :, np.sort(gen.choice(n_rec, size=k, replace=False))] = 0
    return out


def drop_shots(x: np.ndarray, n: int, rng: Rng = None) -> np.ndarray:
    """Zero ``n`` whole shot gathers of each sample (0 <= n <= shots), chosen at random."""
    _check_seismic(x)
    n_shots = int(x.shape[-3])
    if int(n) != n or not 0 <= n <= n_shots:
        raise ConfigError(f"missing shots {n} must be an integer in [0, {n_shots}]")
    out = x.copy()
    if n == 0:
        return out
    gen = np.random.default_rng(rng)
    for sample in out.reshape(-1, *out.shape[-3:]):
        sample[gen.choice(n_shots, size=int(n), replace=False)] = 0
    return out


def time_shift(x: np.ndarray, samples: int) -> np.ndarray:
    """Shift every trace by ``samples`` time samples (integer, ``|samples| < nt``), zero fill.

    Positive ``samples`` makes events arrive later (a 1 ms sample: +5 = 5 ms later); negative
    earlier. Samples shifted past the end are lost.
    """
    _check_seismic(x)
    nt = int(x.shape[-2])
    if int(samples) != samples or abs(int(samples)) >= nt:
        raise ConfigError(f"time shift {samples} must be an integer with |shift| < {nt} samples")
    s = int(samples)
    out = np.zeros_like(x)
    out[..., max(s, 0): nt + min(s, 0), :] = x[..., max(-s, 0): nt - max(s, 0), :]
    return out


def flipped_source_columns(src_x: Sequence[int] = OPENFWI_SRC_X, nx: int = 70) -> tuple[int, ...]:
    """Source columns of the shots after :func:`flip_lr` (shot order reversed, x mirrored).

    For OpenFWI's (0, 17, 34, 52, 69) on 70 columns this is (0, 17, 35, 52, 69): the grid has
    no centre column, so the mirrored centre source lands one cell (10 m) right of 34.
    """
    return tuple(nx - 1 - int(s) for s in reversed(tuple(src_x)))


def flip_lr(x: np.ndarray, y: np.ndarray | None = None, *, recentre: bool = False,
            src_x: Sequence[int] = OPENFWI_SRC_X) -> tuple[np.ndarray, np.ndarray | None]:
    """Mirror a sample left-right: reverse receivers and shot order, flip the map's x-axis.

    A mirrored model, shot from mirrored source positions, records the mirrored data, so
    ``(flip(x), flip(y))`` is again a valid pair, except that the mirrored source columns are
    :func:`flipped_source_columns` (OpenFWI: the centre shot at column 35, not 34). With
    ``recentre=False`` (default) the data are left as they are and are exact for sources at
    (0, 17, 35, 52, 69); the flip is then exactly its own inverse. ``recentre=True`` moves each
    such shot's traces by the source offset (one receiver for OpenFWI; the edge trace is
    repeated): exact for laterally invariant media only, and not invertible. Measured with
    our forward operator, the flipped centre shot differs from the mirrored model's shot at
    column 34 by 58 % (relative L2) as is and by 3-5 % recentred (flat / curved layers).

    Args:
        x: raw or normalised seismic ``(5, nt, nr)`` or ``(N, 5, nt, nr)``, receivers on a
            one-cell spacing across the model.
        y: velocity map ``(..., nz, nx)`` (any units) or None.
        recentre: move the mirrored shots back onto the original source columns.
        src_x: source columns of the acquisition (used with ``recentre``).

    Returns:
        ``(x_flipped, y_flipped)`` (``y_flipped`` is None when ``y`` is None).
    """
    _check_seismic(x)
    xf = np.ascontiguousarray(x[..., ::-1, :, ::-1])
    if recentre:
        src = tuple(src_x)
        n_rec = int(x.shape[-1])
        if len(src) != int(x.shape[-3]):
            raise ConfigError(f"{len(src)} source columns given for {int(x.shape[-3])} shots")
        mirrored = flipped_source_columns(src, n_rec)
        for k, (want, got) in enumerate(zip(src, mirrored, strict=True)):
            if want != got:  # out[..., r] = in[..., clip(r - offset)]
                idx = np.clip(np.arange(n_rec) - (want - got), 0, n_rec - 1)
                xf[..., k, :, :] = xf[..., k, :, :][..., idx]
    yf = None if y is None else np.ascontiguousarray(y[..., ::-1])
    return xf, yf
