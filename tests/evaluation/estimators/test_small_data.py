"""Classifiers on small data: the SVM's probability calibration fits whatever data the folds leave it."""

import numpy as np
import pytest

from featurekit.errors import DataError
from featurekit.evaluation.estimators.classifiers import make_classifier
from featurekit.evaluation.results.crossval import cross_validate


def _data(n_pos, n_neg, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    return rng.normal(size=(y.size, d)) + y[:, None], y


def test_svm_calibrates_with_as_many_folds_as_the_smallest_class_allows():
    X, y = _data(3, 9)  # 3 of a class: scikit-learn's 5-fold calibration raised ValueError here
    svm = make_classifier("svm").fit(X, y)
    p = svm.predict_proba(X)
    assert p.shape == (12, 2) and np.all((p >= 0) & (p <= 1))
    assert svm.cv == 5  # the parameter itself is unchanged (scikit-learn's rule for fit)
    X5, y5 = _data(5, 9)
    np.testing.assert_array_equal(make_classifier("svm").fit(X5, y5).predict_proba(X5),
                                  make_classifier("svm").fit(X5, y5).predict_proba(X5))


def test_svm_with_one_sample_of_a_class_says_what_to_do():
    X, y = _data(1, 9)
    with pytest.raises(DataError, match=r"needs 2 training samples of each class, got 1 of class 1.*logreg"):
        make_classifier("svm").fit(X, y)


def test_svm_cross_validates_a_small_subsample():
    """16 samples, 2 folds: 4 of each class per training part, about 2-3 in the inner Youden folds."""
    X, y = _data(8, 8, seed=1)
    ev = cross_validate({"svm": make_classifier("svm")}, X, y, cv="2", n_boot=20, compare=False)
    row = ev.results.iloc[0]
    assert row["n"] == 16 and 0.0 <= row["roc_auc"] <= 1.0
