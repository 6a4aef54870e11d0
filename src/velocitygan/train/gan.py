"""Losses: the content loss of both models and the WGAN-GP critic/generator terms.

All losses work on normalised velocities ([-1, 1]); they are computed in float32 even when
the networks run under bfloat16 autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["generator_loss", "critic_loss", "gradient_penalty", "interpolation_factors"]


def generator_loss(
    pred: torch.Tensor, target: torch.Tensor, critic: nn.Module | None, *,
    l1_weight: float, l2_weight: float, adv_weight: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Content loss ``l1_weight * L1 + l2_weight * MSE`` (means over all pixels, normalised
    units) plus ``adv_weight * (-mean D(G(x)))`` when a critic is given.

    Returns the total loss and detached parts (``l1``, ``l2``, ``adv``, ``g_loss`` and, when
    ``pred`` carries gradients, ``adv_share``: the adversarial term's share of the gradient
    that the generator's output receives, ``|g_adv| / (|g_adv| + |g_content|)``; 0 means the
    critic has no say in the update).
    """
    l1, l2 = F.l1_loss(pred.float(), target), F.mse_loss(pred.float(), target)
    loss, parts = l1_weight * l1 + l2_weight * l2, {"l1": l1.detach(), "l2": l2.detach()}
    if critic is not None and adv_weight != 0.0:
        adv = adv_weight * -critic(pred).float().mean()
        if pred.requires_grad:
            g_content, = torch.autograd.grad(loss, pred, retain_graph=True)
            g_adv, = torch.autograd.grad(adv, pred, retain_graph=True)
            a, c = g_adv.norm(), g_content.norm()
            parts["adv_share"] = (a / (a + c)).detach()
        loss = loss + adv
        parts["adv"] = adv.detach() / adv_weight
    parts["g_loss"] = loss.detach()
    return loss, parts


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty ``mean((||grad_x D(x_hat)||_2 - 1)^2)``, ``x_hat = a real + (1-a) fake``.

    ``alpha`` holds one interpolation factor per sample, shape ``(N,)``. The gradient is taken
    with ``create_graph=True`` so the penalty itself back-propagates into the critic.
    """
    a = alpha.to(real.dtype).view(-1, *([1] * (real.dim() - 1)))
    x_hat = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    score = critic(x_hat).float()
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return ((grad.float().flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def critic_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor,
                *, gp_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``-mean D(real) + mean D(fake) + gp_weight * GP`` (Wasserstein critic with penalty).

    Real, fake and interpolated batches go through three separate forwards, as in the
    reference (with a BatchNorm critic, one concatenated forward would change the statistics).
    Under bfloat16 autocast only the two score terms run in bf16: the penalty is always
    computed in float32 (in bf16 it moved by up to 20 % per sample, bench/results/gpu_h200.md).
    """
    d_real = critic(real).float().mean()
    d_fake = critic(fake.detach()).float().mean()
    gp = torch.zeros(())
    if gp_weight:
        with torch.autocast(real.device.type, enabled=False):
            gp = gradient_penalty(critic, real.float(), fake.float(), alpha)
    loss = d_fake - d_real + gp_weight * gp
    return loss, {"d_loss": loss.detach(), "wasserstein": (d_real - d_fake).detach(),
                  "gp": gp.detach()}


def interpolation_factors(seed: int, step: int, *, rank: int, world_size: int,
                          local_batch: int) -> torch.Tensor:
    """Per-sample GP factors ``a ~ U(0, 1)`` for iteration ``step`` of this process, shape (B,).

    They are drawn for the whole global batch from a generator seeded by ``(seed, step)`` and
    sliced the way the sampler shards samples (rank r holds global positions r, r+K, ...), so
    a run with K processes uses exactly the factors of a one-process run, and a resumed run
    those of an uninterrupted one, without saving any generator state.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    full = torch.rand(local_batch * world_size, generator=g)
    return full.view(local_batch, world_size)[:, rank].contiguous()
