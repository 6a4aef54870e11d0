"""Which critic normalisation trains VelocityGAN best? A short, equal-budget comparison.

Builds a small synthetic layered dataset (flat layers, 1500-4500 m/s, forward modelled with
``velocitygan.physics.forward_model``; cached), then trains a narrow VelocityGAN (InversionNet
generator at ``--width``, WGAN-GP critic) for the same number of iterations with each critic
norm ("batch" = the reference, "none", "layer", "instance") and reports validation MAE in m/s.
A supervised control (L1 + MSE only, the same number of generator steps) shows whether the
adversarial term helps at all at this budget.

Training follows the reference recipe (OpenFWI's code): critic every iteration with
-D(real) + D(fake) + 10 GP; generator every ``--n-critic``-th iteration with
100 L1 + 100 MSE - D(G(x)); AdamW betas (0, 0.9), weight decay 1e-4 (lr raised to ``--lr``
for the short run). The generator runs channels_last + bf16 autocast (fastest on CPU), the
critic and its gradient penalty in fp32.

Usage:
  PYTHONPATH=src python bench/bench_critic_norm.py --iters 300 --seeds 0 1
  PYTHONPATH=src python bench/bench_critic_norm.py --device cuda --iters 3000 --n-train 2000
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from velocitygan.data import get_dataset, normalize_seismic, normalize_velocity
from velocitygan.models import CRITIC_NORMS, Discriminator, InversionNet

SPEC = get_dataset("flatvel-a")  # normalisation bounds (1500-4500 m/s labels)
VEL_RANGE_MPS = SPEC.label_max - SPEC.label_min


def layered_maps(n: int, seed: int) -> np.ndarray:
    """``n`` flat-layered velocity maps (70 x 70, m/s): 2-5 layers, velocity rising with depth."""
    rng = np.random.default_rng(seed)
    maps = np.empty((n, 70, 70), np.float32)
    for i in range(n):
        n_layers = int(rng.integers(2, 6))
        tops = np.sort(rng.choice(np.arange(5, 66), n_layers - 1, replace=False))
        speeds = np.sort(rng.uniform(1500.0, 4500.0, n_layers))
        depth_layer = np.searchsorted(tops, np.arange(70), side="right")
        maps[i] = speeds[depth_layer][:, None]
    return maps


def make_data(
    n_train: int, n_val: int, cache: Path, device: str = "cpu"
) -> dict[str, torch.Tensor]:
    """Normalised (x, y) tensors for train and validation, cached in ``cache`` (.npz)."""
    if cache.exists():
        with np.load(cache) as z:
            if len(z["y"]) == n_train + n_val:
                return _split(z["x"], z["y"], n_train)
    from velocitygan.physics import forward_model

    v = layered_maps(n_train + n_val, seed=1234)
    t0, threads = time.perf_counter(), torch.get_num_threads()
    torch.set_num_threads(1)  # deepwave on CPU: 1 thread is ~0.1 s/map, 2 threads far slower
    chunk = 4 if device == "cpu" else 128  # the torch backend batches maps on a GPU
    raw = [forward_model(v[i : i + chunk], device=device).cpu() for i in range(0, len(v), chunk)]
    raw = torch.cat(raw).numpy()
    torch.set_num_threads(threads)
    print(f"forward modelled {len(v)} maps in {time.perf_counter() - t0:.1f} s")
    x = normalize_seismic(raw, SPEC).astype(np.float32)
    y = normalize_velocity(v[:, None], SPEC).astype(np.float32)
    np.savez(cache, x=x, y=y)
    return _split(x, y, n_train)


def _split(x: np.ndarray, y: np.ndarray, n_train: int) -> dict[str, torch.Tensor]:
    x_t, y_t = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
    return {"x": x_t[:n_train], "y": y_t[:n_train], "xv": x_t[n_train:], "yv": y_t[n_train:]}


def gradient_penalty(critic, real, fake) -> torch.Tensor:
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def generate(gen, x, device) -> torch.Tensor:
    x = x.to(device).contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        return gen(x).float().contiguous()


def train_one(norm: str | None, data, seed: int, args) -> dict[str, float]:
    """Train with critic ``norm`` (None: supervised control); return metrics."""
    torch.manual_seed(seed)
    dev = args.device
    gen = InversionNet(width=args.width).to(dev).to(memory_format=torch.channels_last)
    adamw = {"lr": args.lr, "betas": (0.0, 0.9), "weight_decay": 1e-4}
    opt_g = torch.optim.AdamW(gen.parameters(), **adamw)
    if norm is not None:
        critic = Discriminator(width=args.critic_width, norm=norm).to(dev)
        opt_d = torch.optim.AdamW(critic.parameters(), **adamw)
    rng = torch.Generator().manual_seed(seed)
    n, t0, gp_last, wdist = len(data["x"]), time.perf_counter(), float("nan"), float("nan")
    iters = args.iters if norm is not None else args.iters // args.n_critic
    for it in range(iters):
        idx = torch.randint(0, n, (args.batch,), generator=rng)
        x, y = data["x"][idx], data["y"][idx].to(dev)
        if norm is not None:
            with torch.no_grad():
                fake = generate(gen, x, dev)
            gp = gradient_penalty(critic, y, fake)
            d_real, d_fake = critic(y).mean(), critic(fake).mean()
            loss_d = d_fake - d_real + 10.0 * gp
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            gp_last, wdist = gp.item(), (d_real - d_fake).item()
            if (it + 1) % args.n_critic:
                continue
            critic.requires_grad_(False)
        pred = generate(gen, x, dev)
        loss_g = 100 * F.l1_loss(pred, y) + 100 * F.mse_loss(pred, y)
        if norm is not None:
            loss_g = loss_g - critic(pred).mean()
            critic.requires_grad_(True)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    seconds = time.perf_counter() - t0
    mae_raw = validate(gen, data, dev)
    recalibrate_batchnorm(gen, data, dev, rng)
    return {"val_mae_mps": validate(gen, data, dev), "val_mae_raw_mps": mae_raw,
            "seconds": seconds, "gp": gp_last, "w_dist": wdist}  # fmt: skip


@torch.no_grad()
def recalibrate_batchnorm(gen, data, device, rng, n_batches: int = 10, batch: int = 32) -> None:
    """Re-estimate BatchNorm running statistics with the final weights (cumulative average).

    With a short run at a high learning rate the running averages lag behind the weights and
    that lag, not what the weights learned, dominates the eval-mode error; this removes it
    equally for every variant.
    """
    bns = [m for m in gen.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average
    gen.train()
    for _ in range(n_batches):
        generate(gen, data["x"][torch.randint(0, len(data["x"]), (batch,), generator=rng)], device)
    for bn in bns:
        bn.momentum = 0.1


@torch.no_grad()
def validate(gen, data, device) -> float:
    """Validation MAE in m/s (generator in eval mode)."""
    gen.eval()
    errs = [
        (generate(gen, data["xv"][i : i + 32], device) - data["yv"][i : i + 32].to(device)).abs()
        for i in range(0, len(data["xv"]), 32)
    ]
    gen.train()
    return torch.cat(errs).mean().item() * VEL_RANGE_MPS / 2.0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--iters", type=int, default=300, help="critic iterations per run")
    p.add_argument("--n-critic", type=int, default=5, help="critic steps per generator step")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--width", type=float, default=0.25, help="generator width")
    p.add_argument("--critic-width", type=float, default=0.5)
    p.add_argument("--n-train", type=int, default=320)
    p.add_argument("--n-val", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--norms", nargs="+", default=list(CRITIC_NORMS), choices=list(CRITIC_NORMS))
    p.add_argument("--no-control", action="store_true", help="skip the supervised control")
    p.add_argument("--cache", type=Path, default=Path("/tmp/vgan-critic-norm-data.npz"))
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.iters, args.n_train, args.n_val, args.seeds = 10, 32, 16, [0]
    print(f"machine: {platform.node()}; device: {args.device}; torch threads: "
          f"{torch.get_num_threads()}; torch {torch.__version__}")  # fmt: skip
    print(f"generator width {args.width}, critic width {args.critic_width}, batch {args.batch}, "
          f"{args.iters} iterations (n_critic {args.n_critic}), lr {args.lr}, "
          f"{args.n_train} train / {args.n_val} val layered maps")  # fmt: skip
    data = make_data(args.n_train, args.n_val, args.cache, args.device)
    runs = list(args.norms) + ([] if args.no_control else [None])
    print("\n| critic norm | seed | val MAE (m/s), BN recalibrated | val MAE (m/s), BN as trained "
          "| last GP | last D(real)-D(fake) | time (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        for norm in runs:
            r = train_one(norm, data, seed, args)
            name = norm if norm is not None else "control: no critic (L1+MSE)"
            print(f"| {name} | {seed} | {r['val_mae_mps']:.1f} | {r['val_mae_raw_mps']:.1f} | "
                  f"{r['gp']:.3g} | "
                  f"{r['w_dist']:.3g} | {r['seconds']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
