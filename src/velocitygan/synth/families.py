"""Velocity-map families in the spirit of OpenFWI: FlatVel, CurveVel, FlatFault, CurveFault, Style.

OpenFWI never released its map generator or its parameters, so these are our own generators
whose parameters were chosen to give maps of the same character and, once forward-modelled with
the OpenFWI recipe, raw seismic amplitudes within 15 % of each published dataset's
``data_min``/``data_max`` (``bench/fingerprint.py`` measures it; ``bench/results/fingerprint.md``).

All maps are ``(70, 70)`` float32 in m/s on a 10 m grid, depth index 0 at the surface, clipped
to 1500-4500 m/s. Every sample draws from its own ``numpy.random.Generator`` seeded by
``(seed, family, sample index)``, so sample ``i`` of seed ``s`` is identical whatever the
batching or the number of worker processes.

* Layered families (``flatvel``, ``curvevel``, ``flatfault``, ``curvefault``) share
  :class:`LayeredParams`: a number of layers with random thicknesses; velocities drawn
  uniformly with a minimum contrast between any two layers, increasing with depth, or in random
  order for FlatVel-B and CurveVel-B (which can invert); a small lateral gradient per layer in
  the "-b" sets; interfaces flat or curved by a sum of sinusoids; then zero or more planar
  faults with a dip and a throw (the hanging wall slides along the fault plane); then an
  optional Gaussian smoothing.
* Style families use :class:`StyleParams`: OpenFWI made Style-A/B by style transfer of natural
  images onto velocity maps; we approximate them with smooth, irregular Gaussian random fields
  with a power-law spectrum (like natural images), a velocity trend with depth and a Gaussian
  smoothing ("-a" smoother, "-b" rougher and more contrasted).
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["FAMILIES", "VELOCITY_MAX_MPS", "VELOCITY_MIN_MPS", "LayeredParams", "StyleParams",
           "check_seed", "family_name", "family_params", "make_velocity_maps", "sample_rng"]

VELOCITY_MIN_MPS = 1500.0  # OpenFWI label range, m/s
VELOCITY_MAX_MPS = 4500.0
GRID_CELLS = 70  # maps are GRID_CELLS x GRID_CELLS at 10 m


@dataclasses.dataclass(frozen=True)
class LayeredParams:
    """Parameters of the layered families (lengths in 10 m grid cells, velocities in m/s).

    Attributes:
        n_layers: inclusive range of the number of layers.
        min_thickness_cells: thinnest layer (at the reference column, before curvature).
        velocity_mps: range the layer velocities are drawn from (uniform).
        min_contrast_mps: smallest velocity difference between any two layers (velocities
            are drawn uniformly under that constraint, so it always holds).
        increasing: True sorts layer velocities to increase with depth ("-a" sets);
            False keeps them in random order, so velocity inversions occur ("-b" sets).
        lateral_gradient_mps: per-layer velocity change across the 70 cells, drawn uniformly
            in +/- this value (0 gives laterally constant layers).
        curvature_cells: range of the interface undulation amplitude (0 = flat layers).
        curvature_wavelength_cells: range of the undulation wavelengths.
        n_waves: number of sinusoids summed per undulation.
        interface_jitter: fraction of the undulation that varies between interfaces
            (0 = all interfaces parallel).
        n_faults: inclusive range of the number of planar faults.
        fault_dip_deg: range of the fault dip from horizontal, degrees.
        fault_throw_cells: range of the vertical throw magnitude (normal or reverse at random).
        smooth_cells: Gaussian smoothing standard deviation (0 = sharp interfaces).
    """

    n_layers: tuple[int, int] = (3, 6)
    min_thickness_cells: int = 5
    velocity_mps: tuple[float, float] = (1500.0, 4500.0)
    min_contrast_mps: float = 150.0
    increasing: bool = True
    lateral_gradient_mps: float = 0.0
    curvature_cells: tuple[float, float] = (0.0, 0.0)
    curvature_wavelength_cells: tuple[float, float] = (40.0, 140.0)
    n_waves: int = 2
    interface_jitter: float = 0.3
    n_faults: tuple[int, int] = (0, 0)
    fault_dip_deg: tuple[float, float] = (45.0, 80.0)
    fault_throw_cells: tuple[float, float] = (5.0, 20.0)
    smooth_cells: float = 0.0


@dataclasses.dataclass(frozen=True)
class StyleParams:
    """Parameters of the Style families (smooth irregular random fields).

    Attributes:
        spectral_slope: amplitude spectrum ~ 1/k**slope (2 is typical of natural images;
            larger is smoother).
        correlation_cells: range of the largest structure size (low-wavenumber cut-off), cells.
        velocity_mps: overall velocity range of the maps.
        contrast_mps: range of the peak-to-peak velocity variation within one map.
        depth_trend: weight of a velocity increase with depth (0 = none, 1 = trend dominates).
        smooth_cells: Gaussian smoothing standard deviation applied last.
    """

    spectral_slope: float = 2.5
    correlation_cells: tuple[float, float] = (20.0, 60.0)
    velocity_mps: tuple[float, float] = (1500.0, 4500.0)
    contrast_mps: tuple[float, float] = (800.0, 2000.0)
    depth_trend: float = 0.5
    smooth_cells: float = 2.0


_CURVE = {"curvature_cells": (3.0, 10.0)}
_FAULTS_B = {"lateral_gradient_mps": 300.0, "n_faults": (1, 3), "fault_throw_cells": (8.0, 25.0),
             "fault_dip_deg": (30.0, 80.0)}  # one to three bigger faults, lateral gradients
FAMILIES: dict[str, LayeredParams | StyleParams] = {
    "flatvel-a": LayeredParams(n_layers=(2, 5)),  # flat layers, velocity increasing with depth
    # more flat layers, random velocity order, lateral gradients
    "flatvel-b": LayeredParams(n_layers=(3, 8), min_thickness_cells=4, increasing=False,
                               lateral_gradient_mps=300.0),
    "curvevel-a": LayeredParams(n_layers=(2, 5), **_CURVE),  # curved, increasing with depth
    # strongly curved layers, random velocity order
    "curvevel-b": LayeredParams(n_layers=(3, 8), min_thickness_cells=4, increasing=False,
                                lateral_gradient_mps=300.0, curvature_cells=(5.0, 15.0),
                                interface_jitter=0.6),
    "flatfault-a": LayeredParams(n_layers=(2, 5), n_faults=(1, 1)),  # cut by one fault
    "flatfault-b": LayeredParams(n_layers=(4, 8), **_FAULTS_B),
    "curvefault-a": LayeredParams(n_layers=(2, 5), n_faults=(1, 1), **_CURVE),
    "curvefault-b": LayeredParams(n_layers=(4, 8), curvature_cells=(5.0, 15.0),
                                  interface_jitter=0.6, **_FAULTS_B),
    # smooth random field (approximates OpenFWI's natural-image style transfer)
    "style-a": StyleParams(),
    "style-b": StyleParams(spectral_slope=2.0, correlation_cells=(10.0, 40.0),  # rougher
                           contrast_mps=(1200.0, 3000.0), depth_trend=0.6, smooth_cells=1.0),
}


def family_params(family: str, params: dict[str, Any] | None = None) -> LayeredParams | StyleParams:
    """Return the family's parameters, with ``params`` (field name -> value) overriding defaults.

    Raises:
        ConfigError: unknown family or parameter name, or a value of the wrong type or range.
    """
    defaults = FAMILIES[family_name(family)]
    if not params:
        return defaults
    names = {f.name for f in dataclasses.fields(defaults)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ConfigError(f"family {family!r}: unknown parameter(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(names))}")
    fixed = {k: _checked(family, k, v, getattr(defaults, k)) for k, v in params.items()}
    out = dataclasses.replace(defaults, **fixed)
    _check_consistent(family, out)
    return out


def _checked(family: str, key: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default`` (bool, int, float or a (lo, hi) pair of
    non-negative numbers with lo <= hi); ConfigError naming the parameter otherwise."""
    where = f"family {family!r}: {key} = {value!r}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} should be true or false")
        return value
    if isinstance(default, tuple):
        kind = type(default[0])
        if (not isinstance(value, list | tuple) or len(value) != 2
                or not all(_number(v, kind) for v in value)):
            raise ConfigError(f"{where} should be a pair [low, high] of "
                              f"{'integers' if kind is int else 'numbers'}")
        lo, hi = (kind(v) for v in value)
        if not 0 <= lo <= hi:
            raise ConfigError(f"{where} needs 0 <= low <= high")
        return (lo, hi)
    kind = type(default)
    if not _number(value, kind) or value < 0:
        raise ConfigError(f"{where} should be a finite number >= 0"
                          + (" (an integer)" if kind is int else ""))
    return kind(value)


