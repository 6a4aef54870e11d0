"""End-to-end training speed and accuracy: the real training loop, full-size networks.

Part 1, throughput: samples/s of ``velocitygan.train`` iterations (DataLoader over the .npy
shards + ``train_step``: critic every iteration, generator every ``n_critic``-th) for
InversionNet and VelocityGAN at batch 16 and 64, full width (24.4 M + 1.2 M parameters), in
plain eager fp32 (channels_last off, bf16 off) and with the fast settings (``auto``: the
per-step choice of ``velocitygan.models.recommended_precision``); ``--compile`` adds
torch.compile of the generator (compiling falls in the untimed warm-up cycle). VelocityGAN
is timed over whole n_critic cycles.

Part 2, accuracy after equal steps: two full-size VelocityGAN runs through ``train()`` with
the same seed, data order and number of iterations, eager fp32 vs fast; their validation MAE
and wall time are compared (same small generated FlatVel-A-like dataset).

Usage:
  PYTHONPATH=src python bench/bench_train.py --device cpu            # writes results/train_cpu.md
  PYTHONPATH=src python bench/bench_train.py --device cuda --quick
"""

from __future__ import annotations

import argparse
import csv
import itertools
import platform
import shutil
import time
from pathlib import Path

import torch

from velocitygan.data import get_dataset
from velocitygan.train import resolve_config, train
from velocitygan.train.distributed import DistEnv
from velocitygan.train.loaders import build_datasets, train_loader
from velocitygan.train.loop import train_step
from velocitygan.train.speed import resolve_speed
from velocitygan.train.state import build_state, set_train_mode

SETTINGS = {"eager fp32": {"bf16": "false", "channels_last": "false", "compile": "false"},
            "fast (auto)": {"bf16": "auto", "channels_last": "auto", "compile": "false"}}


def dataset(folder: Path, n: int, device: str) -> Path:
    """A small FlatVel-A-like dataset (generated once, reused)."""
    from velocitygan.synth import generate_dataset

    # on a GPU one chunk size for all calls: one compilation of the physics (static shapes)
    return generate_dataset(folder, "flatvel-a", n, seed=1, shard_size=100, val_fraction=0.34,
                            device=device, progress=False,
                            batch_size=100 if device == "cuda" else None)


def base_config(card: Path, device: str, **kw) -> dict:
    d = card.parent
    return {"train": str(d / "train.txt"), "val": str(d / "val.txt"), "dataset": str(card),
            "device": device, "workers": 0, "tensorboard": False, "progress": "off"} | kw


def throughput(card: Path, device: str, model: str, batch: int, setting: dict,
               cycles: int) -> float:
    """Samples/s over ``cycles`` n_critic cycles (3 iterations each for InversionNet)."""
    cfg = resolve_config(overrides=base_config(card, device, model=model, batch_size=batch)
                         | setting)
    env = DistEnv(device=torch.device(device))
    spec = get_dataset(cfg.dataset)
    ts = build_state(cfg, spec, env, resolve_speed(cfg, env.device))
    set_train_mode(ts)
    train_ds, _, _ = build_datasets(cfg, spec)
    per_cycle = cfg.n_critic if model == "velocitygan" else 3

    def batches():
        for epoch in itertools.count():
            yield from train_loader(train_ds, cfg, env, epoch)

    it = batches()
    for _ in range(per_cycle):  # warm-up cycle (allocator, oneDNN kernels)
        train_step(ts, *next(it))
        ts.step += 1
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(cycles * per_cycle):
        train_step(ts, *next(it))  # the batch fetch is inside the timed region
        ts.step += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return cycles * per_cycle * batch / (time.perf_counter() - t0)


def accuracy(card: Path, device: str, steps: int, batch: int, work: Path) -> dict:
    """Validation metrics and wall time of equal-step VelocityGAN runs per setting."""
    out = {}
    for name in ("eager fp32", "fast (auto)"):
        setting = SETTINGS[name]
        run = work / name.split()[0]
        shutil.rmtree(run, ignore_errors=True)
        t0 = time.perf_counter()
        train(base_config(card, device, out=str(run), max_steps=steps, batch_size=batch,
                          epochs=10_000) | setting)
        seconds = time.perf_counter() - t0
        with open(run / "metrics.csv", newline="") as fh:
            last = list(csv.DictReader(fh))[-1]
        out[name] = {"seconds": seconds, "mae_mps": float(last["val_mae_mps"]),
                     "ssim": float(last["val_ssim"]), "step": int(last["step"])}
    return out


def machine(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if device == "cuda" else ""
    return (f"{cpu}, {torch.get_num_threads()} torch threads{gpu}; torch {torch.__version__}; "
            f"device {device}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true", help="batch 16 only, fewer steps")
    p.add_argument("--data", type=Path, default=Path("runs/bench_train/data"))
    p.add_argument("--acc-steps", type=int, default=None, help="iterations for part 2")
    p.add_argument("--out", type=Path, default=None, help="markdown file for the results")
    p.add_argument("--compile", action="store_true", help="also time fast + torch.compile")
    p.add_argument("--models", default="inversionnet,velocitygan", help="comma list")
    p.add_argument("--cycles", type=int, default=None,
                   help="timed cycles per case [2 at batch 16, 1 at 64; 1 with --quick]")
    p.add_argument("--no-accuracy", action="store_true", help="skip part 2")
    args = p.parse_args()
    if args.compile:
        SETTINGS["fast + compile"] = SETTINGS["fast (auto)"] | {"compile": "true"}
    card = dataset(args.data, 300, args.device)
    batches = (16,) if args.quick else (16, 64)
    extra = " fast + compile (samples/s) |" if args.compile else ""
    lines = [f"Machine: {machine(args.device)}", "",
             f"| model | batch | eager fp32 (samples/s) | fast (samples/s) | speed-up |{extra}",
             "|---|---|---|---|---|" + ("---|" if args.compile else "")]
    print("\n".join(lines), flush=True)
    for model, batch in itertools.product(args.models.split(","), batches):
        cycles = args.cycles or (1 if args.quick or batch > 16 else 2)  # after a warm-up cycle
        rate = {n: throughput(card, args.device, model, batch, s, cycles)
                for n, s in SETTINGS.items()}
        row = (f"| {model} | {batch} | {rate['eager fp32']:.2f} | {rate['fast (auto)']:.2f} | "
               f"{rate['fast (auto)'] / rate['eager fp32']:.2f}x |")
        if args.compile:
            row += f" {rate['fast + compile']:.2f} |"
        lines.append(row)
        print(row, flush=True)
    if args.no_accuracy:
        print("\n".join(lines))
        return
    steps = args.acc_steps or (20 if args.quick else 50)
    acc = accuracy(card, args.device, steps, 16, args.data.parent / "acc")
    e, f = acc["eager fp32"], acc["fast (auto)"]
    lines += ["", f"Equal-step accuracy: full-size VelocityGAN (reference settings, n_critic 5), "
              f"{steps} iterations at batch 16 on 200 generated samples, validation on 100:", "",
              "| setting | wall time (s) | val MAE (m/s) | val SSIM |", "|---|---|---|---|"]
    lines += [f"| {n} | {r['seconds']:.1f} | {r['mae_mps']:.1f} | {r['ssim']:.4f} |"
              for n, r in acc.items()]
    lines += ["", f"Speed-up (wall time, same steps incl. validation): "
              f"{e['seconds'] / f['seconds']:.2f}x"]
    print("\n".join(lines[-7:]), flush=True)
    out = args.out or Path(__file__).parent / "results" / f"train_{args.device}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Training throughput (bench/bench_train.py)\n\n" + "\n".join(lines) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
