"""End-to-end training speed and accuracy: the real training loop, full-size networks.

Part 1, throughput: samples/s for InversionNet and VelocityGAN at batch 16 and 64, full width
(24.4 M + 1.2 M parameters), the batch fetch inside the timed region, each case in a fresh
process (the host-memory setting is process-wide):

- ``plain loop``: a plain eager fp32 PyTorch loop as a user (or the reference) writes it, doing
  the same steps: torch.optim.AdamW, the critic on ``G(x)`` under no_grad, and on a generator
  turn a second forward of ``G`` with gradients; glibc's default allocator.
- ``eager fp32``: our training loop with every switch off (channels_last, bf16, host-memory
  reuse); it differs from the plain loop in one generator forward per n_critic cycle (the
  critic's fake batch is reused for the generator step) and the fused AdamW.
- ``eager + reuse``: the same with host-memory reuse (``velocitygan.hostmem``).
- ``fast``: our defaults (``auto``: the per-step choice of
  ``velocitygan.train.speed.recommended_precision`` for channels_last and bf16 autocast,
  host-memory reuse); ``--compile`` adds fast + torch.compile of the generator.
- ``velocitygan train``: the command line as users run it, ``velocitygan train --config
  openfwi`` (or ``openfwi-inversionnet``) with only the batch size, step count, log interval,
  device and validation size set; its rate is taken from the wall-clock times at which it
  prints its log lines, one per cycle, so start-up and the final validation stay outside. The
  timed steps must fit in one epoch (``--data`` with enough maps), as in a real run.

VelocityGAN is timed over whole n_critic cycles (3 iterations per cycle for InversionNet),
after one untimed warm-up cycle.

Part 2, accuracy after equal steps: two full-size VelocityGAN runs through ``train()`` with
the same seed, data order and number of iterations, eager fp32 (no reuse) vs fast; their
validation MAE and wall time are compared (same small generated FlatVel-A-like dataset).

Usage:
  PYTHONPATH=src python bench/bench_train.py --device cpu            # writes results/train_cpu.md
  PYTHONPATH=src python bench/bench_train.py --device cuda --quick
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from velocitygan.data import get_dataset, read_split
from velocitygan.data.npyfile import open_npy
from velocitygan.hostmem import reuse_freed_memory
from velocitygan.models import Discriminator, InversionNet
from velocitygan.train import resolve_config, train
from velocitygan.train.distributed import DistEnv
from velocitygan.train.gan import critic_loss, generator_loss, interpolation_factors
from velocitygan.train.loaders import build_datasets, train_loader
from velocitygan.train.loop import train_step
from velocitygan.train.speed import resolve_speed
from velocitygan.train.state import build_state, set_train_mode

EAGER = {"bf16": "false", "channels_last": "false", "compile": "false",
         "reuse_host_memory": False}
SETTINGS = {"plain loop": EAGER,  # the config only feeds its data loader
            "eager fp32": EAGER,
            "eager + reuse": EAGER | {"reuse_host_memory": True},
            "fast": {"bf16": "auto", "channels_last": "auto", "compile": "false",
                     "reuse_host_memory": True},
            "velocitygan train": {}}  # the CLI with the shipped config (cli_rate)


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


def _batches(card: Path, device: str, model: str, batch: int, setting: dict):
    """Resolved config, device env and an endless iterator over training batches."""
    cfg = resolve_config(overrides=base_config(card, device, model=model, batch_size=batch)
                         | setting)
    env = DistEnv(device=torch.device(device))
    train_ds, _, _ = build_datasets(cfg, get_dataset(cfg.dataset))

    def batches():
        for epoch in itertools.count():
            yield from train_loader(train_ds, cfg, env, epoch)

    return cfg, env, batches()


def _timed(step, n_warm: int, n_timed: int, batch: int, device: str) -> float:
    """Samples/s of ``n_timed`` calls of ``step(i)`` after ``n_warm`` untimed ones."""
    for i in range(n_warm):
        step(i)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(n_warm, n_warm + n_timed):
        step(i)
    if device == "cuda":
        torch.cuda.synchronize()
    return n_timed * batch / (time.perf_counter() - t0)


def throughput(card: Path, device: str, model: str, batch: int, setting: dict,
               cycles: int) -> float:
    """Samples/s of our training loop (``train_step``) over ``cycles`` cycles."""
    cfg, env, it = _batches(card, device, model, batch, setting)
    ts = build_state(cfg, get_dataset(cfg.dataset), env, resolve_speed(cfg, env.device))
    set_train_mode(ts)
    per_cycle = cfg.n_critic if model == "velocitygan" else 3

    def step(i: int) -> None:
        train_step(ts, *next(it))  # the batch fetch is inside the timed region
        ts.step += 1

    return _timed(step, per_cycle, cycles * per_cycle, batch, device)


def plain_loop(card: Path, device: str, model: str, batch: int, cycles: int) -> float:
    """Samples/s of a plain eager fp32 loop doing the same steps as ``train_step``."""
    cfg, env, it = _batches(card, device, model, batch, SETTINGS["plain loop"])
    dev = env.device
    torch.manual_seed(cfg.seed)
    gen = InversionNet().to(dev).train()
    opt_g = torch.optim.AdamW(gen.parameters(), lr=cfg.lr, betas=tuple(cfg.betas),
                              weight_decay=cfg.weight_decay)
    critic = Discriminator().to(dev).train() if model == "velocitygan" else None
    opt_d = None if critic is None else torch.optim.AdamW(
        critic.parameters(), lr=cfg.critic_lr, betas=tuple(cfg.critic_betas),
        weight_decay=cfg.critic_weight_decay)
    weights = {"l1_weight": cfg.l1_weight, "l2_weight": cfg.l2_weight,
               "adv_weight": cfg.adv_weight if critic is not None else 0.0}

    def step(i: int) -> None:
        x, y = (t.to(dev) for t in next(it))
        if critic is not None:
            with torch.no_grad():
                fake = gen(x)
            alpha = interpolation_factors(cfg.seed, i, rank=0, world_size=1,
                                          local_batch=batch).to(dev)
            loss_d, _ = critic_loss(critic, y, fake, alpha, gp_weight=cfg.gp_weight)
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        if critic is None or (i + 1) % cfg.n_critic == 0:
            if critic is not None:
                critic.requires_grad_(False)
            loss_g, _ = generator_loss(gen(x), y, critic, **weights)
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            if critic is not None:
                critic.requires_grad_(True)

    per_cycle = cfg.n_critic if model == "velocitygan" else 3
    return _timed(step, per_cycle, cycles * per_cycle, batch, device)


def cli_rate(card: Path, device: str, model: str, batch: int, cycles: int) -> float:
    """Samples/s of ``velocitygan train --config openfwi[-inversionnet]`` between its log lines
    after the first (warm-up) cycle and after the last of ``cycles`` timed ones."""
    config = "openfwi" if model == "velocitygan" else "openfwi-inversionnet"
    per_cycle = resolve_config(file=config).n_critic if model == "velocitygan" else 3
    steps = (cycles + 1) * per_cycle
    maps = sum(open_npy(e.label).shape[0]
               for e in read_split(card.parent / "train.txt", require_labels=True))
    if maps < steps * batch:  # an epoch end (validation, checkpoint) would fall in the window
        raise SystemExit(f"{card.parent} has {maps} training maps; timing {steps} steps at "
                         f"batch {batch} in one epoch needs {steps * batch}")
    run = card.parent.parent / "cli_run"
    shutil.rmtree(run, ignore_errors=True)
    sets = {"batch_size": batch, "max_steps": steps, "log_every_steps": per_cycle,
            "device": device, "val_limit": batch}
    cmd = [sys.executable, "-m", "velocitygan", "train", "--config", config,
           "--train", str(card.parent / "train.txt"), "--val", str(card.parent / "val.txt"),
           "--dataset", str(card), "--out", str(run)]
    cmd += [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    times = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=os.environ | {"PYTHONUNBUFFERED": "1"}) as proc:
        for line in proc.stdout:
            if m := re.search(r" step (\d+) ", line):
                times.append((int(m.group(1)), time.perf_counter()))
    if proc.returncode or len(times) < 2:
        raise SystemExit(f"velocitygan train exited with {proc.returncode} after "
                         f"{len(times)} log line(s): {' '.join(cmd)}")
    (s0, t0), (s1, t1) = times[0], times[-1]
    return (s1 - s0) * batch / (t1 - t0)


def accuracy_run(card: Path, device: str, name: str, steps: int, batch: int,
                 work: Path) -> dict:
    """Validation metrics and wall time of one equal-step VelocityGAN run."""
    run = work / name.split()[0]
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    train(base_config(card, device, out=str(run), max_steps=steps, batch_size=batch,
                      epochs=10_000) | SETTINGS[name])
    seconds = time.perf_counter() - t0
    with open(run / "metrics.csv", newline="") as fh:
        last = list(csv.DictReader(fh))[-1]
    return {"seconds": seconds, "mae_mps": float(last["val_mae_mps"]),
            "ssim": float(last["val_ssim"]), "step": int(last["step"])}


def in_fresh_process(args: argparse.Namespace, job: dict) -> dict:
    """Run one measurement in a new interpreter (allocator settings are process-wide)."""
    cmd = [sys.executable, __file__, "--device", args.device, "--data", str(args.data),
           "--job", json.dumps(job)] + (["--compile"] if args.compile else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_job(args: argparse.Namespace, job: dict) -> dict:
    """One measurement in this process (``--job``); prints its result as a JSON line."""
    card = args.data / "dataset.json"
    if job["kind"] == "accuracy":
        return accuracy_run(card, args.device, job["setting"], job["steps"], job["batch"],
                            args.data.parent / "acc")
    setting = SETTINGS[job["setting"]]
    if setting.get("reuse_host_memory"):
        reuse_freed_memory()  # train() does this itself; the throughput probe calls the loop
    if job["setting"] == "plain loop":
        rate = plain_loop(card, args.device, job["model"], job["batch"], job["cycles"])
    elif job["setting"] == "velocitygan train":
        rate = cli_rate(card, args.device, job["model"], job["batch"], job["cycles"])
    else:
        rate = throughput(card, args.device, job["model"], job["batch"], setting,
                          job["cycles"])
    return {"rate": rate}


def _spread(values: list[float], unit: str = "") -> str:
    """``median`` or ``median (min-max)`` of repeated measurements."""
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.2f}{unit}"
    return f"{med:.2f}{unit} ({min(values):.2f}-{max(values):.2f})"


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
    p.add_argument("--data", type=Path, default=Path("runs/bench_train/data"),
                   help="dataset folder: generated (300 maps) unless it holds a dataset.json")
    p.add_argument("--settings", default=None, help="comma list of the settings to time [all]")
    p.add_argument("--acc-steps", type=int, default=None, help="iterations for part 2")
    p.add_argument("--out", type=Path, default=None, help="markdown file for the results")
    p.add_argument("--compile", action="store_true", help="also time fast + torch.compile")
    p.add_argument("--models", default="inversionnet,velocitygan", help="comma list")
    p.add_argument("--cycles", type=int, default=None,
                   help="timed cycles per case [2 at batch 16, 1 at 64; 1 with --quick]")
    p.add_argument("--repeats", type=int, default=1,
                   help="fresh-process repeats per case, interleaved; the table shows medians")
    p.add_argument("--no-accuracy", action="store_true", help="skip part 2")
    p.add_argument("--job", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.compile:
        SETTINGS["fast + compile"] = SETTINGS["fast"] | {"compile": "true"}
    if args.job:
        print(json.dumps(run_job(args, json.loads(args.job))), flush=True)
        return
    if not (args.data / "dataset.json").is_file():
        dataset(args.data, 300, args.device)
    batches = (16,) if args.quick else (16, 64)
    names = args.settings.split(",") if args.settings else [
        n for n in SETTINGS if not (args.device == "cuda" and n == "eager + reuse")]
    if unknown := [n for n in names if n not in SETTINGS]:
        raise SystemExit(f"--settings {','.join(unknown)}: choose from {', '.join(SETTINGS)}")
    ratios = [n for n in ("velocitygan train", "fast") if n in names and "plain loop" in names]
    lines = [f"Machine: {machine(args.device)}; median of {args.repeats} fresh-process run(s) "
             "per case, range in brackets", "",
             "| model | batch | " + " | ".join(f"{n} (samples/s)" for n in names)
             + "".join(f" | {n} / plain loop" for n in ratios) + " |",
             "|---|---|" + "---|" * (len(names) + len(ratios))]
    print("\n".join(lines), flush=True)
    for model, batch in itertools.product(args.models.split(","), batches):
        cycles = args.cycles or (1 if args.quick or batch > 16 else 2)  # after a warm-up cycle
        runs = [{n: in_fresh_process(args, {"kind": "throughput", "setting": n, "model": model,
                                            "batch": batch, "cycles": cycles})["rate"]
                 for n in names} for _ in range(args.repeats)]
        lines.append(f"| {model} | {batch} | "
                     + " | ".join(_spread([r[n] for r in runs]) for n in names)
                     + "".join(f" | {_spread([r[n] / r['plain loop'] for r in runs], 'x')}"
                               for n in ratios) + " |")
        print(lines[-1], flush=True)
    if not args.no_accuracy:
        lines += accuracy_table(args)
    out = args.out or Path(__file__).parent / "results" / f"train_{args.device}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Training throughput (bench/bench_train.py)\n\n" + "\n".join(lines) + "\n")
    print(f"written {out}")


def accuracy_table(args: argparse.Namespace) -> list[str]:
    """Part 2: equal-step eager fp32 vs fast VelocityGAN runs, as markdown lines."""
    steps = args.acc_steps or (20 if args.quick else 50)
    acc = {n: in_fresh_process(args, {"kind": "accuracy", "setting": n, "steps": steps,
                                      "batch": 16})
           for n in ("eager fp32", "fast")}
    e, f = acc["eager fp32"], acc["fast"]
    lines = ["", f"Equal-step accuracy: full-size VelocityGAN (reference settings, n_critic 5), "
             f"{steps} iterations at batch 16 on 200 generated samples, validation on 100:", "",
             "| setting | wall time (s) | val MAE (m/s) | val SSIM |", "|---|---|---|---|"]
    lines += [f"| {n} | {r['seconds']:.1f} | {r['mae_mps']:.1f} | {r['ssim']:.4f} |"
              for n, r in acc.items()]
    lines += ["", f"Speed-up (wall time, same steps incl. validation): "
              f"{e['seconds'] / f['seconds']:.2f}x"]
    print("\n".join(lines), flush=True)
    return lines


if __name__ == "__main__":
    main()
