"""Perturbations of raw seismic data: noise, missing traces and shots, time shift, flip.

Every function is pure (returns a new array, never modifies its input) and works on numpy
arrays and torch tensors alike. Seismic arrays hold raw amplitudes (pressure units, before
normalisation) with the last three axes ``(shot, time sample, receiver)``: one sample
``(5, 1000, 70)`` or a batch ``(N, 5, 1000, 70)``; random choices are drawn independently
for each sample of a batch.

Two ways to use them:

* evaluation: :func:`make_raw_transform` builds a ``(x_raw, index) -> x_raw`` callable for
  ``OpenFWIDataset(raw_transform=...)``, seeded per sample index so a perturbed test set is the
  same in every run;
* training: :func:`build_train_transform` builds a ``(x, y) -> (x, y)`` augmentation for the
  dataset's ``transform=`` hook (see :class:`TrainAugmentation` for how it stays physical and
  reproducible on normalised tensors).
"""

from .ops import (
    OPENFWI_SRC_X,
    add_noise_snr,
    drop_shots,
    drop_traces,
    flip_lr,
    flipped_source_columns,
    measure_snr_db,
    time_shift,
)
from .transforms import (
    RawPerturbation,
    TrainAugmentation,
    build_train_transform,
    make_raw_transform,
)

__all__ = [
    "OPENFWI_SRC_X",
    "add_noise_snr",
    "drop_traces",
    "drop_shots",
    "time_shift",
    "flip_lr",
    "flipped_source_columns",
    "measure_snr_db",
    "RawPerturbation",
    "make_raw_transform",
    "TrainAugmentation",
    "build_train_transform",
]
