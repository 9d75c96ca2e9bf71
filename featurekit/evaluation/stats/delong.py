"""DeLong's test for correlated ROC AUCs (fast algorithm of Sun & Xu).

For ``k`` score vectors on the same ``m`` positives ``X`` and ``n`` negatives
``Y``, the empirical AUC of score ``r`` is the Mann–Whitney statistic

    ``θ_r = (1/(m·n)) Σ_i Σ_j ψ(X_i, Y_j)``,  ``ψ(x, y) = 1 if x > y, ½ if x = y, 0 else``.

DeLong, DeLong & Clarke-Pearson (Biometrics 1988;44:837) estimate the
covariance of ``θ`` from the *structural components*

    ``V10_r(X_i) = (1/n) Σ_j ψ(X_i, Y_j)``,  ``V01_r(Y_j) = (1/m) Σ_i ψ(X_i, Y_j)``

as ``S = S10 / m + S01 / n`` where ``S10``, ``S01`` are the sample covariance
matrices (``ddof=1``) of the components over positives and negatives.

Sun & Xu (IEEE Signal Processing Letters 2014;21(11):1389–1393) compute the
components in ``O(k·(m+n)·log(m+n))`` instead of ``O(k·m·n)`` with midranks:
with ``T_z`` the midranks in the pooled sample, ``T_x`` within positives and
``T_y`` within negatives,

    ``V10(X_i) = (T_z(X_i) − T_x(X_i)) / n``,
    ``V01(Y_j) = 1 − (T_z(Y_j) − T_y(Y_j)) / m``,
    ``θ = (Σ_i T_z(X_i) − m(m+1)/2) / (m·n)``.

Midranks make ties count one half, so integer-valued scores are handled
exactly. The computation is the ranking kernel of
:mod:`featurekit.evaluation.stats.ranking` (``T_z − T_x`` is the placement of ``X_i``
among the negatives), the same that gives every other AUC in featurekit.

The two-sided test of ``H0: θ_a = θ_b`` uses
``z = (θ_a − θ_b) / sqrt(S_aa + S_bb − 2 S_ab)`` and ``p = 2·(1 − Φ(|z|))``; the
confidence interval of the difference is ``Δ ± z_{1−α/2}·SE``.

.. warning::
   DeLong's test is known to be **conservative, and its normal approximation
   invalid under H0, for nested models** (a fusion model against one of its own
   inputs, a model against the same model with features added, fitted on the
   same data): Demler, Pencina & D'Agostino, Stat Med 2012;31(23):2577–2587.
   Pass ``nested=True`` to :func:`delong_roc_test` to have that recorded as a
   :class:`NestedModelWarning`; prefer testing the added features themselves
   (likelihood-ratio/Wald test) or report the paired bootstrap interval of the
   ΔAUC on out-of-fold predictions alongside.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

from featurekit.errors import DataError
from featurekit.evaluation.stats.intervals import check_confidence
from featurekit.evaluation.stats.labels import binarize_labels, check_scores
from featurekit.evaluation.stats.ranking import auc_components

__all__ = [
    "NestedModelWarning",
    "DegenerateTestWarning",
    "DeLongResult",
    "delong_components",
    "delong_covariance",
    "delong_roc_variance",
    "delong_auc_ci",
    "delong_roc_test",
]


class NestedModelWarning(UserWarning):
    """DeLong's test is applied to nested models, where it is conservative."""


class DegenerateTestWarning(RuntimeWarning):
    """The variance of the AUC difference is zero; the test is degenerate."""


NESTED_MESSAGE = (
    "DeLong's test compares AUCs of nested models (e.g. a fusion model vs one of its "
    "own inputs): its normal approximation is invalid under H0 and it is known to be "
    "very conservative there (Demler, Pencina & D'Agostino, Stat Med 2012;31:2577-87). "
    "A non-significant p-value is weak evidence; test the added features directly or "
    "report the paired bootstrap interval of the AUC difference as well."
)


