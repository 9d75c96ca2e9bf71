"""Evaluate feature sets and pipelines with cross-validation; write run folders.

Python API
----------
:func:`evaluate_pipelines`
    ``{name: estimator}`` (e.g. ``Pipeline(CachedFeatures -> scaler -> classifier)``),
    sample ids (or any ``X``), labels, optional groups, a CV protocol and the
    positive class -> :class:`Evaluation` (``results, predictions = evaluation``).
:func:`evaluate_features`
    A :class:`~featurekit.data.Dataset` (features missing from the cache are
    extracted first with :func:`featurekit.extraction.pipeline.extract`) or a
    feature cache, feature-set specs (``"gabor"``, ``"vgg16:8-17"``,
    ``"mobilenet_v2/features.14"``, ``"all"``), fusion specs
    (``"vgg16:block5_conv3+gabor"``) and classifier names -> :class:`Evaluation`,
    written to a run folder when ``out`` is given.
:func:`run_demo_evaluation`
    What ``featurekit demo`` runs after extraction.

No leakage
----------
Every pipeline is cloned and fitted on the training indices of each outer fold
only: scalers, PCA / feature selection, oversampling, class weights, the
hyper-parameter search (inner stratified CV, grouped when the data have
groups) and the Youden threshold are all learnt from training data. The
Youden threshold of a fold is chosen (``youden="inner"``, default) on
out-of-fold scores of an inner ``youden_cv``-fold CV of the training part
(same hyper-parameters; grouped when there are groups), so an overfitting
classifier does not choose it on its own resubstitution scores; ``"train"``
uses the resubstitution scores of the fold's model (cheaper); with a
predefined split holding a ``val`` part it is chosen on ``val``. The same
folds are used for every pipeline, so their predictions are paired.

Run folder contract (format version 1; ``featurekit finetune`` writes the same)
-------------------------------------------------------------------------------
A run folder ``runs/NAME/`` holds (write it with
:func:`featurekit.evaluation.runfolder.write_run`, read it with
:func:`~featurekit.evaluation.runfolder.read_run`):

``results.csv`` and ``results.json`` (the same rows; JSON: a list of row objects, NaN as null)
    One row per (``feature_set``, ``classifier``). Columns:

    * ``feature_set`` (``gabor``, ``mobilenet_v2/features.14``,
      ``vgg16/block5_conv3+gabor``, ``vote(a+b)``, a fine-tuned model's name),
      ``classifier`` (``svm``, ``logreg``..., ``finetuned`` for end-to-end nets);
    * ``kind`` in {``handcrafted``, ``deep``, ``fused``, ``finetuned``};
      ``model``, ``layer``, ``layer_index`` (CNN rows: the model name, canonical
      layer name and table index; fused rows: those of their CNN part; empty /
      NaN otherwise); ``fusion`` in {``""``, ``early``, ``vote``, ``stack``};
      ``parts`` (``a+b``: the feature sets fused; the set itself otherwise);
    * ``n``, ``n_pos``, ``n_neg`` (distinct samples predicted), ``n_repeats``,
      ``n_folds``, ``protocol`` (e.g. ``stratified 5-fold x3``);
    * for every metric ``m`` in accuracy, balanced_accuracy, precision, npv,
      sensitivity, specificity, f1, mcc, youden_index, roc_auc, pr_auc:
      ``m`` (mean over test folds of all repeats, at threshold 0.5),
      ``m_sd``, ``m_ci_lo``, ``m_ci_hi`` (95% stratified-bootstrap interval of
      the pooled out-of-fold predictions, pooled per repeat), ``m_pooled``
      (the metric of the pooled predictions, averaged over repeats);
    * for every threshold metric, the same five columns ``m_youden...`` at the
      Youden threshold chosen on each fold's training data;
    * ``threshold_youden``, ``threshold_youden_sd``; optional extras (``seconds``).

    The statistics are defined in :mod:`featurekit.evaluation.summary`;
    :func:`~featurekit.evaluation.summary.summarise_predictions` computes them
    from ``predictions.csv`` alone.
``predictions.csv``
    Out-of-fold predictions, one row per (sample, feature_set, classifier,
    repeat): ``id``, ``y_true`` (1 = positive class, 0 = other), ``feature_set``,
    ``classifier``, ``repeat``, ``fold`` (0-based), ``score`` (probability of the
    positive class), ``threshold`` (the Youden threshold fitted on that fold's
    training data). Any metric can be recomputed from it.
``provenance.json``
    ``dataset`` (name, source, fingerprint, n, class_names, counts per class
    of the evaluated samples, roi), ``positive`` (class name), ``entries`` (per
    cache entry used: key, entry_id, family, model, layer, weights,
    weights_sha256, input_size, pool), ``cache`` (path), ``cv`` (the spec),
    ``protocol`` (text), ``grouped``, ``seed``, ``classifiers``, ``options``
    (class_weight, oversample, search, late_fusion, youden, n_boot...),
    ``command`` (command line), ``created`` (UTC ISO time), ``versions``
    (featurekit, python, numpy, scipy, scikit-learn, pandas, torch, torchvision,
    xgboost, h5py), ``format`` (``{"name": "featurekit-run", "version": 1}``).
``comparisons.csv`` (optional)
    Paired DeLong tests of all pairs of rows (see
    :mod:`featurekit.evaluation.comparison`).
``training_curves.csv`` (optional, fine-tuning runs)
    ``epoch, split, loss, metric, fold``; plotted by ``featurekit report``.
"""

