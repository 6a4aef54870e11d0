"""Datasets and loaders for training: deterministic order per (seed, epoch), resumable mid-epoch."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from ..data import DatasetSpec, OpenFWIDataset
from ..device import cpu_count
from ..errors import ConfigError
from .config import TrainConfig
from .distributed import DistEnv

__all__ = ["CachedDataset", "ResumableSampler", "batches_per_epoch", "build_datasets",
           "local_batch", "train_loader", "val_loader"]


class ResumableSampler(DistributedSampler):
    """:class:`DistributedSampler` (shuffled by ``seed + epoch``) that can start mid-epoch.

    Rank ``r`` of ``K`` gets positions ``r, r + K, ...`` of the epoch's permutation, so the
    union of the K local batches ``j`` is exactly batch ``j`` of a one-process run.
    """

    def __init__(self, dataset: Dataset, env: DistEnv, seed: int) -> None:
        super().__init__(dataset, num_replicas=env.world_size, rank=env.rank, shuffle=True,
                         seed=seed, drop_last=True)
        self.start = 0

    def set_start(self, samples_done: int) -> None:
        """Skip the first ``samples_done`` samples of this process's share of the epoch."""
        self.start = samples_done

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start


class CachedDataset(Dataset):
    """Keeps each normalised ``(x, y)`` pair of ``base`` in RAM after its first read.

    ``transform`` (augmentation, pure) runs after the cache, so augmented epochs still differ.
    """

    def __init__(self, base: Dataset, transform: object = None) -> None:
        self.base, self.transform = base, transform
        self.cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        item = self.cache.get(index)
        if item is None:
            item = self.cache[index] = self.base[index]
        return item if self.transform is None else self.transform(*item)


def local_batch(cfg: TrainConfig, env: DistEnv) -> int:
    """Per-process batch: the global ``batch_size`` split evenly across processes."""
    if cfg.batch_size % env.world_size:
        raise ConfigError(f"batch_size = {cfg.batch_size} is not divisible by the "
                          f"{env.world_size} processes; pick a multiple of {env.world_size}")
    local = cfg.batch_size // env.world_size
    if local < 2:
        raise ConfigError(f"batch_size = {cfg.batch_size} gives {local} sample per process; "
                          "BatchNorm needs at least 2: use --batch-size "
                          f"{2 * env.world_size} or more")
    return local


def _limit(ds: Dataset, n: int) -> Dataset:
    return Subset(ds, range(min(n, len(ds)))) if 0 < n < len(ds) else ds


def build_datasets(cfg: TrainConfig, spec: DatasetSpec) -> tuple[Dataset, Dataset, object]:
    """Training and validation datasets and the training augmentation (None when the
    ``augment_*`` keys turn all of it off)."""
    from ..perturb import TrainAugmentation

    for key in ("train", "val"):
        if not getattr(cfg, key):
            raise ConfigError(f"no {key} split given; pass --{key} SPLIT_FILE")
    snr = None if math.isinf(cfg.augment_noise_snr_db) else cfg.augment_noise_snr_db
    augment = None
    if snr is not None or cfg.augment_trace_dropout or cfg.augment_flip:
        augment = TrainAugmentation(spec, snr, cfg.augment_trace_dropout, cfg.augment_flip,
                                    cfg.augment_prob, seed=cfg.seed % 2**63)  # seeds are >= 0
    train = OpenFWIDataset(cfg.train, spec, preload=cfg.preload,
                           transform=None if cfg.cache_normalized else augment)
    val = OpenFWIDataset(cfg.val, spec, preload=cfg.preload)
    if not train.labeled or not val.labeled:
        bad = cfg.train if not train.labeled else cfg.val
        raise ConfigError(f"{bad}: training needs DATA<TAB>LABEL lines (labels missing)")
    if cfg.cache_normalized:
        train, val = CachedDataset(train, augment), CachedDataset(val)
    return _limit(train, cfg.train_limit), _limit(val, cfg.val_limit), augment


def loader_workers(cfg: TrainConfig) -> int:
    """DataLoader processes: ``cfg.workers``, or for -1 (auto) none where the cache needs the
    main process or a loader process would take one of 2 or fewer cores, else 2."""
    if cfg.workers >= 0:
        return cfg.workers
    return 0 if cfg.cache_normalized or cpu_count() <= 2 else 2


def train_loader(ds: Dataset, cfg: TrainConfig, env: DistEnv, epoch: int,
                 batches_done: int = 0, augment: object = None) -> DataLoader:
    """The loader of one epoch, starting after ``batches_done`` batches (resume)."""
    b = local_batch(cfg, env)
    if len(ds) < cfg.batch_size:
        raise ConfigError(f"training split has {len(ds)} samples, fewer than batch_size = "
                          f"{cfg.batch_size}; use a smaller --batch-size")
    sampler = ResumableSampler(ds, env, cfg.seed)
    sampler.set_epoch(epoch)
    sampler.set_start(batches_done * b)
    if hasattr(augment, "set_epoch"):
        augment.set_epoch(epoch)
    return DataLoader(
        ds, batch_size=b, sampler=sampler, drop_last=True, num_workers=loader_workers(cfg),
        pin_memory=env.device.type == "cuda",
        # worker seeds depend only on (seed, epoch), not on how much RNG was used before
        generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch),
    )


def batches_per_epoch(ds: Dataset, cfg: TrainConfig, env: DistEnv) -> int:
    """Full local batches in one epoch (the last partial batch is dropped)."""
    return len(ds) // env.world_size // local_batch(cfg, env)


def val_loader(ds: Dataset, cfg: TrainConfig, env: DistEnv) -> DataLoader:
    """Validation loader: process ``r`` takes samples ``r, r + K, ...`` (no padding, exact)."""
    shard = Subset(ds, range(env.rank, len(ds), env.world_size)) if env.enabled else ds
    return DataLoader(shard, batch_size=cfg.val_batch_size or cfg.batch_size, shuffle=False,
                      num_workers=loader_workers(cfg), pin_memory=env.device.type == "cuda")
