"""Network alone vs FWI alone vs hybrid (network + FWI) on held-out samples.

FWI alone starts from what a user has without the answer: a 1-D trend, velocity growing
linearly with depth from 1500 to 4500 m/s (``velocitygan fwi --init linear``). A second FWI run
starts from the true model blurred by ``--smooth-sigma`` cells, the usual benchmark start: it
needs the true model, so its row is an upper bound, labelled as such.

Prints and writes a Markdown table: MAE / RMSE / SSIM on the normalised [-1, 1] scale (OpenFWI
conventions, ``velocitygan.metrics``), MAE in m/s, relative data misfit, wall time per sample.
All samples of each inversion run as ONE batch. Samples: fresh maps of a generated family
(``--family``, ``--seed``: a seed the network was not trained on) or the first labelled samples
of a split file (``--split``, e.g. a generated dataset's val.txt).

Example (the figures in bench/results/inversion_compare.md)::

    flock /tmp/vgan-cpu.lock .venv/bin/python bench/compare_inversion.py \\
        --checkpoint demo/run/best.pt --family flatvel-a --samples 20 --iterations 30
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from velocitygan.fwi import gaussian_smooth, run_fwi
from velocitygan.fwi.inputs import DEFAULT_SMOOTH_SIGMA_CELLS, start_model
from velocitygan.io import write_text
from velocitygan.metrics import MetricAccumulator
from velocitygan.physics import Acquisition, forward_model


def held_out(args) -> tuple[np.ndarray, np.ndarray | None]:
    """(true maps (n,70,70) m/s, observed raw data or None to simulate)."""
    if args.split:
        from velocitygan.data import OpenFWIDataset, get_dataset

        ds = OpenFWIDataset(args.split, get_dataset(args.dataset or "flatvel-a"))
        pairs = [ds.raw(i) for i in range(min(args.samples, len(ds)))]
        return (np.stack([p[1] for p in pairs])[:, 0].astype(np.float32),
                np.stack([p[0] for p in pairs]).astype(np.float32))  # fmt: skip
    from velocitygan.synth import make_velocity_maps

    return make_velocity_maps(args.family, args.samples, seed=args.seed), None


def scores(pred_mps: np.ndarray, true_mps: np.ndarray) -> dict[str, float]:
    """OpenFWI metrics of m/s maps (normalised to [-1, 1] over 1500-4500 m/s)."""
    acc = MetricAccumulator(half_range_mps=1500.0)

    def norm(v):
        return torch.as_tensor(np.asarray(v, np.float32)).reshape(-1, 1, 70, 70) / 1500.0 - 2.0

    acc.update(norm(pred_mps), norm(true_mps))
    return acc.compute()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="trained generator checkpoint")
    p.add_argument("--family", default="flatvel-a")
    p.add_argument("--seed", type=int, default=2026, help="held-out seed (not the training one)")
    p.add_argument("--split", help="use the first --samples labelled samples of this split")
    p.add_argument("--dataset", help="normalisation for --split / the network")
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--iterations", type=int, default=30, help="FWI-alone iterations")
    p.add_argument("--refine", type=int, default=None, help="hybrid iterations [--iterations]")
    p.add_argument("--freqs", default="5,10,full")
    p.add_argument("--smooth-sigma", type=float, default=DEFAULT_SMOOTH_SIGMA_CELLS)
    p.add_argument("--backend", default="auto", help="forward operator of the inversions")
    p.add_argument("--data-backend", default=None,
                   help="operator that simulates the observed data [--backend]; e.g. torch "
                        "(OpenFWI's recipe) with --backend deepwave measures a mismatch")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--lr", type=float, default=None, help="Adam step [run_fwi's default]")
    p.add_argument("--quick", action="store_true", help="4 samples, 6 iterations (smoke run)")
    p.add_argument("--out", default="bench/results/inversion_compare.md")
    args = p.parse_args(argv)
    if args.quick:
        args.samples, args.iterations = min(args.samples, 4), min(args.iterations, 6)
    refine = args.iterations if args.refine is None else args.refine
    from velocitygan.fwi import parse_freqs
    from velocitygan.predict import predict

    freqs = parse_freqs(args.freqs)
    true, observed = held_out(args)
    acq = Acquisition()
    n = len(true)
    if observed is None:
        observed = forward_model(true, acq, backend=args.data_backend or args.backend,
                                 device=args.device).cpu().numpy()
    common = {"acquisition": acq, "freqs_hz": freqs, "true_velocity_mps": true,
              "backend": args.backend, "device": args.device, "lr": args.lr}  # fmt: skip

    rows = {}
    smooth = gaussian_smooth(torch.as_tensor(true), args.smooth_sigma).numpy()
    t0 = time.perf_counter()
    pred = predict(args.checkpoint, observed, dataset=args.dataset, device=args.device,
                   log=lambda m: print(m, file=sys.stderr))[:, 0]  # fmt: skip
    t_net = time.perf_counter() - t0
    print(f"network: {t_net:.2f} s for {n} samples", file=sys.stderr)
    trend = start_model("linear", n, acq, true_mps=None)
    fwi = run_fwi(observed, trend, iterations=args.iterations, **common)
    upper = run_fwi(observed, smooth, iterations=args.iterations, **common)
    hyb = run_fwi(observed, np.clip(pred, 1500.0, 4500.0), iterations=refine, **common)
    rows["1-D trend start (no inversion)"] = (trend, 0.0, fwi.init_misfit)
    rows["network alone"] = (pred, t_net, hyb.init_misfit)
    rows[f"FWI alone, 1-D trend start, {args.iterations} it"] = (fwi.velocity_mps,
                                                                 fwi.wall_time_s, fwi.misfit)
    rows[f"hybrid: network + {refine} it FWI"] = (hyb.velocity_mps, t_net + hyb.wall_time_s,
                                                  hyb.misfit)
    rows["upper bound: smooth true-model start (no inversion)"] = (smooth, 0.0,
                                                                    upper.init_misfit)
    rows[f"upper bound: FWI alone, smooth true-model start, {args.iterations} it"] = (
        upper.velocity_mps, upper.wall_time_s, upper.misfit)
    text = report(rows, true, args, n, refine)
    print(text)
    write_text(args.out, text)
    write_text(Path(args.out).with_suffix(".json"), json.dumps({
        "args": vars(args), "history_fwi": fwi.history, "history_hybrid": hyb.history,
        "history_fwi_smooth_start": upper.history,
        "rows": {k: {**scores(v, true), "time_s": t, "data_misfit": float(np.mean(m))}
                 for k, (v, t, m) in rows.items()},
    }, indent=2))  # fmt: skip
    return 0


def hyb_lr(args) -> str:
    from velocitygan.fwi.inversion import DEFAULT_LR

    return f"{args.lr if args.lr is not None else DEFAULT_LR['adam']:g}"


def report(rows, true, args, n, refine) -> str:
    dev = args.device
    gpu = torch.cuda.get_device_name(0) if dev.startswith("cuda") else "none"
    lines = [
        f"# Network vs FWI vs hybrid ({args.split or args.family}, {n} held-out samples)",
        "",
        f"Machine: {platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, device {dev} (GPU: {gpu}), backend {args.backend}"
        + (f" (observed data: {args.data_backend})" if args.data_backend and not args.split
           else "") + ".",
        f"FWI: Adam (lr {hyb_lr(args)}), bands {args.freqs} Hz, {args.iterations} iterations "
        f"(FWI alone) and "
        f"{refine} (hybrid), all {n} samples in one batch; 1-D trend start = 1500 m/s at the "
        f"surface to 4500 m/s at the bottom, linear in depth (`fwi --init linear`); smooth "
        f"true-model start = true model blurred with a {args.smooth_sigma:g}-cell Gaussian "
        f"(needs the answer: an upper bound for FWI alone). Seed {args.seed}. "
        f"Network: {args.checkpoint}.",
        "Metrics on the normalised [-1, 1] scale (OpenFWI conventions; SSIM zero-padded); "
        "MAE (m/s) = MAE x 1500; misfit = relative L2 data misfit ||F(v) - d|| / ||d||.",
        "",
        "| method | MAE | RMSE | SSIM | MAE (m/s) | data misfit | wall time / sample (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (v, t, m) in rows.items():
        s = scores(v, true)
        lines.append(f"| {name} | {s['mae']:.4f} | {s['rmse']:.4f} | {s['ssim']:.4f} | "
                     f"{s['mae_mps']:.1f} | {float(np.mean(m)):.4f} | {t / n:.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
