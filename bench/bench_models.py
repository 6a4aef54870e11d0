"""Throughput of the full-size networks per step type and precision/layout switch.

Step types (all at full width, OpenFWI shapes):
  inference      generator forward, eval mode, no autograd;
  generator      InversionNet training step, loss L1 + MSE, AdamW;
  critic         WGAN-GP critic step: generator forward (no grad), critic on real and fake,
                 gradient penalty with its double backward, AdamW (switches on both networks);
  critic_net     the same without the generator forward (fake computed once): the switches'
                 effect on the critic network alone;
  gan_generator  VelocityGAN generator step: 100 L1 + 100 MSE - mean D(G(x)), AdamW
                 (critic parameters frozen during this step).
Switch combinations: eager fp32, channels_last, bf16 autocast, channels_last + bf16;
``--compile`` adds torch.compile variants (slow to compile: ~30-40 s per model on CPU).
Also compares the gradient-penalty value in fp32 and under bf16 autocast on one batch.

Usage:
  PYTHONPATH=src python bench/bench_models.py --device cpu --batch 16 64 --steps 2
  PYTHONPATH=src python bench/bench_models.py --device cuda --batch 16 64 --steps 10 --compile
Prints a markdown table (samples/s, higher is better) with machine, threads, device, torch.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from velocitygan.models import Discriminator, InversionNet

STEPS = ("inference", "generator", "critic", "critic_net", "gan_generator")
COMBOS = {
    "fp32": (False, False),
    "channels_last": (True, False),
    "bf16": (False, True),
    "channels_last+bf16": (True, True),
}


def autocast(device: str, bf16: bool):
    """bf16 autocast context on ``device``, or a no-op."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16)


def gradient_penalty(
    critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, device: str, bf16: bool
) -> torch.Tensor:
    """WGAN-GP penalty mean((||grad D(a real + (1-a) fake)||_2 - 1)^2), a ~ U(0,1) per sample."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    with autocast(device, bf16):
        score = critic(mixed)
    (grad,) = torch.autograd.grad(score.float().sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def make_step(step: str, gen, critic, x, y, device: str, bf16: bool) -> Callable[[], None]:
    """A closure running one step of type ``step`` on the batch ``(x, y)``."""
    opt_g = torch.optim.AdamW(gen.parameters(), lr=1e-4, betas=(0.0, 0.9), weight_decay=1e-4)
    opt_d = torch.optim.AdamW(critic.parameters(), lr=1e-4, betas=(0.0, 0.9), weight_decay=1e-4)

    def inference() -> None:
        gen.eval()
        with torch.inference_mode(), autocast(device, bf16):
            gen(x)

    def generator() -> None:
        gen.train()
        with autocast(device, bf16):
            pred = gen(x).float()
        loss = F.l1_loss(pred, y) + F.mse_loss(pred, y)
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()

    def critic_step() -> None:
        gen.train()
        critic.train()
        with torch.no_grad(), autocast(device, bf16):
            fake = gen(x).float()
        with autocast(device, bf16):
            loss = critic(fake).float().mean() - critic(y).float().mean()
        loss = loss + 10.0 * gradient_penalty(critic, y, fake, device, bf16)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()

    fake_fixed = None

    def critic_net() -> None:
        # The critic network alone: the generator's fake is computed once, outside the timing.
        nonlocal fake_fixed
        if fake_fixed is None:
            with torch.no_grad():
                fake_fixed = gen(x).float()
        critic.train()
        with autocast(device, bf16):
            loss = critic(fake_fixed).float().mean() - critic(y).float().mean()
        loss = loss + 10.0 * gradient_penalty(critic, y, fake_fixed, device, bf16)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()

    def gan_generator() -> None:
        gen.train()
        critic.requires_grad_(False)
        with autocast(device, bf16):
            pred = gen(x)
            adv = -critic(pred).float().mean()
        pred = pred.float()
        loss = 100 * F.l1_loss(pred, y) + 100 * F.mse_loss(pred, y) + adv
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        critic.requires_grad_(True)

    table = {
        "inference": inference,
        "generator": generator,
        "critic": critic_step,
        "critic_net": critic_net,
        "gan_generator": gan_generator,
    }
    return table[step]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_step(fn: Callable[[], None], device: str, warmup: int, steps: int) -> float:
    """Seconds per step (mean over ``steps`` after ``warmup`` untimed steps)."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - start) / steps


def build(step: str, device: str, channels_last: bool, compiled: bool, width: float = 1.0):
    torch.manual_seed(0)
    gen = InversionNet(width=width).to(device)
    critic = Discriminator(width=width, norm="batch").to(device)
    if channels_last:
        gen = gen.to(memory_format=torch.channels_last)
        critic = critic.to(memory_format=torch.channels_last)
    if compiled:
        torch._dynamo.reset()  # fresh caches: each case compiles its own graphs
        gen = torch.compile(gen)
        # torch.compile (aot_autograd) has no double backward: the critic stays eager in the
        # critic step, whose gradient penalty differentiates through the critic twice.
        if step not in ("critic", "critic_net"):
            critic = torch.compile(critic)
    return gen, critic