def _number(value: Any, kind: type) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return np.isfinite(value) and (kind is not int or float(value).is_integer())


def _check_consistent(family: str, p: LayeredParams | StyleParams) -> None:
    """Relations between parameters that a generator relies on."""
    lo, hi = p.velocity_mps
    if not (VELOCITY_MIN_MPS <= lo and hi <= VELOCITY_MAX_MPS):
        raise ConfigError(f"family {family!r}: velocity_mps {list(p.velocity_mps)} must lie "
                          f"within {VELOCITY_MIN_MPS:g}-{VELOCITY_MAX_MPS:g} m/s")
    if isinstance(p, StyleParams):
        if p.correlation_cells[0] <= 0:
            raise ConfigError(f"family {family!r}: correlation_cells must be > 0 cells")
        return
    if p.n_layers[0] < 1 or p.min_thickness_cells < 1:
        raise ConfigError(f"family {family!r}: n_layers and min_thickness_cells must be >= 1")
    if (p.n_layers[1] - 1) * p.min_contrast_mps > hi - lo:
        raise ConfigError(
            f"family {family!r}: {p.n_layers[1]} layers {p.min_contrast_mps:g} m/s apart do "
            f"not fit in velocity_mps {lo:g}-{hi:g}; lower n_layers or min_contrast_mps")
    if p.curvature_wavelength_cells[0] <= 0:
        raise ConfigError(f"family {family!r}: curvature_wavelength_cells must be > 0 cells")
    if p.fault_dip_deg[0] <= 0 or p.fault_dip_deg[1] > 90:
        raise ConfigError(f"family {family!r}: fault_dip_deg must lie in (0, 90] degrees")


