"""The cross-validation engine: folds, fits, out-of-fold scores, statistics, provenance.

:func:`plan_folds` is the fold source every engine uses -- ``evaluate`` and
fine-tuning both take their folds from it: a CV string (``"5"``, ``"5x3"``,
``"holdout:0.3x30"``, ``"predefined"``), an int, a splitter of
:mod:`featurekit.evaluation.folds.protocols`, or any scikit-learn splitter
(``StratifiedKFold(5)``, ``RepeatedStratifiedKFold``, ``GroupKFold``...).
:func:`cross_validate` fits every estimator on the training part of every
fold and scores the test part; :func:`run_provenance` builds the provenance
of every run folder.

No leakage
----------
Every estimator is cloned and fitted on the training indices of each outer
fold only: scalers, PCA / feature selection, oversampling, class weights, the
hyper-parameter search (inner stratified CV, grouped when the data have
groups) and the Youden threshold are all learnt from training data. The
Youden threshold of a fold is chosen (``youden="inner"``, default) on
out-of-fold scores of an inner ``youden_cv``-fold CV of the training part
(same hyper-parameters; grouped when there are groups), so an overfitting
classifier does not choose it on its own resubstitution scores; ``"train"``
uses the resubstitution scores of the fold's model (cheaper); with a
predefined split holding a ``val`` part it is chosen on ``val``. The same
folds are used for every estimator, so their predictions are paired.

The run-folder contract is documented in :mod:`featurekit.evaluation.results.runfolder`.
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
from featurekit.evaluation.estimators.classifiers import class_scores
from featurekit.evaluation.estimators.fusion import LateFusionClassifier, fit_accepts
from featurekit.evaluation.folds.protocols import (
    CVSpecError,
    describe_protocol,
    inner_splits,
    iter_folds,
    parse_cv,
)
from featurekit.evaluation.results.comparison import compare_aucs
from featurekit.evaluation.results.runfolder import write_run
from featurekit.evaluation.results.selection import (
    SELECTED,
    check_criterion,
    criterion_name,
    select_per_fold,
    selected_predictions,
)
from featurekit.evaluation.results.summary import proba_column, summarise_predictions
from featurekit.evaluation.stats.metrics import binarize_labels, youden_threshold
from featurekit.executors import as_executor
from featurekit.io import utc_now, versions

__all__ = [
    "Evaluation",
    "FoldPlan",
    "plan_folds",
    "describe_protocol",
    "cross_validate",
    "merge_evaluations",
    "run_provenance",
    "command_line",
    "RUN_FORMAT",
]

RUN_FORMAT = {"name": "featurekit-run", "version": 1}


# ---------------------------------------------------------------------------
# results container
# ---------------------------------------------------------------------------


@dataclass
class Evaluation:
    """What a cross-validation produced; unpacks as ``results, predictions``.

    Attributes
    ----------
    results : DataFrame
        One row per (feature_set, classifier) (see :mod:`featurekit.evaluation.results.runfolder`).
    predictions : DataFrame
        Out-of-fold predictions (``predictions.csv`` columns).
    folds : list of Fold
        The outer folds (shared by every estimator).
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

    def save(self, out: str | Path, **options) -> Path:
        """Write the run folder ``out`` (options go to :func:`~featurekit.evaluation.results.runfolder.write_run`)."""
        return write_run(out, self.results, self.predictions, self.provenance,
                         comparisons=self.comparisons, **options)

    def best(self, metric: str = "roc_auc", kind: str | None = None) -> pd.Series:
        """The row with the highest ``metric`` (optionally among one ``kind``)."""
        df = self.results if kind is None else self.results[self.results["kind"] == kind]
        if df.empty:
            raise DataError(f"no {kind or ''} rows to choose from")
        return df.loc[df[metric].astype(float).idxmax()]


# ---------------------------------------------------------------------------
# the fold source
# ---------------------------------------------------------------------------


