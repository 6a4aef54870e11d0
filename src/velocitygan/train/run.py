"""``train(config)``: one training run from a configuration to a run folder."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from .. import __version__
from ..checkpoint import load_checkpoint
from ..data import DatasetSpec, get_dataset
from ..errors import ConfigError, VelocityGANError
from ..hostmem import reuse_freed_memory
from ..io import differences, stamp, write_text
from ..pretrained import resolve_checkpoint
from .config import TrainConfig, dump_toml, load_toml_config, resolve_config
from .distributed import DistEnv, setup_distributed, teardown_distributed
from .loaders import batches_per_epoch, build_datasets, val_loader
from .loop import (
    StopFlag,
    epoch_means,
    limit_reached,
    recompute_batchnorm,
    save_last,
    train_one_epoch,
    validate,
)
from .runlog import RunLog
from .speed import resolve_speed
from .state import TrainState, build_state, restore_state

__all__ = ["train", "fit"]


def absolute_paths(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its file paths made absolute (split files, run folder, init checkpoint, a
    dataset card or TOML file), so that ``config.toml`` resumes from any working directory;
    benchmark dataset names stay as they are."""
    def absolute(text: str) -> str:
        return str(Path(text).expanduser().resolve()) if text else text

    file, sep, name = cfg.dataset.partition("#")
    dataset = (absolute(file) + sep + name) if Path(file).expanduser().is_file() else cfg.dataset
    init = str(resolve_checkpoint(cfg.init_from)) if cfg.init_from else ""  # pretrained:NAME
    return dataclasses.replace(cfg, train=absolute(cfg.train), val=absolute(cfg.val),
                               out=absolute(cfg.out), init_from=absolute(init), dataset=dataset)


# settings that may differ between sessions of one run: where and how fast it runs, how it
# reports, validates and loads data, and its budget (a longer one extends the run)
_SESSION_KEYS = ("out", "device", "progress", "tensorboard", "workers", "preload",
                 "cache_normalized", "val_batch_size", "log_every_steps", "val_every_epochs",
                 "checkpoint_every_steps", "epochs", "max_steps", "time_limit_min",
                 "channels_last", "bf16", "compile", "reuse_host_memory")
_PATHS = ("train", "val", "dataset", "init_from")