def batch_data(device: str, batch: int, channels_last: bool):
    x = torch.randn(batch, 5, 1000, 70, device=device)
    y = torch.rand(batch, 1, 70, 70, device=device) * 2 - 1
    if channels_last:
        x, y = (t.contiguous(memory_format=torch.channels_last) for t in (x, y))
    return x, y


def run_case(step, batch, combo, compiled, args) -> float | str:
    """Samples/s of one case, or a short reason string if it failed."""
    channels_last, bf16 = COMBOS[combo]
    gen, critic = build(step, args.device, channels_last, compiled, args.width)
    x, y = batch_data(args.device, batch, channels_last)
    fn = make_step(step, gen, critic, x, y, args.device, bf16)
    steps = args.steps if step != "inference" else max(args.steps, 3)
    try:
        # compiled graphs need two calls (first compiles forward/backward, second settles)
        seconds = time_step(fn, args.device, args.warmup + (1 if compiled else 0), steps)
    except Exception as exc:  # noqa: BLE001 - report, e.g. compile without double backward
        return f"fails: {type(exc).__name__}"
    return batch / seconds


def _gp_parts(critic, real, fake, device, bf16) -> tuple[float, torch.Tensor, torch.Tensor]:
    """(penalty, per-sample input-gradient norms, flattened parameter gradient of the penalty)."""
    torch.manual_seed(2)  # same mixing coefficients for both precisions
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    with autocast(device, bf16):
        score = critic(mixed)
    (grad,) = torch.autograd.grad(score.float().sum(), mixed, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    gp = ((norms - 1) ** 2).mean()
    critic.zero_grad(set_to_none=True)
    gp.backward()
    pgrad = [torch.zeros_like(p) if p.grad is None else p.grad for p in critic.parameters()]
    return gp.item(), norms.detach(), torch.cat([g.flatten() for g in pgrad])


def gp_precision_check(device: str, batch: int = 16) -> list[str]:
    """Gradient penalty on one batch in fp32 vs bf16 autocast (same critic, same mixing a)."""
    lines = []
    for norm in ("batch", "none"):
        torch.manual_seed(1)
        critic = Discriminator(norm=norm).to(device).train()
        gen = InversionNet(width=0.25).to(device).eval()
        x, real = batch_data(device, batch, False)
        with torch.no_grad():
            fake = gen(x)
        gp32, n32, g32 = _gp_parts(critic, real, fake, device, False)
        gp16, n16, g16 = _gp_parts(critic, real, fake, device, True)
        norm_err = ((n16 - n32).abs() / n32).max().item()
        cos = F.cosine_similarity(g16, g32, dim=0).item()
        lines.append(
            f"GP, critic norm={norm}, batch {batch}: fp32 {gp32:.5f}, bf16 autocast {gp16:.5f}; "
            f"per-sample ||grad D|| (fp32 mean {n32.mean().item():.3g}) max relative difference "
            f"{norm_err:.1e}; cosine of the penalty's parameter gradients {cos:.4f}"
        )
    return lines


def header(args) -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    dev = torch.cuda.get_device_name() if args.device == "cuda" else cpu
    return (
        f"machine: {platform.node()} ({cpu}); device: {args.device} ({dev}); "
        f"torch threads: {torch.get_num_threads()}; torch {torch.__version__}; "
        f"steps {args.steps} after {args.warmup} warm-up; width {args.width}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--steps", type=int, default=2, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per case")
    parser.add_argument("--quick", action="store_true", help="batch 16 only, 1 timed step")
    parser.add_argument("--compile", action="store_true", help="add torch.compile variants")
    parser.add_argument("--width", type=float, default=1.0, help="network width (smoke tests)")
    parser.add_argument("--combos", nargs="+", default=list(COMBOS), choices=list(COMBOS))
    parser.add_argument("--step-types", nargs="+", default=list(STEPS), choices=list(STEPS))
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.steps = [16], 1
    variants = [(c, False) for c in args.combos]
    if args.compile:
        variants += [(c, True) for c in args.combos]
    print(header(args))
    print("\n".join(gp_precision_check(args.device)))
    names = [f"{c}{' +compile' if k else ''}" for c, k in variants]
    print("\nsamples/s (higher is better)\n")
    print("| step | batch | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for step in args.step_types:
        batches = ([1] if step == "inference" else []) + args.batch
        for batch in batches:
            cells = []
            for combo, compiled in variants:
                result = run_case(step, batch, combo, compiled, args)
                cells.append(result if isinstance(result, str) else f"{result:.2f}")
            print(f"| {step} | {batch} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