from __future__ import annotations

import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils import _safe_indexing

from featurekit.errors import DataError
from featurekit.evaluation.classifiers import (
    make_classifier,
    make_pipeline_for,
    positive_scores,
    resolve_classifier,
    search_grid,
    with_search,
)
from featurekit.evaluation.comparison import compare_aucs
from featurekit.evaluation.delong import NestedModelWarning
from featurekit.evaluation.features import CachedFeatures
from featurekit.evaluation.fusion import LateFusionClassifier, early_fusion_pipeline, fit_accepts_groups
from featurekit.evaluation.metrics import binarize_labels, youden_threshold
from featurekit.evaluation.protocols import HoldoutCV, PredefinedSplitCV, StratifiedKFoldCV, inner_splits, parse_cv
from featurekit.evaluation.runfolder import now, versions, write_run
from featurekit.evaluation.summary import summarise_predictions

__all__ = [
    "Evaluation",
    "FeatureSet",
    "evaluate_pipelines",
    "evaluate_features",
    "resolve_feature_sets",
    "describe_protocol",
    "run_demo_evaluation",
    "HANDCRAFTED",
]

#: handcrafted families known by name (extracted through featurekit.handcrafted)
HANDCRAFTED = ("gabor", "glcm", "haar")


# ---------------------------------------------------------------------------
# results container
# ---------------------------------------------------------------------------


@dataclass
class Evaluation:
    """What an evaluation produced; unpacks as ``results, predictions``.

    Attributes
    ----------
    results : DataFrame
        One row per (feature_set, classifier); see the module docstring.
    predictions : DataFrame
        Out-of-fold predictions (``predictions.csv`` columns).
    folds : list of Fold
        The outer folds (shared by every pipeline).
    comparisons : DataFrame or None
        Paired DeLong tests of all pairs of rows.
    provenance : dict
    meta : dict
        ``(feature_set, classifier) -> row metadata`` (kind, model, layer...).
    estimators : dict or None
        ``(feature_set, classifier, repeat, fold) -> fitted estimator`` when asked for.
    """

    results: pd.DataFrame
    predictions: pd.DataFrame
    folds: list = field(default_factory=list)
    comparisons: pd.DataFrame | None = None
    provenance: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    estimators: dict | None = None

    def __iter__(self):
        yield self.results
        yield self.predictions

    def save(self, out: str | Path) -> Path:
        """Write the run folder ``out`` (see the module docstring)."""
        return write_run(out, self.results, self.predictions, self.provenance,
                         comparisons=self.comparisons)

    def best(self, metric: str = "roc_auc", kind: str | None = None) -> pd.Series:
        """The row with the highest ``metric`` (optionally among one ``kind``)."""
        df = self.results if kind is None else self.results[self.results["kind"] == kind]
        if df.empty:
            raise DataError(f"no {kind or ''} rows to choose from")
        return df.loc[df[metric].astype(float).idxmax()]


# ---------------------------------------------------------------------------
# protocol helpers
# ---------------------------------------------------------------------------


def describe_protocol(splitter: Any, grouped: bool = False) -> str:
    """Human-readable protocol, e.g. ``stratified 5-fold x3 (grouped)``."""
    g = " (grouped)" if grouped else ""
    if isinstance(splitter, StratifiedKFoldCV):
        reps = f" x{splitter.n_repeats}" if int(splitter.n_repeats) > 1 else ""
        return f"stratified {splitter.n_splits}-fold{reps}{g}"
    if isinstance(splitter, HoldoutCV):
        return f"stratified holdout {splitter.test_size:g} x{splitter.n_repeats}{g}"
    if isinstance(splitter, PredefinedSplitCV):
        return f"predefined split{' (val merged)' if splitter.merge_val else ''}{g}"
    return repr(splitter) + g


