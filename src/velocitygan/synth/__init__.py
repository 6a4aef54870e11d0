"""Synthetic OpenFWI-style data: velocity-map families, dataset writer, patches of large models."""

from .families import (
    FAMILIES,
    Family,
    LayeredParams,
    StyleParams,
    family_params,
    get_family,
    make_velocity_maps,
)
from .generate import FamilySource, MapSource, generate_dataset, shard_layout, write_dataset

__all__ = [
    "FAMILIES",
    "Family",
    "FamilySource",
    "LayeredParams",
    "MapSource",
    "StyleParams",
    "family_params",
    "generate_dataset",
    "get_family",
    "make_velocity_maps",
    "shard_layout",
    "write_dataset",
]
