"""Inference latency and throughput of the full-size InversionNet (the VelocityGAN generator).

Backends: PyTorch eager fp32; PyTorch channels_last + bf16 autocast (the fast setting measured
in bench/bench_models.py); ONNX Runtime (CPU execution provider, the bare network exported by
velocitygan.export). Batch sizes 1 (latency of one survey record) and 64 (throughput).
Weights are random: speed does not depend on their values.

Usage:
  PYTHONPATH=src python bench/bench_inference.py                      # CPU, batches 1 and 64
  PYTHONPATH=src python bench/bench_inference.py --device cuda --batch 1 64 256
  PYTHONPATH=src python bench/bench_inference.py --quick              # fewer repetitions
  ... --out bench/results/inference_cpu.md                            # also write markdown

Prints a markdown table: ms per sample (batch time / batch size), samples/s, and how many times
faster than physics-based FWI of one model (about 4 minutes on these 2 CPU cores: deepwave,
300 Adam iterations).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from velocitygan.models import InversionNet, count_parameters

FWI_SECONDS_PER_MODEL = 240.0  # ~4 min: deepwave FWI, 300 Adam iterations, 2 CPU cores


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_call(fn: Callable[[], object], device: str, reps: int, warmup: int) -> float:
    """Median wall time of ``fn`` in seconds over ``reps`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def torch_runner(model: InversionNet, x: torch.Tensor, device: str, fast: bool):
    """Inference closure: eager fp32, or channels_last + bf16 autocast when ``fast``."""
    if fast:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    dev_type = device.split(":")[0]

    def run() -> torch.Tensor:
        ctx = torch.autocast(dev_type, dtype=torch.bfloat16) if fast else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            return model(x)

    return run


def onnx_runner(path: Path, x: torch.Tensor, threads: int):
    """ONNX Runtime closure on CPU with ``threads`` intra-op threads."""
    from velocitygan.export import onnx_session

    sess = onnx_session(path, threads=threads)
    feed = {"seismic": x.cpu().numpy()}
    return lambda: sess.run(None, feed)


def reps_for(batch: int, quick: bool, device: str) -> tuple[int, int]:
    """(repetitions, warm-up runs) sized to keep each cell to a few seconds on CPU."""
    if device.startswith("cuda"):
        return (10, 3) if quick else (50, 10)
    if batch >= 32:
        return (2, 1) if quick else (3, 1)
    return (5, 2) if quick else (20, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    ap.add_argument("--threads", type=int, default=None, help="torch/ORT threads (default all)")
    ap.add_argument("--out", type=Path, default=None, help="also write the table (markdown)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    device = args.device
    torch.manual_seed(0)
    model = InversionNet().eval().to(device)
    backends: list[tuple[str, bool]] = [("PyTorch eager fp32", False),
                                        ("PyTorch channels_last + bf16", True)]  # fmt: skip
    onnx_path = None
    use_onnx = not args.no_onnx and device == "cpu"
    if use_onnx:
        from velocitygan.export import export_module

        onnx_path = Path(tempfile.mkdtemp()) / "inversionnet.onnx"
        export_module(model, torch.zeros(1, 5, 1000, 70), onnx_path)
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    header = [
        f"machine: {platform.node()} ({platform.processor() or platform.machine()}), "
        f"{os.cpu_count()} logical CPUs, torch threads {threads}",
        f"device: {gpu or 'cpu'}; torch {torch.__version__}; InversionNet "
        f"{count_parameters(model):,} parameters, input (N, 5, 1000, 70)",
    ]
    print("\n".join(header))
    rows = []
    for batch in args.batch:
        x = torch.randn(batch, 5, 1000, 70, device=device) * 0.3
        reps, warm = reps_for(batch, args.quick, device)
        cells = [(name, torch_runner(model, x, device, fast)) for name, fast in backends]
        if use_onnx:
            cells.append(("ONNX Runtime (CPU EP)", onnx_runner(onnx_path, x, threads)))
        for name, fn in cells:
            sec = time_call(fn, device, reps, warm)
            ms = sec / batch * 1000
            speedup = FWI_SECONDS_PER_MODEL / (ms / 1000)
            rows.append((name, batch, sec * 1000, ms, batch / sec, speedup))
            print(f"{name:32s} batch {batch:4d}: {sec * 1000:9.1f} ms/batch  {ms:8.2f} ms/sample"
                  f"  {batch / sec:8.1f} samples/s", flush=True)  # fmt: skip
    table = ["| backend | batch | ms / batch | ms / sample | samples / s | x faster than FWI |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    table += [f"| {n} | {b} | {t:.1f} | {m:.2f} | {s:.1f} | {f:,.0f} |"
              for n, b, t, m, s, f in rows]  # fmt: skip
    text = "\n".join([*(f"- {h}" for h in header), "", *table, ""])
    print("\n" + text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            "# Inference speed (bench/bench_inference.py)\n\n" + text
            + f"\nFWI reference: ~{FWI_SECONDS_PER_MODEL / 60:.0f} min per 70 x 70 model on 2 CPU "
            "cores (deepwave, 300 Adam iterations).\n"
        )  # fmt: skip


if __name__ == "__main__":
    main()
