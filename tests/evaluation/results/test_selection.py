"""The selected row: the best candidate chosen inside each training part, scored on the test part only."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from featurekit.errors import DataError
from featurekit.evaluation.results.crossval import cross_validate
from featurekit.evaluation.results.selection import SELECTED, SelectBestCandidate, choose_best, selection_frequencies


def _columns(start: int, stop: int) -> FunctionTransformer:
    return FunctionTransformer(lambda Z, a=start, b=stop: Z[:, a:b])


def _candidates(n_sets: int, width: int = 4) -> dict:
    return {f"set{i:02d}": make_pipeline(_columns(width * i, width * (i + 1)), LogisticRegression())
            for i in range(n_sets)}


def _row(ev, kind):
    return ev.results[ev.results["kind"] == kind]


def test_pure_noise_the_best_row_is_optimistic_the_selected_row_is_not():
    """With 24 pure-noise feature sets the maximum per-candidate AUC is far above 0.5; the selected row is not."""
    rng = np.random.default_rng(7)
    n, n_sets = 96, 24
    X = rng.normal(size=(n, 4 * n_sets))
    y = np.arange(n) % 2
    ev = cross_validate(_candidates(n_sets), X, y, cv="4", n_boot=300, compare=False, seed=1)
    per_candidate = ev.results[ev.results["feature_set"] != SELECTED]
    selected = ev.results[ev.results["feature_set"] == SELECTED].iloc[0]
    assert len(per_candidate) == n_sets
    best = per_candidate["roc_auc_pooled"].astype(float).max()
    # the maximum of 24 null AUCs (sd ~ 0.06 at n = 96) sits near 0.5 + 2 sd
    assert best > 0.58
    assert selected["roc_auc_ci_lo"] < 0.5 < selected["roc_auc_ci_hi"]
    assert abs(selected["roc_auc_pooled"] - 0.5) < 0.1
    assert best - selected["roc_auc_pooled"] > 0.05
    assert selected["kind"] == "selected" and selected["classifier"] == "best of 24 by ROC AUC"


def test_the_selected_row_equals_an_outer_cv_of_the_selecting_estimator():
    """Engine and estimator make the same choice on the same inner folds, and predict the same scores."""
    rng = np.random.default_rng(3)
    n = 60
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 12))
    X[:, 4] += 1.2 * y  # set01 carries signal, set02 a little
    X[:, 8] += 0.5 * y
    cands = _candidates(3)
    ev = cross_validate(cands, X, y, cv="5x2", n_boot=0, compare=False, seed=4, youden_cv=3)
    sel = SelectBestCandidate(list(cands.items()), cv=3, random_state=4)
    ref = cross_validate({"ref": sel}, X, y, cv="5x2", n_boot=0, compare=False, seed=4, youden_cv=3)
    got = ev.predictions[ev.predictions["feature_set"] == SELECTED].sort_values(["repeat", "fold", "id"])
    want = ref.predictions.sort_values(["repeat", "fold", "id"])
    np.testing.assert_allclose(got["score"].to_numpy(), want["score"].to_numpy(), rtol=1e-10, atol=1e-12)
    # the threshold of the selected row is the chosen candidate's, chosen on the same inner scores
    np.testing.assert_allclose(got["threshold"].to_numpy(), want["threshold"].to_numpy(), rtol=1e-10, atol=1e-12)
    chosen = ev.provenance["selection"]["chosen"]
    assert len(chosen) == 10
    assert ev.provenance["selection"]["chosen_on"] == "inner CV of each training part"
    freq = ev.provenance["selection"]["frequency"]
    assert sum(freq.values()) == pytest.approx(1.0)
    assert max(freq, key=freq.get).startswith("set01")


def test_the_test_part_does_not_change_the_choice():
    """Rewriting the test part's labels and features changes no choice (it enters neither fit nor criterion)."""
    rng = np.random.default_rng(11)
    n = 48
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 12))
    X[:, 0] += 0.8 * y
    cands = _candidates(3)
    from sklearn.model_selection import PredefinedSplit

    test_fold = np.where(np.arange(n) < 12, 0, -1)  # one outer fold: samples 0..11 are its test part
    a = cross_validate(cands, X, y, cv=PredefinedSplit(test_fold), n_boot=0, compare=False)
    X2 = X.copy()
    X2[:12] = rng.normal(size=(12, 12)) * 5
    X2[:12, 8:12] += 10 * y[:12, None]  # now set02 separates the test part
    b = cross_validate(cands, X2, y, cv=PredefinedSplit(test_fold), n_boot=0, compare=False)
    assert [c["name"] for c in a.provenance["selection"]["chosen"]] == \
        [c["name"] for c in b.provenance["selection"]["chosen"]] == ["set00"]
    a_auc = a.results.set_index("feature_set")["roc_auc_pooled"]
    b_auc = b.results.set_index("feature_set")["roc_auc_pooled"]
    assert abs(b_auc["set02"] - 0.5) > 0.3 and b_auc["set02"] != a_auc["set02"]  # the test part did change


