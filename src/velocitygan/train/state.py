"""Networks, optimisers and run position of a training run; checkpoint dump and restore."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..checkpoint import generator_parts
from ..data import DatasetSpec
from ..errors import ConfigError
from ..models import Discriminator, InversionNet
from .config import TrainConfig
from .distributed import DistEnv, broadcast_module
from .speed import SpeedPlan

__all__ = ["TrainState", "apply_lr", "build_state", "checkpoint_state", "lr_factor",
           "restore_state", "set_train_mode"]


@dataclass
class TrainState:
    """Everything that changes during training (and goes into ``last.pt``)."""

    cfg: TrainConfig
    env: DistEnv
    plan: SpeedPlan
    spec: DatasetSpec
    generator: nn.Module  # the plain module: checkpoints, validation
    g_forward: nn.Module  # what the training forward calls: DDP-wrapped and/or compiled
    critic: nn.Module | None  # never DDP-wrapped: see loop.critic_update
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    frozen: nn.Module | None = None
    ema: AveragedModel | None = None  # the generator's weight average (cfg.ema_decay)
    iterate: dict[str, Any] | None = None  # the trained weights, once the average replaced them
    epoch: int = 0  # epoch in progress (0-based)
    step: int = 0  # iterations done in total (one batch = one iteration)
    batches_done: int = 0  # iterations done in the epoch in progress
    best_val_mae: float = math.inf
    elapsed_s: float = 0.0  # training + validation seconds over all sessions (the budget)
    sums: dict[str, float] = field(default_factory=dict)  # loss sums of the epoch in progress
    skipped: int = 0  # batches skipped for a non-finite loss in the epoch in progress
    epoch_time_s: float = 0.0  # step time spent in the epoch in progress
    epoch_samples: int = 0  # samples (all processes) trained on in the epoch in progress
    total_steps: int = 0  # iterations of the whole run (for the lr schedule)


def _fmt(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def _init_from(generator: InversionNet, path: str) -> dict[str, Any]:
    """Load the generator weights of ``path``; returns the checkpoint (for its critic)."""
    state, config, ckpt = generator_parts(path)
    what = ", ".join(f"{k} {config.get(k)} (checkpoint) vs {v} (this run)"
                     for k, v in generator.config.items() if config.get(k) != v)
    if what:
        raise ConfigError(f"{path}: generator does not match this run: {what}; "
                          "set --width / the dataset to match the checkpoint")
    generator.load_state_dict(state)
    return ckpt


def _init_critic(critic: Discriminator, ckpt: dict[str, Any]) -> bool:
    """Start a fine-tuning critic from the checkpoint's own when it has one of the same shape:
    a critic trained on the source family already knows what a velocity map looks like, where
    a fresh one would give the generator noise for its first iterations."""
    saved = (ckpt.get("model") or {}).get("discriminator")
    if not saved or ckpt.get("discriminator") is None or saved != critic.config:
        return False
    critic.load_state_dict(ckpt["discriminator"])
    return True


def set_train_mode(ts: TrainState) -> None:
    """Training mode for the networks, but the frozen part stays in eval mode (fixed stats)."""
    ts.generator.train()
    if ts.frozen is not None:
        ts.frozen.eval()
    if ts.critic is not None:
        ts.critic.train()


def _adamw(params: list, lr: float, betas: list, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with the fused kernel where torch has one for the parameters' device (one pass
    over weights, gradients and moments: the generator's update 98 -> 17 ms on 2 CPU cores)."""
    kw = {"lr": lr, "betas": (float(betas[0]), float(betas[1])), "weight_decay": weight_decay}
    try:
        opt = torch.optim.AdamW(params, fused=True, **kw)
    except (RuntimeError, ValueError, TypeError):  # device or torch version without it
        opt = torch.optim.AdamW(params, **kw)
    for group in opt.param_groups:
        group["base_lr"] = lr  # the schedule scales this (see lr_factor)
    return opt


