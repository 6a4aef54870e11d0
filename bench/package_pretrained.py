"""Bundle a benchmark run's final weights as ``pretrained:NAME`` (package data + model card).

Usage (after ``velocitygan study benchmark ... --out DIR``):
    python bench/package_pretrained.py DIR --run velocitygan-seed0 --name flatvel-a \
        --remake "velocitygan study benchmark --family flatvel-a ... --out DIR"

Writes ``src/velocitygan/weights/NAME.pt`` (generator and critic as trained, in float32, no
optimiser state: the file the card's metrics were measured on) and ``NAME.json`` (data recipe
and seeds, settings, test metrics from the benchmark's own evaluation, date, package version,
the command that remakes it).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
from pathlib import Path

from velocitygan import __version__
from velocitygan.checkpoint import load_checkpoint, slim_checkpoint
from velocitygan.io import write_json

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "velocitygan" / "weights"
MAX_BYTES = 15 * 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", type=Path, help="benchmark folder (velocitygan study benchmark)")
    ap.add_argument("--run", required=True, help="run name in STUDY/runs, e.g. velocitygan-seed0")
    ap.add_argument("--name", required=True, help="pretrained name, e.g. flatvel-a")
    ap.add_argument("--remake", required=True, help="the command that made STUDY")
    ap.add_argument("--into", type=Path, default=WEIGHTS,
                    help="folder for NAME.pt and NAME.json [the package's weights folder]")
    args = ap.parse_args()

    settings = json.loads((args.study / "benchmark.json").read_text())
    with open(args.study / "benchmark.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if f"{r['model']}-seed{r['seed']}" == args.run]
    if not rows:
        raise SystemExit(f"{args.study / 'benchmark.csv'} has no run {args.run}")
    row = rows[0]
    src = args.study / "runs" / args.run / "last.pt"
    args.into.mkdir(parents=True, exist_ok=True)
    size = slim_checkpoint(src, args.into / f"{args.name}.pt")
    if size > MAX_BYTES:
        raise SystemExit(f"{size / 2**20:.1f} MB is over the 15 MB a bundled model may take")
    cfg = load_checkpoint(args.into / f"{args.name}.pt")["config"]
    card = {
        "name": args.name, "file": f"{args.name}.pt", "model": cfg["model"],
        "family": settings["family"], "width": cfg["width"],
        "data": {"generator": "velocitygan generate (default physics: the OpenFWI recipe)",
                 "train_samples": settings["train_samples"], "data_seed": settings["data_seed"],
                 "test_samples": settings["test_samples"], "test_seed": settings["test_seed"]},
        "training": {"config": settings["config"], "overrides": settings["overrides"],
                     "budget_min": settings["budget_min"], "seed": int(row["seed"]),
                     "steps": int(row["steps"]), "samples_seen": int(row["samples_seen"]),
                     "train_s": float(row["train_s"]), "threads": int(row["threads"]),
                     "device": row["device"]},
        "test": {"samples": int(row["test_samples"]), "mae_mps": float(row["mae_mps"]),
                 "rmse_mps": float(row["rmse_mps"]), "ssim": float(row["ssim"]),
                 "mae": float(row["mae"]), "rmse": float(row["rmse"]),
                 "ssim_convention": "OpenFWI (Gaussian 11x11, sigma 1.5, zero padding)"},
        "storage": "float32 weights, no optimiser state",
        "date": dt.date.today().isoformat(), "velocitygan_version": __version__,
        "remake": args.remake,
    }
    write_json(args.into / f"{args.name}.json", card)
    print(f"wrote {args.into / args.name}.pt ({size / 2**20:.2f} MB) and its card")


if __name__ == "__main__":
    main()
