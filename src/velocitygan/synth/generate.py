"""Write an OpenFWI-layout dataset: shards of simulated seismic data and their velocity labels.

Layout under ``DIR``::

    data/data{k}.npy    (N_k, 5, 1000, 70) float32 raw pressure (OpenFWI polarity and timing)
    model/model{k}.npy  (N_k, 1, 70, 70) float32 velocity in m/s
    train.txt, val.txt  OpenFWI split files (DATA<TAB>LABEL, paths relative to DIR)
    dataset.json        card read by ``velocitygan.data.get_dataset("DIR/dataset.json")``
    .plan.json          what is being generated (source, seed, samples, shard size, validation
                        samples, backend)

Validation split rule: the last ``round(val_fraction * samples)`` samples (rounded half up) form
the validation split. The split files list file pairs, not samples, so the shards follow the
split: the training samples are cut into shards of ``shard_size`` from the first sample, the
validation samples likewise from the first validation sample (the last training shard may be
smaller), and ``train.txt`` and ``val.txt`` never share a file. A positive fraction that rounds
to no validation sample, or to all samples, is an error; without a fraction the split is 10 %
of the samples, or none where that rounds to no sample (fewer than 5).

Resuming: the plan is written first. A rerun with the same plan keeps every shard whose two files
exist with the planned shapes and whose labels equal the planned maps, and simulates only the
others; a rerun with a different plan fails unless ``overwrite``. Shard files are written under a
hidden temporary name and renamed when complete, so a half-written shard never appears.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from ..data import SplitEntry, write_split
from ..device import cpu_count
from ..errors import ConfigError
from ..io import exclusive_lock, fsync_path, preallocate, read_json, save_npy, stamp, write_json
from ..physics import Acquisition
from .families import (
    VELOCITY_MAX_MPS,
    VELOCITY_MIN_MPS,
    check_seed,
    family_name,
    family_params,
    make_velocity_maps,
)
from .simulate import SimConfig, pool_context, resolve_sim_config, simulate_chunks

__all__ = ["FamilySource", "MapSource", "generate_dataset", "shard_layout", "write_dataset"]

PLAN_FORMAT = "velocitygan-generate-plan/1"
DEFAULT_VAL_FRACTION = 0.1


class MapSource(Protocol):
    """Where velocity maps come from: ``n_samples`` maps, addressable by index range."""

    n_samples: int

    def describe(self) -> dict[str, Any]:
        """JSON description that identifies the maps (goes into the plan and the card)."""
        ...

    def maps(self, start: int, stop: int) -> np.ndarray:
        """Maps ``start..stop-1`` as float32 ``(stop-start, 70, 70)`` m/s."""
        ...


@dataclasses.dataclass
class FamilySource:
    """Maps of a synthetic family (see :mod:`velocitygan.synth.families`)."""

    family: str
    n_samples: int
    seed: int = 0
    params: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        """Family name, seed and the full parameter set."""
        p = dataclasses.asdict(family_params(self.family, self.params))
        return {"kind": "family", "family": self.family, "seed": int(self.seed), "params": p}

    def maps(self, start: int, stop: int) -> np.ndarray:
        """Maps ``start..stop-1`` (per-sample seeding: independent of how they are batched)."""
        return make_velocity_maps(self.family, stop - start, self.seed, start=start,
                                  params=self.params)


def shard_layout(n_samples: int, shard_size: int,
                 val_fraction: float | None = None) -> list[tuple[int, int, str]]:
    """``(first sample, stop, "train" or "val")`` of each shard, in order (rule in the module
    docstring): the validation split holds ``round(val_fraction * n_samples)`` samples.

    Raises:
        ConfigError: a fraction outside [0, 1), or one that rounds to no validation sample or
            leaves no training sample.
    """
    fraction = DEFAULT_VAL_FRACTION if val_fraction is None else val_fraction
    if not 0 <= fraction < 1:
        raise ConfigError(f"val fraction must be in [0, 1), got {val_fraction}")
    n_val = math.floor(fraction * n_samples + 0.5)
    if val_fraction is None:
        n_val = n_val if n_val < n_samples else 0  # the default split is optional
    elif fraction > 0 and n_val == 0:
        raise ConfigError(f"val fraction {fraction:g} of {n_samples} samples rounds to no "
                          f"validation sample; use at least {0.5 / n_samples:.3g}, or 0 for none")
    elif n_val >= n_samples:
        raise ConfigError(f"val fraction {fraction:g} of {n_samples} samples leaves no "
                          f"training sample; use less than {(n_samples - 0.5) / n_samples:.3g}")
    n_train = n_samples - n_val
    return [(a, min(a + shard_size, stop), split)
            for split, start, stop in (("train", 0, n_train), ("val", n_train, n_samples))
            for a in range(start, stop, shard_size)]


def _paths(out: Path, k: int) -> tuple[Path, Path]:
    return out / "data" / f"data{k}.npy", out / "model" / f"model{k}.npy"


def _check_plan(out: Path, plan: dict[str, Any], overwrite: bool) -> None:
    """Fail on a different plan in ``out`` (unless ``overwrite``, which clears our files)."""
    old = read_json(out / ".plan.json")
    if old is None and ((out / "data").is_dir() or (out / "dataset.json").exists()):
        old = {}  # a dataset without a readable plan: not known to be this one
    if old is None or old == plan:
        return
    if not overwrite:
        src = old.get("source", {})
        differs = ", ".join(k for k in plan if old.get(k) != plan[k])
        what = (f"family={src.get('family')} seed={src.get('seed')} "
                f"samples={old.get('samples')} backend={old.get('backend')}; "
                f"differs in {differs}")
        raise ConfigError(f"{out} already holds a different dataset "
                          f"({what if src else 'unknown plan'}); use --overwrite to replace it, "
                          "or choose another --out")
    for sub in ("data", "model"):
        shutil.rmtree(out / sub, ignore_errors=True)
    for name in ("train.txt", "val.txt", "dataset.json", ".plan.json"):
        (out / name).unlink(missing_ok=True)


def _shard_done(out: Path, k: int, a: int, b: int, source: MapSource, acq: Acquisition) -> bool:
    n = b - a
    try:
        data, model = (np.load(path, mmap_mode="r") for path in _paths(out, k))
    except (OSError, ValueError):
        return False
    return (data.dtype == model.dtype == np.float32
            and data.shape == (n, acq.n_shots, acq.nt, acq.n_receivers)
            and model.shape == (n, 1, acq.nz, acq.nx)
            and bool(np.array_equal(np.asarray(model[:, 0]), source.maps(a, b))))


class _ShardWriter:
    """One shard being simulated: a hidden ``.npy`` file that the simulating processes fill
    (see :func:`~velocitygan.synth.simulate.simulate_into`), renamed when complete."""

    def __init__(self, out: Path, k: int, a: int, b: int, acq: Acquisition) -> None:
        self.final, self.model_final = _paths(out, k)
        self.tmp = self.final.with_name(f".{self.final.name}.{os.getpid()}.tmp")
        self.start, self.missing = a, b - a
        shape = (b - a, acq.n_shots, acq.nt, acq.n_receivers)
        np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.float32, shape=shape)
        try:
            preallocate(self.tmp)
        except BaseException:
            self.discard()
            raise
        self.labels = np.empty((b - a, 1, acq.nz, acq.nx), dtype=np.float32)

    def put(self, a: int, maps: np.ndarray) -> bool:
        """Record that samples from index ``a`` are written; True when the shard is complete."""
        i = a - self.start
        self.labels[i:i + len(maps), 0] = maps
        self.missing -= len(maps)
        return not self.missing

    def finish(self) -> None:
        """Sync the complete shard to disk, rename it, write its labels."""
        try:
            fsync_path(self.tmp)
            os.replace(self.tmp, self.final)
        except BaseException:
            self.discard()
            raise
        save_npy(self.model_final, self.labels)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


def _chunks(todo, source: MapSource, chunk: int, processes: int = 0):
    """``((shard, first index, maps), maps)`` for every chunk of the shards in ``todo``, in
    order, made up to two chunks ahead of use: by a background thread (map making overlaps the
    simulation, which releases the GIL), or with ``processes > 1`` by that many processes, each
    chunk split among them."""
    spans = [(k, c, min(c + chunk, b)) for k, a, b in todo for c in range(a, b, chunk)]
    pool = (ProcessPoolExecutor(processes, mp_context=pool_context()) if processes > 1
            else ThreadPoolExecutor(1, thread_name_prefix="vgan-maps"))

    def submit(c: int, d: int) -> list[Future]:
        cuts = np.linspace(c, d, min(max(1, processes), d - c) + 1).round().astype(int)
        return [pool.submit(source.maps, int(lo), int(hi))
                for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)]

    try:
        ahead: deque[list[Future]] = deque(submit(c, d) for _, c, d in spans[:2])
        for i, (k, c, _) in enumerate(spans):
            parts = ahead.popleft()
            if i + 2 < len(spans):
                ahead.append(submit(*spans[i + 2][1:]))
            maps = np.concatenate([part.result() for part in parts])
            yield (k, c, maps), maps
    finally:  # stopped early (error, Ctrl-C): maps not started yet are dropped
        pool.shutdown(wait=True, cancel_futures=True)


def map_processes(source: MapSource, cfg: SimConfig) -> int:
    """Processes that make the maps of an in-process (GPU) run: one Python thread makes ~600
    curvefault-b maps/s, slower than a GPU simulates them, so half the cores (at most 8) make
    maps there, leaving the rest to the writer threads; 0 (maps made by one background
    thread) on the CPU, where simulation is 100 times slower than map making, and where
    fewer than 4 cores are free (measured on 2 cores: extra processes slowed the run)."""
    on_gpu = cfg.device.startswith("cuda")
    if cfg.workers > 1 or not on_gpu or not isinstance(source, FamilySource):
        return 0
    n = min(8, cpu_count() // 2)
    return n if n >= 2 else 0


def _simulate_shards(out, todo, source, cfg: SimConfig, acq: Acquisition, progress: bool,
                     done_samples: int) -> dict[int, tuple[float, float]]:
    """Simulate the shards in ``todo``; return each one's (min, max) amplitude."""
    writers: dict[int, _ShardWriter] = {}
    bounds: dict[int, tuple[float, float]] = {}
    spans = {k: (a, b) for k, a, b in todo}

    def sink(key: tuple[int, int, np.ndarray]) -> tuple[Path, int]:
        k, c, _ = key
        if k not in writers:
            writers[k] = _ShardWriter(out, k, *spans[k], acq)
        return writers[k].tmp, c - writers[k].start

    bar = tqdm(total=source.n_samples, initial=done_samples, unit="sample", disable=not progress,
               desc=f"generate {out.name}", smoothing=0.1, dynamic_ncols=True)
    # complete shards are synced and renamed in the background: simulation goes on meanwhile
    finishing: list[Future] = []
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="vgan-shard") as closer:
            for (k, c, maps), (lo, hi) in simulate_chunks(
                    _chunks(todo, source, cfg.chunk, map_processes(source, cfg)), cfg,
                    acq.to_dict(), sink=sink):
                old = bounds.get(k, (math.inf, -math.inf))
                bounds[k] = (min(old[0], lo), max(old[1], hi))
                if writers[k].put(c, maps):
                    finishing.append(closer.submit(writers.pop(k).finish))
                for fut in finishing:  # a failed sync or rename stops the run at once
                    if fut.done() and fut.exception() is not None:
                        fut.result()
                bar.update(len(maps))
        for fut in finishing:
            fut.result()  # a failed sync or rename is raised here
    finally:
        bar.close()
        for w in writers.values():
            w.discard()
    return bounds