def test_a_predefined_split_chooses_on_the_validation_split():
    rng = np.random.default_rng(5)
    n = 90
    y = np.arange(n) % 2
    split = np.array(["train"] * 50 + ["val"] * 20 + ["test"] * 20, dtype=object)
    X = rng.normal(size=(n, 8))
    X[:, 0] += 0.8 * y   # set00 is fair everywhere
    X[:70, 4] += 3 * y[:70]  # set01 is near perfect on the training and validation splits, useless on test
    ev = cross_validate(_candidates(2), X, y, cv="predefined", split_labels=split, n_boot=0, compare=False)
    sel = ev.provenance["selection"]
    assert sel["chosen_on"] == "validation split"
    assert [c["name"] for c in sel["chosen"]] == ["set01"]
    assert sel["chosen"][0]["n_held_out"] == 20
    got = ev.predictions[ev.predictions["feature_set"] == SELECTED]
    want = ev.predictions[ev.predictions["feature_set"] == "set01"]
    np.testing.assert_array_equal(got["score"].to_numpy(), want["score"].to_numpy())
    assert set(got["id"]) == {str(i) for i in range(70, 90)}


def test_selection_is_on_by_default_only_with_several_candidates():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 8)), np.arange(30) % 2
    one = cross_validate(_candidates(1), X, y, cv="3", n_boot=0, compare=False)
    assert SELECTED not in set(one.results["feature_set"]) and "selection" not in one.provenance
    off = cross_validate(_candidates(2), X, y, cv="3", n_boot=0, compare=False, select=False)
    assert SELECTED not in set(off.results["feature_set"])
    assert off.provenance["options"]["select"] is False
    with pytest.raises(DataError, match="at least two"):
        cross_validate(_candidates(1), X, y, cv="3", n_boot=0, select=True)
    with pytest.raises(DataError, match="unknown selection criterion"):
        cross_validate(_candidates(2), X, y, cv="3", n_boot=0, select_by="accuracy")


def test_the_selected_row_is_compared_with_every_candidate():
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(40, 8)), np.arange(40) % 2
    X[:, 0] += y
    ev = cross_validate(_candidates(2), X, y, cv="4", n_boot=50, keep_estimators=True)
    pairs = {frozenset((a, b)) for a, b in zip(ev.comparisons["a_feature_set"], ev.comparisons["b_feature_set"])}
    assert {frozenset(("set00", SELECTED)), frozenset(("set01", SELECTED))} <= pairs
    # the kept estimator of the selected row is the chosen candidate's fold model
    for c in ev.provenance["selection"]["chosen"]:
        sel = ev.estimators[(SELECTED, "best of 2 by ROC AUC", c["repeat"], c["fold"])]
        own = ev.estimators[(c["name"], "LogisticRegression", c["repeat"], c["fold"])]
        assert sel is own


