"""Checked, memory-mapped access to ``.npy`` files (header, size and dtype validated)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["npy_header", "open_npy"]


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Return (shape, dtype, data offset) of a ``.npy`` file, checking it is complete."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            offset = fh.tell()
    except (ValueError, OSError, SyntaxError) as exc:
        raise DataError(f"{path}: not a valid .npy file ({exc})") from None
    if dtype.kind not in "fiu":
        raise DataError(f"{path}: holds {dtype} values; expected real numbers (float32)")
    if fortran:
        raise DataError(f"{path}: Fortran-ordered array; save it C-ordered (np.ascontiguousarray)")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size < expected:
        raise DataError(f"{path}: truncated .npy file ({size} bytes, header promises "
                        f"{expected}); regenerate or re-download it")
    return tuple(int(s) for s in shape), dtype, offset


def open_npy(path: Path) -> np.ndarray:
    """Memory-map a validated ``.npy`` file read-only."""
    shape, dtype, offset = npy_header(path)
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