@dataclass(frozen=True)
class DeLongResult:
    """Result of :func:`delong_roc_test`.

    Attributes
    ----------
    auc_a, auc_b : float
        Empirical AUCs of the two score vectors.
    delta : float
        ``auc_a − auc_b``.
    ci_low, ci_high : float
        Normal-approximation confidence interval of ``delta`` at ``confidence``.
    se : float
        Standard error of ``delta``, ``sqrt(var_a + var_b − 2 cov_ab)``.
    z : float
        ``delta / se``.
    p_value : float
        Two-sided p-value ``2·(1 − Φ(|z|))`` (not log10).
    cov : ndarray of shape (2, 2)
        DeLong covariance matrix of ``(auc_a, auc_b)``.
    confidence : float
    n_pos, n_neg : int
    nested : bool
        Whether the caller declared the models nested (test conservative).
    """

    auc_a: float
    auc_b: float
    delta: float
    ci_low: float
    ci_high: float
    se: float
    z: float
    p_value: float
    cov: np.ndarray
    confidence: float
    n_pos: int
    n_neg: int
    nested: bool = False

    @property
    def ci(self) -> tuple[float, float]:
        """``(ci_low, ci_high)``."""
        return (self.ci_low, self.ci_high)

    def as_dict(self) -> dict:
        """Plain dict (``cov`` as nested lists), e.g. for JSON reports."""
        d = asdict(self)
        d["cov"] = np.asarray(self.cov).tolist()
        return d


