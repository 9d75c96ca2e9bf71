"""More than two classes through the engine: predictions, rows, comparisons, fusion, selection, search."""
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, cohen_kappa_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from featurekit.errors import DataError
from featurekit.evaluation.estimators.classifiers import GroupedGridSearchCV, make_classifier
from featurekit.evaluation.estimators.fusion import LateFusionClassifier
from featurekit.evaluation.results.comparison import compare_aucs
from featurekit.evaluation.results.crossval import cross_validate
from featurekit.evaluation.results.selection import SelectBestCandidate
from featurekit.evaluation.results.summary import class_probabilities_of, prediction_classes

CLASSES = ["normal", "benign", "malignant"]


def _data(n=90, seed=0, signal=1.0):
    rng = np.random.default_rng(seed)
    codes = np.arange(n) % 3
    X = rng.normal(size=(n, 4))
    X[:, 0] += signal * codes  # informative column (ordered by class code)
    return X, np.asarray(CLASSES, dtype=object)[codes]


def _lr():
    return make_pipeline(StandardScaler(), LogisticRegression())


def _without_signal(X):
    return X[:, 1:]


def _noise_lr():
    """A model that never sees the informative column."""
    return make_pipeline(FunctionTransformer(_without_signal), StandardScaler(), LogisticRegression())


@pytest.fixture(scope="module")
def three_class_run():
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cross_validate({"signal": _lr(), "noise": _noise_lr()},
                              X, y, cv="5x2", n_boot=200, classes=CLASSES, ordered=True), y


def test_predictions_hold_every_class_probability_in_the_given_order(three_class_run):
    ev, y = three_class_run
    pred = ev.predictions
    assert prediction_classes(pred) == CLASSES
    p = class_probabilities_of(pred, CLASSES)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert pred["score"].isna().all() and pred["threshold"].isna().all()
    # y_true holds the code of each sample's class in CLASSES order
    by_id = dict(zip(map(str, range(len(y))), y))
    assert all(CLASSES[c] == by_id[i] for i, c in zip(pred["id"], pred["y_true"]))
    assert ev.provenance["task"] == "multiclass" and ev.provenance["classes"] == CLASSES
    assert ev.provenance["samples"]["n[benign]"] == 30


def test_rows_equal_scikit_learn_on_the_pooled_predictions(three_class_run):
    ev, _ = three_class_run
    row = ev.results.set_index("feature_set").loc["signal"]
    g = ev.predictions[ev.predictions["feature_set"] == "signal"]
    aucs, accs, kappas = [], [], []
    for _, r in g.groupby("repeat"):
        p = class_probabilities_of(r, CLASSES)
        yt = r["y_true"].to_numpy()
        aucs.append(roc_auc_score(yt, p, multi_class="ovr", average="macro"))
        accs.append(accuracy_score(yt, p.argmax(axis=1)))
        kappas.append(cohen_kappa_score(yt, p.argmax(axis=1), weights="quadratic"))
    assert row["roc_auc_pooled"] == pytest.approx(np.mean(aucs), abs=1e-12)
    assert row["accuracy_pooled"] == pytest.approx(np.mean(accs), abs=1e-12)
    assert row["kappa_pooled"] == pytest.approx(np.mean(kappas), abs=1e-12)
    assert row["roc_auc_ci_lo"] <= row["roc_auc_pooled"] <= row["roc_auc_ci_hi"]
    assert "bootstrap over samples" in row["roc_auc_ci_method"]
    assert row["n[malignant]"] == 30 and row["n"] == 90
    for c in CLASSES:
        assert 0.0 <= row[f"sensitivity[{c}]_pooled"] <= 1.0


def test_the_signal_row_beats_the_noise_row_in_the_paired_macro_auc_bootstrap(three_class_run):
    ev, _ = three_class_run
    comp = ev.comparisons.set_index(["a_feature_set", "b_feature_set"])
    r = comp.loc[("signal", "noise")]
    res = ev.results.set_index("feature_set")
    assert r["delta_auc"] == pytest.approx(res.loc["signal", "roc_auc_pooled"] - res.loc["noise", "roc_auc_pooled"])
    assert r["p_value"] < 0.05 and r["ci_lo"] > 0
    assert np.isfinite(r["nb_p_value"])  # repeated design: the corrected t-test on per-fold macro AUCs
    # the same bootstrap when asked again on the predictions alone (0 replicates asked: the test still runs)
    again = compare_aucs(ev.predictions, [("signal", "LogisticRegression"), ("noise", "LogisticRegression")])
    assert np.isfinite(again["p_value"]).all()


def test_selected_row_chooses_among_multiclass_candidates(three_class_run):
    ev, _ = three_class_run
    sel = ev.provenance["selection"]
    assert sel["frequency"]["signal | LogisticRegression"] == 1.0
    assert "selected" in set(ev.results["kind"])
    assert sel["criterion_name"] == "macro ROC AUC"
    assert "best of 2 by macro ROC AUC" in set(ev.results["classifier"])


