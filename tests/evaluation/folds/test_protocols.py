"""CV protocols (splitters, parser) and oversampling inside the training folds."""

import math
from collections import Counter

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict, cross_val_score
from sklearn.utils.estimator_checks import check_estimator

from featurekit.errors import DataError, FeaturekitError
from featurekit.evaluation.estimators.resampling import OversampledClassifier, random_oversample_indices
from featurekit.evaluation.folds.protocols import (
    CVSpecError,
    HoldoutCV,
    PredefinedSplitCV,
    StratifiedKFoldCV,
    describe_protocol,
    iter_folds,
    parse_cv,
)


def _labels(n=103, seed=0, p=0.3):
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < p, "malignant", "benign")


def _patients(y, seed=0, max_images=4):
    """Group ids: 1-4 images per patient; a patient's images share the label."""
    rng = np.random.default_rng(seed)
    order = np.argsort(y, kind="stable")
    groups = np.empty(len(y), dtype=object)
    pid, i = 0, 0
    while i < len(y):
        k = int(rng.integers(1, max_images + 1))
        block = order[i:i + k]
        block = block[y[block] == y[block[0]]]
        groups[block] = f"P{pid:03d}"
        pid += 1
        i += len(block)
    return groups


# --------------------------------------------------------------------------- k-fold


def test_kfold_partition_and_stratification_per_repeat():
    y = _labels()
    cv = StratifiedKFoldCV(5, n_repeats=3, random_state=42)
    folds = list(cv.iter_folds(None, y))
    assert len(folds) == cv.get_n_splits() == 15
    totals = Counter(y)
    for r in range(3):
        rep = [f for f in folds if f.repeat == r]
        assert [f.fold for f in rep] == list(range(5))
        test_all = np.concatenate([f.test_idx for f in rep])
        # every sample exactly once in test per repeat
        assert np.array_equal(np.sort(test_all), np.arange(len(y)))
        for f in rep:
            assert np.intersect1d(f.train_idx, f.test_idx).size == 0
            assert f.train_idx.size + f.test_idx.size == len(y)
            for cls, tot in totals.items():
                # each class spread over the test folds to within ±1 of tot/k
                assert abs(np.sum(y[f.test_idx] == cls) - tot / 5) < 1
    # repeats differ
    tests = [{frozenset(f.test_idx.tolist()) for f in folds if f.repeat == r} for r in range(3)]
    assert tests[0] != tests[1] and tests[1] != tests[2]
    # reproducible
    again = list(StratifiedKFoldCV(5, 3, random_state=42).iter_folds(None, y))
    assert all(np.array_equal(a.test_idx, b.test_idx) for a, b in zip(folds, again))
    other = list(StratifiedKFoldCV(5, 3, random_state=43).iter_folds(None, y))
    assert any(not np.array_equal(a.test_idx, b.test_idx) for a, b in zip(folds, other))


def test_group_kfold_never_splits_a_group_and_partitions():
    y = _labels(160, seed=1)
    groups = _patients(y, seed=1)
    assert len(set(groups)) < len(y)  # really grouped
    cv = StratifiedKFoldCV(5, n_repeats=2, random_state=0)
    folds = list(cv.iter_folds(np.zeros((len(y), 2)), y, groups))
    assert len(folds) == 10
    for r in range(2):
        rep = [f for f in folds if f.repeat == r]
        assert np.array_equal(np.sort(np.concatenate([f.test_idx for f in rep])), np.arange(len(y)))
    for f in folds:
        assert not set(groups[f.train_idx]) & set(groups[f.test_idx])
        assert set(y[f.test_idx]) == {"benign", "malignant"}
    # sklearn-style split yields (train, test) pairs, grouped automatically
    for train, test in cv.split(np.zeros((len(y), 2)), y, groups):
        assert not set(groups[train]) & set(groups[test])
    r0 = {frozenset(f.test_idx.tolist()) for f in folds if f.repeat == 0}
    r1 = {frozenset(f.test_idx.tolist()) for f in folds if f.repeat == 1}
    assert r0 != r1


