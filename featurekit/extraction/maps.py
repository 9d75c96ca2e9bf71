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

This module imports no torch: the hooks and the geometry are in
:mod:`featurekit.extraction.map_hooks`, loaded only when something must be
computed, and how a request resolved is remembered beside the maps' cache
(``<cache>.resolved.json``, as for features: :mod:`featurekit.extraction.memo`),
so a request whose maps are all cached is answered without torch.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from featurekit.cache import DatasetMeta, EntrySpec, FeatureCache, default_cache_path
from featurekit.errors import CacheError, DataError, LayerError
from featurekit.io import canonical_json, version_attrs
from featurekit.models.layers import INPUT, Layer
from featurekit.specs import Weights

__all__ = ["MAP_KINDS", "MAX_SIDE", "MapResult", "layer_maps", "map_grid", "maps_cache_path", "store_entries"]

MAP_KINDS = ("mean", "probe", "gradcam")
#: the largest side of a stored map (cells); a layer's own grid when smaller
MAX_SIDE = 32
#: lesion-grid value of an image without a lesion region (no mask, or an empty one)
NO_LESION = -1.0


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


def maps_cache_path(dataset) -> Path:
    """``cache/maps/<dataset>-<fingerprint12>.h5``: maps apart from the features of the same data."""
    path = default_cache_path(dataset)
    return path.parent / "maps" / path.name


