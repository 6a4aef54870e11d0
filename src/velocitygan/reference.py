"""Load checkpoints written by the OpenFWI reference code, safely.

The reference training scripts save a pickled dict::

    {"model": generator state_dict (reference layer names),
     "model_d": critic state_dict (GAN runs only),
     "optimizer" | "optimizer_g" / "optimizer_d": optimiser state,
     "lr_scheduler" | "lr_schedulers": scheduler state, "epoch": int, "step": int,
     "args": argparse.Namespace (the command line)}

Since torch 2.6 ``torch.load`` refuses the ``argparse.Namespace`` unless told otherwise. We load
with ``weights_only=True`` and an explicit allow-list (:data:`ALLOWED_GLOBALS`), so a pickle that
asks for anything else (e.g. ``os.system``) is refused before any of it runs.

Name mapping (reference -> ours): legacy block attributes ``Conv2DwithBN``,
``Deconv2DwithBN``, ``ResizeConv2DwithBN`` become ``layers`` (as the reference's own
``replace_legacy`` does); a DDP ``module.`` prefix is dropped; encoder blocks ``convblock*`` move
under ``encoder.`` and decoder blocks ``deconv*`` under ``decoder.``
(:func:`velocitygan.models.reference_key_to_ours`). Layer indices inside each block are
identical (conv, BatchNorm, activation), so the tensors themselves are used unchanged.
"""

from __future__ import annotations

import argparse
import collections
import math
import re
from pathlib import Path
from typing import Any

import torch

from .data import OPENFWI_DATASETS
from .errors import ConfigError, VelocityGANError
from .models import InversionNet, reference_key_to_ours

__all__ = ["ALLOWED_GLOBALS", "safe_load", "is_reference_checkpoint",
           "convert_reference_state_dict", "reference_checkpoint_parts", "REFERENCE_FORMAT"]

REFERENCE_FORMAT = "openfwi-reference"

# The only non-tensor classes a checkpoint may instantiate (plus torch's own weights-only set:
# tensors, dicts, lists, tuples, numbers, strings, OrderedDict).
ALLOWED_GLOBALS: list[Any] = [argparse.Namespace, collections.Counter]
_LEGACY_BLOCKS = ("ResizeConv2DwithBN", "Deconv2DwithBN", "Conv2DwithBN_Tanh", "Conv2DwithBN")


def safe_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with :data:`ALLOWED_GLOBALS` allowed, one-line errors.

    Raises:
        VelocityGANError: missing file, a pickle that needs a global outside the allow-list
            (names it), or an unreadable file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise VelocityGANError(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        text = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"global ['\"]?([\w.]+)", text)
        if "Unsupported global" in text or "Unsupported operand" in text or found:
            what = found.group(1) if found else "a disallowed object"
            raise VelocityGANError(
                f"{path}: refused to load: the pickle asks for {what}, which is not on the "
                "allow-list (tensors, numbers, strings, containers, argparse.Namespace); "
                "only load checkpoints you trust and that hold weights only"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise VelocityGANError(f"{path}: cannot load checkpoint ({first[:200]})") from None


def is_reference_checkpoint(obj: Any) -> bool:
    """True for a dict in the reference layout (``model`` state dict, no velocitygan format)."""
    return (isinstance(obj, dict) and "format" not in obj and isinstance(obj.get("model"), dict)
            and any(str(k).endswith("weight") for k in obj["model"]))


def convert_reference_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a reference InversionNet state dict to our module names (tensors unchanged)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        k = key[len("module.") :] if key.startswith("module.") else key
        for legacy in _LEGACY_BLOCKS:
            k = k.replace(f".{legacy}.", ".layers.")
        out[reference_key_to_ours(k, "generator")] = value
    return out


def _generator_config(state: dict[str, torch.Tensor], args: dict[str, Any]) -> dict[str, Any]:
    """InversionNet keyword args inferred from tensor shapes (and the reference's args)."""
    try:
        w1 = state["encoder.convblock1.layers.0.weight"]
        w8 = state["encoder.convblock8.layers.0.weight"]
    except KeyError as exc:
        raise ConfigError(f"reference checkpoint has no {exc.args[0].split('.', 1)[1]!r}: not an "
                          f"InversionNet (model {args.get('model', '?')!r}); only InversionNet / "
                          "VelocityGAN generators load") from None
    try:
        st = int(args.get("sample_temporal") or 1)
        ss = float(args.get("sample_spatial") or 1.0)
    except (TypeError, ValueError):
        raise ConfigError(
            f"reference checkpoint args: sample_temporal {args.get('sample_temporal')!r} / "
            f"sample_spatial {args.get('sample_spatial')!r} are not numbers") from None
    if st < 1 or not 0 < ss < math.inf:
        raise ConfigError(f"reference checkpoint args: sample_temporal {st} must be >= 1 and "
                          f"sample_spatial {ss} > 0")
    config = {"width": w1.shape[0] / 32, "in_channels": int(w1.shape[1]),
              "nt": math.ceil(1000 / st), "n_receivers": math.ceil(70 * ss)}  # fmt: skip
    kernel = tuple(int(s) for s in w8.shape[2:])
    if InversionNet(**config).latent_kernel != kernel:
        raise ConfigError(f"reference convblock8 kernel {kernel} does not match {config['nt']} "
                          f"time samples x {config['n_receivers']} receivers; only the OpenFWI "
                          "input layout is supported")
    return config


def reference_checkpoint_parts(
    obj: Any, path: str | Path
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """``(state_dict, generator config, checkpoint-like dict)`` of a loaded reference pickle.

    ``state_dict`` loads into ``build_generator(config)``; the dict mirrors a velocitygan
    checkpoint where it can: ``format`` (``"openfwi-reference"``), ``model``, ``dataset``
    (``DatasetSpec.to_dict()`` of the OpenFWI dataset named in ``args``, or None), ``epoch``,
    ``step``.

    Raises:
        VelocityGANError: not a reference checkpoint, or not an InversionNet-shaped generator.
    """
    if not is_reference_checkpoint(obj):
        raise VelocityGANError(f"{path}: not an OpenFWI reference checkpoint (expected a dict "
                               "with a 'model' state dict and 'args')")
    args = obj.get("args")  # the reference command line; anything else carries nothing
    args = vars(args) if isinstance(args, argparse.Namespace) else args
    args = args if isinstance(args, dict) else {}
    state = convert_reference_state_dict(obj["model"])
    try:
        gen = _generator_config(state, args)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    name = str(args.get("dataset", "")).lower().replace("_", "-")
    k = float(args.get("k", 1.0) or 1.0)
    if k != 1.0:
        raise ConfigError(f"{path}: trained with log-transform k={k}; velocitygan normalises "
                          "with k=1 only")
    ckpt = {"format": REFERENCE_FORMAT,
            "model": {"kind": "openfwi-reference", "generator": dict(gen), "discriminator": None},
            "dataset": OPENFWI_DATASETS[name].to_dict() if name in OPENFWI_DATASETS else None,
            "epoch": obj.get("epoch"), "step": obj.get("step")}
    return state, dict(gen), ckpt
