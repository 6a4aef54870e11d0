"""OpenFWI data layer: dataset registry, split files, normalisation, lazy dataset, checks."""

from .check import DatasetSummary, check_split
from .dataset import OpenFWIDataset, check_file_pair
from .npyfile import npy_header, open_npy
from .registry import OPENFWI_DATASETS, DatasetSpec, get_dataset, load_dataset_card, load_toml
from .splits import SplitEntry, read_split, write_split
from .transforms import (
    denormalize_seismic,
    denormalize_velocity,
    inverse_log_transform,
    normalize_seismic,
    normalize_velocity,
)

__all__ = ["OPENFWI_DATASETS", "DatasetSpec", "DatasetSummary", "OpenFWIDataset", "SplitEntry",
           "check_file_pair", "check_split", "denormalize_seismic", "denormalize_velocity",
           "get_dataset", "inverse_log_transform", "load_dataset_card", "load_toml",
           "normalize_seismic", "normalize_velocity", "npy_header", "open_npy",
           "read_split", "write_split"]