def lr_factor(step: int, total_steps: int, cfg: TrainConfig, elapsed_s: float = 0.0) -> float:
    """Learning-rate multiplier at iteration ``step`` (0-based) after ``elapsed_s`` seconds of
    training: linear warm-up, then constant (reference) or cosine decay from 1 to
    ``min_lr_ratio``. The cosine ends at ``total_steps`` or at ``time_limit_min``, whichever
    comes first, so a run stopped by its time budget still ends on a settled model."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant" or total_steps <= cfg.warmup_steps:
        return 1.0
    progress = (step - cfg.warmup_steps) / (total_steps - cfg.warmup_steps)
    if cfg.time_limit_min:
        progress = max(progress, elapsed_s / (60.0 * cfg.time_limit_min))
    progress = min(1.0, progress)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def apply_lr(ts: TrainState) -> None:
    """Set every parameter group's lr for iteration ``ts.step``."""
    factor = lr_factor(ts.step, ts.total_steps, ts.cfg, ts.elapsed_s)
    for opt in (ts.opt_g, ts.opt_d):
        for group in [] if opt is None else opt.param_groups:
            group["lr"] = group["base_lr"] * factor


def build_state(cfg: TrainConfig, spec: DatasetSpec, env: DistEnv, plan: SpeedPlan, *,
                restoring: bool = False) -> TrainState:
    """Build networks (seeded), optional init/freeze, DDP wrapper and optimisers.

    ``restoring``: a checkpoint will overwrite the weights, so ``init_from`` is not read (a
    resumed fine-tuning run does not need its starting checkpoint any more).
    """
    torch.manual_seed(cfg.seed)
    shots, nt, receivers = spec.seismic_shape
    generator = InversionNet(width=cfg.width, in_channels=shots, nt=nt, n_receivers=receivers)
    source = _init_from(generator, cfg.init_from) if cfg.init_from and not restoring else {}
    # the frozen part gets no gradients and keeps its BatchNorm statistics (set_train_mode)
    frozen = None if cfg.freeze == "none" else getattr(generator, cfg.freeze).requires_grad_(False)
    critic = None
    if cfg.model == "velocitygan":
        critic = Discriminator(width=cfg.critic_width, norm=cfg.critic_norm)
        _init_critic(critic, source)
    if env.enabled and cfg.sync_batchnorm:
        if env.device.type != "cuda":
            raise ConfigError("sync_batchnorm needs CUDA devices (torch has no CPU SyncBatchNorm)")
        generator = nn.SyncBatchNorm.convert_sync_batchnorm(generator)
    generator.to(env.device, memory_format=_fmt(plan.g_channels_last))
    broadcast_module(generator, env)
    g_forward: nn.Module = generator
    if env.enabled:
        ids = [env.device.index] if env.device.type == "cuda" else None
        g_forward = DistributedDataParallel(generator, device_ids=ids)
    if plan.compile:
        g_forward = torch.compile(g_forward)
    trainable = [p for p in generator.parameters() if p.requires_grad]
    lr = cfg.unfrozen_lr if (frozen is not None and cfg.unfrozen_lr > 0) else cfg.lr
    opt_g = _adamw(trainable, lr, cfg.betas, cfg.weight_decay)
    opt_d = None
    if critic is not None:
        critic.to(env.device, memory_format=_fmt(plan.d_channels_last))
        broadcast_module(critic, env)
        opt_d = _adamw(list(critic.parameters()), cfg.critic_lr, cfg.critic_betas,
                       cfg.critic_weight_decay)
    ema = (AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay))
           if cfg.ema_decay else None)
    return TrainState(cfg=cfg, env=env, plan=plan, spec=spec, generator=generator, frozen=frozen,
                      g_forward=g_forward, critic=critic, opt_g=opt_g, opt_d=opt_d, ema=ema)


def _data_order(cfg: TrainConfig) -> dict[str, Any]:
    """The settings that fix which samples the first ``batches_done`` batches of an epoch were."""
    return {"seed": cfg.seed, "batch_size": cfg.batch_size, "train": cfg.train,
            "train_limit": cfg.train_limit}


