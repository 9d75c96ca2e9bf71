"""timm models (Wightman, *PyTorch Image Models*, 2019, doi:10.5281/zenodo.4414861): names, layer tables, preprocessing.

Names
-----
A timm model is named ``timm-`` + timm's own name: the architecture,
optionally followed by a pretrained tag (``timm-convnext_atto``,
``timm-vit_small_patch16_224.augreg_in21k``). The prefix keeps the two
sources apart (``convnext_tiny`` and ``efficientnet_b0`` exist in both) and
uses none of the separators of featurekit's tokens -- ``:`` (layer specs),
``/`` (cache keys ``<model>/<layer>``), ``+`` (fusions) -- so a name
round-trips through ``--layers``, cache keys, ``evaluate --features`` and
report labels unchanged. Names are lower case, as timm's are.

Layer tables
------------
From what timm declares: the modules of the model's ``feature_info`` -- the
points ``forward_intermediates`` returns (every ``blocks.N`` of a ViT, the
``stages.N`` of a ConvNeXt, the stride changes ``blocks.0, 1, 2, 4, 6`` of an
EfficientNet) -- then the final top-level module of ``forward_features``
when it adds a computation of its own (a ViT's or Swin's ``norm``, an
EfficientNet's ``bn2``; ConvNeXt's identity ``norm_pre`` adds nothing). Each
layer records its layout: ``(C, H, W)`` maps, channels-last ``(H, W, C)`` maps
(Swin, ``output_fmt == "NHWC"``) or ``(L, D)`` tokens with the model's
``num_prefix_tokens`` (class, distillation, register tokens) and whether a
class token leads them (``has_class_token``). Extraction hooks those modules
(:mod:`featurekit.extraction.activations`): one forward pass for all layers,
stopped after the deepest; the values equal ``forward_intermediates``'.

Weights: :mod:`featurekit.models.timm_weights`.

Preprocessing
-------------
From the tag's pretrained config (``timm.data.resolve_data_config``): input
size, mean, std, interpolation and ``crop_pct`` (resize the shorter side to
``floor(size / crop_pct)``, centre-crop ``size``). Models with a fixed input
size (ViT, Swin) are built for ``--size`` (``img_size``).
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import warnings

import torch
from torch import nn

from featurekit.errors import LayerError, WeightsError
from featurekit.models.building import skip_init
from featurekit.models.layers import INPUT, Layer, LayerTable
from featurekit.models.modelspec import TIMM_PREFIX, ModelSpec, is_timm
from featurekit.models.preprocessing import Preprocessing


def import_timm():
    try:
        import timm
    except ImportError:
        raise LayerError("timm models need the timm package: pip install 'featurekit[timm]'") from None
    return timm


def split_name(name: str) -> tuple[str, str | None]:
    """``"timm-vit_small_patch16_224.augreg_in21k"`` -> ``("vit_small_patch16_224", "augreg_in21k")``."""
    key = str(name).strip().lower()
    if not key.startswith(TIMM_PREFIX):
        raise LayerError(f"{name!r} is not a timm model name (they start with {TIMM_PREFIX!r})")
    arch, _, tag = key[len(TIMM_PREFIX):].partition(".")
    return arch, tag or None


def timm_name(name: str) -> str:
    arch, tag = split_name(name)
    return f"{arch}.{tag}" if tag else arch


def pretrained_tags(arch: str) -> list[str]:
    """timm's pretrained tags of an architecture (``["augreg_in21k", "augreg_in21k_ft_in1k"]``)."""
    return [key.partition(".")[2] or key for key in import_timm().models.get_arch_pretrained_cfgs(arch)]


@functools.lru_cache(maxsize=256)
def timm_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``timm-ARCH[.TAG]``; unknown names and tags list close ones."""
    timm = import_timm()
    arch, tag = split_name(name)
    if not arch or not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=8, cutoff=0.6)
        hint = f"; close: {', '.join(TIMM_PREFIX + c for c in close)}" if close else ""
        raise LayerError(f"unknown timm model {arch!r} in {name!r}{hint} (all: python -c 'import timm; "
                         "print(timm.list_models())')")
    if tag is not None and tag not in pretrained_tags(arch):
        raise LayerError(f"timm model {arch} has no pretrained tag {tag!r}; its tags: "
                         f"{', '.join(pretrained_tags(arch)) or '(none)'}")
    size = int(data_config(TIMM_PREFIX + timm_name(name))["input_size"][-1])
    return ModelSpec(str(name).strip().lower(), default_size=size, source="timm")


def model_spec(key: str) -> ModelSpec | None:
    """The spec of a ``timm-`` name (lower case); None for a name of another source."""
    return timm_spec(key) if is_timm(key) else None


def known() -> str:
    """The names this source accepts, for an unknown-model message."""
    return (f"timm models as {TIMM_PREFIX}NAME (e.g. {TIMM_PREFIX}convnext_atto, "
            f"{TIMM_PREFIX}vit_small_patch16_224.augreg_in21k)")


def pretrained_cfg(name: str) -> dict:
    """timm's pretrained config of the tag (the default tag without one) as a dict; ``{}`` if none."""
    try:
        cfg = import_timm().models.get_pretrained_cfg(timm_name(name))
    except RuntimeError:
        cfg = None
    return cfg.to_dict() if cfg is not None else {}


