"""Many layers from one forward pass.

:class:`ActivationExtractor` registers a forward hook on each requested
module. A hook pools the output *immediately* -- before any later in-place
operation (torchvision's ``ReLU(inplace=True)``, ResNet's ``out += identity``)
can overwrite the tensor it saw -- and the hook of the deepest requested
layer stops the forward pass, so nothing after it (later blocks, the
classifier head) is computed.

The same hooks serve every model source: torchvision modules, and for timm
models the modules timm itself declares (``feature_info``: the outputs its
``forward_intermediates`` returns, e.g. ViT ``blocks.N``, ConvNeXt
``stages.N``) plus the final norm. Each layer is pooled by its layout (map,
channels-last map or tokens, see :mod:`featurekit.extraction.pooling`); a
pooling a layer cannot give (``cls`` of a feature map) fails when the
extractor is made, before any image is read.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from featurekit.extraction.pooling import check_pool, layer_dim, pool_map
from featurekit.models.layers import INPUT, Layer


class _StopForward(Exception):
    """Raised by the deepest hook to end the forward pass early."""


class ActivationExtractor:
    """Pooled activations of several layers of ``model`` in one pass.

    Parameters
    ----------
    model : nn.Module
        The model, put in eval mode (BatchNorm running statistics, no dropout).
    layers : sequence of Layer
        Layers from the model's :class:`~featurekit.models.layers.LayerTable`.
    pool : str
        Pooling, see :mod:`featurekit.extraction.pooling`.

    Examples
    --------
    >>> with ActivationExtractor(model, layers, "gap") as ex:   # doctest: +SKIP
    ...     feats = ex(batch)            # {layer name: (N, D) tensor}
    """

    def __init__(self, model: nn.Module, layers: Sequence[Layer], pool: str = "gap"):
        self.model = model.eval()
        self.layers = sorted(layers, key=lambda layer: layer.index)
        self.pool = check_pool(pool)
        for layer in self.layers:
            layer_dim(layer, self.pool)  # a pooling this layer cannot give fails here, naming it
        self._out: dict[str, torch.Tensor] = {}
        self._handles = []
        modules = dict(model.named_modules())
        deepest = self.layers[-1]
        for layer in self.layers:
            if layer.name == INPUT:
                continue
            self._handles.append(modules[layer.module].register_forward_hook(
                self._make_hook(layer, stop=layer is deepest)))

    def _make_hook(self, layer: Layer, stop: bool):
        name, form = layer.name, layer.form

        def hook(_module, _inputs, output):
            if name not in self._out:  # a module run twice keeps its first output
                self._out[name] = pool_map(output, self.pool, **form)
            if stop:
                raise _StopForward
        return hook

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self._out = {}
        if any(layer.name == INPUT for layer in self.layers):
            self._out[INPUT] = pool_map(x, self.pool)
        if any(layer.name != INPUT for layer in self.layers):
            try:
                self.model(x)
            except _StopForward:
                pass
        missing = [layer.name for layer in self.layers if layer.name not in self._out]
        if missing:
            raise RuntimeError(f"layers {missing} did not run in the forward pass")
        out, self._out = self._out, {}
        return {layer.name: out[layer.name] for layer in self.layers}

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
