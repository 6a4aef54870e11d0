"""The training loop shared by both models: InversionNet is the generator with a content
loss; VelocityGAN adds the WGAN-GP critic (critic every iteration, generator every
``n_critic``-th iteration on that iteration's batch)."""

from __future__ import annotations

import math
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Subset

from ..checkpoint import save_checkpoint
from ..errors import VelocityGANError
from ..io import atomic_path
from ..metrics import MetricAccumulator
from .distributed import allreduce_grads, allreduce_sum, broadcast_module
from .gan import critic_loss, generator_loss, interpolation_factors
from .loaders import batches_per_epoch, local_batch, train_loader
from .runlog import RunLog
from .speed import autocast
from .state import TrainState, apply_lr, checkpoint_state, set_train_mode

__all__ = ["NonFiniteLossError", "StopFlag", "any_rank", "recompute_batchnorm", "save_last",
           "train_one_epoch", "train_step", "validate"]


class NonFiniteLossError(VelocityGANError):
    """A loss became NaN or Inf and ``nan_policy = "stop"``."""


class StopFlag:
    """Ctrl-C (SIGINT) sets a flag; the loop saves ``last.pt`` at the next step and exits.

    A second Ctrl-C interrupts at once (the default handler is back after the first).
    """

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._old)

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def rank_max(value: float, ts: TrainState) -> float:
    """The largest ``value`` over all processes (one tiny all-reduce under DDP)."""
    if not ts.env.enabled:
        return value
    t = torch.tensor([float(value)], device=ts.env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def any_rank(flag: bool, ts: TrainState) -> bool:
    """True if ``flag`` holds on any process."""
    return rank_max(float(flag), ts) > 0.0


def limit_reached(ts: TrainState) -> bool:
    """``max_steps`` or ``time_limit_min`` reached (the same answer on every process). The time
    limit counts training and validation time over all sessions of the run, so a resumed run
    keeps its budget."""
    cfg = ts.cfg
    if cfg.max_steps and ts.step >= cfg.max_steps:
        return True
    return bool(cfg.time_limit_min) and any_rank(ts.elapsed_s >= 60.0 * cfg.time_limit_min, ts)


def _finite_or_skip(loss: torch.Tensor, name: str, ts: TrainState) -> bool:
    """False (skip the batch) or raise when ``loss`` is not finite on some process."""
    if not any_rank(not bool(torch.isfinite(loss.detach())), ts):
        return True
    if ts.cfg.nan_policy == "skip":
        return False
    where = f"epoch {ts.epoch + 1}, iteration {ts.step + 1}"
    kept = Path(ts.cfg.out) / "last.pt"
    raise NonFiniteLossError(
        f"{name} loss became NaN/Inf at {where}; stopped without saving, "
        f"{kept} holds the last good state" + ("" if kept.exists() else " (none written yet)")
        + "; lower --lr, check the data, or set nan_policy = \"skip\"")


def _to(x: torch.Tensor, ts: TrainState, channels_last: bool) -> torch.Tensor:
    x = x.to(ts.env.device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def critic_update(ts: TrainState, real: torch.Tensor, fake: torch.Tensor) -> dict | None:
    """One WGAN-GP critic step; None when the batch is skipped for a non-finite loss.

    The critic is never DDP-wrapped: its penalty needs a double backward, and its three
    forwards (real, fake, interpolates) precede one backward, so DDP's hooks would reduce
    gradients at the wrong moments. Every process runs the plain module on its shard and one
    explicit all-reduce averages the gradients before the optimiser step. The mean over K equal
    shards of the local mean loss is the global mean loss, so this is exactly the one-process
    gradient (for a norm-free/layer/instance critic; a BatchNorm critic normalises per process,
    as DDP without SyncBatchNorm would).
    """
    cfg, critic = ts.cfg, ts.critic
    critic.requires_grad_(True)
    real = _to(real, ts, ts.plan.d_channels_last)
    fake = fake.contiguous(memory_format=torch.channels_last) if ts.plan.d_channels_last else fake
    alpha = interpolation_factors(cfg.seed, ts.step, rank=ts.env.rank,
                                  world_size=ts.env.world_size, local_batch=real.shape[0])
    with autocast(ts.env.device, ts.plan.d_bf16):
        loss, parts = critic_loss(critic, real, fake, alpha.to(real.device),
                                  gp_weight=cfg.gp_weight)
    if not _finite_or_skip(loss, "critic", ts):
        return None
    ts.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    allreduce_grads(critic.parameters(), ts.env.world_size)
    ts.opt_d.step()
    return parts


def train_step(ts: TrainState, x: torch.Tensor, y: torch.Tensor) -> dict[str, float] | None:
    """One iteration on a local batch: critic step (GAN), generator step when it is due.

    Returns the detached loss parts as floats, or None if the batch was skipped.
    """
    cfg, plan = ts.cfg, ts.plan
    apply_lr(ts)
    # content-only warm-up: no critic, and a generator step every iteration
    critic = ts.critic if ts.step >= cfg.adv_start_steps else None
    gen_turn = critic is None or (ts.step - cfg.adv_start_steps + 1) % cfg.n_critic == 0
    x = _to(x, ts, plan.g_channels_last)
    y = y.to(ts.env.device, non_blocking=True)
    with autocast(ts.env.device, plan.g_bf16), torch.set_grad_enabled(gen_turn):
        pred = ts.g_forward(x)
    parts: dict[str, torch.Tensor] = {}
    if critic is not None:
        d_parts = critic_update(ts, y, pred.detach().float())
        if d_parts is None:
            return None
        parts |= d_parts
    if gen_turn:
        if critic is not None:
            critic.requires_grad_(False)  # the generator step must not touch the critic
        with autocast(ts.env.device, plan.g_bf16):
            loss, g_parts = generator_loss(pred.float(), y, critic, l1_weight=cfg.l1_weight,
                                           l2_weight=cfg.l2_weight, adv_weight=cfg.adv_weight)
        if not _finite_or_skip(loss, "generator", ts):
            return None
        ts.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        ts.opt_g.step()
        if ts.ema is not None:
            ts.ema.update_parameters(ts.generator)
        parts |= g_parts
    return {k: float(v) for k, v in parts.items()}


def save_last(ts: TrainState, run_dir: Path, *, best: bool = False) -> None:
    """Write ``last.pt`` (main process only); copy it to ``best.pt`` when ``best``."""
    if not ts.env.is_main:
        return
    save_checkpoint(run_dir / "last.pt", checkpoint_state(ts))
    if best:
        with atomic_path(run_dir / "best.pt") as tmp:
            shutil.copyfile(run_dir / "last.pt", tmp)


def train_one_epoch(ts: TrainState, ds: Dataset, augment: object, log: RunLog, run_dir: Path,
                    stop: StopFlag) -> str:
    """Run the rest of epoch ``ts.epoch``; returns ``done``, ``interrupted`` or ``limit``
    (``max_steps`` or the time limit reached mid-epoch)."""
    cfg = ts.cfg
    total = batches_per_epoch(ds, cfg, ts.env)
    loader = train_loader(ds, cfg, ts.env, ts.epoch, ts.batches_done, augment)
    set_train_mode(ts)
    log.start_epoch(ts.epoch, cfg.epochs, total, ts.batches_done)
    t_last, n_last = time.perf_counter(), 0
    iterator = iter(loader)
    t0 = time.perf_counter()  # iteration time includes fetching the batch
    while True:
        try:
            x, y = next(iterator)
        except StopIteration:
            return "done"
        except RuntimeError:  # a DataLoader worker died, usually from the same Ctrl-C
            if stop.requested:
                return "interrupted"
            raise
        parts = train_step(ts, x, y)
        ts.step += 1
        ts.batches_done += 1
        if parts is None:
            ts.skipped += 1
        else:
            for k, v in parts.items():
                ts.sums[k] = ts.sums.get(k, 0.0) + v
                ts.sums["n_" + k] = ts.sums.get("n_" + k, 0.0) + 1
        now = time.perf_counter()
        # every process keeps the slowest one's clock: the same lr and the same time limit
        ts.elapsed_s = rank_max(ts.elapsed_s + now - t0, ts)
        ts.epoch_time_s += now - t0
        ts.epoch_samples += x.shape[0] * ts.env.world_size
        n_last += x.shape[0] * ts.env.world_size
        rate = n_last / max(now - t_last, 1e-9)
        log.step(ts.step, ts.batches_done, total, rate, parts or {}, cfg.log_every_steps)
        if ts.step % cfg.log_every_steps == 0:
            t_last, n_last = now, 0
        if cfg.checkpoint_every_steps and ts.step % cfg.checkpoint_every_steps == 0:
            save_last(ts, run_dir)
        t0 = time.perf_counter()
        if any_rank(stop.requested, ts):
            return "interrupted"
        if limit_reached(ts):
            return "done" if ts.batches_done >= total else "limit"


@torch.no_grad()
def recompute_batchnorm(ts: TrainState, ds: Dataset, log: RunLog) -> None:
    """Set the generator's BatchNorm statistics (a frozen part's excepted) to the equal-weight
    average of their batch statistics over ``bn_recompute_samples`` training samples, in
    float32 as validation runs, averaged over processes. The running averages training keeps
    follow the last few batches, and the final weights score several m/s worse with them."""
    kept = set() if ts.frozen is None else set(ts.frozen.modules())  # frozen: stays as it is
    norms = [m for m in ts.generator.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m not in kept]
    b, ws = local_batch(ts.cfg, ts.env), ts.env.world_size
    n = min(len(ds) // ws, ts.cfg.bn_recompute_samples // ws)
    n = n // b * b or n  # whole batches: BatchNorm cannot normalise a batch of one at 1 x 1
    if not norms or n < 2:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(ts.cfg.seed))
    set_train_mode(ts)  # the frozen part runs in eval mode and keeps its statistics
    for x, _ in DataLoader(Subset(ds, order[ts.env.rank::ws][:n].tolist()), batch_size=b):
        ts.generator(_to(x, ts, ts.plan.g_channels_last))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
        if ts.env.enabled:  # every process saw as many batches: the mean is the global mean
            for buf in (m.running_mean, m.running_var):
                dist.all_reduce(buf)
                buf /= ws
    log.info(f"BatchNorm statistics set from {n * ws} training samples")


@torch.no_grad()
def validate(ts: TrainState, loader: DataLoader) -> dict[str, float]:
    """Global MAE, RMSE, SSIM (normalised; OpenFWI conventions) and m/s figures, in float32.

    Every process first takes rank 0's BatchNorm running statistics (each process updated its
    own from its own batches), so all shares are scored with the network ``last.pt`` saves.
    """
    broadcast_module(ts.generator, ts.env, buffers_only=True)
    ts.generator.eval()
    acc = MetricAccumulator(half_range_mps=(ts.spec.label_max - ts.spec.label_min) / 2)
    for x, y in loader:
        # float32 even when training runs in bf16: best.pt is chosen on the numbers that
        # `velocitygan evaluate` gives for it
        pred = ts.generator(_to(x, ts, ts.plan.g_channels_last))
        acc.update(pred.float().cpu(), y)
    sums = allreduce_sum([acc.abs_sum, acc.sq_sum, acc.ssim_sum, acc.pixels, acc.samples], ts.env)
    acc.abs_sum, acc.sq_sum, acc.ssim_sum = sums[:3]
    acc.pixels, acc.samples = int(sums[3]), int(sums[4])
    set_train_mode(ts)
    return acc.compute()


def epoch_means(ts: TrainState) -> dict[str, float]:
    """Mean of each loss part over the epoch in progress (averaged over processes)."""
    keys = sorted(k for k in ts.sums if not k.startswith("n_"))
    vals = allreduce_sum([ts.sums[k] for k in keys] + [ts.sums["n_" + k] for k in keys]
                         + [float(ts.skipped)], ts.env)
    n = len(keys)
    means = {k: vals[i] / vals[n + i] if vals[n + i] else math.nan for i, k in enumerate(keys)}
    means["skipped_batches"] = int(vals[-1])
    return means
