"""Classifiers by name: a table of factories, default parameters and search grids.

:data:`CLASSIFIERS` maps a canonical name to a :class:`ClassifierSpec`;
:func:`make_classifier` turns a name into an unfitted estimator,
:func:`make_pipeline_for` puts features, standardisation and the classifier in
one :class:`~sklearn.pipeline.Pipeline`, and :func:`with_search` nests a grid
search (inner stratified, group-aware CV) inside it -- everything is fitted on
the training part of an outer fold only.

=============  ======================================  ==========================================
name           estimator                               aliases
=============  ======================================  ==========================================
logreg         LogisticRegression (L2, liblinear)      lr, logistic, logistic_regression
linear_svm     SVC(kernel="linear") + Platt sigmoid    svm_linear, linsvm, linear-svm
svm            SVC(kernel="rbf") + Platt sigmoid       rbf_svm, svm_rbf, rbf-svm, svc
rf             RandomForestClassifier                  random_forest, forest
xgboost        XGBClassifier (hist)                    xgb
knn            KNeighborsClassifier                    kneighbors, k-nn
mlp            MLPClassifier                           nn, neural_net
=============  ======================================  ==========================================

Every pipeline standardises its input (z-score, fitted on the training fold)
before the classifier: required by the linear/kernel models, kNN and the MLP,
harmless for the trees. SVM probabilities come from Platt scaling
(``CalibratedClassifierCV(SVC(), method="sigmoid", cv=5, ensemble=False)``,
the method of ``SVC(probability=True)``, deprecated in scikit-learn 1.9),
fitted by an internal 5-fold CV on the training data handed to ``fit`` (i.e.
inside the outer fold). Data with fewer than 5 samples of a class -- a small
subsample, or the inner folds of a small training part -- are calibrated with
as many folds as that class has (:class:`SmallDataCalibratedCV`), as
featurekit's inner CVs lower their folds; fewer than 2 is a
:class:`~featurekit.errors.DataError`.

Class imbalance (``class_weight="balanced"``): passed as ``class_weight`` to
the estimators that support it; XGBoost gets per-sample weights computed from
the training labels at fit time (:class:`BalancedSampleWeight`); kNN and the
MLP have no class weights, so they fall back to random oversampling of the
training folds (:class:`~featurekit.evaluation.estimators.resampling.OversampledClassifier`)
with a warning. ``oversample=True`` wraps any classifier in
:class:`~featurekit.evaluation.estimators.resampling.OversampledClassifier`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from featurekit.errors import DataError
from featurekit.evaluation.estimators.resampling import OversampledClassifier, _WrappedClassifier
from featurekit.evaluation.folds.protocols import inner_splits
from featurekit.specs import lookup

__all__ = [
    "ClassifierSpec",
    "CLASSIFIERS",
    "ALIASES",
    "BalancedSampleWeight",
    "GroupedGridSearchCV",
    "resolve_classifier",
    "make_classifier",
    "make_pipeline_for",
    "with_search",
    "search_grid",
    "positive_scores",
    "class_probabilities",
    "class_scores",
]


class SmallDataCalibratedCV(CalibratedClassifierCV):
    """:class:`~sklearn.calibration.CalibratedClassifierCV` whose integer ``cv`` is lowered, for one
    :meth:`fit`, to the smallest class count of the data it is given.

    scikit-learn's raises a ``ValueError`` when a class has fewer samples than
    ``cv``; the folds here are as many as the data allow (the parameter itself
    is unchanged), so an SVM on 16 images calibrates with 4 folds instead of
    failing after the work before it. A class with fewer than 2 samples cannot
    be calibrated at all: a :class:`~featurekit.errors.DataError` saying what to do.
    """

    def fit(self, X, y, sample_weight=None, **fit_params):
        requested = 5 if self.cv is None else self.cv
        if not isinstance(requested, (int, np.integer)):
            return super().fit(X, y, sample_weight=sample_weight, **fit_params)
        classes, counts = np.unique(np.asarray(y), return_counts=True)
        smallest = int(counts.min()) if counts.size else 0
        if smallest < 2:
            small = classes[int(np.argmin(counts))].item() if counts.size else None
            raise DataError(f"probability calibration (Platt scaling, {type(self.estimator).__name__}) needs 2 "
                            f"training samples of each class, got {smallest} of class {small!r} "
                            f"({len(y)} samples): use the logreg classifier, fewer folds, or more images")
        original = self.cv
        self.cv = min(int(requested), smallest)
        try:
            return super().fit(X, y, sample_weight=sample_weight, **fit_params)
        finally:
            self.cv = original


def _svc(**params):
    """SVC with Platt-scaled probabilities: ``CalibratedClassifierCV(SVC, sigmoid, cv=5, ensemble=False)``.

    Equivalent to the deprecated ``SVC(probability=True)``: the sigmoid is fitted
    on the out-of-fold decision values of an internal 5-fold CV of the data
    handed to ``fit`` (fewer folds when a class has fewer than 5 samples there:
    :class:`SmallDataCalibratedCV`) and the SVC is refitted on all of it.
    """
    return SmallDataCalibratedCV(SVC(**params), method="sigmoid", cv=5, ensemble=False)


def _xgb(**params):
    from xgboost import XGBClassifier

    return XGBClassifier(**params)


@dataclass(frozen=True)
class ClassifierSpec:
    """One row of the classifier table.

    Attributes
    ----------
    name : str
    factory : callable
        ``factory(**params) -> estimator``.
    defaults : dict
        Default parameters (``random_state`` is filled from the seed when listed
        in ``seeded``).
    grid : dict
        Search grid over the estimator's own parameters (no prefixes).
    class_weight : {"param", "sample_weight", "oversample"}
        How ``class_weight="balanced"`` is honoured.
    seeded : bool
        Whether the estimator takes ``random_state``.
    description : str
    grid_prefix : str
        Prefix from the factory's estimator to the parameters of ``grid``
        (``"estimator__"`` when the factory wraps the model, as the SVMs' calibration does).
    multiclass : dict
        Parameters that replace defaults for three or more classes (a binary-only
        solver, a binary loss).
    """

    name: str
    factory: Callable[..., Any]
    defaults: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    class_weight: str = "param"
    seeded: bool = True
    description: str = ""
    grid_prefix: str = ""
    multiclass: dict = field(default_factory=dict)


#: canonical name -> ClassifierSpec (data, not branches)
CLASSIFIERS: dict[str, ClassifierSpec] = {
    "logreg": ClassifierSpec(
        "logreg", LogisticRegression, {"C": 1.0, "solver": "liblinear", "max_iter": 5000},
        {"C": [0.001, 0.01, 0.1, 1.0, 10.0]}, "param", True, "L2 logistic regression",
        multiclass={"solver": "lbfgs"}),  # liblinear is binary only; lbfgs fits the multinomial model
    "linear_svm": ClassifierSpec(
        "linear_svm", _svc, {"kernel": "linear", "C": 1.0},
        {"C": [0.001, 0.01, 0.1, 1.0, 10.0]}, "param", True, "linear SVM with Platt probabilities",
        "estimator__"),
    "svm": ClassifierSpec(
        "svm", _svc, {"kernel": "rbf", "C": 1.0, "gamma": "scale"},
        {"C": [0.1, 1.0, 10.0, 100.0], "gamma": ["scale", 1e-3, 1e-2]}, "param", True,
        "RBF SVM with Platt probabilities", "estimator__"),
    "rf": ClassifierSpec(
        "rf", RandomForestClassifier, {"n_estimators": 300, "n_jobs": 1},
        {"max_depth": [None, 4, 8], "max_features": ["sqrt", 0.3]}, "param", True, "random forest"),
    "xgboost": ClassifierSpec(
        "xgboost", _xgb, {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.1,
                          "subsample": 0.8, "colsample_bytree": 0.8, "tree_method": "hist",
                          "n_jobs": 1, "eval_metric": "logloss"},
        {"max_depth": [2, 3, 5], "learning_rate": [0.03, 0.1, 0.3]}, "sample_weight", True,
        "gradient-boosted trees (XGBoost)", multiclass={"eval_metric": "mlogloss"}),
    "knn": ClassifierSpec(
        "knn", KNeighborsClassifier, {"n_neighbors": 7},
        {"n_neighbors": [3, 5, 7, 11, 15], "weights": ["uniform", "distance"]}, "oversample", False,
        "k nearest neighbours"),
    "mlp": ClassifierSpec(
        "mlp", MLPClassifier, {"hidden_layer_sizes": (100,), "alpha": 1e-3, "max_iter": 2000,
                               "early_stopping": False},
        {"alpha": [1e-4, 1e-3, 1e-2, 1e-1], "hidden_layer_sizes": [(50,), (100,), (100, 50)]},
        "oversample", True, "multi-layer perceptron"),
}

#: alternative name -> canonical name
ALIASES: dict[str, str] = {
    "lr": "logreg", "logistic": "logreg", "logistic_regression": "logreg", "logisticregression": "logreg",
    "svm_linear": "linear_svm", "linsvm": "linear_svm", "linear-svm": "linear_svm", "linearsvm": "linear_svm",
    "rbf_svm": "svm", "svm_rbf": "svm", "rbf-svm": "svm", "svc": "svm", "rbf": "svm",
    "random_forest": "rf", "forest": "rf", "randomforest": "rf", "random-forest": "rf",
    "xgb": "xgboost",
    "kneighbors": "knn", "k-nn": "knn",
    "nn": "mlp", "neural_net": "mlp",
}


def resolve_classifier(name: str) -> ClassifierSpec:
    """The :class:`ClassifierSpec` of a name or alias (case-insensitive)."""
    return lookup(name, CLASSIFIERS, ALIASES, "classifier")[1]


class BalancedSampleWeight(_WrappedClassifier):
    """Fit ``estimator`` with ``sample_weight = compute_sample_weight("balanced", y)``.

    The weights are computed from the labels handed to :meth:`fit` (the
    training fold), so nothing about the test fold is used; a ``sample_weight``
    given to :meth:`fit` enters the class totals (see :meth:`fit`). ``X`` is checked as
    :class:`~featurekit.evaluation.estimators.resampling.OversampledClassifier` checks it;
    predictions come from the fitted clone ``estimator_``.
    """

    def __init__(self, estimator: Any):
        self.estimator = estimator

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit a clone of ``estimator`` with class-balanced sample weights.

        Each sample's weight is ``s_i * S / (n_classes * S_c)``: its given weight
        ``s_i`` (default 1), the total weight ``S`` and that of its class ``S_c``.
        With unit weights this is ``compute_sample_weight("balanced", y)``; an
        integer weight acts as that many copies of the sample.
        """
        X, y = self._check_fit_input(X, y)
        if sample_weight is None:
            w = compute_sample_weight("balanced", y)
        else:
            given = np.asarray(sample_weight, dtype=np.float64)
            if given.shape != y.shape or not np.all(np.isfinite(given)) or (given < 0).any():
                raise DataError(f"sample_weight must be {y.shape[0]} finite non-negative numbers "
                                f"(one per sample), got shape {given.shape}")
            _, inv = np.unique(y, return_inverse=True)
            totals = np.bincount(inv, weights=given)
            share = np.divide(given.sum(), totals.size * totals, out=np.zeros_like(totals), where=totals > 0)
            w = given * share[inv]
        self._fit_clone(X, y, sample_weight=w, **fit_params)
        return self


def make_classifier(name: str, *, params: dict | None = None, class_weight: str | None = None,
                    oversample: bool = False, random_state: int | None = 0, n_classes: int = 2) -> Any:
    """An unfitted classifier from the table.

    Parameters
    ----------
    name : str
        Name or alias (see :data:`CLASSIFIERS`).
    params : dict, optional
        Overrides of the default parameters.
    class_weight : {None, "balanced"}
        See the module docstring for how each classifier honours it.
    oversample : bool
        Random oversampling of the training data (wraps the classifier).
    random_state : int or None
        Seed of the estimator (and of the oversampling).
    n_classes : int, default=2
        Classes of the task: from 3 on, the table's ``multiclass`` parameters apply.

    Returns
    -------
    estimator
    """
    spec = resolve_classifier(name)
    kw = dict(spec.defaults)
    if n_classes > 2:
        kw.update(spec.multiclass)
    if spec.seeded:
        kw["random_state"] = random_state
    kw.update(params or {})
    if class_weight not in (None, "none", "balanced"):
        raise DataError(f"class_weight must be None or 'balanced', got {class_weight!r}")
    balanced = class_weight == "balanced"
    if balanced and spec.class_weight == "param":
        kw["class_weight"] = "balanced"
    est = spec.factory(**kw)
    if balanced and spec.class_weight == "sample_weight":
        est = BalancedSampleWeight(est)
    if balanced and spec.class_weight == "oversample" and not oversample:
        warnings.warn(
            f"{spec.name} has no class weights: class_weight='balanced' is honoured by random "
            "oversampling of the training folds instead", UserWarning, stacklevel=2,
        )
        oversample = True
    if oversample:
        est = OversampledClassifier(est, random_state=random_state)
    return est


def _inner_estimator_prefix(est: Any) -> str:
    """Parameter prefix from a (possibly wrapped) classifier to the table's estimator."""
    prefix = ""
    while isinstance(est, (OversampledClassifier, BalancedSampleWeight)):
        prefix += "estimator__"
        est = est.estimator
    return prefix


def make_pipeline_for(features: Any, classifier: Any, *, scale: bool = True) -> Pipeline:
    """``Pipeline([("features", features), ("scale", StandardScaler()), ("clf", classifier)])``.

    ``features`` is a transformer from ids to features (:class:`CachedFeatures`,
    or an early-fusion union); ``scale=False`` drops the scaler (e.g. when the
    features are already scaled per block).
    """
    steps = [("features", features)]
    if scale:
        steps.append(("scale", StandardScaler()))
    steps.append(("clf", classifier))
    return Pipeline(steps)


def search_grid(name: str, classifier: Any, step: str = "clf") -> dict:
    """The table's grid of ``name`` with the pipeline prefixes of ``classifier``."""
    spec = resolve_classifier(name)
    prefix = f"{step}__" + _inner_estimator_prefix(classifier) + spec.grid_prefix
    return {prefix + k: list(v) for k, v in spec.grid.items()}


class GroupedGridSearchCV(GridSearchCV):
    """:class:`~sklearn.model_selection.GridSearchCV` whose inner CV is built at fit time.

    ``cv`` is the number of inner folds: stratified k-fold on the training data,
    stratified *group* k-fold when ``groups`` are passed to :meth:`fit` (so the
    inner splits never separate a patient either); lowered to the size of the
    smallest class (or the number of groups) when those are fewer. Scoring
    defaults to ROC AUC.
    """

    def __init__(self, estimator, param_grid, *, scoring="roc_auc", n_jobs=None, refit=True,
                 cv=3, verbose=0, pre_dispatch="2*n_jobs", error_score=np.nan,
                 return_train_score=False, random_state=0):
        super().__init__(estimator, param_grid, scoring=scoring, n_jobs=n_jobs, refit=refit, cv=cv,
                         verbose=verbose, pre_dispatch=pre_dispatch, error_score=error_score,
                         return_train_score=return_train_score)
        self.random_state = random_state

    def fit(self, X, y=None, *, groups=None, **params):
        """Run the search; an integer ``cv`` becomes stratified (group) inner folds of ``(y, groups)``.

        With three or more classes, ``scoring="roc_auc"`` means the macro
        one-vs-rest AUC (scikit-learn's ``"roc_auc_ovr"``), the AUC the
        evaluation reports for such targets.
        """
        overrides: dict[str, Any] = {}
        if y is not None and self.scoring == "roc_auc":
            check_classification_targets(y)
            if type_of_target(y) == "multiclass":
                overrides["scoring"] = "roc_auc_ovr"
        if isinstance(self.cv, (int, np.integer)):
            if y is None:
                raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None: "
                                 "its inner folds are stratified")
            check_classification_targets(y)
            splits = inner_splits(y, groups, int(self.cv), self.random_state)
            if splits is None:
                raise DataError(f"too few training samples per class (or groups) for the inner search CV "
                                f"(n_samples={len(y)}, {np.unique(y).size} class(es))")
            overrides["cv"] = splits
            capped = cap_neighbors(self.param_grid, min(len(train) for train, _ in splits))
            if capped is not None:
                overrides["param_grid"] = capped
        else:
            params["groups"] = groups
        # the resolved values hold for this fit only: the parameters stay as given (scikit-learn's contract)
        original = {k: getattr(self, k) for k in overrides}
        for k, v in overrides.items():
            setattr(self, k, v)
        try:
            return super().fit(X, y, **params)
        finally:
            for k, v in original.items():
                setattr(self, k, v)