def test_a_positive_class_keeps_the_one_vs_rest_binary_view():
    X, y = _data()
    ev = cross_validate({"signal": _lr()}, X, y, cv="5", positive="malignant", n_boot=0)
    assert prediction_classes(ev.predictions) == []
    assert set(ev.predictions["y_true"]) == {0, 1} and ev.predictions["score"].notna().all()


def test_ordered_is_refused_quietly_for_a_binary_run_and_recorded_as_applied(three_class_run):
    X, y = _data()
    with pytest.warns(UserWarning, match="ordered=True.*this run is binary"):
        ev = cross_validate({"signal": _lr()}, X, y, cv="5", positive="malignant", n_boot=0, ordered=True)
    assert ev.provenance["options"]["ordered"] is False
    assert three_class_run[0].provenance["options"]["ordered"] is True


def test_late_fusion_votes_and_stacks_class_probabilities():
    X, y = _data(seed=1)
    bases = [("a", _lr()), ("b", make_pipeline(StandardScaler(), LogisticRegression(C=0.1)))]
    vote = LateFusionClassifier(bases).fit(X, y)
    expected = (vote.estimators_[0].predict_proba(X) + vote.estimators_[1].predict_proba(X)) / 2
    np.testing.assert_allclose(vote.predict_proba(X), expected, atol=1e-12)
    assert list(vote.classes_) == sorted(CLASSES)
    stack = LateFusionClassifier(bases, method="stack", cv=3).fit(X, y)
    assert stack.final_estimator_.coef_.shape == (3, 6)  # 2 bases x 3 class probabilities
    np.testing.assert_allclose(stack.predict_proba(X).sum(axis=1), 1.0, atol=1e-9)


def test_select_best_candidate_works_with_three_classes():
    X, y = _data(seed=2, signal=1.5)
    sel = SelectBestCandidate([("noise", _noise_lr()), ("signal", _lr())], criterion="neg_log_loss").fit(X, y)
    assert sel.best_name_ == "signal"
    assert sel.inner_oof_scores_.shape == (len(y), 3)
    assert sel.predict_proba(X).shape == (len(y), 3)


def test_search_scores_multiclass_targets_by_macro_auc_and_keeps_its_parameters():
    X, y = _data(seed=3)
    search = GroupedGridSearchCV(_lr(), {"logisticregression__C": [0.01, 1.0]}, cv=3)
    search.fit(X, y)
    assert search.scoring == "roc_auc" and isinstance(search.cv, int)
    assert 0.5 < search.best_score_ <= 1.0


def test_the_table_logreg_fits_three_classes():
    X, y = _data(seed=4)
    assert make_classifier("logreg").solver == "liblinear"  # binary: unchanged
    clf = make_classifier("logreg", n_classes=3).fit(X, y)
    assert clf.predict_proba(X).shape == (len(y), 3)


def test_knn_search_never_asks_for_more_neighbours_than_its_inner_folds_hold():
    from sklearn.exceptions import FitFailedWarning
    from sklearn.neighbors import KNeighborsClassifier

    from featurekit.evaluation.estimators.classifiers import cap_neighbors

    X, y = _data(n=24)  # inner training parts of ~10 samples: the table's 11 and 15 neighbours cannot fit
    pipe = make_pipeline(StandardScaler(), KNeighborsClassifier())
    grid = {"kneighborsclassifier__n_neighbors": [3, 5, 7, 11, 15], "kneighborsclassifier__weights": ["uniform"]}
    search = GroupedGridSearchCV(pipe, grid, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitFailedWarning)
        search.fit(X, y)
    tried = set(search.cv_results_["param_kneighborsclassifier__n_neighbors"])
    assert tried == {3, 5, 7, 11} and search.param_grid == grid  # the parameter itself stays as given
    assert cap_neighbors({"n_neighbors": [5, 9]}, 3) == {"n_neighbors": [3]}
    assert cap_neighbors([{"a__n_neighbors": [1, 2]}], 5) is None


def test_a_class_too_small_for_the_folds_is_named():
    X, y = _data(n=30)
    y = y.copy()
    y[np.flatnonzero(y == "malignant")[2:]] = "benign"  # two malignant samples left
    with pytest.raises(DataError, match=r"class 'malignant' has 2 samples.*cv 2\b"):
        cross_validate({"signal": _lr()}, X, y, cv="5", n_boot=0, classes=CLASSES)
    with pytest.raises(DataError, match=r"class 'malignant' has 2 samples"):
        cross_validate({"signal": _lr()}, X, y, cv="5", n_boot=0, positive="malignant")
    two = y != "normal"
    with pytest.raises(DataError, match=r"class 'malignant' has 2 samples"):
        cross_validate({"signal": _lr()}, X[two], y[two], cv="5", n_boot=0, positive="malignant")
