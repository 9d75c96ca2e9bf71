"""From out-of-fold predictions to one row of results per (feature set, classifier).

:func:`summarise_predictions` is the single place where the numbers of
``results.csv`` are made, from the columns of ``predictions.csv`` alone
(``id, y_true, feature_set, classifier, repeat, fold, score, threshold``), so
that every engine writing a run folder (``featurekit evaluate``, ``featurekit
finetune``) reports exactly the same statistics.

Statistics, for every metric ``m`` of
:data:`~featurekit.evaluation.metrics.METRICS` (accuracy, balanced_accuracy,
precision, npv, sensitivity, specificity, f1, mcc, youden_index, roc_auc,
pr_auc):

``m``, ``m_sd``
    Mean and standard deviation (``ddof=1``) of the metric computed on each test
    fold, over all folds of all repeats (the papers' "mean ± sd"). Folds where
    the metric is undefined (e.g. precision with no predicted positive) are left
    out of both.
``m_ci_lo``, ``m_ci_hi``
    95% stratified-bootstrap percentile interval. Per repeat, the out-of-fold
    predictions are pooled (in k-fold CV each sample once; in holdout, the
    repeat's test set); each pool is resampled ``n_boot`` times, stratified by
    class (:func:`featurekit.evaluation.bootstrap.bootstrap_metrics`, the same
    seed in every repeat, so with k-fold every repeat resamples the same
    samples), replicate ``b`` of the statistic is the mean over repeats of the
    repeats' ``b``-th replicate values, and the interval takes its percentiles.
    It is the interval of ``m_pooled``. Pooling per repeat, never across
    repeats: concatenating repeats would count every sample R times and make
    the interval too narrow.
``m_pooled``
    The metric of the pooled out-of-fold predictions, averaged over repeats.
``m_n_folds``
    On how many of the ``n_folds`` test folds the metric was defined, i.e. how
    many folds ``m`` and ``m_sd`` average. Fewer than ``n_folds`` means that
    some test folds lack a class (ROC AUC, sensitivity...) or a predicted class
    (precision, NPV): the fold mean then rests on the other folds only, and
    :func:`featurekit.evaluation.report.text_table` and the report flag it.
``m_youden`` (and ``_sd``, ``_ci_lo``, ``_ci_hi``, ``_pooled``)
    The same at the Youden-optimal threshold chosen on each fold's training
    data (the ``threshold`` column); only for threshold metrics (ROC AUC and PR
    AUC do not depend on a threshold). In the bootstrap each sample keeps the
    threshold of its own fold.

Other columns: ``n`` (distinct samples predicted), ``n_pos``, ``n_neg``,
``n_repeats``, ``n_folds`` (test folds in all, of all repeats), ``protocol``, ``threshold_youden``
and ``threshold_youden_sd`` (mean and sd of the fold thresholds).
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable

import numpy as np
import pandas as pd

from featurekit.errors import DataError
from featurekit.evaluation.bootstrap import bootstrap_metrics, percentile_interval
from featurekit.evaluation.metrics import METRICS, THRESHOLD_FREE, UndefinedMetricWarning, binary_report

__all__ = [
    "METRIC_NAMES",
    "THRESHOLD_METRICS",
    "PREDICTION_COLUMNS",
    "ID_COLUMNS",
    "metric_columns",
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
_STATS = ("", "_sd", "_ci_lo", "_ci_hi", "_pooled", "_n_folds")


def metric_columns() -> list[str]:
    """Metric columns of results.csv in order."""
    cols = [f"{m}{s}" for m in METRIC_NAMES for s in _STATS]
    cols += [f"{m}_youden{s}" for m in THRESHOLD_METRICS for s in _STATS]
    return cols


def _check_predictions(pred: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in PREDICTION_COLUMNS if c not in pred.columns]
    if missing:
        raise DataError(f"predictions lack the column(s) {missing}; expected {PREDICTION_COLUMNS}")
    pred = pred.copy()
    pred["id"] = pred["id"].astype(str)
    pred["y_true"] = pred["y_true"].astype(int)
    bad = set(np.unique(pred["y_true"])) - {0, 1}
    if bad:
        raise DataError(f"y_true must be 1 (positive) or 0, found {sorted(bad)}")
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


def _bootstrap(g: pd.DataFrame, n_boot: int, confidence: float, seed: int) -> dict[str, tuple]:
    """Per metric: (pooled estimate averaged over repeats, ci_lo, ci_hi)."""
    dists: dict[str, list[np.ndarray]] = {}
    ests: dict[str, list[float]] = {}
    for _, r in g.groupby("repeat", sort=True):
        r = r.sort_values("id", kind="mergesort")
        y = r["y_true"].to_numpy()
        s = r["score"].to_numpy()
        if np.unique(y).size < 2:
            continue
        runs = [("", s, 0.5, METRIC_NAMES)]
        thr = r["threshold"].to_numpy()
        if np.all(np.isfinite(thr)):
            runs.append(("_youden", s - thr, 0.0, THRESHOLD_METRICS))
        for suffix, scores, t, names in runs:
            if n_boot > 0:
                res = bootstrap_metrics(y, scores, names, threshold=t, pos_label=1, n_boot=n_boot,
                                        confidence=confidence, random_state=seed,
                                        return_distribution=True)
                for m, b in res.items():
                    dists.setdefault(m + suffix, []).append(b.distribution)
                    ests.setdefault(m + suffix, []).append(b.estimate)
            else:
                rep = binary_report(y, scores, t)
                for m in names:
                    ests.setdefault(m + suffix, []).append(rep[m])
    out = {}
    for name, e in ests.items():
        e = np.asarray(e, dtype=float)
        est = float(np.nanmean(e)) if np.isfinite(e).any() else float("nan")
        lo = hi = float("nan")
        if name in dists:
            ds = dists[name]
            lo, hi = percentile_interval(np.nanmean(np.vstack(ds), axis=0) if len(ds) > 1 else ds[0],
                                         confidence)
        out[name] = (est, lo, hi)
    return out


def summarise_group(g: pd.DataFrame, *, n_boot: int = 2000, confidence: float = 0.95,
                    seed: int = 0) -> dict[str, Any]:
    """The statistics of one (feature set, classifier): see the module docstring."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        folds = _fold_metrics(g)
        boot = _bootstrap(g, n_boot, confidence, seed)
    ids = g.drop_duplicates("id")
    row: dict[str, Any] = {
        "n": int(len(ids)), "n_pos": int(ids["y_true"].sum()), "n_neg": int((ids["y_true"] == 0).sum()),
        "n_repeats": int(g["repeat"].nunique()),
        "n_folds": int(g.groupby(["repeat", "fold"]).ngroups),
    }
    names = METRIC_NAMES + [f"{m}_youden" for m in THRESHOLD_METRICS]
    for name in names:
        mean, sd, n_defined = _mean_sd(folds.get(name, []))
        est, lo, hi = boot.get(name, (float("nan"),) * 3)
        row.update({name: mean, f"{name}_sd": sd, f"{name}_ci_lo": lo, f"{name}_ci_hi": hi,
                    f"{name}_pooled": est, f"{name}_n_folds": n_defined})
    thr = g.groupby(["repeat", "fold"])["threshold"].first().to_numpy(dtype=float)
    row["threshold_youden"], row["threshold_youden_sd"], _ = _mean_sd(thr)
    return row


def summarise_predictions(predictions: pd.DataFrame, meta: dict | None = None, *, protocol: str = "",
                          n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
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
        Bootstrap settings (``n_boot=0`` skips the intervals; the pooled estimates remain).

    Returns
    -------
    DataFrame
        Columns :data:`ID_COLUMNS`, counts, ``protocol``, then :func:`metric_columns`.
    """
    pred = _check_predictions(predictions)
    rows = []
    for (fs, clf), g in pred.groupby(["feature_set", "classifier"], sort=False):
        info = dict((meta or {}).get((fs, clf), {}))
        row = {"feature_set": fs, "classifier": clf, "kind": info.pop("kind", ""),
               "model": info.pop("model", ""), "layer": info.pop("layer", ""),
               "layer_index": info.pop("layer_index", np.nan), "fusion": info.pop("fusion", ""),
               "parts": info.pop("parts", fs)}
        row.update(summarise_group(g, n_boot=n_boot, confidence=confidence, seed=seed))
        row["protocol"] = protocol
        row.update(info)
        rows.append(row)
    df = pd.DataFrame(rows)
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
