"""Early fusion scales each block inside the fold; late fusion votes or stacks."""

import numpy as np
import pytest
from _eval_helpers import EVENTS, LookupClassifier, make_cache
from sklearn.linear_model import LogisticRegression

from featurekit.errors import DataError
from featurekit.evaluation.estimators.classifiers import make_classifier, make_pipeline_for
from featurekit.evaluation.estimators.features import CachedFeatures
from featurekit.evaluation.estimators.fusion import (
    EqualBlockWeight,
    LateFusionClassifier,
    early_fusion,
    early_fusion_pipeline,
)
from featurekit.evaluation.results.crossval import cross_validate
from featurekit.evaluation.stats.metrics import roc_auc


@pytest.fixture
def blocks(tmp_path):
    n = 60
    rng = np.random.default_rng(3)
    y = np.arange(n) % 2
    latent = rng.normal(size=n)
    # block A: big scale (x1000, offset 5000); block B: small scale (x0.001)
    a = 5000 + 1000 * rng.normal(size=(n, 8))
    a[:, 0] += 1000 * (1.2 * y + latent)
    b = 0.001 * rng.normal(size=(n, 3))
    b[:, 0] += 0.001 * (1.2 * y - latent)  # cancels A's nuisance: the two blocks are complementary
    cache = make_cache(tmp_path / "f.h5", {"net/deep": a, "gabor": b}, labels=y)
    return cache, a.astype(np.float32).astype(float), b.astype(np.float32).astype(float), y


