"""torchvision models: names, building, layer tables, heads (the ``torchvision`` source).

A model is named by its torchvision builder name (``vgg16``, ``resnet50``,
``vit_b_16``). Seed models carry a canonical layer table (Keras-compatible
names for VGG/ResNet/Inception; ``blocks.N``/``layers.N`` + ``norm`` for
ViT/Swin, as timm names them); any other torchvision classification model is
accepted by name and gets a generic table: the top-level modules, with
``nn.Sequential`` containers opened one level (``features.0 ... features.18``
for MobileNet-V2), kept when they run in ``forward`` and output an
``(N, C, H, W)`` map.

Weights: :mod:`featurekit.models.weights`. The functions a source provides
are listed in :mod:`featurekit.models.sources`.
"""

from __future__ import annotations

import functools

import torch
import torchvision
from torch import nn

from featurekit.errors import LayerError
from featurekit.models import inception, resnet, transformers, vgg
from featurekit.models.building import last_linear, trace_shapes
from featurekit.models.layers import INPUT, Layer, LayerTable
from featurekit.models.modelspec import ModelSpec

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
    *(ModelSpec(name, transformers.vit_names) for name in ("vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32",
                                                           "vit_h_14")),
    *(ModelSpec(name, transformers.swin_names) for name in ("swin_t", "swin_s", "swin_b", "swin_v2_t",
                                                            "swin_v2_s", "swin_v2_b")),
]
SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in _SEEDS}


def list_models() -> list[str]:
    """All torchvision classification models featurekit can load by name."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def model_spec(key: str) -> ModelSpec | None:
    """The spec of a torchvision model name (lower case); None for a name torchvision does not have."""
    if key in SPECS:
        return SPECS[key]
    if key in list_models():
        return ModelSpec(key, random_init_kwargs=_random_init_kwargs(key))
    return None


def _spec(name: str) -> ModelSpec:
    """The spec of a torchvision model this source was asked to build (the registry checked the name)."""
    spec = model_spec(str(name).strip().lower())
    if spec is None:
        raise LayerError(f"unknown torchvision model {name!r}; featurekit knows {known()}")
    return spec


def known() -> str:
    """The names this source accepts, for an unknown-model message."""
    return (f"{', '.join(SPECS)} with canonical layer names, "
            f"any torchvision classification model: {', '.join(list_models())}")


def _random_init_kwargs(name: str) -> dict:
    # GoogLeNet-style builders warn unless init_weights is explicit.
    return {"init_weights": True} if name in {"googlenet"} else {}


def build(name: str, weights=None, *, size: int | None = None, **kwargs) -> nn.Module:
    """Build a torchvision model (``weights``: a torchvision weights enum or None).

    ``size`` is accepted for the common interface of sources and not used: a
    torchvision model is built for its own input size (:func:`table_for_model`
    reports a size it cannot run at).
    """
    spec = _spec(name)
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


def layer_table(name: str, size: int) -> LayerTable:
    """The layer table of a torchvision model at an input size (traced on the ``meta`` device)."""
    spec = _spec(name)
    with torch.device("meta"):
        model = build(spec.name, weights=None)
    return table_for_model(model, spec, size)


def table_for_model(model: nn.Module, spec: ModelSpec, size: int, channels: int = 3) -> LayerTable:
    """Layer table of an already-built model (also used for fine-tuned variants)."""
    rule = spec.names or generic_names
    candidates = [(c[0], c[1], c[2] if len(c) > 2 else {}) for c in rule(model)]
    try:
        shapes = trace_shapes(model, [module for _, module, _ in candidates], size, channels)
    except (RuntimeError, AssertionError, ValueError) as exc:  # torchvision's ViT asserts its image size
        raise LayerError(f"{spec.name} cannot run at input size {size}: {exc}") from exc
    layers = [Layer(0, INPUT, "", (channels, size, size))]
    for layer_name, module, form in candidates:
        shape = shapes.get(module)
        if shape is None or len(shape) != (2 if form.get("layout") == "tokens" else 3):
            continue  # not run in eval forward, or not a map / token sequence: head modules
        layers.append(Layer(len(layers), layer_name, module, shape, **form))
    return LayerTable(spec.name, layers, size)


def head_paths(name: str) -> tuple[str, ...]:
    """Module path of a torchvision model's classifier: its last ``nn.Linear``."""
    with torch.device("meta"):
        model = build(name, weights=None)
    return (last_linear(model)[0],)


def head_prefixes(model: nn.Module, table: LayerTable) -> list[str]:
    """Top-level children that no table layer lies in: the classifier head(s)."""
    used = {layer.module.split(".")[0] for layer in table if layer.module}
    return [name for name, _ in model.named_children() if name not in used]


@functools.lru_cache(maxsize=64)
def head_modules(name: str) -> tuple[str, ...]:
    """Top-level modules of a torchvision model that hold its classifier head(s) (generic rule)."""
    spec = _spec(name)
    with torch.device("meta"):
        model = build(spec.name, weights=None)
    generic = table_for_model(model, ModelSpec(spec.name), spec.default_size)
    return tuple(head_prefixes(model, generic))
