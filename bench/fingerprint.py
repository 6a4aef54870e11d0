"""Amplitude fingerprint of the synthetic families against the published OpenFWI bounds.

For each family, forward-model ``--samples`` maps with the OpenFWI recipe and compare the raw
amplitude minimum and maximum with the published ``data_min``/``data_max`` of the matching
OpenFWI dataset; a family passes when both lie within 15 %.

Usage (a few minutes on 2 CPU cores; run it under the exclusive lock on a shared machine):
    flock /tmp/vgan-cpu.lock env PYTHONPATH=src python bench/fingerprint.py \
        --out bench/results/fingerprint.md
    PYTHONPATH=src python bench/fingerprint.py --quick          # 20 samples, 120 time steps

The extremes occur in the first ~80 ms (the direct wave near the source), so ``--nt 120`` gives
the same numbers faster when tuning parameters; the recorded table uses the full 1000 steps.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

from velocitygan.data import OPENFWI_DATASETS
from velocitygan.physics import Acquisition
from velocitygan.synth import FAMILIES, make_velocity_maps
from velocitygan.synth.simulate import resolve_sim_config, simulate_chunks

TOLERANCE = 0.15


def measure(family: str, n: int, seed: int, cfg, acq: Acquisition) -> tuple[float, float]:
    """Raw amplitude (min, max) over ``n`` forward-modelled maps of ``family``."""
    chunks = ((a, make_velocity_maps(family, min(cfg.chunk, n - a), seed, start=a))
              for a in range(0, n, cfg.chunk))
    lo, hi = np.inf, -np.inf
    with tempfile.TemporaryDirectory() as tmp:  # the simulating processes write the data here
        path = os.path.join(tmp, "data.npy")
        np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                  shape=(n, acq.n_shots, acq.nt, acq.n_receivers))
        sink = lambda first: (path, first)  # noqa: E731
        for _, (chunk_lo, chunk_hi) in simulate_chunks(chunks, cfg, acq.to_dict(), sink):
            lo, hi = min(lo, chunk_lo), max(hi, chunk_hi)
    return lo, hi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--nt", type=int, default=1000, help="time steps (extremes need ~100)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--quick", action="store_true", help="20 samples, 120 time steps")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.nt = 20, 120
    cfg = resolve_sim_config(args.backend, args.device, args.workers)
    acq = Acquisition(nt=args.nt)
    head = (f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores; backend {cfg.backend}, device {cfg.device}, "
            f"{cfg.workers} worker(s) x 1 thread; torch {torch.__version__}; "
            f"{args.samples} samples per family, seed {args.seed}, nt {args.nt}")
    lines = [head, "",
             "| family | published min | published max | measured min | measured max "
             "| deviation min | deviation max | pass |",
             "|---|---|---|---|---|---|---|---|"]
    print(head, flush=True)
    ok_all, t0 = True, time.perf_counter()
    for family in args.families.split(","):
        spec = OPENFWI_DATASETS[family]
        lo, hi = measure(family, args.samples, args.seed, cfg, acq)
        dev_lo, dev_hi = abs(lo / spec.data_min - 1), abs(hi / spec.data_max - 1)
        ok = max(dev_lo, dev_hi) <= TOLERANCE
        ok_all &= ok
        lines.append(f"| {family} | {spec.data_min:.2f} | {spec.data_max:.2f} | {lo:.2f} | "
                     f"{hi:.2f} | {100 * dev_lo:.1f} % | {100 * dev_hi:.1f} % | "
                     f"{'yes' if ok else 'NO'} |")
        print(lines[-1], flush=True)
    lines += ["", f"all within {100 * TOLERANCE:.0f} %: {'yes' if ok_all else 'NO'} "
              f"({time.perf_counter() - t0:.0f} s)"]
    print(lines[-1])
    if args.out:
        from velocitygan.io import write_text

        write_text(args.out, "# Amplitude fingerprint of the synthetic families\n\n"
                   + "\n".join(lines) + "\n")
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
