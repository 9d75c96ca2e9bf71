"""Model registry, layer tables, weights and preprocessing.

The layer tables and their grammar (:mod:`featurekit.models.layers`) need no
torch; the registry and weights do, and are imported on first use.
"""

from featurekit.models.layers import Layer, LayerTable, split_spec

_REGISTRY = ("SPECS", "ModelSpec", "build", "get_spec", "layer_table", "list_models", "resolve_spec")

__all__ = ["Layer", "LayerTable", "split_spec", *_REGISTRY]


def __getattr__(name):
    if name in _REGISTRY:
        from featurekit.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'featurekit.models' has no attribute {name!r}")
