"""Bundled pretrained generators, usable by name: ``--checkpoint pretrained:flatvel-a``.

Each bundled model is two files in ``velocitygan/weights/``: ``NAME.pt`` (a slim velocitygan
checkpoint: generator, critic, their configs, the dataset normalisation and the training
settings in float32; no optimiser state) and ``NAME.json``, its model card (data recipe and seeds,
settings, test metrics, date, package version, and the command that remakes it).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .io import read_json

__all__ = ["PREFIX", "list_pretrained", "model_card", "resolve_checkpoint"]

PREFIX = "pretrained:"


def _weights_dir() -> Path:
    return Path(str(resources.files("velocitygan") / "weights"))


def list_pretrained() -> list[dict[str, Any]]:
    """The model cards of every bundled model, sorted by name."""
    folder = _weights_dir()
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    cards = [(p, read_json(p)) for p in paths if p.with_suffix(".pt").is_file()]
    bad = [str(p) for p, card in cards if not card or not _CARD_KEYS <= set(card)]
    if bad:
        raise ConfigError(f"{bad[0]}: not a model card (needs {', '.join(sorted(_CARD_KEYS))}); "
                          "reinstall velocitygan")
    return [card for _, card in cards]


_CARD_KEYS = {"name", "file", "model", "family", "width", "test", "date", "velocitygan_version",
              "remake"}


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
