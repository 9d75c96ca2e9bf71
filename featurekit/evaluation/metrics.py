"""Binary classification metrics with an explicit positive class.

Every function here is small and pure, and states its formula. Labels can be
anything (``"benign"``/``"malignant"``, ``0``/``1``, booleans): the positive
class is named explicitly with ``pos_label`` (default ``1``), never inferred
from the sort order of the labels.

Conventions
-----------
* Confusion counts: ``TP`` (positive, predicted positive), ``FP`` (negative,
  predicted positive), ``TN``, ``FN``; ``P = TP + FN``, ``N = TN + FP``.
* From scores: a sample is predicted positive iff ``score >= threshold``
  (the convention of :func:`sklearn.metrics.roc_curve`; note that estimators'
  own ``predict`` usually uses ``>``, so a probability of exactly 0.5 may differ).
* Degenerate cases never pass silently. A ratio whose denominator is zero
  (precision with no predicted positive, sensitivity with no positive...) returns
  ``zero_division``: by default ``"warn"``, which returns **nan** and emits an
  :class:`UndefinedMetricWarning` (unlike scikit-learn, whose ``"warn"`` returns
  0). Pass ``zero_division=0.0`` (or ``1.0``, ``np.nan``) to get that value
  silently. ``roc_auc`` and ``pr_auc`` with a single class in ``y_true`` return
  nan with an :class:`UndefinedMetricWarning`. Malformed input (empty, NaN scores,
  more than two classes, a ``pos_label`` that is not one of two labels) raises
  :class:`~featurekit.errors.DataError`.

The registry :data:`METRICS` maps a metric name to a function of
``(y_true, y_score, threshold=0.5, *, pos_label=1)`` so callers iterate over
data rather than branches; :data:`THRESHOLD_FREE` names those that ignore the
threshold.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, NamedTuple

import numpy as np
from scipy.stats import rankdata

from featurekit.errors import DataError

__all__ = [
    "UndefinedMetricWarning",
    "ConfusionCounts",
    "binarize_labels",
    "predict_at",
    "confusion_counts",
    "accuracy",
    "balanced_accuracy",
    "precision",
    "npv",
    "sensitivity",
    "specificity",
    "f1",
    "mcc",
    "youden_index",
    "roc_auc",
    "pr_auc",
    "youden_threshold",
    "binary_report",
    "METRICS",
    "COUNT_METRICS",
    "THRESHOLD_FREE",
    "METRIC_ALIASES",
    "get_metric",
]


class UndefinedMetricWarning(RuntimeWarning):
    """A metric is undefined on this data (zero denominator, one class only)."""


class ConfusionCounts(NamedTuple):
    """Counts of a binary confusion matrix (positive class first)."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n_pos(self) -> int:
        """Number of positives, ``P = TP + FN``."""
        return self.tp + self.fn

    @property
    def n_neg(self) -> int:
        """Number of negatives, ``N = TN + FP``."""
        return self.tn + self.fp

    @property
    def n(self) -> int:
        """Number of samples."""
        return self.tp + self.fp + self.tn + self.fn


# --------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------


