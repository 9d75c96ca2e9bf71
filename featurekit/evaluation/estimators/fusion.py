"""Early and late fusion of feature sets.

Early fusion (the papers' "V+Gabor", "V+GLCM", "V+HaarLike")
    :func:`early_fusion` concatenates several cached feature sets. Each block is
    its own ``Pipeline(CachedFeatures -> StandardScaler [-> PCA | SelectKBest])``
    inside a :class:`~sklearn.pipeline.FeatureUnion`, so every block is scaled
    (and reduced) with statistics of the training fold only, and a 1280-d CNN
    block and a 64-d Gabor block both enter the classifier z-scored. With
    ``block_weight="equal"`` each block is further divided by ``sqrt(its
    dimension)`` so that every block carries the same total variance whatever
    its size. :func:`early_fusion_pipeline` appends a classifier (without a
    second global scaler, which would undo the block weighting).

Late fusion
    :class:`LateFusionClassifier` trains one classifier pipeline per feature set
    and combines their positive-class probabilities by soft voting (weighted
    mean) or stacking (a logistic regression on the base models' out-of-fold
    probabilities from an inner, group-aware CV of the training data; the bases
    are then refitted on all the training data).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, clone
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data  # scikit-learn >= 1.6

from featurekit.errors import DataError
from featurekit.evaluation.estimators.features import CachedFeatures
from featurekit.evaluation.estimators.meta import _NamedPipelinesClassifier, check_named_estimators
from featurekit.evaluation.estimators.resampling import _take
from featurekit.evaluation.folds.protocols import inner_splits

__all__ = [
    "EqualBlockWeight",
    "block_pipeline",
    "early_fusion",
    "early_fusion_pipeline",
    "LateFusionClassifier",
    "fit_accepts",
    "fit_accepts_groups",
]


class EqualBlockWeight(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Multiply a block by ``1 / sqrt(n_features)`` (equal total variance per block).

    Depends on the block's dimension only, never on the values. ``X`` is
    checked as scikit-learn's scalers check it (numeric, finite, 2-D; sparse
    stays sparse); the output is float64.

    Attributes
    ----------
    scale_ : float
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    """

    def fit(self, X, y=None):
        """Record the block's dimension."""
        X = validate_data(self, X, reset=True, accept_sparse=("csr", "csc"), dtype=np.float64)
        self.scale_ = 1.0 / np.sqrt(X.shape[1])
        return self

    def transform(self, X):
        """``X * scale_`` (float64)."""
        check_is_fitted(self, "scale_")
        X = validate_data(self, X, reset=False, accept_sparse=("csr", "csc"), dtype=np.float64)
        return X * self.scale_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.required = False
        return tags


def _as_block(block: Any, cache) -> CachedFeatures:
    if isinstance(block, CachedFeatures):
        return block
    if isinstance(block, tuple):  # (key, entry_id)
        key, entry_id = block
        return CachedFeatures(key, cache=cache, entry_id=entry_id)
    return CachedFeatures(str(block), cache=cache)


def block_pipeline(features: CachedFeatures, *, reduce: str | None = None,
                   n_components: float | int = 0.95, k: int = 32,
                   block_weight: str | None = None) -> Pipeline:
    """``CachedFeatures -> StandardScaler [-> PCA | SelectKBest(f_classif)] [-> weight]``.

    Parameters
    ----------
    features : CachedFeatures
    reduce : {None, "pca", "select"}
        Optional per-block dimensionality reduction, fitted on the training fold.
    n_components : float or int
        PCA components (a float in (0, 1) keeps that fraction of variance).
    k : int
        Features kept by ``SelectKBest`` (capped at the block's dimension when known).
    block_weight : {None, "equal"}
        See :class:`EqualBlockWeight`.
    """
    steps = [("features", features), ("scale", StandardScaler())]
    if reduce == "pca":
        steps.append(("reduce", PCA(n_components=n_components, svd_solver="full")))
    elif reduce == "select":
        steps.append(("reduce", SelectKBest(f_classif, k=k)))
    elif reduce not in (None, "none"):
        raise DataError(f"reduce must be None, 'pca' or 'select', got {reduce!r}")
    if block_weight == "equal":
        steps.append(("weight", EqualBlockWeight()))
    elif block_weight not in (None, "none"):
        raise DataError(f"block_weight must be None or 'equal', got {block_weight!r}")
    return Pipeline(steps)