def _fit(est: Any, X, y: np.ndarray, groups: np.ndarray | None):
    if groups is not None and fit_accepts_groups(est):
        return est.fit(X, y, groups=groups)
    return est.fit(X, y)


def _unfitted_twin(fitted: Any, template: Any) -> Any:
    """An unfitted copy of the fold's model with the hyper-parameters it ended up with."""
    if isinstance(fitted, GridSearchCV):
        return clone(template.estimator).set_params(**fitted.best_params_)
    return clone(template)


def inner_oof_scores(template: Any, X, y: np.ndarray, groups: np.ndarray | None, k: int = 3,
                     seed: int = 0) -> np.ndarray | None:
    """Out-of-fold positive-class scores of an inner k-fold CV of (training) data.

    Returns None when a class has fewer than 2 samples (or groups).
    """
    splits = inner_splits(y, groups, k, seed)
    if splits is None:
        return None
    scores = np.empty(y.shape[0], dtype=np.float64)
    for tr, te in splits:
        m = _fit(clone(template), _safe_indexing(X, tr), y[tr], None if groups is None else groups[tr])
        scores[te] = positive_scores(m, _safe_indexing(X, te), 1)
    return scores


def _fold_threshold(fitted, template, X, y, groups, fold, mode: str, k: int, seed: int) -> float:
    tr = fold.train_idx
    val = getattr(fold, "val_idx", None)
    if val is not None and len(val) and np.unique(y[val]).size == 2:
        return youden_threshold(y[val], positive_scores(fitted, _safe_indexing(X, val), 1))
    X_tr, y_tr = _safe_indexing(X, tr), y[tr]
    g_tr = None if groups is None else groups[tr]
    scores = None
    if mode == "inner":
        scores = inner_oof_scores(_unfitted_twin(fitted, template), X_tr, y_tr, g_tr, k, seed)
        if scores is None:
            warnings.warn("too few training samples per class for an inner CV; the Youden threshold "
                          "of this fold uses resubstitution scores", UserWarning, stacklevel=3)
    elif mode != "train":
        raise DataError(f"youden must be 'inner' or 'train', got {mode!r}")
    if scores is None:
        scores = positive_scores(fitted, X_tr, 1)
    return youden_threshold(y_tr, scores)


def _run_fold(name, template, X, y, groups, fold, youden, youden_cv, seed, keep):
    t0 = time.perf_counter()
    tr, te = fold.train_idx, fold.test_idx
    model = _fit(clone(template), _safe_indexing(X, tr), y[tr], None if groups is None else groups[tr])
    scores = positive_scores(model, _safe_indexing(X, te), 1)
    thr = _fold_threshold(model, template, X, y, groups, fold, youden, youden_cv, seed)
    return {"name": name, "repeat": fold.repeat, "fold": fold.fold, "test_idx": np.asarray(te),
            "score": scores, "threshold": float(thr), "seconds": time.perf_counter() - t0,
            "estimator": model if keep else None}


def _default_meta(name: str, est: Any) -> dict:
    last = est.steps[-1][1] if hasattr(est, "steps") else est
    while hasattr(last, "estimator") and not isinstance(last, LateFusionClassifier):
        last = last.estimator
        if hasattr(last, "steps"):
            last = last.steps[-1][1]
    return {"feature_set": name, "classifier": type(last).__name__, "kind": ""}


# ---------------------------------------------------------------------------
# evaluate_pipelines
# ---------------------------------------------------------------------------


