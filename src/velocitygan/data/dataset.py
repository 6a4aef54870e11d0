"""Lazy, memory-mapped PyTorch dataset over OpenFWI-layout ``.npy`` file pairs."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .npyfile import npy_header, open_npy
from .registry import DatasetSpec
from .splits import SplitEntry, read_split
from .transforms import normalize_seismic, normalize_velocity

__all__ = ["OpenFWIDataset", "check_file_pair", "sample_shape_ok"]

# (x, y) -> (x, y) on normalised tensors; y may be None for unlabeled data.
PairTransform = Callable[[torch.Tensor, torch.Tensor | None], tuple]


def sample_shape_ok(shape: tuple[int, ...], per_sample: tuple[int, ...]) -> int | None:
    """Number of samples if ``shape`` is ``(N, *per_sample)`` or ``per_sample``; else None.

    A velocity label may also omit its channel axis: ``(N, 70, 70)``.
    """
    if shape == per_sample:
        return 1
    if len(shape) == len(per_sample) + 1 and shape[1:] == per_sample:
        return shape[0]
    if per_sample[0] == 1 and len(shape) == len(per_sample) and shape[1:] == per_sample[1:]:
        return shape[0]
    return None


def _check_array_file(path: Path, per_sample: tuple[int, ...], what: str) -> int:
    shape, dtype, _ = npy_header(path)
    if dtype.kind != "f":
        raise DataError(f"{path}: {what} has dtype {dtype}; expected float32")
    n = sample_shape_ok(shape, per_sample)
    if n is None:
        want = "(N, " + ", ".join(map(str, per_sample)) + ")"
        raise DataError(f"{path}: {what} has shape {shape}; expected {want}")
    return n


def check_file_pair(entry: SplitEntry, spec: DatasetSpec) -> int:
    """Validate one split line's files (existence, format, shape, dtype, counts); return N."""
    n = _check_array_file(entry.data, spec.seismic_shape, "seismic data")
    if entry.label is not None:
        m = _check_array_file(entry.label, spec.velocity_shape, "velocity label")
        if m != n:
            raise DataError(f"{entry.data} holds {n} samples but {entry.label} holds {m}; "
                            "data and label files must pair sample by sample")
    return n


class OpenFWIDataset(Dataset):
    """Normalised (seismic, velocity) pairs read lazily from memory-mapped ``.npy`` files.

    Items are ``(x, y)``: ``x`` float32 ``(5, 1000, 70)`` and ``y`` float32 ``(1, 70, 70)``,
    both in [-1, 1] per ``spec``; unlabeled splits (one column) give ``x`` alone.

    Args:
        split: a split file path or a list of :class:`SplitEntry`.
        spec: normalisation bounds and shapes.
        preload: read every file into RAM once (fast epochs, needs memory).
        transform: optional pure ``(x, y) -> (x, y)`` augmentation on normalised tensors.
        raw_transform: optional pure ``(x_raw, index) -> x_raw`` applied to the raw seismic
            numpy array before normalisation (e.g. noise at a physical SNR); ``index`` is the
            global sample index, so perturbations can be seeded per sample.
        check_finite: raise on NaN/Inf in a sample when it is read.
    """

    def __init__(self, split: str | Path | Sequence[SplitEntry], spec: DatasetSpec, *,
                 preload: bool = False, transform: PairTransform | None = None,
                 raw_transform: Callable[[np.ndarray, int], np.ndarray] | None = None,
                 check_finite: bool = True) -> None:
        self.entries = list(read_split(split) if isinstance(split, (str, Path)) else split)
        if not self.entries:
            raise DataError("dataset has no files")
        self.spec, self.transform, self.raw_transform = spec, transform, raw_transform
        self.check_finite = check_finite
        self.labeled = all(e.label is not None for e in self.entries)
        counts = [check_file_pair(e, spec) for e in self.entries]
        self.offsets = np.cumsum([0] + counts).tolist()
        self._arrays: list[tuple[np.ndarray, np.ndarray | None] | None] = [None] * len(counts)
        self.preloaded = preload
        if preload:
            for i in range(len(self.entries)):
                d, v = self._open(i)
                self._arrays[i] = (np.array(d), None if v is None else np.array(v))

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if not self.preloaded:  # memmaps are reopened in each worker, never pickled
            state["_arrays"] = [None] * len(self.entries)
        return state

    def _open(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        if self._arrays[i] is None:
            e = self.entries[i]
            d = open_npy(e.data).reshape((-1, *self.spec.seismic_shape))
            v = None
            if e.label is not None:
                v = open_npy(e.label).reshape((-1, *self.spec.velocity_shape))
            self._arrays[i] = (d, v)
        return self._arrays[i]

    def locate(self, index: int) -> tuple[int, int]:
        """Map a global sample index to (file index, index inside that file)."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range (dataset has {len(self)})")
        f = bisect.bisect_right(self.offsets, index) - 1
        return f, index - self.offsets[f]

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Un-normalised float32 copies of sample ``index``: seismic and velocity (m/s)."""
        f, j = self.locate(index)
        d, v = self._open(f)
        x = np.asarray(d[j], dtype=np.float32).copy()
        y = None if v is None else np.asarray(v[j], dtype=np.float32).copy()
        if self.check_finite:
            for arr, path in ((x, self.entries[f].data), (y, self.entries[f].label)):
                if arr is not None and not np.isfinite(arr).all():
                    raise DataError(f"{path}: sample {j} contains NaN or Inf")
        return x, y

    def __getitem__(self, index: int):
        x_raw, y_raw = self.raw(index)
        if self.raw_transform is not None:
            x_raw = np.asarray(self.raw_transform(x_raw, index), dtype=np.float32)
        x = torch.from_numpy(normalize_seismic(x_raw, self.spec).astype(np.float32))
        y = None
        if y_raw is not None:
            y = torch.from_numpy(normalize_velocity(y_raw, self.spec).astype(np.float32))
        if self.transform is not None:
            x, y = self.transform(x, y)
        return x if y is None else (x, y)