def test_kfold_errors():
    y = _labels(20)
    with pytest.raises(DataError, match="groups"):
        list(StratifiedKFoldCV(5).split(None, y, groups=np.repeat([0, 1, 2], [7, 7, 6])))
    with pytest.raises(DataError, match="samples"):
        list(StratifiedKFoldCV(5).split(np.zeros((10, 1)), y))
    with pytest.raises(DataError, match="needs y"):
        list(StratifiedKFoldCV(5).split(np.zeros((20, 1))))
    with pytest.raises(CVSpecError):
        StratifiedKFoldCV(1)


def test_works_as_sklearn_cv():
    rng = np.random.default_rng(3)
    y = _labels(120, seed=3)
    X = rng.normal(size=(120, 3)) + (y == "malignant")[:, None]
    scores = cross_val_score(LogisticRegression(), X, y, cv=StratifiedKFoldCV(4, 2))
    assert len(scores) == 8 and np.all(scores > 0.5)
    pred = cross_val_predict(LogisticRegression(), X, y, cv=StratifiedKFoldCV(4, 1))
    assert pred.shape == y.shape


# --------------------------------------------------------------------------- holdout


def test_holdout_sizes_stratified_and_repeats_differ():
    y = _labels(200, seed=4)
    cv = HoldoutCV(0.3, n_repeats=30, random_state=1)
    folds = list(cv.iter_folds(None, y))
    assert len(folds) == cv.get_n_splits() == 30
    n_test = math.ceil(0.3 * 200)
    totals = Counter(y)
    for f in folds:
        assert f.test_idx.size == n_test and f.train_idx.size == 200 - n_test
        assert np.intersect1d(f.train_idx, f.test_idx).size == 0
        for cls, tot in totals.items():
            assert abs(np.sum(y[f.test_idx] == cls) - 0.3 * tot) <= 1
    assert len({frozenset(f.test_idx.tolist()) for f in folds}) == 30


def test_grouped_holdout_never_splits_a_group():
    y = _labels(240, seed=5)
    groups = _patients(y, seed=5)
    cv = HoldoutCV(0.3, n_repeats=20, random_state=2)
    sizes = []
    for f in cv.iter_folds(None, y, groups):
        assert not set(groups[f.train_idx]) & set(groups[f.test_idx])
        assert f.train_idx.size + f.test_idx.size == 240
        frac_pos = np.mean(y[f.test_idx] == "malignant") / np.mean(y == "malignant")
        assert 0.75 < frac_pos < 1.25  # approximately stratified
        sizes.append(f.test_idx.size)
    assert abs(np.mean(sizes) - 72) < 6
    assert len(set(sizes)) >= 1


def test_grouped_holdout_too_few_groups():
    y = np.array(["a", "a", "b", "b"])
    groups = np.array([1, 1, 2, 2])
    with pytest.raises(DataError, match="too few groups"):
        list(HoldoutCV(0.3, 1).split(None, y, groups))


# --------------------------------------------------------------------------- predefined


def test_predefined_split():
    split = np.array(["train"] * 6 + ["Val"] * 2 + ["test"] * 3)
    y = np.array([0, 1] * 5 + [1])
    cv = PredefinedSplitCV(split)
    (fold,) = list(cv.iter_folds(None, y))
    assert fold.train_idx.tolist() == list(range(6))
    assert fold.val_idx.tolist() == [6, 7]
    assert fold.test_idx.tolist() == [8, 9, 10]
    assert cv.get_n_splits() == 1
    ((train, test),) = list(PredefinedSplitCV(split, merge_val=True).split(None, y))
    assert train.tolist() == list(range(8)) and test.tolist() == [8, 9, 10]
    groups = np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 3])  # group 3 in train and test
    with pytest.raises(DataError, match="both train and test"):
        list(cv.split(None, y, groups))
    with pytest.raises(DataError, match="unknown split label"):
        list(PredefinedSplitCV(np.array(["train", "tset"])).split(None, [0, 1]))
    with pytest.raises(DataError, match="split labels"):
        list(parse_cv("predefined").split(None, y))
    assert len(list(parse_cv("predefined").set_params(split_labels=split).split(None, y))) == 1
    with pytest.raises(DataError, match="entries"):
        list(cv.split(np.zeros((5, 1)), y[:5]))


