"""The one ranking kernel: ROC AUC (Mann–Whitney with midranks), DeLong components, AP, ROC points.

Every statistic of how scores rank the positives above the negatives is
computed here, once, from one representation: the distinct score values in
ascending order and, per value ``v``, the number of positives ``cp(v)`` and of
negatives ``cn(v)`` holding it (:func:`value_counts`). ``featurekit.evaluation``'s
metrics, bootstrap (whose replicates are just other counts on the same values),
DeLong's test and the report all call these functions; the inputs are checked
by the callers (:mod:`featurekit.evaluation.stats.labels`).

Midranks and placements
-----------------------
In a sample with counts ``c(v)``, the midrank of a value is
``#{below} + (c(v) + 1) / 2`` (ties share the mean of their ranks). Its
*placement* (:func:`placements`) is the midrank minus ½,
``C(<v) + ½·c(v)``: how many sample values lie below ``v``, ties counting ½.

Mann–Whitney: with ``T_z`` the midranks in the pooled sample and ``T_x`` those
among the ``m`` positives, ``T_z(x) − T_x(x)`` is the placement of ``x`` among
the ``n`` negatives, so

    ``AUC = (Σ_i T_z(X_i) − m(m+1)/2) / (m·n) = Σ_v cp(v) · placement_neg(v) / (m·n)``
    ``    = P(X > Y) + ½·P(X = Y)``,

the trapezoidal area under the empirical ROC curve. DeLong's structural
components (DeLong, DeLong & Clarke-Pearson, Biometrics 1988;44:837; computed
with midranks as in Sun & Xu, IEEE Signal Process. Lett. 2014;21:1389) are the
same placements, per sample: ``V10(X_i) = placement_neg(X_i) / n`` and
``V01(Y_j) = 1 − placement_pos(Y_j) / m`` (Pepe & Cai, Biometrics
2004;60:528 call them placement values). All counts and placements are integers
or half-integers, so every sum is exact in float64 and the AUC is exact up to
its final division.

Shapes: the count functions work on the last axis and broadcast over leading
ones, so ``(n_replicates, n_values)`` count arrays give all bootstrap
replicates in one call.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "ValueCounts",
    "value_counts",
    "placements",
    "auc_terms",
    "ap_terms",
    "auc_from_counts",
    "auc_components",
    "roc_points",
    "youden_index_of_values",
]


class ValueCounts(NamedTuple):
    """Distinct scores and how many positives and negatives hold each.

    Attributes
    ----------
    values : ndarray of shape (n_values,)
        Distinct scores, ascending.
    codes : ndarray of int, shape (n_samples,)
        Index into ``values`` of each sample's score.
    pos, neg : ndarray of int64, shape (n_values,)
        ``cp(v)`` and ``cn(v)``.
    """

    values: np.ndarray
    codes: np.ndarray
    pos: np.ndarray
    neg: np.ndarray


def value_counts(is_pos: np.ndarray, scores: np.ndarray) -> ValueCounts:
    """Counts of positives and negatives per distinct score value.

    Parameters
    ----------
    is_pos : ndarray of bool, shape (n_samples,)
    scores : ndarray of float, shape (n_samples,)
        Finite scores (checked by the caller).

    Returns
    -------
    ValueCounts
    """
    values, codes = np.unique(scores, return_inverse=True)
    codes = codes.reshape(-1)
    return ValueCounts(values, codes, np.bincount(codes[is_pos], minlength=values.size),
                       np.bincount(codes[~is_pos], minlength=values.size))


def placements(counts: np.ndarray) -> np.ndarray:
    """Placement of each value in a sample with these counts: ``C(<v) + ½·c(v)`` (midrank − ½).

    Parameters
    ----------
    counts : array of shape (..., n_values)
        Counts per value, values ascending along the last axis.

    Returns
    -------
    ndarray of float64, same shape
    """
    c = np.asarray(counts, dtype=np.float64)
    return np.cumsum(c, axis=-1) - 0.5 * c


def auc_terms(cp: np.ndarray, cn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator of the Mann–Whitney AUC: ``Σ_v cp(v)·placement_neg(v)`` and ``m·n``.

    The AUC is their ratio; it is undefined when the denominator is 0 (a single
    class). Works along the last axis (see the module docstring).
    """
    cp = np.asarray(cp, dtype=np.float64)
    num = np.einsum("...u,...u->...", cp, placements(cn))
    return num, cp.sum(axis=-1) * np.asarray(cn, dtype=np.float64).sum(axis=-1)


