"""The model registry: which torchvision models featurekit knows and how.

Seed models carry a canonical (Keras-compatible) layer table; any other
torchvision classification model is accepted by name and gets a generic
table: the top-level modules, with ``nn.Sequential`` containers opened one
level (``features.0 ... features.18`` for MobileNet-V2), kept when they run in
``forward`` and output an ``(N, C, H, W)`` map. Tables are data, computed by
one shape-inference pass on the ``meta`` device (no memory, no weights).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import torch
import torchvision
from torch import nn

from featurekit.errors import LayerError
from featurekit.models import inception, resnet, vgg
from featurekit.models.layers import INPUT, Layer, LayerTable, split_spec

NameRule = Callable[[nn.Module], "list[tuple[str, str]]"]


@dataclass(frozen=True)
class ModelSpec:
    """How featurekit treats one torchvision model.

    Attributes
    ----------
    name : str
        torchvision builder name (``torchvision.models.get_model``).
    names : callable or None
        ``model -> [(layer name, module path)]`` in execution order; ``None``
        for the generic table.
    default_size : int
        Input size when neither the weights nor ``--size`` give one.
    random_init_kwargs : dict
        Builder arguments used with ``weights=None``.
    """

    name: str
    names: NameRule | None = None
    default_size: int = 224
    random_init_kwargs: dict = field(default_factory=dict)


_SEEDS = [
    ModelSpec("vgg16", vgg.keras_names),
    ModelSpec("vgg19", vgg.keras_names),
    ModelSpec("vgg16_bn", vgg.keras_names),
    ModelSpec("vgg19_bn", vgg.keras_names),
    ModelSpec("resnet18", resnet.keras_names),
    ModelSpec("resnet34", resnet.keras_names),
    ModelSpec("resnet50", resnet.keras_names),
    ModelSpec("resnet101", resnet.keras_names),
    ModelSpec("inception_v3", inception.keras_names, default_size=299,
              random_init_kwargs={"init_weights": True, "aux_logits": True}),
    ModelSpec("mobilenet_v2"),
]
SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in _SEEDS}


def list_models() -> list[str]:
    """All torchvision classification models featurekit can load by name."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def get_spec(name: str) -> ModelSpec:
    """The spec of a model by name; unknown names list the valid ones."""
    key = name.strip().lower()
    if key in SPECS:
        return SPECS[key]
    if key in list_models():
        return ModelSpec(key, random_init_kwargs=_random_init_kwargs(key))
    raise LayerError(
        f"unknown model {name!r}; featurekit knows {', '.join(SPECS)} with canonical layer names, "
        f"and any torchvision classification model: {', '.join(list_models())}"
    )


def _random_init_kwargs(name: str) -> dict:
    # GoogLeNet-style builders warn unless init_weights is explicit.
    return {"init_weights": True} if name in {"googlenet"} else {}


def build(name: str, weights=None, **kwargs) -> nn.Module:
    """Build a torchvision model (``weights`` is a torchvision weights enum or None)."""
    spec = get_spec(name)
    if weights is None:
        kwargs = {**spec.random_init_kwargs, **kwargs}
    return torchvision.models.get_model(spec.name, weights=weights, **kwargs)


def generic_names(model: nn.Module) -> list[tuple[str, str]]:
    """Candidate layers of an arbitrary model: top-level children, Sequentials opened."""
    names = []
    for child_name, child in model.named_children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(child) > 0:
            names += [(f"{child_name}.{k}", f"{child_name}.{k}") for k, _ in child.named_children()]
        else:
            names.append((child_name, child_name))
    return names


def trace_shapes(model: nn.Module, modules: list[str] | None, size: int, channels: int = 3) -> dict[str, tuple | None]:
    """Output shapes (without batch) of modules in one eval-mode forward, in the order they finish.

    ``modules=None`` traces every submodule. Runs on the ``meta`` device when
    the model is there (no compute), else on a single zero image; the model's
    training flag is restored. Modules that do not run in eval-mode
    ``forward`` (e.g. Inception's auxiliary head) are absent; a module whose
    output is not a tensor maps to ``None``. A module run twice keeps its first call.
    """
    seen: dict[str, tuple | None] = {}
    handles = []
    lookup = dict(model.named_modules())
    for path in (modules if modules is not None else [p for p in lookup if p]):
        def hook(_m, _inp, out, path=path):
            if path not in seen:
                seen[path] = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else None
        handles.append(lookup[path].register_forward_hook(hook))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, size, size, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return seen


@functools.lru_cache(maxsize=64)
def layer_table(name: str, size: int | None = None) -> LayerTable:
    """The layer table of a model at an input size (default: the model's own)."""
    spec = get_spec(name)
    size = int(size or spec.default_size)
    with torch.device("meta"):
        model = build(spec.name, weights=None)
    return table_for_model(model, spec, size)


def table_for_model(model: nn.Module, spec: ModelSpec, size: int, channels: int = 3) -> LayerTable:
    """Layer table of an already-built model (also used for fine-tuned variants)."""
    rule = spec.names or generic_names
    candidates = rule(model)
    try:
        shapes = trace_shapes(model, [module for _, module in candidates], size, channels)
    except RuntimeError as exc:
        raise LayerError(f"{spec.name} cannot run at input size {size}: {exc}") from exc
    layers = [Layer(0, INPUT, "", (channels, size, size))]
    for layer_name, module in candidates:
        shape = shapes.get(module)
        if shape is None or len(shape) != 3:
            continue  # not run in eval forward, or not a (C, H, W) map: head modules
        layers.append(Layer(len(layers), layer_name, module, shape))
    return LayerTable(spec.name, layers, size)


def resolve_spec(spec: str, size: int | None = None) -> tuple[str, list[Layer], LayerTable]:
    """Resolve ``"vgg16:8-17"`` into (model name, layers, table)."""
    model, selector = split_spec(spec)
    table = layer_table(get_spec(model).name, size)
    return table.model, table.select(selector), table


def head_prefixes(model: nn.Module, table: LayerTable) -> list[str]:
    """Top-level children that no table layer lies in: the classifier head(s)."""
    used = {layer.module.split(".")[0] for layer in table if layer.module}
    return [name for name, _ in model.named_children() if name not in used]


@functools.lru_cache(maxsize=64)
def head_modules(name: str) -> tuple[str, ...]:
    """Top-level modules of a model that hold its classifier head(s) (generic rule)."""
    spec = get_spec(name)
    with torch.device("meta"):
        model = build(spec.name, weights=None)
    generic = table_for_model(model, ModelSpec(spec.name), spec.default_size)
    return tuple(head_prefixes(model, generic))
