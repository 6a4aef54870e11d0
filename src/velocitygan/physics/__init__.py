"""Seismic forward modelling: velocity maps (m/s) -> OpenFWI-style shot gathers.

Two backends; ``"auto"`` (the default everywhere) is ``"torch"`` on every device, so the same
command and seed give the same data on any machine:

* ``"torch"``: OpenFWI's own finite-difference recipe (120-cell damping sponge) in plain PyTorch,
  all models and shots in one tensor; differentiable, runs on CPU and CUDA. By default it runs
  the fastest exact path for the device: on the CPU a C++ kernel with the recipe's exact
  adjoint (:mod:`~velocitygan.physics.cpu_kernel`), on CUDA ``torch.compile`` without autograd.
* ``"deepwave"`` (by name only, where the deepwave package is installed): the fast
  approximation, a C/CUDA propagator whose PML absorbs the late boundary echo that the recipe's
  sponge leaves (:mod:`velocitygan.physics.deepwave_backend`).

Convention (identical to the data published by OpenFWI): output ``(N, shots, nt, receivers)``
float32 raw pressure, sample ``t`` at time ``t * dt``; a 15 Hz Ricker whose peak is at sample 73
(73 ms) is injected as ``p[src] += (v[src] dt)^2 w(t)``, so the direct wave at offset ``r`` peaks
near ``73 ms + r / v`` (a few ms later in 2-D) with POSITIVE polarity, and the largest positive
amplitudes (~+50) exceed the largest negative ones (~-27).
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import torch

from velocitygan.device import resolve_device
from velocitygan.errors import ConfigError
from velocitygan.physics.acquisition import Acquisition, check_velocity, ricker
from velocitygan.physics.torch_backend import simulate_torch

__all__ = ["Acquisition", "BACKENDS", "check_velocity", "cpu_kernel_available",
           "deepwave_available", "forward_model", "resolve_backend", "ricker", "simulate_torch"]

BACKENDS = ("deepwave", "torch")
_AUTO_BROKEN: set[str] = set()  # device types whose fast path failed here: eager after that


def cpu_kernel_available() -> bool:
    """Whether the C++ recipe kernel builds and passes its check in this process.

    The first failure is warned once (with the reason) and remembered: the torch backend then
    runs eagerly on the CPU for the rest of the process.
    """
    if "cpu" in _AUTO_BROKEN:
        return False
    from velocitygan.physics.cpu_kernel import load_library

    try:
        load_library()
    except ConfigError as exc:
        _AUTO_BROKEN.add("cpu")
        warnings.warn(f"the C++ recipe kernel unavailable ({exc}); simulating with the eager "
                      "PyTorch recipe (about 8x slower)", stacklevel=3)
        return False
    return True


def deepwave_available() -> bool:
    """Whether the deepwave package is importable (the ``"deepwave"`` backend)."""
    return importlib.util.find_spec("deepwave") is not None


def resolve_backend(backend: str) -> str:
    """The backend that simulates: ``"auto"`` is ``"torch"`` (OpenFWI's recipe) on every device.

    Raises:
        ConfigError: an unknown name.
    """
    name = "torch" if backend == "auto" else backend
    if name not in BACKENDS:
        raise ConfigError(f"unknown physics backend {backend!r}; choose auto, deepwave or torch")
    return name


def forward_model(velocity_mps: Any, acquisition: Acquisition | None = None, *,
                  backend: str = "auto", device: str | torch.device | None = None,
                  source_wavelet: Any = None, eager: bool = False) -> torch.Tensor:
    """Simulate OpenFWI-style seismic data for a batch of velocity maps.

    Args:
        velocity_mps: Velocity in m/s, ``(nz,nx)``, ``(N,nz,nx)`` or ``(N,1,nz,nx)``, numpy or
            torch. A tensor with ``requires_grad`` yields a differentiable output.
        acquisition: Geometry and discretisation (default: OpenFWI's).
        backend: ``"auto"`` or ``"torch"`` (OpenFWI's recipe, exact), or ``"deepwave"`` (the
            fast approximation; no late boundary echo, see the module docstring).
        device: Where to simulate; default: the input tensor's device (CPU for numpy).
        source_wavelet: Optional ``(<=nt,)`` source time function; default the Ricker wavelet.
        eager: torch backend: run the eager PyTorch recipe (autograd through every step)
            instead of the fastest exact path for the device (module docstring; the C++
            kernel, built with the system compiler on first use, is ~8x eager forward and ~3x
            with gradients, ``torch.compile`` ~10x on an H200), which runs eagerly where it
            fails (warned once). On CUDA, ``eager=True`` avoids compiling for each new batch
            shape and matches a gradient pass bit for bit.

    Returns:
        float32 tensor ``(N, n_shots, nt, n_receivers)`` on ``device``, OpenFWI's polarity and
        timing (see the module docstring).

    Raises:
        VelocityGANError: bad shape, NaN/Inf, velocity outside (0, 10000) m/s or unstable for
            ``dt_s``/``dx_m``, unknown backend — before any simulation starts.
    """
    acq = acquisition or Acquisition()
    name = resolve_backend(backend)
    v = check_velocity(velocity_mps, acq)
    dev = resolve_device(device) if device is not None else v.device
    v = v.to(dev)
    if source_wavelet is None:
        wavelet = torch.from_numpy(ricker(acq.peak_freq_hz, acq.dt_s, acq.nt)).to(dev)
    else:
        w = torch.as_tensor(source_wavelet, dtype=torch.float32).reshape(-1)
        if w.numel() > acq.nt or not bool(torch.isfinite(w).all()):
            raise ConfigError(f"source_wavelet must hold at most nt={acq.nt} finite samples, "
                              f"got {w.numel()}")
        wavelet = torch.cat([w, w.new_zeros(acq.nt - w.numel())]).to(dev)
    grad = torch.is_grad_enabled() and v.requires_grad
    with torch.set_grad_enabled(grad):
        if name == "deepwave":
            from velocitygan.physics.deepwave_backend import simulate_deepwave

            out = simulate_deepwave(v, acq, wavelet)
        elif eager:
            out = simulate_torch(v, acq, wavelet)
        else:
            out = _simulate_torch_auto(v, acq, wavelet, grad)
    return out.contiguous()


def _simulate_torch_auto(v: torch.Tensor, acq: Acquisition, wavelet: torch.Tensor,
                         grad: bool) -> torch.Tensor:
    """The C++ kernel on the CPU (with or without gradients), torch.compile on CUDA for
    forward-only runs; eager otherwise or after a failure (warned once per device type)."""
    kind = v.device.type
    if kind == "cpu" and cpu_kernel_available():
        from velocitygan.physics.cpu_kernel import simulate_cpu

        return simulate_cpu(v, acq, wavelet)  # differentiable: the library has the adjoint
    if kind == "cuda" and not grad and kind not in _AUTO_BROKEN:
        try:
            return simulate_torch(v, acq, wavelet, compiled=True)
        except Exception as exc:  # noqa: BLE001 - inductor/triton raise many types
            _AUTO_BROKEN.add(kind)
            warnings.warn(f"torch.compile unavailable ({type(exc).__name__}: {exc}); "
                          "simulating eagerly", stacklevel=3)
    return simulate_torch(v, acq, wavelet)
