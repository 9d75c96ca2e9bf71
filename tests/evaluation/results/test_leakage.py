"""Leakage guards: everything that learns from data sees the training fold only."""

import numpy as np
import pytest
from _eval_helpers import EVENTS, IdRecorder, LookupClassifier, make_cache
from sklearn.base import clone
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from featurekit.evaluation.estimators.classifiers import make_classifier, make_pipeline_for, search_grid, with_search
from featurekit.evaluation.estimators.features import CachedFeatures
from featurekit.evaluation.estimators.resampling import OversampledClassifier
from featurekit.evaluation.results.crossval import cross_validate
from featurekit.evaluation.stats.metrics import youden_threshold
from featurekit.orchestration import evaluate_features


def _drifting(n=40, seed=0):
    """A feature whose location and scale drift with the sample index (fold means differ)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.linspace(0, 1, n)
    X = np.c_[rng.normal(size=n) * (1 + 20 * t) + 50 * t + 0.8 * y, rng.normal(size=n) + y]
    return X, y


def test_scaler_is_fitted_on_the_training_fold_only():
    X, y = _drifting()
    pipe = make_pipeline(StandardScaler(), KNeighborsClassifier(3))
    ev = cross_validate({"knn": pipe}, X, y, cv="5", n_boot=0, keep_estimators=True, compare=False)
    assert len(ev.estimators) == 5
    for fold in ev.folds:
        fitted = ev.estimators[("knn", "KNeighborsClassifier", fold.repeat, fold.fold)]
        scaler = fitted.named_steps["standardscaler"]
        np.testing.assert_allclose(scaler.mean_, X[fold.train_idx].mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(scaler.scale_, X[fold.train_idx].std(axis=0), rtol=1e-12)
        assert not np.allclose(scaler.mean_, X.mean(axis=0), rtol=1e-3)

    # the out-of-fold predictions are those of the honest procedure, not of a scaler fitted on all data
    honest = np.empty(len(y))
    leaky = np.empty(len(y))
    X_all_scaled = StandardScaler().fit_transform(X)
    for fold in ev.folds:
        tr, te = fold.train_idx, fold.test_idx
        honest[te] = clone(pipe).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
        leaky[te] = KNeighborsClassifier(3).fit(X_all_scaled[tr], y[tr]).predict_proba(X_all_scaled[te])[:, 1]
    pred = ev.predictions.assign(i=ev.predictions["id"].astype(int)).sort_values("i")
    np.testing.assert_allclose(pred["score"].to_numpy(), honest)
    assert not np.allclose(pred["score"].to_numpy(), leaky)


def test_cached_feature_pipelines_scale_inside_the_fold(tmp_path):
    X, y = _drifting(seed=1)
    cache = make_cache(tmp_path / "c.h5", {"drift": X}, labels=y)
    ids = np.array(cache.ids, dtype=object)
    pipe = make_pipeline_for(CachedFeatures("drift", cache=cache.path), make_classifier("logreg"))
    ev = cross_validate({"p": pipe}, ids, y, cv="4x2", n_boot=0, keep_estimators=True, compare=False)
    Xf = X.astype(np.float32).astype(float)
    assert len(ev.folds) == 8
    for fold in ev.folds:
        scaler = ev.estimators[("p", "LogisticRegression", fold.repeat, fold.fold)].named_steps["scale"]
        np.testing.assert_allclose(scaler.mean_, Xf[fold.train_idx].mean(axis=0), rtol=1e-9)


def test_grouped_cv_never_splits_a_group(tmp_path):
    rng = np.random.default_rng(2)
    n = 48
    groups = np.array([f"patient{i // 3}" for i in range(n)])  # 3 images per patient
    y = np.array([(i // 3) % 2 for i in range(n)])  # label constant within a patient
    X = rng.normal(size=(n, 4)) + y[:, None]
    cache = make_cache(tmp_path / "g.h5", {"gabor": X}, labels=y, groups=groups)
    ev = evaluate_features(cache.path, ["gabor"], ["logreg"], "4x2", positive="malignant", n_boot=0)
    assert ev.provenance["grouped"] and "grouped" in ev.results.loc[0, "protocol"]
    for fold in ev.folds:
        assert not set(groups[fold.train_idx]) & set(groups[fold.test_idx])
    pred = ev.predictions.assign(group=lambda d: d["id"].map(dict(zip(cache.ids, groups))))
    per_group = pred.groupby(["repeat", "group"])["fold"].nunique()
    assert (per_group == 1).all()
    assert len(pred) == 2 * n  # every image predicted once per repeat


def test_inner_threshold_cv_keeps_groups_whole():
    n = 36
    ids = np.array([f"s{i:02d}" for i in range(n)], dtype=object)
    groups = np.array([f"g{i // 2}" for i in range(n)])
    y = np.array([(i // 2) % 2 for i in range(n)])
    table = dict(zip(ids, np.random.default_rng(0).uniform(size=n)))
    EVENTS.pop("grp", None)
    cross_validate({"spy": LookupClassifier(table, "grp")}, ids, y, groups, cv="3", n_boot=0,
                       youden="inner", youden_cv=3, compare=False)
    group_of = dict(zip(ids, groups))
    fits = [set(i) for kind, i in EVENTS["grp"] if kind == "fit"]
    assert len(fits) == 3 * (1 + 3)  # per outer fold: the model and 3 inner threshold fits
    for f in fits:
        inside = {group_of[i] for i in f}
        assert all(i in f for i in ids if group_of[i] in inside)


@pytest.mark.parametrize("mode", ["inner", "train"])
def test_youden_threshold_comes_from_training_folds_only(mode):
    n = 40
    ids = np.array([f"s{i:02d}" for i in range(n)], dtype=object)
    y = np.arange(n) % 2
    rng = np.random.default_rng(5)
    scores = np.clip(0.5 + 0.25 * (y - 0.5) + rng.normal(0, 0.2, n), 0.01, 0.99)
    table = dict(zip(ids, scores))
    EVENTS.pop("thr", None)
    ev = cross_validate({"spy": LookupClassifier(table, "thr")}, ids, y, cv="5x2", n_boot=0,
                            youden=mode, compare=False)
    differs = 0
    for fold in ev.folds:
        tr, te = fold.train_idx, fold.test_idx
        got = ev.predictions[(ev.predictions["repeat"] == fold.repeat) & (ev.predictions["fold"] == fold.fold)]
        assert got["threshold"].nunique() == 1
        thr = got["threshold"].iloc[0]
        assert thr == youden_threshold(y[tr], scores[tr])
        assert thr in set(scores[tr]) and thr not in set(scores[te])
        differs += thr != youden_threshold(y, scores)  # a threshold chosen on all data would differ
    assert differs >= 3
    # the model of a fold is never fitted on one of its test ids
    for kind, fit_ids in EVENTS["thr"]:
        if kind == "fit":
            assert any(not set(fit_ids) & set(ids[f.test_idx]) for f in ev.folds)


def test_predefined_split_chooses_the_threshold_on_val():
    n = 30
    ids = np.array([f"s{i:02d}" for i in range(n)], dtype=object)
    y = np.arange(n) % 2
    split = np.array(["train"] * 14 + ["val"] * 8 + ["test"] * 8)
    scores = np.random.default_rng(9).uniform(size=n) * 0.5 + 0.3 * y
    table = dict(zip(ids, scores))
    ev = cross_validate({"spy": LookupClassifier(table, "pre")}, ids, y, cv="predefined",
                            split_labels=split, n_boot=0, compare=False)
    val = split == "val"
    assert set(ev.predictions["id"]) == set(ids[split == "test"])
    assert ev.predictions["threshold"].iloc[0] == youden_threshold(y[val], scores[val])
    assert ev.results.loc[0, "protocol"].startswith("predefined")


def test_oversampling_and_search_happen_inside_the_outer_fold(tmp_path):
    n = 40
    y = np.r_[np.zeros(28, int), np.ones(12, int)]
    X = np.random.default_rng(4).normal(size=(n, 3)) + y[:, None]
    cache = make_cache(tmp_path / "o.h5", {"gabor": X}, labels=y)
    ids = np.array(cache.ids, dtype=object)
    clf = make_classifier("logreg", oversample=True)
    pipe = make_pipeline_for(CachedFeatures("gabor", cache=cache.path), clf)
    pipe.steps.insert(0, ("spy", IdRecorder("search")))
    EVENTS.pop("search", None)
    search = with_search(pipe, search_grid("logreg", clf), inner_cv=3)
    ev = cross_validate({"s": search}, ids, y, cv="4", n_boot=0, keep_estimators=True,
                            youden="train", compare=False)
    for fold in ev.folds:
        best = ev.estimators[("s", "LogisticRegression", 0, 0 + fold.fold)].best_estimator_
        over = best.named_steps["clf"]
        assert isinstance(over, OversampledClassifier)
        n_major = int(np.sum(y[fold.train_idx] == 0))
        assert len(over.sample_indices_) == 2 * n_major  # the training fold's classes, balanced
        assert len(over.sample_indices_) < 2 * 28
    fits = [set(i) for kind, i in EVENTS["search"] if kind == "fit"]
    assert len(fits) == 4 * (3 * 5 + 1)  # per outer fold: 3 inner folds x 5 C values, then the refit
    for f in fits:  # no fit ever used a sample of the outer test fold it belongs to
        assert any(not f & set(ids[fold.test_idx]) for fold in ev.folds)


def test_feature_selection_inside_folds_finds_no_signal_in_noise(tmp_path):
    """The classic leak: selecting features on all the data makes pure noise look predictive."""
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.linear_model import LogisticRegression

    from featurekit.evaluation.estimators.fusion import early_fusion_pipeline
    from featurekit.evaluation.stats.metrics import roc_auc

    n, d = 40, 400
    rng = np.random.default_rng(11)
    y = np.arange(n) % 2
    cache = make_cache(tmp_path / "noise.h5", {"net/a": rng.normal(size=(n, d)),
                                                "gabor": rng.normal(size=(n, d))}, labels=y)
    ids = np.array(cache.ids, dtype=object)
    pipe = early_fusion_pipeline(["net/a", "gabor"], make_classifier("logreg"), cache.path, reduce="select", k=5)
    ev = cross_validate({"noise": pipe}, ids, y, cv="5x2", n_boot=0, compare=False)
    honest = ev.results.loc[0, "roc_auc_pooled"]
    # the leaky version: the same selection fitted once on all samples, then cross-validated
    X = np.c_[cache.get("net/a"), cache.get("gabor")]
    X_sel = SelectKBest(f_classif, k=10).fit_transform(StandardScaler().fit_transform(X), y)
    leaky = []
    for fold in ev.folds:
        m = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_sel[fold.train_idx], y[fold.train_idx])
        leaky.append((fold.repeat, fold.test_idx, m.predict_proba(X_sel[fold.test_idx])[:, 1]))
    leaky_auc = []
    for r in (0, 1):
        s = np.empty(n)
        for rep, te, p in leaky:
            if rep == r:
                s[te] = p
        leaky_auc.append(roc_auc(y, s))
    assert honest < 0.7 and np.mean(leaky_auc) > 0.85
