"""Helpers for the training tests: a tiny learnable dataset and CLI argument lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np

NT, NREC = 100, 20  # short records, few receivers: the networks adapt, tests stay fast
TINY_WIDTH = "0.0625"


def make_tiny_dataset(folder: Path, n_train: int = 24, n_val: int = 8, seed: int = 0) -> dict:
    """Two-layer velocity maps and seismic records that encode the interface depth.

    Returns paths of ``train.txt``, ``val.txt`` and a dataset TOML (``tiny.toml``) whose
    spec has ``seismic_shape = (5, 100, 20)``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in (("train", n_train), ("val", n_val)):
        depth = rng.integers(10, 60, size=n)
        vel = np.full((n, 1, 70, 70), 2000.0, np.float32)
        for i, d in enumerate(depth):
            vel[i, 0, d:] = 4000.0
        data = rng.normal(0.0, 0.3, size=(n, 5, NT, NREC)).astype(np.float32)
        data += (depth / 60.0).astype(np.float32)[:, None, None, None]
        np.save(folder / f"{name}_data.npy", data)
        np.save(folder / f"{name}_model.npy", vel)
        (folder / f"{name}.txt").write_text(f"{name}_data.npy\t{name}_model.npy\n")
    card = folder / "tiny.toml"
    card.write_text(f"[datasets.tiny]\ndata_min = -3.0\ndata_max = 5.0\n"
                    f"seismic_shape = [5, {NT}, {NREC}]\n")
    return {"train": folder / "train.txt", "val": folder / "val.txt", "dataset": card}


def train_args(data: dict, out: Path, *extra: str, model: str = "velocitygan") -> list[str]:
    """``velocitygan train`` arguments for a tiny, fast, deterministic CPU run."""
    return [
        "train", "--model", model, "--train", str(data["train"]), "--val", str(data["val"]),
        "--dataset", str(data["dataset"]), "--out", str(out), "--batch-size", "4",
        "--width", TINY_WIDTH, "--workers", "0", "--device", "cpu", "--bf16", "false",
        "--channels-last", "false", "--set", f"critic_width={TINY_WIDTH}",
        "--set", "tensorboard=false", "--set", "progress=log", *extra,
    ]



def first_batchnorm_is_the_data_mean(run: Path, data: dict) -> bool:
    """Whether the first BatchNorm of ``run/last.pt`` holds, as running mean, the mean of its
    input over every sample of the training split (what recomputing over all of them gives)."""
    import torch

    from velocitygan.checkpoint import load_generator
    from velocitygan.data import OpenFWIDataset

    model, spec, _ = load_generator(run / "last.pt")
    first = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    first.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    with torch.no_grad():
        model(torch.stack([x for x, _ in OpenFWIDataset(data["train"], spec)]))
    return torch.allclose(first.running_mean, seen[0].mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
