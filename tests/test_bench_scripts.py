"""Smoke runs of the benchmark scripts a lent GPU session depends on (`bench/gpu_session.sh`).

A GPU session lasts minutes; a script that broke since it last ran would waste it. These runs
check that the scripts start, parse their options and write their tables on the CPU (tiny
sizes; the figures mean nothing and are not looked at).
"""

from __future__ import annotations

import os
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
