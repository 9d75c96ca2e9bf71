"""CachedFeatures: cache rows as a scikit-learn transformer; the classifier table."""

import numpy as np
import pandas as pd
import pytest
from _eval_helpers import EVENTS, IdRecorder, make_cache
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from featurekit.errors import CacheError, DataError
from featurekit.evaluation.estimators.classifiers import (
    CLASSIFIERS,
    BalancedSampleWeight,
    make_classifier,
    make_pipeline_for,
    positive_scores,
    resolve_classifier,
    search_grid,
    with_search,
)
from featurekit.evaluation.estimators.features import CachedFeatures
from featurekit.evaluation.estimators.resampling import OversampledClassifier


@pytest.fixture
def cache(tmp_path):
    rng = np.random.default_rng(0)
    gabor = rng.normal(size=(20, 4))
    layer = rng.normal(size=(20, 6))
    names = ["g_a", "g_b", "g_c", "g_d"]
    return make_cache(tmp_path / "c.h5", {"gabor": (gabor, {}, names), "net/conv1": layer}), gabor, layer


def test_rows_follow_the_given_ids(cache):
    c, gabor, _ = cache
    ids = np.array(c.ids, dtype=object)
    order = np.array([7, 3, 19, 0, 3, 12])  # shuffled, with a duplicate
    cf = CachedFeatures("gabor", cache=c.path).fit(ids)
    out = cf.transform(ids[order])
    np.testing.assert_allclose(out, gabor[order].astype(np.float32), rtol=0, atol=0)
    assert out.dtype == np.float64
    # (n, 1) and DataFrame input give the same rows
    np.testing.assert_array_equal(cf.transform(ids[order].reshape(-1, 1)), out)
    np.testing.assert_array_equal(cf.transform(pd.DataFrame({"id": ids[order]})), out)
    with pytest.raises(DataError):
        cf.transform(np.stack([ids, ids], axis=1))


def test_unknown_ids_and_keys_fail_clearly(cache, tmp_path):
    c, _, _ = cache
    with pytest.raises(CacheError, match="not in"):
        CachedFeatures("gabor", cache=c.path).fit(np.array(["s000", "nope"]))
    with pytest.raises(CacheError, match="no features 'glcm'"):
        CachedFeatures("glcm", cache=c.path).fit(np.array(["s000"]))
    with pytest.raises(NotFittedError):
        CachedFeatures("gabor", cache=c.path).transform(np.array(["s000"]))


def test_feature_names_and_set_output(cache):
    c, gabor, layer = cache
    ids = np.array(c.ids, dtype=object)
    cf = CachedFeatures("gabor", cache=c.path).fit(ids)
    assert list(cf.get_feature_names_out()) == ["g_a", "g_b", "g_c", "g_d"]
    net = CachedFeatures("net/conv1", cache=c.path).fit(ids)
    assert list(net.get_feature_names_out()) == [f"net/conv1_{i}" for i in range(6)]
    df = CachedFeatures("gabor", cache=c.path).set_output(transform="pandas").fit_transform(ids[:5])
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["g_a", "g_b", "g_c", "g_d"]
    np.testing.assert_allclose(df.to_numpy(), gabor[:5].astype(np.float32))


def test_sklearn_conventions_clone_params_and_match(cache):
    c, _, _ = cache
    cf = CachedFeatures("net/conv1", cache=str(c.path), match={"pool": "gap"})
    assert cf.get_params() == {"cache": str(c.path), "dtype": "float64", "entry_id": None,
                               "key": "net/conv1", "match": {"pool": "gap"}}
    twin = clone(cf)
    assert twin.get_params() == cf.get_params() and not hasattr(twin, "entry_id_")
    twin.set_params(match={"pool": "gmp"})
    with pytest.raises(CacheError, match="matches"):
        twin.fit(np.array(c.ids))
    entry = c.find("net/conv1")
    assert cf.fit(np.array(c.ids)).entry_id_ == entry.entry_id
    # no work in __init__: a missing cache only fails at fit
    lazy = CachedFeatures("gabor", cache="/nonexistent/cache.h5")
    with pytest.raises(CacheError):
        lazy.fit(np.array(["a"]))


