"""Acquisition geometry, source wavelet and input checks shared by both physics backends.

Everything here is cheap: it runs before any simulation so that bad input fails in milliseconds
with a one-line :class:`~velocitygan.errors.VelocityGANError`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from velocitygan.errors import ConfigError, DataError

__all__ = ["Acquisition", "CFL_LIMIT", "MAX_VELOCITY_MPS", "check_velocity", "ricker"]

# Stability limit of v*dt/dx for the 2nd-order-in-time, 4th-order-in-space 2-D scheme: the exact
# von Neumann bound is sqrt(3/8) = 0.612; the sponge's damping term eats a little of the margin.
CFL_LIMIT = 0.606
# Anything at or above this is not a seismic velocity in m/s (probably km/s vs m/s confusion or a
# normalised map); OpenFWI maps lie in 1500-4500 m/s.
MAX_VELOCITY_MPS = 10000.0


def _whole(name: str, value: Any) -> int:
    """``value`` as a Python int, or a one-line ConfigError if it is not a whole number."""
    message = f"acquisition {name}={value!r} must be a whole number"
    try:
        number, whole = float(value), int(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(message) from None
    if number != whole:
        raise ConfigError(message)
    return whole


@dataclass(frozen=True)
class Acquisition:
    """Survey geometry and discretisation. Defaults reproduce OpenFWI's Vel/Fault/Style data.

    Grid indices are (depth, x) cells of the velocity map; depth index 0 is the surface.

    Attributes:
        nz: Model cells in depth.
        nx: Model cells in x.
        dx_m: Grid spacing in metres (same in z and x).
        dt_s: Time step = sample interval in seconds.
        nt: Number of time samples recorded (and simulated).
        peak_freq_hz: Peak frequency of the Ricker source wavelet in Hz.
        src_x: Source x cells, one shot per source.
        src_z: Source depth cell (all shots).
        rec_x: Receiver x cells.
        rec_z: Receiver depth cell.
        pad_cells: Width of the absorbing sponge (torch backend) in cells on each of four sides.
    """

    nz: int = 70
    nx: int = 70
    dx_m: float = 10.0
    dt_s: float = 0.001
    nt: int = 1000
    peak_freq_hz: float = 15.0
    src_x: tuple[int, ...] = (0, 17, 34, 52, 69)
    src_z: int = 1
    rec_x: tuple[int, ...] = tuple(range(70))
    rec_z: int = 1
    pad_cells: int = 120

    def __post_init__(self) -> None:
        # plain Python numbers: numpy scalars (e.g. read from .npz metadata) would otherwise
        # leak float64/int64 into tensors and the compiled kernels' arguments
        for name in ("nz", "nx", "nt", "src_z", "rec_z", "pad_cells"):
            object.__setattr__(self, name, _whole(name, getattr(self, name)))
        for name in ("src_x", "rec_x"):
            object.__setattr__(self, name, tuple(_whole(name, i) for i in getattr(self, name)))
        for name in ("dx_m", "dt_s", "peak_freq_hz"):
            try:
                value = float(getattr(self, name))
            except (TypeError, ValueError):
                value = math.nan
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"acquisition {name}={getattr(self, name)!r} must be a "
                                  "positive number")
            object.__setattr__(self, name, value)
        for name in ("nz", "nx", "nt"):
            if getattr(self, name) < 1:
                raise ConfigError(f"acquisition {name}={getattr(self, name)} must be >= 1")
        if self.pad_cells < 2:
            raise ConfigError(f"acquisition pad_cells={self.pad_cells} must be >= 2 "
                              "(120 = OpenFWI)")
        if not self.src_x or not self.rec_x:
            raise ConfigError("acquisition needs at least one source (src_x) and receiver (rec_x)")
        for name, cells, limit in (("src_x", self.src_x, self.nx), ("rec_x", self.rec_x, self.nx),
                                   ("src_z", (self.src_z,), self.nz),
                                   ("rec_z", (self.rec_z,), self.nz)):
            bad = [c for c in cells if not 0 <= c < limit]
            if bad:
                raise ConfigError(f"acquisition {name} cell(s) {bad} lie outside the grid "
                                  f"0..{limit - 1}; give cell indices inside the model")
        if len(set(self.src_x)) != len(self.src_x):
            raise ConfigError(f"acquisition src_x={self.src_x} repeats a source position")

    @property
    def n_shots(self) -> int:
        """Number of shots (one source each)."""
        return len(self.src_x)

    @property
    def n_receivers(self) -> int:
        """Number of receivers per shot."""
        return len(self.rec_x)

    def sponge_strength(self, v_min_mps: Any) -> Any:
        """The recipe's sponge strength ``kappa`` in 1/s for a model whose slowest velocity is
        ``v_min_mps`` (float or tensor): ``3 v_min ln(1e7) / (2 (P - 1) dx)``."""
        return 3.0 * v_min_mps * math.log(1e7) / (2.0 * (self.pad_cells - 1) * self.dx_m)

    def stable_velocity_mps(self, v_min_mps: float) -> float:
        """Largest velocity in m/s that stays stable inside the recipe's sponge of a model
        whose slowest velocity is ``v_min_mps``.

        With damping ``d = kappa dt`` per step the scheme is stable while
        ``(32/3) (v dt/dx)^2 <= 4 - 2 d``; the same safety margin as ``CFL_LIMIT`` applies
        (without damping this gives ``CFL_LIMIT``).
        """
        damping = self.sponge_strength(float(v_min_mps)) * self.dt_s
        margin = CFL_LIMIT**2 / (3.0 / 8.0)
        courant = math.sqrt(max(0.0, margin * (4.0 - 2.0 * damping) * 3.0 / 32.0))
        return courant * self.dx_m / self.dt_s

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return {**asdict(self), "src_x": list(self.src_x), "rec_x": list(self.rec_x)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Acquisition:
        """Inverse of :meth:`to_dict`; missing keys take OpenFWI defaults, unknown keys fail."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown acquisition key(s) {unknown}; known keys: {sorted(known)}")
        try:
            return cls(**d)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid acquisition {d}: {exc}") from None


