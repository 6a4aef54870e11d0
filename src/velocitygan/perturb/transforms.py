"""Seeded perturbation callables for the dataset hooks: evaluation and training augmentation."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.registry import DatasetSpec
from ..data.transforms import denormalize_seismic, normalize_seismic
from ..errors import ConfigError
from .ops import _count, add_noise_snr, drop_shots, drop_traces, flip_lr, time_shift

__all__ = ["RawPerturbation", "TrainAugmentation"]

# Each perturbation draws from its own stream, so switching one on never changes another's draw.
_NOISE, _TRACES, _SHOTS, _FLIP = 1, 2, 3, 4


def _stream(seed: int, key: int, kind: int, epoch: int | None = None) -> np.random.Generator:
    words = [int(seed), int(key), kind] if epoch is None else [int(seed), epoch, int(key), kind]
    return np.random.default_rng(words)


@dataclass(frozen=True)
class RawPerturbation:
    """A seeded ``(x_raw, index) -> x_raw`` perturbation of one raw seismic sample.

    Applied in this order: time shift, noise (SNR measured on the shifted clean signal), missing
    shots, missing traces (missing data are exact zeros, as dead channels are stored). The draw
    depends only on ``(seed, index)``: the same sample is perturbed the same way in every run,
    whatever the batch size, worker count or order. Picklable (DataLoader workers).

    Attributes:
        noise_snr_db: SNR of added Gaussian noise in dB, per shot gather; None for no noise.
        missing_trace_fraction: fraction of receivers zeroed (same receivers in all shots).
        missing_shots: number of whole shots zeroed.
        time_shift_samples: time shift in samples (1 ms each for OpenFWI), positive = later.
        seed: non-negative base seed.
    """

    noise_snr_db: float | None = None
    missing_trace_fraction: float = 0.0
    missing_shots: int = 0
    time_shift_samples: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.noise_snr_db is not None and not math.isfinite(float(self.noise_snr_db)):
            raise ConfigError(f"noise SNR {self.noise_snr_db} dB must be a finite number")
        _count(self.missing_trace_fraction, 1)
        if int(self.missing_shots) != self.missing_shots or self.missing_shots < 0:
            raise ConfigError(f"missing shots {self.missing_shots} must be an integer >= 0")
        if int(self.time_shift_samples) != self.time_shift_samples:
            raise ConfigError(f"time shift {self.time_shift_samples} must be whole samples")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ConfigError(f"perturbation seed {self.seed} must be an integer >= 0")

    def check_shape(self, shots: int, nt: int, receivers: int) -> None:
        """Raise :class:`ConfigError` if the perturbation cannot apply to samples of this shape
        (more missing shots than shots, a shift of the whole record)."""
        if self.missing_shots > shots:
            raise ConfigError(f"missing shots {self.missing_shots} must be an integer in "
                              f"[0, {shots}] (the data have {shots} shots)")
        if abs(self.time_shift_samples) >= nt:
            raise ConfigError(f"time shift {self.time_shift_samples} must be shorter than the "
                              f"record ({nt} samples)")

    @property
    def is_identity(self) -> bool:
        """True when nothing is perturbed."""
        return (self.noise_snr_db is None and self.missing_trace_fraction == 0
                and self.missing_shots == 0 and self.time_shift_samples == 0)

    @property
    def label(self) -> str:
        """Short human-readable description, e.g. ``"noise 10 dB SNR"`` or ``"clean"``."""
        parts = []
        if self.noise_snr_db is not None:
            parts.append(f"noise {self.noise_snr_db:g} dB SNR")
        if self.missing_trace_fraction:
            parts.append(f"{100 * self.missing_trace_fraction:.3g}% traces missing")
        if self.missing_shots:
            parts.append(f"{self.missing_shots} shot{'s' * (self.missing_shots > 1)} missing")
        if self.time_shift_samples:
            parts.append(f"time shift {self.time_shift_samples:+d} samples")
        return ", ".join(parts) or "clean"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the settings (for metrics.json)."""
        return {"noise_snr_db": self.noise_snr_db,
                "missing_trace_fraction": float(self.missing_trace_fraction),
                "missing_shots": int(self.missing_shots),
                "time_shift_samples": int(self.time_shift_samples), "seed": int(self.seed)}

    def __call__(self, x_raw: np.ndarray, index: int) -> np.ndarray:
        """Perturb raw sample ``x_raw`` (``(5, nt, nr)``) whose dataset index is ``index``."""
        out = time_shift(x_raw, self.time_shift_samples) if self.time_shift_samples else x_raw
        if self.noise_snr_db is not None:
            out = add_noise_snr(out, self.noise_snr_db, _stream(self.seed, index, _NOISE))
        if self.missing_shots:
            out = drop_shots(out, self.missing_shots, _stream(self.seed, index, _SHOTS))
        if self.missing_trace_fraction:
            out = drop_traces(out, self.missing_trace_fraction, _stream(self.seed, index, _TRACES))
        return out.copy() if out is x_raw else out