def evaluate_pipelines(pipelines: Mapping[str, Any], X_ids: Any, y: Any, groups: Any = None,
                       cv: Any = "5", positive: Any = 1, *, seed: int = 0, split_labels: Any = None,
                       ids: Sequence[str] | None = None, youden: str = "inner", youden_cv: int = 3,
                       n_boot: int = 2000, confidence: float = 0.95, meta: Mapping[str, dict] | None = None,
                       n_jobs: int | None = 1, keep_estimators: bool = False, compare: bool = True,
                       progress: bool = False) -> Evaluation:
    """Cross-validate several estimators on the same folds.

    Parameters
    ----------
    pipelines : dict of str to estimator
        Unfitted classifiers/pipelines; each is cloned per fold. A pipeline
        starting with :class:`CachedFeatures` takes sample ids as ``X``.
    X_ids : array-like
        Sample ids (shape (n,) or (n, 1)) or any ``X`` the estimators accept.
    y : array-like of shape (n,)
        Labels (any type); binarised with ``positive`` (1 = positive).
    groups : array-like of shape (n,), optional
        Patient ids: grouped splitting (outer and inner CVs).
    cv : str, int or splitter
        ``"5"``, ``"5x3"``, ``"holdout:0.3x30"``, ``"predefined"`` (with
        ``split_labels``), or a splitter of :mod:`featurekit.evaluation.protocols`.
    positive : label, default=1
        The positive class of ``y``.
    seed : int
        Seed of the protocol, the inner CVs and the bootstrap.
    ids : sequence of str, optional
        Ids written in the predictions (default: ``X_ids`` when it is 1-D, else ``0..n-1``).
    youden : {"inner", "train"}; youden_cv : int
        How the per-fold Youden threshold is chosen on training data (module docstring).
    n_boot, confidence : bootstrap of the pooled out-of-fold predictions.
    meta : dict, optional
        ``name -> {feature_set, classifier, kind, model, layer, layer_index, fusion, parts}``
        (defaults: ``feature_set=name``, ``classifier`` = the final estimator's class).
    n_jobs : int
        Parallel fold fits (joblib); 1 = sequential.
    keep_estimators : bool
        Keep every fitted fold model in :attr:`Evaluation.estimators`.
    compare : bool
        Run the paired DeLong comparisons.
    progress : bool

    Returns
    -------
    Evaluation
        ``results, predictions = evaluate_pipelines(...)`` also works.
    """
    if not pipelines:
        raise DataError("no pipelines to evaluate")
    y_arr = np.asarray(y)
    y01 = binarize_labels(y_arr, positive).astype(np.int64)
    if np.unique(y01).size < 2:
        raise DataError(f"the labels hold a single class with positive={positive!r}")
    X = X_ids
    if isinstance(X, (list, tuple)):
        X = np.asarray(X, dtype=object)
    n = y01.shape[0]
    if (X.shape[0] if hasattr(X, "shape") else len(X)) != n:
        raise DataError(f"X has {len(X)} samples but y has {n}")
    if ids is None:
        arr = np.asarray(X, dtype=object) if not hasattr(X, "iloc") else None
        if arr is not None and (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)):
            ids = [str(v) for v in arr.reshape(-1)]
        else:
            ids = [str(i) for i in range(n)]
    ids = np.asarray([str(i) for i in ids], dtype=object)
    if len(set(ids)) != n:
        raise DataError("sample ids must be unique")
    g = None if groups is None else np.asarray([str(v) for v in np.asarray(groups)], dtype=object)
    if split_labels is not None and isinstance(cv, str) and cv.strip().lower() == "predefined":
        splitter = parse_cv(cv, random_state=seed, split_labels=split_labels)
    else:
        splitter = parse_cv(cv, random_state=seed)
    folds = list(splitter.iter_folds(np.zeros((n, 1)), y01, g))
    protocol = describe_protocol(splitter, g is not None)

    metas: dict[str, dict] = {}
    for name, est in pipelines.items():
        m = {**_default_meta(name, est), **dict((meta or {}).get(name, {}))}
        metas[name] = m
    keys = [(m["feature_set"], m["classifier"]) for m in metas.values()]
    if len(set(keys)) != len(keys):
        raise DataError(f"two pipelines share a (feature_set, classifier) row: {keys}")

    tasks = [(name, est, fold) for name, est in pipelines.items() for fold in folds]
    run = lambda t: _run_fold(t[0], t[1], X, y01, g, t[2], youden, youden_cv, seed, keep_estimators)  # noqa: E731
    if n_jobs is not None and n_jobs != 1 and len(tasks) > 1:
        from joblib import Parallel, delayed

        outs = Parallel(n_jobs=n_jobs)(
            delayed(_run_fold)(t[0], t[1], X, y01, g, t[2], youden, youden_cv, seed, keep_estimators)
            for t in tasks)
    else:
        from tqdm.auto import tqdm

        outs = [run(t) for t in tqdm(tasks, desc="cross-validation", unit="fit", disable=not progress,
                                      dynamic_ncols=True)]

    frames, seconds, estimators = [], {}, {}
    for o in outs:
        m = metas[o["name"]]
        te = o["test_idx"]
        frames.append(pd.DataFrame({
            "id": ids[te], "y_true": y01[te], "feature_set": m["feature_set"],
            "classifier": m["classifier"], "repeat": o["repeat"], "fold": o["fold"],
            "score": o["score"], "threshold": o["threshold"],
        }))
        key = (m["feature_set"], m["classifier"])
        seconds[key] = seconds.get(key, 0.0) + o["seconds"]
        if keep_estimators:
            estimators[key + (o["repeat"], o["fold"])] = o["estimator"]
    predictions = pd.concat(frames, ignore_index=True)
    row_meta = {}
    for m in metas.values():
        key = (m["feature_set"], m["classifier"])
        row_meta[key] = {k: v for k, v in m.items() if k not in ("feature_set", "classifier")}
        row_meta[key]["seconds"] = round(seconds.get(key, 0.0), 3)
    results = summarise_predictions(predictions, row_meta, protocol=protocol, n_boot=n_boot,
                                    confidence=confidence, seed=seed)
    comparisons = None
    if compare and len(keys) > 1:
        parts = {k: v.get("parts") for k, v in row_meta.items()}
        comparisons = compare_aucs(predictions, parts=parts, confidence=confidence)
    counts = {"n": int(n), "n_pos": int(y01.sum()), "n_neg": int(n - y01.sum())}
    provenance = {
        "protocol": protocol, "cv": cv if isinstance(cv, (str, int)) else repr(cv), "grouped": g is not None,
        "seed": seed, "positive": positive if isinstance(positive, (str, int, float)) else str(positive),
        "samples": counts,
        "options": {"youden": youden, "youden_cv": youden_cv, "n_boot": n_boot, "confidence": confidence},
        "pipelines": {name: repr(est) for name, est in pipelines.items()},
        "created": now(), "versions": versions(),
    }
    return Evaluation(results, predictions, folds, comparisons, provenance, row_meta,
                      estimators if keep_estimators else None)