def _data_bounds(paths: list[Path], block: int = 64) -> tuple[float, float]:
    lo, hi = math.inf, -math.inf
    for p in paths:
        arr = np.load(p, mmap_mode="r")
        for i in range(0, len(arr), block):
            part = np.asarray(arr[i:i + block])
            lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    return lo, hi


def write_dataset(out_dir: str | Path, source: MapSource, *, shard_size: int = 500,
                  val_fraction: float | None = None, workers: int | None = None,
                  device: str = "auto", backend: str = "auto", batch_size: int | None = None,
                  progress: bool = True, overwrite: bool = False, name: str | None = None) -> Path:
    """Simulate every map of ``source`` and write the dataset (layout in the module docstring).

    Returns:
        Path of ``dataset.json``.
    """
    if source.n_samples < 1:
        raise ConfigError(f"number of samples must be >= 1, got {source.n_samples}")
    if shard_size < 1:
        raise ConfigError(f"shard size must be >= 1, got {shard_size}")
    layout = shard_layout(source.n_samples, shard_size, val_fraction)
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder; choose another --out")
    cfg = resolve_sim_config(backend, device, workers, batch_size)
    acq = Acquisition()
    plan = stamp({"format": PLAN_FORMAT, "source": source.describe(),
                  "samples": source.n_samples, "shard_size": int(shard_size),
                  "val_samples": sum(b - a for a, b, split in layout if split == "val"),
                  "backend": cfg.backend, "acquisition": acq.to_dict()})
    out.mkdir(parents=True, exist_ok=True)
    # one run per folder: a second one would delete the first one's temporary shard files
    with exclusive_lock(out / ".lock", f"the dataset in {out}"):
        _check_plan(out, plan, overwrite)
        write_json(out / ".plan.json", plan)
        for sub in ("data", "model"):
            (out / sub).mkdir(exist_ok=True)
            for stray in (out / sub).glob(".*.tmp"):  # left by an interrupted run
                stray.unlink(missing_ok=True)
        todo = [(k, a, b) for k, (a, b, _) in enumerate(layout)
                if not _shard_done(out, k, a, b, source, acq)]
        done = source.n_samples - sum(b - a for _, a, b in todo)
        bounds = _simulate_shards(out, todo, source, cfg, acq, progress, done) if todo else {}
        return _write_card(out, source, layout, shard_size, cfg, acq, name, bounds)


