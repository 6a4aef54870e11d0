"""End-to-end dataset generation speed: samples/s through ``generate_dataset`` (maps, forward
model with 5 shots x 1000 steps x 70 receivers, shard files on disk), per backend and workers.

Usage:
    flock /tmp/vgan-cpu.lock env PYTHONPATH=src python bench/bench_generate.py \
        --out bench/results/generate_cpu.md                      # deepwave+torch, 1 and 2 workers
    PYTHONPATH=src python bench/bench_generate.py --device cuda --backend torch \
        --batch 256 --samples 4096                               # on a GPU: prints peak memory

Times include worker start-up and writing the shards (the number a user sees); the first
configuration also pays for imports. Each configuration writes to a fresh temporary folder.
"operator busy" (runs in this process: one worker, or any GPU run) is the share of the wall time
spent inside the forward-model calls, copy to host memory and compilation included; well under
100 % means the host side (maps, writes) or start-up held the operator back.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from velocitygan.synth import generate_dataset
from velocitygan.synth import simulate as sim


def run_one(family: str, samples: int, backend: str, device: str, workers: int,
            batch: int | None, shard_size: int) -> tuple[float, float | None, float | None]:
    """Generate ``samples`` samples; return (samples/s, peak CUDA memory in GiB or None,
    seconds spent in the operator calls or None).

    The operator time (the forward model plus its copy to host memory) is measured for runs in
    this process (``workers == 1``) only; worker processes do not report it.
    """
    folder = Path(tempfile.mkdtemp(prefix="vgan-bench-gen-"))
    busy = [0.0]
    plain = sim.simulate_maps

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return plain(*args, **kwargs)
        finally:
            busy[0] += time.perf_counter() - t0

    sim.simulate_maps = timed
    try:
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        generate_dataset(folder / "ds", family, samples, seed=0, shard_size=shard_size,
                         val_fraction=0.0, workers=workers, device=device, backend=backend,
                         batch_size=batch, progress=False)
        seconds = time.perf_counter() - t0
        peak = (torch.cuda.max_memory_allocated() / 2**30
                if device.startswith("cuda") else None)
        return samples / seconds, peak, (busy[0] if workers == 1 else None)
    finally:
        sim.simulate_maps = plain
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--backend", default=None,
                    help="comma list [cpu: deepwave,torch; cuda: torch]")
    ap.add_argument("--workers", default=None, help="comma list [cpu: 1,2; cuda: 1]")
    ap.add_argument("--batch", type=int, default=None, help="samples per forward call "
                    "[cpu 4, cuda 256]")
    ap.add_argument("--samples", type=int, default=None,
                    help="samples per run [deepwave 300, torch on cpu 100, cuda 4 batches]")
    ap.add_argument("--family", default="curvefault-b")
    ap.add_argument("--quick", action="store_true", help="fewer samples")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args()
    gpu = args.device.startswith("cuda")
    backends = (args.backend or ("torch" if gpu else "deepwave,torch")).split(",")
    workers = [int(w) for w in (args.workers or ("1" if gpu else "1,2")).split(",")]
    head = (f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores; "
            f"device {args.device}"
            + (f" ({torch.cuda.get_device_name()})" if gpu else "")
            + f"; torch {torch.__version__}; family {args.family}; "
            "one sample = 5 shots x "
            "1000 steps x 70 receivers, written to .npy shards; 1 thread per worker")
    lines = [head, "", "| backend | workers | batch | samples | samples/s | peak GPU memory "
             "| operator busy |", "|---|---|---|---|---|---|---|"]
    print(head, flush=True)
    for backend in backends:
        for w in workers:
            if args.samples:
                n = args.samples
            elif gpu:
                n = 4 * (args.batch or 256)
            else:
                n = 300 if backend == "deepwave" else 100
            if args.quick:
                n = max(8, n // 10)
            rate, peak, busy = run_one(args.family, n, backend, args.device, w, args.batch,
                                       shard_size=500)
            batch = args.batch or (256 if gpu else 4)
            mem = f"{peak:.2f} GiB" if peak is not None else "-"
            # share of the wall time spent in operator calls (compilation included): the rest
            # is start-up, map making and writing that did not overlap the simulation
            share = f"{busy * rate / n:.0%}" if busy is not None else "-"
            lines.append(f"| {backend} | {w} | {batch} | {n} | {rate:.1f} | {mem} | {share} |")
            print(lines[-1], flush=True)
    if args.out:
        from velocitygan.io import write_text

        write_text(args.out, "# Dataset generation speed\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