@dataclass
class FoldPlan:
    """The outer folds of a run and how they were made."""

    folds: list
    protocol: str
    grouped: bool
    cv: Any

    @property
    def cv_text(self) -> str:
        """The cv as recorded in a run's provenance: the text parse_cv reads back (an integer k as ``"k"``)."""
        if isinstance(self.cv, str):
            return self.cv
        if isinstance(self.cv, (int, np.integer)):
            return str(int(self.cv))
        return repr(self.cv)


def plan_folds(cv: Any, y01: np.ndarray, groups: np.ndarray | None = None, *, split: Any = None,
               class_names: Sequence[str] | None = None,
               seed: int = 0) -> FoldPlan:
    """The outer folds for binary labels ``y01`` (the fold source every engine uses).

    Parameters
    ----------
    cv : str, int, featurekit splitter or scikit-learn splitter
        ``"5"``, ``"5x3"``, ``"holdout:0.3x30"``, ``"predefined"`` (needs ``split``),
        a splitter of :mod:`featurekit.evaluation.folds.protocols`, or any object with
        ``split(X, y, groups)`` (its folds are used as they are; a repeated
        splitter's folds are numbered per repeat).
    y01 : array of {0, 1} (or class codes 0..K-1)
    class_names : sequence of str, optional
        The name of each code of ``y01``, for errors that name a class.
    groups : array, optional
        Patient ids: featurekit's protocols then split by group.
    split : array of {"train", "val", "test"}, optional
        The per-sample split of ``cv="predefined"``.
    seed : int
        Seed of featurekit's protocols (a scikit-learn splitter keeps its own ``random_state``).
    """
    y01 = np.asarray(y01)
    n = y01.shape[0]
    g = None if groups is None else np.asarray([str(v) for v in np.asarray(groups)], dtype=object)
    predefined = isinstance(cv, str) and cv.strip().lower() == "predefined"
    if not isinstance(cv, (str, int, np.integer)) and not callable(getattr(cv, "split", None)) \
            and not callable(getattr(cv, "iter_folds", None)):
        raise DataError(f"cv={cv!r} is neither a CV specification nor a splitter with split(X, y, groups)")
    splitter = parse_cv(cv, random_state=seed, split_labels=split if predefined else None)
    try:
        folds = list(iter_folds(splitter, np.zeros((n, 1)), y01, g))
    except CVSpecError as exc:  # say the class by its name (y01 holds codes)
        if class_names is None or exc.rephrase is None:
            raise
        raise exc.rephrase(list(class_names)) from None
    if not folds:
        raise DataError(f"cv={splitter!r} made no folds")
    return FoldPlan(folds, describe_protocol(splitter, g is not None), g is not None, cv)


def binary_code_names(labels: Sequence[Any], positive: Any) -> list[str]:
    """The names of a binary run's codes (for ``plan_folds``' ``class_names``): 0 = the other class, or
    ``"not <positive>"`` when several classes stand against the positive one; 1 = the positive class."""
    others = sorted({str(v) for v in labels} - {str(positive)})
    return [others[0] if len(others) == 1 else f"not {positive}", str(positive)]


def command_line(command: str | None = None) -> str:
    """The command line recorded with a run (default: this process's ``sys.argv``)."""
    return command if command is not None else " ".join(shlex.quote(a) for a in sys.argv)


def run_provenance(plan: FoldPlan, *, seed: int, positive: Any, samples: Mapping[str, int],
                   options: Mapping[str, Any], command: str | None = None, **extra: Any) -> dict:
    """The provenance of a run folder, for evaluation and fine-tuning alike."""
    prov = {
        "protocol": plan.protocol, "cv": plan.cv_text, "grouped": plan.grouped, "seed": int(seed),
        "positive": positive if positive is None or isinstance(positive, (str, int, float)) else str(positive),
        "samples": dict(samples), "options": dict(options),
        "command": command_line(command), "created": utc_now(), "versions": versions(),
        "format": dict(RUN_FORMAT),
    }
    prov.update(extra)
    return prov


