"""Benchmark the raw forward operator: samples/s (one sample = all shots of one 70x70 model).

Usage:
    PYTHONPATH=src python bench/bench_physics.py --device cpu --quick
    PYTHONPATH=src python bench/bench_physics.py --device cuda --backend torch \
        --batch 1,16,64,256 --compile none,default

Prints the machine, threads, device and torch version, then one row per configuration. Compiled
variants are checked against the eager result (relative L2) so a speed-up never hides an error.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

from velocitygan.physics import Acquisition, deepwave_available, forward_model, ricker
from velocitygan.physics.torch_backend import simulate_torch


def layered_models(n: int, acq: Acquisition, seed: int = 0) -> np.ndarray:
    """``n`` random layered maps in 1500-4500 m/s (increasing with depth, some inversions)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, acq.nz, acq.nx), np.float32)
    for i in range(n):
        depths = np.sort(
            rng.choice(np.arange(5, acq.nz - 3), size=rng.integers(3, 7), replace=False)
        )
        v = np.sort(rng.uniform(1500, 4500, size=len(depths) + 1))
        layer = np.searchsorted(depths, np.arange(acq.nz), side="right")
        out[i] = v[layer][:, None]
    return out


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_call(fn, device: str, repeats: int) -> tuple[float, torch.Tensor]:
    """Median wall time in seconds of ``repeats`` calls (after the caller's warm-up)."""
    times, out = [], None
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def run_one(backend: str, compile_mode: str | None, batch: int, args, acq: Acquisition) -> dict:
    """``compile_mode``: None (eager), "auto" (forward_model's default path for the device) or
    "default" (the torch recipe through torch.compile)."""
    models = torch.from_numpy(layered_models(batch, acq)).to(args.device)
    wavelet = torch.from_numpy(ricker(acq.peak_freq_hz, acq.dt_s, acq.nt)).to(args.device)

    def call() -> torch.Tensor:
        with torch.no_grad():
            if compile_mode in (None, "auto"):
                return forward_model(models, acq, backend=backend, eager=compile_mode is None)
            return simulate_torch(models, acq, wavelet, compiled=True)

    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    call()  # warm-up (includes compilation)
    sync(args.device)
    warm_s = time.perf_counter() - t0
    seconds, out = time_call(call, args.device, args.repeats)
    row = {
        "backend": backend,
        "compile": compile_mode or "none",
        "batch": batch,
        "s": seconds,
        "warm_s": warm_s,
        "rate": batch / seconds,
        "out": out,
    }
    if args.device == "cuda":
        row["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def header(args) -> None:
    print(f"machine: {platform.node()} {platform.machine()} {platform.processor() or ''}".strip())
    print(
        f"python {platform.python_version()}  torch {torch.__version__}  "
        f"cpu cores {os.cpu_count()}  torch threads {torch.get_num_threads()}"
    )
    if args.device == "cuda":
        print(f"device: cuda {torch.cuda.get_device_name()}")
    else:
        print("device: cpu")
    if deepwave_available():
        import deepwave

        print(f"deepwave {getattr(deepwave, '__version__', '?')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--backend", default="all", help="torch, deepwave or all (comma list)")
    ap.add_argument("--batch", default=None, help="comma list of models per call")
    ap.add_argument(
        "--compile",
        default="none",
        help="torch backend: comma list of none/auto/default (none: eager; auto: the C++ "
             "kernel on the CPU, torch.compile on CUDA; default: torch.compile)",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch/deepwave CPU threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nt", type=int, default=1000, help="time samples (1000 = full fidelity)")
    ap.add_argument("--pad", type=int, default=120, help="torch sponge cells (120 = OpenFWI)")
    ap.add_argument("--quick", action="store_true", help="smoke run: nt=100, batch 1,2, 1 repeat")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is visible", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    if args.quick:
        args.nt, args.repeats = 100, 1
        args.batch = args.batch or "1,2"
    default_batches = "1,16,64,256" if args.device == "cuda" else "1,4"
    batches = [int(b) for b in (args.batch or default_batches).split(",")]
    backends = ["torch", "deepwave"] if args.backend == "all" else args.backend.split(",")
    if "deepwave" in backends and not deepwave_available():
        backends.remove("deepwave")
        print("deepwave not installed: skipping it")
    modes = [None if m == "none" else m for m in args.compile.split(",")]
    if set(modes) - {None, "auto", "default"}:
        ap.error(f"--compile {args.compile}: use none, auto or default")
    acq = Acquisition(nt=args.nt, pad_cells=args.pad)
    header(args)
    print(
        f"problem: {acq.n_shots} shots x {acq.n_receivers} receivers x nt={acq.nt}, "
        f"grid {acq.nz}x{acq.nx} (+{acq.pad_cells}-cell sponge for torch)"
    )
    print(
        f"{'backend':9} {'compile':16} {'batch':>5} {'s/call':>9} {'samples/s':>10} "
        f"{'warm-up s':>9} {'peak MiB':>9} {'relL2 vs eager':>14}"
    )
    for backend in backends:
        for batch in batches:
            eager = None
            for mode in modes if backend == "torch" else [None]:
                row = run_one(backend, mode, batch, args, acq)
                out = row.pop("out")
                eager = out if mode is None else eager
                err = (
                    ""
                    if eager is None or mode is None
                    else f"{float((out - eager).norm() / eager.norm()):.2e}"
                )
                peak = f"{row['peak_mib']:.0f}" if "peak_mib" in row else "-"
                print(
                    f"{backend:9} {row['compile']:16} {batch:5d} {row['s']:9.3f} "
                    f"{row['rate']:10.2f} {row['warm_s']:9.1f} {peak:>9} {err:>14}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