def data_config(name: str) -> dict:
    """Input size, interpolation, mean, std, crop_pct, crop_mode of the tag (``resolve_data_config``)."""
    return dict(import_timm().data.resolve_data_config({}, pretrained_cfg=pretrained_cfg(name)))


def preprocessing(name: str, size: int | None = None, mode: str = "crop") -> Preprocessing:
    """The :class:`Preprocessing` bound to a timm model's pretrained config (``size`` overrides its size)."""
    cfg = data_config(name)
    size = int(size or cfg["input_size"][-1])
    crop_pct = float(cfg.get("crop_pct") or 1.0)
    if cfg.get("crop_mode", "center") != "center" and mode == "crop":
        warnings.warn(f"{name}: timm's crop_mode {cfg['crop_mode']!r} is approximated by a centre crop of "
                      f"the resized image", UserWarning, stacklevel=2)
    return Preprocessing(size, math.floor(size / crop_pct), tuple(float(v) for v in cfg["mean"]),
                         tuple(float(v) for v in cfg["std"]), mode, str(cfg.get("interpolation") or "bilinear"))


def head_paths(name_or_model) -> tuple[str, ...]:
    """Module paths of a timm model's classifier(s) (``("head",)``, ``("head.fc",)``, ``("head", "head_dist")``)."""
    cfg = name_or_model.pretrained_cfg if isinstance(name_or_model, nn.Module) else pretrained_cfg(name_or_model)
    heads = cfg.get("classifier") or ()  # type: ignore[union-attr, operator]  # timm: a dict
    return (heads,) if isinstance(heads, str) else tuple(heads)


def _classes_in(state: dict, name: str) -> int:
    """Classes of the head a state_dict holds (0: no head, e.g. a self-supervised backbone)."""
    weight = next((state[f"{h}.weight"] for h in head_paths(name) if f"{h}.weight" in state), None)
    return int(weight.shape[0]) if weight is not None and weight.dim() >= 1 else 0


def create(name: str, *, size: int | None = None, num_classes: int | None = None,
           state_dict: dict | None = None, source: str | os.PathLike | None = None) -> nn.Module:
    """Build a timm model, randomly initialised or loaded from ``state_dict`` through timm's loader.

    ``size`` builds a fixed-input-size model (ViT, Swin) for that input
    (``img_size``); other models run at any size. With a state_dict the model
    gets the head the state_dict has (none when it has none) and every key is
    loaded strictly after timm's checkpoint filter; a misfit raises
    :class:`WeightsError` naming ``source``.
    """
    timm = import_timm()
    kwargs = {}
    cfg = pretrained_cfg(name)
    native = int(data_config(name)["input_size"][-1])
    if size is not None and int(size) != native and cfg.get("fixed_input_size", False):
        kwargs["img_size"] = int(size)
    try:
        if state_dict is None:
            if num_classes is not None:
                kwargs["num_classes"] = int(num_classes)
            return timm.create_model(timm_name(name), pretrained=False, **kwargs)
        state = {k.removeprefix("module."): v for k, v in state_dict.items()}
        n = _classes_in(state, name)
        try:
            return timm.create_model(timm_name(name), pretrained=True, num_classes=n,
                                     pretrained_cfg_overlay={"state_dict": state, "num_classes": n}, **kwargs)
        except (RuntimeError, KeyError, ValueError, IndexError, AssertionError) as exc:
            first = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
            raise WeightsError(f"{source or 'the state_dict'} does not fit {TIMM_PREFIX}{timm_name(name)}: "
                               f"{type(exc).__name__}: {first}") from exc
    except TypeError as exc:  # img_size not accepted
        raise LayerError(f"{name} has a fixed input size of {native} px and cannot be built for {size} px: "
                         f"{exc}") from exc