# --------------------------------------------------------------------------- parser


def test_parse_cv():
    cv = parse_cv("5")
    assert isinstance(cv, StratifiedKFoldCV) and (cv.n_splits, cv.n_repeats) == (5, 1)
    cv = parse_cv(" 10X3 ", random_state=7)
    assert (cv.n_splits, cv.n_repeats, cv.random_state) == (10, 3, 7)
    cv = parse_cv("holdout:0.3x30")
    assert isinstance(cv, HoldoutCV) and (cv.test_size, cv.n_repeats) == (0.3, 30)
    assert parse_cv("holdout:0.25").n_repeats == 1
    assert isinstance(parse_cv("Predefined"), PredefinedSplitCV)
    assert parse_cv(3).n_splits == 3
    assert parse_cv(cv) is cv
    assert "StratifiedKFoldCV(n_splits=5, n_repeats=2" in repr(parse_cv("5x2"))


@pytest.mark.parametrize("spec, pattern", [
    ("", "expected 'K'"),
    ("five", "expected 'K'"),
    ("5x", "expected 'K'"),
    ("1", "at least 2 folds"),
    ("5x0", "at least 1 repeat"),
    ("holdout", "needs a test fraction"),
    ("holdout:1.5x10", r"in \(0, 1\)"),
    ("holdout:0x10", r"in \(0, 1\)"),
    ("holdout:abc", "expected 'K'"),
    ("holdout:0.3x0", "at least 1 repeat"),
    (None, "cannot parse"),
])
def test_parse_cv_errors_are_clear(spec, pattern):
    with pytest.raises(CVSpecError, match=pattern) as info:
        parse_cv(spec)
    assert isinstance(info.value, FeaturekitError) and isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- thin data


def test_kfold_refuses_more_folds_than_the_smallest_class_and_suggests_k():
    y = np.array(["benign"] * 5 + ["malignant"] * 2)
    with pytest.raises(CVSpecError, match=r"class 'malignant' has 2 samples.*3 of the 5 test folds.*cv 2\b"):
        list(iter_folds("5", None, y))
    with pytest.raises(CVSpecError, match=r"cv 2x3"):
        list(StratifiedKFoldCV(3, 3).split(None, y))
    for f in iter_folds("2x3", None, y):  # the suggested k: every test fold holds both classes
        assert set(y[f.test_idx]) == {"benign", "malignant"}
    with pytest.raises(CVSpecError, match="no k-fold can put"):
        list(iter_folds(2, None, y[:6]))  # one malignant image
    with pytest.raises(CVSpecError, match="two classes"):
        list(iter_folds(2, None, y[:5]))


def test_grouped_kfold_counts_groups_per_class():
    y = np.array(["b"] * 12 + ["m"] * 6)
    groups = np.r_[np.arange(12), [20, 20, 21, 21, 22, 22]]  # 6 malignant images, 3 patients
    with pytest.raises(CVSpecError, match=r"4 groups of every class.*'m' has 3 groups.*cv 3\b"):
        list(iter_folds(4, None, y, groups))
    folds = list(iter_folds(3, None, y, groups))
    assert len(folds) == 3 and all(set(y[f.test_idx]) == {"b", "m"} for f in folds)


