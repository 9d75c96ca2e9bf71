"""The torch half of :mod:`featurekit.extraction.maps`: the hooks that reduce layers to maps, and the
geometry that carries images and lesion masks through a model's resize and crop."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from featurekit.errors import LayerError
from featurekit.extraction.activations import ActivationExtractor, _StopForward
from featurekit.extraction.maps import NO_LESION, map_grid
from featurekit.models.layers import Layer

__all__ = ["MapExtractor", "to_grid", "model_view", "lesion_grid", "compute_maps"]


def to_grid(output: torch.Tensor, layer: Layer) -> torch.Tensor:
    """A layer's output as ``(N, C, H, W)``: maps as they are, channels-last permuted, patch tokens on their grid."""
    if layer.layout == "hwc":
        return output.permute(0, 3, 1, 2)
    if layer.layout == "tokens":
        patches = output[:, layer.prefix_tokens:]
        side = math.isqrt(patches.shape[1])
        if side * side != patches.shape[1]:
            raise LayerError(f"layer {layer.name}: {patches.shape[1]} patch tokens do not form a square grid")
        return patches.transpose(1, 2).reshape(output.shape[0], output.shape[2], side, side)
    return output


class MapExtractor(ActivationExtractor):
    """The forward hooks of :class:`ActivationExtractor`, each reducing its layer to a map.

    ``weights`` maps a layer name to a ``(C,)`` channel weighting and an
    offset (the probe's ``w / σ`` and ``b'``); layers without one get the
    channel mean. Each map is average-pooled to the layer's :func:`map_grid`.
    """

    def __init__(self, model, layers: Sequence[Layer], weights: dict | None = None):
        self.weights = dict(weights or {})
        for layer in layers:
            map_grid(layer)
        super().__init__(model, layers, "gap")

    def _make_hook(self, layer: Layer, stop: bool):
        name, grid = layer.name, map_grid(layer)
        v, offset = self.weights.get(layer.name, (None, 0.0))

        def hook(_module, _inputs, output):
            if name not in self._out:  # reduced at once: later in-place operations cannot change it
                x = to_grid(output.detach(), layer).float()
                m = x.mean(dim=1) if v is None else torch.einsum("nchw,c->nhw", x, v.to(x.device)) + offset
                self._out[name] = F.adaptive_avg_pool2d(m[:, None], grid)[:, 0]
            if stop:
                raise _StopForward
        return hook


def model_view(image, preprocessing, grid: tuple[int, int]) -> np.ndarray:
    """A gray image in [0, 1] (or a mask as 0/1) as the model sees it -- its resize and crop, no
    normalisation -- averaged over the cells of ``grid``."""
    pre = replace(preprocessing, channels=1, mean=(0.0,), std=(1.0,))  # the geometry only
    arr = np.asarray(image)
    if arr.dtype == bool:
        x = torch.from_numpy(arr.astype(np.float32))[None]
    else:
        x = pre.to_tensor(arr)
    cells = F.adaptive_avg_pool2d(pre.finish(x)[None], grid)[0, 0]
    return cells.clamp(0.0, 1.0).numpy()


def lesion_grid(mask, preprocessing, grid: tuple[int, int]) -> np.ndarray:
    """The lesion's share of each cell of ``grid`` after the model's resize and crop (-1s: no lesion)."""
    if mask is None or not np.any(mask):
        return np.full(grid, NO_LESION, dtype=np.float32)
    return model_view(np.asarray(mask, dtype=bool), preprocessing, grid)


def compute_maps(dataset, ref, layers, probe, targets, map_specs, lesion_specs, todo, writer, batch_size,
             device) -> None:
    """Compute the batches the writer plans, all layers in one forward pass per batch (float32)."""
    want = {s.entry_id for s in todo}
    wanted_layers = [layer for layer in layers if map_specs[layer.name].entry_id in want]
    loaded = ref.load()
    for spec in map_specs.values():  # the hash of what was actually built (random init included)
        spec.attrs["weights_sha256"] = loaded.weights_sha256
    pre = loaded.preprocessing
    vectors = {name: (torch.as_tensor(v, dtype=torch.float32), float(b)) for name, (v, b) in probe.items()}
    model = loaded.model.to(device)
    hooks: ActivationExtractor
    if targets is not None:
        from featurekit.extraction.gradcam import GradCam

        hooks = GradCam(model, wanted_layers or layers[:1])
    else:
        hooks = MapExtractor(model, wanted_layers or layers[:1], vectors)
    with hooks as extractor:
        for start, stop in writer.plan(todo, batch_size):
            samples = [dataset[i] for i in range(start, stop)]
            arrays = {}
            if wanted_layers:
                x = torch.stack([pre(s.image) for s in samples]).to(device)
                out = extractor(x) if targets is None else extractor(x, targets[start:stop])
                for layer in wanted_layers:
                    spec = map_specs[layer.name]
                    arrays[spec.entry_id] = out[layer.name].cpu().numpy().reshape(len(samples), -1)
            for grid, spec in lesion_specs.items():
                if spec.entry_id in want:
                    arrays[spec.entry_id] = np.stack([lesion_grid(s.mask, pre, grid).ravel() for s in samples])
            writer.write(start, stop, arrays)