def check_seed(seed: int) -> None:
    """Raise :class:`ConfigError` unless ``seed`` can seed the per-sample generators."""
    if not 0 <= int(seed) < 2**63:
        raise ConfigError(f"seed must be an integer in [0, 2**63), got {seed}")


def family_name(family: str) -> str:
    """The key of :data:`FAMILIES` that ``family`` names (case and ``_``/``-`` insensitive)."""
    key = str(family).strip().lower().replace("_", "-")
    if key not in FAMILIES:
        raise ConfigError(f"unknown family {family!r}: use one of {', '.join(FAMILIES)}")
    return key


def sample_rng(family: str, seed: int, index: int) -> np.random.Generator:
    """Random generator of sample ``index`` of ``family`` for ``seed`` (batching-independent)."""
    return np.random.default_rng([int(seed), zlib.crc32(family.encode()), int(index)])


def make_velocity_maps(family: str, n: int, seed: int = 0, *, start: int = 0,
                       params: dict[str, Any] | None = None) -> np.ndarray:
    """Generate ``n`` velocity maps of a family.

    Args:
        family: one of :data:`FAMILIES` (``flatvel-a`` ... ``style-b``).
        n: number of maps.
        seed: dataset seed.
        start: index of the first sample (sample ``start + j`` is the same in any batch).
        params: overrides of the family's parameters (field name -> value).

    Returns:
        float32 array ``(n, 70, 70)`` in m/s, within 1500-4500 m/s.
    """
    name = family_name(family)
    p = family_params(name, params)
    if int(n) < 0:
        raise ConfigError(f"number of maps must be >= 0, got {n}")
    check_seed(seed)
    maker = _layered_map if isinstance(p, LayeredParams) else _style_map
    out = np.empty((int(n), GRID_CELLS, GRID_CELLS), dtype=np.float32)
    for j in range(int(n)):
        v = maker(p, sample_rng(name, seed, start + j))
        out[j] = np.clip(v, VELOCITY_MIN_MPS, VELOCITY_MAX_MPS)
    return out


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def gaussian_smooth(image: np.ndarray, sigma_cells: float) -> np.ndarray:
    """Separable Gaussian smoothing with edge replication (``sigma_cells`` in grid cells)."""
    if sigma_cells <= 0:
        return image
    radius = max(1, int(np.ceil(3 * sigma_cells)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma_cells) ** 2)
    kernel /= kernel.sum()
    out = np.asarray(image, dtype=np.float64)
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)],
                        mode="edge")
        out = np.apply_along_axis(np.convolve, axis, padded, kernel, mode="valid")
    return out


def _undulation(rng: np.random.Generator, p: LayeredParams):
    """A random function x -> vertical shift (cells): a sum of ``n_waves`` sinusoids."""
    amp = _uniform(rng, p.curvature_cells)
    waves = [(rng.uniform(0.3, 1.0), _uniform(rng, p.curvature_wavelength_cells),
              rng.uniform(0, 2 * np.pi)) for _ in range(max(1, p.n_waves))]
    norm = sum(w[0] for w in waves)

    def shift(x: np.ndarray) -> np.ndarray:
        s = sum(a * np.sin(2 * np.pi * x / lam + ph) for a, lam, ph in waves)
        return amp * s / norm

    return shift if amp > 0 else (lambda x: np.zeros_like(x))


