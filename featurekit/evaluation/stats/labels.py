"""Checking the inputs of binary metrics: labels with an explicit positive class, scores.

Labels can be anything comparable (``"benign"``/``"malignant"``, ``0``/``1``,
booleans): the positive class is named explicitly with ``pos_label``, never
inferred from the sort order of the labels. Malformed input (empty, NaN labels
or scores, more than two classes, a ``pos_label`` that is not one of two
labels) raises :class:`~featurekit.errors.DataError`. Every metric of
:mod:`featurekit.evaluation.stats.metrics` goes through these functions, so they all
accept and refuse the same things.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from featurekit.errors import DataError

__all__ = [
    "UndefinedMetricWarning",
    "binarize_labels",
    "binarize_predictions",
    "check_scores",
    "truth_and_scores",
]


class UndefinedMetricWarning(RuntimeWarning):
    """A metric is undefined on this data (zero denominator, one class only)."""


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


def binarize_predictions(y_true: Any, y_pred: Any, pos_label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Binarize true labels and predicted labels (or booleans) consistently.

    Returns
    -------
    is_pos, pred_pos : ndarray of bool
        ``y_true == pos_label`` and ``y_pred == pos_label`` (booleans in
        ``y_pred`` already mean "predicted positive").

    Raises
    ------
    DataError
        As :func:`binarize_labels`; also predicted labels that are neither in
        ``y_true`` nor ``pos_label``, or a length mismatch.
    """
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


def check_scores(y_score: Any, n: int, name: str = "y_score") -> np.ndarray:
    """``y_score`` as a finite float64 vector of ``n`` scores, or a :class:`DataError`."""
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


def truth_and_scores(y_true: Any, y_score: Any, pos_label: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true == pos_label, scores)`` checked as :func:`binarize_labels` and :func:`check_scores` do."""
    t = binarize_labels(y_true, pos_label)
    return t, check_scores(y_score, t.shape[0])
