"""Host-memory reuse (``velocitygan.hostmem``): the same CPU work with glibc's default
allocator and with freed blocks kept for reuse, each mode in a fresh process.

Cases (full-size networks, seconds per call, median of ``--repeats`` calls after one warm-up):
inference at batch 64 (eager fp32; channels_last + bf16), one generator training step at
batch 16 (L1 loss; eager fp32; channels_last + bf16) and the deepwave forward operator (2
samples). Physics-driven FWI is not in the table: on our 2-core VM its time per call varied
from 2.7 to 5.5 s (2 samples, 4 iterations) in both modes, with no difference between them.

Usage:
  PYTHONPATH=src python bench/bench_hostmem.py        # writes results/hostmem_cpu.md
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from bench_train import machine

from velocitygan.hostmem import reuse_freed_memory
from velocitygan.models import InversionNet
from velocitygan.physics import forward_model

MODES = ("default", "reuse")


def seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one untimed call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def network_cases(repeats: int) -> dict[str, float]:
    """Inference and generator-step timings, eager fp32 and channels_last + bf16."""
    out = {}
    for fast in (False, True):
        tag = "channels_last + bf16" if fast else "eager fp32"
        infer, step = _network_calls(fast)
        out[f"inference, batch 64, {tag}"] = seconds(infer, repeats)
        out[f"generator step, batch 16, {tag}"] = seconds(step, repeats)
    return out


def _network_calls(fast: bool) -> tuple[Callable[[], None], Callable[[], None]]:
    """A full-size InversionNet's inference (batch 64) and L1 training step (batch 16)."""
    torch.manual_seed(0)
    fmt = torch.channels_last if fast else torch.contiguous_format
    net = InversionNet().to(memory_format=fmt)
    x64 = torch.randn(64, 5, 1000, 70).contiguous(memory_format=fmt)
    x16, y16 = x64[:16].contiguous(memory_format=fmt), torch.rand(16, 1, 70, 70) * 2 - 1

    def infer() -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            net.eval()(x64)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            pred = net.train()(x16)
        (pred.float() - y16).abs().mean().backward()

    return infer, step


def physics_cases(repeats: int) -> dict[str, float]:
    """The deepwave forward operator (skipped when deepwave is not installed)."""
    try:
        import deepwave  # noqa: F401
    except ImportError:
        return {}
    v = np.full((2, 70, 70), 2000.0, np.float32)
    v[:, 35:] = 3000.0
    return {"forward model, deepwave, 2 samples": seconds(
        lambda: forward_model(v, backend="deepwave"), repeats)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "hostmem_cpu.md")
    p.add_argument("--mode", choices=MODES, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:  # one fresh process per mode: the setting is process-wide and one-way
        took = reuse_freed_memory() if args.mode == "reuse" else False
        res = network_cases(args.repeats) | physics_cases(args.repeats)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(json.dumps({"took": took, "seconds": res, "peak_mb": peak_mb}))
        return
    runs = {}
    for mode in MODES:
        cmd = [sys.executable, __file__, "--mode", mode, "--repeats", str(args.repeats)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    if not runs["reuse"]["took"]:
        print("note: this C library has no mallopt knobs; both modes are the same")
    lines = [f"Machine: {machine('cpu')}; median of {args.repeats} calls per case", "",
             "| case | default allocator (s) | reuse (s) | speed-up |", "|---|---|---|---|"]
    for case, base in runs["default"]["seconds"].items():
        new = runs["reuse"]["seconds"][case]
        lines.append(f"| {case} | {base:.3f} | {new:.3f} | {base / new:.2f}x |")
    lines += ["", "Peak resident memory of the process over all cases: default allocator "
              f"{runs['default']['peak_mb']:.0f} MB, reuse {runs['reuse']['peak_mb']:.0f} MB."]
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Host-memory reuse (bench/bench_hostmem.py)\n\n" + "\n".join(lines)
                        + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