def auc_from_counts(cp: np.ndarray, cn: np.ndarray) -> np.ndarray:
    """ROC AUC from counts per value (both classes present), along the last axis."""
    num, den = auc_terms(cp, cn)
    return num / den


def ap_terms(cp: np.ndarray, cn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator of average precision: ``Σ_v cp(v)·precision(score ≥ v)`` and ``m``.

    ``AP = Σ_k (R_k − R_{k−1})·P_k`` over the distinct values taken as
    thresholds in decreasing order (scikit-learn's ``average_precision_score``,
    a step function, no interpolation); the recall step at ``v`` is
    ``cp(v) / m``. Undefined when ``m = 0``. Works along the last axis.
    """
    cp_d = np.asarray(cp, dtype=np.float64)[..., ::-1]
    tp = np.cumsum(cp_d, axis=-1)
    pp = tp + np.cumsum(np.asarray(cn, dtype=np.float64)[..., ::-1], axis=-1)
    prec = np.divide(tp, pp, out=np.zeros_like(tp), where=pp > 0)
    return np.einsum("...u,...u->...", cp_d, prec), cp_d.sum(axis=-1)


def auc_components(is_pos: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and DeLong structural components of ``k`` score vectors.

    Parameters
    ----------
    is_pos : ndarray of bool, shape (n_samples,)
        Both classes present.
    scores : ndarray of shape (k, n_samples)

    Returns
    -------
    aucs : ndarray of shape (k,)
    v10 : ndarray of shape (k, m)
        ``placement_neg(X_i) / n`` for the m positives, in sample order.
    v01 : ndarray of shape (k, n)
        ``1 − placement_pos(Y_j) / m`` for the n negatives, in sample order.
    """
    m = int(is_pos.sum())
    n = is_pos.shape[0] - m
    k = scores.shape[0]
    aucs, v10, v01 = np.empty(k), np.empty((k, m)), np.empty((k, n))
    for r in range(k):
        vc = value_counts(is_pos, scores[r])
        aucs[r] = auc_from_counts(vc.pos, vc.neg)
        v10[r] = placements(vc.neg)[vc.codes[is_pos]] / n
        v01[r] = 1.0 - placements(vc.pos)[vc.codes[~is_pos]] / m
    return aucs, v10, v01


def roc_points(vc: ValueCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The empirical ROC curve: one point per distinct threshold, from (0, 0) to (1, 1).

    Predicting positive iff ``score >= t`` for ``t`` = each distinct value in
    decreasing order (preceded by ``+inf``, nothing positive). The trapezoidal
    area under these points is the AUC of :func:`auc_terms`.

    Returns
    -------
    fpr, tpr, thresholds : ndarray of shape (n_values + 1,)
    """
    tp = np.r_[0, np.cumsum(vc.pos[::-1])].astype(np.float64)
    fp = np.r_[0, np.cumsum(vc.neg[::-1])].astype(np.float64)
    return fp / max(fp[-1], 1.0), tp / max(tp[-1], 1.0), np.r_[np.inf, vc.values[::-1]]


def youden_index_of_values(cp: np.ndarray, cn: np.ndarray) -> int:
    """Index of the value that, as threshold, maximises Youden's J; ties: the highest value.

    Predicting positive iff ``score >= v`` gives ``TP(v) = m − C_pos(<v)`` and
    ``FP(v) = n − C_neg(<v)``; ``J(v) = TP/m − FP/n`` is compared exactly as
    the integer ``TP·n − FP·m``.
    """
    cp = np.asarray(cp, dtype=np.int64)
    cn = np.asarray(cn, dtype=np.int64)
    m, n = cp.sum(), cn.sum()
    tp = m - (np.cumsum(cp) - cp)
    fp = n - (np.cumsum(cn) - cn)
    j_num = tp * n - fp * m
    return int(j_num.size - 1 - np.argmax(j_num[::-1]))  # the last maximum = the highest threshold