def run_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of a run that make it one experiment, as :func:`~velocitygan.io.stamp`
    keeps them. A file setting (``FILE`` or ``FILE#NAME``; benchmark dataset names stay as
    they are) counts relative to the run folder: a study folder moved as a whole, and runs that
    stored paths relative to the working directory, compare by the files they name."""
    def relative(value: Any) -> Any:
        file, sep, name = value.partition("#") if isinstance(value, str) else ("", "", "")
        if not Path(file).suffix:
            return value
        return os.path.relpath(Path(file).expanduser(), config.get("out") or ".") + sep + name

    return stamp({k: relative(v) if k in _PATHS else v for k, v in config.items()
                  if k not in _SESSION_KEYS})


def stored_run(cfg: TrainConfig) -> dict[str, Any] | None:
    """The checkpoint ``last.pt`` of an earlier session of run ``cfg.out``, or None when there
    is none; raises :class:`ConfigError` when that run has other settings (those it stored)."""
    last = Path(cfg.out).expanduser() / "last.pt"
    if not last.is_file():
        return None
    ck = load_checkpoint(last)
    there, now = run_settings(ck.get("config", {})), run_settings(cfg.to_dict())
    if what := differences(there, now, [k for k in now if k in there]):
        raise ConfigError(f"{cfg.out} holds a run with other settings: {what}; use another "
                          "--out or remove that run folder")
    return ck


def train(config: TrainConfig | dict[str, Any], *, resume: bool = False) -> Path:
    """Train VelocityGAN or InversionNet; returns the run folder.

    Args:
        config: a :class:`TrainConfig` or a dict of settings (defaults fill the rest).
        resume: continue from ``RUN/last.pt`` (weights, optimisers, RNG, data position).

    Raises:
        VelocityGANError: bad settings or data, a non-finite loss, or CUDA out of memory.
        KeyboardInterrupt: after Ctrl-C, once ``last.pt`` is saved.
    """
    if isinstance(config, TrainConfig):
        cfg = config
    else:
        saved = Path(str(config.get("out", ""))).expanduser() / "config.toml"
        base = load_toml_config(saved) if resume and saved.is_file() else None
        cfg = resolve_config(base=base, overrides=config)
    if not cfg.out:
        raise ConfigError("no run folder given; pass --out RUN")
    cfg = absolute_paths(cfg)
    run_dir = Path(cfg.out).expanduser()
    spec = get_dataset(cfg.dataset)
    last = run_dir / "last.pt"
    ckpt = None
    if resume:
        if not last.is_file():
            raise ConfigError(f"{last}: nothing to resume; run without --resume")
        ckpt = load_checkpoint(last)
        saved = ckpt.get("dataset")
        old = DatasetSpec.from_dict(saved, source=str(last)) if isinstance(saved, dict) else spec
        if old != spec:
            raise ConfigError(f"{last}: run was trained with dataset {old.name!r} "
                              f"(bounds {old.data_min}..{old.data_max}), not {spec.name!r}; "
                              "resume with the same --dataset")
    elif last.exists():
        raise ConfigError(f"{run_dir} already holds a run (last.pt); pass --resume to continue "
                          "it or choose another --out")
    owns_group = not dist.is_initialized()
    env = setup_distributed(cfg.device)
    finished = False
    try:
        fit(cfg, spec, env, run_dir, ckpt)
        finished = True
    except torch.OutOfMemoryError:
        raise VelocityGANError(
            f"{env.device} ran out of memory at batch_size = {cfg.batch_size}; "
            f"try --batch-size {max(1, cfg.batch_size // 2)} (or a smaller --width)") from None
    finally:
        if owns_group:  # after a failure the other ranks may be gone: do not wait for them
            teardown_distributed(together=finished)
    return run_dir


def _finish(ts: TrainState, train_ds, log: RunLog) -> None:
    """The final generator: its weight average (``ema_decay``), then BatchNorm statistics
    from the training data (``bn_recompute_samples``)."""
    if ts.ema is not None and int(ts.ema.n_averaged):  # last.pt keeps the last iterate too
        ts.iterate = {k: v.clone() for k, v in ts.generator.state_dict().items()}
        for p, avg in zip(ts.generator.parameters(), ts.ema.module.parameters(), strict=True):
            p.detach().copy_(avg)
        log.info(f"generator weights set to their moving average (decay {ts.cfg.ema_decay:g})")
    if ts.cfg.bn_recompute_samples:
        recompute_batchnorm(ts, train_ds, log)


def _end_epoch(ts: TrainState, train_ds, vloader, log: RunLog, run_dir: Path,
               complete: bool) -> dict:
    """Validate if due, update best, write last.pt/best.pt and the metrics.csv row; at the
    end of the run, BatchNorm statistics from the training data first."""
    cfg = ts.cfg
    means = epoch_means(ts)
    final = not complete or ts.epoch + 1 >= cfg.epochs or limit_reached(ts)
    t0 = time.perf_counter()
    if final:
        _finish(ts, train_ds, log)
    val = validate(ts, vloader) if final or (ts.epoch + 1) % cfg.val_every_epochs == 0 else {}
    ts.elapsed_s += time.perf_counter() - t0  # validation spends the time budget too
    if not final and limit_reached(ts):
        _finish(ts, train_ds, log)  # this validation spent the rest of the budget
        val = validate(ts, vloader)
    is_best = bool(val) and val["mae"] < ts.best_val_mae
    row: dict[str, Any] = {
        "epoch": ts.epoch + 1, "step": ts.step, "time_s": ts.elapsed_s,
        "samples_per_s": ts.epoch_samples / ts.epoch_time_s if ts.epoch_time_s else 0.0,
        **means, **{f"val_{k}": v for k, v in val.items() if k != "samples"},
        "best": int(is_best),
    }
    if is_best:
        ts.best_val_mae = val["mae"]
    if complete:
        ts.epoch, ts.batches_done = ts.epoch + 1, 0
        ts.sums, ts.skipped, ts.epoch_time_s, ts.epoch_samples = {}, 0, 0.0, 0
    save_last(ts, run_dir, best=is_best)
    log.end_epoch(row)
    return row


def fit(cfg: TrainConfig, spec: DatasetSpec, env: DistEnv, run_dir: Path,
        ckpt: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the epochs of ``cfg`` in this process; returns the last metrics row."""
    plan = resolve_speed(cfg, env.device)
    if cfg.reuse_host_memory:
        reuse_freed_memory()
    train_ds, val_ds, augment = build_datasets(cfg, spec)
    ts = build_state(cfg, spec, env, plan, restoring=ckpt is not None)
    if ckpt is not None:
        restore_state(ts, ckpt, str(run_dir / "last.pt"))
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.toml", dump_toml(
            cfg, header=f"velocitygan {__version__}: resolved training configuration\n"
                        f"resume: velocitygan train --out {run_dir} --resume"))
    log = RunLog(run_dir if env.is_main else None, progress=cfg.progress,
                 tensorboard=cfg.tensorboard, resume_step=ts.step if ckpt else None)
    log.info(f"{'resuming' if ckpt else 'training'} {cfg.model} on {len(train_ds)} samples "
             f"(validation {len(val_ds)}), {env.world_size} process(es) on {env.device}; "
             f"{plan.describe()}; run folder {run_dir}")
    vloader = val_loader(val_ds, cfg, env)
    ts.total_steps = cfg.max_steps or cfg.epochs * batches_per_epoch(train_ds, cfg, env)
    row: dict[str, Any] = {}
    if ts.epoch >= cfg.epochs or limit_reached(ts):
        log.info(f"nothing to train: the run is at epoch {ts.epoch}/{cfg.epochs} after "
                 f"{ts.elapsed_s / 60:.1f} of {cfg.time_limit_min or 'unlimited'} min; raise "
                 "--epochs or --set time_limit_min=... to continue it")
    with StopFlag() as stop:
        try:
            while ts.epoch < cfg.epochs and not limit_reached(ts):
                status = train_one_epoch(ts, train_ds, augment, log, run_dir, stop)
                if status == "interrupted":
                    save_last(ts, run_dir)
                    log.info(f"interrupted: state saved to {run_dir / 'last.pt'}; continue with "
                             f"velocitygan train --out {run_dir} --resume")
                    raise KeyboardInterrupt
                row = _end_epoch(ts, train_ds, vloader, log, run_dir, complete=status == "done")
        finally:
            log.close()
    return row