def test_two_entries_of_a_key_need_a_choice(tmp_path):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(10, 3)), rng.normal(size=(10, 3))
    c = make_cache(tmp_path / "c.h5", {"net/l1": (a, {"weights": "imagenet:V1"})})
    c2 = make_cache(tmp_path / "c.h5", {"net/l1": (b, {"weights": "none:seed=0"})})
    ids = np.array(c2.ids)
    with pytest.raises(CacheError, match="2 entries"):
        CachedFeatures("net/l1", cache=c.path).fit(ids)
    got = CachedFeatures("net/l1", cache=c.path, match={"weights": "none:seed=0"}).fit_transform(ids)
    np.testing.assert_allclose(got, b.astype(np.float32))
    eid = c.find("net/l1", weights="imagenet:V1").entry_id
    np.testing.assert_allclose(CachedFeatures("net/l1", cache=c.path, entry_id=eid).fit_transform(ids),
                               a.astype(np.float32))


def test_pipeline_over_ids_fits_and_grid_searches(cache):
    c, gabor, _ = cache
    ids = np.array(c.ids, dtype=object)
    y = c.labels
    # Both fits see the same float64 numbers (the float32 cache values); the solver converges to the unique
    # optimum of the L2-regularised loss to tol=1e-10, so the probabilities agree to far better than 1e-7
    # whichever BLAS kernel handles gathered vs sliced rows (with float32 input the scaler would compute in
    # float32 instead, and the two paths would differ by ~1e-7: float32 rounding, not a pipeline difference).
    stored = gabor.astype(np.float32).astype(np.float64)
    pipe = make_pipeline(CachedFeatures("gabor", cache=c.path), StandardScaler(), LogisticRegression(tol=1e-10))
    pipe.fit(ids[:14], y[:14])
    direct = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-10)).fit(stored[:14], y[:14])
    np.testing.assert_allclose(pipe.predict_proba(ids[14:]), direct.predict_proba(stored[14:]), rtol=0, atol=1e-7)
    gs = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0]}, cv=2).fit(ids, y)
    assert gs.best_params_["logisticregression__C"] in (0.1, 1.0)


def test_classifier_table_builds_every_classifier(cache):
    c, _, _ = cache
    ids = np.array(c.ids, dtype=object)
    y = c.labels
    assert set(CLASSIFIERS) == {"logreg", "linear_svm", "svm", "rf", "xgboost", "knn", "mlp"}
    assert resolve_classifier("RBF_SVM").name == "svm" and resolve_classifier("xgb").name == "xgboost"
    with pytest.raises(DataError, match="unknown classifier"):
        resolve_classifier("boosted-magic")
    for name in CLASSIFIERS:
        params = {"n_estimators": 10} if name in ("rf", "xgboost") else None
        pipe = make_pipeline_for(CachedFeatures("gabor", cache=c.path),
                                 make_classifier(name, params=params, random_state=0))
        s = positive_scores(pipe.fit(ids, y), ids, 1)
        assert s.shape == (20,) and np.all((s >= 0) & (s <= 1)), name


def test_class_weight_and_oversampling_wrappers():
    with pytest.warns(UserWarning, match="oversampling"):
        knn = make_classifier("knn", class_weight="balanced")
    assert isinstance(knn, OversampledClassifier)
    assert make_classifier("logreg", class_weight="balanced").class_weight == "balanced"
    assert make_classifier("svm", class_weight="balanced").estimator.class_weight == "balanced"
    assert isinstance(make_classifier("xgboost", class_weight="balanced"), BalancedSampleWeight)
    over = make_classifier("svm", oversample=True)
    assert isinstance(over, OversampledClassifier)
    grid = search_grid("svm", over)
    assert set(grid) == {"clf__estimator__estimator__C", "clf__estimator__estimator__gamma"}
    pipe = make_pipeline_for(StandardScaler(), over)
    assert set(pipe.get_params()) >= set(grid)  # the grid addresses real parameters
    with pytest.raises(DataError):
        make_classifier("logreg", class_weight="inverse")


def test_balanced_sample_weight_uses_training_labels_only():
    X = np.r_[np.zeros((18, 1)), np.ones((2, 1))] + np.random.default_rng(0).normal(0, 0.6, (20, 1))
    y = np.r_[np.zeros(18, int), np.ones(2, int)]
    plain = make_classifier("xgboost", params={"n_estimators": 20}).fit(X, y)
    bal = make_classifier("xgboost", params={"n_estimators": 20}, class_weight="balanced").fit(X, y)
    # balancing raises the minority's predicted probability
    assert bal.predict_proba(X)[y == 1, 1].mean() > plain.predict_proba(X)[y == 1, 1].mean()


