"""OpenFWI's recipe as a small C++ kernel for the CPU, compiled on first use.

The eager PyTorch recipe streams every wavefield of the batch through memory a dozen times per
time step. ``recipe_cpu.cpp`` runs one shot at a time with both of its wavefields in the core's
cache and a SIMD inner loop; shots run in parallel threads (ctypes releases the GIL). Same
equations, source and receivers as :func:`~velocitygan.physics.torch_backend.simulate_torch`;
results differ from it by float32 rounding. Gradients with respect to velocity come from the
recipe's exact discrete adjoint in the same library (a torch autograd Function): the backward
pass runs the forward again keeping every field (``nt + 2`` fields, ~395 MB per thread on the
OpenFWI grid) and then the adjoint wavefield backwards in time.

The library is built on first use (:mod:`velocitygan.physics.cpu_build`) and checked against
the eager recipe, records and gradients, once per process before use.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from velocitygan.errors import ConfigError
from velocitygan.physics.acquisition import Acquisition
from velocitygan.physics.cpu_build import build_library, cache_dir
from velocitygan.physics.torch_backend import simulate_torch, source_amplitudes, sponge_axes

__all__ = ["load_library", "simulate_cpu"]

_LIBRARY: list[ctypes.CDLL] = []  # the loaded, checked library of this process
TOLERANCE = 1e-4  # relative L2; float32 rounding differences between implementations are ~1e-6


def load_library() -> ctypes.CDLL:
    """The compiled kernel, built if needed and checked against the eager recipe (cached).

    Raises:
        ConfigError: no compiler, compilation failed, or the kernel disagrees with the recipe.
    """
    if _LIBRARY:
        return _LIBRARY[0]
    lib = _open(build_library())
    ptr, i32, f32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
    common = [ptr, ptr, ptr, f32, ptr, i32, i32, i32, ptr, i32, i32, i32, i32]
    lib.recipe_shot.argtypes = [*common, ptr, ptr]
    lib.recipe_shot_grad.argtypes = [*common, ptr, ptr, ptr, ptr, ptr]
    lib.recipe_shot.restype = lib.recipe_shot_grad.restype = None
    _self_check(lib)
    _LIBRARY.append(lib)
    return lib


def _open(path: Path) -> ctypes.CDLL:
    """Load the library; a cached file that does not load (truncated, another machine's) is
    built again once."""
    try:
        return ctypes.CDLL(str(path))
    except OSError:
        path = build_library(rebuild=True)
    try:
        return ctypes.CDLL(str(path))
    except OSError as exc:
        raise ConfigError(f"cannot load the compiled CPU recipe kernel {path} "
                          f"({str(exc).splitlines()[0][:200]})") from None


def _self_check(lib: ctypes.CDLL) -> None:
    """Refuse a library whose records or gradients differ from the eager recipe's: a kernel that
    compiles but computes something else (a compiler, an architecture, a stale cached library)
    would produce output that looks like valid seismic data.

    The probe: a model varying with depth and laterally, a fast block, a damped sine source (a
    few dozen steps see real waves) and the gradient of a fixed weighted sum of the records.
    """
    acq = Acquisition(nz=12, nx=12, nt=60, pad_cells=6, src_x=(0, 7), rec_x=(0, 3, 4, 11))
    results = []
    # the caller may run under inference_mode or no_grad; the check needs autograd (and
    # tensors made outside inference mode)
    with torch.inference_mode(False), torch.enable_grad():
        z = torch.arange(acq.nz, dtype=torch.float32)[:, None]
        x = torch.arange(acq.nx, dtype=torch.float32)[None, :]
        v0 = (2000.0 + 80.0 * z + 40.0 * torch.cos(x))[None]
        v0[:, 6:, 3:6] = 3800.0
        steps = torch.arange(acq.nt, dtype=torch.float32)
        w = torch.sin(steps * 0.3) * torch.exp(-0.08 * steps)
        weights = torch.cos(torch.arange(acq.n_shots * acq.nt * acq.n_receivers) * 0.7).reshape(
            1, acq.n_shots, acq.nt, acq.n_receivers)
        for run in (lambda v: _simulate(lib, v, acq, w, threads=1),
                    lambda v: simulate_torch(v, acq, w)):
            v = v0.clone().requires_grad_(True)
            records = run(v)
            (grad,) = torch.autograd.grad((records * weights).sum(), v)
            results.append((records.detach(), grad))
    err = max(float((got - ref).norm() / ref.norm()) for got, ref in zip(*results, strict=True))
    if not err < TOLERANCE:
        raise ConfigError(f"the compiled CPU recipe kernel disagrees with the recipe (relative "
                          f"L2 {err:.1e}); delete {cache_dir()} and retry, or use eager mode")


@dataclass(frozen=True)
class _Plan:
    """What one call passes to the library besides the differentiated inputs."""

    lib: ctypes.CDLL
    acq: Acquisition
    kappa_dt: np.ndarray  # (N,)
    rel_z: np.ndarray
    rel_x: np.ndarray
    rec_x: np.ndarray  # receiver columns of the padded grid, int32
    threads: int

    def shot_args(self, alpha: np.ndarray, amp: np.ndarray, n: int, s: int) -> list[Any]:
        """The arguments both library functions start with, for shot ``s`` of model ``n``."""
        acq, pad = self.acq, self.acq.pad_cells
        height, width = alpha.shape[1:]
        return [_address(alpha[n]), _address(self.rel_z), _address(self.rel_x),
                float(self.kappa_dt[n]), _address(amp[n, s]), acq.src_z + pad,
                acq.src_x[s] + pad, acq.rec_z + pad, _address(self.rec_x, np.int32),
                len(self.rec_x), height, width, acq.nt]

    def each_shot(self, n_models: int, fn: Callable[[int, int, int], None]) -> None:
        """Run ``fn(thread, model, shot)`` for every shot on ``self.threads`` threads."""
        jobs = [(n, s) for n in range(n_models) for s in range(self.acq.n_shots)]
        threads = max(1, min(self.threads, len(jobs)))

        def worker(k: int) -> None:  # jobs k, k + threads, ...: one scratch per thread
            for n, s in jobs[k::threads]:
                fn(k, n, s)

        if threads == 1:
            worker(0)
        else:  # ctypes releases the GIL during each call
            with ThreadPoolExecutor(threads, thread_name_prefix="vgan-recipe") as pool:
                list(pool.map(worker, range(threads)))


def _address(a: np.ndarray, dtype: type = np.float32) -> int:
    """Address of a C-contiguous array of ``dtype``; anything else would be misread in C."""
    if a.dtype != dtype or not a.flags.c_contiguous:
        raise TypeError(f"internal: kernel argument is {a.dtype}, contiguous="
                        f"{a.flags.c_contiguous}; expected contiguous {np.dtype(dtype)}")
    return a.ctypes.data


def _array(t: torch.Tensor) -> np.ndarray:
    """``t`` as a C-contiguous float32 array for the library (shares memory where it can)."""
    return t.detach().float().contiguous().numpy()


def _threads_for_memory(threads: int, bytes_per_thread: int) -> int:
    """At most ``threads``, and no more than half of MemAvailable holds (at least 1; all
    ``threads`` where /proc/meminfo does not say)."""
    try:
        line = next(line for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemAvailable:"))
        available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError, StopIteration):
        return threads
    return max(1, min(threads, available // 2 // max(1, bytes_per_thread)))


def _forward(plan: _Plan, alpha: np.ndarray, amp: np.ndarray) -> np.ndarray:
    n_models, height, width = alpha.shape
    acq = plan.acq
    out = np.empty((n_models, acq.n_shots, acq.nt, acq.n_receivers), np.float32)
    scratch = [np.empty(2 * (height + 4) * (width + 4), np.float32) for _ in range(plan.threads)]
    plan.each_shot(n_models, lambda k, n, s: plan.lib.recipe_shot(
        *plan.shot_args(alpha, amp, n, s), _address(out[n, s]), _address(scratch[k])))
    return out


def _backward(plan: _Plan, alpha: np.ndarray, amp: np.ndarray,
              grad_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dJ/dalpha ``(N, H, W)`` and dJ/dsrc_amp ``(N, S, nt)`` from dJ/dtraces."""
    n_models, height, width = alpha.shape
    acq, plane = plan.acq, (height + 4) * (width + 4)
    grad_alpha = np.empty((n_models, acq.n_shots, height, width), np.float32)
    grad_amp = np.empty((n_models, acq.n_shots, acq.nt), np.float32)
    # (nt + 2) fields per thread, allocated when first used: fewer threads where memory is short
    plan = replace(plan, threads=_threads_for_memory(plan.threads, (acq.nt + 2) * plane * 4))
    history = [None] * plan.threads
    work = [np.empty(3 * plane, np.float32) for _ in range(plan.threads)]

    def shot(k: int, n: int, s: int) -> None:
        if history[k] is None:
            history[k] = np.empty((acq.nt + 2) * plane, np.float32)
        plan.lib.recipe_shot_grad(
            *plan.shot_args(alpha, amp, n, s), _address(grad_out[n, s]),
            _address(grad_alpha[n, s]), _address(grad_amp[n, s]), _address(history[k]),
            _address(work[k]))

    plan.each_shot(n_models, shot)
    return grad_alpha.sum(axis=1), grad_amp


class _Recipe(torch.autograd.Function):
    """Records from ``alpha`` and ``src_amp`` through the library; its adjoint for backward."""

    @staticmethod
    def forward(ctx: Any, alpha: torch.Tensor, src_amp: torch.Tensor, plan: _Plan) -> torch.Tensor:
        ctx.plan = plan
        ctx.save_for_backward(alpha, src_amp)
        return torch.from_numpy(_forward(plan, _array(alpha), _array(src_amp)))

    @staticmethod
    @once_differentiable  # the adjoint is not itself differentiable: no double backward
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        alpha, src_amp = ctx.saved_tensors
        grad_alpha, grad_amp = _backward(ctx.plan, _array(alpha), _array(src_amp), _array(grad_out))
        return torch.from_numpy(grad_alpha), torch.from_numpy(grad_amp), None


def _simulate(lib: ctypes.CDLL, v: torch.Tensor, acq: Acquisition, wavelet: torch.Tensor,
              threads: int) -> torch.Tensor:
    """The recipe's records; differentiable with respect to ``v`` through torch autograd."""
    pad = acq.pad_cells
    v_pad = F.pad(v[:, None], (pad, pad, pad, pad), mode="replicate")[:, 0]
    alpha = (v_pad * float(acq.dt_s / acq.dx_m)) ** 2  # (N, H, W)
    src_amp = source_amplitudes(v, acq, wavelet).float()  # (N, S, nt); carries wavelet grads
    kappa = acq.sponge_strength(v.detach().amin(dim=(1, 2)))  # the sponge is not the model
    rel_z, rel_x = (np.ascontiguousarray(a.numpy(), np.float32) for a in sponge_axes(acq))
    plan = _Plan(lib=lib, acq=acq, kappa_dt=(kappa * acq.dt_s).numpy(), rel_z=rel_z, rel_x=rel_x,
                 rec_x=(np.asarray(acq.rec_x) + pad).astype(np.int32), threads=threads)
    return _Recipe.apply(alpha, src_amp, plan)


def simulate_cpu(velocity_mps: torch.Tensor, acquisition: Acquisition, wavelet: torch.Tensor, *,
                 threads: int | None = None) -> torch.Tensor:
    """Simulate all shots of all models with the compiled CPU kernel.

    Args:
        velocity_mps: ``(N, nz, nx)`` velocity in m/s on the CPU, checked by the caller
            (:func:`~velocitygan.physics.forward_model`).
        acquisition: Geometry and discretisation.
        wavelet: ``(nt,)`` source time function on the CPU (its gradient is kept).
        threads: Shots simulated in parallel (default ``torch.get_num_threads()``).

    Returns:
        ``(N, n_shots, nt, n_receivers)`` float32 pressure at the receivers, on the CPU;
        differentiable with respect to ``velocity_mps`` and ``wavelet`` when they require grad.
    """
    return _simulate(load_library(), velocity_mps.float(), acquisition, wavelet.float(),
                     threads or torch.get_num_threads())
