"""Run a trained generator on seismic records: raw amplitudes in, velocity maps in m/s out.

Inputs: one sample ``(shots, nt, receivers)`` or a batch ``(N, shots, nt, receivers)`` in a
``.npy`` file, a split file (its data column), a SEG-Y file (optional ``segyio``; see
:mod:`velocitygan.segy`), or an array. Checkpoints: velocitygan's own, or the OpenFWI reference
code's (:mod:`velocitygan.reference`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load_generator
from .data import DatasetSpec, denormalize_velocity, get_dataset, normalize_seismic, read_split
from .data.check import amplitude_problem
from .data.npyfile import open_npy
from .device import resolve_device
from .errors import ConfigError, DataError
from .io import check_output_file, save_npy
from .models import InversionNet
from .pretrained import resolve_checkpoint
from .reference import REFERENCE_FORMAT

__all__ = ["LoadedModel", "InputRangeWarning", "load_model", "resolve_spec", "check_input_range",
           "predict_batches", "predict"]


class InputRangeWarning(UserWarning):
    """Input statistics fall outside what the model saw in training."""


@dataclass
class LoadedModel:
    """A generator ready for inference, with what its checkpoint says about it."""

    model: InversionNet
    spec: DatasetSpec | None
    source: str  # "velocitygan" or "openfwi-reference"
    path: Path
    info: dict[str, Any] = field(default_factory=dict)


def load_model(checkpoint: str | Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the generator of a velocitygan or OpenFWI-reference checkpoint (eval mode).

    Loading is weights-only with a small allow-list (see :func:`velocitygan.reference.safe_load`);
    :func:`velocitygan.checkpoint.load_generator` does the work.
    """
    path = resolve_checkpoint(checkpoint)
    model, spec, ckpt = load_generator(path, resolve_device(device))
    source = "openfwi-reference" if ckpt.get("format") == REFERENCE_FORMAT else "velocitygan"
    info = {"kind": (ckpt.get("model") or {}).get("kind"), "epoch": ckpt.get("epoch"),
            "step": ckpt.get("step")}
    return LoadedModel(model=model, spec=spec, source=source, path=path, info=info)


def resolve_spec(loaded: LoadedModel, dataset: str | Path | DatasetSpec | None) -> DatasetSpec:
    """The normalisation to use: ``dataset`` when given, else the checkpoint's; error if neither
    or if ``dataset`` maps velocities (m/s) to another range than the checkpoint's outputs."""
    if dataset is not None:
        spec = get_dataset(dataset)
        own = loaded.spec
        if own is not None and (own.label_min, own.label_max) != (spec.label_min, spec.label_max):
            raise ConfigError(f"{spec.name} maps velocities {spec.label_min:g}-{spec.label_max:g} "
                              f"m/s, but {loaded.path} outputs {own.label_min:g}-"
                              f"{own.label_max:g} m/s; use a dataset card with that range")
        if own is not None and (own.data_min, own.data_max) != (spec.data_min, spec.data_max):
            warnings.warn(f"normalising with {spec.name} bounds ({spec.data_min}, "
                          f"{spec.data_max}) as asked; the model was trained with {own.name} "
                          f"({own.data_min}, {own.data_max})", InputRangeWarning, stacklevel=2)
        return spec
    if loaded.spec is None:
        raise ConfigError(f"{loaded.path}: the checkpoint does not say which normalisation it "
                          "was trained with; pass --dataset NAME|dataset.json")
    return loaded.spec


def check_input_range(x_raw: np.ndarray, spec: DatasetSpec, what: str,
                      offset: int = 0) -> str | None:
    """Raise on NaN/Inf (naming the sample: ``offset`` is the index of ``x_raw[0]`` in the
    input); return a warning text when amplitudes look unlike the training data."""
    if not np.isfinite(x_raw).all():
        bad = int(np.argwhere(~np.isfinite(x_raw).reshape(len(x_raw), -1).all(1))[0, 0])
        raise DataError(f"{what}: sample {offset + bad} contains NaN or Inf; clean or drop it "
                        "first")
    problem = amplitude_problem(float(x_raw.min()), float(x_raw.max()), spec, what)
    return None if problem is None else f"{problem}; predictions may be unreliable"


def _expected_shape(model: InversionNet) -> tuple[int, int, int]:
    c = model.config
    return (c["in_channels"], c["nt"], c["n_receivers"])


