"""Model registry, layer tables, weights and preprocessing."""

from featurekit.models.layers import Layer, LayerTable, split_spec
from featurekit.models.registry import (
    SPECS,
    ModelSpec,
    build,
    get_spec,
    layer_table,
    list_models,
    resolve_spec,
)

__all__ = [
    "Layer",
    "LayerTable",
    "ModelSpec",
    "SPECS",
    "build",
    "get_spec",
    "layer_table",
    "list_models",
    "resolve_spec",
    "split_spec",
]