def cap_neighbors(param_grid, n_fit: int):
    """``param_grid`` with every ``n_neighbors`` value above ``n_fit`` (the smallest inner training part)
    left out -- k-nearest neighbours cannot ask for more neighbours than it was fitted on -- or None when
    nothing changes. A list that would be left empty keeps ``n_fit``."""
    grids = [param_grid] if isinstance(param_grid, Mapping) else list(param_grid)
    changed = False
    out = []
    for grid in grids:
        new = dict(grid)
        for key, values in grid.items():
            if key == "n_neighbors" or key.endswith("__n_neighbors"):
                kept = [v for v in values if int(v) <= n_fit] or [max(1, int(n_fit))]
                if kept != list(values):
                    new[key], changed = kept, True
        out.append(new)
    if not changed:
        return None
    return out[0] if isinstance(param_grid, Mapping) else out


def with_search(pipeline: Pipeline, grid: dict, *, inner_cv: int = 3, scoring: str = "roc_auc",
                random_state: int | None = 0, n_jobs: int | None = None) -> GroupedGridSearchCV:
    """Nest a grid search (inner stratified, group-aware CV) around ``pipeline``.

    Used as the estimator of an outer fold, the search only sees that fold's
    training data: the hyper-parameters are chosen without the test fold.
    """
    if not grid:
        raise DataError("empty search grid")
    return GroupedGridSearchCV(pipeline, grid, scoring=scoring, cv=inner_cv, n_jobs=n_jobs,
                               random_state=random_state)


