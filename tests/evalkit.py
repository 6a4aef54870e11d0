"""Helpers for the evaluation tests: tiny checkpoints and tiny labelled datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from velocitygan.checkpoint import save_checkpoint
from velocitygan.data import OPENFWI_DATASETS
from velocitygan.models import InversionNet

TINY_WIDTH = 0.125  # 4 .. 64 channels: fast on CPU, same layer layout as the full network


def tiny_generator(seed: int = 0, width: float = TINY_WIDTH) -> InversionNet:
    """A small InversionNet whose output depends on its input, in eval mode.

    BatchNorm statistics are calibrated on random inputs (as after training), so that the
    eval-mode network does not collapse to a constant map.
    """
    torch.manual_seed(seed)
    model = InversionNet(width=width)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 5, 1000, 70) * 0.3)
    return model.eval()


def write_checkpoint(path: Path, model: InversionNet, dataset: str | None = "flatvel-a") -> Path:
    """A velocitygan checkpoint in the layout of ``checkpoint.py``'s docstring."""
    save_checkpoint(path, {
        "model": {"kind": "inversionnet", "generator": dict(model.config), "discriminator": None},
        "dataset": OPENFWI_DATASETS[dataset].to_dict() if dataset else None,
        "generator": model.state_dict(), "discriminator": None, "optimizers": {},
        "epoch": 3, "step": 30, "config": {}, "metrics": {}, "rng": {},
    })  # fmt: skip
    return path


def reference_state_dict(model: InversionNet) -> dict[str, torch.Tensor]:
    """Our state dict under the OpenFWI reference code's names (``convblock1.layers.0.weight``)."""
    out = {}
    for key, value in model.state_dict().items():
        head, rest = key.split(".", 1)
        assert head in ("encoder", "decoder"), key
        out[rest] = value.clone()
    return out


def write_reference_checkpoint(path: Path, model: InversionNet, dataset: str = "flatvel-a") -> Path:
    """A checkpoint as the reference train.py writes it: pickled dict with a Namespace."""
    args = argparse.Namespace(
        dataset=dataset, model="InversionNet", k=1.0, sample_spatial=1.0, sample_temporal=1,
        lr=1e-4, lr_milestones=[], batch_size=256, output_path="Invnet_models/x", device="cuda",
    )  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    torch.save({
        "model": reference_state_dict(model), "optimizer": opt.state_dict(),
        "lr_scheduler": {"milestones": [], "gamma": 0.1, "last_epoch": 5, "base_lrs": [1e-4]},
        "epoch": 4, "step": 500, "args": args,
    }, path)  # fmt: skip
    return path


def layered_velocity(rng: np.random.Generator, n: int) -> np.ndarray:
    """Curved-layer velocity maps (n, 1, 70, 70) in m/s, 1500-4500."""
    z, x = np.arange(70)[:, None], np.arange(70)[None, :]
    out = np.empty((n, 1, 70, 70), dtype=np.float32)
    for i in range(n):
        v = np.full((70, 70), rng.uniform(1500, 2200))
        depths = np.sort(rng.integers(8, 64, 4))
        speeds = np.sort(rng.uniform(2000, 4500, 4))
        for d, s in zip(depths, speeds, strict=True):
            v = np.where(z + 4 * np.sin(x / 11 + i) > d, s, v)
        out[i, 0] = v
    return out


def write_dataset(folder: Path, counts: tuple[int, ...] = (3, 2), seed: int = 0) -> Path:
    """Files data{k}.npy / model{k}.npy (raw amplitudes within flatvel-a's range), split file."""
    rng = np.random.default_rng(seed)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "model").mkdir(parents=True, exist_ok=True)
    lines = []
    for k, n in enumerate(counts):
        data = np.clip(rng.normal(0, 2.0, (n, 5, 1000, 70)), -25, 50).astype(np.float32)
        np.save(folder / "data" / f"data{k}.npy", data)
        np.save(folder / "model" / f"model{k}.npy", layered_velocity(rng, n))
        lines.append(f"data/data{k}.npy\tmodel/model{k}.npy\n")
    split = folder / "val.txt"
    split.write_text("".join(lines))
    return split


def ctrl_c_at_call(monkeypatch, n: int) -> None:
    """Make FWI's n-th gradient evaluation raise KeyboardInterrupt (as Ctrl-C would); later
    calls (a resumed run) compute normally."""
    from velocitygan.fwi.inversion import _Problem

    real, calls = _Problem.loss_and_grad, []

    def interrupted(self, model):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(self, model)

    monkeypatch.setattr(_Problem, "loss_and_grad", interrupted)