def test_holdout_puts_every_class_on_both_sides_and_predefined_refuses():
    y = np.array([0] * 50 + [1] * 2)
    # 10% of 2 malignant images rounds to none: one is swapped into the test part, sizes kept
    folds = list(iter_folds("holdout:0.1x20", None, y))
    for f in folds:
        assert np.count_nonzero(y[f.test_idx] == 1) == 1 and np.count_nonzero(y[f.train_idx] == 1) == 1
        assert f.test_idx.size == 6 and np.array_equal(np.sort(np.r_[f.train_idx, f.test_idx]), np.arange(52))
    assert len({tuple(f.test_idx) for f in folds}) > 1  # still random
    # rounding that leaves nothing of a class in training is mended the same way
    (f,) = list(iter_folds("holdout:0.9", None, np.array([0] * 20 + [1] * 2)))
    assert np.count_nonzero(np.array([0] * 20 + [1] * 2)[f.train_idx] == 1) == 1
    # splits that need no help are scikit-learn's, unchanged
    y2 = _labels(200, seed=4)
    ours = list(HoldoutCV(0.3, n_repeats=3, random_state=1).iter_folds(None, y2))
    from sklearn.model_selection import StratifiedShuffleSplit

    from featurekit.evaluation.folds.protocols import repeat_seeds
    for f, seed in zip(ours, repeat_seeds(1, 3)):
        _, test = next(StratifiedShuffleSplit(1, test_size=0.3, random_state=seed).split(np.zeros((200, 1)), y2))
        assert np.array_equal(f.test_idx, np.sort(test))
    with pytest.raises(CVSpecError, match="1 member"):
        list(iter_folds("holdout:0.3", None, np.array([0] * 20 + [1])))
    split = np.array(["train"] * 6 + ["test"] * 4)
    y = np.array([0, 1, 0, 1, 0, 1, 0, 0, 0, 0])
    with pytest.raises(CVSpecError, match=r"predefined split has no test sample of class\(es\) \[1\]"):
        list(iter_folds("predefined", None, y, split_labels=split))
    y[-1] = 1
    assert len(list(iter_folds("predefined", None, y, split_labels=split))) == 1


# --------------------------------------------------------------------------- any scikit-learn splitter


def test_iter_folds_takes_specifications_and_featurekit_splitters():
    y = _labels(60, seed=8)
    ours = list(StratifiedKFoldCV(3, 2, random_state=5).iter_folds(None, y))
    for cv in ("3x2", StratifiedKFoldCV(3, 2, random_state=5)):
        got = list(iter_folds(cv, None, y, random_state=5))
        assert [(f.repeat, f.fold) for f in got] == [(f.repeat, f.fold) for f in ours]
        assert all(np.array_equal(a.test_idx, b.test_idx) for a, b in zip(got, ours))
    assert describe_protocol("3x2") == "stratified 3-fold x2"
    assert describe_protocol(HoldoutCV(0.3, 5), grouped=True) == "stratified holdout 0.3 x5 (grouped)"


