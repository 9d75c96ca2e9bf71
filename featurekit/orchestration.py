"""Plan feature sets, extract what is missing, cross-validate: ``featurekit evaluate`` as an API.

This is where the lower layers meet: specs are parsed
(:mod:`featurekit.specs`), missing features extracted
(:func:`featurekit.extraction.pipeline.extract`), feature sets resolved into
cache entries (:mod:`featurekit.evaluation.estimators.featuresets`) and cross-validated by
the cross-validation engine (:func:`featurekit.evaluation.results.crossval.cross_validate`).
``evaluation/`` knows nothing of models or extraction; this module does.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

import numpy as np

from featurekit.errors import DataError, LayerError
from featurekit.executors import as_executor
from featurekit.specs import CacheKey, FusionSpec, HandcraftedSpec, LayerSpec, parse_feature_token

__all__ = ["evaluate_features", "layer_keys", "run_demo_evaluation"]


def _is_dataset(obj) -> bool:
    return hasattr(obj, "fingerprint") and hasattr(obj, "image") and hasattr(obj, "class_names")


def _tokens(features: Sequence[Any], fuse: Sequence[str]) -> list:
    return [parse_feature_token(t) for t in features] + [p for spec in fuse for p in FusionSpec.parse(spec).parts]


def layer_keys(specs: Sequence[LayerSpec], cache) -> dict[str, list[str]]:
    """Cache keys of layer specs, resolved against the layers ``cache`` holds.

    The cache records each CNN entry's model, layer name and table index, so a
    selector (index, name, range, glob, ``all``) picks among the cached layers
    without building the model; a layer the cache lacks cannot be chosen (the
    error says to extract it).
    """
    from featurekit.models.layers import Layer, LayerTable

    entries = cache.entries()
    out: dict[str, list[str]] = {}
    for spec in specs:
        layers: dict[int, Layer] = {}
        for e in entries:
            p = e.params
            if p.get("family") == "cnn" and p.get("model") == spec.model and p.get("layer_index") is not None:
                layers[int(p["layer_index"])] = Layer(int(p["layer_index"]), str(p["layer"]), "", ())
        if not layers:
            raise LayerError(f"the cache {cache.path} holds no layers of {spec.model}; extract them first "
                             f"(featurekit extract DATA --layers {spec})")
        table = LayerTable(spec.model, [layers[i] for i in sorted(layers)], 0)
        try:
            chosen = table.select(spec.selector)
        except LayerError as exc:
            raise LayerError(f"{exc} (without the dataset, only layers present in the cache can be chosen)") from None
        out[str(spec)] = [str(CacheKey.of_layer(spec.model, layer.name)) for layer in chosen]
    return out


def _samples(source, positive):
    """ids, int labels, class names, positive name, groups, split, dataset-info dict."""
    from featurekit.cache import FeatureCache

    if _is_dataset(source):
        ids = np.asarray(source.ids, dtype=object)
        labels = np.asarray(source.labels)
        names = list(source.class_names)
        pos = positive or source.positive
        groups = None if source.groups is None else np.asarray(source.groups)
        split = None if getattr(source, "split", None) is None else np.asarray(source.split)
        info = {"name": source.name, "source": str(source.source), "fingerprint": source.fingerprint(),
                "roi": getattr(source, "roi", None), "class_names": names}
        if source.groups is not None and source.group_kind is not None:
            info["group_kind"] = source.group_kind  # what a CV group is (patient, volume...), for the wording
        reading = source.reading()  # DICOM / volume files: the window and the rules applied
        if reading is not None:
            info["reading"] = reading
    else:
        cache = source if isinstance(source, FeatureCache) else FeatureCache(source)
        meta = cache.meta
        ids = np.asarray(cache.ids, dtype=object)
        labels = np.asarray(cache.labels)
        names = list(meta.get("class_names", []))
        pos = positive or (meta.get("positive") or None)
        groups = cache.groups
        split = None
        info = {"name": str(meta.get("dataset", "")), "source": str(meta.get("source", "")),
                "fingerprint": str(meta.get("fingerprint", "")), "roi": None, "class_names": names}
        if meta.get("reading") is not None:  # recorded by the extraction that wrote the cache
            info["reading"] = meta["reading"]
        if groups is not None and meta.get("group_kind"):
            info["group_kind"] = str(meta["group_kind"])
    if not (labels >= 0).any():
        raise DataError(f"{info['source'] or info['name']}: no labelled image to evaluate (a folder of images "
                        "without class subfolders is one unlabelled set: put each class's images in a folder "
                        "of its own)")
    if pos is None:
        if np.unique(labels[labels >= 0]).size > 2:
            return ids, labels, names, None, groups, split, info  # the multi-class evaluation
        if len(names) == 2:
            raise DataError(f"name the positive class (classes: {names}), e.g. positive='{names[-1]}'")
        raise DataError(f"name the positive class among {names}")
    if str(pos) not in names:
        raise DataError(f"positive class {pos!r} is not one of {names}")
    return ids, labels, names, str(pos), groups, split, info


def evaluate_features(source: Any, *args: Any, positive: str | None = None,
                      match: Mapping[str, Any] | None = None, entries: Mapping[str, str] | None = None,
                      command: str | None = None, executor: Any = None, shard_size: int | None = None,
                      **options: Any):
    """Evaluate cached feature sets (and their fusions) with each classifier.

    Parameters
    ----------
    source : Dataset, FeatureCache or path of a cache file
        With a Dataset, the layer specs and handcrafted families named are
        extracted first (:func:`~featurekit.extraction.pipeline.extract`
        computes only what the cache lacks). With a cache, everything must be
        in it already.
    features : list of str or typed specs
        ``"gabor"``, ``"glcm:bin_count=64"``, ``"vgg16:8-17"``, a cache key
        (``"mobilenet_v2/features.14"``) or ``"all"`` (see :func:`featurekit.specs.parse_feature_token`).
    classifiers : list of str
        Names of :data:`~featurekit.evaluation.estimators.classifiers.CLASSIFIERS`.
    cv : str, int or splitter
        ``"5"``, ``"5x3"``, ``"holdout:0.3x30"``, ``"predefined"`` (the dataset's split
        column), or any scikit-learn splitter.
    fuse : list of str
        Early fusions, ``"vgg16:block5_conv3+gabor"``.
    late_fusion : {None, "vote", "stack"}
        Also evaluate a late fusion of each ``fuse`` combination.
    positive : str
        Positive class name (default: the dataset's / cache's). Other classes are
        the negative class ("positive vs rest" when there are more than two).
    cache : path, optional
        Cache file (default ``cache/<dataset>-<fingerprint12>.h5`` for a Dataset).
    match, entries : see :func:`~featurekit.evaluation.estimators.featuresets.resolve_feature_sets`.
    weights : Weights or str
        Weights of the CNN features to extract and use (``"imagenet"``, ``"none"``
        = ``Weights.random(seed=0)``, ``"none:seed=3"``, a file). Independent of
        ``seed``, which seeds the splits.
    size, pool, resize, batch_size, device : extraction options.
    seed : int
        Seed of the protocol, classifiers, inner CVs and bootstrap.
    class_weight : {None, "balanced"}; oversample : bool
        Class-imbalance handling inside the training folds.
    search : bool; inner_cv : int
        Grid search of the classifier's grid nested in each outer fold.
    reduce : {None, "pca", "select"}; block_weight : {None, "equal"}
        Early-fusion options (see :mod:`featurekit.evaluation.estimators.fusion`).
    youden, youden_cv, n_boot, confidence, n_jobs, progress : see
        :func:`~featurekit.evaluation.results.crossval.cross_validate`.
    select, select_by : the *selected* row (default: on with two or more rows): in each
        outer fold the best (feature set, classifier) by ``select_by`` on held-out
        predictions of the training part only, scored on the test part (see
        :func:`~featurekit.evaluation.results.crossval.cross_validate`). From the cache: the
        candidates' own fold fits and inner CVs serve it, nothing is extracted again.
    out : path, optional
        Write the run folder there (``overwrite`` to replace an existing one).
    command : str, optional
        Command line for the provenance (default ``sys.argv``).
    executor, shard_size : where extraction shards and fits run (a ``dask.distributed.Client``
        for a cluster; see :func:`~featurekit.extraction.pipeline.extract` and
        :func:`~featurekit.evaluation.results.crossval.cross_validate`). On a cluster the workers
        read the committed cache file, so it must be on a file system they share.

    Every option is declared once, in :data:`featurekit.options.EVALUATE` (the
    command line's flags and a study step's keys are the same options); a wrong
    value is an :class:`~featurekit.options.OptionError` naming it.

    Returns
    -------
    Evaluation
    """
    from featurekit.options import EVALUATE

    o = SimpleNamespace(**EVALUATE.bind("evaluate_features", POSITIONAL, args, options))
    return _evaluate(source, o, positive=positive, match=match, entries=entries, command=command, executor=executor,
                     shard_size=shard_size)


#: the options evaluate_features also takes by position, after the source
POSITIONAL = ("features", "classifiers", "cv")


def _evaluate(source: Any, o: SimpleNamespace, *, positive, match, entries, command, executor, shard_size):
    from featurekit.cache import FeatureCache, default_cache_path
    from featurekit.evaluation.estimators.classifiers import resolve_classifier
    from featurekit.evaluation.estimators.featuresets import build_pipeline, resolve_feature_sets
    from featurekit.evaluation.results.crossval import cross_validate

    if not o.features and not o.fuse:
        raise DataError("name feature sets to evaluate (e.g. features=['gabor', 'vgg16:8-17'])")
    if not o.classifiers:
        raise DataError("name at least one classifier")
    names_clf = [resolve_classifier(c).name for c in o.classifiers]
    if o.out is not None:
        from featurekit.evaluation.results.runfolder import check_out

        check_out(o.out, o.overwrite)  # refused before any work, not after it
    w = o.weights
    tokens = _tokens(o.features, o.fuse)
    ids, labels, names, pos, groups, split, info = _samples(source, positive)
    entries = dict(entries or {})
    layer_specs = list(dict.fromkeys(t for t in tokens if isinstance(t, LayerSpec)))
    hand = list(dict.fromkeys(t for t in tokens if isinstance(t, HandcraftedSpec)))
    if _is_dataset(source):
        cache = o.cache
        cache_obj = FeatureCache(cache) if cache is not None and not isinstance(cache, FeatureCache) else cache
        cache_obj = cache_obj or FeatureCache(default_cache_path(source))
        keys_by_spec: dict[str, list[str]] = {}
        if layer_specs or hand:
            from featurekit.extraction.pipeline import extract

            result = extract(source, layer_specs, hand, cache=cache_obj, weights=w, size=o.size, pool=o.pool,
                             resize=o.resize, batch_size=o.batch_size, device=o.device, progress=o.progress,
                             executor=executor, shard_size=shard_size)
            entries.update({s.key: s.entry_id for s in result.specs})
            keys_by_spec = dict(result.layer_keys)
    else:
        cache_obj = source if isinstance(source, FeatureCache) else FeatureCache(source)
        keys_by_spec = layer_keys(layer_specs, cache_obj)
    if not as_executor(executor).is_local:  # workers open the cache by the path given here
        cache_obj = FeatureCache(Path(cache_obj.path).absolute())
    sets, infos = resolve_feature_sets(tokens[:len(o.features)], o.fuse, cache=cache_obj, entries=entries,
                                       layer_keys=keys_by_spec, late_fusion=o.late_fusion, match=match)

    keep = labels >= 0
    present = np.unique(labels[keep])
    if pos is None:  # three or more classes, none named positive: every class is predicted
        classes = [names[i] for i in present]
        y = np.asarray(names, dtype=object)[labels[keep]]
        one_vs_rest = None
    else:
        classes = None
        if present.size > 2:
            warnings.warn(f"{present.size} classes: evaluating {pos!r} against all the others (one-vs-rest, "
                          "as --positive asks; without it the evaluation is multi-class)", UserWarning,
                          stacklevel=3)
        y = (labels[keep] == names.index(pos)).astype(np.int64)
        one_vs_rest = [names[i] for i in present] if present.size > 2 else None
    X = ids[keep]
    g = None if groups is None else np.asarray(groups)[keep]
    sl = None if split is None else np.asarray(split)[keep]

    pipelines, meta = {}, {}
    for fs in sets:
        for cname in names_clf:
            key = f"{fs.name} | {cname}"
            pipelines[key] = build_pipeline(fs, cname, cache_obj, class_weight=o.class_weight,
                                            oversample=o.oversample, search=o.search, inner_cv=o.inner_cv,
                                            seed=o.seed, reduce=o.reduce, block_weight=o.block_weight,
                                            n_classes=len(classes) if classes else 2)
            meta[key] = {"feature_set": fs.name, "classifier": cname, **fs.meta()}
    ev = cross_validate(pipelines, X, y, g, o.cv, None if classes else 1, seed=o.seed, split_labels=sl,
                        youden=o.youden, youden_cv=o.youden_cv, n_boot=o.n_boot, confidence=o.confidence,
                        meta=meta, select=o.select, select_by=o.select_by, ordered=o.ordered, classes=classes,
                        n_jobs=o.n_jobs, progress=o.progress, command=command, executor=executor)
    counts = {c: int(np.sum(labels[keep] == i)) for i, c in enumerate(names)}
    ev.provenance.update({
        "dataset": {**info, "n": int(keep.sum()), "counts": counts},
        "positive": pos,
        **({"one_vs_rest": one_vs_rest} if one_vs_rest else {}),
        "cache": str(cache_obj.path),
        "entries": list(infos.values()),
        "feature_sets": [{"name": s.name, "blocks": [k for k, _ in s.blocks], "fusion": s.fusion} for s in sets],
        "classifiers": names_clf,
    })
    ev.provenance["options"].update({
        "class_weight": o.class_weight, "oversample": o.oversample, "search": o.search, "inner_cv": o.inner_cv,
        "late_fusion": o.late_fusion, "reduce": o.reduce, "block_weight": o.block_weight,
        "extraction": ({"weights": w.tag, "size": o.size, "pool": o.pool, "resize": o.resize}
                       if _is_dataset(source) else None),
    })
    if o.out is not None:
        ev.save(o.out, overwrite=o.overwrite)
    return ev


def _signature():
    """evaluate_features' signature as help() and IDEs show it, its options read from featurekit.options."""
    from featurekit.options import EVALUATE

    return EVALUATE.api_signature(["source"], POSITIONAL,
                                  ["positive", "match", "entries", "command", "executor", "shard_size"])


