"""Feature sets: which cache entries a result row uses, and the estimator that evaluates them.

A :class:`FeatureSet` names one or several cache entries (``blocks``) and how
they combine: ``""`` (one entry), ``"early"`` (concatenation, blocks scaled in
the fold), ``"vote"`` / ``"stack"`` (late fusion of per-block classifiers).
:func:`resolve_feature_sets` turns feature tokens (see
:func:`featurekit.specs.parse_feature_token`) into feature sets of one cache;
:func:`build_pipeline` makes the unfitted estimator of a (feature set,
classifier) row. Nothing here needs torch or a model: layer specs arrive
resolved into cache keys (``layer_keys``) by the caller
(:mod:`featurekit.orchestration`), from an extraction or from the layers a
cache holds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from featurekit.errors import DataError, LayerError
from featurekit.evaluation.estimators.classifiers import make_classifier, make_pipeline_for, search_grid, with_search
from featurekit.evaluation.estimators.features import CachedFeatures
from featurekit.evaluation.estimators.fusion import LateFusionClassifier, early_fusion_pipeline
from featurekit.specs import AllFeatures, CacheKey, FusionSpec, HandcraftedSpec, LayerSpec, parse_feature_token

__all__ = ["FeatureSet", "resolve_feature_sets", "build_pipeline", "entry_meta", "depth_order"]


@dataclass
class FeatureSet:
    """A named feature set: one or several cache entries (``blocks``) and how they combine."""

    name: str
    blocks: list  # [(key, entry_id)]
    kind: str
    model: str = ""
    layer: str = ""
    layer_index: float = float("nan")
    fusion: str = ""
    parts: str = ""

    def meta(self) -> dict:
        return {"kind": self.kind, "model": self.model, "layer": self.layer,
                "layer_index": self.layer_index, "fusion": self.fusion, "parts": self.parts or self.name}


def entry_meta(entry) -> dict:
    """What a result's provenance records of one cache entry."""
    a = entry.attrs
    p = entry.params
    get = lambda k, d="": p.get(k, a.get(k, d))  # noqa: E731
    return {"key": entry.key, "entry_id": entry.entry_id, "family": str(get("family")),
            "model": str(get("model")), "layer": str(get("layer")),
            "layer_index": get("layer_index", None), "last_layer_index": get("last_layer_index", None),
            "weights": str(get("weights")),
            # attrs hold the hash of what was built (random init included); params may leave it out
            "weights_sha256": str(a.get("weights_sha256") or p.get("weights_sha256") or ""),
            "input_size": get("input_size", None),
            "pool": str(get("pool")), "estimator": str(get("estimator")), "shape": list(entry.shape)}


def depth_order(entries) -> list[str]:
    """Cache keys ordered handcrafted first, then per model by layer depth (not alphabetically)."""
    def rank(e):
        idx = e.params.get("layer_index")
        return (e.params.get("family") == "cnn", e.params.get("model", ""),
                float(idx) if idx is not None else -1.0, e.key)

    return list(dict.fromkeys(e.key for e in sorted(entries, key=rank)))


