"""Perturbations of raw seismic data: noise, missing traces and shots, time shift, flip.

Every function is pure (returns a new numpy array, never modifies its input). Seismic
arrays hold raw amplitudes (pressure units, before normalisation) with the last three axes
``(shot, time sample, receiver)``: one sample ``(5, 1000, 70)`` or a batch
``(N, 5, 1000, 70)``; random choices are drawn independently for each sample of a batch.

Two ways to use them:

* evaluation: :class:`RawPerturbation` is a ``(x_raw, index) -> x_raw`` callable for
  ``OpenFWIDataset(raw_transform=...)``, seeded per sample index so a perturbed test set is the
  same in every run;
* training: :class:`TrainAugmentation` is a ``(x, y) -> (x, y)`` augmentation for the
  dataset's ``transform=`` hook, physical and reproducible on normalised tensors.
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
from .transforms import RawPerturbation, TrainAugmentation

__all__ = ["OPENFWI_SRC_X", "add_noise_snr", "drop_traces", "drop_shots", "time_shift", "flip_lr",
           "flipped_source_columns", "measure_snr_db", "RawPerturbation", "TrainAugmentation"]
