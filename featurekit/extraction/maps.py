"""Where each layer looks: activation and class-activation maps per layer, cached like features.

Maps come from the same layer tables and forward hooks as the features
(:class:`~featurekit.extraction.activations.ActivationExtractor`), so a layer
has the same name everywhere. A layer's output is first laid out as a
``(C, H, W)`` grid -- feature maps as they are, channels-last maps permuted,
a vision transformer's patch tokens (its class / register tokens dropped)
reshaped to the square patch grid -- and reduced over channels:

``mean``
    the channel mean of the activation (what the layer responds to at all);
``probe``
    the class activation map a linear probe on the layer's pooled features
    implies (Zhou et al., CVPR 2016): the probe (standard scaling + L2
    logistic regression, fitted on the ``gap`` features of every labelled
    image) scores ``Σ_c w_c (f_c − μ_c) / σ_c + b`` with ``f_c`` the spatial
    mean of channel ``c``, so ``Σ_c (w_c / σ_c) A_c(h, w) + b'`` (``b' = b −
    Σ_c w_c μ_c / σ_c``) is the same score spread over the positions: its
    mean is the probe's decision value (log-odds). Positive values are
    evidence for the positive class, negative ones for the other;
``gradcam``
    Grad-CAM of the network's own head for each image's class (a fine-tuned
    checkpoint as the weights), see :mod:`featurekit.extraction.gradcam`.

A map is stored at the layer's own grid, average-pooled to at most
:data:`MAX_SIDE` cells a side (at most 4 kB an image and layer), as float32
(float16 would flush the near-zero channel means of some layers to 0). Beside the maps,
each image's lesion region (mask or MIAS circle) is carried through the
model's own resize and crop and averaged over the cells of each grid: the
lesion's share of each cell (``-1`` everywhere for an image without a
lesion region). Both are entries of an HDF5 cache of the same format as the
feature cache (:class:`~featurekit.cache.FeatureCache`, by default
``cache/maps/<dataset>-<fingerprint12>.h5``, apart from the features so that
``evaluate --features all`` never takes a map for a feature): bound to the
data, journaled, committed atomically, every read verified. An entry's
parameters (its id) hold the model, layer, weights and their sha256, input
size and preprocessing, the map kind, the grid and, for ``probe``, the hash
of the probe's coefficients.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from featurekit.cache import DatasetMeta, EntrySpec, FeatureCache, default_cache_path
from featurekit.errors import DataError, LayerError
from featurekit.extraction.activations import ActivationExtractor
from featurekit.io import version_attrs
from featurekit.models.layers import INPUT, Layer
from featurekit.specs import Weights

__all__ = ["MAP_KINDS", "MAX_SIDE", "MapResult", "layer_maps", "to_grid", "map_grid", "maps_cache_path", "model_view"]

MAP_KINDS = ("mean", "probe", "gradcam")
#: the largest side of a stored map (cells); a layer's own grid when smaller
MAX_SIDE = 32
#: lesion-grid value of an image without a lesion region (no mask, or an empty one)
NO_LESION = -1.0


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


def map_grid(layer: Layer) -> tuple[int, int]:
    """The stored grid of a layer's maps: its own, average-pooled to at most :data:`MAX_SIDE` a side."""
    if layer.name == INPUT or not layer.module:
        raise LayerError("maps are of a model's layers, not of its input")
    if layer.layout == "tokens":
        side = math.isqrt(int(layer.shape[0]) - layer.prefix_tokens)
        h = w = side
    elif layer.layout == "hwc":
        h, w = int(layer.shape[0]), int(layer.shape[1])
    else:
        h, w = int(layer.shape[1]), int(layer.shape[2])
    return min(h, MAX_SIDE), min(w, MAX_SIDE)


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
        from featurekit.extraction.activations import _StopForward

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


def maps_cache_path(dataset) -> Path:
    """``cache/maps/<dataset>-<fingerprint12>.h5``: maps apart from the features of the same data."""
    path = default_cache_path(dataset)
    return path.parent / "maps" / path.name


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