def ricker(peak_freq_hz: float, dt_s: float, nt: int) -> np.ndarray:
    """OpenFWI's Ricker wavelet, zero-padded (or cut) to ``nt`` samples.

    Length ``L = 2*floor(2.2/(f*dt)/2) + 1`` (147 samples at 15 Hz, 1 ms), peak at sample
    ``(L-1)/2`` (73, i.e. 73 ms): ``w(k) = (1 - 2a^2) exp(-a^2)``, ``a = ((L-1)/2 - k) f dt pi``.

    Args:
        peak_freq_hz: Peak frequency in Hz (> 0; :class:`Acquisition` checks its own).
        dt_s: Sample interval in seconds (> 0).
        nt: Number of samples returned (>= 1).

    Returns:
        float32 array ``(nt,)``, unitless (peak value 1).
    """
    length = 2 * math.floor(2.2 / (peak_freq_hz * dt_s) / 2) + 1
    centre = (length - 1) // 2
    a = (centre - np.arange(length, dtype=np.float64)) * peak_freq_hz * dt_s * np.pi
    w = (1.0 - 2.0 * a**2) * np.exp(-(a**2))
    out = np.zeros(nt, dtype=np.float64)
    out[: min(nt, length)] = w[:nt]
    return out.astype(np.float32)


def check_velocity(velocity_mps: Any, acquisition: Acquisition | None = None) -> torch.Tensor:
    """Validate a velocity model batch; return it as a float32 ``(N, nz, nx)`` tensor (the
    autograd graph of tensor input is kept).

    Fails with a one-line :class:`~velocitygan.errors.DataError` (a ``VelocityGANError``) for a
    wrong shape, NaN/Inf, velocities outside (0, 10000) m/s, or a velocity too fast for the time
    step (``v*dt/dx`` below 0.606 for the 4th-order 2-D scheme, a little less inside the
    sponge: :meth:`Acquisition.stable_velocity_mps`).

    Args:
        velocity_mps: Velocity in m/s, ``(nz,nx)``, ``(N,nz,nx)`` or ``(N,1,nz,nx)``.
        acquisition: Geometry and discretisation (default: OpenFWI).
    """
    acq = acquisition or Acquisition()
    if not isinstance(velocity_mps, torch.Tensor):
        arr = np.asarray(velocity_mps)
        if not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"velocity must be a numeric array in m/s, got dtype {arr.dtype}")
        v = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    else:
        v = velocity_mps if velocity_mps.dtype == torch.float32 else velocity_mps.float()
    grid = (acq.nz, acq.nx)
    shape = tuple(v.shape)
    if v.ndim == 4 and shape[1] == 1:
        v = v[:, 0]
    elif v.ndim == 2:
        v = v[None]
    if v.ndim != 3 or tuple(v.shape[1:]) != grid or v.shape[0] == 0:
        raise DataError(f"velocity has shape {shape}; expected {grid}, (N, {grid[0]}, {grid[1]}) "
                        f"or (N, 1, {grid[0]}, {grid[1]}) in m/s (or set Acquisition nz/nx to "
                        "match)")
    with torch.no_grad():
        finite = torch.isfinite(v)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise DataError(f"velocity contains {bad} NaN/Inf value(s); fix or drop those models")
        lows, highs = v.amin(dim=(1, 2)).tolist(), v.amax(dim=(1, 2)).tolist()
    v_min, v_max = min(lows), max(highs)
    if v_min <= 0 or v_max >= MAX_VELOCITY_MPS:
        raise DataError(f"velocity range [{v_min:g}, {v_max:g}] m/s is outside "
                        f"(0, {MAX_VELOCITY_MPS:g}) m/s; give velocities in m/s (not km/s, not "
                        "normalised)")
    limits = [acq.stable_velocity_mps(low) for low in lows]
    worst = max(range(len(highs)), key=lambda i: highs[i] - limits[i])
    if highs[worst] > limits[worst]:
        raise DataError(f"velocity {highs[worst]:g} m/s (model {worst}) is unstable with "
                        f"dt_s={acq.dt_s:g}, dx_m={acq.dx_m:g} and the sponge of its slowest "
                        f"velocity {lows[worst]:g} m/s (v*dt/dx="
                        f"{highs[worst] * acq.dt_s / acq.dx_m:.3f}); lower dt_s or keep v <= "
                        f"{limits[worst]:.0f} m/s")
    return v