@dataclass
class TrainAugmentation:
    """Random training-time augmentation for the dataset's ``transform=(x, y) -> (x, y)`` hook.

    It acts on the dataset's NORMALISED tensors but stays physical: noise and trace dropout are
    applied to the de-normalised raw amplitudes (the normalisation is invertible) and the result
    is normalised again, so an SNR means the same as in :func:`add_noise_snr` and a dropped trace
    is a raw zero. The flip is a permutation and commutes with the element-wise normalisation.

    Reproducible under resume: every draw is seeded from ``(seed, epoch, key)`` where ``key`` is
    a CRC32 of the sample's label bytes (the ``transform`` hook receives no index; the label
    identifies the sample just as well and does not depend on batch order or workers). Call
    :meth:`set_epoch` before each epoch's DataLoader iterator is created; with
    ``persistent_workers=True`` workers would keep the old epoch, so do not combine the two.

    Attributes:
        spec: normalisation bounds of the training dataset.
        noise_snr_db: SNR in dB of the noise a noisy sample gets; None: no noise.
        trace_dropout: fraction of receivers zeroed in a sample that gets dropout (0: off).
        flip: mirror half of the samples left-right (:func:`flip_lr`).
        prob: probability that a sample gets noise, and (independently) trace dropout.
        flip_recentre: passed to :func:`flip_lr` as ``recentre`` (default True: the flipped
            centre shot is then 3-5 % off in relative L2, not 58 %; the other shots are exact).
        seed: base seed.
        epoch: current epoch (set by :meth:`set_epoch`).
    """

    spec: DatasetSpec
    noise_snr_db: float | None = None
    trace_dropout: float = 0.0
    flip: bool = False
    prob: float = 0.5
    flip_recentre: bool = True
    seed: int = 0
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws the next samples use."""
        self.epoch = int(epoch)

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple:
        """Augment one normalised CPU pair ``x (5, nt, nr)``, ``y (1, nz, nx)``."""
        key = zlib.crc32((y if y is not None else x).detach().cpu().contiguous().numpy().tobytes())
        noise_rng = _stream(self.seed, key, _NOISE, self.epoch)
        trace_rng = _stream(self.seed, key, _TRACES, self.epoch)
        noise = self.noise_snr_db is not None and noise_rng.random() < self.prob
        drop = self.trace_dropout > 0 and trace_rng.random() < self.prob
        if noise or drop:
            raw = denormalize_seismic(x.numpy(), self.spec)
            if noise:
                raw = add_noise_snr(raw, self.noise_snr_db, noise_rng)
            if drop:
                raw = drop_traces(raw, self.trace_dropout, trace_rng)
            x = torch.from_numpy(normalize_seismic(raw, self.spec).astype(np.float32))
        if self.flip and _stream(self.seed, key, _FLIP, self.epoch).random() < 0.5:
            xf, yf = flip_lr(x.numpy(), None if y is None else y.numpy(),
                             recentre=self.flip_recentre)
            x, y = torch.from_numpy(xf), None if yf is None else torch.from_numpy(yf)
        return x, y
