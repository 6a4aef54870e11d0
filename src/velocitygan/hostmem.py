"""Host (CPU) memory: keep freed blocks in the process for reuse.

glibc serves every block above its mmap threshold (128 KiB to 32 MiB, adaptive) with a fresh
``mmap`` and gives it back with ``munmap`` when freed, so a training step at batch 16 maps
and page-faults its activations (tens of MB per layer) anew on every iteration. On the 2-core
VM of our benchmarks that is about 40 % of an eager fp32 training step and more of an
inference pass (``bench/results/hostmem_cpu.md``). Turning mmap off and never trimming the
heap keeps freed blocks for the next step: the first step faults them in, later steps reuse
them. The cost is memory: the process keeps its peak resident size, and more where blocks
fragment (glibc reuses a large block only once several have piled up: a loop allocating one
64 MiB block per step settles at ~0.6 GB kept, ``tests/test_hostmem.py``).

Only glibc has these knobs; elsewhere (macOS, musl) nothing changes.
"""

from __future__ import annotations

import ctypes
import platform
import sys

__all__ = ["reuse_freed_memory"]

_M_TRIM_THRESHOLD = -1  # mallopt parameters, <malloc.h>
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1  # bytes of free heap top kept (the largest value mallopt takes)


def reuse_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (no mmap per large block, no heap trimming).

    Process-wide and one-way; the resident size stays at the peak the process reached.
    Returns True when the setting took effect (glibc on Linux), False elsewhere.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM) == 1
