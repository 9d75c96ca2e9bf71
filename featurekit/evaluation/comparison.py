"""Paired comparison of feature sets' AUCs on the same samples (DeLong's test).

Each (feature set, classifier) is represented by its **mean out-of-fold score
per sample over the repeats** (with k-fold CV every sample has one score per
repeat; averaging them is the usual repeated-CV point prediction). Two rows
are compared on the samples both have predictions for, with
:func:`featurekit.evaluation.delong.delong_roc_test`: ΔAUC = AUC(a) − AUC(b),
its normal-approximation 95% interval and the two-sided p-value.

Nested comparisons -- a fusion against one of its own parts with the same
classifier (``parts`` of one a strict subset of the other's) -- are flagged in
the ``nested`` column and reported with one
:class:`~featurekit.evaluation.delong.NestedModelWarning`: DeLong's test is
conservative there (Demler et al., Stat Med 2012), so a large p-value is weak
evidence that the fusion adds nothing.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from featurekit.evaluation.delong import DegenerateTestWarning, NestedModelWarning, delong_roc_test
from featurekit.evaluation.delong import NESTED_MESSAGE
from featurekit.evaluation.summary import scores_by_row

__all__ = ["compare_aucs", "parts_of", "is_nested", "pvalue_matrix"]


def parts_of(feature_set: str, parts: str | None = None) -> frozenset:
    """The feature sets a (fused) set is made of: ``"a+b"`` -> {a, b}."""
    text = parts if isinstance(parts, str) and parts else feature_set
    inner = text
    if "(" in text and text.endswith(")"):  # "vote(a+b)"
        inner = text[text.index("(") + 1:-1]
    return frozenset(p.strip() for p in inner.split("+") if p.strip())


def is_nested(a: tuple, b: tuple, parts: dict | None = None) -> bool:
    """Whether rows ``a`` and ``b`` ((feature_set, classifier)) are nested models."""
    if a[1] != b[1]:
        return False
    pa = parts_of(a[0], (parts or {}).get(a))
    pb = parts_of(b[0], (parts or {}).get(b))
    return pa != pb and (pa < pb or pb < pa)


def compare_aucs(predictions: pd.DataFrame, rows: Sequence[tuple] | None = None, *,
                 parts: dict | None = None, confidence: float = 0.95, warn: bool = True) -> pd.DataFrame:
    """DeLong test for every pair of rows.

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
    warn : bool
        Emit one :class:`NestedModelWarning` when nested pairs are present.

    Returns
    -------
    DataFrame
        ``a_feature_set, a_classifier, b_feature_set, b_classifier, n, n_pos, auc_a, auc_b,
        delta_auc, ci_lo, ci_hi, se, z, p_value, nested``.
    """
    scores = scores_by_row(predictions)
    keys = list(rows) if rows is not None else list(scores)
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
        out.append({"a_feature_set": a[0], "a_classifier": a[1], "b_feature_set": b[0],
                    "b_classifier": b[1], "n": int(common.size), "n_pos": int(y.sum()),
                    "auc_a": r.auc_a, "auc_b": r.auc_b, "delta_auc": r.delta, "ci_lo": r.ci_low,
                    "ci_hi": r.ci_high, "se": r.se, "z": r.z, "p_value": r.p_value, "nested": nested})
    if warn and n_nested:
        warnings.warn(f"{n_nested} of the AUC comparisons are nested (fusion vs its own part): "
                      + NESTED_MESSAGE, NestedModelWarning, stacklevel=2)
    cols = ["a_feature_set", "a_classifier", "b_feature_set", "b_classifier", "n", "n_pos", "auc_a",
            "auc_b", "delta_auc", "ci_lo", "ci_hi", "se", "z", "p_value", "nested"]
    return pd.DataFrame(out, columns=cols)


def pvalue_matrix(comparisons: pd.DataFrame, rows: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Square matrices (p-values, nested flags) over ``rows`` from :func:`compare_aucs` output."""
    k = len(rows)
    p = np.full((k, k), np.nan)
    nested = np.zeros((k, k), dtype=bool)
    index = {tuple(r): i for i, r in enumerate(rows)}
    for rec in comparisons.itertuples(index=False):
        a = index.get((rec.a_feature_set, rec.a_classifier))
        b = index.get((rec.b_feature_set, rec.b_classifier))
        if a is None or b is None:
            continue
        p[a, b] = p[b, a] = rec.p_value
        nested[a, b] = nested[b, a] = bool(rec.nested)
    np.fill_diagonal(p, 1.0)
    return p, nested
