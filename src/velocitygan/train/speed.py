"""Speed switches: channels_last, bfloat16 autocast and torch.compile, per device and step.

``auto`` takes the fastest combination measured per device and step type
(:data:`FAST_SETTINGS`); ``true``/``false`` force a switch for both networks. torch.compile
is only applied to the generator: the critic's gradient penalty needs a double backward, which
compiled graphs do not support.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .config import TrainConfig

__all__ = ["FAST_SETTINGS", "SpeedPlan", "autocast", "recommended_precision", "resolve_speed"]

# Switches per device and step type (bench/bench_models.py; numbers in bench/results/models_cpu.md).
# Keys: "generator" (L1+MSE step), "critic" (the critic NETWORK in the WGAN-GP critic step),
# "gan_generator" (generator step with the adversarial term). "bf16" = torch.autocast(bfloat16).
# CPU (2-core EPYC, torch 2.13): channels_last + bf16 was fastest for every step type, 2-3.7x
# over eager fp32. Critic: bf16 for the score terms D(real), D(fake) (critic step 0.195 ->
# 0.158 s at batch 16); the gradient penalty always runs in fp32 (train/gan.py says why).
# CUDA (H200, torch 2.11, bench/results/gpu_h200.md): at batch 64 channels_last + bf16 was
# fastest for inference (9290 vs 7734 samples/s fp32), the generator step (3570 vs 1726) and the
# GAN generator step (3362 vs 1665); the critic step was fastest with channels_last in fp32
# (3240 vs 2429). At batch 16 none of the switches helped on an H100
# (bench/results/gpu_h100.md).
FAST_SETTINGS: dict[str, dict[str, dict[str, bool]]] = {
    "cpu": {"generator": {"channels_last": True, "bf16": True},
            "critic": {"channels_last": False, "bf16": True},
            "gan_generator": {"channels_last": True, "bf16": True}},
    "cuda": {"generator": {"channels_last": True, "bf16": True},
             "critic": {"channels_last": True, "bf16": False},
             "gan_generator": {"channels_last": True, "bf16": True}},
}


def recommended_precision(device_type: str, step: str) -> dict[str, bool]:
    """Fastest measured ``{"channels_last": bool, "bf16": bool}`` for a device and step type.

    Args:
        device_type: "cpu" or "cuda" (other types get eager fp32, both False).
        step: "generator", "critic" or "gan_generator".
    """
    steps = FAST_SETTINGS.get(device_type)
    if steps is None:
        return {"channels_last": False, "bf16": False}
    if step not in steps:
        raise ConfigError(f"unknown step type {step!r}; choose one of {', '.join(steps)}")
    return dict(steps[step])


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
    # Without native bf16 instructions (AVX512-BF16 or AMX) oneDNN emulates bf16: a width-0.25
    # generator step then runs 7x slower than in fp32 (bench/results/train_cpu.md).
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    return device.type == "cpu" and (native() or amx())


def resolve_speed(cfg: TrainConfig, device: torch.device) -> SpeedPlan:
    """Turn the ``auto``/``true``/``false`` switches of ``cfg`` into a :class:`SpeedPlan`."""
    g_step = "gan_generator" if cfg.model == "velocitygan" else "generator"
    rec_g = recommended_precision(device.type, g_step)
    rec_d = recommended_precision(device.type, "critic")

    def pick(value: str, recommended: bool) -> bool:
        return recommended if value == "auto" else value == "true"

    bf16_ok = _bf16_ok(device)  # `auto` only; an explicit `true` is the user's to measure
    return SpeedPlan(
        g_channels_last=pick(cfg.channels_last, rec_g["channels_last"]),
        g_bf16=pick(cfg.bf16, rec_g["bf16"] and bf16_ok),
        d_channels_last=pick(cfg.channels_last, rec_d["channels_last"]),
        d_bf16=pick(cfg.bf16, rec_d["bf16"] and bf16_ok),
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