# ---------------------------------------------------------------------------
# feature sets
# ---------------------------------------------------------------------------


@dataclass
class FeatureSet:
    """A named feature set: one or several cache entries (``blocks``) and how they combine.

    ``fusion``: ``""`` (one entry), ``"early"`` (concatenation, blocks scaled in
    the fold), ``"vote"`` / ``"stack"`` (late fusion of per-block classifiers).
    """

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


def _handcrafted_families() -> tuple[str, ...]:
    try:
        from featurekit import handcrafted

        return tuple(dict.fromkeys(HANDCRAFTED + tuple(getattr(handcrafted, "FAMILIES", {}))))
    except Exception:  # pragma: no cover
        return HANDCRAFTED


def _handcrafted_item(family: str):
    """``family`` for :func:`extract`, or ``(family, transformer)`` when the package has no FAMILIES table."""
    from featurekit import handcrafted

    if family in getattr(handcrafted, "FAMILIES", {}):
        return family
    classes = {"gabor": "GaborFeatures", "glcm": "GLCMFeatures", "haar": "HaarFeatures"}
    cls = getattr(handcrafted, classes.get(family, ""), None)
    return (family, cls()) if cls is not None else family


def _token_keys(token: str, available: Sequence[str]) -> list[str]:
    """Cache keys a feature token stands for."""
    from featurekit.models import resolve_spec

    token = token.strip()
    if not token:
        raise DataError("empty feature-set name")
    if token == "all":
        return list(available)
    if ":" in token:
        model, layers, _ = resolve_spec(token)
        return [f"{model}/{layer.name}" for layer in layers]
    return [token]


def _entry_meta(entry) -> dict:
    a = entry.attrs
    p = entry.params
    get = lambda k, d="": p.get(k, a.get(k, d))  # noqa: E731
    return {"key": entry.key, "entry_id": entry.entry_id, "family": str(get("family")),
            "model": str(get("model")), "layer": str(get("layer")),
            "layer_index": get("layer_index", None), "weights": str(get("weights")),
            # attrs hold the hash of what was built (random init included); params may leave it out
            "weights_sha256": str(a.get("weights_sha256") or p.get("weights_sha256") or ""),
            "input_size": get("input_size", None),
            "pool": str(get("pool")), "estimator": str(get("estimator")), "shape": list(entry.shape)}


