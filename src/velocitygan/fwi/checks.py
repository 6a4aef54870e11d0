"""Input validation for FWI: every check runs before the first simulation."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError, DataError

__all__ = ["as_observed", "as_velocity_batch", "check_settings"]


def _tensor(x, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach().float().cpu()
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{what}: not a numeric array ({exc})") from None
    if not torch.isfinite(t).all():
        raise DataError(f"{what} holds NaN or Inf values; clean the array first")
    return t


def as_observed(observed_raw, acquisition) -> torch.Tensor:
    """Check raw seismic against the acquisition; return float32 ``(N, shots, nt, receivers)``.

    Raises:
        DataError: wrong rank, or a shape that does not match the acquisition.
    """
    d = _tensor(observed_raw, "observed data")
    want = (len(acquisition.src_x), acquisition.nt, len(acquisition.rec_x))
    if d.dim() == 3:
        d = d[None]
    if d.dim() != 4 or tuple(d.shape[1:]) != want:
        raise DataError(f"observed data have shape {tuple(d.shape)} but the acquisition expects "
                        f"(N, {want[0]}, {want[1]}, {want[2]}) = (samples, shots, nt, receivers); "
                        "pass data made with this acquisition or an acquisition that matches "
                        "the data")
    if d.shape[0] == 0:
        raise DataError("observed data hold no samples")
    silent = (d.flatten(1).abs().amax(1) == 0).nonzero().flatten().tolist()
    if len(silent) == d.shape[0]:
        raise DataError("observed data are all zero; nothing to invert")
    if silent:  # the relative misfit of such a sample divides by zero
        raise DataError(f"observed sample(s) {', '.join(map(str, silent[:5]))} are all zero; "
                        "drop them (nothing to fit)")
    return d


def as_velocity_batch(v, n: int, acquisition, what: str, *, bounds=None) -> torch.Tensor:
    """Check velocity maps in m/s; return float32 ``(n, nz, nx)``.

    Accepts ``(nz, nx)`` (used for all ``n`` samples), ``(n, nz, nx)`` or ``(n, 1, nz, nx)``.
    With ``bounds=(vmin, vmax)`` the values must lie inside the bounds.

    Raises:
        DataError: wrong shape, NaN/Inf, or values outside the bounds.
    """
    t = _tensor(v, what)
    nz, nx = acquisition.nz, acquisition.nx
    if t.dim() == 4 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dim() == 2 and tuple(t.shape) == (nz, nx):
        t = t[None].expand(n, nz, nx).clone()
    if t.dim() != 3 or tuple(t.shape) != (n, nz, nx):
        raise DataError(f"{what} has shape {tuple(t.shape)}; expected ({n}, 1, {nz}, {nx}), "
                        f"({n}, {nz}, {nx}) or ({nz}, {nx}) in m/s, one map per observed sample")
    if bounds is not None:
        lo, hi = float(t.min()), float(t.max())
        if lo < bounds[0] - 1e-3 or hi > bounds[1] + 1e-3:
            raise DataError(f"{what} spans {lo:.1f}..{hi:.1f} m/s, outside the velocity bounds "
                            f"{bounds[0]:.0f}..{bounds[1]:.0f} m/s; widen the bounds "
                            "(--vmin/--vmax) or clip the model (is it in m/s, not normalised?)")
    return t


def check_settings(*, iterations: int, optimizer: str, lr: float | None, tv_weight: float, freqs_hz,
                   vmin_mps: float, vmax_mps: float, dt_s: float, grad_clip_quantile: float | None,
                   acquisition=None) -> None:
    """Validate scalar FWI settings; raise ``ConfigError`` with the offending value.

    With ``acquisition``, ``vmax_mps`` must also be stable for its time step and spacing (an
    iterate may reach it anywhere, also in a model as fast as that everywhere).
    """
    if iterations < 0:
        raise ConfigError(f"iterations must be >= 0, got {iterations}")
    if optimizer not in ("adam", "lbfgs"):
        raise ConfigError(f"optimizer must be 'adam' or 'lbfgs', got {optimizer!r}")
    if lr is not None and not 0 < lr < math.inf:
        raise ConfigError(f"learning rate must be a finite number > 0, got {lr}")
    if not 0 <= tv_weight < math.inf:
        raise ConfigError(f"TV weight must be a finite number >= 0, got {tv_weight}")
    if not 0 < vmin_mps < vmax_mps < math.inf:
        raise ConfigError(f"velocity bounds must satisfy 0 < vmin < vmax, got {vmin_mps}, "
                          f"{vmax_mps}")
    if acquisition is not None and vmax_mps > acquisition.stable_velocity_mps(vmax_mps):
        raise ConfigError(f"vmax {vmax_mps:g} m/s is unstable for dt {acquisition.dt_s:g} s and "
                          f"dx {acquisition.dx_m:g} m; use --vmax "
                          f"{acquisition.stable_velocity_mps(vmax_mps):.0f} or less")
    nyquist_hz = 0.5 / dt_s
    for f in freqs_hz:
        if f is not None and not (0 < f < nyquist_hz):
            raise ConfigError(f"frequency band {f} Hz is outside (0, {nyquist_hz:g}) Hz "
                              "(Nyquist); use e.g. --freqs 5,10,full")
    corners = [math.inf if f is None else f for f in freqs_hz]
    if corners != sorted(corners):
        raise ConfigError(f"frequency bands must go from low to high (full last), got "
                          f"{', '.join('full' if f is None else f'{f:g}' for f in freqs_hz)}")
    if grad_clip_quantile is not None and not 0 < grad_clip_quantile <= 1:
        raise ConfigError(f"gradient clip quantile must be in (0, 1], got {grad_clip_quantile}")