def _as_1d(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(
            f"{name} must be one-dimensional, got shape {arr.shape}"
            + (
                "; for predict_proba output pass the positive-class column"
                if arr.ndim == 2 and arr.shape[1] == 2
                else ""
            )
        )
    if arr.size == 0:
        raise DataError(f"{name} is empty")
    return arr


def _same_label(a: Any, b: Any) -> bool:
    """Label equality that never matches a string with a number."""
    if isinstance(a, (str, bytes)) != isinstance(b, (str, bytes)):
        return False
    try:
        return bool(a == b)
    except Exception:  # pragma: no cover - exotic label types
        return False


def _classes(y: np.ndarray, name: str) -> list:
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise DataError(f"{name} contains NaN labels")
    try:
        classes = np.unique(y)
    except TypeError as exc:
        raise DataError(f"{name} mixes label types that cannot be compared: {exc}") from exc
    return classes.tolist()


def binarize_labels(y_true: Any, pos_label: Any = 1) -> np.ndarray:
    """Boolean array ``y_true == pos_label`` after checking the labels.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels of any comparable type (strings, integers, booleans).
    pos_label : scalar, default=1
        The positive class. It must be one of the labels when ``y_true`` holds
        two classes. When ``y_true`` holds a single class that is not
        ``pos_label`` (of the same type), every sample is negative.

    Returns
    -------
    ndarray of bool, shape (n_samples,)

    Raises
    ------
    DataError
        Empty input, NaN labels, more than two classes, or ``pos_label`` not
        among two labels / of another type than the labels.
    """
    y = _as_1d(y_true, "y_true")
    classes = _classes(y, "y_true")
    if len(classes) > 2:
        raise DataError(
            f"binary metrics need at most two classes in y_true, got {len(classes)}: "
            f"{classes[:6]}"
        )
    match = [c for c in classes if _same_label(c, pos_label)]
    if match:
        return np.asarray(y == match[0], dtype=bool)
    if len(classes) == 2:
        raise DataError(f"pos_label={pos_label!r} is not one of the labels {classes}")
    if isinstance(classes[0], (str, bytes)) != isinstance(pos_label, (str, bytes)):
        raise DataError(
            f"pos_label={pos_label!r} does not have the type of the labels {classes} "
            "(string labels need a string pos_label and vice versa)"
        )
    return np.zeros(y.shape[0], dtype=bool)


def _binarize_pred(y_true: Any, y_pred: Any, pos_label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Binarize true labels and predicted labels (or booleans) consistently."""
    t = binarize_labels(y_true, pos_label)
    p = _as_1d(y_pred, "y_pred")
    if p.shape[0] != t.shape[0]:
        raise DataError(f"y_true has {t.shape[0]} samples but y_pred has {p.shape[0]}")
    if p.dtype == bool:
        return t, p
    allowed = _classes(_as_1d(y_true, "y_true"), "y_true") + [pos_label]
    pred_classes = _classes(p, "y_pred")
    unknown = [c for c in pred_classes if not any(_same_label(c, a) for a in allowed)]
    if unknown:
        raise DataError(
            f"y_pred holds labels {unknown[:6]} that are neither in y_true nor pos_label={pos_label!r}"
        )
    match = [c for c in pred_classes if _same_label(c, pos_label)]
    if not match:
        return t, np.zeros(p.shape[0], dtype=bool)
    return t, np.asarray(p == match[0], dtype=bool)


def _check_scores(y_score: Any, n: int, name: str = "y_score") -> np.ndarray:
    s = _as_1d(y_score, name)
    if s.shape[0] != n:
        raise DataError(f"y_true has {n} samples but {name} has {s.shape[0]}")
    try:
        s = s.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric: {exc}") from exc
    if not np.all(np.isfinite(s)):
        raise DataError(f"{name} contains NaN or infinite values")
    return s


def predict_at(y_score: Any, threshold: float = 0.5) -> np.ndarray:
    """Boolean predictions from scores: positive iff ``score >= threshold``.

    Parameters
    ----------
    y_score : array-like of shape (n_samples,)
        Scores, higher meaning more likely positive.
    threshold : float, default=0.5

    Returns
    -------
    ndarray of bool
    """
    s = _as_1d(y_score, "y_score").astype(np.float64)
    return s >= threshold


# --------------------------------------------------------------------------
# count-level formulas (vectorised: scalars or arrays of counts)
# --------------------------------------------------------------------------


def _check_zero_division(zero_division: Any) -> None:
    if isinstance(zero_division, str):
        if zero_division != "warn":
            raise DataError(f"zero_division must be 'warn' or a number, got {zero_division!r}")
    elif not isinstance(zero_division, (int, float, np.floating, np.integer)):
        raise DataError(f"zero_division must be 'warn' or a number, got {zero_division!r}")


def _ratio(num, den, zero_division, what: str):
    """``num / den`` with ``zero_division`` where ``den == 0``."""
    _check_zero_division(zero_division)
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    zero = den == 0
    fill = np.nan if zero_division == "warn" else float(zero_division)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(zero, fill, num / np.where(zero, 1.0, den))
    if zero_division == "warn" and np.any(zero):
        warnings.warn(f"{what}; returning nan", UndefinedMetricWarning, stacklevel=3)
    return out[()] if out.ndim == 0 else out


def _accuracy_c(tp, fp, tn, fn, zero_division="warn"):
    return _ratio(np.add(tp, tn), np.add(np.add(tp, tn), np.add(fp, fn)), zero_division,
                  "accuracy is undefined with no samples")


def _sensitivity_c(tp, fp, tn, fn, zero_division="warn"):
    return _ratio(tp, np.add(tp, fn), zero_division,
                  "sensitivity is undefined with no positive sample (TP + FN = 0)")


def _specificity_c(tp, fp, tn, fn, zero_division="warn"):
    return _ratio(tn, np.add(tn, fp), zero_division,
                  "specificity is undefined with no negative sample (TN + FP = 0)")


def _precision_c(tp, fp, tn, fn, zero_division="warn"):
    return _ratio(tp, np.add(tp, fp), zero_division,
                  "precision is undefined with no predicted positive (TP + FP = 0)")


def _npv_c(tp, fp, tn, fn, zero_division="warn"):
    return _ratio(tn, np.add(tn, fn), zero_division,
                  "NPV is undefined with no predicted negative (TN + FN = 0)")


def _f1_c(tp, fp, tn, fn, zero_division="warn"):
    return _ratio(np.multiply(2, tp), np.add(np.multiply(2, tp), np.add(fp, fn)), zero_division,
                  "F1 is undefined with no positive and no predicted positive (2TP + FP + FN = 0)")


def _both_classes(tp, fp, tn, fn):
    return (np.add(tp, fn) > 0) & (np.add(tn, fp) > 0)


def _balanced_accuracy_c(tp, fp, tn, fn, zero_division="warn"):
    ok = _both_classes(tp, fp, tn, fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        sens = _sensitivity_c(tp, fp, tn, fn, 0.0)
        spec = _specificity_c(tp, fp, tn, fn, 0.0)
    return _ratio(np.where(ok, np.add(sens, spec), 0.0), np.where(ok, 2.0, 0.0), zero_division,
                  "balanced accuracy is undefined with a single class in y_true")


def _youden_c(tp, fp, tn, fn, zero_division="warn"):
    ok = _both_classes(tp, fp, tn, fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        sens = _sensitivity_c(tp, fp, tn, fn, 0.0)
        spec = _specificity_c(tp, fp, tn, fn, 0.0)
    return _ratio(np.where(ok, np.add(sens, spec) - 1.0, 0.0), np.where(ok, 1.0, 0.0), zero_division,
                  "Youden's J is undefined with a single class in y_true")


def _mcc_c(tp, fp, tn, fn, zero_division="warn"):
    tp, fp, tn, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, tn, fn))
    num = tp * tn - fp * fn
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return _ratio(num, den, zero_division,
                  "MCC is undefined when a row or column of the confusion matrix is empty")


#: count-level formulas, name -> f(tp, fp, tn, fn, zero_division); vectorised
COUNT_METRICS: dict[str, Callable[..., Any]] = {
    "accuracy": _accuracy_c,
    "balanced_accuracy": _balanced_accuracy_c,
    "precision": _precision_c,
    "npv": _npv_c,
    "sensitivity": _sensitivity_c,
    "specificity": _specificity_c,
    "f1": _f1_c,
    "mcc": _mcc_c,
    "youden_index": _youden_c,
}


# --------------------------------------------------------------------------
# label-level metrics
# --------------------------------------------------------------------------


def confusion_counts(y_true: Any, y_pred: Any, *, pos_label: Any = 1) -> ConfusionCounts:
    """Binary confusion counts with an explicit positive class.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels in the label space of ``y_true`` (a sample is
        positive iff ``y_pred == pos_label``), or booleans (``True`` = positive).
    pos_label : scalar, default=1

    Returns
    -------
    ConfusionCounts
        ``(tp, fp, tn, fn)`` with ``TP = #(y=pos, ŷ=pos)``, ``FP = #(y≠pos, ŷ=pos)``,
        ``TN = #(y≠pos, ŷ≠pos)``, ``FN = #(y=pos, ŷ≠pos)``.
    """
    t, p = _binarize_pred(y_true, y_pred, pos_label)
    tp = int(np.count_nonzero(t & p))
    fp = int(np.count_nonzero(~t & p))
    fn = int(np.count_nonzero(t & ~p))
    tn = int(t.shape[0] - tp - fp - fn)
    return ConfusionCounts(tp, fp, tn, fn)


def accuracy(y_true: Any, y_pred: Any, *, pos_label: Any = 1) -> float:
    """Accuracy ``(TP + TN) / (TP + FP + TN + FN)``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels (or boolean predictions), see
        :func:`confusion_counts`.
    pos_label : scalar, default=1

    Returns
    -------
    float
    """
    return float(_accuracy_c(*confusion_counts(y_true, y_pred, pos_label=pos_label)))


def balanced_accuracy(y_true: Any, y_pred: Any, *, pos_label: Any = 1,
                      zero_division: Any = "warn") -> float:
    """Balanced accuracy ``(sensitivity + specificity) / 2``.

    Undefined (``zero_division``) when ``y_true`` holds a single class.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    pos_label : scalar, default=1
    zero_division : "warn" or float, default="warn"
        Value when undefined; ``"warn"`` returns nan with a warning.

    Returns
    -------
    float
    """
    return float(_balanced_accuracy_c(*confusion_counts(y_true, y_pred, pos_label=pos_label),
                                      zero_division))


def precision(y_true: Any, y_pred: Any, *, pos_label: Any = 1, zero_division: Any = "warn") -> float:
    """Precision (positive predictive value, PPV) ``TP / (TP + FP)``.

    Undefined (``zero_division``) when nothing is predicted positive.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    pos_label : scalar, default=1
    zero_division : "warn" or float, default="warn"

    Returns
    -------
    float
    """
    return float(_precision_c(*confusion_counts(y_true, y_pred, pos_label=pos_label), zero_division))


def npv(y_true: Any, y_pred: Any, *, pos_label: Any = 1, zero_division: Any = "warn") -> float:
    """Negative predictive value ``TN / (TN + FN)``.

    Undefined (``zero_division``) when nothing is predicted negative.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    pos_label : scalar, default=1
    zero_division : "warn" or float, default="warn"

    Returns
    -------
    float
    """
    return float(_npv_c(*confusion_counts(y_true, y_pred, pos_label=pos_label), zero_division))


def sensitivity(y_true: Any, y_pred: Any, *, pos_label: Any = 1, zero_division: Any = "warn") -> float:
    """Sensitivity (recall, true positive rate) ``TP / (TP + FN)``.

    Undefined (``zero_division``) when ``y_true`` has no positive.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    pos_label : scalar, default=1
    zero_division : "warn" or float, default="warn"

    Returns
    -------
    float
    """
    return float(_sensitivity_c(*confusion_counts(y_true, y_pred, pos_label=pos_label), zero_division))


def specificity(y_true: Any, y_pred: Any, *, pos_label: Any = 1, zero_division: Any = "warn") -> float:
    """Specificity (true negative rate) ``TN / (TN + FP)``.

    Undefined (``zero_division``) when ``y_true`` has no negative.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    pos_label : scalar, default=1
    zero_division : "warn" or float, default="warn"

    Returns
    -------
    float
    """
    return float(_specificity_c(*confusion_counts(y_true, y_pred, pos_label=pos_label), zero_division))


def f1(y_true: Any, y_pred: Any, *, pos_label: Any = 1, zero_division: Any = "warn") -> float:
    """F1 score ``2 TP / (2 TP + FP + FN)`` (harmonic mean of precision and recall).

    Undefined (``zero_division``) when there is no positive and no predicted
    positive.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    pos_label : scalar, default=1
    zero_division : "warn" or float, default="warn"

    Returns
    -------
    float
    """
    return float(_f1_c(*confusion_counts(y_true, y_pred, pos_label=pos_label), zero_division))


def mcc(y_true: Any, y_pred: Any, *, pos_label: Any = 1, zero_division: Any = "warn") -> float:
    """Matthews correlation coefficient.

    ``(TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))``; undefined
    (``zero_division``; scikit-learn returns 0) when a factor is zero. MCC is
    symmetric in the choice of the positive class.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    pos_label : scalar, default=1
    zero_division : "warn" or float, default="warn"

    Returns
    -------
    float
    """
    return float(_mcc_c(*confusion_counts(y_true, y_pred, pos_label=pos_label), zero_division))


def youden_index(y_true: Any, y_pred: Any, *, pos_label: Any = 1, zero_division: Any = "warn") -> float:
    """Youden's J statistic ``sensitivity + specificity − 1``.

    Undefined (``zero_division``) when ``y_true`` holds a single class.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    pos_label : scalar, default=1
    zero_division : "warn" or float, default="warn"

    Returns
    -------
    float
    """
    return float(_youden_c(*confusion_counts(y_true, y_pred, pos_label=pos_label), zero_division))


# --------------------------------------------------------------------------
# score-level metrics
# --------------------------------------------------------------------------


def _scores_and_truth(y_true: Any, y_score: Any, pos_label: Any) -> tuple[np.ndarray, np.ndarray]:
    t = binarize_labels(y_true, pos_label)
    return t, _check_scores(y_score, t.shape[0])


def roc_auc(y_true: Any, y_score: Any, *, pos_label: Any = 1) -> float:
    """Area under the ROC curve via the Mann–Whitney statistic.

    ``AUC = (Σ_{i∈pos} R_i − P(P+1)/2) / (P·N)`` where ``R_i`` are the midranks
    of the scores in the pooled sample; equivalently
    ``AUC = P(X > Y) + ½·P(X = Y)`` for a random positive score X and negative
    score Y (ties count one half, as the trapezoidal ROC area).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_score : array-like of shape (n_samples,)
        Scores, higher meaning more likely ``pos_label``.
    pos_label : scalar, default=1

    Returns
    -------
    float
        nan, with an :class:`UndefinedMetricWarning`, when ``y_true`` holds a
        single class.
    """
    t, s = _scores_and_truth(y_true, y_score, pos_label)
    n_pos = int(t.sum())
    n_neg = t.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        warnings.warn("ROC AUC is undefined with a single class in y_true; returning nan",
                      UndefinedMetricWarning, stacklevel=2)
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def pr_auc(y_true: Any, y_score: Any, *, pos_label: Any = 1) -> float:
    """Area under the precision–recall curve as average precision (AP).

    ``AP = Σ_k (R_k − R_{k−1}) · P_k`` over the distinct score values taken as
    thresholds in decreasing order, where ``P_k`` and ``R_k`` are precision and
    recall when predicting positive iff ``score >= t_k`` (``R_0 = 0``). This is
    scikit-learn's ``average_precision_score`` (a step function, no
    interpolation). Its chance level is the prevalence ``P / (P + N)``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_score : array-like of shape (n_samples,)
    pos_label : scalar, default=1

    Returns
    -------
    float
        nan, with an :class:`UndefinedMetricWarning`, when ``y_true`` holds no
        positive (with no negative it is 1).
    """
    t, s = _scores_and_truth(y_true, y_score, pos_label)
    n_pos = int(t.sum())
    if n_pos == 0:
        warnings.warn("average precision is undefined with no positive in y_true; returning nan",
                      UndefinedMetricWarning, stacklevel=2)
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    t_sorted = t[order]
    # last index of each run of equal scores (distinct thresholds)
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), s_sorted.shape[0] - 1]
    tps = np.cumsum(t_sorted)[last].astype(np.float64)
    fps = (last + 1) - tps
    prec = tps / (tps + fps)
    recall_step = np.diff(np.r_[0.0, tps]) / n_pos
    return float(np.sum(recall_step * prec))


def youden_threshold(y_true: Any, y_score: Any, *, pos_label: Any = 1) -> float:
    """Score threshold maximising Youden's J on the given (training) data.

    The candidates are the distinct observed scores ``t``; predicting positive
    iff ``score >= t`` gives ``J(t) = TPR(t) − FPR(t)``. J is compared exactly,
    as the integer ``TP·N − FP·P``, so no floating-point near-tie decides.

    **Tie rule:** among thresholds reaching the maximal J, the *highest* one is
    returned (the most specific operating point). The value returned is an
    observed score (as in :func:`sklearn.metrics.roc_curve`); any threshold in
    the gap down to the next lower observed score gives the same training
    predictions.

    Choose the threshold on training (or validation) data only and apply it to
    the test data; choosing it on the test data is optimistic.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_score : array-like of shape (n_samples,)
    pos_label : scalar, default=1

    Returns
    -------
    float

    Raises
    ------
    DataError
        When ``y_true`` holds a single class (J is undefined).
    """
    t, s = _scores_and_truth(y_true, y_score, pos_label)
    n_pos = int(t.sum())
    n_neg = t.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError("youden_threshold needs both classes in y_true")
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    t_sorted = t[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), s_sorted.shape[0] - 1]
    tps = np.cumsum(t_sorted, dtype=np.int64)[last]
    fps = (last + 1) - tps
    j_num = tps * np.int64(n_neg) - fps * np.int64(n_pos)
    best = int(np.argmax(j_num))  # first maximum = highest threshold
    return float(s_sorted[last[best]])


# --------------------------------------------------------------------------
# registry and report
# --------------------------------------------------------------------------


def _threshold_metric(name: str, count_fn: Callable[..., Any]) -> Callable[..., float]:
    def metric(y_true: Any, y_score: Any, threshold: float = 0.5, *, pos_label: Any = 1,
               zero_division: Any = "warn") -> float:
        t, s = _scores_and_truth(y_true, y_score, pos_label)
        counts = confusion_counts(t, s >= threshold, pos_label=True)
        return float(count_fn(*counts, zero_division))

    metric.__name__ = name
    metric.__qualname__ = name
    metric.__doc__ = (
        f"``{name}`` of the predictions ``score >= threshold``; see "
        f":func:`featurekit.evaluation.metrics.{name}` for the formula."
    )
    return metric


def _rank_metric(name: str, fn: Callable[..., float]) -> Callable[..., float]:
    def metric(y_true: Any, y_score: Any, threshold: float = 0.5, *, pos_label: Any = 1) -> float:
        return fn(y_true, y_score, pos_label=pos_label)

    metric.__name__ = name
    metric.__qualname__ = name
    metric.__doc__ = (
        f"``{name}`` of the scores (``threshold`` is ignored); see "
        f":func:`featurekit.evaluation.metrics.{name}`."
    )
    return metric


#: name -> function ``(y_true, y_score, threshold=0.5, *, pos_label=1) -> float``
METRICS: dict[str, Callable[..., float]] = {
    **{name: _threshold_metric(name, fn) for name, fn in COUNT_METRICS.items()},
    "roc_auc": _rank_metric("roc_auc", roc_auc),
    "pr_auc": _rank_metric("pr_auc", pr_auc),
}

#: metrics of :data:`METRICS` that ignore the threshold
THRESHOLD_FREE: frozenset[str] = frozenset({"roc_auc", "pr_auc"})

#: accepted alternative names -> canonical name in :data:`METRICS`
METRIC_ALIASES: dict[str, str] = {
    "acc": "accuracy",
    "bacc": "balanced_accuracy",
    "ppv": "precision",
    "recall": "sensitivity",
    "tpr": "sensitivity",
    "tnr": "specificity",
    "f1_score": "f1",
    "youden": "youden_index",
    "j": "youden_index",
    "auc": "roc_auc",
    "auroc": "roc_auc",
    "ap": "pr_auc",
    "average_precision": "pr_auc",
    "auprc": "pr_auc",
}


def get_metric(name: str) -> tuple[str, Callable[..., float]]:
    """Resolve a metric name (or alias, case-insensitive) to ``(name, function)``.

    Raises
    ------
    DataError
        Unknown name; the message lists the known ones.
    """
    key = str(name).strip().lower()
    key = METRIC_ALIASES.get(key, key)
    if key not in METRICS:
        raise DataError(
            f"unknown metric {name!r}; known: {', '.join(METRICS)} "
            f"(aliases: {', '.join(sorted(METRIC_ALIASES))})"
        )
    return key, METRICS[key]


def binary_report(y_true: Any, y_score: Any, threshold: float = 0.5, pos_label: Any = 1) -> dict:
    """Every metric of :data:`METRICS` at one threshold, with the counts.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_score : array-like of shape (n_samples,)
        Scores; predicted positive iff ``score >= threshold``.
    threshold : float, default=0.5
    pos_label : scalar, default=1

    Returns
    -------
    dict
        ``n``, ``n_pos``, ``n_neg``, ``threshold``, ``tp``, ``fp``, ``tn``,
        ``fn``, then one float per entry of :data:`METRICS` (undefined ones are
        nan, each with an :class:`UndefinedMetricWarning`).
    """
    t, s = _scores_and_truth(y_true, y_score, pos_label)
    c = confusion_counts(t, s >= threshold, pos_label=True)
    out: dict[str, Any] = {
        "n": c.n, "n_pos": c.n_pos, "n_neg": c.n_neg, "threshold": float(threshold),
        "tp": c.tp, "fp": c.fp, "tn": c.tn, "fn": c.fn,
    }
    for name, fn in COUNT_METRICS.items():
        out[name] = float(fn(*c))
    out["roc_auc"] = roc_auc(t, s, pos_label=True)
    out["pr_auc"] = pr_auc(t, s, pos_label=True)
    return out
