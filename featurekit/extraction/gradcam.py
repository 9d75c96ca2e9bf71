"""Grad-CAM maps of a network's own classifier (Selvaraju et al., ICCV 2017), through the layer tables.

For a layer with activations ``A_c(h, w)`` and the network's logit ``y_k``
of class ``k``, Grad-CAM weighs each channel by the mean gradient,
``α_c = mean_hw ∂y_k / ∂A_c(h, w)``, and keeps the positive part of
``Σ_c α_c A_c``. It needs a head trained for the data's classes: a
fine-tuned checkpoint (``featurekit finetune``), whose recorded class names
give each image's own class as the target. For a head that is one linear
layer on global-average-pooled activations (MobileNet-V2, ResNet...) the
map of the last feature layer is the class activation map of that head
divided by ``H·W`` (Grad-CAM generalises CAM), which the tests check.

The hooks are forward hooks on the table's modules, as for the features
(:mod:`featurekit.extraction.activations`), but the forward pass runs to the
logits with gradients; in-place activations are switched off first (an
in-place ReLU after a hooked module would overwrite the activation autograd
needs). Token layers are laid out on their patch grid
(:func:`featurekit.extraction.map_hooks.to_grid`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from featurekit.errors import LayerError
from featurekit.extraction.activations import ActivationExtractor
from featurekit.models.layers import Layer

__all__ = ["GradCam", "head_targets"]


def head_targets(meta: dict, class_names: Sequence[str], labels: np.ndarray, positive: str | None,
                 model: str) -> np.ndarray:
    """Per image, the head's index of its own class (unlabelled images: the positive class)."""
    head = list(meta.get("class_names") or [])
    missing = [c for c in class_names if c not in head]
    if not head or missing:
        raise LayerError(f"Grad-CAM maps need a head trained for the data's classes: {model} has "
                         f"{'no recorded classes' if not head else 'classes ' + str(head)}"
                         f"{'' if not missing else ', not ' + str(missing)}; give a fine-tuned checkpoint as "
                         "the weights (featurekit finetune writes them)")
    fallback = head.index(positive) if positive in head else 0
    return np.asarray([head.index(class_names[k]) if k >= 0 else fallback for k in labels], dtype=np.int64)


class GradCam(ActivationExtractor):
    """Grad-CAM maps of several layers from one forward and one backward pass per batch.

    The hooks of :class:`~featurekit.extraction.activations.ActivationExtractor`, keeping each
    layer's output as autograd sees it (the pass runs to the logits: no early stop).
    """

    def __init__(self, model: nn.Module, layers: Sequence[Layer]):
        from featurekit.extraction.maps import map_grid

        for module in model.modules():
            if getattr(module, "inplace", False) is True:
                vars(module)["inplace"] = False  # a plain attribute of ReLU & co., not declared by Module
        self.grids = {layer.name: map_grid(layer) for layer in layers}
        super().__init__(model, layers, "gap")

    def _make_hook(self, layer: Layer, stop: bool):
        name = layer.name

        def hook(_module, _inputs, output):
            self._out.setdefault(name, output)  # a module run twice keeps its first output
        return hook

    def __call__(self, x: torch.Tensor, targets=None) -> dict[str, torch.Tensor]:
        from featurekit.extraction.map_hooks import to_grid

        if targets is None:
            raise LayerError("Grad-CAM explains a class: give each image's target logit")
        self._out = {}
        t = torch.as_tensor(np.asarray(targets), dtype=torch.long, device=x.device)
        with torch.enable_grad():
            logits = self.model(x)
            if logits.dim() != 2 or int(t.max()) >= logits.shape[1]:
                raise LayerError(f"the network's output {tuple(logits.shape)} has no logit for class index "
                                 f"{int(t.max())}")
            score = logits.gather(1, t[:, None]).sum()  # images are independent in eval mode
            acts = [self._out[layer.name] for layer in self.layers]
            grads = torch.autograd.grad(score, acts)
        out = {}
        for layer, a, g in zip(self.layers, acts, grads):
            a, g = to_grid(a.detach(), layer).float(), to_grid(g, layer).float()
            cam = F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1))
            out[layer.name] = F.adaptive_avg_pool2d(cam[:, None], self.grids[layer.name])[:, 0]
        self._out = {}
        return out
