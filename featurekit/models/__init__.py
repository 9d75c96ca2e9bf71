"""Model registry, layer tables, weights and preprocessing.

The layer tables and their grammar (:mod:`featurekit.models.layers`) need no
torch; the registry and weights do, and are imported on first use.
"""

import lazy_loader

from featurekit.models.layers import Layer, LayerTable

__all__ = ["Layer", "LayerTable"]

# the registry and weights need torch: imported on first use
__getattr__, _, _lazy_names = lazy_loader.attach(__name__, submod_attrs={
    "modelspec": ["ModelSpec"],
    "registry": ["build", "get_spec", "layer_table", "resolve_spec"],
    "torchvision_models": ["SPECS", "list_models"],
})
__all__ += _lazy_names
