"""How fast the host side of GPU generation can go: maps, writing shards, syncing them.

On a GPU the forward operator is fast (H100: 444 samples/s, ``gpu_h100.md``), and the host must
make the maps and write 1.4 MB per sample at least as fast or the card waits. This benchmark runs
the real in-process generation pipeline of ``velocitygan generate --device cuda`` (map making in
processes, two writer threads, shard sync in the background) with the operator replaced by a
timed wait of ``rate`` samples/s returning a fixed array: the printed samples/s is the pipeline's
ceiling on this host for that operator speed (``inf``: no wait). It also prints the map-making
rate of one process per family. No physics runs here, and no figure from it is a generation speed.

Usage:
    flock /tmp/vgan-cpu.lock env PYTHONPATH=src python bench/bench_host_pipeline.py \
        --out bench/results/host_pipeline_cpu.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from velocitygan.device import cpu_count
from velocitygan.synth import generate as gen
from velocitygan.synth import make_velocity_maps
from velocitygan.synth import simulate as sim

FAMILIES = ("flatvel-a", "curvevel-b", "flatfault-b", "curvefault-b", "style-b")


def maps_per_second(family: str, n: int = 256) -> float:
    """Maps/s of one process for ``family``."""
    t0 = time.perf_counter()
    make_velocity_maps(family, n, seed=0)
    return n / (time.perf_counter() - t0)


def pipeline(rate: float, samples: int, batch: int, family: str) -> tuple[float, int]:
    """End-to-end samples/s of GPU-style generation with the operator a wait of ``rate``
    samples/s; returns (samples/s, map processes used)."""
    fixed = np.random.default_rng(0).standard_normal((batch, 5, 1000, 70), dtype=np.float32)

    def operator(maps, backend, device, acquisition):
        if rate != float("inf"):
            time.sleep(len(maps) / rate)
        return fixed[:len(maps)]

    as_on_gpu = sim.SimConfig("torch", "cuda", batch, 1)
    procs = gen.map_processes(gen.FamilySource(family, samples), as_on_gpu)
    saved = sim.simulate_maps, gen.map_processes
    sim.simulate_maps, gen.map_processes = operator, (lambda source, cfg: procs)
    folder = Path(tempfile.mkdtemp(prefix="vgan-bench-host-"))
    sim.resolve_sim_config("torch", "cpu")  # the CPU kernel is built here, not in the timing
    try:
        t0 = time.perf_counter()
        gen.generate_dataset(folder / "ds", family, samples, shard_size=500, val_fraction=0.0,
                             workers=1, device="cpu", backend="torch", batch_size=batch,
                             progress=False)
        return samples / (time.perf_counter() - t0), procs
    finally:
        sim.simulate_maps, gen.map_processes = saved
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="444,1000,inf",
                    help="operator speeds to emulate, samples/s (comma list; inf = no wait)")
    ap.add_argument("--samples", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=256, help="samples per operator call")
    ap.add_argument("--family", default="curvefault-b")
    ap.add_argument("--out", default=None, help="also write the markdown tables here")
    args = ap.parse_args()
    head = (f"machine: {platform.node()} {platform.machine()}, {cpu_count()} cores; "
            f"{args.samples} {args.family} samples, batch {args.batch}, shards of 500 in "
            f"{tempfile.gettempdir()} ({shutil.disk_usage(tempfile.gettempdir()).free / 2**30:.0f}"
            " GiB free); the operator is a timed wait, not physics")
    print(head, flush=True)
    lines = [head, "", "| family | maps/s (one process) |", "|---|---|"]
    for family in FAMILIES:
        lines.append(f"| {family} | {maps_per_second(family):.0f} |")
        print(lines[-1], flush=True)
    lines += ["", "| emulated operator (samples/s) | map processes | writer threads "
              "| end to end (samples/s) |", "|---|---|---|---|"]
    for rate in (float(r) for r in args.rates.split(",")):
        speed, procs = pipeline(rate, args.samples, args.batch, args.family)
        lines.append(f"| {rate:g} | {procs} | {sim.WRITERS} | {speed:.1f} |")
        print(lines[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