def resolve_feature_sets(features: Sequence[str], fuse: Sequence[str] = (), *, cache, entries: Mapping[str, str] | None = None,
                         late_fusion: str | None = None, match: Mapping[str, Any] | None = None) -> tuple[list[FeatureSet], dict]:
    """Turn feature and fusion specs into :class:`FeatureSet` s of cache entries.

    Parameters
    ----------
    features : list of str
        ``"gabor"``, ``"vgg16:8-17"`` (one set per layer), ``"vgg16/block5_conv3"``
        (a cache key) or ``"all"`` (every key of the cache).
    fuse : list of str
        ``"A+B[+C]"``, each part a feature token (a multi-layer part adds every layer as a block).
    cache : FeatureCache
    entries : dict, optional
        ``key -> entry_id`` to use (e.g. from an extraction); other keys must
        have exactly one entry matching ``match``.
    late_fusion : {None, "vote", "stack"}
        Also add a late-fusion set for every fusion spec.
    match : dict, optional
        Entry parameters for keys not in ``entries``.

    Returns
    -------
    (list of FeatureSet, dict of key -> entry metadata)
    """
    from featurekit.cache import FeatureCache

    cache = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)
    entries = dict(entries or {})
    available = cache.keys()
    infos: dict[str, dict] = {}

    def block(key: str) -> tuple[str, str]:
        if key not in infos:
            if key in entries:
                entry = cache._entry(key, entries[key], {})
            else:
                entry = cache.find(key, **dict(match or {}))
            infos[key] = _entry_meta(entry)
        return key, infos[key]["entry_id"]

    def single(key: str) -> FeatureSet:
        k, eid = block(key)
        info = infos[k]
        if info["family"] == "cnn" or "/" in k:
            li = info["layer_index"]
            return FeatureSet(k, [(k, eid)], "deep", info["model"], info["layer"],
                              float(li) if li is not None else float("nan"))
        return FeatureSet(k, [(k, eid)], "handcrafted")

    sets: list[FeatureSet] = []
    seen: set = set()
    for token in features:
        for key in _token_keys(token, available):
            if key not in seen:
                seen.add(key)
                sets.append(single(key))
    if late_fusion not in (None, "", "none", "vote", "stack"):
        raise DataError(f"late fusion must be 'vote' or 'stack', got {late_fusion!r}")
    for spec in fuse:
        parts = [p for p in spec.split("+")]
        keys: list[str] = []
        for part in parts:
            keys += [k for k in _token_keys(part, available) if k not in keys]
        if len(keys) < 2:
            raise DataError(f"fusion {spec!r} needs at least two feature sets (got {keys})")
        members = [single(k) for k in keys]
        deep = next((m for m in members if m.kind == "deep"), None)
        name = "+".join(keys)
        common = dict(kind="fused", model=deep.model if deep else "", layer=deep.layer if deep else "",
                      layer_index=deep.layer_index if deep else float("nan"), parts=name)
        blocks = [m.blocks[0] for m in members]
        sets.append(FeatureSet(name, blocks, fusion="early", **common))
        if late_fusion in ("vote", "stack"):
            sets.append(FeatureSet(f"{late_fusion}({name})", blocks, fusion=late_fusion, **common))
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise DataError(f"feature sets repeat: {names}")
    if not sets:
        raise DataError("no feature sets to evaluate")
    return sets, infos


def build_pipeline(fs: FeatureSet, classifier: str, cache, *, class_weight=None, oversample=False,
                   search=False, inner_cv=3, seed=0, reduce=None, block_weight=None) -> Any:
    """The unfitted estimator of one (feature set, classifier) row."""
    def clf():
        return make_classifier(classifier, class_weight=class_weight, oversample=oversample, random_state=seed)

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


# ---------------------------------------------------------------------------
# evaluate_features
# ---------------------------------------------------------------------------


def _is_dataset(obj) -> bool:
    return hasattr(obj, "fingerprint") and hasattr(obj, "image") and hasattr(obj, "class_names")


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
    if pos is None:
        if len(names) == 2:
            raise DataError(f"name the positive class (classes: {names}), e.g. positive='{names[-1]}'")
        raise DataError(f"name the positive class among {names}")
    if str(pos) not in names:
        raise DataError(f"positive class {pos!r} is not one of {names}")
    return ids, labels, names, str(pos), groups, split, info