evaluate_features.__signature__ = _signature()  # type: ignore[attr-defined]


def run_demo_evaluation(dataset, extraction_result, out_dir, progress: bool = True, *,
                        classifier: str = "logreg", cv: str = "5x3", n_boot: int = 1000,
                        overwrite: bool = False) -> Path:
    """Evaluate the demo's cached features and write the run folder and report.

    Every cached key is evaluated with a fast classifier (L2 logistic regression
    behind a standard scaler, stratified 5-fold CV repeated 3 times); then the
    best CNN layer (highest pooled out-of-fold ROC AUC) is fused with Gabor features ("V+Gabor")
    and evaluated on the same folds. Returns the path of ``report.html``.
    """
    from featurekit.evaluation.estimators.featuresets import depth_order
    from featurekit.evaluation.results.crossval import command_line, merge_evaluations
    from featurekit.evaluation.stats.delong import NestedModelWarning
    from featurekit.report.build import build_report

    out_dir = Path(out_dir)
    specs = list(extraction_result.specs)
    entries = {s.key: s.entry_id for s in specs}
    keys = depth_order(specs)  # handcrafted first, then each model's layers by depth
    cache = extraction_result.cache
    common = dict(classifiers=[classifier], cv=cv, cache=cache, entries=entries, positive=dataset.positive,
                  seed=0, n_boot=n_boot, progress=progress, command=command_line())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NestedModelWarning)  # recorded in comparisons.csv and the report
        first = evaluate_features(cache, keys, **common)
        deep = first.results[first.results["kind"] == "deep"]
        ev = first
        hand = [k for k in ("gabor", "glcm", "haar") if k in entries]
        if not deep.empty and hand:
            best = deep.loc[deep["roc_auc_pooled"].astype(float).idxmax(), "feature_set"]
            second = evaluate_features(cache, [], fuse=[str(FusionSpec.of([best, hand[0]]))], **common)
            ev = merge_evaluations(first, second)
    ev.provenance["dataset"] = {**ev.provenance.get("dataset", {}), "name": dataset.name,
                                "source": str(dataset.source), "roi": getattr(dataset, "roi", None)}
    ev.provenance["demo"] = True
    ev.save(out_dir, overwrite=overwrite)
    return build_report([out_dir], out=out_dir / "report.html")
