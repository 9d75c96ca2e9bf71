"""From out-of-fold predictions to one row of results per (feature set, classifier).

:func:`summarise_predictions` is the single place where the numbers of
``results.csv`` are made, from the columns of ``predictions.csv`` alone
(``id, y_true, feature_set, classifier, repeat, fold, score, threshold`` and
the optional ``group``), so
that every engine writing a run folder (``featurekit evaluate``, ``featurekit
finetune``) reports exactly the same statistics.

Statistics, for every metric ``m`` of
:data:`~featurekit.evaluation.stats.metrics.METRICS` (accuracy, balanced_accuracy,
precision, npv, sensitivity, specificity, f1, mcc, youden_index, roc_auc,
pr_auc):

``m``, ``m_sd``
    Mean and standard deviation (``ddof=1``) of the metric computed on each test
    fold, over all folds of all repeats (the papers' "mean ± sd"). Folds where
    the metric is undefined (e.g. precision with no predicted positive) are left
    out of both.
``m_ci_lo``, ``m_ci_hi``
    The 95% interval of ``m_pooled``, by a method with known coverage, named
    in ``m_ci_method``:

    * ``"wilson"`` -- the proportions (accuracy, sensitivity, specificity,
      precision, NPV; :attr:`Metric.proportion <featurekit.evaluation.stats.metrics.Metric>`)
      when every sample is predicted exactly once and samples are independent
      (one repeat of k-fold, a single holdout, a predefined test split, no
      groups): the Wilson score interval of the pooled counts
      (:func:`featurekit.evaluation.stats.intervals.wilson_interval`).
    * ``"bca bootstrap over samples"`` / ``"... over groups"`` -- every other
      metric and design: a bootstrap over the independent unit
      (:mod:`featurekit.evaluation.stats.unit_bootstrap`): the groups (patients,
      duplicate groups; the optional ``group`` column of ``predictions.csv``)
      when there are groups, else the samples, each drawn with all its
      predictions (all its images, all its repeats), the class counts free;
      each replicate is the statistic of ``m_pooled`` itself; the interval is
      BCa (Efron 1987), or ``"percentile ..."`` where BCa is undefined.
      ``n_boot`` replicates, the same draws (seed ``seed``) for every row with
      the same samples, so the rows' intervals are paired.

    These intervals take the fitted models as given: they cover the
    variability of the test samples, not that of the training sets (for
    comparisons of repeated designs see the Nadeau–Bengio test in
    :mod:`featurekit.evaluation.results.comparison`).
``m_pooled``
    The metric of the pooled out-of-fold predictions, averaged over repeats.
``m_n_folds``
    On how many of the ``n_folds`` test folds the metric was defined, i.e. how
    many folds ``m`` and ``m_sd`` average. Fewer than ``n_folds`` means that
    some test folds lack a class (ROC AUC, sensitivity...) or a predicted class
    (precision, NPV): the fold mean then rests on the other folds only, and
    :func:`featurekit.report.build.text_table` and the report flag it.
``m_youden`` (and ``_sd``, ``_ci_lo``, ``_ci_hi``, ``_pooled``, ``_n_folds``, ``_ci_method``)
    The same at the Youden-optimal threshold chosen on each fold's training
    data (the ``threshold`` column); only for threshold metrics (ROC AUC and PR
    AUC do not depend on a threshold). Each prediction keeps the threshold of
    its own fold.

Other columns: ``n`` (distinct samples predicted), ``n_pos``, ``n_neg``,
``n_repeats``, ``n_folds`` (test folds in all, of all repeats), ``protocol``, ``threshold_youden``
and ``threshold_youden_sd`` (mean and sd of the fold thresholds).

More than two classes
---------------------
Predictions of a multi-class run hold the class codes ``0..K-1`` in
``y_true`` and one probability column per class, ``proba[<class>]`` (in class
order; ``score`` and ``threshold`` are empty: the predicted class is the most
probable one). Their rows carry the metrics of
:func:`~featurekit.evaluation.stats.multiclass.multiclass_metric_names` --
macro one-vs-rest ``roc_auc``, accuracy, balanced accuracy, macro and weighted
precision / recall / F1, Cohen's ``kappa`` (quadratic-weighted for ordered
classes), ``log_loss``, and per class ``roc_auc[c]``, ``sensitivity[c]``,
``specificity[c]`` -- with the same statistics (``_sd``, ``_ci_lo``, ...) by
the same rules: Wilson for accuracy, sensitivity and specificity predicted
once, otherwise the bootstrap over the independent unit
(:func:`~featurekit.evaluation.stats.multiclass.multiclass_unit_bootstrap`),
and ``n[c]``, the samples of each class.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable

import numpy as np
import pandas as pd

from featurekit.errors import DataError
from featurekit.evaluation.stats.intervals import bca_interval, wilson_interval
from featurekit.evaluation.stats.metrics import METRICS, THRESHOLD_FREE, UndefinedMetricWarning, binary_report
from featurekit.evaluation.stats.multiclass import (
    confusion_matrix,
    multiclass_metric_names,
    multiclass_metrics,
    multiclass_unit_bootstrap,
)
from featurekit.evaluation.stats.unit_bootstrap import UnitData, unit_codes

__all__ = [
    "METRIC_NAMES",
    "THRESHOLD_METRICS",
    "PREDICTION_COLUMNS",
    "ID_COLUMNS",
    "metric_columns",
    "proba_column",
    "prediction_classes",
    "class_probabilities_of",
    "resampling_units",
    "summarise_predictions",
    "summarise_group",
    "mean_scores",
    "scores_by_row",
]

#: every metric reported, in table order
METRIC_NAMES: list[str] = list(METRICS)
#: metrics that depend on a threshold (these get ``_youden`` variants)
THRESHOLD_METRICS: list[str] = [m for m in METRIC_NAMES if m not in THRESHOLD_FREE]
#: columns of predictions.csv
PREDICTION_COLUMNS = ["id", "y_true", "feature_set", "classifier", "repeat", "fold", "score", "threshold"]
#: descriptive columns of results.csv, before the counts and metrics
ID_COLUMNS = ["feature_set", "classifier", "kind", "model", "layer", "layer_index", "fusion", "parts"]
_STATS = ("", "_sd", "_ci_lo", "_ci_hi", "_pooled", "_n_folds", "_ci_method")


def metric_columns(classes: list[str] | None = None) -> list[str]:
    """Metric columns of results.csv in order (of a multi-class run when ``classes`` are given)."""
    if classes:
        return [f"{m}{s}" for m in multiclass_metric_names(classes) for s in _STATS]
    cols = [f"{m}{s}" for m in METRIC_NAMES for s in _STATS]
    cols += [f"{m}_youden{s}" for m in THRESHOLD_METRICS for s in _STATS]
    return cols


_PROBA = ("proba[", "]")


def proba_column(class_name: Any) -> str:
    """The predictions column of one class's probability in a multi-class run: ``proba[<class>]``."""
    return f"{_PROBA[0]}{class_name}{_PROBA[1]}"