def test_each_block_is_scaled_with_training_statistics_only(blocks):
    cache, a, b, y = blocks
    ids = np.array(cache.ids, dtype=object)
    train = np.arange(40)  # the last third differs only by sampling noise: means differ from all-data means
    union = early_fusion(["net/deep", "gabor"], cache.path)
    Z = union.fit_transform(ids[train], y[train])
    scaler_a = union.transformer_list[0][1].named_steps["scale"]
    scaler_b = union.transformer_list[1][1].named_steps["scale"]
    np.testing.assert_allclose(scaler_a.mean_, a[train].mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(scaler_b.mean_, b[train].mean(axis=0), rtol=1e-9)
    assert not np.allclose(scaler_a.mean_, a.mean(axis=0), rtol=1e-9)
    # both blocks arrive z-scored on the training fold, whatever their original scale
    assert Z.shape == (40, 11)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(Z.std(axis=0), 1, atol=1e-9)
    names = union.get_feature_names_out()
    assert names[0].startswith("net:deep__") and names[-1].startswith("gabor__")
    # the test fold is transformed with the training statistics (not re-standardised)
    Zt = union.transform(ids[40:])
    np.testing.assert_allclose(Zt[:, :8], (a[40:] - a[train].mean(0)) / a[train].std(0), rtol=1e-7)


def test_block_weight_equalises_block_variance(blocks):
    cache, a, b, y = blocks
    ids = np.array(cache.ids, dtype=object)
    Z = early_fusion(["net/deep", "gabor"], cache.path, block_weight="equal").fit_transform(ids, y)
    var_a, var_b = Z[:, :8].var(axis=0).sum(), Z[:, 8:].var(axis=0).sum()
    assert var_a == pytest.approx(1.0) and var_b == pytest.approx(1.0)
    assert EqualBlockWeight().fit(np.ones((3, 4))).scale_ == pytest.approx(0.5)


def test_per_block_reduction_is_fitted_in_the_fold(blocks):
    cache, a, b, y = blocks
    ids = np.array(cache.ids, dtype=object)
    sel = early_fusion(["net/deep", "gabor"], cache.path, reduce="select", k=2).fit(ids[:40], y[:40])
    assert sel.transform(ids).shape == (60, 4)
    chosen = sel.transformer_list[0][1].named_steps["reduce"].get_support()
    assert chosen[0]  # the informative column of block A is kept
    big_k = early_fusion(["net/deep", "gabor"], cache.path, reduce="select", k=50).fit(ids, y)
    assert big_k.transform(ids).shape == (60, 11)  # k capped at each block's dimension
    pca = early_fusion(["net/deep", "gabor"], cache.path, reduce="pca", n_components=2).fit(ids[:40], y[:40])
    assert pca.transform(ids).shape == (60, 4)
    with pytest.raises(DataError):
        early_fusion(["gabor"], cache.path, reduce="lda")


def test_early_fusion_beats_its_parts_on_complementary_blocks(blocks):
    cache, a, b, y = blocks
    ids = np.array(cache.ids, dtype=object)
    pipes = {
        "A": make_pipeline_for(CachedFeatures("net/deep", cache=cache.path), make_classifier("logreg")),
        "B": make_pipeline_for(CachedFeatures("gabor", cache=cache.path), make_classifier("logreg")),
        "A+B": early_fusion_pipeline(["net/deep", "gabor"], make_classifier("logreg"), cache.path),
    }
    meta = {"A+B": {"kind": "fused", "parts": "A+B"}}
    with pytest.warns(UserWarning, match="nested"):
        ev = cross_validate(pipes, ids, y, cv="5", positive=1, n_boot=200, meta=meta)
    auc = ev.results.set_index("feature_set")["roc_auc_pooled"]
    assert auc["A+B"] > max(auc["A"], auc["B"]) + 0.05
    nested = ev.comparisons[ev.comparisons["nested"]]
    assert len(nested) == 2 and set(nested["b_feature_set"]) | set(nested["a_feature_set"]) >= {"A", "B", "A+B"}


def test_soft_voting_is_the_mean_of_the_parts(blocks):
    cache, a, b, y = blocks
    ids = np.array(cache.ids, dtype=object)
    pa = make_pipeline_for(CachedFeatures("net/deep", cache=cache.path), LogisticRegression())
    pb = make_pipeline_for(CachedFeatures("gabor", cache=cache.path), LogisticRegression())
    vote = LateFusionClassifier([("a", pa), ("b", pb)], method="vote").fit(ids[:40], y[:40])
    expected = (pa.fit(ids[:40], y[:40]).predict_proba(ids[40:])[:, 1]
                + pb.fit(ids[:40], y[:40]).predict_proba(ids[40:])[:, 1]) / 2
    np.testing.assert_allclose(vote.predict_proba(ids[40:])[:, 1], expected)
    weighted = LateFusionClassifier([("a", pa), ("b", pb)], method="vote", weights=[3, 1]).fit(ids[:40], y[:40])
    assert not np.allclose(weighted.predict_proba(ids[40:])[:, 1], expected)
    with pytest.raises(DataError):
        LateFusionClassifier([("a", pa)], method="average").fit(ids, y)


def test_stacking_learns_from_inner_out_of_fold_scores_only(tmp_path):
    ids = np.array([f"s{i:02d}" for i in range(24)], dtype=object)
    y = np.arange(24) % 2
    groups = np.array([f"g{i // 3}" for i in range(24)])
    good = {i: (0.9 if t else 0.1) for i, t in zip(ids, y)}
    noise = {i: v for i, v in zip(ids, np.random.default_rng(0).uniform(size=24))}
    EVENTS.pop("stack-a", None)
    stack = LateFusionClassifier([("good", LookupClassifier(good, "stack-a")),
                                  ("noise", LookupClassifier(noise, "stack-b"))], method="stack", cv=4)
    stack.fit(ids[:16], y[:16], groups=groups[:16])
    # the meta-learner trusts the informative base
    coef = stack.final_estimator_.coef_.ravel()
    assert coef[0] > abs(coef[1])
    assert roc_auc(y[16:], stack.predict_proba(ids[16:])[:, 1]) == 1.0
    # inner fits never predicted their own training ids, and groups stayed whole
    events = EVENTS["stack-a"]
    group_of = dict(zip(ids, groups))
    for (k1, fit_ids), (k2, pred_ids) in zip(events[0:8:2], events[1:8:2]):
        assert k1 == "fit" and k2 == "predict"
        assert not set(fit_ids) & set(pred_ids)
        assert not {group_of[i] for i in fit_ids} & {group_of[i] for i in pred_ids}
    assert set(events[8][1]) == set(ids[:16])  # then refitted on all training ids
