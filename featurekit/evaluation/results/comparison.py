"""Paired comparison of feature sets' AUCs on the same samples (DeLong's test).

Each (feature set, classifier) is represented by its **mean out-of-fold score
per sample over the repeats** (with k-fold CV every sample has one score per
repeat; averaging them is the usual repeated-CV point prediction). Two rows
are compared on the samples both have predictions for, with
:func:`featurekit.evaluation.stats.delong.delong_roc_test`: ΔAUC = AUC(a) − AUC(b),
its normal-approximation 95% interval and the two-sided p-value.

Multiplicity: the ``m`` pairwise tests of one call are one family; ``p_adjusted``
holds their p-values adjusted by Holm's step-down procedure (default) or
Benjamini–Hochberg's (``adjust="bh"``), :mod:`featurekit.evaluation.stats.multiplicity`,
and ``family_size`` states ``m``. :func:`versus_best` takes the comparisons of
one row (the best) against the others and adjusts them as their own family of
``k − 1`` tests.

Repeated designs (several repeats of k-fold or holdout): DeLong's test on
pooled out-of-fold scores treats the models as fixed and ignores the
variance that comes from the training sets. There, every pair whose rows were
evaluated on the same folds also gets the corrected resampled t-test of
Nadeau & Bengio (2003) on the per-fold AUC differences
(:func:`featurekit.evaluation.stats.intervals.corrected_resampled_ttest`; columns
``nb_*``), with ``n_test`` the fold's size and ``n_train`` the number of
samples of the row not in that test fold (the training part of a k-fold or
holdout split), its p-values adjusted as a family of their own.

Grouped or not, the pooled DeLong test treats the samples as independent.
With ``n_boot > 0`` every pair also gets the paired bootstrap of ΔAUC over the
independent unit (:mod:`featurekit.evaluation.stats.unit_bootstrap`: patients /
duplicate groups when the predictions carry a ``group`` column, else samples,
each with all its repeat predictions): ``boot_delta_auc`` (the difference of
the rows' ``roc_auc_pooled``), its BCa interval, bootstrap-standard-error p-value
(:func:`~featurekit.evaluation.stats.intervals.bootstrap_p_value`) and adjusted
p-value. All rows predicted on the same samples share the draws.

More than two classes (predictions with ``proba[<class>]`` columns): the AUC
is the macro one-vs-rest AUC and DeLong's test, which is binary, gives way to
the paired bootstrap of the macro-AUC difference over the independent unit
(:func:`~featurekit.evaluation.stats.multiclass.multiclass_paired_bootstrap`'s
procedure, all rows of a layout on the same draws; ``n_boot`` replicates, 2000
when 0 is asked for, since it is the test): ``delta_auc``, ``ci_lo``,
``ci_hi``, ``se`` and ``p_value`` are the bootstrap's (``z`` is empty) and the
``boot_*`` columns repeat them; the Nadeau–Bengio test uses the per-fold
macro AUCs.

Nested comparisons -- a fusion against one of its own parts with the same
classifier (``parts`` of one a strict subset of the other's) -- are flagged in
the ``nested`` column and reported with one
:class:`~featurekit.evaluation.stats.delong.NestedModelWarning`: DeLong's test is
conservative there (Demler et al., Stat Med 2012), so a large p-value is weak
evidence that the fusion adds nothing.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from featurekit.errors import DataError
from featurekit.evaluation.results.summary import (
    class_probabilities_of,
    prediction_classes,
    resampling_units,
    scores_by_row,
)
from featurekit.evaluation.stats.delong import (
    NESTED_MESSAGE,
    DegenerateTestWarning,
    NestedModelWarning,
    delong_roc_test,
)
from featurekit.evaluation.stats.intervals import bca_interval, bootstrap_p_value, corrected_resampled_ttest
from featurekit.evaluation.stats.labels import UndefinedMetricWarning
from featurekit.evaluation.stats.metrics import METRICS
from featurekit.evaluation.stats.multiclass import MulticlassUnitData, multiclass_metrics
from featurekit.evaluation.stats.multiplicity import adjust_pvalues, check_adjust
from featurekit.evaluation.stats.unit_bootstrap import UnitData
from featurekit.specs import FusionSpec

__all__ = ["COMPARISON_COLUMNS", "compare_aucs", "versus_best", "parts_of", "is_nested", "pvalue_matrix",
           "fold_aucs"]

#: columns of :func:`compare_aucs` (and comparisons.csv)
COMPARISON_COLUMNS = [
    "a_feature_set", "a_classifier", "b_feature_set", "b_classifier", "n", "n_pos", "auc_a", "auc_b",
    "delta_auc", "ci_lo", "ci_hi", "se", "z", "p_value", "p_adjusted", "adjust", "family_size", "nested",
    "nb_delta_auc", "nb_ci_lo", "nb_ci_hi", "nb_t", "nb_df", "nb_p_value", "nb_p_adjusted",
    "nb_family_size", "boot_delta_auc", "boot_ci_lo", "boot_ci_hi", "boot_p_value", "boot_p_adjusted",
    "boot_family_size", "boot_method",
]


def parts_of(feature_set: str, parts: str | None = None) -> frozenset:
    """The feature sets a row is made of: a fused row's ``parts`` (``"a+b"`` -> {a, b}), else the set itself.

    The parts come from the row's record (``parts``, written by the evaluation that made it),
    never from its name.
    """
    if isinstance(parts, str) and "+" in parts:
        return FusionSpec.parse(parts).keys
    return frozenset({feature_set})


def is_nested(a: tuple, b: tuple, parts: dict | None = None) -> bool:
    """Whether rows ``a`` and ``b`` ((feature_set, classifier)) are nested models."""
    if a[1] != b[1]:
        return False
    pa = parts_of(a[0], (parts or {}).get(a))
    pb = parts_of(b[0], (parts or {}).get(b))
    return pa != pb and (pa < pb or pb < pa)


def fold_aucs(g: pd.DataFrame) -> pd.DataFrame:
    """Per test fold of one row's predictions: its AUC, size and the row's other samples.

    Returns
    -------
    DataFrame indexed by (repeat, fold)
        ``auc`` (nan where the fold holds one class), ``n_test``, ``n_train``
        (the row's distinct samples not in the fold) and ``ids`` (the fold's
        sorted sample ids, to check that two rows share their folds).
    """
    n_ids = g["id"].astype(str).nunique()
    classes = prediction_classes(g)
    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for key, f in g.groupby(["repeat", "fold"], sort=True):
            ids = tuple(sorted(f["id"].astype(str)))
            if classes:  # the macro one-vs-rest AUC
                auc = multiclass_metrics(f["y_true"].to_numpy(dtype=np.int64), class_probabilities_of(f, classes),
                                         classes)["roc_auc"]
            else:
                auc = METRICS["roc_auc"](f["y_true"].to_numpy(), f["score"].to_numpy(dtype=float))
            rows[key] = {"auc": auc, "n_test": len(f), "n_train": n_ids - len(set(ids)), "ids": ids}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.names = ["repeat", "fold"]
    return out


def _nb_test(fa: pd.DataFrame | None, fb: pd.DataFrame | None, confidence: float) -> dict:
    """Nadeau–Bengio test of the per-fold AUC differences of two rows evaluated on the same folds."""
    nan = float("nan")
    empty = {"nb_delta_auc": nan, "nb_ci_lo": nan, "nb_ci_hi": nan, "nb_t": nan, "nb_df": nan,
             "nb_p_value": nan}
    if fa is None or fb is None or len(fa) != len(fb) or not fa.index.equals(fb.index) \
            or list(fa["ids"]) != list(fb["ids"]) or np.any(fa["n_train"] <= 0):
        return empty
    r = corrected_resampled_ttest(fa["auc"].to_numpy(float) - fb["auc"].to_numpy(float),
                                  fa["n_train"].to_numpy(float), fa["n_test"].to_numpy(float),
                                  confidence=confidence)
    if r.n_folds < 2:
        return empty
    return {"nb_delta_auc": r.mean, "nb_ci_lo": r.ci_low, "nb_ci_hi": r.ci_high, "nb_t": r.statistic,
            "nb_df": r.df, "nb_p_value": r.p_value}


class _PairedBootstrap:
    """ΔAUC of pairs of rows by one bootstrap over units of every set of rows with the same predictions."""

    def __init__(self, predictions: pd.DataFrame, keys: Sequence[tuple], n_boot: int, seed: int,
                 confidence: float):
        self.confidence = confidence
        self.where: dict[tuple, tuple[int, int]] = {}  # row -> (set, index in the set)
        self.sets: list[dict] = []
        if n_boot <= 0:
            return
        by_layout: dict[tuple, list] = {}
        wanted = {tuple(k) for k in keys}
        for key, g in predictions.groupby(["feature_set", "classifier"], sort=False):
            if key not in wanted:
                continue
            g = g.assign(id=g["id"].astype(str)).sort_values(["repeat", "id"], kind="mergesort")
            layout = (tuple(g["repeat"]), tuple(g["id"]), tuple(g["y_true"].astype(int)))
            by_layout.setdefault(layout, []).append((key, g))
        classes = prediction_classes(predictions)
        for members in by_layout.values():
            g0 = members[0][1]
            units, n_units, kind = resampling_units(g0)
            y = g0["y_true"].to_numpy()
            if n_units < 2 or len(np.unique(y)) < 2:
                continue
            rng = np.random.default_rng(seed)
            if classes:  # the macro one-vs-rest AUC of every row, on the same draws
                proba = np.stack([class_probabilities_of(g, classes) for _, g in members])
                mdata = MulticlassUnitData(y.astype(np.int64), proba, units, n_units, g0["repeat"].to_numpy(),
                                           classes=classes)
                est, reps, jack = (d["roc_auc"] for d in (mdata.estimates(), mdata.replicates(n_boot, rng),
                                                          mdata.jackknife()))
            else:
                scores = np.vstack([g["score"].to_numpy(dtype=float) for _, g in members])
                data = UnitData(units, n_units, y.astype(bool), scores, g0["repeat"].to_numpy())
                if not data.repeats:
                    continue
                spec = [("roc_auc", METRICS["roc_auc"])]
                est, reps, jack = (data.estimates(spec)["roc_auc"], data.replicates(spec, n_boot, rng)["roc_auc"],
                                   data.jackknife(spec)["roc_auc"])
            i = len(self.sets)
            self.sets.append({"est": est, "reps": reps, "jack": jack, "method": f"bootstrap over {kind}"})
            for j, (key, _) in enumerate(members):
                self.where[key] = (i, j)

    def test(self, a: tuple, b: tuple) -> dict:
        nan = float("nan")
        wa, wb = self.where.get(tuple(a)), self.where.get(tuple(b))
        if wa is None or wb is None or wa[0] != wb[0]:
            return {"boot_delta_auc": nan, "boot_ci_lo": nan, "boot_ci_hi": nan, "boot_p_value": nan,
                    "boot_method": ""}
        st, ia, ib = self.sets[wa[0]], wa[1], wb[1]
        diff = st["reps"][ia] - st["reps"][ib]
        est = float(st["est"][ia] - st["est"][ib])
        lo, hi, is_bca = bca_interval(diff, est, st["jack"][ia] - st["jack"][ib], self.confidence)
        ok = np.isfinite(diff)
        return {"boot_delta_auc": est, "boot_ci_lo": float(lo), "boot_ci_hi": float(hi),
                "boot_p_value": bootstrap_p_value(diff, est),
                "boot_method": ("bca " if bool(is_bca) else "percentile ") + st["method"],
                "auc_a": float(st["est"][ia]), "auc_b": float(st["est"][ib]),
                "se": float(np.std(diff[ok], ddof=1)) if ok.sum() > 1 else nan}


def compare_aucs(predictions: pd.DataFrame, rows: Sequence[tuple] | None = None, *,
                 parts: dict | None = None, confidence: float = 0.95, adjust: str | None = "holm",
                 n_boot: int = 0, seed: int = 0, warn: bool = True) -> pd.DataFrame:
    """DeLong test for every pair of rows, with multiplicity-adjusted p-values.

    Parameters
    ----------
    predictions : DataFrame
        ``predictions.csv`` columns (several runs may be concatenated).
    rows : list of (feature_set, classifier), optional
        Rows to compare (default all), in this order.
    parts : dict, optional
        ``(feature_set, classifier) -> "a+b"``: what each fused row is made of
        (default: parsed from the feature-set name).
    confidence : float
    adjust : {"holm", "bh", None}, default="holm"
        Multiplicity adjustment of the family of all pairs compared
        (:func:`featurekit.evaluation.stats.multiplicity.adjust_pvalues`).
    n_boot : int, default=0
        Replicates of the paired bootstrap of ΔAUC over the independent unit
        (the ``boot_*`` columns; 0 leaves them nan).
    seed : int, default=0
        Seed of that bootstrap (the seed of ``results.csv``'s intervals gives the same draws).
    warn : bool
        Emit one :class:`NestedModelWarning` when nested pairs are present.

    Returns
    -------
    DataFrame
        :data:`COMPARISON_COLUMNS`: per pair ``n, n_pos, auc_a, auc_b, delta_auc, ci_lo,
        ci_hi, se, z, p_value`` (DeLong on the mean out-of-fold score per sample),
        ``p_adjusted``, ``adjust`` (the method), ``family_size`` (tests adjusted
        together), ``nested``; in repeated designs the ``nb_*`` columns (the
        Nadeau–Bengio test of the per-fold AUC differences: mean, interval, t,
        df, p-value, adjusted p-value and family size), nan otherwise; with
        ``n_boot`` the ``boot_*`` columns (module docstring).
    """
    method = check_adjust(adjust)
    classes = prediction_classes(predictions)
    if classes:
        return _compare_multiclass(predictions, rows, parts=parts, confidence=confidence, method=method,
                                   n_boot=n_boot or 2000, seed=seed, warn=warn)
    scores = scores_by_row(predictions)
    keys = list(rows) if rows is not None else list(scores)
    repeated = "repeat" in predictions.columns and predictions["repeat"].nunique() > 1
    folds: dict[tuple, pd.DataFrame] = {}
    if repeated:
        wanted = {tuple(k) for k in keys}
        for key, g in predictions.groupby(["feature_set", "classifier"], sort=False):
            if key in wanted:
                folds[key] = fold_aucs(g)
    boot = _PairedBootstrap(predictions, keys, n_boot, seed, confidence)
    out = []
    n_nested = 0
    for a, b in itertools.combinations(keys, 2):
        sa, sb = scores.get(tuple(a)), scores.get(tuple(b))
        if sa is None or sb is None:
            continue
        common = sa.index.intersection(sb.index)
        y = sa.loc[common, "y_true"].to_numpy()
        if common.size == 0 or np.any(y != sb.loc[common, "y_true"].to_numpy()) or np.unique(y).size < 2:
            continue
        nested = is_nested(tuple(a), tuple(b), parts)
        n_nested += nested
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NestedModelWarning)
            warnings.simplefilter("ignore", DegenerateTestWarning)
            r = delong_roc_test(y, sa.loc[common, "score"].to_numpy(), sb.loc[common, "score"].to_numpy(),
                                pos_label=1, confidence=confidence, nested=nested)
        rec = {"a_feature_set": a[0], "a_classifier": a[1], "b_feature_set": b[0],
               "b_classifier": b[1], "n": int(common.size), "n_pos": int(y.sum()),
               "auc_a": r.auc_a, "auc_b": r.auc_b, "delta_auc": r.delta, "ci_lo": r.ci_low,
               "ci_hi": r.ci_high, "se": r.se, "z": r.z, "p_value": r.p_value, "nested": nested}
        rec.update(_nb_test(folds.get(tuple(a)), folds.get(tuple(b)), confidence))
        rec.update({k: v for k, v in boot.test(a, b).items() if k.startswith("boot_")})
        out.append(rec)
    if warn and n_nested:
        warnings.warn(f"{n_nested} of the AUC comparisons are nested (fusion vs its own part): "
                      + NESTED_MESSAGE, NestedModelWarning, stacklevel=2)
    df = pd.DataFrame(out, columns=COMPARISON_COLUMNS)
    return _adjust(df, method)


def _compare_multiclass(predictions: pd.DataFrame, rows: Sequence[tuple] | None, *, parts: dict | None,
                        confidence: float, method: str, n_boot: int, seed: int, warn: bool) -> pd.DataFrame:
    """:func:`compare_aucs` of multi-class rows: the paired bootstrap of the macro-AUC difference."""
    groups = dict(iter(predictions.groupby(["feature_set", "classifier"], sort=False)))
    keys = [tuple(k) for k in rows] if rows is not None else list(groups)
    repeated = predictions["repeat"].nunique() > 1
    folds = {k: fold_aucs(groups[k]) for k in keys if k in groups} if repeated else {}
    boot = _PairedBootstrap(predictions, keys, n_boot, seed, confidence)
    out, n_nested = [], 0
    for a, b in itertools.combinations(keys, 2):
        if a not in groups or b not in groups:
            continue
        r = boot.test(a, b)
        if "auc_a" not in r:  # not predicted on the same samples and repeats
            continue
        nested = is_nested(a, b, parts)
        n_nested += nested
        rec = {"a_feature_set": a[0], "a_classifier": a[1], "b_feature_set": b[0], "b_classifier": b[1],
               "n": int(groups[a]["id"].astype(str).nunique()), "n_pos": np.nan,
               "auc_a": r["auc_a"], "auc_b": r["auc_b"], "delta_auc": r["boot_delta_auc"],
               "ci_lo": r["boot_ci_lo"], "ci_hi": r["boot_ci_hi"], "se": r["se"], "z": np.nan,
               "p_value": r["boot_p_value"], "nested": nested}
        rec.update(_nb_test(folds.get(a), folds.get(b), confidence))
        rec.update({k: v for k, v in r.items() if k.startswith("boot_")})
        out.append(rec)
    if warn and n_nested:
        warnings.warn(f"{n_nested} of the AUC comparisons are nested (fusion vs its own part): "
                      + NESTED_MESSAGE, NestedModelWarning, stacklevel=3)
    return _adjust(pd.DataFrame(out, columns=COMPARISON_COLUMNS), method)


def _adjust(df: pd.DataFrame, method: str) -> pd.DataFrame:
    """Fill ``p_adjusted``/``family_size`` (and the ``nb_`` ones) treating ``df``'s rows as one family."""
    df = df.copy()
    for prefix in ("", "nb_", "boot_"):
        adj, m = adjust_pvalues(df[f"{prefix}p_value"].to_numpy(dtype=float), method)
        df[f"{prefix}p_adjusted"] = adj
        df[f"{prefix}family_size"] = m
    df["adjust"] = method or "none"
    return df


def versus_best(comparisons: pd.DataFrame, best: tuple, *, adjust: str | None = "holm") -> pd.DataFrame:
    """The comparisons of one row against every other, oriented ``best − other``, adjusted as one family.

    Parameters
    ----------
    comparisons : DataFrame
        Output of :func:`compare_aucs` (or comparisons.csv; older files without
        the ``nb_`` columns are accepted).
    best : (feature_set, classifier)
    adjust : {"holm", "bh", None}, default="holm"
        The family is the ``k − 1`` comparisons with ``best``; ``family_size`` says how many.

    Returns
    -------
    DataFrame
        ``other_feature_set, other_classifier`` and :data:`COMPARISON_COLUMNS`'
        statistics with the differences and intervals negated where ``best`` was
        the second row (``auc_a`` is then the best's AUC), sorted by ``delta_auc``.
    """
    method = check_adjust(adjust)
    best = tuple(best)
    if comparisons is None or comparisons.empty:
        return pd.DataFrame(columns=["other_feature_set", "other_classifier"] + COMPARISON_COLUMNS[4:])
    df = comparisons.copy()
    for c in COMPARISON_COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    is_a = (df["a_feature_set"] == best[0]) & (df["a_classifier"] == best[1])
    is_b = (df["b_feature_set"] == best[0]) & (df["b_classifier"] == best[1])
    df = df[is_a | is_b].copy()
    if df.empty:
        raise DataError(f"no comparison involves {best}")
    flip = is_b[df.index]
    df["other_feature_set"] = np.where(flip, df["a_feature_set"], df["b_feature_set"])
    df["other_classifier"] = np.where(flip, df["a_classifier"], df["b_classifier"])
    auc_a = np.where(flip, df["auc_b"], df["auc_a"])
    df["auc_b"] = np.where(flip, df["auc_a"], df["auc_b"])
    df["auc_a"] = auc_a
    for col, lo, hi in (("delta_auc", "ci_lo", "ci_hi"), ("nb_delta_auc", "nb_ci_lo", "nb_ci_hi"),
                        ("boot_delta_auc", "boot_ci_lo", "boot_ci_hi")):
        d, d_lo, d_hi = (df[c].to_numpy(dtype=float) for c in (col, lo, hi))
        df[col] = np.where(flip, -d, d)
        df[lo] = np.where(flip, -d_hi, d_lo)
        df[hi] = np.where(flip, -d_lo, d_hi)
    for col in ("z", "nb_t"):
        df[col] = np.where(flip, -df[col].to_numpy(dtype=float), df[col].to_numpy(dtype=float))
    df = _adjust(df, method)
    cols = ["other_feature_set", "other_classifier"] + COMPARISON_COLUMNS[4:]
    return df[cols].sort_values("delta_auc", kind="mergesort").reset_index(drop=True)


def pvalue_matrix(comparisons: pd.DataFrame, rows: Sequence[tuple],
                  column: str = "p_value") -> tuple[np.ndarray, np.ndarray]:
    """Square matrices (p-values, nested flags) over ``rows`` from :func:`compare_aucs` output.

    ``column`` picks the p-values: ``"p_value"`` (raw DeLong), ``"p_adjusted"``
    (adjusted over the family of the comparisons given), ``"nb_p_adjusted"``...
    """
    if column not in comparisons.columns:
        raise DataError(f"the comparisons have no column {column!r}")
    k = len(rows)
    p = np.full((k, k), np.nan)
    nested = np.zeros((k, k), dtype=bool)
    index = {tuple(r): i for i, r in enumerate(rows)}
    for rec in comparisons.itertuples(index=False):
        a = index.get((rec.a_feature_set, rec.a_classifier))
        b = index.get((rec.b_feature_set, rec.b_classifier))
        if a is None or b is None:
            continue
        p[a, b] = p[b, a] = getattr(rec, column)
        nested[a, b] = nested[b, a] = bool(rec.nested)
    np.fill_diagonal(p, 1.0)
    return p, nested
