"""What featurekit knows of one model: its :class:`ModelSpec` and how model names name their source.

A base module: it imports nothing else of :mod:`featurekit.models`, so every
source (:mod:`featurekit.models.sources`) and the registry can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # for the annotation only: this module needs no torch
    from torch import nn

# model -> [(layer name, module path)] or [(layer name, module path, layout keywords of Layer)]
NameRule = Callable[["nn.Module"], "list[tuple]"]
TIMM_PREFIX = "timm-"


@dataclass(frozen=True)
class ModelSpec:
    """How featurekit treats one model.

    Attributes
    ----------
    name : str
        The model's featurekit name (a torchvision builder name, or ``timm-`` + timm's name).
    names : callable or None
        ``model -> [(layer name, module path)]`` in execution order; ``None``
        for the source's own (generic) table.
    default_size : int
        Input size when neither the weights nor ``--size`` give one.
    random_init_kwargs : dict
        Builder arguments used with ``weights=None``.
    source : str
        Which library builds the model: a key of :data:`featurekit.models.sources.SOURCES`.
    """

    name: str
    names: NameRule | None = None
    default_size: int = 224
    random_init_kwargs: dict = field(default_factory=dict)
    source: str = "torchvision"


def is_timm(name: str) -> bool:
    """Whether a model name is a timm model's (``timm-...``)."""
    return str(name).strip().lower().startswith(TIMM_PREFIX)
