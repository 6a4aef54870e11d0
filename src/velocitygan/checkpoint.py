"""Checkpoints: plain dicts of tensors, numbers and strings, written atomically.

Layout (``format`` = ``velocitygan-checkpoint``)::

    {
      "format": "velocitygan-checkpoint", "format_version": 1, "velocitygan_version": str,
      "model": {"kind": "velocitygan" | "inversionnet",
                "generator": {InversionNet keyword args}, "discriminator": {...} | None},
      "dataset": DatasetSpec.to_dict() | None,
      "generator": state_dict, "discriminator": state_dict | None,
      "optimizers": {name: optimizer state_dict}, "epoch": int, "step": int,
      "config": {resolved training configuration}, "metrics": {...}, "rng": {...},
    }

Every checkpoint loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import __version__
from .data import DatasetSpec
from .errors import VelocityGANError
from .io import atomic_path
from .models import build_generator
from .pretrained import resolve_checkpoint
from .reference import is_reference_checkpoint, reference_checkpoint_parts, safe_load

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint", "load_generator",
           "generator_parts", "slim_checkpoint"]

CHECKPOINT_FORMAT = "velocitygan-checkpoint"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus format and version keys) atomically to ``path``."""
    full = {"format": CHECKPOINT_FORMAT, "format_version": 1, "velocitygan_version": __version__}
    full.update(state)
    with atomic_path(path) as tmp:  # synced before the rename
        torch.save(full, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a velocitygan checkpoint (a path or ``pretrained:NAME``), ``weights_only=True``."""
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise VelocityGANError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VelocityGANError(f"{path}: cannot load checkpoint ({first[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise VelocityGANError(f"{path}: not a velocitygan checkpoint")
    return ckpt


def generator_parts(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict]:
    """``(state_dict, generator config, checkpoint dict)`` of a generator checkpoint (what
    ``train --init-from`` and :func:`load_generator` read).

    Falls back to OpenFWI reference-code checkpoints (:mod:`velocitygan.reference`: loaded
    weights-only with an allow-list, layer names mapped to ours); their ``ckpt`` dict has
    ``format`` = ``"openfwi-reference"``, ``dataset`` and ``epoch``/``step``.
    """
    path = resolve_checkpoint(path)
    ckpt = safe_load(path)
    if is_reference_checkpoint(ckpt):
        return reference_checkpoint_parts(ckpt, path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise VelocityGANError(f"{path}: neither a velocitygan nor an OpenFWI reference checkpoint")
    model = ckpt.get("model")
    if not isinstance(model, dict) or "generator" not in ckpt or "generator" not in model:
        raise VelocityGANError(f"{path}: checkpoint holds no generator weights")
    return ckpt["generator"], dict(model["generator"]), ckpt


def load_generator(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the generator of a checkpoint, in eval mode on ``device``.

    Returns:
        ``(model, spec_or_None, ckpt)``: the :class:`~velocitygan.models.InversionNet`, the
        :class:`~velocitygan.data.DatasetSpec` it was trained with (None if not recorded) and
        the raw checkpoint dict.
    """
    state, config, ckpt = generator_parts(path)
    model = build_generator(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()[:200]
        msg = f"{path}: weights do not fit its generator config ({first})"
        raise VelocityGANError(msg) from None
    spec = ckpt.get("dataset")
    spec = DatasetSpec.from_dict(spec, source=str(path)) if isinstance(spec, dict) else None
    return model.to(device).eval(), spec, ckpt


def slim_checkpoint(src: str | Path, dst: str | Path) -> int:
    """Copy a training checkpoint without its optimiser and RNG state and without the paths of
    the machine it was trained on (what a user needs to predict, evaluate or fine-tune).
    Returns the size in bytes."""
    ckpt = load_checkpoint(src)
    keep = ("model", "dataset", "generator", "discriminator", "epoch", "step", "config", "metrics")
    slim = {k: ckpt[k] for k in keep if k in ckpt}
    if "config" in slim:  # no paths of the machine it was trained on
        local = ("train", "val", "out", "init_from", "dataset")
        slim["config"] = {**slim["config"], **dict.fromkeys(local, "")}
    save_checkpoint(dst, slim)
    return Path(dst).stat().st_size
