"""Run the forward operator over many velocity maps: worker processes on CPU, big batches on CUDA.

Work is cut into fixed chunks of samples whose boundaries depend only on the plan (shard size and
chunk size), never on the number of workers, and every chunk is simulated by one
:func:`velocitygan.physics.forward_model` call. Together with per-sample seeding of the maps this
makes the output byte-identical whatever ``workers`` is.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import physics
from ..device import cpu_count, resolve_device
from ..errors import ConfigError, DataError
from ..io import atomic_path, fsync_path, preallocate

__all__ = ["SimConfig", "pool_context", "resolve_sim_config", "simulate_chunks",
           "simulate_file", "simulate_into", "simulate_maps"]

# Where a chunk's result goes: (path of an existing float32 .npy file, first row to write).
Sink = Callable[[Any], tuple[Path, int]]

CPU_CHUNK = 4  # samples per call on CPU: batching does not speed deepwave up, keeps IPC small
CUDA_CHUNK = 256  # models per call on a GPU (torch backend batches models and shots)
# Chunks written at once on the in-process (GPU) path: page-cache writes of 1.4 MB per sample
# are the host's bottleneck there and scale with threads (2-core VM: 700 -> 1300 samples/s).
WRITERS = 2


@dataclass(frozen=True)
class SimConfig:
    """How to simulate: backend name, device, samples per call, worker processes."""

    backend: str
    device: str
    chunk: int
    workers: int


def resolve_sim_config(backend: str = "auto", device: str = "auto", workers: int | None = None,
                       batch_size: int | None = None) -> SimConfig:
    """Resolve ``auto`` choices: device cuda if available; backend torch (OpenFWI's exact
    recipe) on every device; one worker per CPU core on CPU, in-process on CUDA; chunk 4
    samples on CPU, 256 on CUDA. For the torch backend on the CPU, the C++ recipe kernel is
    built here, once for all workers (eager PyTorch with one warning where that fails).

    Why never deepwave by default: its PML absorbs a weak late echo that OpenFWI's sponge leaves
    in the data, and a network trained on deepwave data scored 114.7 m/s MAE on deepwave
    records but 140.1 m/s on recipe records of the same maps (bench/README.md, "Forward modelling").
    """
    device = str(resolve_device(device))
    backend = physics.resolve_backend(backend)
    on_gpu = device.startswith("cuda")
    if workers is None:
        workers = 1 if on_gpu else cpu_count()
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    chunk = batch_size or (CUDA_CHUNK if on_gpu else CPU_CHUNK)
    if chunk < 1:
        raise ConfigError(f"batch size must be >= 1, got {chunk}")
    if backend == "torch" and not on_gpu:
        physics.cpu_kernel_available()  # built (or found unavailable) once, before workers start
    return SimConfig(backend=backend, device=device, chunk=int(chunk), workers=int(workers))


def simulate_maps(velocity_mps: np.ndarray, backend: str, device: str,
                  acquisition: dict[str, Any] | None = None) -> np.ndarray:
    """Forward-model one chunk ``(n, 70, 70)`` m/s; return float32 ``(n, shots, nt, receivers)``."""
    acq = physics.Acquisition.from_dict(acquisition) if acquisition else physics.Acquisition()
    with torch.no_grad():
        out = physics.forward_model(velocity_mps, acq, backend=backend, device=device)
    return out.cpu().numpy().astype(np.float32, copy=False)


def simulate_into(velocity_mps: np.ndarray, backend: str, device: str,
                  acquisition: dict[str, Any] | None, path: str | Path,
                  row: int) -> tuple[float, float]:
    """Simulate one chunk and write it into rows ``row...`` of the existing ``.npy`` ``path``.

    Workers write their results straight into the (memory-mapped) output file instead of
    sending ~1.4 MB per sample back through a pipe. Returns the chunk's smallest and largest
    amplitude (for the dataset card, without reading the data back).
    """
    return _write_rows(simulate_maps(velocity_mps, backend, device, acquisition), path, row)


def _write_rows(data: np.ndarray, path: str | Path, row: int) -> tuple[float, float]:
    out = np.load(path, mmap_mode="r+")
    out[row:row + len(data)] = data
    del out  # unmapped; the pages are in the shared page cache, the caller syncs the file
    return float(data.min()), float(data.max())


def _in_process(chunks: Iterable[tuple[Any, np.ndarray]], cfg: SimConfig,
                acquisition: dict[str, Any] | None,
                sink: Sink) -> Iterator[tuple[Any, tuple[float, float]]]:
    """Simulate chunks in this process, results in order; writer threads store up to
    ``WRITERS + 1`` earlier chunks while the next one is simulated (on a GPU, 1.4 MB per sample
    go to disk)."""
    with ThreadPoolExecutor(WRITERS, thread_name_prefix="vgan-write") as io:
        pending: deque[tuple[Any, Future]] = deque()
        for key, maps in chunks:
            while len(pending) > WRITERS or (pending and pending[0][1].done()):
                done_key, fut = pending.popleft()
                yield done_key, fut.result()
            data = simulate_maps(maps, cfg.backend, cfg.device, acquisition)
            pending.append((key, io.submit(_write_rows, data, *sink(key))))
        while pending:
            done_key, fut = pending.popleft()
            yield done_key, fut.result()


def pool_context() -> multiprocessing.context.BaseContext:
    """Start method of worker processes: 'forkserver' with this module (hence torch)
    preloaded, so workers start in well under a second instead of each importing torch;
    'spawn' where forkserver does not exist."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def _init_worker(broken: frozenset[str]) -> None:
    torch.set_num_threads(1)  # one process per core; threads would only oversubscribe
    physics._AUTO_BROKEN.update(broken)  # a fast path that failed in the parent: eager, unwarned


