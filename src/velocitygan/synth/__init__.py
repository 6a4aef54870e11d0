"""Synthetic OpenFWI-style data: velocity-map families, dataset writer, patches of large models."""

from .families import (
    FAMILIES,
    LayeredParams,
    StyleParams,
    family_name,
    family_params,
    make_velocity_maps,
)
from .generate import FamilySource, MapSource, generate_dataset, shard_layout, write_dataset

__all__ = ["FAMILIES", "FamilySource", "LayeredParams", "MapSource", "StyleParams", "family_name",
           "family_params", "generate_dataset", "make_velocity_maps", "shard_layout",
           "write_dataset"]
