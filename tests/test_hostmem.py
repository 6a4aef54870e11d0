"""Host-memory reuse: after ``reuse_freed_memory`` a large block freed and allocated again
is not page-faulted in a second time (glibc only; each case runs in a fresh process because
the setting is process-wide)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from velocitygan.hostmem import reuse_freed_memory

PROBE = """
import resource, sys, torch
from velocitygan.hostmem import reuse_freed_memory
took = reuse_freed_memory() if sys.argv[1] == "reuse" else None
def faults_of_one_step():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16 * 2**20)  # 64 MiB, like one activation of a full-size step
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
def rss_mb():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024
base = rss_mb()
steps = [faults_of_one_step() for _ in range(30)]
print(took, max(steps[-10:]), rss_mb() - base)
"""

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="needs glibc")


def _probe(mode: str) -> tuple[str, int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], int(out[1]), int(out[2])


@glibc_only
def test_freed_blocks_are_reused_without_page_faults() -> None:
    took, faults, kept_mb = _probe("reuse")
    _, faults_default, _ = _probe("default")
    assert took == "True"
    # glibc reuses the freed blocks once a few have accumulated (memalign padding keeps it
    # from reusing the very last one): after that, no step faults its memory in again
    assert faults < 1_000
    assert kept_mb < 1_024  # what it keeps for a 64 MiB step stays bounded
    # 64 MiB in 4 KiB pages, mapped anew on every step (transparent huge pages, where the
    # kernel always uses them, cut the default's count to ~32; then there is no contrast)
    assert faults_default > 10_000 or faults_default < 1_000


def test_reports_whether_it_took_effect() -> None:
    assert reuse_freed_memory() is (platform.libc_ver()[0] == "glibc")
