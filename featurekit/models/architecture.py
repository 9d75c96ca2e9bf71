"""Architecture changes made for fine-tuning: new heads and the small-input stem.

An *architecture* dict describes a model fully enough to rebuild it before a
checkpoint's state_dict is loaded::

    {"name": "resnet18", "num_classes": 2, "head": "linear" | "mlp" | "dropout_linear",
     "hidden": 512, "dropout": 0.5, "small_input": False, "in_chans": 3}

The head replaced is the model's last ``nn.Linear`` (``fc`` in ResNet and
Inception, ``classifier.6`` in VGG, ``classifier.1`` in MobileNet-V2), one
rule for every torchvision classifier. Inception's auxiliary head is removed.
A model that resets its own classifier -- every timm model, through
``reset_classifier(num_classes)``, which keeps its pooling and pre-logits
(ConvNeXt's ``head.norm``) and resets both heads of a distilled DeiT -- gets
its head that way; an MLP head then takes the place of the new linear
layer(s) at the paths timm's ``pretrained_cfg["classifier"]`` names.
The small-input stem (for 28-64 px images, as in the BreastMNIST ResNet-18
baseline of MedMNIST v2, Yang et al. 2023) replaces a ResNet's 7x7/2 conv by a
3x3/1 conv taking ``in_chans`` channels and drops the stem max-pool.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import torch
from torch import nn

from featurekit.errors import LayerError
from featurekit.models.building import last_linear
from featurekit.models.registry import head_paths

#: the new heads (the same names as :data:`featurekit.finetune.config.HEADS`)
HEADS = ("linear", "mlp", "dropout_linear")
DEFAULT_ARCH = {"head": "linear", "hidden": 512, "dropout": 0.5, "small_input": False, "in_chans": 3}


def normalize_arch(arch: dict) -> dict:
    out = {**DEFAULT_ARCH, **arch}
    if out["head"] not in HEADS:
        raise LayerError(f"unknown head {out['head']!r}; choose one of {', '.join(HEADS)}")
    return out


def _set_module(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, child, new)


def make_head(in_features: int, num_classes: int, head: str = "linear", hidden: int = 512,
              dropout: float = 0.5) -> nn.Module:
    """A new classification head.

    ``linear``: Dense; ``dropout_linear``: Dropout(``dropout``) + Dense (the
    BreastMNIST ResNet-18 head); ``mlp``: Dense(``hidden``) + BatchNorm + ReLU +
    Dropout(``dropout``) + Dense.
    """
    if head == "linear":
        return nn.Linear(in_features, num_classes)
    if head == "dropout_linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))
    if head != "mlp":
        raise LayerError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


def _own_head(model: nn.Module) -> Optional[tuple[Callable[[int], Any], dict]]:
    """``(reset_classifier, pretrained_cfg)`` of a model that replaces its classifier itself (timm), else None."""
    reset, cfg = getattr(model, "reset_classifier", None), getattr(model, "pretrained_cfg", None)
    return (reset, cfg) if callable(reset) and isinstance(cfg, dict) else None


def _reset_own_head(model: nn.Module, own: tuple[Callable[[int], Any], dict], num_classes: int, head: str,
                    hidden: int, dropout: float) -> nn.Module:
    reset_classifier, pretrained_cfg = own
    reset_classifier(int(num_classes))
    if head == "mlp":
        paths = pretrained_cfg.get("classifier") or ()
        for path in (paths,) if isinstance(paths, str) else paths:
            linear = model.get_submodule(path)
            if not isinstance(linear, nn.Linear):
                raise LayerError(f"{type(model).__name__}'s classifier {path!r} is a {type(linear).__name__}, "
                                 "not a linear layer: use --head linear")
            _set_module(model, path, make_head(linear.in_features, int(num_classes), head, int(hidden),
                                               float(dropout)))
    return model


def _drop_aux_head(model: nn.Module) -> None:
    """Remove Inception's auxiliary classifier: a fine-tuned model has one head."""
    if getattr(model, "AuxLogits", None) is not None:
        # nn.Module's stubs type every attribute as Tensor | Module; its __setattr__ takes any value
        model.AuxLogits = None  # type: ignore[assignment]
        model.aux_logits = False  # type: ignore[assignment]


