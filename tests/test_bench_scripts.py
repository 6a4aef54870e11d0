"""Smoke runs of the benchmark scripts a lent GPU session depends on (`bench/gpu_session.sh`).

A GPU session lasts minutes; a script that broke since it last ran would waste it. These runs
check that the scripts start, parse their options and write their tables on the CPU (tiny
sizes; the figures mean nothing and are not looked at).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_gpu_session_script_parses():
    done = subprocess.run(["bash", "-n", str(ROOT / "bench" / "gpu_session.sh")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ for the CUDA emulation")
def test_bench_kernel_emulated_writes_the_best_tiling(tmp_path: Path):
    best, table = tmp_path / "best.txt", tmp_path / "kernel.md"
    done = _run("bench/bench_kernel.py", "--emulate", "--best", str(best), "--out", str(table))
    assert done.returncode == 0, done.stderr[-2000:]
    assert best.read_text().strip() == "48x48x4x16x2x1"  # the only (first) tiling emulated
    assert "| kernel | 48, 48, 4, 16, 2, 1 |" in table.read_text()


def test_bench_host_pipeline_runs(tmp_path: Path):
    out = tmp_path / "host.md"
    done = _run("bench/bench_host_pipeline.py", "--samples", "6", "--batch", "4",
                "--rates", "inf", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| inf |" in out.read_text()


def test_bench_generate_runs(tmp_path: Path):
    pytest.importorskip("deepwave")
    out = tmp_path / "gen.md"
    done = _run("bench/bench_generate.py", "--backend", "deepwave", "--workers", "1",
                "--samples", "4", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    row = [line for line in out.read_text().splitlines() if line.startswith("| deepwave")]
    assert len(row) == 1 and row[0].endswith("% |")  # operator-busy share of an in-process run


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc (CUDA toolkit)")
def test_kernel_compiles_as_cuda_with_the_shared_memory_it_declares(tmp_path: Path):
    """nvcc builds every tiling of the sweep for sm_90 (the emulation compiles it as C++ only);
    ptxas's static shared memory is TileConfig.shared_bytes, and the default tiling does not
    spill registers to local memory."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_kernel import DEFAULT_TILES

    from velocitygan.physics.cuda_kernel import TileConfig

    out = tmp_path / "res.md"
    done = _run("bench/kernel_resources.py", "--arch", "sm_90", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split(" | ") for line in out.read_text().splitlines()
            if line.startswith("| ") and line[2].isdigit()]  # one per tiling
    tiles = [TileConfig.parse(spec) for spec in DEFAULT_TILES.split(",")]
    assert len(rows) == len(tiles)
    for cfg, row in zip(tiles, rows, strict=True):
        assert int(row[4]) == cfg.shared_bytes, (cfg.spec, row)
        assert 0 < int(row[2]) <= 255
    default = rows[0]  # the sweep starts with TileConfig's defaults
    assert tiles[0] == TileConfig() and default[3] == "0/0", default
