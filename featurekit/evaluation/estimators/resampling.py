"""Random oversampling as a meta-estimator, so that it happens inside CV folds.

Oversampling before splitting copies training samples into the test folds and
inflates every metric. :class:`OversampledClassifier` resamples only the data
handed to its ``fit`` — inside cross-validation, the training part of a fold —
and predicts with the wrapped estimator unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data  # scikit-learn >= 1.6

__all__ = ["OversampledClassifier", "random_oversample_indices"]


def random_oversample_indices(y: Any, random_state: Any = None) -> np.ndarray:
    """Indices that randomly oversample every class up to the largest class.

    All original indices ``0..n-1`` come first, in order, followed by the
    duplicates drawn with replacement within each smaller class (class by class,
    in sorted class order). With balanced classes this is ``arange(n)``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels.
    random_state : int, RandomState or None

    Returns
    -------
    ndarray of int of length ``n_classes · max_class_count``
    """
    rng = check_random_state(random_state)
    y = np.asarray(y)
    _, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    target = counts.max()
    parts = [np.arange(y.shape[0])]
    for c, cnt in enumerate(counts):
        if cnt < target:
            members = np.flatnonzero(inv == c)
            parts.append(rng.choice(members, size=target - cnt, replace=True))
    return np.concatenate(parts)


def _is_dataframe(X: Any) -> bool:
    return hasattr(X, "iloc") and hasattr(X, "columns")


def _take(a: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of an array, sparse matrix, DataFrame/Series or sequence."""
    if hasattr(a, "iloc"):
        return a.iloc[idx]
    if hasattr(a, "tocsr") or isinstance(a, np.ndarray):
        return a[idx]
    return np.asarray(a)[idx]


def _estimator_has(attr: str):
    def check(self) -> bool:
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


class _WrappedClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier that fits a clone of ``estimator`` on checked data and predicts with it.

    Subclasses define ``fit``: :meth:`_check_fit_input` checks ``(X, y)`` and
    sets ``n_features_in_`` (``feature_names_in_`` for a DataFrame), then
    :meth:`_fit_clone` fits the clone. ``X`` is checked for shape and
    consistency only (``dtype`` kept, NaN left to the wrapped estimator, sparse
    accepted when it accepts sparse); a pandas DataFrame reaches the wrapped
    estimator as a DataFrame, other inputs as the checked array.
    """

    def _check_params(self) -> dict:
        return {
            "accept_sparse": ["csr", "csc"] if get_tags(self.estimator).input_tags.sparse else False,
            "dtype": None,
            "ensure_all_finite": False,
        }

    def _check_fit_input(self, X: Any, y: Any) -> tuple:
        X_checked, y = validate_data(self, X, y, reset=True, **self._check_params())
        check_classification_targets(y)
        return (X if _is_dataframe(X) else X_checked), y

    def _fit_clone(self, X: Any, y: Any, **params: Any) -> None:
        self.estimator_ = clone(self.estimator).fit(X, y, **params)
        self.classes_ = getattr(self.estimator_, "classes_", np.unique(y))

    def _check_predict_input(self, X: Any) -> Any:
        check_is_fitted(self)
        X_checked = validate_data(self, X, reset=False, **self._check_params())
        return X if _is_dataframe(X) else X_checked

    def predict(self, X: Any) -> np.ndarray:
        """Class predictions of the fitted estimator."""
        X = self._check_predict_input(X)
        return self.estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the fitted estimator (columns follow ``classes_``)."""
        X = self._check_predict_input(X)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log class probabilities of the fitted estimator."""
        X = self._check_predict_input(X)
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision function of the fitted estimator."""
        X = self._check_predict_input(X)
        return self.estimator_.decision_function(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags


class OversampledClassifier(_WrappedClassifier):
    """Fit a classifier on randomly oversampled training data.

    In :meth:`fit`, each class smaller than the largest one is topped up with
    samples drawn with replacement from that class (the ``RandomOverSampler``
    strategy of imbalanced-learn, ``sampling_strategy="not majority"``), then
    a clone of ``estimator`` is fitted. Prediction methods delegate to the
    fitted clone and never resample. Used as a step of a CV loop (or as the
    ``estimator`` of ``cross_val_predict``), the oversampling only ever sees the
    training part of each fold.

    Parameters
    ----------
    estimator : classifier
        The classifier to fit (cloned; never modified).
    random_state : int, RandomState or None, default=None
        Seed of the oversampling draws (the wrapped estimator keeps its own).

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone.
    classes_ : ndarray
        Class labels (of ``estimator_`` when it has them).
    sample_indices_ : ndarray of int
        Indices of the training data used for the fit: ``arange(n)`` followed by
        the duplicates (see :func:`random_oversample_indices`).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Notes
    -----
    ``X`` is checked for shape and consistency (``dtype`` is kept, NaN are left
    to the wrapped estimator, sparse input is accepted when the wrapped
    estimator accepts it); a pandas DataFrame is passed to the wrapped estimator
    as a DataFrame, other inputs as the checked array. Fit parameters whose length is the number of samples (e.g.
    ``sample_weight``) are resampled with ``X``; others are passed unchanged.
    Passes :func:`sklearn.utils.estimator_checks.check_estimator` with a
    scikit-learn classifier inside.
    """

    def __init__(self, estimator: Any, random_state: Any = None):
        self.estimator = estimator
        self.random_state = random_state

    def fit(self, X: Any, y: Any, **fit_params: Any) -> "OversampledClassifier":
        """Oversample ``(X, y)`` and fit a clone of ``estimator`` on it.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        **fit_params : dict
            Passed to the estimator's ``fit``; per-sample arrays are resampled.

        Returns
        -------
        self
        """
        X, y = self._check_fit_input(X, y)
        n = y.shape[0]
        idx = random_oversample_indices(y, self.random_state)
        X_res = _take(X, idx)
        y_res = y[idx]
        params = {}
        for key, value in fit_params.items():
            if (
                value is not None
                and not isinstance(value, (str, bytes, dict))
                and hasattr(value, "__len__")
                and len(value) == n
            ):
                params[key] = _take(value, idx)
            else:
                params[key] = value
        self._fit_clone(X_res, y_res, **params)
        self.sample_indices_ = idx
        return self
