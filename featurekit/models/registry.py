"""The model registry: which models featurekit knows and how, whatever library builds them.

Two sources (:data:`featurekit.models.sources.SOURCES`):

* **torchvision**, by its builder name (``vgg16``, ``resnet50``, ``vit_b_16``):
  see :mod:`featurekit.models.torchvision_models`.
* **timm**, as ``timm-`` + timm's own model name, optionally with its
  pretrained tag (``timm-convnext_atto``,
  ``timm-vit_small_patch16_224.augreg_in21k``): see
  :mod:`featurekit.models.timm_models` (the prefix keeps the names apart --
  ``convnext_tiny`` exists in both -- and contains no ``:``, ``/`` or ``+``,
  the separators of layer specs, cache keys and fusions).

Every function here dispatches through that table on ``ModelSpec.source``.
Tables are data, computed by one shape-inference pass on the ``meta`` device
(no memory, no weights).
"""

from __future__ import annotations

import functools

from featurekit.errors import LayerError
from featurekit.models.layers import Layer, LayerTable
from featurekit.models.modelspec import ModelSpec
from featurekit.models.sources import SOURCES, models_of
from featurekit.specs import split_layer_spec


def get_spec(name: str) -> ModelSpec:
    """The spec of a model by name; unknown names list the valid ones."""
    key = name.strip().lower()
    for source in SOURCES:
        spec = models_of(source).model_spec(key)
        if spec is not None:
            return spec
    raise LayerError(f"unknown model {name!r}; featurekit knows "
                     + "; and ".join(models_of(source).known() for source in SOURCES))


def build(name: str, weights=None, **kwargs):
    """Build a model of the registry (``weights``: the source's own weights object, or None).

    Keyword arguments go to the source's ``build`` (``size``: the input size a
    fixed-size model, e.g. a timm ViT, is built for).
    """
    spec = get_spec(name)
    return models_of(spec.source).build(spec.name, weights, **kwargs)


@functools.lru_cache(maxsize=64)
def layer_table(name: str, size: int | None = None) -> LayerTable:
    """The layer table of a model at an input size (default: the model's own)."""
    spec = get_spec(name)
    return models_of(spec.source).layer_table(spec.name, int(size or spec.default_size))


def table_for_model(model, spec: ModelSpec, size: int, channels: int = 3) -> LayerTable:
    """Layer table of an already-built model (also used for fine-tuned variants)."""
    return models_of(spec.source).table_for_model(model, spec, size, channels)


def head_paths(name: str) -> tuple[str, ...]:
    """Module paths of a model's classifier(s); the first is the head fine-tuning replaces."""
    spec = get_spec(name)
    return models_of(spec.source).head_paths(spec.name)


def resolve_spec(spec: str, size: int | None = None) -> tuple[str, list[Layer], LayerTable]:
    """Resolve ``"vgg16:8-17"`` into (model name, layers, table)."""
    model, selector = split_layer_spec(spec)
    table = layer_table(get_spec(model).name, size)
    return table.model, table.select(selector), table
