"""Speed switches: channels_last, bfloat16 autocast and torch.compile, per device and step.

``auto`` takes the fastest combination the models helper measured for each step type
(:func:`velocitygan.models.recommended_precision`); ``true``/``false`` force a switch for
both networks. torch.compile is only applied to the generator: the critic's gradient penalty
needs a double backward, which compiled graphs do not support.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..models import recommended_precision
from .config import TrainConfig

__all__ = ["SpeedPlan", "resolve_speed", "autocast"]


@dataclass(frozen=True)
class SpeedPlan:
    """Resolved switches: memory format and autocast per network, compile for the generator."""

    g_channels_last: bool
    g_bf16: bool
    d_channels_last: bool
    d_bf16: bool
    compile: bool

    def describe(self) -> str:
        """One line for the log."""
        return (f"generator channels_last={self.g_channels_last} bf16={self.g_bf16}; "
                f"critic channels_last={self.d_channels_last} bf16={self.d_bf16}; "
                f"compile={self.compile}")


def _bf16_ok(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu"


def resolve_speed(cfg: TrainConfig, device: torch.device) -> SpeedPlan:
    """Turn the ``auto``/``true``/``false`` switches of ``cfg`` into a :class:`SpeedPlan`."""
    g_step = "gan_generator" if cfg.model == "velocitygan" else "generator"
    rec_g = recommended_precision(device.type, g_step)
    rec_d = recommended_precision(device.type, "critic")

    def pick(value: str, recommended: bool) -> bool:
        return recommended if value == "auto" else value == "true"

    bf16_ok = _bf16_ok(device)
    return SpeedPlan(
        g_channels_last=pick(cfg.channels_last, rec_g["channels_last"]),
        g_bf16=pick(cfg.bf16, rec_g["bf16"]) and bf16_ok,
        d_channels_last=pick(cfg.channels_last, rec_d["channels_last"]),
        d_bf16=pick(cfg.bf16, rec_d["bf16"]) and bf16_ok,
        # compile costs 25-40 s and gains little: CPU generator forward 0.31 -> 0.27 s at
        # batch 16, forward+backward slower; H100 VelocityGAN at batch 16 223 -> 187
        # samples/s (bench/results/gpu_h100.md). Opt-in everywhere.
        compile=pick(cfg.compile, False),
    )


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on ``device`` when ``enabled``, else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