@dataclass
class MapResult:
    """Maps of several layers of one model for a dataset.

    ``maps[layer]`` is ``(N, h, w)`` float32 (rows in dataset order),
    ``lesion[layer]`` the lesion's share of each cell of that grid (NaN for
    images without a lesion region), ``probe[layer]`` the probe's ``(w/σ,
    b')`` for ``kind="probe"``; ``computed`` / ``reused`` list the cache entries, ``entries[layer]``
    the (key, entry id) of each layer's maps; ``preprocessing`` is the model's, as a dict
    (:func:`featurekit.extraction.map_hooks.model_view` shows an image as the model sees it).
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
    preprocessing: dict = field(default_factory=dict)
    entries: dict = field(default_factory=dict)


def _probe_weights(dataset, specs, weights, size, mode, cache, batch_size, progress) -> dict:
    """Per layer, ``(w / σ, b')`` of a scaled logistic regression on its gap features (all labelled images).

    The features come from :func:`~featurekit.extract` (read from the feature cache when there,
    without torch); the fit is deterministic, so the same features give the same probe.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from featurekit.extraction.pipeline import extract

    if dataset.positive is None:
        raise DataError(f"dataset {dataset.name!r}: name the positive class for probe maps (e.g. --positive)")
    labels = np.asarray(dataset.labels)
    keep = labels >= 0
    y = (labels[keep] == dataset.class_names.index(dataset.positive)).astype(int)
    if len(np.unique(y)) < 2:
        raise DataError(f"dataset {dataset.name!r}: a probe needs labelled images of both classes")
    res = extract(dataset, specs, weights=weights, size=size, resize=mode, pool="gap", cache=cache,
                  batch_size=batch_size, progress=progress)
    out = {}
    for key in dict.fromkeys(k for s in specs for k in res.layer_keys[str(s)]):
        X = res.get(key)[keep].astype(np.float64)
        scaler = StandardScaler().fit(X)
        clf = LogisticRegression(max_iter=2000).fit(scaler.transform(X), y)
        scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        out[key.split("/", 1)[1]] = (clf.coef_[0] / scale,
                                     float(clf.intercept_[0] - clf.coef_[0] @ (scaler.mean_ / scale)))
    return out


def _digest(*arrays) -> str:
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()


def _specs(ref, layers, kind, probe, targets) -> tuple[dict, dict]:
    """Entry specs of the maps (per layer) and of the lesion grids (per grid shape)."""
    maps, lesion = {}, {}
    pre = ref.preprocessing
    for layer in layers:
        h, w = map_grid(layer)
        digest = None
        if kind == "probe":
            v, b = probe[layer.name]
            digest = _digest(np.asarray(v, np.float64), np.float64(b))
        elif kind == "gradcam":
            digest = _digest(np.asarray(targets, np.int64))
        params = {"family": "map", "kind": kind, "model": ref.name, "layer": layer.name,
                  "layer_index": layer.index, "module": layer.module, **ref.identity, "input_size": pre.size,
                  "preprocessing": pre.to_dict(), "grid": [h, w], "probe_sha256": digest, **layer.form}
        maps[layer.name] = EntrySpec(f"{ref.name}/{layer.name}/{kind}", params, h * w, "float32",
                                     {**version_attrs(), "weights_path": ref.weights_path or ""})
        geometry = {k: v for k, v in pre.to_dict().items() if k in ("size", "resize", "mode", "interpolation")}
        lesion[(h, w)] = EntrySpec(f"lesion/{h}x{w}", {"family": "lesion", "geometry": geometry, "grid": [h, w]},
                                   h * w, "float32", version_attrs())
    return maps, lesion


def _request(specs, w, size, mode, kind, probe) -> str:
    """The memo key of a request: what its entries depend on (see :mod:`featurekit.extraction.memo`)."""
    from featurekit.extraction.memo import request_key

    base = request_key(specs[0].model, [s.selector for s in specs], w, size=size, mode=mode, pool="map",
                       dtype="float32", device="cpu", amp=False)
    probes = {name: _digest(np.asarray(v, np.float64), np.float64(b)) for name, (v, b) in probe.items()}
    return canonical_json({"maps": kind, "max_side": MAX_SIDE, "probe": probes, "request": base})


def _remembered(store: FeatureCache, meta: DatasetMeta, key: str) -> dict | None:
    """A memo answer whose every entry the maps cache holds intact for these data, else None."""
    from featurekit.extraction.memo import ResolutionMemo

    hit = ResolutionMemo(store.path).lookup(key) if store.exists() else None
    if hit is None:
        return None
    try:
        present = {(e.key, e.entry_id): e for e in store.entries()}
    except CacheError:
        return None
    specs = []
    for k, eid in hit["entries"]:
        entry = present.get((k, eid))
        if entry is None:
            return None
        spec = EntrySpec(k, entry.params, int(entry.shape[1]), entry.dtype, dict(entry.attrs))
        if spec.entry_id != eid:
            return None
        specs.append(spec)
    return hit if store.holds(meta, specs) else None


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

    A request answered before from an intact cache is read without torch
    (``mean`` and ``probe``: its resolution is remembered beside the maps'
    cache, as extraction remembers its own, :mod:`featurekit.extraction.memo`).
    """
    from featurekit.specs import parse_layers

    if kind not in MAP_KINDS:
        raise LayerError(f"unknown map kind {kind!r}; choose one of {', '.join(MAP_KINDS)}")
    specs = parse_layers([layers] if isinstance(layers, str) else layers)
    if len({s.model for s in specs}) != 1:
        raise LayerError(f"layer_maps takes the layers of one model, got {', '.join(str(s) for s in specs)}")
    w = Weights.parse(weights)
    store = cache if isinstance(cache, FeatureCache) else FeatureCache(cache or maps_cache_path(dataset))
    meta = DatasetMeta.from_dataset(dataset)
    request = None
    if kind != "gradcam":
        probe = (_probe_weights(dataset, specs, w, size, mode, features_cache, batch_size, progress)
                 if kind == "probe" else {})
        request = _request(specs, w, size, mode, kind, probe)
        hit = _remembered(store, meta, request)
        if hit is not None:
            picked = [Layer(**{**d, "shape": tuple(d["shape"])}) for d in hit["layers"]]
            result = MapResult(hit["model"], kind, picked, {}, {}, store, probe=probe,
                               preprocessing=dict(hit["preprocessing"]),
                               entries={name: tuple(e) for name, e in hit["maps"].items()})
            result.reused = [tuple(e) for e in hit["entries"]]
            return _read(result, {tuple(map(int, g.split("x"))): tuple(e) for g, e in hit["lesion"].items()})
    else:
        probe = {}
    return _resolve_and_compute(dataset, specs, w, size, mode, kind, target, probe, store, meta, request,
                                batch_size, device, lock_timeout)


def _resolve_and_compute(dataset, specs, w, size, mode, kind, target, probe, store, meta, request, batch_size,
                         device, lock_timeout) -> MapResult:
    """Resolve the model (torch), compute what the cache lacks, remember the answer."""
    from featurekit.extraction.featurizers import resolve_device
    from featurekit.extraction.map_hooks import compute_maps
    from featurekit.extraction.memo import ResolutionMemo
    from featurekit.models.weights import resolve_model

    ref = resolve_model(specs[0].model, w, size=size, mode=mode)
    chosen = {layer.index: layer for s in specs for layer in ref.table.select(s.selector)}
    picked = [chosen[i] for i in sorted(chosen)]
    for layer in picked:
        map_grid(layer)  # the input, or tokens off a square grid, fail here, before any image is read
    targets = None
    if kind == "gradcam":
        from featurekit.extraction.gradcam import head_targets

        targets = (np.full(len(dataset), int(target), dtype=np.int64) if target is not None else
                   head_targets(ref.meta, dataset.class_names, dataset.labels, dataset.positive, ref.name))
    map_specs, lesion_specs = _specs(ref, picked, kind, probe, targets)
    all_specs = list(map_specs.values()) + list(lesion_specs.values())
    result = MapResult(ref.name, kind, picked, {}, {}, store, probe=probe,
                       preprocessing=ref.preprocessing.to_dict(),
                       entries={name: (s.key, s.entry_id) for name, s in map_specs.items()})
    result.computed, result.reused = store_entries(
        store, meta, all_specs, lambda todo, writer: compute_maps(
            dataset, ref, picked, probe, targets, map_specs, lesion_specs, todo, writer, batch_size,
            resolve_device(device)), lock_timeout)
    if request is not None:
        ResolutionMemo(store.path).record({request: {
            "model": ref.name, "layers": [asdict(layer) for layer in picked],
            "preprocessing": ref.preprocessing.to_dict(),
            "maps": {name: [s.key, s.entry_id] for name, s in map_specs.items()},
            "lesion": {f"{h}x{w}": [s.key, s.entry_id] for (h, w), s in lesion_specs.items()},
            "entries": [[s.key, s.entry_id] for s in all_specs]}})
    return _read(result, {grid: (s.key, s.entry_id) for grid, s in lesion_specs.items()})


def store_entries(store: FeatureCache, meta: DatasetMeta, specs: list, compute, lock_timeout) -> tuple[list, list]:
    """``(computed, reused)``: the entries ``store`` lacks (or holds damaged) are computed by
    ``compute(todo, writer)`` into the writer's journal and committed in one step."""
    if store.holds(meta, specs):
        return [], list(specs)
    Path(store.path).parent.mkdir(parents=True, exist_ok=True)
    with store.writer(meta, lock_timeout=lock_timeout) as writer:
        todo = writer.missing(specs)
        if todo:
            compute(todo, writer)
        writer.commit(todo)
    return todo, [s for s in specs if s not in todo]


def _read(result: MapResult, lesion: dict) -> MapResult:
    """Fill ``result`` with each layer's maps and lesion grid from the cache (every read verified)."""
    store = result.cache
    for layer in result.layers:
        key, eid = result.entries[layer.name]
        grid = map_grid(layer)
        result.maps[layer.name] = store.get(key, entry_id=eid).astype(np.float32).reshape(-1, *grid)
        les = store.get(lesion[grid][0], entry_id=lesion[grid][1]).reshape(-1, *grid)
        result.lesion[layer.name] = np.where(les < 0, np.nan, les)
    return result
