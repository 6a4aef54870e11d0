"""Training on a CUDA GPU: bf16 + channels_last + torch.compile, and nccl DDP under torchrun.

Skipped without a GPU; run on a lent GPU machine by ``bench/gpu_session.sh``.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from trainkit import make_tiny_dataset, train_args

from velocitygan.cli import main

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _on_cuda(args: list[str], *flags: str) -> list[str]:
    """The tiny CPU argument list moved to CUDA with the given speed flags."""
    i = args.index("--device")
    args[i + 1] = "cuda"
    for flag in ("--bf16", "--channels-last"):
        j = args.index(flag)
        del args[j:j + 2]
    return [*args, *flags]


def _rows(run):
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("compile_", ["false", "true"])
def test_fast_settings_train_on_cuda(tiny, tmp_path, compile_):
    run = tmp_path / "run"
    args = _on_cuda(train_args(tiny, run, "--epochs", "2"), "--bf16", "true",
                    "--channels-last", "true", "--compile", compile_)
    assert main(args) == 0
    rows = _rows(run)
    assert len(rows) == 2 and all(math.isfinite(float(r["val_mae_mps"])) for r in rows)
    ckpt = torch.load(run / "last.pt", weights_only=True, map_location="cpu")
    assert ckpt["epoch"] == 2


@pytest.mark.skipif(torch.cuda.device_count() < 2,
                    reason="nccl needs two GPUs (two ranks cannot share one GPU)")
@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="torchrun not installed next to this Python")
def test_nccl_under_torchrun_with_sync_batchnorm(tiny, tmp_path):
    run = tmp_path / "ddp"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = torch.cuda.device_count()
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    args = _on_cuda(train_args(tiny, run, "--epochs", "1"), "--set", "sync_batchnorm=true")
    cmd = [torchrun, "--nproc_per_node", str(n), "--master_port", str(port),
           "-m", "velocitygan", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{n} process(es)" in proc.stderr and proc.stderr.count("val MAE") == 1
    assert _rows(run)[0]["step"] == str(math.ceil(24 / (4 * n)))