def _block_name(cf: CachedFeatures, used: set) -> str:
    base = cf.key.replace("/", ":")
    name, i = base, 2
    while name in used:
        name, i = f"{base}#{i}", i + 1
    used.add(name)
    return name


def early_fusion(blocks: Sequence[Any], cache=None, *, reduce: str | None = None,
                 n_components: float | int = 0.95, k: int | dict = 32,
                 block_weight: str | None = None) -> FeatureUnion:
    """Concatenate feature sets, each scaled (and optionally reduced) inside the fold.

    Parameters
    ----------
    blocks : sequence
        Feature keys (``"vgg16/block5_conv3"``, ``"gabor"``), ``(key, entry_id)``
        pairs, or configured :class:`CachedFeatures`.
    cache : path or FeatureCache
        Cache of the blocks given as keys.
    reduce, n_components, block_weight
        See :func:`block_pipeline`.
    k : int or dict
        Features kept per block by ``reduce="select"`` (a dict maps key -> k).
        Capped at the block's dimension.

    Returns
    -------
    FeatureUnion
        Named ``<key with ':' for '/'>``; output columns ``<block>__<feature>``.
    """
    if len(blocks) < 1:
        raise DataError("early fusion needs at least one feature set")
    used: set = set()
    parts = []
    for block in blocks:
        cf = _as_block(block, cache)
        kk = k.get(cf.key, 32) if isinstance(k, dict) else k
        if reduce == "select":
            try:
                kk = min(int(kk), cf._resolved()[1])
            except Exception:  # unknown dimension: SelectKBest validates at fit
                pass
        parts.append((_block_name(cf, used), block_pipeline(cf, reduce=reduce, n_components=n_components,
                                                            k=kk, block_weight=block_weight)))
    return FeatureUnion(parts)


def early_fusion_pipeline(blocks: Sequence[Any], classifier: Any, cache=None, **kwargs: Any) -> Pipeline:
    """``Pipeline([("features", early_fusion(blocks, ...)), ("clf", classifier)])``."""
    return Pipeline([("features", early_fusion(blocks, cache, **kwargs)), ("clf", classifier)])


def fit_accepts(estimator: Any, name: str) -> bool:
    """Whether ``estimator.fit`` takes an argument ``name`` (``groups``, ``validation``: our meta-estimators)."""
    import inspect

    try:
        return name in inspect.signature(estimator.fit).parameters
    except (TypeError, ValueError):
        return False


def fit_accepts_groups(estimator: Any) -> bool:
    """Whether ``estimator.fit`` takes a ``groups`` argument (our group-aware meta-estimators)."""
    return fit_accepts(estimator, "groups")


def _fit_base(est: Any, X, y, groups):
    """Fit a clone of ``est``, passing ``groups`` when it takes them (e.g. a nested search)."""
    model = clone(est)
    if groups is not None and fit_accepts_groups(model):
        return model.fit(X, y, groups=np.asarray(groups))
    return model.fit(X, y)