@pytest.mark.filterwarnings("ignore:The groups parameter is ignored by StratifiedKFold")
def test_iter_folds_with_sklearn_splitters():
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, RepeatedStratifiedKFold, StratifiedKFold

    y = _labels(90, seed=9)
    X = np.zeros((90, 3))
    groups = _patients(y, seed=9)
    folds = list(iter_folds(StratifiedKFold(5, shuffle=True, random_state=0), X, y))
    assert [(f.repeat, f.fold) for f in folds] == [(0, i) for i in range(5)]
    assert np.array_equal(np.sort(np.concatenate([f.test_idx for f in folds])), np.arange(90))
    assert all(f.val_idx is None for f in folds)

    folds = list(iter_folds(RepeatedStratifiedKFold(n_splits=4, n_repeats=3, random_state=0), None, y))
    assert [(f.repeat, f.fold) for f in folds] == [(r, k) for r in range(3) for k in range(4)]
    for r in range(3):  # each repeat is a partition
        test = np.concatenate([f.test_idx for f in folds if f.repeat == r])
        assert np.array_equal(np.sort(test), np.arange(90))

    folds = list(iter_folds(GroupKFold(4), X, y, groups))
    assert len(folds) == 4
    for f in folds:
        assert not set(groups[f.train_idx]) & set(groups[f.test_idx])
    with pytest.raises(CVSpecError, match="GroupKFold.*groups"):
        list(iter_folds(GroupKFold(4), X, y))

    folds = list(iter_folds(LeaveOneGroupOut(), None, y, groups))
    assert len(folds) == np.unique(groups).size and {f.repeat for f in folds} == {0}
    assert [f.fold for f in folds] == list(range(len(folds)))
    assert all(np.unique(groups[f.test_idx]).size == 1 for f in folds)

    with pytest.raises(DataError, match="does not keep the groups together"):
        list(iter_folds(StratifiedKFold(5, shuffle=True, random_state=0), X, y, groups))
    assert describe_protocol(GroupKFold(4), grouped=True).startswith("GroupKFold(")


# --------------------------------------------------------------------------- oversampling


class _Recorder(ClassifierMixin, BaseEstimator):
    """Records the class counts it is fitted on."""

    def fit(self, X, y):
        self.counts_ = Counter(np.asarray(y).tolist())
        self.n_fit_ = len(y)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_random_oversample_indices():
    y = np.array(["a"] * 7 + ["b"] * 3 + ["c"] * 5)
    idx = random_oversample_indices(y, random_state=0)
    assert np.array_equal(idx[:15], np.arange(15))
    assert Counter(y[idx].tolist()) == {"a": 7, "b": 7, "c": 7}
    assert np.array_equal(random_oversample_indices(np.array([0, 1, 0, 1])), np.arange(4))


def test_oversampling_happens_inside_the_training_fold_only():
    y = np.array([0] * 80 + [1] * 20)
    X = np.arange(100, dtype=float)[:, None]
    clf = OversampledClassifier(_Recorder(), random_state=0)
    for train, test in StratifiedKFoldCV(5).split(X, y):
        fitted = clone(clf).fit(X[train], y[train])
        n0 = int(np.sum(y[train] == 0))
        assert fitted.estimator_.counts_ == {0: n0, 1: n0}
        # only training rows are ever used
        assert set(train[fitted.sample_indices_]) <= set(train)
        assert fitted.predict(X[test]).shape == (test.size,)


def test_oversampled_classifier_delegates_and_keeps_sample_weight_aligned():
    rng = np.random.default_rng(0)
    y = np.array(["benign"] * 60 + ["malignant"] * 15)
    X = rng.normal(size=(75, 3)) + (y == "malignant")[:, None]
    clf = OversampledClassifier(LogisticRegression(), random_state=1)
    w = np.r_[np.ones(60), np.full(15, 2.0)]
    clf.fit(X, y, sample_weight=w)
    assert list(clf.classes_) == ["benign", "malignant"]
    assert clf.predict_proba(X).shape == (75, 2)
    assert clf.decision_function(X).shape == (75,)
    assert clf.n_features_in_ == 3
    # resampled weights follow their samples
    ref = LogisticRegression().fit(X[clf.sample_indices_], y[clf.sample_indices_],
                                   sample_weight=w[clf.sample_indices_])
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X))
    # balanced data: identical to the plain estimator
    yb = np.array([0, 1] * 20)
    Xb = rng.normal(size=(40, 2))
    np.testing.assert_allclose(
        OversampledClassifier(LogisticRegression()).fit(Xb, yb).predict_proba(Xb),
        LogisticRegression().fit(Xb, yb).predict_proba(Xb))
    from sklearn.svm import SVC
    assert not hasattr(OversampledClassifier(SVC()), "predict_proba")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_oversampled_classifier_passes_check_estimator():
    check_estimator(OversampledClassifier(LogisticRegression(), random_state=0))
