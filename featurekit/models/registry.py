"""The model registry: which models featurekit knows and how.

Two sources:

* **torchvision**, by its builder name (``vgg16``, ``resnet50``, ``vit_b_16``).
  Seed models carry a canonical layer table (Keras-compatible names for
  VGG/ResNet/Inception; ``blocks.N``/``layers.N`` + ``norm`` for ViT/Swin,
  as timm names them); any other torchvision classification model is
  accepted by name and gets a generic table: the top-level modules, with
  ``nn.Sequential`` containers opened one level (``features.0 ...
  features.18`` for MobileNet-V2), kept when they run in ``forward`` and
  output an ``(N, C, H, W)`` map.
* **timm**, as ``timm-`` + timm's own model name, optionally with its
  pretrained tag (``timm-convnext_atto``,
  ``timm-vit_small_patch16_224.augreg_in21k``): see
  :mod:`featurekit.models.timm_models` (the prefix keeps the names apart --
  ``convnext_tiny`` exists in both -- and contains no ``:``, ``/`` or ``+``,
  the separators of layer specs, cache keys and fusions).

Tables are data, computed by one shape-inference pass on the ``meta`` device
(no memory, no weights).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import torch
import torchvision
from torch import nn

from featurekit.errors import LayerError
from featurekit.models import inception, resnet, transformers, vgg
from featurekit.models.layers import INPUT, Layer, LayerTable
from featurekit.specs import split_layer_spec

# model -> [(layer name, module path)] or [(layer name, module path, layout keywords of Layer)]
NameRule = Callable[[nn.Module], "list[tuple]"]
TIMM_PREFIX = "timm-"


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
    source : {"torchvision", "timm"}
        Which library builds the model.
    """

    name: str
    names: NameRule | None = None
    default_size: int = 224
    random_init_kwargs: dict = field(default_factory=dict)
    source: str = "torchvision"


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


def is_timm(name: str) -> bool:
    """Whether a model name is a timm model's (``timm-...``)."""
    return str(name).strip().lower().startswith(TIMM_PREFIX)


def get_spec(name: str) -> ModelSpec:
    """The spec of a model by name; unknown names list the valid ones."""
    key = name.strip().lower()
    if key in SPECS:
        return SPECS[key]
    if is_timm(key):
        from featurekit.models import timm_models

        return timm_models.timm_spec(key)
    if key in list_models():
        return ModelSpec(key, random_init_kwargs=_random_init_kwargs(key))
    raise LayerError(
        f"unknown model {name!r}; featurekit knows {', '.join(SPECS)} with canonical layer names, "
        f"any torchvision classification model: {', '.join(list_models())}; "
        f"and timm models as {TIMM_PREFIX}NAME (e.g. {TIMM_PREFIX}convnext_atto, "
        f"{TIMM_PREFIX}vit_small_patch16_224.augreg_in21k)"
    )


def _random_init_kwargs(name: str) -> dict:
    # GoogLeNet-style builders warn unless init_weights is explicit.
    return {"init_weights": True} if name in {"googlenet"} else {}


def build(name: str, weights=None, **kwargs) -> nn.Module:
    """Build a torchvision model (``weights`` is a torchvision weights enum or None).

    A timm model is built randomly initialised by timm (``weights`` must be
    None; keyword arguments go to :func:`featurekit.models.timm_models.create`).
    """
    spec = get_spec(name)
    if spec.source == "timm":
        from featurekit.models import timm_models

        if weights is not None:
            raise LayerError("timm weights are loaded by featurekit.models.timm_weights.resolve_model")
        return timm_models.create(spec.name, **kwargs)
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
    if spec.source == "timm":
        from featurekit.models import timm_models

        return timm_models.layer_table(spec.name, size)
    with torch.device("meta"):
        model = build(spec.name, weights=None)
    return table_for_model(model, spec, size)


def table_for_model(model: nn.Module, spec: ModelSpec, size: int, channels: int = 3) -> LayerTable:
    """Layer table of an already-built model (also used for fine-tuned variants)."""
    if spec.source == "timm":
        from featurekit.models import timm_models

        return timm_models.table_for_model(model, spec, size, channels)
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


def resolve_spec(spec: str, size: int | None = None) -> tuple[str, list[Layer], LayerTable]:
    """Resolve ``"vgg16:8-17"`` into (model name, layers, table)."""
    model, selector = split_layer_spec(spec)
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