class LateFusionClassifier(_NamedPipelinesClassifier):
    """Combine per-feature-set classifiers by soft voting or stacking.

    Parameters
    ----------
    estimators : list of (str, estimator)
        One full pipeline per feature set (ids -> probability), e.g. from
        :func:`~featurekit.evaluation.estimators.classifiers.make_pipeline_for`.
    method : {"vote", "stack"}
        ``vote``: weighted mean of the bases' class probabilities (the
        positive-class probability with two classes).
        ``stack``: logistic regression on the bases' out-of-fold probabilities
        (inner ``cv``-fold CV of the training data, grouped when ``groups`` are
        given to :meth:`fit`).
    weights : sequence of float, optional
        Voting weights (default equal).
    final_estimator : classifier, optional
        Stacking meta-learner (default ``LogisticRegression()``).
    cv : int, default=5
        Inner folds for stacking.
    random_state : int or None, default=0

    Attributes
    ----------
    estimators_ : list of fitted estimators
    final_estimator_ : fitted meta-learner (stacking)
    classes_ : ndarray
    """

    def __init__(self, estimators, method: str = "vote", weights=None, final_estimator=None,
                 cv: int = 5, random_state: int | None = 0):
        self.estimators = estimators
        self.method = method
        self.weights = weights
        self.final_estimator = final_estimator
        self.cv = cv
        self.random_state = random_state

    def _base_scores(self, estimators, X) -> list[np.ndarray]:
        return [self._scores(e, X) for e in estimators]

    @staticmethod
    def _stack_features(scores: list[np.ndarray]) -> np.ndarray:
        """The stacker's input: each base's probabilities side by side."""
        return np.column_stack(scores)

    def _check_params(self) -> None:
        """The parameters checked at fit (scikit-learn's rule: ``__init__`` stores them untouched)."""
        if self.method not in ("vote", "stack"):
            raise DataError(f"late fusion method must be 'vote' or 'stack', got {self.method!r}")
        check_named_estimators(self.estimators, "late fusion", "estimators")
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64) if np.ndim(self.weights) == 1 else None
            if (w is None or w.shape[0] != len(self.estimators) or not np.all(np.isfinite(w))
                    or (w < 0).any() or w.sum() <= 0):
                raise DataError(f"late fusion weights must be {len(self.estimators)} non-negative numbers with a "
                                f"positive sum (one per estimator), got {self.weights!r}")
        if self.method == "stack" and (not isinstance(self.cv, (int, np.integer)) or self.cv < 2):
            raise DataError(f"late fusion cv must be an integer >= 2, got {self.cv!r}")

    def fit(self, X, y, groups=None):
        """Fit the bases (and the stacker) on ``(X, y)``; ``groups`` make the inner CV grouped."""
        self._check_params()
        X, y = self._check_X(X, y, reset=True)
        self._set_classes(y)
        if self.method == "stack":
            splits = inner_splits(y, groups, int(self.cv), self.random_state)
            if splits is None:
                raise DataError("too few training samples per class (or groups) for the stacking CV")
            width = len(self.estimators) * (1 if self.classes_.size == 2 else self.classes_.size)
            oof = np.zeros((len(y), width))
            for tr, te in splits:
                g_tr = None if groups is None else np.asarray(groups)[tr]
                fitted = [_fit_base(est, _take(X, tr), y[tr], g_tr) for _, est in self.estimators]
                oof[te] = self._stack_features(self._base_scores(fitted, _take(X, te)))
            final = clone(self.final_estimator) if self.final_estimator is not None else LogisticRegression()
            self.final_estimator_ = final.fit(oof, y)
        self.estimators_ = [_fit_base(est, X, y, groups) for _, est in self.estimators]
        return self

    def predict_proba(self, X) -> np.ndarray:
        """The fused probability of every class in ``classes_`` (``[1 - p, p]`` with two classes)."""
        check_is_fitted(self, "estimators_")
        X = self._check_X(X, reset=False)
        scores = self._base_scores(self.estimators_, X)
        if self.method == "vote":
            w = np.ones(len(scores)) if self.weights is None else np.asarray(self.weights, float)
            w = w / w.sum()
            return self._proba(sum(wi * s for wi, s in zip(w, scores)))
        return self._proba(self._scores(self.final_estimator_, self._stack_features(scores)))