def evaluate_features(source: Any, features: Sequence[str], classifiers: Sequence[str] = ("svm",),
                      cv: Any = "5", *, fuse: Sequence[str] = (), late_fusion: str | None = None,
                      positive: str | None = None, cache: Any = None, match: Mapping[str, Any] | None = None,
                      entries: Mapping[str, str] | None = None,
                      weights: str = "imagenet", size: int | None = None, pool: str = "gap", mode: str = "crop",
                      batch_size: int = 16, device: str = "auto", seed: int = 0, class_weight: str | None = None,
                      oversample: bool = False, search: bool = False, inner_cv: int = 3,
                      reduce: str | None = None, block_weight: str | None = None, youden: str = "inner",
                      youden_cv: int = 3, n_boot: int = 2000, confidence: float = 0.95, n_jobs: int | None = 1,
                      out: str | Path | None = None, command: str | None = None,
                      progress: bool = False) -> Evaluation:
    """Evaluate cached feature sets (and their fusions) with each classifier.

    Parameters
    ----------
    source : Dataset, FeatureCache or path of a cache file
        With a Dataset, the layer specs and handcrafted families named are
        extracted first (:func:`~featurekit.extraction.pipeline.extract`
        computes only what the cache lacks). With a cache, everything must be
        in it already.
    features : list of str
        ``"gabor"``, ``"glcm"``, ``"haar"``, ``"vgg16:8-17"``, a cache key
        (``"mobilenet_v2/features.14"``) or ``"all"``.
    classifiers : list of str
        Names of :data:`~featurekit.evaluation.classifiers.CLASSIFIERS`.
    cv : str
        ``"5"``, ``"5x3"``, ``"holdout:0.3x30"``, ``"predefined"`` (the dataset's split column).
    fuse : list of str
        Early fusions, ``"vgg16:block5_conv3+gabor"``.
    late_fusion : {None, "vote", "stack"}
        Also evaluate a late fusion of each ``fuse`` combination.
    positive : str
        Positive class name (default: the dataset's / cache's). Other classes are
        the negative class ("positive vs rest" when there are more than two).
    cache : path, optional
        Cache file (default ``cache/<dataset>-<fingerprint12>.h5`` for a Dataset).
    match, entries : see :func:`resolve_feature_sets`.
    weights, size, pool, mode, batch_size, device : extraction options.
    seed : int
        Seed of the protocol, classifiers, inner CVs and bootstrap.
    class_weight : {None, "balanced"}; oversample : bool
        Class-imbalance handling inside the training folds.
    search : bool; inner_cv : int
        Grid search of the classifier's grid nested in each outer fold.
    reduce : {None, "pca", "select"}; block_weight : {None, "equal"}
        Early-fusion options (see :mod:`featurekit.evaluation.fusion`).
    youden, youden_cv, n_boot, confidence, n_jobs, progress : see :func:`evaluate_pipelines`.
    out : path, optional
        Write the run folder there.
    command : str, optional
        Command line for the provenance (default ``sys.argv``).

    Returns
    -------
    Evaluation
    """
    from featurekit.cache import FeatureCache, default_cache_path

    if not features and not fuse:
        raise DataError("name feature sets to evaluate (e.g. features=['gabor', 'vgg16:8-17'])")
    if not classifiers:
        raise DataError("name at least one classifier")
    for c in classifiers:
        resolve_classifier(c)
    ids, labels, names, pos, groups, split, info = _samples(source, positive)
    entries = dict(entries or {})
    if _is_dataset(source):
        cache_obj = FeatureCache(cache) if cache is not None and not isinstance(cache, FeatureCache) else cache
        cache_obj = cache_obj or FeatureCache(default_cache_path(source))
        tokens = list(features) + [p for spec in fuse for p in spec.split("+")]
        families = _handcrafted_families()
        layer_specs = list(dict.fromkeys(t.strip() for t in tokens if ":" in t))
        hand = list(dict.fromkeys(t.strip() for t in tokens if t.strip() in families))
        if layer_specs or hand:
            from featurekit.extraction.pipeline import extract

            hand = [_handcrafted_item(h) for h in hand]

            result = extract(source, layer_specs, hand, cache=cache_obj, weights=weights, size=size, pool=pool,
                             mode=mode, batch_size=batch_size, device=device, seed=seed, progress=progress)
            entries.update({s.key: s.entry_id for s in result.specs})
    else:
        cache_obj = source if isinstance(source, FeatureCache) else FeatureCache(source)
    sets, infos = resolve_feature_sets(features, fuse, cache=cache_obj, entries=entries,
                                       late_fusion=late_fusion, match=match)

    keep = labels >= 0
    pos_idx = names.index(pos)
    present = np.unique(labels[keep])
    if present.size > 2:
        warnings.warn(f"{present.size} classes: evaluating {pos!r} against all the others", UserWarning,
                      stacklevel=2)
    y = (labels[keep] == pos_idx).astype(np.int64)
    X = ids[keep]
    g = None if groups is None else np.asarray(groups)[keep]
    sl = None if split is None else np.asarray(split)[keep]

    pipelines, meta = {}, {}
    for fs in sets:
        for clf_name in classifiers:
            cname = resolve_classifier(clf_name).name
            key = f"{fs.name} | {cname}"
            pipelines[key] = build_pipeline(fs, cname, cache_obj, class_weight=class_weight,
                                            oversample=oversample, search=search, inner_cv=inner_cv, seed=seed,
                                            reduce=reduce, block_weight=block_weight)
            meta[key] = {"feature_set": fs.name, "classifier": cname, **fs.meta()}
    ev = evaluate_pipelines(pipelines, X, y, g, cv, 1, seed=seed, split_labels=sl, youden=youden,
                            youden_cv=youden_cv, n_boot=n_boot, confidence=confidence, meta=meta,
                            n_jobs=n_jobs, progress=progress)
    counts = {c: int(np.sum(labels[keep] == i)) for i, c in enumerate(names)}
    ev.provenance.update({
        "dataset": {**info, "n": int(keep.sum()), "counts": counts},
        "positive": pos,
        "cache": str(cache_obj.path),
        "entries": list(infos.values()),
        "feature_sets": [{"name": s.name, "blocks": [k for k, _ in s.blocks], "fusion": s.fusion} for s in sets],
        "classifiers": [resolve_classifier(c).name for c in classifiers],
        "command": command if command is not None else " ".join(shlex.quote(a) for a in sys.argv),
    })
    ev.provenance["cv"] = cv if isinstance(cv, (str, int)) else repr(cv)
    ev.provenance["options"].update({
        "class_weight": class_weight, "oversample": oversample, "search": search, "inner_cv": inner_cv,
        "late_fusion": late_fusion, "reduce": reduce, "block_weight": block_weight,
        "extraction": {"weights": weights, "size": size, "pool": pool, "mode": mode} if _is_dataset(source) else None,
    })
    ev.provenance.pop("pipelines", None)
    ev.provenance["pipelines"] = {k: repr(v) for k, v in pipelines.items()}
    if out is not None:
        ev.save(out)
    return ev