def replace_head(model: nn.Module, num_classes: int, head: str = "linear", hidden: int = 512,
                 dropout: float = 0.5) -> nn.Module:
    own = _own_head(model)
    if own is not None:
        return _reset_own_head(model, own, num_classes, head, hidden, dropout)
    _drop_aux_head(model)
    path, linear = last_linear(model)
    _set_module(model, path, make_head(linear.in_features, num_classes, head, hidden, dropout))
    return model


def make_small_input(model: nn.Module, in_chans: int = 3, adapt_pretrained: bool = False) -> nn.Module:
    """Replace a ResNet stem by a 3x3/1 conv taking ``in_chans`` channels and drop the max-pool.

    ``adapt_pretrained=True`` initialises the new 3x3 kernel from the centre of
    the old (pretrained) 7x7 kernel instead of randomly; with ``in_chans=1``
    the RGB weights are summed, which is exact for a gray image that would
    otherwise have been replicated to three channels.
    """
    if not (hasattr(model, "conv1") and hasattr(model, "maxpool") and hasattr(model, "layer1")):
        raise LayerError("the small-input stem is defined for ResNet-family models only")
    if int(in_chans) not in (1, 3):
        raise LayerError(f"in_chans must be 1 or 3, got {in_chans}")
    old = model.conv1
    if not isinstance(old, nn.Conv2d):
        raise LayerError(f"the small-input stem replaces a ResNet's conv1 convolution; {type(model).__name__}'s "
                         f"conv1 is a {type(old).__name__}")
    out_channels = old.out_channels
    new = nn.Conv2d(in_chans, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    if adapt_pretrained and old.weight.device.type != "meta":
        with torch.no_grad():
            k = old.weight.shape[-1]
            c = (k - 3) // 2
            w = old.weight[:, :, c:c + 3, c:c + 3] if k >= 3 else old.weight
            if int(in_chans) == 1 and w.shape[1] != 1:
                w = w.sum(dim=1, keepdim=True)
            new.weight.copy_(w.to(new.weight.dtype))
    model.conv1 = new
    model.maxpool = nn.Identity()
    return model


@functools.lru_cache(maxsize=64)
def head_path(name: str) -> str:
    """Module path of the classification head of a registry model (the first its source names:
    a torchvision model's original last ``nn.Linear``, a timm model's first ``classifier``).

    A fine-tuned model keeps its head at this path whatever the head is (a
    linear layer or the MLP ``nn.Sequential``), so :func:`set_head` can swap
    it again (two-stage transfer).
    """
    return head_paths(name)[0]


def head_in_features(model: nn.Module, path: str) -> int:
    """Input width of the head at ``path`` (a linear layer or an MLP head)."""
    module = model.get_submodule(path)
    first = module if isinstance(module, nn.Linear) else \
        next((m for m in module.modules() if isinstance(m, nn.Linear)), None)
    if first is None:
        raise LayerError(f"no linear layer at the head path {path!r} of {type(model).__name__}")
    return int(first.in_features)


def set_head(model: nn.Module, name: str, num_classes: int, head: str = "linear", hidden: int = 512,
             dropout: float = 0.5) -> nn.Module:
    """Replace the whole head of a (possibly already fine-tuned) registry model."""
    if head not in HEADS:
        raise LayerError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    own = _own_head(model)
    if own is not None:
        return _reset_own_head(model, own, num_classes, head, hidden, dropout)
    _drop_aux_head(model)
    path = head_path(name)
    _set_module(model, path, make_head(head_in_features(model, path), int(num_classes), head, int(hidden),
                                       float(dropout)))
    return model


def head_parameters_prefix(name: str) -> str:
    """State-dict key prefix of the head of a registry model (``"fc."``, ``"classifier.1."``)."""
    return head_path(name) + "."


def apply_arch(model: nn.Module, arch: dict) -> nn.Module:
    """Modify a freshly built torchvision model to match an architecture dict."""
    arch = normalize_arch(arch)
    if arch["small_input"]:
        make_small_input(model, arch["in_chans"])
    elif arch["in_chans"] != 3:
        raise LayerError("in_chans other than 3 needs the small-input stem (small_input=True)")
    if arch.get("num_classes") is not None:
        replace_head(model, int(arch["num_classes"]), arch["head"], arch["hidden"], arch["dropout"])
    return model
