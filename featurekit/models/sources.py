"""The model sources featurekit knows, as a table: the one place that names them.

Each source is a library that builds models, implemented by two modules:

``models``
    ``model_spec(key) -> ModelSpec | None`` (None: not a name of this source),
    ``known() -> str`` (its names, for an unknown-model message),
    ``build(name, weights=None, *, size=None, **kwargs)``,
    ``layer_table(name, size)``, ``table_for_model(model, spec, size, channels)``
    and ``head_paths(name)`` (module paths of the classifier(s), the first one
    the head that fine-tuning replaces).
``weights``
    ``resolve_weights(name, weights, *, size, mode, recorded)`` (``weights``
    a parsed :class:`~featurekit.specs.Weights`) -> a
    :class:`~featurekit.models.weights.ModelRef`.

The registry, architecture, memory and weights modules dispatch on
``ModelSpec.source`` through this table, and import a source's modules only
when a model name is looked up (timm is optional: its module imports timm on
first use). A base module: it imports nothing of :mod:`featurekit.models`, so
the sources may use every other module without an import circle.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Source:
    """The modules implementing one source (see the module docstring for their functions)."""

    models: str
    weights: str


#: source name (``ModelSpec.source``) -> its modules; a name is looked up in this order
SOURCES: dict[str, Source] = {
    "torchvision": Source("featurekit.models.torchvision_models", "featurekit.models.weights"),
    "timm": Source("featurekit.models.timm_models", "featurekit.models.timm_weights"),
}


def models_of(source: str) -> ModuleType:
    """The ``models`` module of a source."""
    return importlib.import_module(SOURCES[source].models)


def weights_of(source: str) -> ModuleType:
    """The ``weights`` module of a source."""
    return importlib.import_module(SOURCES[source].weights)