def class_probabilities(estimator: Any, X: Any, classes: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Probabilities of ``classes`` (columns in that order) from a fitted classifier.

    Uses ``predict_proba``; an estimator without it gets the logistic function
    of its ``decision_function`` (binary) or its softmax (more classes): a
    monotone map per class, so AUCs are unchanged. A class the fold's model
    never saw (absent from its training part) gets probability 0.
    """
    fitted = list(getattr(estimator, "classes_", [0, 1]))
    if hasattr(estimator, "predict_proba"):
        proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    else:
        from scipy.special import expit, softmax

        d = np.asarray(estimator.decision_function(X), dtype=np.float64)
        if d.ndim == 1:
            p1 = expit(d)
            proba = np.column_stack([1.0 - p1, p1])
        else:
            proba = softmax(d, axis=1)
    out = np.zeros((proba.shape[0], len(classes)), dtype=np.float64)
    for j, c in enumerate(classes):
        if c in fitted:
            out[:, j] = proba[:, fitted.index(c)]
    return out


def positive_scores(estimator: Any, X: Any, positive: Any = 1) -> np.ndarray:
    """Probability of the ``positive`` class from a fitted classifier (:func:`class_probabilities`)."""
    classes = list(getattr(estimator, "classes_", [0, 1]))
    if positive not in classes:
        raise DataError(f"the classifier was not trained on the positive class {positive!r} "
                        f"(classes {classes})")
    return class_probabilities(estimator, X, [positive])[:, 0]


def class_scores(estimator: Any, X: Any, n_classes: int) -> np.ndarray:
    """What the engine records of a prediction: the class-1 probability with two classes
    (shape (n,)), every class's probability with more (shape (n, n_classes))."""
    if n_classes == 2:
        return positive_scores(estimator, X, 1)
    return class_probabilities(estimator, X, range(n_classes))