def _layered_map(p: LayeredParams, rng: np.random.Generator) -> np.ndarray:
    n_layers = int(rng.integers(p.n_layers[0], p.n_layers[1] + 1))
    n_layers = max(1, min(n_layers, GRID_CELLS // max(1, p.min_thickness_cells)))
    # Interface depths: random cut points with at least min_thickness between them.
    spare = GRID_CELLS - n_layers * p.min_thickness_cells
    cuts = np.sort(rng.uniform(0, spare, size=n_layers - 1))
    depths = cuts + p.min_thickness_cells * np.arange(1, n_layers)
    velocity = _layer_velocities(rng, p, n_layers)
    gradient = rng.uniform(-1, 1, size=n_layers) * p.lateral_gradient_mps
    common = _undulation(rng, p)
    own = [_undulation(rng, p) for _ in range(n_layers - 1)]
    faults = [_random_fault(rng, p) for _ in range(int(rng.integers(p.n_faults[0],
                                                                     p.n_faults[1] + 1)))]
    z, x = np.mgrid[0:GRID_CELLS, 0:GRID_CELLS].astype(np.float64)
    for fault in faults:  # map each point back to where it was before faulting
        z, x = fault(z, x)
    mix = p.interface_jitter
    surfaces = np.stack([
        d + (1 - mix) * common(x) + mix * f(x) for d, f in zip(depths, own, strict=True)
    ]) if n_layers > 1 else np.zeros((0,) + z.shape)
    surfaces = np.maximum.accumulate(surfaces, axis=0)  # interfaces never cross
    layer = (z[None] >= surfaces).sum(axis=0)
    v = velocity[layer] + gradient[layer] * (x - GRID_CELLS / 2) / GRID_CELLS
    return gaussian_smooth(v, p.smooth_cells)


def _layer_velocities(rng: np.random.Generator, p: LayeredParams, n_layers: int) -> np.ndarray:
    """Uniform velocities at least ``min_contrast_mps`` apart (any two of them): sorted
    uniform draws over the range less the gaps, then the gaps added back (exactly the uniform
    distribution under that constraint); shuffled unless ``increasing``."""
    lo, hi = p.velocity_mps
    gap = min(p.min_contrast_mps, (hi - lo) / max(1, n_layers - 1))
    base = np.sort(rng.uniform(0.0, (hi - lo) - gap * (n_layers - 1), size=n_layers))
    velocity = lo + base + gap * np.arange(n_layers)
    return velocity if p.increasing else rng.permutation(velocity)


def _random_fault(rng: np.random.Generator, p: LayeredParams):
    """A planar fault: returns (z, x) -> pre-faulting coordinates of each point."""
    dip = np.deg2rad(_uniform(rng, p.fault_dip_deg))
    direction = rng.choice([-1.0, 1.0])  # dipping to the right or to the left
    x0 = rng.uniform(0.25, 0.75) * GRID_CELLS  # where the fault meets the surface
    throw = _uniform(rng, p.fault_throw_cells) * rng.choice([-1.0, 1.0])
    slip = throw / np.sin(dip)
    dz, dx = np.sin(dip), direction * np.cos(dip)  # unit vector down the fault plane

    def unfault(z: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        side = (x - x0) * dz - z * dx  # > 0: hanging wall side
        moved = side > 0
        return z - moved * slip * dz, x - moved * slip * dx

    return unfault


def _style_map(p: StyleParams, rng: np.random.Generator) -> np.ndarray:
    size = 2 * GRID_CELLS  # simulate on a larger periodic field, keep one corner
    k = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None, :] ** 2)
    k_low = 1.0 / _uniform(rng, p.correlation_cells)
    amplitude = 1.0 / np.maximum(k, k_low) ** p.spectral_slope
    noise = rng.standard_normal((size, size)) + 1j * rng.standard_normal((size, size))
    f = np.fft.ifft2(noise * amplitude).real[:GRID_CELLS, :GRID_CELLS]
    f = (f - f.min()) / max(float(np.ptp(f)), 1e-12)  # 0..1
    depth = np.linspace(0.0, 1.0, GRID_CELLS)[:, None]
    f = (1 - p.depth_trend) * f + p.depth_trend * depth
    f = (f - f.min()) / max(float(np.ptp(f)), 1e-12)
    contrast = _uniform(rng, p.contrast_mps)
    lo, hi = p.velocity_mps
    base = rng.uniform(lo, max(lo, hi - contrast))
    return gaussian_smooth(base + contrast * f, p.smooth_cells)
