"""OpenFWI's recipe as a small C++ kernel for the CPU, compiled on first use.

The eager PyTorch recipe streams every wavefield of the batch through memory a dozen times per
time step. ``recipe_cpu.cpp`` runs one shot at a time with both of its wavefields in the core's
cache and a SIMD inner loop; shots run in parallel threads (ctypes releases the GIL). Same
equations, source and receivers as :func:`~velocitygan.physics.torch_backend.simulate_torch`,
forward only (no autograd); results differ from it by float32 rounding.

The library is built with the system C++ compiler (``$CXX``, else ``g++`` or ``c++``) into
``$VELOCITYGAN_CACHE`` (default ``~/.cache/velocitygan``), named by a hash of the source, the
compiler and the flags, and checked against the eager recipe once per process before use.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from velocitygan.errors import ConfigError
from velocitygan.physics.acquisition import Acquisition
from velocitygan.physics.kernel_check import TOLERANCE, recipe_disagreement
from velocitygan.physics.torch_backend import sponge_axes, sponge_profile

__all__ = ["SOURCE_FILE", "cache_dir", "load_library", "simulate_cpu"]

SOURCE_FILE = Path(__file__).with_name("recipe_cpu.cpp")

_LIBRARY: list[ctypes.CDLL] = []  # the loaded, checked library of this process


def cache_dir() -> Path:
    """Folder for compiled kernels: ``$VELOCITYGAN_CACHE`` or ``~/.cache/velocitygan``."""
    return Path(os.environ.get("VELOCITYGAN_CACHE") or Path.home() / ".cache" / "velocitygan")


def _compiler() -> str:
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    raise ConfigError("the CPU recipe kernel needs a C++ compiler (g++); install one or set CXX")


def _flags() -> list[str]:
    flags = ["-O3", "-std=c++17", "-shared", "-fPIC"]
    if platform.machine() in ("x86_64", "AMD64"):
        try:
            cpu = Path("/proc/cpuinfo").read_text().split()
        except OSError:
            cpu = []
        if "avx2" in cpu and "fma" in cpu:
            flags += ["-mavx2", "-mfma"]
    return flags


def _build() -> Path:
    """Compile the kernel into the cache (once per source, compiler and flags); return its path."""
    compiler, flags = _compiler(), _flags()
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                                 timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"cannot run the C++ compiler {compiler}: {exc}") from None
    key = hashlib.sha256(
        "\0".join([SOURCE_FILE.read_text(), compiler, version, *flags]).encode()
    ).hexdigest()[:16]
    folder = cache_dir()
    target = folder / f"recipe_cpu-{key}.so"
    if target.exists():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".recipe_cpu-", suffix=".so", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise ConfigError(f"cannot write the compiled kernel to {folder} ({exc}); "
                          "set VELOCITYGAN_CACHE to a writable folder") from None
    try:
        done = subprocess.run([compiler, *flags, str(SOURCE_FILE), "-o", tmp],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ConfigError(f"compiling the CPU recipe kernel failed: {last}")
        os.replace(tmp, target)  # atomic: another process never sees half a library
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def load_library() -> ctypes.CDLL:
    """The compiled kernel, built if needed and checked against the eager recipe (cached).

    Raises:
        ConfigError: no compiler, compilation failed, or the kernel disagrees with the recipe.
    """
    if _LIBRARY:
        return _LIBRARY[0]
    lib = ctypes.CDLL(str(_build()))
    ptr, i32 = ctypes.c_void_p, ctypes.c_int
    lib.recipe_shot.argtypes = [ptr, ptr, ptr, ctypes.c_float, ptr, i32, i32, i32, ptr,
                                i32, i32, i32, i32, ptr, ptr]
    lib.recipe_shot.restype = None
    _self_check(lib)
    _LIBRARY.append(lib)
    return lib


def _self_check(lib: ctypes.CDLL) -> None:
    """Refuse a library that computes something other than the recipe."""
    acq = Acquisition(nz=12, nx=12, nt=60, pad_cells=6, src_x=(0, 7), rec_x=(0, 3, 4, 11))
    err = recipe_disagreement(lambda v, a, w: _run(lib, v, a, w, threads=1), acq)
    if not err < TOLERANCE:
        raise ConfigError(f"the compiled CPU recipe kernel disagrees with the recipe (relative "
                          f"L2 {err:.1e}); delete {cache_dir()} and retry, or use eager mode")


def _run(lib: ctypes.CDLL, v: torch.Tensor, acq: Acquisition, wavelet: torch.Tensor,
         threads: int) -> torch.Tensor:
    pad = acq.pad_cells
    n_models, n_shots = v.shape[0], acq.n_shots
    v_pad = F.pad(v[:, None], (pad, pad, pad, pad), mode="replicate")[:, 0]
    alpha = ((v_pad * (acq.dt_s / acq.dx_m)) ** 2).contiguous().numpy()  # (N, H, W)
    height, width = alpha.shape[1:]
    kappa, _ = sponge_profile(acq, v.amin(dim=(1, 2)))
    kappa_dt = (kappa * acq.dt_s).numpy()
    rel_z, rel_x = (np.ascontiguousarray(a.numpy(), np.float32) for a in sponge_axes(acq))
    src_x = torch.tensor(acq.src_x)
    beta = (v[:, acq.src_z, src_x] * acq.dt_s) ** 2  # (N, S): (v dt)^2 at each source
    src_amp = (beta[:, :, None] * wavelet.float()[None, None, :]).contiguous().numpy()
    rec_x = np.asarray(acq.rec_x, np.int32) + pad
    out = np.empty((n_models, n_shots, acq.nt, acq.n_receivers), np.float32)
    jobs = [(n, s) for n in range(n_models) for s in range(n_shots)]
    threads = max(1, min(threads, len(jobs)))
    scratch = np.empty((threads, 2 * (height + 4) * (width + 4)), np.float32)

    def address(a: np.ndarray) -> int:
        return a.ctypes.data

    def worker(k: int) -> None:  # jobs k, k + threads, ...: a fixed scratch per thread
        for n, s in jobs[k::threads]:
            lib.recipe_shot(
                address(alpha[n]), address(rel_z), address(rel_x), float(kappa_dt[n]),
                address(src_amp[n, s]), acq.src_z + pad, acq.src_x[s] + pad, acq.rec_z + pad,
                address(rec_x), len(rec_x), height, width, acq.nt, address(out[n, s]),
                address(scratch[k]),
            )

    if threads == 1:
        worker(0)
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="vgan-recipe") as pool:
            list(pool.map(worker, range(threads)))
    return torch.from_numpy(out)


def simulate_cpu(
    velocity_mps: torch.Tensor,
    acquisition: Acquisition,
    wavelet: torch.Tensor,
    *,
    threads: int | None = None,
) -> torch.Tensor:
    """Simulate all shots of all models with the compiled CPU kernel.

    Args:
        velocity_mps: ``(N, nz, nx)`` float32 velocity in m/s (checked), on the CPU.
        acquisition: Geometry and discretisation.
        wavelet: ``(nt,)`` source time function on the CPU.
        threads: Shots simulated in parallel (default ``torch.get_num_threads()``).

    Returns:
        ``(N, n_shots, nt, n_receivers)`` float32 pressure at the receivers, on the CPU.
    """
    if velocity_mps.device.type != "cpu":
        raise ConfigError("the CPU recipe kernel needs CPU tensors; use compile_mode='auto'")
    lib = load_library()
    v = velocity_mps.detach().float().contiguous()
    return _run(lib, v, acquisition, wavelet.detach().cpu(), threads or torch.get_num_threads())