def merge_evaluations(a: Evaluation, b: Evaluation, *, confidence: float = 0.95) -> Evaluation:
    """Rows of two evaluations on the same samples and folds, comparisons recomputed."""
    results = pd.concat([a.results, b.results], ignore_index=True)
    predictions = pd.concat([a.predictions, b.predictions], ignore_index=True)
    meta = {**a.meta, **b.meta}
    parts = {k: v.get("parts") for k, v in meta.items()}
    comparisons = compare_aucs(predictions, parts=parts, confidence=confidence)
    prov = dict(a.provenance)
    for k in ("entries", "feature_sets"):
        if k in b.provenance:
            seen = {repr(x) for x in prov.get(k, [])}
            prov[k] = list(prov.get(k, [])) + [x for x in b.provenance[k] if repr(x) not in seen]
    prov["pipelines"] = {**a.provenance.get("pipelines", {}), **b.provenance.get("pipelines", {})}
    return Evaluation(results, predictions, a.folds, comparisons, prov, meta, None)


# ---------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------


def run_demo_evaluation(dataset, extraction_result, out_dir, progress: bool = True, *,
                        classifier: str = "logreg", cv: str = "5x3", n_boot: int = 1000) -> Path:
    """Evaluate the demo's cached features and write the run folder and report.

    Every cached key is evaluated with a fast classifier (L2 logistic regression
    behind a standard scaler, stratified 5-fold CV repeated 3 times); then the
    best CNN layer (highest pooled out-of-fold ROC AUC) is fused with Gabor features ("V+Gabor")
    and evaluated on the same folds. Returns the path of ``report.html``.
    """
    from featurekit.evaluation.report import build_report

    out_dir = Path(out_dir)
    specs = list(extraction_result.specs)
    entries = {s.key: s.entry_id for s in specs}
    keys = sorted(entries, key=lambda k: ("/" in k, k))
    cache = extraction_result.cache
    common = dict(classifiers=[classifier], cv=cv, cache=cache, entries=entries, positive=dataset.positive,
                  seed=0, n_boot=n_boot, progress=progress,
                  command=" ".join(shlex.quote(a) for a in sys.argv))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NestedModelWarning)  # recorded in comparisons.csv and the report
        first = evaluate_features(cache, keys, **common)
        deep = first.results[first.results["kind"] == "deep"]
        ev = first
        hand = [k for k in ("gabor", "glcm", "haar") if k in entries]
        if not deep.empty and hand:
            best = deep.loc[deep["roc_auc_pooled"].astype(float).idxmax(), "feature_set"]
            second = evaluate_features(cache, [], fuse=[f"{best}+{hand[0]}"], **common)
            ev = merge_evaluations(first, second)
    ev.provenance["dataset"] = {**ev.provenance.get("dataset", {}), "name": dataset.name,
                                "source": str(dataset.source), "roi": getattr(dataset, "roi", None)}
    ev.provenance["demo"] = True
    ev.save(out_dir)
    return build_report([out_dir], out=out_dir / "report.html")