def prediction_classes(pred: pd.DataFrame) -> list[str]:
    """The classes of a multi-class run's predictions, in code order (empty for a binary run)."""
    return [c[len(_PROBA[0]):-len(_PROBA[1])] for c in pred.columns
            if isinstance(c, str) and c.startswith(_PROBA[0]) and c.endswith(_PROBA[1])]


def class_probabilities_of(g: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """The (n, K) class probabilities of multi-class predictions."""
    return g[[proba_column(c) for c in classes]].to_numpy(dtype=np.float64)


def _check_predictions(pred: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in PREDICTION_COLUMNS if c not in pred.columns]
    if missing:
        raise DataError(f"predictions lack the column(s) {missing}; expected {PREDICTION_COLUMNS}")
    pred = pred.copy()
    pred["id"] = pred["id"].astype(str)
    pred["y_true"] = pred["y_true"].astype(int)
    classes = prediction_classes(pred)
    allowed = set(range(len(classes))) if classes else {0, 1}
    bad = set(np.unique(pred["y_true"])) - allowed
    if bad:
        raise DataError(f"y_true must be 1 (positive) or 0, found {sorted(bad)}" if not classes else
                        f"y_true must be a class code 0..{len(classes) - 1} (one per proba[...] column), "
                        f"found {sorted(bad)}")
    for c in ("repeat", "fold"):
        pred[c] = pred[c].astype(int)
    for c in ("score", "threshold"):
        pred[c] = pred[c].astype(float)
    return pred


def _fold_metrics(g: pd.DataFrame) -> dict[str, list[float]]:
    """Per-fold values of every metric, at 0.5 and at the fold's Youden threshold."""
    out: dict[str, list[float]] = {}
    for _, f in g.groupby(["repeat", "fold"], sort=True):
        y = f["y_true"].to_numpy()
        s = f["score"].to_numpy()
        thr = f["threshold"].to_numpy()
        r05 = binary_report(y, s, 0.5)
        # each row keeps its fold's threshold: s >= thr  <=>  s - thr >= 0 (exact in floating point)
        shifted = s - thr if np.all(np.isfinite(thr)) else None
        ry = binary_report(y, shifted, 0.0) if shifted is not None else None
        for m in METRIC_NAMES:
            out.setdefault(m, []).append(r05[m])
        for m in THRESHOLD_METRICS:
            out.setdefault(f"{m}_youden", []).append(np.nan if ry is None else ry[m])
    return out


def _mean_sd(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sd (``ddof=1``) and number of the finite values."""
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan"), int(v.size)


def resampling_units(g: pd.DataFrame) -> tuple[np.ndarray, int, str]:
    """The resampling unit of each prediction: its group where it has one, else its sample id.

    Returns
    -------
    codes : ndarray of int (one per row of ``g``), n_units : int, kind : {"groups", "samples"}
    """
    if "group" in g.columns:
        grp = g["group"].astype(object)
        has = grp.notna() & (grp.astype(str).str.strip() != "")
        if has.any():
            labels = np.where(has, "g:" + grp.astype(str), "i:" + g["id"].astype(str))
            codes, n_units = unit_codes(labels)
            return codes, n_units, "groups"
    codes, n_units = unit_codes(g["id"].to_numpy())
    return codes, n_units, "samples"


def _intervals(g: pd.DataFrame, n_boot: int, confidence: float, seed: int) -> dict[str, tuple]:
    """Per metric: (pooled estimate averaged over repeats, ci_lo, ci_hi, interval method)."""
    units, n_units, unit_name = resampling_units(g)
    y = g["y_true"].to_numpy().astype(bool)
    s = g["score"].to_numpy(dtype=float)
    reps = g["repeat"].to_numpy()
    thr = g["threshold"].to_numpy(dtype=float)
    runs = [("", s, 0.5, METRIC_NAMES)]
    if np.all(np.isfinite(thr)):
        runs.append(("_youden", s - thr, 0.0, THRESHOLD_METRICS))
    out: dict[str, tuple] = {}
    nan = float("nan")
    for suffix, scores, t, names in runs:
        data = UnitData(units, n_units, y, scores, reps)
        if not data.repeats:
            continue
        specs = [(m, METRICS[m]) for m in names]
        est = {k: float(v[0]) for k, v in data.estimates(specs, t).items()}
        # each sample predicted once: the proportions are binomial, Wilson applies
        once = len(data.repeats) == 1 and np.bincount(units, minlength=n_units).max() == 1
        counts = data.confusion(np.ones((1, n_units)), t)[0] if once else None
        boot = []
        for name, metric in specs:
            if counts is not None and metric.proportion:  # counts: each sample predicted once
                k, n = metric.terms(*counts)
                lo, hi = wilson_interval(k, n, confidence)
                out[name + suffix] = (est[name], float(np.ravel(lo)[0]), float(np.ravel(hi)[0]), "wilson")
            elif n_boot > 0 and n_units > 1:
                boot.append((name, metric))
            else:
                out[name + suffix] = (est[name], nan, nan, "")
        if boot:
            rep = data.replicates(boot, n_boot, np.random.default_rng(seed), t)
            jack = data.jackknife(boot, t)
            for name, _ in boot:
                lo, hi, is_bca = bca_interval(rep[name][0], est[name], jack[name][0], confidence)
                method = f"{'bca' if bool(is_bca) else 'percentile'} bootstrap over {unit_name}"
                out[name + suffix] = (est[name], float(lo), float(hi), method)
    return out


def summarise_group(g: pd.DataFrame, *, n_boot: int = 2000, confidence: float = 0.95,
                    seed: int = 0) -> dict[str, Any]:
    """The statistics of one (feature set, classifier): see the module docstring."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        folds = _fold_metrics(g)
        boot = _intervals(g, n_boot, confidence, seed)
    ids = g.drop_duplicates("id")
    row: dict[str, Any] = {
        "n": int(len(ids)), "n_pos": int(ids["y_true"].sum()), "n_neg": int((ids["y_true"] == 0).sum()),
        "n_repeats": int(g["repeat"].nunique()),
        "n_folds": int(g.groupby(["repeat", "fold"]).ngroups),
    }
    names = METRIC_NAMES + [f"{m}_youden" for m in THRESHOLD_METRICS]
    for name in names:
        mean, sd, n_defined = _mean_sd(folds.get(name, []))
        est, lo, hi, method = boot.get(name, (float("nan"),) * 3 + ("",))
        row.update({name: mean, f"{name}_sd": sd, f"{name}_ci_lo": lo, f"{name}_ci_hi": hi,
                    f"{name}_pooled": est, f"{name}_n_folds": n_defined, f"{name}_ci_method": method})
    thr = g.groupby(["repeat", "fold"])["threshold"].first().to_numpy(dtype=float)
    row["threshold_youden"], row["threshold_youden_sd"], _ = _mean_sd(thr)
    return row


def _multiclass_intervals(g: pd.DataFrame, classes: list[str], ordered: bool, n_boot: int,
                          confidence: float, seed: int) -> dict[str, tuple]:
    """Per metric of a multi-class row: (pooled estimate over repeats, ci_lo, ci_hi, method)."""
    units, n_units, unit_name = resampling_units(g)
    y = g["y_true"].to_numpy(dtype=np.int64)
    p = class_probabilities_of(g, classes)
    reps = g["repeat"].to_numpy()
    names = multiclass_metric_names(classes)
    out: dict[str, tuple] = {}
    nan = float("nan")
    if n_boot > 0 and n_units > 1:
        boot = multiclass_unit_bootstrap(y, p, classes, groups=units, repeats=reps, ordered=ordered,
                                         n_boot=n_boot, confidence=confidence, random_state=seed)
        for name, r in boot.items():
            out[name] = (r.estimate, r.lo, r.hi, f"{r.method} bootstrap over {unit_name}")
    else:
        per_repeat = [multiclass_metrics(y[reps == r], p[reps == r], classes, ordered=ordered)
                      for r in np.unique(reps)]
        for name in names:
            out[name] = (_mean_sd(v[name] for v in per_repeat)[0], nan, nan, "")
    # each sample predicted once: accuracy, sensitivities and specificities are binomial, Wilson applies
    if len(np.unique(reps)) == 1 and np.bincount(units, minlength=n_units).max() == 1:
        conf = confusion_matrix(y, np.argmax(p, axis=1), len(classes))
        n, tp = conf.sum(), np.diag(conf)
        true_c, pred_c = conf.sum(axis=1), conf.sum(axis=0)
        props = {"accuracy": (tp.sum(), n)}
        for j, c in enumerate(classes):
            props[f"sensitivity[{c}]"] = (tp[j], true_c[j])
            props[f"specificity[{c}]"] = (n - true_c[j] - pred_c[j] + tp[j], n - true_c[j])
        for name, (k, m) in props.items():
            if m > 0:
                lo, hi = wilson_interval(k, m, confidence)
                out[name] = (out[name][0], float(np.ravel(lo)[0]), float(np.ravel(hi)[0]), "wilson")
    return out


def summarise_multiclass_group(g: pd.DataFrame, classes: list[str], *, ordered: bool = False,
                               n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """The statistics of one (feature set, classifier) of a multi-class run (module docstring)."""
    folds: dict[str, list[float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        for _, f in g.groupby(["repeat", "fold"], sort=True):
            values = multiclass_metrics(f["y_true"].to_numpy(dtype=np.int64), class_probabilities_of(f, classes),
                                        classes, ordered=ordered)
            for k, v in values.items():
                folds.setdefault(k, []).append(v)
        boot = _multiclass_intervals(g, classes, ordered, n_boot, confidence, seed)
    ids = g.drop_duplicates("id")
    counts = np.bincount(ids["y_true"].to_numpy(dtype=np.int64), minlength=len(classes))
    row: dict[str, Any] = {"n": int(len(ids)),
                           **{f"n[{c}]": int(k) for c, k in zip(classes, counts)},
                           "n_repeats": int(g["repeat"].nunique()),
                           "n_folds": int(g.groupby(["repeat", "fold"]).ngroups)}
    for name in multiclass_metric_names(classes):
        mean, sd, n_defined = _mean_sd(folds.get(name, []))
        est, lo, hi, method = boot.get(name, (float("nan"),) * 3 + ("",))
        row.update({name: mean, f"{name}_sd": sd, f"{name}_ci_lo": lo, f"{name}_ci_hi": hi,
                    f"{name}_pooled": est, f"{name}_n_folds": n_defined, f"{name}_ci_method": method})
    return row


def summarise_predictions(predictions: pd.DataFrame, meta: dict | None = None, *, protocol: str = "",
                          n_boot: int = 2000, confidence: float = 0.95, seed: int = 0,
                          ordered: bool = False) -> pd.DataFrame:
    """One results row per (feature_set, classifier) from out-of-fold predictions.

    Parameters
    ----------
    predictions : DataFrame
        The columns of ``predictions.csv`` (:data:`PREDICTION_COLUMNS`).
    meta : dict, optional
        ``(feature_set, classifier) -> {kind, model, layer, layer_index, fusion, parts, ...}``;
        extra keys become extra columns.
    protocol : str
        Written in the ``protocol`` column (e.g. ``"stratified 5-fold x3"``).
    n_boot, confidence, seed
        Bootstrap settings (``n_boot=0`` skips the bootstrap intervals; the pooled estimates and
        the Wilson intervals, which need no resampling, remain).
    ordered : bool
        The classes of a multi-class run are ordered (Cohen's kappa quadratic-weighted).

    Returns
    -------
    DataFrame
        Columns :data:`ID_COLUMNS`, counts, ``protocol``, then :func:`metric_columns`.
    """
    pred = _check_predictions(predictions)
    classes = prediction_classes(pred)
    rows = []
    for (fs, clf), g in pred.groupby(["feature_set", "classifier"], sort=False):
        info = dict((meta or {}).get((fs, clf), {}))
        row = {"feature_set": fs, "classifier": clf, "kind": info.pop("kind", ""),
               "model": info.pop("model", ""), "layer": info.pop("layer", ""),
               "layer_index": info.pop("layer_index", np.nan), "fusion": info.pop("fusion", ""),
               "parts": info.pop("parts", fs)}
        if classes:
            row.update(summarise_multiclass_group(g, classes, ordered=ordered, n_boot=n_boot,
                                                  confidence=confidence, seed=seed))
        else:
            row.update(summarise_group(g, n_boot=n_boot, confidence=confidence, seed=seed))
        row["protocol"] = protocol
        row.update(info)
        rows.append(row)
    df = pd.DataFrame(rows)
    if classes:
        front = ID_COLUMNS + ["n"] + [f"n[{c}]" for c in classes] + ["n_repeats", "n_folds", "protocol"]
        cols = front + metric_columns(classes)
    else:
        front = ID_COLUMNS + ["n", "n_pos", "n_neg", "n_repeats", "n_folds", "protocol"]
        cols = front + metric_columns() + ["threshold_youden", "threshold_youden_sd"]
    extra = [c for c in df.columns if c not in cols]
    for c in cols:
        if c not in df.columns:
            df[c] = np.nan
    return df[cols + extra]


def _mean_per_id(g: pd.DataFrame) -> pd.DataFrame:
    return g.groupby(g["id"].astype(str)).agg(y_true=("y_true", "first"), score=("score", "mean"))


def scores_by_row(predictions: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """Per (feature_set, classifier): the mean out-of-fold score per sample id over repeats.

    Returns
    -------
    dict of (feature_set, classifier) -> DataFrame
        Columns ``y_true``, ``score``, indexed by id (as str, sorted).
    """
    return {key: _mean_per_id(g) for key, g in predictions.groupby(["feature_set", "classifier"], sort=False)}


def mean_scores(predictions: pd.DataFrame, feature_set: str, classifier: str) -> pd.DataFrame:
    """Mean out-of-fold score per sample id over repeats (index: id, sorted), with ``y_true``.

    Returns
    -------
    DataFrame with columns ``y_true``, ``score`` indexed by id (as str).

    Raises
    ------
    DataError
        No prediction of that row.
    """
    g = predictions[(predictions["feature_set"] == feature_set) & (predictions["classifier"] == classifier)]
    if g.empty:
        raise DataError(f"no predictions of ({feature_set!r}, {classifier!r})")
    return _mean_per_id(g)
