"""Resume: a run killed with SIGKILL mid-epoch and resumed ends with the weights of an
uninterrupted run; Ctrl-C (SIGINT) saves last.pt and exits with status 130."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from trainkit import make_tiny_dataset, train_args

from velocitygan.cli import main

ARGS = ("--epochs", "2", "--batch-size", "2", "--n-critic", "2", "--checkpoint-every-steps", "3")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def _start(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "velocitygan", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    t0 = time.monotonic()
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"training exited early: {proc.communicate()[1][-2000:]}")
        if time.monotonic() - t0 > timeout_s:
            proc.kill()
            pytest.fail("no checkpoint appeared")
        time.sleep(0.002)


def _weights(path):
    ckpt = torch.load(path, weights_only=True)
    return ckpt["generator"] | {f"d.{k}": v for k, v in ckpt["discriminator"].items()}


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tiny, tmp_path):
    ref = tmp_path / "ref"
    assert main(train_args(tiny, ref, *ARGS)) == 0

    run = tmp_path / "killed"
    proc = _start(train_args(tiny, run, *ARGS))
    _wait_for(run / "last.pt", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    pos = torch.load(run / "last.pt", weights_only=True)["position"]
    assert pos["epoch"] == 0 and 0 < pos["batches_done"] < 12  # really mid-epoch

    assert main(train_args(tiny, run, *ARGS, "--resume")) == 0
    want, got = _weights(ref / "last.pt"), _weights(run / "last.pt")
    assert want.keys() == got.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6, msg=k)
    with open(run / "metrics.csv", newline="") as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["1", "2"]


def test_ctrl_c_saves_last_checkpoint(tiny, tmp_path):
    run = tmp_path / "int"
    proc = _start(train_args(tiny, run, *ARGS))
    _wait_for(run / "last.pt", proc)
    first = torch.load(run / "last.pt", weights_only=True)["step"]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    assert torch.load(run / "last.pt", weights_only=True)["step"] >= first