def simulate_chunks(chunks: Iterable[tuple[Any, np.ndarray]], cfg: SimConfig,
                    acquisition: dict[str, Any] | None,
                    sink: Sink) -> Iterator[tuple[Any, tuple[float, float]]]:
    """Simulate ``(key, maps)`` chunks; yield ``(key, (min, max))`` as chunks finish (any order).

    ``sink(key)`` (called in this thread before the chunk starts) names the file and row where
    the chunk's data go; the simulating process writes them there and the chunk's smallest and
    largest amplitude are yielded. With ``cfg.workers > 1`` chunks run in a process pool
    ('forkserver' or 'spawn' start), at most ``2 * workers`` in flight so memory stays bounded;
    otherwise in this process.
    """
    if cfg.workers <= 1:
        # One thread: deepwave's OpenMP threads over 5 shots gain little and, on a busy
        # machine, spin-waiting made a 0.1 s sample take several seconds (measured).
        threads = torch.get_num_threads()
        if cfg.device == "cpu":
            torch.set_num_threads(1)
        try:
            yield from _in_process(chunks, cfg, acquisition, sink)
        finally:
            torch.set_num_threads(threads)
        return
    source = iter(chunks)
    with ProcessPoolExecutor(cfg.workers, mp_context=pool_context(), initializer=_init_worker,
                             initargs=(frozenset(physics._AUTO_BROKEN),)) as pool:
        pending: dict[Future, Any] = {}

        def submit_more() -> None:
            for key, maps in itertools.islice(source, 2 * cfg.workers - len(pending)):
                pending[pool.submit(simulate_into, maps, cfg.backend, cfg.device, acquisition,
                                    *sink(key))] = key

        submit_more()
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield pending.pop(fut), fut.result()
                submit_more()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


def simulate_file(velocity_path: str | Path, out_path: str | Path, *, backend: str = "auto",
                  device: str = "auto", batch_size: int | None = None,
                  workers: int | None = None, progress: bool = True) -> tuple[int, ...]:
    """Forward-model the velocity maps of a ``.npy`` file and write the seismic data atomically.

    Args:
        velocity_path: ``.npy`` in m/s, shape ``(70, 70)``, ``(N, 70, 70)`` or ``(N, 1, 70, 70)``.
        out_path: output ``.npy``, float32 ``(N, 5, 1000, 70)`` raw pressure (OpenFWI convention).
        backend: ``auto`` = ``torch`` (OpenFWI's recipe) or ``deepwave`` (approximation).
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: maps per forward-model call (default 4 on CPU, 256 on CUDA).
        workers: CPU processes (default: one per core, at most one per batch).
        progress: show a tqdm bar with samples/s.

    Returns:
        Shape of the written array.
    """
    path = Path(velocity_path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: velocity file not found")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    acq = physics.Acquisition()
    try:
        velocity = physics.check_velocity(np.array(arr, dtype=np.float32), acq).numpy()
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    cfg = resolve_sim_config(backend, device, workers, batch_size)
    n = len(velocity)
    cfg = replace(cfg, workers=max(1, min(cfg.workers, math.ceil(n / cfg.chunk))))
    shape = (n, acq.n_shots, acq.nt, acq.n_receivers)
    chunks = ((a, velocity[a:a + cfg.chunk]) for a in range(0, n, cfg.chunk))
    with atomic_path(Path(out_path).expanduser()) as tmp, \
            tqdm(total=n, unit="sample", disable=not progress, desc="simulate") as bar:
        # header and an empty body; the simulating processes fill in their rows
        np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        preallocate(tmp)  # a full disk fails here, not as SIGBUS in a writer
        for a, _ in simulate_chunks(chunks, cfg, acq.to_dict(), sink=lambda a: (tmp, a)):
            bar.update(min(cfg.chunk, n - a))
        fsync_path(tmp)
    return shape