def _write_card(out, source, layout, shard_size, cfg, acq, name, bounds) -> Path:
    """Split files and ``dataset.json``; amplitude bounds of shards simulated in this run come
    from ``bounds``, the others (kept from an earlier run) are read back."""
    shards = []
    for k, (a, b, split) in enumerate(layout):
        d, m = _paths(out, k)
        shards.append({"data": f"data/{d.name}", "model": f"model/{m.name}",
                       "samples": b - a, "split": split})
    for split in ("train", "val"):
        entries = [SplitEntry(out / s["data"], out / s["model"]) for s in shards
                   if s["split"] == split]
        if entries:
            write_split(out / f"{split}.txt", entries)
        else:
            (out / f"{split}.txt").unlink(missing_ok=True)
    lo, hi = _data_bounds([out / s["data"] for k, s in enumerate(shards) if k not in bounds])
    data_min = min([lo, *(b[0] for b in bounds.values())])
    data_max = max([hi, *(b[1] for b in bounds.values())])
    desc = source.describe()
    count = {sp: sum(s["samples"] for s in shards if s["split"] == sp) for sp in ("train", "val")}
    card = {
        "name": name or out.resolve().name,
        "data_min": data_min, "data_max": data_max,
        "label_min": VELOCITY_MIN_MPS, "label_max": VELOCITY_MAX_MPS,
        "seismic_shape": [acq.n_shots, acq.nt, acq.n_receivers],
        "velocity_shape": [1, acq.nz, acq.nx],
        "family": desc.get("family", desc.get("kind")), "params": desc.get("params"),
        "seed": desc.get("seed"), "source": desc,
        "acquisition": acq.to_dict(), "backend": cfg.backend,
        "samples": {"total": source.n_samples, **count}, "shard_size": int(shard_size),
        "shards": shards, "splits": {sp: f"{sp}.txt" for sp in ("train", "val") if count[sp]},
        "velocitygan_version": __version__,
    }
    write_json(out / "dataset.json", card)
    return out / "dataset.json"


