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

from velocitygan.checkpoint import load_generator
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


# the GAN remedies with state of their own: a weight average and spectral-norm power iterations
@pytest.mark.parametrize("extra", [(), ("--set", "ema_decay=0.9", "--set", "critic_norm=spectral")])
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tiny, tmp_path, extra):
    args = (*ARGS, *extra)
    ref = tmp_path / "ref"
    assert main(train_args(tiny, ref, *args)) == 0

    run = tmp_path / "killed"
    proc = _start(train_args(tiny, run, *args))
    _wait_for(run / "last.pt", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    pos = torch.load(run / "last.pt", weights_only=True)["position"]
    assert pos["epoch"] == 0 and 0 < pos["batches_done"] < 12  # really mid-epoch

    assert main(train_args(tiny, run, *args, "--resume")) == 0
    want, got = _weights(ref / "last.pt"), _weights(run / "last.pt")
    assert want.keys() == got.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6, msg=k)
    with open(run / "metrics.csv", newline="") as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["1", "2"]
    ckpt = torch.load(run / "last.pt", weights_only=True)
    if extra:  # the final generator is the average, which differs from the last iterate
        avg = {k.removeprefix("module."): v for k, v in ckpt["generator_ema"].items()}
        params = dict(load_generator(run / "last.pt")[0].named_parameters())
        for k, v in params.items():
            torch.testing.assert_close(v.detach(), avg[k], msg=k)
        assert any("parametrizations" in k for k in ckpt["discriminator"])
        last_iterate = tmp_path / "no-average"
        assert main(train_args(tiny, last_iterate, *args, "--set", "ema_decay=0")) == 0
        other = torch.load(last_iterate / "last.pt", weights_only=True)["generator"]
        assert any(not torch.equal(other[k], ckpt["generator"][k]) for k in params)
        for k in params:  # the last iterate, kept for a longer budget, is the plain run's
            torch.testing.assert_close(ckpt["generator_iterate"][k], other[k], msg=k)
    else:
        assert ckpt["generator_ema"] is None and ckpt["generator_iterate"] is None


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


def _rows(run):
    with open(run / "metrics.csv", newline="") as fh:
        return [(r["epoch"], r["step"], r["best"]) for r in csv.DictReader(fh)]


def test_limit_stop_then_resume_keeps_the_partial_row_and_checks_the_data_order(
        tiny, tmp_path, capsys, monkeypatch):
    run = tmp_path / "limit"
    monkeypatch.chdir(tiny["train"].parent)  # relative paths, resumed from elsewhere below
    rel = {"train": "train.txt", "val": "val.txt", "dataset": "tiny.toml"}
    assert main(train_args(rel, run, *ARGS, "--max-steps", "5")) == 0
    assert _rows(run) == [("1", "5", "1")]  # validated at the stop; best.pt is this model
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    # mid-epoch: another batch size or seed would skip or repeat samples of epoch 1
    resumed = ["train", "--out", str(run), "--resume", "--workers", "0"]
    assert main([*resumed, "--batch-size", "4"]) == 2
    err = capsys.readouterr().err
    assert "batch_size 2 (checkpoint) vs 4 (now)" in err and len(err.strip().splitlines()) == 1
    # new optimiser settings apply after a resume; the saved paths are absolute
    assert main([*resumed, "--max-steps", "0", "--lr", "5e-3"]) == 0
    rows = _rows(run)
    assert rows[0] == ("1", "5", "1") and [r[:2] for r in rows[1:]] == [("1", "12"), ("2", "24")]
    ckpt = torch.load(run / "last.pt", weights_only=True)
    groups = ckpt["optimizers"]["generator"]["param_groups"]
    assert all(g["base_lr"] == 5e-3 for g in groups)
    assert ckpt["config"]["train"] == str(tiny["train"].resolve())


def test_resumed_fine_tuning_does_not_need_its_starting_checkpoint(tiny, tmp_path):
    src = tmp_path / "src"
    assert main(train_args(tiny, src, "--epochs", "1", model="inversionnet")) == 0
    run = tmp_path / "ft"
    init = tmp_path / "init.pt"
    init.write_bytes((src / "best.pt").read_bytes())
    assert main(train_args(tiny, run, "--epochs", "2", "--max-steps", "3", "--init-from",
                           str(init), model="inversionnet")) == 0
    init.unlink()
    assert main(train_args(tiny, run, "--epochs", "2", "--init-from", str(init), "--resume",
                           "--max-steps", "0",
                           model="inversionnet")) == 0
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 2


def test_batch_of_one_per_process_is_a_one_line_error(tiny, tmp_path, capsys):
    assert main(train_args(tiny, tmp_path / "b1", "--batch-size", "1")) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].startswith("error: batch_size = 1") and "Traceback" not in err
