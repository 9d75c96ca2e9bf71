"""What the meta-classifiers over named pipelines share: their checks, their input rule, their tags.

:class:`~featurekit.evaluation.estimators.fusion.LateFusionClassifier` combines several
``(name, pipeline)`` pairs and :class:`~featurekit.evaluation.results.selection.SelectBestCandidate`
chooses one of them. Both take whatever ``X`` their pipelines take (sample ids
for the cache's pipelines, or a feature matrix), work with two classes (the
positive-class probability) or more (every class's probability), and follow
scikit-learn's contract the same way: parameters checked at ``fit``, ``X``
checked for shape and consistency only, ``classes_`` from ``y``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, check_X_y, validate_data  # scikit-learn >= 1.6

from featurekit.errors import DataError
from featurekit.evaluation.estimators.classifiers import class_probabilities, positive_scores
from featurekit.evaluation.estimators.resampling import _is_dataframe

__all__ = ["check_named_estimators"]


def check_named_estimators(pairs: Any, what: str, param: str) -> list[tuple[str, Any]]:
    """``pairs`` as a list of (name, estimator) with unique names, else a DataError naming ``param``."""
    if not isinstance(pairs, (list, tuple)) or not pairs:
        raise DataError(f"{what} needs at least one estimator: {param} is a list of (name, estimator) pairs")
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str) and hasattr(pair[1], "fit")):
            raise DataError(f"{what}: {param} must be (name, estimator) pairs, got {pair!r}")
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise DataError(f"{what}: the names in {param} must be unique, got {names}")
    return list(pairs)


class _NamedPipelinesClassifier(ClassifierMixin, BaseEstimator):
    """Base of classifiers built from ``(name, pipeline)`` pairs (see the module docstring).

    A subclass names the parameter holding its pairs in ``_pairs_param``.
    """

    _pairs_param = "estimators"

    def _positive(self):
        return self.classes_[-1]

    def _check_X(self, X, y=None, *, reset: bool):
        """``X`` (and ``y``) checked for shape and consistency; what ``X`` holds is the pipelines' concern.

        ``X`` keeps its dtype and may be 1-D (sample ids for id pipelines); ``n_features_in_`` is set when
        it has columns. A DataFrame goes to the pipelines as a DataFrame, other inputs as the checked array.
        """
        kw = dict(dtype=None, ensure_2d=False, ensure_all_finite=False, allow_nd=True, estimator=self)
        if reset:
            checked, y = check_X_y(X, y, **kw)
            if hasattr(self, "n_features_in_"):  # a 1-D X sets none: no stale count from an earlier fit
                del self.n_features_in_
        else:  # fitted on columns: a 1-D X is the "Reshape your data" error of scikit-learn
            checked = check_array(X, **{**kw, "ensure_2d": hasattr(self, "n_features_in_")})
        validate_data(self, X, reset=reset, skip_check_array=True)  # n_features_in_, feature_names_in_
        X = X if _is_dataframe(X) else checked
        return X if y is None else (X, y)

    def _set_classes(self, y) -> np.ndarray:
        """Set ``classes_`` from ``y``; fewer than two classes is a DataError."""
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.classes_.size < 2 or type_of_target(y) not in ("binary", "multiclass"):
            raise DataError(f"{type(self).__name__} needs at least two classes; the target has "
                            f"{self.classes_.size} class(es) {self.classes_.tolist()[:5]}")
        return self.classes_

    def _codes(self, y) -> np.ndarray:
        """``y`` as class codes ``0..K-1`` (the index in ``classes_``; 1 = positive with two classes)."""
        return np.searchsorted(self.classes_, np.asarray(y)).astype(np.int64)

    def _scores(self, estimator, X) -> np.ndarray:
        """A fitted pipeline's scores: its probability of ``classes_[1]`` with two classes (shape (n,)),
        of every class in ``classes_`` with more (shape (n, K))."""
        if self.classes_.size == 2:
            return positive_scores(estimator, X, self._positive())
        return class_probabilities(estimator, X, self.classes_)

    def _proba(self, scores: np.ndarray) -> np.ndarray:
        """``predict_proba``'s (n, K) from :meth:`_scores`-shaped scores."""
        return np.column_stack([1.0 - scores, scores]) if scores.ndim == 1 else scores

    def predict(self, X) -> np.ndarray:
        """With two classes ``classes_[1]`` where its probability is at least 0.5; else the most probable class."""
        p = self.predict_proba(X)
        if self.classes_.size == 2:
            return np.where(p[:, 1] >= 0.5, self.classes_[1], self.classes_[0])
        return self.classes_[np.argmax(p, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # sample ids, for id pipelines
        tags.input_tags.sparse = False
        pairs = getattr(self, self._pairs_param, None)
        pairs = pairs if isinstance(pairs, (list, tuple)) else []
        try:
            tags.input_tags.allow_nan = bool(pairs) and all(get_tags(e).input_tags.allow_nan for _, e in pairs)
        except (TypeError, ValueError):  # malformed pairs: reported by fit
            tags.input_tags.allow_nan = False
        return tags