@dataclass
class MapResult:
    """Maps of several layers of one model for a dataset.

    ``maps[layer]`` is ``(N, h, w)`` float32 (rows in dataset order),
    ``lesion[layer]`` the lesion's share of each cell of that grid (NaN for
    images without a lesion region), ``probe[layer]`` the probe's ``(w/σ,
    b')`` for ``kind="probe"``; ``computed`` / ``reused`` list the cache entries; ``preprocessing``
    is the model's (:func:`model_view` shows an image as the model sees it).
    """

    model: str
    kind: str
    layers: list
    maps: dict
    lesion: dict
    cache: FeatureCache
    computed: list = field(default_factory=list)
    reused: list = field(default_factory=list)
    probe: dict = field(default_factory=dict)
    preprocessing: object = None


def _probe_weights(dataset, ref, layers, weights, cache, batch_size, progress) -> dict:
    """Per layer, ``w / σ`` of a scaled logistic regression on the layer's gap features (all labelled images)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from featurekit.extraction.pipeline import extract

    if dataset.positive is None:
        raise DataError(f"dataset {dataset.name!r}: name the positive class for probe maps (e.g. --positive)")
    spec = f"{ref.name}:" + ",".join(layer.name for layer in layers)
    res = extract(dataset, [spec], weights=weights, size=ref.preprocessing.size, mode=ref.preprocessing.mode,
                  pool="gap", cache=cache, batch_size=batch_size, progress=progress)
    labels = np.asarray(dataset.labels)
    keep = labels >= 0
    y = (labels[keep] == dataset.class_names.index(dataset.positive)).astype(int)
    if len(np.unique(y)) < 2:
        raise DataError(f"dataset {dataset.name!r}: a probe needs labelled images of both classes")
    out = {}
    for layer in layers:
        X = res.get(f"{ref.name}/{layer.name}")[keep].astype(np.float64)
        scaler = StandardScaler().fit(X)
        clf = LogisticRegression(max_iter=2000).fit(scaler.transform(X), y)
        scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        out[layer.name] = (clf.coef_[0] / scale, float(clf.intercept_[0] - clf.coef_[0] @ (scaler.mean_ / scale)))
    return out


def _specs(ref, layers, kind, probe, targets) -> tuple[dict, dict]:
    """Entry specs of the maps (per layer) and of the lesion grids (per grid shape)."""
    maps, lesion = {}, {}
    pre = ref.preprocessing
    for layer in layers:
        h, w = map_grid(layer)
        digest = None
        if kind == "probe":
            v, b = probe[layer.name]
            digest = hashlib.sha256(np.asarray(v, np.float64).tobytes() + np.float64(b).tobytes()).hexdigest()
        elif kind == "gradcam":
            digest = hashlib.sha256(np.asarray(targets, np.int64).tobytes()).hexdigest()
        params = {"family": "map", "kind": kind, "model": ref.name, "layer": layer.name,
                  "layer_index": layer.index, "module": layer.module, **ref.identity, "input_size": pre.size,
                  "preprocessing": pre.to_dict(), "grid": [h, w], "probe_sha256": digest, **layer.form}
        maps[layer.name] = EntrySpec(f"{ref.name}/{layer.name}/{kind}", params, h * w, "float32",
                                     {**version_attrs(), "weights_path": ref.weights_path or ""})
        geometry = {k: v for k, v in pre.to_dict().items() if k in ("size", "resize", "mode", "interpolation")}
        lesion[(h, w)] = EntrySpec(f"lesion/{h}x{w}", {"family": "lesion", "geometry": geometry, "grid": [h, w]},
                                   h * w, "float32", version_attrs())
    return maps, lesion


def layer_maps(dataset, layers, kind: str = "mean", *, weights="imagenet", size: int | None = None,
               mode: str = "crop", cache=None, features_cache=None, target: int | None = None,
               batch_size: int = 16, device: str = "auto", progress: bool = False,
               lock_timeout: float | None = 600.0) -> MapResult:
    """Maps of the layers of one model for every image of ``dataset``, computed once and cached.

    Parameters
    ----------
    dataset : featurekit.data.Dataset
    layers : str or LayerSpec
        One model's layers, e.g. ``"mobilenet_v2:features.1-features.18"``.
    kind : {"mean", "probe", "gradcam"}
        Channel-mean activation map, the class activation map of a linear
        probe on the layer's gap features, or Grad-CAM of the network's head
        (see the module docstring).
    weights, size, mode : the model's weights and preprocessing, as for :func:`~featurekit.extract`.
    cache : path or FeatureCache, optional
        The maps' cache (default :func:`maps_cache_path`).
    features_cache : path or FeatureCache, optional
        Where the probe's gap features are read from or extracted to (default: the dataset's feature cache).
    target : int, optional
        ``gradcam``: the logit every map explains; default each image's own
        class, by the class names a fine-tuned checkpoint records.
    batch_size, device, progress, lock_timeout : execution.

    Returns
    -------
    MapResult
    """
    from featurekit.extraction.featurizers import resolve_device
    from featurekit.models.weights import resolve_model
    from featurekit.specs import parse_layers

    if kind not in MAP_KINDS:
        raise LayerError(f"unknown map kind {kind!r}; choose one of {', '.join(MAP_KINDS)}")
    specs = parse_layers([layers] if isinstance(layers, str) else layers)
    if len({s.model for s in specs}) != 1:
        raise LayerError(f"layer_maps takes the layers of one model, got {', '.join(str(s) for s in specs)}")
    w = Weights.parse(weights)
    ref = resolve_model(specs[0].model, w, size=size, mode=mode)
    chosen = {layer.index: layer for s in specs for layer in ref.table.select(s.selector)}
    picked = [chosen[i] for i in sorted(chosen)]
    for layer in picked:
        map_grid(layer)  # the input, or tokens off a square grid, fail here, before any image is read
    probe = _probe_weights(dataset, ref, picked, w, features_cache, batch_size, progress) if kind == "probe" else {}
    targets = None
    if kind == "gradcam":
        from featurekit.extraction.gradcam import head_targets

        targets = (np.full(len(dataset), int(target), dtype=np.int64) if target is not None else
                   head_targets(ref.meta, dataset.class_names, dataset.labels, dataset.positive, ref.name))
    map_specs, lesion_specs = _specs(ref, picked, kind, probe, targets)
    all_specs = list(map_specs.values()) + list(lesion_specs.values())
    meta = DatasetMeta.from_dataset(dataset)
    store = cache if isinstance(cache, FeatureCache) else FeatureCache(cache or maps_cache_path(dataset))
    result = MapResult(ref.name, kind, picked, {}, {}, store, probe=probe, preprocessing=ref.preprocessing)
    if store.holds(meta, all_specs):
        result.reused = all_specs
    else:
        Path(store.path).parent.mkdir(parents=True, exist_ok=True)
        with store.writer(meta, lock_timeout=lock_timeout) as writer:
            todo = writer.missing(all_specs)
            result.reused = [s for s in all_specs if s not in todo]
            if todo:
                _compute(dataset, ref, picked, probe, targets, map_specs, lesion_specs, todo, writer,
                         batch_size, resolve_device(device))
            writer.commit(todo)
            result.computed = todo
    for layer in picked:
        spec = map_specs[layer.name]
        grid = tuple(spec.params["grid"])
        result.maps[layer.name] = store.get(spec.key, entry_id=spec.entry_id).astype(np.float32).reshape(-1, *grid)
        les = store.get(lesion_specs[grid].key, entry_id=lesion_specs[grid].entry_id).reshape(-1, *grid)
        result.lesion[layer.name] = np.where(les < 0, np.nan, les)
    return result


def _compute(dataset, ref, layers, probe, targets, map_specs, lesion_specs, todo, writer, batch_size,
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
