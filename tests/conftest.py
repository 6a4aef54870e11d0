"""Shared fixtures: tiny OpenFWI-layout datasets written into ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _kernel_cache(tmp_path_factory):
    """Compiled kernels go to a folder of this test session, not the user's cache (and the
    environment reaches CLI subprocesses and generation workers)."""
    import os

    old = os.environ.get("VELOCITYGAN_CACHE")
    os.environ["VELOCITYGAN_CACHE"] = str(tmp_path_factory.mktemp("kernel-cache"))
    yield
    if old is None:
        os.environ.pop("VELOCITYGAN_CACHE", None)
    else:
        os.environ["VELOCITYGAN_CACHE"] = old


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread per test: on a shared 2-core machine tiny networks and deepwave run
    many times faster single-threaded (measured: 4 deepwave samples 26 s -> 0.67 s)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def write_pair(folder: Path, k: int, n: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``data{k}.npy`` (n,5,1000,70) and ``model{k}.npy`` (n,1,70,70) of plausible values."""
    rng = np.random.default_rng(seed + k)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "model").mkdir(parents=True, exist_ok=True)
    data = rng.normal(0.0, 3.0, size=(n, 5, 1000, 70)).astype(np.float32)
    model = rng.uniform(1500.0, 4500.0, size=(n, 1, 70, 70)).astype(np.float32)
    d, m = folder / "data" / f"data{k}.npy", folder / "model" / f"model{k}.npy"
    np.save(d, data)
    np.save(m, model)
    return d, m


@pytest.fixture
def tiny_split(tmp_path: Path) -> Path:
    """A split file with two file pairs (3 + 2 samples), relative paths."""
    write_pair(tmp_path, 0, 3)
    write_pair(tmp_path, 1, 2)
    split = tmp_path / "train.txt"
    split.write_text("data/data0.npy\tmodel/model0.npy\ndata/data1.npy\tmodel/model1.npy\n")
    return split