# ---------------------------------------------------------------------------
# fitting one fold
# ---------------------------------------------------------------------------


def _fit(est: Any, X, y: np.ndarray, groups: np.ndarray | None, validation: Any = None):
    kw: dict[str, Any] = {}
    if groups is not None and fit_accepts(est, "groups"):
        kw["groups"] = groups
    if validation is not None:
        kw["validation"] = validation
    return est.fit(X, y, **kw)


def _unfitted_twin(fitted: Any, template: Any) -> Any:
    """An unfitted copy of the fold's model with the hyper-parameters it ended up with."""
    if isinstance(fitted, GridSearchCV):
        return clone(template.estimator).set_params(**fitted.best_params_)
    return clone(template)


def inner_oof_scores(template: Any, X, y: np.ndarray, groups: np.ndarray | None, k: int = 3,
                     seed: int = 0, n_classes: int = 2) -> np.ndarray | None:
    """Out-of-fold scores of an inner k-fold CV of (training) data: positive-class scores with
    two classes, class probabilities (n, n_classes) with more (:func:`class_scores`).

    Returns None when a class has fewer than 2 samples (or groups).
    """
    splits = inner_splits(y, groups, k, seed)
    if splits is None:
        return None
    from joblib import Parallel, delayed

    scores = np.empty((y.shape[0],) + (() if n_classes == 2 else (n_classes,)), dtype=np.float64)
    # sequential unless a joblib backend is configured (fits fanned out on a cluster)
    parts = Parallel()(delayed(_fit_scores)(template, X, y, groups, tr, te, n_classes) for tr, te in splits)
    for (_, te), part in zip(splits, parts):
        scores[te] = part
    return scores


def _fit_scores(template, X, y, groups, tr, te, n_classes: int = 2) -> np.ndarray:
    m = _fit(clone(template), _safe_indexing(X, tr), y[tr], None if groups is None else groups[tr])
    return class_scores(m, _safe_indexing(X, te), n_classes)


def _fold_threshold(fitted, template, X, y, groups, fold, mode: str, k: int, seed: int, honest: bool = False,
                    n_classes: int = 2):
    """The fold's Youden threshold, and the held-out scores of training-side data (or None).

    With more than two classes there is no threshold (NaN: the prediction is the most
    probable class) and held-out scores are made only when ``honest`` asks for them.

    The held-out scores are those the threshold is chosen on when it is chosen
    on held-out data: the validation split's scores when the fold has one,
    else out-of-fold scores of an inner ``k``-fold CV of the training part
    (computed for ``mode="inner"``, or when ``honest`` asks for them: the
    selection of the best candidate ranks candidates by them). Returned as
    ``(indices, scores, where)``; never scores of the fold's test part.
    """
    tr = fold.train_idx
    val = getattr(fold, "val_idx", None)
    multiclass = n_classes > 2
    if val is not None and len(val) and np.unique(y[val]).size >= 2:
        s = class_scores(fitted, _safe_indexing(X, val), n_classes)
        return (np.nan if multiclass else youden_threshold(y[val], s)), (np.asarray(val), s, "validation split")
    X_tr, y_tr = _safe_indexing(X, tr), y[tr]
    g_tr = None if groups is None else groups[tr]
    scores = getattr(fitted, "inner_oof_scores_", None)  # a model that made its own inner CV (a selection)
    if scores is None and ((mode == "inner" and not multiclass) or honest):
        scores = inner_oof_scores(_unfitted_twin(fitted, template), X_tr, y_tr, g_tr, k, seed, n_classes)
        if scores is None and mode == "inner" and not multiclass:
            warnings.warn("too few training samples per class for an inner CV; the Youden threshold "
                          "of this fold uses resubstitution scores", UserWarning, stacklevel=3)
    held_out = None if scores is None else (np.asarray(tr), np.asarray(scores), "inner CV of each training part")
    if multiclass:
        return np.nan, held_out
    if mode == "train" or scores is None:
        scores = class_scores(fitted, X_tr, 2)
    return youden_threshold(y_tr, scores), held_out