def resolve_feature_sets(features: Sequence[Any], fuse: Sequence[str] = (), *, cache,
                         entries: Mapping[str, str] | None = None,
                         layer_keys: Mapping[str, Sequence[str]] | None = None,
                         late_fusion: str | None = None,
                         match: Mapping[str, Any] | None = None) -> tuple[list[FeatureSet], dict]:
    """Turn feature and fusion tokens into :class:`FeatureSet` s of cache entries.

    Parameters
    ----------
    features : list of str or typed tokens
        ``"gabor"``, ``"glcm:bin_count=64"``, ``"vgg16:8-17"`` (one set per layer),
        ``"vgg16/block5_conv3"`` (a cache key) or ``"all"`` (every key, by depth).
    fuse : list of str
        ``"A+B[+C]"``, each part a feature token (a multi-layer part adds every layer as a block).
    cache : FeatureCache
    entries : dict, optional
        ``key -> entry_id`` to use (e.g. from an extraction); other keys must
        have exactly one entry matching ``match``.
    layer_keys : dict
        ``str(layer spec) -> cache keys`` for every layer spec among the tokens
        (:func:`featurekit.orchestration.layer_keys` resolves them).
    late_fusion : {None, "vote", "stack"}
        Also add a late-fusion set for every fusion spec.
    match : dict, optional
        Entry parameters for keys not in ``entries`` (e.g. ``weights="none"``).

    Returns
    -------
    (list of FeatureSet, dict of key -> entry metadata)
    """
    from featurekit.cache import FeatureCache

    cache = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)
    entries = dict(entries or {})
    keys_by_layer = {str(k): list(v) for k, v in (layer_keys or {}).items()}
    all_entries = cache.entries()
    infos: dict[str, dict] = {}

    def keys_of(token) -> list[str]:
        tok = parse_feature_token(token)
        if isinstance(tok, AllFeatures):
            return depth_order(all_entries)
        if isinstance(tok, LayerSpec):
            if str(tok) not in keys_by_layer:
                raise LayerError(f"layer spec {tok} is not resolved into cache keys; "
                                 "resolve it with featurekit.orchestration.layer_keys")
            return keys_by_layer[str(tok)]
        if isinstance(tok, HandcraftedSpec):
            return [tok.family]
        assert isinstance(tok, CacheKey)
        return [tok.key]

    def block(key: str) -> tuple[str, str]:
        if key not in infos:
            entry = cache.entry(key, entries.get(key), **(dict(match or {}) if key not in entries else {}))
            infos[key] = entry_meta(entry)
        return key, infos[key]["entry_id"]

    def single(key: str) -> FeatureSet:
        k, eid = block(key)
        info = infos[k]
        if info["family"] == "cnn" or CacheKey(k).is_layer:
            li = info["layer_index"]
            return FeatureSet(k, [(k, eid)], "deep", info["model"], info["layer"],
                              float(li) if li is not None else float("nan"))
        return FeatureSet(k, [(k, eid)], "handcrafted")

    sets: list[FeatureSet] = []
    seen: set = set()
    for token in features:
        for key in keys_of(token):
            if key not in seen:
                seen.add(key)
                sets.append(single(key))
    if late_fusion not in (None, "", "none", "vote", "stack"):
        raise DataError(f"late fusion must be 'vote' or 'stack', got {late_fusion!r}")
    for spec in fuse:
        keys: list[str] = []
        for part in FusionSpec.parse(spec).parts:
            keys += [k for k in keys_of(part) if k not in keys]
        if len(keys) < 2:
            raise DataError(f"fusion {spec!r} needs at least two feature sets (got {keys})")
        members = [single(k) for k in keys]
        deep = next((m for m in members if m.kind == "deep"), None)
        name = str(FusionSpec.of(keys))
        blocks = [m.blocks[0] for m in members]
        early = FeatureSet(name, blocks, "fused", deep.model if deep else "", deep.layer if deep else "",
                           deep.layer_index if deep else float("nan"), fusion="early", parts=name)
        sets.append(early)
        if late_fusion in ("vote", "stack"):
            sets.append(replace(early, name=f"{late_fusion}({name})", fusion=late_fusion))
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise DataError(f"feature sets repeat: {names}")
    if not sets:
        raise DataError("no feature sets to evaluate")
    return sets, infos


def build_pipeline(fs: FeatureSet, classifier: str, cache, *, class_weight=None, oversample=False,
                   search=False, inner_cv=3, seed=0, reduce=None, block_weight=None, n_classes: int = 2) -> Any:
    """The unfitted estimator of one (feature set, classifier) row (of a task with ``n_classes`` classes)."""
    def clf():
        return make_classifier(classifier, class_weight=class_weight, oversample=oversample, random_state=seed,
                               n_classes=n_classes)

    def searched(pipe):
        if not search:
            return pipe
        return with_search(pipe, search_grid(classifier, pipe.named_steps["clf"]), inner_cv=inner_cv,
                           random_state=seed)

    def one(key, eid):
        return make_pipeline_for(CachedFeatures(key, cache=cache, entry_id=eid), clf())

    if fs.fusion == "":
        return searched(one(*fs.blocks[0]))
    if fs.fusion == "early":
        return searched(early_fusion_pipeline(fs.blocks, clf(), cache, reduce=reduce, block_weight=block_weight))
    bases = [(key, searched(one(key, eid))) for key, eid in fs.blocks]
    return LateFusionClassifier(bases, method=fs.fusion, random_state=seed)
