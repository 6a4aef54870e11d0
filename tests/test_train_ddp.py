"""DistributedDataParallel on CPU (gloo, 2 processes): the same steps as one process."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from trainkit import TINY_WIDTH, first_batchnorm_is_the_data_mean, make_tiny_dataset, train_args

from velocitygan.data import get_dataset
from velocitygan.models import InversionNet
from velocitygan.train import resolve_config
from velocitygan.train.distributed import setup_distributed, teardown_distributed
from velocitygan.train.loaders import build_datasets, train_loader
from velocitygan.train.loop import train_step
from velocitygan.train.speed import resolve_speed
from velocitygan.train.state import build_state

STEPS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_steps(rank: int, world: int, port: int, data: dict, out: str) -> None:
    """Two iterations (critic + generator each) of the real training step on this process."""
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                          RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = resolve_config(overrides={
        "train": str(data["train"]), "val": str(data["val"]), "dataset": str(data["dataset"]),
        "width": float(TINY_WIDTH), "critic_width": float(TINY_WIDTH), "batch_size": 4,
        "n_critic": 1, "lr": 1e-3, "critic_lr": 1e-3, "critic_norm": "layer", "workers": 0,
        "device": "cpu", "bf16": "false", "channels_last": "false"})
    env = setup_distributed("cpu")
    spec = get_dataset(cfg.dataset)
    ts = build_state(cfg, spec, env, resolve_speed(cfg, env.device))
    # Generator BatchNorm in eval mode (running statistics): batch statistics of a half batch
    # per process would legitimately differ from the one-process batch (no CPU SyncBatchNorm).
    ts.generator.eval()
    train_ds, _, _ = build_datasets(cfg, spec)
    for _, (x, y) in zip(range(STEPS), train_loader(train_ds, cfg, env, epoch=0), strict=False):
        assert train_step(ts, x, y) is not None
        ts.step += 1
    if env.is_main:
        torch.save({"g": ts.generator.state_dict(), "d": ts.critic.state_dict()}, out)
    if world > 1:
        teardown_distributed()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def test_two_gloo_processes_match_one_process(tiny, tmp_path):
    one, two = str(tmp_path / "one.pt"), str(tmp_path / "two.pt")
    _run_steps(0, 1, 0, tiny, one)
    mp.spawn(_run_steps, args=(2, _free_port(), tiny, two), nprocs=2, join=True)
    a, b = torch.load(one, weights_only=True), torch.load(two, weights_only=True)
    for net in ("g", "d"):
        for k in a[net]:
            torch.testing.assert_close(b[net][k], a[net][k], rtol=1e-4, atol=1e-6, msg=k)
    torch.manual_seed(0)  # build_state seeds with cfg.seed = 0: these are the initial weights
    init = InversionNet(width=float(TINY_WIDTH), nt=100, n_receivers=20).state_dict()
    moved = sum(not torch.equal(a["g"][k], init[k]) for k in init if "running" not in k)
    assert moved > 10  # the compared steps really changed the weights


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="torchrun not installed next to this Python")
def test_cli_under_torchrun(tiny, tmp_path):
    run = tmp_path / "ddp"
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "velocitygan", *train_args(tiny, run, "--epochs", "1", "--set",
                                            "critic_norm=none", "--set",
                                            "bn_recompute_samples=24")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("val MAE") == 1  # only rank 0 logs
    with open(run / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["step"] == "6"  # 24 samples / global batch 4
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and "2 process(es)" in proc.stderr
    # each process recomputed BatchNorm statistics on its half; their average is the global one
    assert first_batchnorm_is_the_data_mean(run, tiny)