def build(name: str, weights=None, **kwargs) -> nn.Module:
    """Build a timm model randomly initialised (keyword arguments go to :func:`create`).

    Pretrained or file weights are loaded through timm's loader by
    :func:`featurekit.models.timm_weights.resolve_model`, never passed here.
    """
    if weights is not None:
        raise LayerError("timm weights are loaded by featurekit.models.timm_weights.resolve_model")
    return create(name, **kwargs)


# ---------------------------------------------------------------------------
# layer tables
# ---------------------------------------------------------------------------


def _declared(model: nn.Module) -> list[tuple[str, int | None]]:
    """``[(module path, channels)]`` timm declares as intermediate features (``feature_info``)."""
    info = getattr(model, "feature_info", None) or []
    out = [(str(f["module"]), f.get("num_chs")) for f in info if isinstance(f, dict) and f.get("module")]
    if out:
        return out
    blocks = getattr(model, "blocks", None)  # a model without feature_info: its blocks, if any
    if isinstance(blocks, (nn.Sequential, nn.ModuleList)):
        return [(f"blocks.{i}", None) for i in range(len(blocks))]
    raise LayerError(f"{type(model).__name__} declares no intermediate features (feature_info) for featurekit")


def _form(model: nn.Module, out: torch.Tensor, channels: int | None) -> dict | None:
    """The layout keywords of a :class:`Layer` for one module output (None: not a map or tokens)."""
    shape = tuple(out.shape[1:])
    if out.dim() == 4:
        nhwc = str(getattr(model, "output_fmt", "NCHW")).upper() == "NHWC" or \
            (channels is not None and shape[0] != channels and shape[-1] == channels)
        return {"layout": "hwc" if nhwc else "chw"}
    if out.dim() == 3:
        n_tokens = shape[0]
        prefix = int(getattr(model, "num_prefix_tokens", 0) or 0)

        def square(n):
            return n > 0 and math.isqrt(n) ** 2 == n

        if prefix and not square(n_tokens - prefix) and square(n_tokens):
            prefix = 0  # this module's tokens are the patches alone
        cls = prefix > 0 and bool(getattr(model, "has_class_token", getattr(model, "cls_token", None) is not None))
        return {"layout": "tokens", "prefix_tokens": prefix, "class_token": cls}
    return None


def table_for_model(model: nn.Module, spec: ModelSpec, size: int, channels: int = 3) -> LayerTable:
    """Layer table of a built timm model (see the module docstring): one ``forward_features`` pass."""
    declared = _declared(model)
    children = [name for name, _ in model.named_children()]
    watch = list(dict.fromkeys([m for m, _ in declared] + children))
    modules = dict(model.named_modules())
    missing = [m for m in watch if m not in modules]
    if missing:
        raise LayerError(f"{spec.name} declares features of modules it does not have: {', '.join(missing)}")
    outputs: dict[str, object] = {}

    def hook_for(path):
        def hook(_m, _inp, out):
            outputs.setdefault(path, out)
        return hook

    handles = [modules[path].register_forward_hook(hook_for(path)) for path in watch]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            # every timm model has forward_features (nn.Module's stubs type unknown attributes as Tensor | Module)
            final = model.forward_features(torch.zeros(1, channels, size, size, device=device))  # type: ignore[operator]
    except (RuntimeError, AssertionError, ValueError, TypeError) as exc:
        raise LayerError(f"{spec.name} cannot run at input size {size}: {exc}") from exc
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    layers = [Layer(0, INPUT, "", (channels, size, size))]

    def add(path, out, width):
        form = _form(model, out, width) if isinstance(out, torch.Tensor) else None
        if form is not None:
            layers.append(Layer(len(layers), path, path, tuple(int(s) for s in out.shape[1:]), **form))

    for path, width in declared:
        add(path, outputs.get(path), width)
    if isinstance(final, torch.Tensor) and not any(outputs.get(p) is final for p, _ in declared):
        last = [c for c in children if outputs.get(c) is final]
        if last:  # the final norm (ViT, Swin) or head conv (EfficientNet) adds a computation
            add(last[-1], final, getattr(model, "num_features", None))
    return LayerTable(spec.name, layers, size)


@functools.lru_cache(maxsize=64)
def layer_table(name: str, size: int) -> LayerTable:
    """The layer table of a timm model at an input size (built on the ``meta`` device)."""
    spec = timm_spec(name)
    try:
        with torch.device("meta"):
            return table_for_model(create(spec.name, size=size), spec, size)
    except (LayerError, NotImplementedError):  # an operation the meta device lacks: trace on the CPU
        with skip_init():
            model = create(spec.name, size=size)
        return table_for_model(model, spec, size)