def _run_fold(name, template, fold, *, X, y, groups, youden, youden_cv, seed, keep, honest=False, n_classes=2):
    t0 = time.perf_counter()
    tr, te = fold.train_idx, fold.test_idx
    val = getattr(fold, "val_idx", None)
    validation = None
    if val is not None and len(val) and fit_accepts(template, "validation"):
        validation = (_safe_indexing(X, val), y[val])
    model = _fit(clone(template), _safe_indexing(X, tr), y[tr], None if groups is None else groups[tr],
                 validation=validation)
    scores = class_scores(model, _safe_indexing(X, te), n_classes)
    thr, held_out = _fold_threshold(model, template, X, y, groups, fold, youden, youden_cv, seed, honest, n_classes)
    return {"name": name, "repeat": fold.repeat, "fold": fold.fold, "test_idx": np.asarray(te),
            "score": scores, "threshold": float(thr), "seconds": time.perf_counter() - t0,
            "estimator": model if keep else None, "held_out": held_out if honest else None}


def _default_meta(name: str, est: Any) -> dict:
    last = est.steps[-1][1] if hasattr(est, "steps") else est
    while hasattr(last, "estimator") and not isinstance(last, LateFusionClassifier):
        last = last.estimator
        if hasattr(last, "steps"):
            last = last.steps[-1][1]
    return {"feature_set": name, "classifier": type(last).__name__, "kind": ""}


# ---------------------------------------------------------------------------
# cross_validate
# ---------------------------------------------------------------------------


def _is_dataset(obj: Any) -> bool:
    return hasattr(obj, "fingerprint") and hasattr(obj, "image") and hasattr(obj, "class_names")


def _dataset_arrays(ds: Any, positive: Any):
    """ids (X), labels, positive, groups and split of the labelled samples of a Dataset."""
    labels = np.asarray(ds.labels)
    keep = labels >= 0
    pos = positive if positive is not None else ds.positive
    present = [ds.class_names[c] for c in np.unique(labels[keep])]
    if pos is None and len(present) <= 2:
        raise DataError(f"name the positive class of {ds.name or 'the dataset'} (classes: {list(ds.class_names)})")
    if pos is not None and str(pos) not in list(ds.class_names):
        raise DataError(f"positive class {pos!r} is not one of {list(ds.class_names)}")
    names = np.asarray(ds.class_names, dtype=object)
    y = names[labels[keep]]
    ids = np.asarray(ds.ids, dtype=object)[keep]
    groups = None if ds.groups is None else np.asarray(ds.groups)[keep]
    split = None if getattr(ds, "split", None) is None else np.asarray(ds.split)[keep]
    return ids, y, (None if pos is None else str(pos)), groups, split, present


