"""Bundled pretrained generators, usable by name: ``--checkpoint pretrained:flatvel-a``.

Each bundled model is two files in ``velocitygan/weights/``: ``NAME.pt`` (a slim velocitygan
checkpoint: generator, critic, their configs, the dataset normalisation and the training
settings; no optimiser state) and ``NAME.json``, its model card (data recipe and seeds,
settings, test metrics, date, package version, and the command that remakes it).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError

__all__ = ["PREFIX", "list_pretrained", "model_card", "resolve_checkpoint", "slim_checkpoint"]

PREFIX = "pretrained:"


def _weights_dir() -> Path:
    return Path(str(resources.files("velocitygan") / "weights"))


def list_pretrained() -> list[dict[str, Any]]:
    """The model cards of every bundled model, sorted by name."""
    folder = _weights_dir()
    cards = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return [json.loads(p.read_text(encoding="utf-8")) for p in cards
            if (p.with_suffix(".pt")).is_file()]


def model_card(name: str) -> dict[str, Any]:
    """The model card of the bundled model ``name``; a one-line error lists the known names."""
    for card in list_pretrained():
        if card["name"] == name:
            return card
    known = ", ".join(PREFIX + c["name"] for c in list_pretrained()) or "none bundled"
    raise ConfigError(f"unknown pretrained model {PREFIX}{name}; known: {known} "
                      "(`velocitygan pretrained` lists them)")


def resolve_checkpoint(path: str | Path) -> Path:
    """The file a ``--checkpoint`` value names: ``pretrained:NAME`` -> the bundled weights,
    anything else -> the path itself (``~`` expanded)."""
    text = str(path)
    if not text.startswith(PREFIX):
        return Path(text).expanduser()
    card = model_card(text[len(PREFIX):])
    return _weights_dir() / card["file"]


def slim_checkpoint(src: str | Path, dst: str | Path, *, bf16: bool = False) -> int:
    """Copy a training checkpoint without its optimiser and RNG state (what a user needs to
    predict, evaluate or fine-tune); ``bf16`` halves the size. Returns the size in bytes."""
    from .checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(src)
    keep = ("model", "dataset", "generator", "discriminator", "epoch", "step", "config",
            "metrics")
    slim = {k: ckpt[k] for k in keep if k in ckpt}
    if bf16:
        for part in ("generator", "discriminator"):
            if slim.get(part) is not None:
                slim[part] = {k: v.to(torch.bfloat16) if v.is_floating_point() else v
                              for k, v in slim[part].items()}
    save_checkpoint(dst, slim)
    return Path(dst).stat().st_size