def generate_dataset(
    out_dir: str | Path, family: str, n_samples: int, *, seed: int = 0, shard_size: int = 500,
    val_fraction: float | None = None, workers: int | None = None, device: str = "auto",
    backend: str = "auto", progress: bool = True, params: dict[str, Any] | None = None,
    batch_size: int | None = None, overwrite: bool = False, name: str | None = None,
) -> Path:
    """Generate a synthetic OpenFWI-layout dataset of one family.

    Args:
        out_dir: output folder (created; resumable, see module docstring).
        family: ``flatvel-a`` ... ``style-b``.
        n_samples: number of samples (one sample = 5 shots x 1000 time steps x 70 receivers).
        seed: dataset seed; the same seed gives byte-identical files for any ``workers``.
        shard_size: samples per ``data{k}.npy`` file (OpenFWI: 500).
        val_fraction: fraction of the samples in ``val.txt`` (in shards of their own; rule
            and default in the module docstring).
        workers: CPU worker processes (default: one per core; in-process on CUDA).
        device: ``auto``, ``cpu`` or ``cuda``.
        backend: forward operator, ``auto`` = ``torch`` (OpenFWI's recipe) or ``deepwave``
            (approximation); the card records the one that ran.
        progress: show a tqdm bar with samples/s.
        params: overrides of the family's parameters (field name -> value).
        batch_size: samples per forward-model call (default 4 on CPU, 256 on CUDA).
        overwrite: replace a different dataset already in ``out_dir``.
        name: dataset name in the card (default: the folder name).

    Returns:
        Path of the written ``dataset.json``.
    """
    family_params(family, params)  # fail early on a bad family or parameter name
    check_seed(seed)  # before the plan file is written
    source = FamilySource(family_name(family), int(n_samples), int(seed), params)
    return write_dataset(out_dir, source, shard_size=shard_size, val_fraction=val_fraction,
                         workers=workers, device=device, backend=backend, batch_size=batch_size,
                         progress=progress, overwrite=overwrite, name=name)