def cross_validate(estimators: Mapping[str, Any], X: Any, y: Any = None, groups: Any = None,
                   cv: Any = "5", positive: Any = None, *, seed: int = 0, split_labels: Any = None,
                   ids: Sequence[str] | None = None, youden: str = "inner", youden_cv: int = 3,
                   n_boot: int = 2000, confidence: float = 0.95, meta: Mapping[str, dict] | None = None,
                   n_jobs: int | None = 1, keep_estimators: bool = False, compare: bool = True,
                   select: bool | None = None, select_by: str = "roc_auc", ordered: bool = False,
                   classes: Sequence[Any] | None = None,
                   progress: bool = False, command: str | None = None, executor: Any = None) -> Evaluation:
    """Cross-validate several estimators on the same folds.

    Parameters
    ----------
    estimators : dict of str to estimator
        Unfitted classifiers/pipelines; each is cloned per fold. A pipeline
        starting with :class:`~featurekit.evaluation.estimators.features.CachedFeatures`
        (or :class:`~featurekit.data.ImagesOf`) takes sample ids as ``X``.
    X : Dataset or array-like
        A featurekit ``Dataset`` (then ``X`` = its ids, ``y`` its labels, ``groups``
        its groups, the positive class its ``positive``; unlabelled samples are
        left out), sample ids (shape (n,) or (n, 1)), or any ``X`` the estimators accept.
    y : array-like of shape (n,)
        Labels (any type); binarised with ``positive`` (1 = positive). With
        three or more classes and no ``positive`` the evaluation is
        multi-class: every class's probability is predicted, the predicted
        class is the most probable one, and the rows carry the multi-class
        metrics (:mod:`featurekit.evaluation.results.summary`).
    groups : array-like of shape (n,), optional
        Patient ids: grouped splitting (outer and inner CVs).
    cv : str, int, or splitter
        See :func:`plan_folds`: ``"5"``, ``"5x3"``, ``"holdout:0.3x30"``,
        ``"predefined"`` (with ``split_labels``), or any scikit-learn splitter.
    positive : label, optional
        The positive class of ``y`` (default 1; with a Dataset: its ``positive``). Given
        with three or more classes, the evaluation is that class against the rest.
    seed : int
        Seed of the protocol, the inner CVs and the bootstrap.
    ids : sequence of str, optional
        Ids written in the predictions (default: ``X`` when it is 1-D, else ``0..n-1``).
    youden : {"inner", "train"}; youden_cv : int
        How the per-fold Youden threshold is chosen on training data (module docstring).
    n_boot, confidence : bootstrap of the pooled out-of-fold predictions.
    meta : dict, optional
        ``name -> {feature_set, classifier, kind, model, layer, layer_index, fusion, parts}``
        (defaults: ``feature_set=name``, ``classifier`` = the final estimator's class).
    n_jobs : int
        Parallel fold fits (joblib); 1 = sequential.
    executor : None, "local", Executor or dask.distributed.Client
        Where the fits run: here (default; ``n_jobs`` applies), or on a Dask cluster
        (:mod:`featurekit.executors`): each (estimator, outer fold) fit with its search
        and Youden inner fits inside it, the fits grouped a few tasks per worker thread
        -- or, when they are fewer than twice the cluster's threads, one task each with
        their inner fits fanned out as tasks of their own. Same seeds, same results.
    keep_estimators : bool
        Keep every fitted fold model in :attr:`Evaluation.estimators`.
    compare : bool
        Run the paired DeLong comparisons.
    select : bool or None, default=None
        Add the *selected* row: in each outer fold, the estimator that is best by
        ``select_by`` on held-out data of that fold's training side only -- the
        inner ``youden_cv``-fold CV of the training part (the same inner folds
        for every estimator; the out-of-fold scores the inner Youden threshold
        uses), or the validation split of a predefined protocol -- and its
        scores on the fold's test part. Its metrics estimate the procedure
        "choose the best candidate, then use it"; the maximum over the other
        rows, each scored on the same test folds, is biased upward. ``None``:
        on when there are two or more estimators. The choice per fold and how
        often each candidate was chosen are in ``provenance["selection"]``.
    select_by : {"roc_auc", "pr_auc", "neg_log_loss", "neg_brier"}, default="roc_auc"
        The selection criterion (:data:`~featurekit.evaluation.results.selection.SELECTION_CRITERIA`).
    ordered : bool, default=False
        The classes are ordered (e.g. BI-RADS), in the order of ``classes``:
        Cohen's kappa is quadratic-weighted. A binary run (two classes, or a
        positive class) ignores it with a warning and records False.
    classes : sequence, optional
        The classes of a multi-class ``y`` in their order (default: the
        Dataset's class order, else the sorted labels).
    progress : bool
    command : str, optional
        The command line recorded in the provenance (default ``sys.argv``).

    Returns
    -------
    Evaluation
        ``results, predictions = cross_validate(...)`` also works.
    """
    if not estimators:
        raise DataError("no estimators to evaluate")
    if youden not in ("inner", "train"):
        raise DataError(f"youden must be 'inner' or 'train', got {youden!r}")
    check_criterion(select_by)
    if select is None:
        select = len(estimators) > 1
    elif select and len(estimators) < 2:
        raise DataError("select=True needs at least two estimators to choose from")
    order = None if classes is None else [str(c) for c in classes]
    if _is_dataset(X):
        X, y, positive, ds_groups, ds_split, present = _dataset_arrays(X, positive)
        order = order or present
        groups = ds_groups if groups is None else groups
        split_labels = ds_split if split_labels is None else split_labels
    if y is None:
        raise DataError("give labels y (or a Dataset as X)")
    y_arr = np.asarray(y)
    if positive is None and len(set(y_arr.tolist())) > 2:
        # more than two classes and no positive one: the multi-class evaluation
        classes = order or [str(c) for c in np.unique(y_arr.astype(str))]
        unknown = sorted(set(map(str, y_arr)) - set(classes))
        if unknown or len(set(classes)) != len(classes):
            raise DataError(f"classes={classes} must name every label of y once (labels not named: {unknown[:5]})")
        y01 = np.asarray([classes.index(str(v)) for v in y_arr], dtype=np.int64)
    else:
        classes = None
        positive = 1 if positive is None else positive
        if len(set(y_arr.tolist())) > 2:  # the named class against all the others
            if str(positive) not in set(map(str, y_arr.tolist())):
                raise DataError(f"positive class {positive!r} is not one of the labels")
            y01 = np.asarray([str(v) == str(positive) for v in y_arr], dtype=np.int64)
        else:
            y01 = binarize_labels(y_arr, positive).astype(np.int64)
        if np.unique(y01).size < 2:
            raise DataError(f"the labels hold a single class with positive={positive!r}")
    n_classes = 2 if classes is None else len(classes)
    if ordered and classes is None:  # recorded as it was applied: a binary run has no weighted kappa
        warnings.warn("ordered=True (--ordered) applies to three or more classes without a positive class "
                      "(quadratic-weighted kappa); this run is binary, so it is ignored", UserWarning, stacklevel=2)
        ordered = False
    if isinstance(X, (list, tuple)):
        X = np.asarray(X, dtype=object)
    n = y01.shape[0]
    n_x = X.shape[0] if hasattr(X, "shape") else len(X)
    if n_x != n:
        raise DataError(f"X has {n_x} samples but y has {n}")
    if ids is None:
        arr = np.asarray(X, dtype=object) if not hasattr(X, "iloc") else None
        if arr is not None and (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)):
            ids = [str(v) for v in arr.reshape(-1)]
        else:
            ids = [str(i) for i in range(n)]
    sample_ids = np.asarray([str(i) for i in ids], dtype=object)
    if len(set(sample_ids)) != n:
        raise DataError("sample ids must be unique")
    code_names = list(classes) if classes is not None else binary_code_names(y_arr.tolist(), positive)
    plan = plan_folds(cv, y01, groups, split=split_labels, seed=seed, class_names=code_names)
    g = None if groups is None else np.asarray([str(v) for v in np.asarray(groups)], dtype=object)
    folds = plan.folds

    metas: dict[str, dict] = {}
    for name, est in estimators.items():
        metas[name] = {**_default_meta(name, est), **dict((meta or {}).get(name, {}))}
    keys = [(m["feature_set"], m["classifier"]) for m in metas.values()]
    if len(set(keys)) != len(keys):
        raise DataError(f"two estimators share a (feature_set, classifier) row: {keys}")
    selected_key = (SELECTED, f"best of {len(keys)} by {criterion_name(select_by, n_classes)}") if select else None
    if selected_key is not None and selected_key[0] in {k[0] for k in keys}:
        raise DataError(f"a feature set is named {SELECTED!r}, the name of the selected row: rename it")

    tasks = [(name, est, fold) for name, est in estimators.items() for fold in folds]
    outs = as_executor(executor, n_jobs).map(
        _run_fold, tasks, shared=dict(X=X, y=y01, groups=g, youden=youden, youden_cv=youden_cv, seed=seed,
                                      keep=keep_estimators, honest=bool(select), n_classes=n_classes),
        progress=progress, desc="cross-validation", unit="fit",
        nested="auto", small=True)

    frames: list[pd.DataFrame] = []
    seconds: dict[tuple[str, str], float] = {}  # per row, the fits' time
    fitted: dict[tuple, Any] = {}  # (feature_set, classifier, repeat, fold) -> the fitted estimator
    for o in outs:
        m = metas[o["name"]]
        te = o["test_idx"]
        sc = o["score"]
        scores = ({"score": sc} if sc.ndim == 1 else  # multi-class: every class's probability
                  {"score": np.nan, **{proba_column(c): sc[:, j] for j, c in enumerate(classes or ())}})
        frames.append(pd.DataFrame({
            "id": sample_ids[te], "y_true": y01[te], "feature_set": m["feature_set"],
            "classifier": m["classifier"], "repeat": o["repeat"], "fold": o["fold"],
            **scores, "threshold": o["threshold"],
            **({} if g is None else {"group": g[te]}),  # the resampling unit of the intervals
        }))
        key = (m["feature_set"], m["classifier"])
        seconds[key] = seconds.get(key, 0.0) + o["seconds"]
        if keep_estimators:
            fitted[key + (o["repeat"], o["fold"])] = o["estimator"]
    row_meta = {}
    for m in metas.values():
        key = (m["feature_set"], m["classifier"])
        row_meta[key] = {k: v for k, v in m.items() if k not in ("feature_set", "classifier")}
        row_meta[key]["seconds"] = round(seconds.get(key, 0.0), 3)
    selection = None
    if selected_key is not None:
        chosen = select_per_fold(outs, metas, y01, select_by)
        if chosen is not None:
            frame, selection = selected_predictions(chosen, frames, metas, selected_key, select_by, n_classes)
            frames.append(frame)
            row_meta[selected_key] = {"kind": "selected", "selection": selection["summary"], "seconds": 0.0}
            if keep_estimators:
                by_fold = {(o["repeat"], o["fold"], o["name"]): o["estimator"] for o in outs}
                for c in selection["chosen"]:
                    fitted[selected_key + (c["repeat"], c["fold"])] = by_fold[(c["repeat"], c["fold"], c["name"])]
    predictions = pd.concat(frames, ignore_index=True)
    results = summarise_predictions(predictions, row_meta, protocol=plan.protocol, n_boot=n_boot,
                                    confidence=confidence, seed=seed, ordered=ordered)
    comparisons = None
    if compare and len(keys) > 1:
        parts = {k: v.get("parts") for k, v in row_meta.items()}
        comparisons = compare_aucs(predictions, parts=parts, confidence=confidence, n_boot=n_boot, seed=seed)
    if classes is None:
        counts = {"n": int(n), "n_pos": int(y01.sum()), "n_neg": int(n - y01.sum())}
    else:
        counts = {"n": int(n), **{f"n[{c}]": int(k) for c, k in zip(classes, np.bincount(y01, minlength=n_classes))}}
    if split_labels is not None:  # a predefined split: the size of each part, for wording and checks
        split_parts = np.asarray(split_labels, dtype=object)
        counts.update({part: int(np.sum(split_parts == part)) for part in ("train", "val", "test")})
    provenance = run_provenance(
        plan, seed=seed, positive=positive, samples=counts, command=command,
        options={"youden": youden, "youden_cv": youden_cv, "n_boot": n_boot, "confidence": confidence,
                 "select": bool(select), "select_by": select_by, "ordered": bool(ordered)},
        task=("binary" if classes is None else "multiclass"), classes=classes,
        pipelines={name: repr(est) for name, est in estimators.items()})
    if selection is not None:
        provenance["selection"] = {k: v for k, v in selection.items() if k != "summary"}
    return Evaluation(results, predictions, folds, comparisons, provenance, row_meta,
                      fitted if keep_estimators else None)


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