def _prepare(y_true: Any, scores: Any, pos_label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(is_pos, S)`` with ``S`` of shape (k, n_samples)."""
    t = binarize_labels(y_true, pos_label)
    if isinstance(scores, (list, tuple)) and len(scores) > 0 and np.ndim(scores[0]) == 1:
        rows = [check_scores(s, t.shape[0], f"scores[{i}]") for i, s in enumerate(scores)]
        S = np.vstack(rows)
    else:
        arr = np.asarray(scores)
        if arr.ndim == 1:
            S = check_scores(arr, t.shape[0], "scores")[None, :]
        elif arr.ndim == 2:
            S = np.vstack([check_scores(r, t.shape[0], f"scores[{i}]") for i, r in enumerate(arr)])
        else:
            raise DataError(f"scores must be 1-D or (k, n_samples), got shape {arr.shape}")
    m = int(t.sum())
    n = t.shape[0] - m
    if m < 2 or n < 2:
        raise DataError(
            f"DeLong's method needs at least 2 positives and 2 negatives, got {m} and {n}"
        )
    return t, S


def delong_components(y_true: Any, scores: Any, *, pos_label: Any = 1):
    """AUCs and structural components by the midrank algorithm of Sun & Xu.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    scores : array-like of shape (n_samples,) or (k, n_samples), or list of k vectors
    pos_label : scalar, default=1

    Returns
    -------
    aucs : ndarray of shape (k,)
    v10 : ndarray of shape (k, m)
        ``V10(X_i) = (T_z(X_i) − T_x(X_i)) / n`` for the m positives (in the order
        they appear in ``y_true``).
    v01 : ndarray of shape (k, n)
        ``V01(Y_j) = 1 − (T_z(Y_j) − T_y(Y_j)) / m`` for the n negatives.
    """
    t, S = _prepare(y_true, scores, pos_label)
    return auc_components(t, S)


def _cov_from_components(v10: np.ndarray, v01: np.ndarray) -> np.ndarray:
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return s10 / m + s01 / n


def delong_covariance(y_true: Any, scores: Any, *, pos_label: Any = 1):
    """DeLong covariance matrix of the AUCs of ``k`` correlated score vectors.

    ``S = S10 / m + S01 / n`` (see the module docstring).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    scores : array-like of shape (n_samples,) or (k, n_samples), or list of k vectors
    pos_label : scalar, default=1

    Returns
    -------
    aucs : ndarray of shape (k,)
    cov : ndarray of shape (k, k)
    """
    aucs, v10, v01 = delong_components(y_true, scores, pos_label=pos_label)
    return aucs, _cov_from_components(v10, v01)


def delong_roc_variance(y_true: Any, scores: Any, *, pos_label: Any = 1) -> tuple[float, float]:
    """AUC of one score vector and its DeLong variance.

    ``Var(θ) = s²(V10) / m + s²(V01) / n``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    scores : array-like of shape (n_samples,)
    pos_label : scalar, default=1

    Returns
    -------
    auc : float
    variance : float
    """
    if np.ndim(scores) != 1:
        raise DataError("delong_roc_variance takes one score vector; use delong_covariance for k")
    aucs, cov = delong_covariance(y_true, scores, pos_label=pos_label)
    return float(aucs[0]), float(cov[0, 0])


def delong_auc_ci(y_true: Any, scores: Any, *, confidence: float = 0.95,
                  pos_label: Any = 1) -> tuple[float, float, float]:
    """AUC with its DeLong (normal-approximation) confidence interval.

    ``θ ± z_{1−α/2} · sqrt(Var(θ))``, clipped to ``[0, 1]``.

    Returns
    -------
    auc, lo, hi : float
    """
    check_confidence(confidence)
    auc, var = delong_roc_variance(y_true, scores, pos_label=pos_label)
    half = norm.ppf(0.5 + confidence / 2.0) * math.sqrt(max(var, 0.0))
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def delong_roc_test(y_true: Any, scores_a: Any, scores_b: Any, *, pos_label: Any = 1,
                    confidence: float = 0.95, nested: bool = False) -> DeLongResult:
    """Two-sided DeLong test of equal AUCs for two scores on the same samples.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    scores_a, scores_b : array-like of shape (n_samples,)
        Paired scores (e.g. pooled out-of-fold predictions of two models), higher
        meaning more likely ``pos_label``.
    pos_label : scalar, default=1
    confidence : float, default=0.95
        Level of the normal-approximation interval of ``auc_a − auc_b``.
    nested : bool, default=False
        Declare that one model is nested in the other (fusion vs one of its
        parts). The test is then conservative; a :class:`NestedModelWarning`
        is emitted and the result records ``nested=True``.

    Returns
    -------
    DeLongResult

    Notes
    -----
    The variance of the difference is computed from the differences of the
    structural components, ``s²(V10_a − V10_b)/m + s²(V01_a − V01_b)/n``, which
    equals ``S_aa + S_bb − 2 S_ab`` and is exactly 0 when the two scores rank
    the samples identically (identical vectors or a monotone transform).

    Degenerate case, zero variance of the difference:

    * ``delta == 0`` (e.g. identical score vectors): ``z = 0``, ``p_value = 1``,
      the interval is ``[0, 0]``;
    * ``delta != 0`` (e.g. a perfect score against a constant one): the normal
      approximation is undefined; ``z``, ``p_value`` and the interval are nan and a
      :class:`DegenerateTestWarning` is emitted.
    """
    check_confidence(confidence)
    if nested:
        warnings.warn(NESTED_MESSAGE, NestedModelWarning, stacklevel=2)
    aucs, v10, v01 = delong_components(y_true, [scores_a, scores_b], pos_label=pos_label)
    m, n = v10.shape[1], v01.shape[1]
    cov = _cov_from_components(v10, v01)
    delta = float(aucs[0] - aucs[1])
    var = float(np.var(v10[0] - v10[1], ddof=1) / m + np.var(v01[0] - v01[1], ddof=1) / n)
    scale = max(float(cov[0, 0] + cov[1, 1]), np.finfo(float).tiny)
    zcrit = float(norm.ppf(0.5 + confidence / 2.0))
    if var <= 64 * np.finfo(float).eps * scale:
        if abs(delta) <= 64 * np.finfo(float).eps:
            se, z, p, lo, hi = 0.0, 0.0, 1.0, delta, delta
        else:
            warnings.warn(
                f"the variance of the AUC difference is zero while the difference is {delta:.4g} "
                "(e.g. a perfect score against a constant one): DeLong's normal approximation "
                "is undefined; returning nan z, p-value and interval",
                DegenerateTestWarning, stacklevel=2,
            )
            se, z, p, lo, hi = 0.0, float("nan"), float("nan"), float("nan"), float("nan")
    else:
        se = math.sqrt(var)
        z = delta / se
        p = float(min(1.0, 2.0 * norm.sf(abs(z))))
        lo, hi = delta - zcrit * se, delta + zcrit * se
    return DeLongResult(
        auc_a=float(aucs[0]), auc_b=float(aucs[1]), delta=delta, ci_low=float(lo),
        ci_high=float(hi), se=float(se), z=float(z), p_value=float(p), cov=cov,
        confidence=float(confidence), n_pos=m, n_neg=n, nested=bool(nested),
    )
