"""Operating points: predictions at a threshold, and the threshold maximising Youden's J.

A sample is predicted positive iff ``score >= threshold`` everywhere in
featurekit (the convention of :func:`sklearn.metrics.roc_curve`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from featurekit.errors import DataError
from featurekit.evaluation.stats.labels import _as_1d, truth_and_scores
from featurekit.evaluation.stats.ranking import value_counts, youden_index_of_values

__all__ = ["predict_at", "youden_threshold"]


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

    References
    ----------
    Youden WJ. Index for rating diagnostic tests. Cancer 1950;3(1):32–35.
    """
    t, s = truth_and_scores(y_true, y_score, pos_label)
    vc = value_counts(t, s)
    if vc.pos.sum() == 0 or vc.neg.sum() == 0:
        raise DataError("youden_threshold needs both classes in y_true")
    return float(vc.values[youden_index_of_values(vc.pos, vc.neg)])
