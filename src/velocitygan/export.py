"""ONNX export of the generator (optional extra: ``onnx``, ``onnxruntime``), verified on export.

By default the exported graph includes the normalisation, so it maps raw seismic amplitudes
``(N, shots, nt, receivers)`` straight to velocities in m/s ``(N, 1, 70, 70)``: a deployment
needs no Python code of ours. ``physical_units=False`` exports the bare network (normalised
input and output in [-1, 1]). The dataset's bounds and the units are stored as ONNX metadata.

Every export is run in onnxruntime on a test batch and compared with PyTorch; a difference
above ``1e-4`` on the normalised scale (0.15 m/s for 1500-4500 m/s) is an error.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import __version__
from .data import DatasetSpec, normalize_seismic
from .data.transforms import _log_bounds
from .errors import ConfigError, VelocityGANError
from .io import atomic_path, check_output_file
from .predict import load_model, resolve_spec

__all__ = ["PhysicalUnitsModel", "export_module", "export_onnx", "onnx_session", "TOLERANCE"]

TOLERANCE = 1e-4  # max |onnxruntime - PyTorch| on the normalised velocity scale


class PhysicalUnitsModel(nn.Module):
    """Generator wrapped with the seismic normalisation and velocity de-normalisation.

    Args:
        generator: the InversionNet (eval mode).
        spec: the normalisation bounds it was trained with.
    """

    def __init__(self, generator: nn.Module, spec: DatasetSpec) -> None:
        super().__init__()
        self.generator = generator
        lo, hi = _log_bounds(spec)
        self.log_lo, self.log_span = lo, hi - lo
        self.v_min, self.v_span = spec.label_min, spec.label_max - spec.label_min

    def forward(self, seismic_raw: torch.Tensor) -> torch.Tensor:
        """Raw amplitudes -> velocity in m/s."""
        logged = torch.sign(seismic_raw) * torch.log(1.0 + torch.abs(seismic_raw))
        x = (logged - self.log_lo) / self.log_span * 2.0 - 1.0
        y = self.generator(x)
        return (y + 1.0) / 2.0 * self.v_span + self.v_min


def _onnx_modules():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise ConfigError("ONNX export needs the optional packages onnx and onnxruntime: "
                          "pip install 'velocitygan[onnx]'") from None
    return onnx, onnxruntime


def onnx_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU inference session for ``path`` (``threads``: intra-op threads)."""
    _, ort = _onnx_modules()
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def export_module(net: nn.Module, example: torch.Tensor, path: str | Path, *, opset: int = 17,
                  metadata: dict[str, Any] | None = None) -> None:
    """Trace ``net`` (eval mode) on ``example`` into an ONNX file with a dynamic batch axis.

    Input is named ``seismic``, output ``velocity``; ``metadata`` goes into the model's
    metadata properties. Not atomic: write to a temporary path (see :func:`export_onnx`).
    """
    onnx, _ = _onnx_modules()
    # checked first: the exporter dumps its whole graph to stdout before it raises
    newest = getattr(getattr(torch.onnx, "_constants", None), "ONNX_MAX_OPSET", opset)
    if opset > newest:
        raise ConfigError(f"--opset {opset}: this torch exports opsets up to {newest}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer / deprecation chatter, not the user's concern
        torch.onnx.export(
            net, (example,), str(path), dynamo=False, opset_version=opset,
            input_names=["seismic"], output_names=["velocity"],
            dynamic_axes={"seismic": {0: "batch"}, "velocity": {0: "batch"}},
        )  # fmt: skip
    model_proto = onnx.load(str(path))
    for k, v in (metadata or {}).items():
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = k, str(v)
    onnx.checker.check_model(model_proto)
    onnx.save(model_proto, str(path))


def export_onnx(checkpoint: str | Path, onnx_path: str | Path, *,
                dataset: str | Path | DatasetSpec | None = None, physical_units: bool = True,
                opset: int = 17, verify_batch: int = 2) -> dict[str, Any]:
    """Export a checkpoint's generator to ONNX (dynamic batch) and verify it in onnxruntime.

    Args:
        checkpoint: velocitygan or OpenFWI-reference checkpoint.
        onnx_path: output file (written atomically).
        dataset: normalisation when the checkpoint carries none (or to override its amplitude
            bounds).
        physical_units: include normalisation: raw amplitudes in, m/s out.
        opset: ONNX opset version.
        verify_batch: batch size of the verification run.

    Returns:
        ``{"path", "units", "max_abs_diff", "diff_units", "max_abs_diff_normalized", "opset"}``.

    Raises:
        VelocityGANError: onnxruntime and PyTorch disagree by more than :data:`TOLERANCE`.
    """
    _onnx_modules()
    check_output_file(onnx_path, "--onnx")
    loaded = load_model(checkpoint, device="cpu")
    spec = resolve_spec(loaded, dataset)
    gen = loaded.model.eval()
    net = PhysicalUnitsModel(gen, spec).eval() if physical_units else gen
    c = gen.config
    # a reproducible test batch spanning the training amplitude range
    raw = np.random.default_rng(0).standard_t(
        3, size=(verify_batch, c["in_channels"], c["nt"], c["n_receivers"])) * 2.0
    raw = np.clip(raw, spec.data_min, spec.data_max).astype(np.float32)
    x = torch.from_numpy(raw if physical_units else normalize_seismic(raw, spec).astype(np.float32))
    onnx_path = Path(onnx_path)
    units = "raw amplitude -> m/s" if physical_units else "normalised -> normalised"
    meta = {"velocitygan_version": __version__, "units": units, "dataset": spec.name,
            "data_min": spec.data_min, "data_max": spec.data_max,
            "label_min_mps": spec.label_min, "label_max_mps": spec.label_max,
            "input": "seismic (N, shots, time samples, receivers)",
            "output": "velocity (N, 1, 70, 70)"}  # fmt: skip
    with atomic_path(onnx_path) as tmp:
        export_module(net, x, tmp, opset=opset, metadata=meta)
        with torch.no_grad():
            want = net(x).numpy()
        if not np.isfinite(want).all():
            raise VelocityGANError(f"{checkpoint}: the network outputs NaN/Inf; its weights are "
                                   "broken, nothing written")
        got = onnx_session(tmp).run(None, {"seismic": x.numpy()})[0]
        diff = float(np.abs(got - want).max())
        scale = (spec.label_max - spec.label_min) / 2 if physical_units else 1.0
        if diff / scale > TOLERANCE:  # raised inside: the temporary file goes, an older file stays
            raise VelocityGANError(
                f"{onnx_path}: onnxruntime differs from PyTorch by {diff / scale:.2e} "
                f"(normalised) > {TOLERANCE:g}; nothing written (try another --opset)"
            )
    return {"path": str(onnx_path), "units": units, "max_abs_diff": diff,
            "diff_units": "m/s" if physical_units else "(normalised)",
            "max_abs_diff_normalized": diff / scale, "opset": opset}  # fmt: skip