@torch.no_grad()
def predict_batches(model: InversionNet, chunks: Iterator[tuple[np.ndarray, str]],
                    spec: DatasetSpec, *, batch_size: int = 64,
                    warn: Callable[[str], None] | None = None) -> np.ndarray:
    """Predict velocities (m/s, ``(N, 1, 70, 70)`` float32) for raw seismic chunks.

    Args:
        model: generator in eval mode (its device is used).
        chunks: ``(array (n, shots, nt, receivers) raw amplitudes, name)`` pairs.
        spec: normalisation bounds.
        batch_size: samples per forward pass.
        warn: called once per chunk whose amplitudes look unlike the training data.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    want = _expected_shape(model)
    outs: list[np.ndarray] = []
    for array, name in chunks:
        if tuple(array.shape[1:]) != want:
            raise DataError(f"{name}: seismic shape {tuple(array.shape)}; the model expects (N, "
                            f"{want[0]}, {want[1]}, {want[2]}) (shots, time samples, receivers)")
        for start in range(0, len(array), batch_size):
            x_raw = np.asarray(array[start : start + batch_size], dtype=np.float32)
            msg = check_input_range(x_raw, spec, name, offset=start)
            if msg and warn is not None:
                warn(msg)
                warn = None  # once per call is enough
            x = torch.from_numpy(normalize_seismic(x_raw, spec).astype(np.float32)).to(device)
            outs.append(denormalize_velocity(model(x).float().cpu().numpy(), spec))
    if not outs:
        raise DataError("no input samples")
    return np.concatenate(outs).astype(np.float32)


def _npy_chunks(path: Path, want: tuple[int, int, int]) -> Iterator[tuple[np.ndarray, str]]:
    arr = open_npy(path)
    if tuple(arr.shape) == want:
        arr = arr[None]
    yield arr, str(path)


def _input_chunks(source: str | Path | np.ndarray, model: InversionNet, spec: DatasetSpec,
                  log: Callable, shot_key: str) -> Iterator[tuple[np.ndarray, str]]:
    want = _expected_shape(model)
    if isinstance(source, np.ndarray):
        yield (source[None] if tuple(source.shape) == want else source), "input array"
        return
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".npy":
        yield from _npy_chunks(path, want)
    elif suffix in (".sgy", ".segy"):
        from .segy import read_segy_for_model

        dt_s = float((spec.extra.get("acquisition") or {}).get("dt_s", 0.001))
        data, message = read_segy_for_model(path, n_shots=want[0], nt=want[1],
                                            n_receivers=want[2], dt_s=dt_s, shot_key=shot_key)
        log(message)
        yield data[None], str(path)
    elif suffix in (".txt", ".lst", ".split") or not suffix:
        for entry in read_split(path):
            yield from _npy_chunks(entry.data, want)
    else:
        raise DataError(f"{path}: unknown input type; give a .npy, a split file or a .sgy/.segy")


def predict(checkpoint: str | Path, source: str | Path | np.ndarray, out: str | Path | None = None,
            *, dataset: str | Path | DatasetSpec | None = None, batch_size: int = 64,
            device: str = "auto", log: Callable[[str], None] = print,
            shot_key: str = "field_record") -> np.ndarray:
    """Predict velocity maps in m/s for raw seismic input.

    Args:
        checkpoint: velocitygan or OpenFWI-reference checkpoint.
        source: ``.npy`` file (one sample or a batch), split file, ``.sgy``/``.segy`` file or
            array, raw amplitudes.
        out: where to write the ``(N, 1, 70, 70)`` float32 m/s array (atomic); None: don't.
        dataset: normalisation (name, card, TOML) when the checkpoint does not carry one, or to
            override its amplitude bounds (its velocity range must be the model's).
        batch_size: samples per forward pass.
        device: "auto", "cpu" or "cuda".
        log: receives one-line notes (resampling, warnings).
        shot_key: SEG-Y input: the trace header that groups traces into shots
            (``field_record`` or ``source_x``).

    Returns:
        Velocities in m/s, ``(N, 1, 70, 70)`` float32.
    """
    if out is not None:
        check_output_file(out, "--out")
    loaded = load_model(checkpoint, device=device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InputRangeWarning)
        spec = resolve_spec(loaded, dataset)
    for w in caught:
        log(f"warning: {w.message}")
    chunks = _input_chunks(source, loaded.model, spec, log, shot_key)
    velocity_mps = predict_batches(loaded.model, chunks, spec, batch_size=batch_size,
                                   warn=lambda m: log(f"warning: {m}"))
    if out is not None:
        save_npy(out, velocity_mps)
    return velocity_mps