def test_choose_best_and_frequencies():
    y = np.array([0, 0, 1, 1])
    best, values = choose_best(y, {"a": np.array([.1, .2, .3, .4]), "b": np.array([.4, .3, .2, .1]),
                                   "c": None}, "roc_auc")
    assert best == "a" and values["b"] == 0.0 and np.isnan(values["c"])
    tie, _ = choose_best(y, {"x": np.array([.1, .2, .3, .4]), "y": np.array([0, .1, .8, .9])}, "roc_auc")
    assert tie == "x"  # ties go to the first candidate
    brier, _ = choose_best(y, {"x": np.array([.4, .4, .6, .6]), "y": np.array([0, .1, .8, .9])}, "neg_brier")
    assert brier == "y"
    with pytest.raises(DataError, match="no candidate could be scored"):
        choose_best(np.array([1, 1]), {"a": np.array([.2, .3])})
    assert selection_frequencies(["a", "a", "b", "a"], ["a", "b", "c"]) == {"a": 0.75, "b": 0.25, "c": 0.0}


def test_select_best_candidate_is_a_scikit_learn_classifier():
    from sklearn.base import clone

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 8)), np.arange(40) % 2
    X[:, 5] += 2 * y
    est = SelectBestCandidate(list(_candidates(2).items()), cv=3)
    assert clone(est).get_params()["cv"] == 3
    est.fit(X, y)
    assert est.best_name_ == "set01"
    assert est.inner_oof_scores_.shape == (40,) and est.selected_on_ == "inner CV (3 folds)"
    assert set(est.candidate_scores_) == {"set00", "set01"}
    p = est.predict_proba(X)
    np.testing.assert_allclose(p[:, 1], est.best_estimator_.predict_proba(X)[:, 1])
    assert est.predict(X).shape == (40,)
    with pytest.raises(DataError, match="unique"):
        SelectBestCandidate([("a", LogisticRegression()), ("a", LogisticRegression())]).fit(X, y)
    with pytest.raises(DataError, match="at least 2"):
        SelectBestCandidate(list(_candidates(2).items())).fit(X[:3], np.array([0, 1, 1]))


def test_the_selected_row_on_a_dask_cluster_equals_local():
    """The selection runs from the candidates' fold results, wherever their fits ran: a cluster gives the same row."""
    import distributed
    import pandas.testing
    rng = np.random.default_rng(9)
    n = 48
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 12))
    X[:, 4] += y
    local = cross_validate(_candidates(3), X, y, cv="4", n_boot=0, compare=False, seed=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        remote = cross_validate(_candidates(3), X, y, cv="4", n_boot=0, compare=False, seed=2, executor=client)
    assert remote.provenance["selection"]["chosen"] == local.provenance["selection"]["chosen"]
    key = ["feature_set", "classifier", "repeat", "fold", "id"]
    a = local.predictions.sort_values(key).reset_index(drop=True)
    b = remote.predictions.sort_values(key).reset_index(drop=True)
    pandas.testing.assert_frame_equal(a, b)


def test_the_report_puts_the_selected_row_first_and_says_what_it_is(tmp_path):
    from featurekit.report.build import build_report

    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(48, 12)), np.arange(48) % 2
    X[:, 4] += y
    meta = {f"set{i:02d}": {"kind": "handcrafted"} for i in range(3)}
    ev = cross_validate(_candidates(3), X, y, cv="4", n_boot=50, meta=meta)
    ev.save(tmp_path / "run")
    md = build_report([tmp_path / "run"]).with_suffix(".md").read_text()
    best = md.split("## Best of each kind", 1)[1]
    first_row = [ln for ln in best.splitlines() if ln.startswith("| ")][1]
    assert first_row.startswith("| **selected**")
    assert "handcrafted (best of 3)" in best and "biased upward" in best
    section = md.split("## The selected row", 1)[1]
    assert "never on the test part" in section and "chosen in the 4 outer folds" in section
    assert "Stratified-bootstrap" not in md and "bca bootstrap" in md.lower()


def test_a_predefined_split_records_the_size_of_each_part():
    rng = np.random.default_rng(5)
    y = np.arange(60) % 2
    split = np.array(["train"] * 30 + ["val"] * 14 + ["test"] * 16, dtype=object)
    ev = cross_validate(_candidates(2), rng.normal(size=(60, 8)), y, cv="predefined", split_labels=split,
                        n_boot=0, compare=False)
    assert {k: ev.provenance["samples"][k] for k in ("train", "val", "test")} == {"train": 30, "val": 14, "test": 16}