def _load_optimizer(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load moments and step counts, but keep this run's lr, betas and weight decay (a resume
    with a new ``--lr`` uses it; ``load_state_dict`` alone would bring back the saved ones)."""
    fresh = [{k: g[k] for k in ("base_lr", "betas", "weight_decay")} for g in opt.param_groups]
    opt.load_state_dict(state)
    for group, keep in zip(opt.param_groups, fresh, strict=True):
        group.update(keep)


def checkpoint_state(ts: TrainState) -> dict[str, Any]:
    """The checkpoint dict (tensors, numbers, strings, lists, dicts only)."""
    cfg = ts.cfg
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if ts.env.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(ts.env.device)
    return {
        "model": {"kind": cfg.model, "generator": dict(ts.generator.config),
                  "discriminator": None if ts.critic is None else dict(ts.critic.config)},
        "dataset": ts.spec.to_dict(),
        "generator": ts.generator.state_dict(),
        "discriminator": None if ts.critic is None else ts.critic.state_dict(),
        "generator_ema": None if ts.ema is None else ts.ema.state_dict(),
        "generator_iterate": ts.iterate,  # what a longer budget goes on training
        "optimizers": {"generator": ts.opt_g.state_dict()}
        | ({} if ts.opt_d is None else {"critic": ts.opt_d.state_dict()}),
        "epoch": ts.epoch, "step": ts.step,
        "position": {"epoch": ts.epoch, "batches_done": ts.batches_done,
                     "order": _data_order(cfg)},
        "config": cfg.to_dict(),
        "metrics": {"best_val_mae": ts.best_val_mae, "elapsed_s": ts.elapsed_s,
                    "epoch_sums": dict(ts.sums), "skipped": ts.skipped,
                    "epoch_time_s": ts.epoch_time_s, "epoch_samples": ts.epoch_samples},
        "rng": rng,
    }


def restore_state(ts: TrainState, ckpt: dict[str, Any], source: str) -> None:
    """Load weights, optimiser states, position and RNG of a ``last.pt`` into ``ts``."""
    kind = ckpt.get("model", {}).get("kind")
    if kind != ts.cfg.model:
        raise ConfigError(f"{source}: checkpoint is a {kind} run; this run is {ts.cfg.model}")
    try:
        ts.generator.load_state_dict(ckpt.get("generator_iterate") or ckpt["generator"])
        _load_optimizer(ts.opt_g, ckpt["optimizers"]["generator"])
        if ts.critic is not None:
            ts.critic.load_state_dict(ckpt["discriminator"])
            _load_optimizer(ts.opt_d, ckpt["optimizers"]["critic"])
        if ts.ema is not None and ckpt.get("generator_ema"):  # else it starts from here
            ts.ema.load_state_dict(ckpt["generator_ema"])
    except (KeyError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[-1].strip()[:200]
        raise ConfigError(f"{source}: does not fit this run's networks ({first}); "
                          "resume with the run's own config.toml") from None
    pos, metrics = ckpt["position"], ckpt.get("metrics", {})
    saved, now = pos.get("order"), _data_order(ts.cfg)
    if int(pos["batches_done"]) and saved is not None and saved != now:
        what = ", ".join(f"{k} {saved.get(k)!r} (checkpoint) vs {v!r} (now)"
                         for k, v in now.items() if saved.get(k) != v)
        raise ConfigError(f"{source}: stopped mid-epoch, and resuming needs the same data order: "
                          f"{what}; resume with the saved values (config.toml)")
    ts.epoch, ts.batches_done, ts.step = int(pos["epoch"]), int(pos["batches_done"]), ckpt["step"]
    ts.best_val_mae = float(metrics.get("best_val_mae", math.inf))
    ts.elapsed_s = float(metrics.get("elapsed_s", 0.0))
    ts.sums = dict(metrics.get("epoch_sums", {}))
    ts.skipped = int(metrics.get("skipped", 0))
    ts.epoch_time_s = float(metrics.get("epoch_time_s", 0.0))
    ts.epoch_samples = int(metrics.get("epoch_samples", 0))
    torch.set_rng_state(ckpt["rng"]["torch"])
    if "cuda" in ckpt["rng"] and ts.env.device.type == "cuda":
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"], ts.env.device)