def test_nested_search_uses_groups_for_the_inner_folds(cache):
    c, _, _ = cache
    ids = np.array(c.ids, dtype=object)
    y = c.labels
    groups = np.array([f"p{i // 2}" for i in range(20)])  # pairs of images per patient
    group_of = dict(zip(ids, groups))
    clf = make_classifier("logreg")
    pipe = make_pipeline_for(CachedFeatures("gabor", cache=c.path), clf)
    pipe.steps.insert(0, ("spy", IdRecorder("inner-search")))
    EVENTS.pop("inner-search", None)
    search = with_search(pipe, search_grid("logreg", clf), inner_cv=3)
    search.fit(ids, y, groups=groups)
    assert search.cv == 3  # restored after fit
    assert "clf__C" in search.best_params_
    fits = [set(i) for kind, i in EVENTS["inner-search"] if kind == "fit"]
    inner = [f for f in fits if len(f) < len(ids)]
    assert len(inner) == 3 * len(search_grid("logreg", clf)["clf__C"])
    for f in inner:  # every patient entirely in or entirely out of each inner training set
        inside = {group_of[i] for i in f}
        assert all(i in f for i in ids if group_of[i] in inside)


def test_non_finite_cached_rows_are_a_clear_error_naming_them(tmp_path):
    import h5py

    rng = np.random.default_rng(3)
    values = rng.normal(size=(12, 3))
    c = make_cache(tmp_path / "c.h5", {"gabor": values})  # the writer refuses NaN: edit the file afterwards
    values[4, 1] = np.nan
    values[9, 0] = np.inf
    entry = c.find("gabor").entry_id
    from featurekit.cache.layout import array_digest, seal

    with h5py.File(c.path, "r+", locking=False) as f:  # edited and resealed: the checksums agree with the NaN
        ds = f[f"features/gabor/{entry}"]
        ds[...] = values.astype(np.float32)
        ds.attrs["sha256"] = array_digest([values.astype(np.float32)])
        seal(ds)
    ids = np.array(c.ids, dtype=object)
    clean = ids[[0, 1, 2, 3, 5, 6]]
    cf = CachedFeatures("gabor", cache=c.path).fit(clean)  # rows without NaN/inf are served
    np.testing.assert_array_equal(cf.transform(clean), values[[0, 1, 2, 3, 5, 6]].astype(np.float32))
    with pytest.raises(DataError, match=r"features 'gabor' .* hold NaN or infinite values in 2 of the rows "
                                        r"asked for: id\(s\) s004, s009") as err:
        cf.transform(ids)
    assert str(c.path) in str(err.value) and "cache rm" in str(err.value)
    pipe = make_pipeline(CachedFeatures("gabor", cache=c.path), StandardScaler(), LogisticRegression())
    with pytest.raises(DataError, match="s004"):
        pipe.fit(ids, c.labels)


def test_the_entry_is_resolved_once_per_file_version(tmp_path, monkeypatch):
    from featurekit.cache import FeatureCache

    rng = np.random.default_rng(1)
    path = tmp_path / "c.h5"
    make_cache(path, {"gabor": rng.normal(size=(12, 3))})
    walks = []
    find = FeatureCache.find
    monkeypatch.setattr(FeatureCache, "find", lambda self, *a, **k: (walks.append(1), find(self, *a, **k))[1])
    ids = np.array(FeatureCache(path).ids, dtype=object)
    for _ in range(5):  # the fits of a cross-validation: one walk of the cache's metadata, not five
        cf = clone(CachedFeatures("gabor", cache=path)).fit(ids)
    assert len(walks) == 1 and cf.n_features_out_ == 3
    # the file rewritten (another width, another dataset): resolved and read again, never the old answer
    path.unlink()
    other = rng.normal(size=(12, 5))
    make_cache(path, {"gabor": other}, fingerprint="e" * 64)
    cf = clone(cf).fit(ids)
    assert len(walks) == 2 and cf.n_features_out_ == 5 and cf.fingerprint_ == "e" * 64
    np.testing.assert_allclose(cf.transform(ids), other.astype(np.float32))
