"""DeLong's test: fast midrank algorithm against a brute-force O(m·n) computation."""

import math
import warnings

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from featurekit.errors import DataError
from featurekit.evaluation.stats.delong import (
    DegenerateTestWarning,
    NestedModelWarning,
    delong_auc_ci,
    delong_components,
    delong_covariance,
    delong_roc_test,
    delong_roc_variance,
)


def brute_force(y, score_list):
    """Structural components, AUCs and DeLong covariance straight from the definitions."""
    y = np.asarray(y).astype(bool)
    aucs, v10s, v01s = [], [], []
    for s in score_list:
        s = np.asarray(s, dtype=float)
        X, Y = s[y], s[~y]
        psi = (X[:, None] > Y[None, :]).astype(float) + 0.5 * (X[:, None] == Y[None, :])
        aucs.append(psi.mean())
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
    v10, v01 = np.array(v10s), np.array(v01s)
    m, n = v10.shape[1], v01.shape[1]
    k = len(score_list)
    s10 = np.array([[np.sum((v10[a] - v10[a].mean()) * (v10[b] - v10[b].mean())) / (m - 1)
                     for b in range(k)] for a in range(k)])
    s01 = np.array([[np.sum((v01[a] - v01[a].mean()) * (v01[b] - v01[b].mean())) / (n - 1)
                     for b in range(k)] for a in range(k)])
    return np.array(aucs), v10, v01, s10 / m + s01 / n


def _data(seed, n=120, integer=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    a = rng.normal(size=n) + 1.0 * y
    b = 0.6 * a + rng.normal(size=n) + 0.3 * y
    c = rng.normal(size=n) + 0.5 * y
    if integer:  # BI-RADS-like ordinal scores: many ties within and across classes
        a, b, c = (np.clip(np.round(v + 2), 0, 5) for v in (a, b, c))
    return y, [a, b, c]


@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_components_and_covariance_match_brute_force(seed, integer):
    y, scores = _data(seed, integer=integer)
    aucs_bf, v10_bf, v01_bf, cov_bf = brute_force(y, scores)
    aucs, v10, v01 = delong_components(y, scores)
    np.testing.assert_allclose(aucs, aucs_bf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(v10, v10_bf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(v01, v01_bf, rtol=0, atol=1e-12)
    aucs2, cov = delong_covariance(y, np.vstack(scores))
    np.testing.assert_allclose(cov, cov_bf, rtol=1e-10, atol=1e-15)
    for s, auc in zip(scores, aucs2):
        assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    if integer:
        assert len(np.unique(scores[0])) <= 6  # the tie case really has ties


def test_variance_and_test_statistic_match_brute_force():
    y, (a, b, _) = _data(3, integer=True)
    _, _, _, cov = brute_force(y, [a, b])
    auc, var = delong_roc_variance(y, a)
    assert auc == pytest.approx(roc_auc_score(y, a))
    assert var == pytest.approx(cov[0, 0], rel=1e-10)
    res = delong_roc_test(y, a, b)
    se = math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    delta = roc_auc_score(y, a) - roc_auc_score(y, b)
    assert res.delta == pytest.approx(delta, abs=1e-12)
    assert res.se == pytest.approx(se, rel=1e-9)
    assert res.z == pytest.approx(delta / se, rel=1e-9)
    assert res.p_value == pytest.approx(2 * norm.sf(abs(delta / se)), rel=1e-9)
    assert res.ci_low == pytest.approx(delta - 1.959963984540054 * se, rel=1e-9)
    assert res.ci_high == pytest.approx(delta + 1.959963984540054 * se, rel=1e-9)
    np.testing.assert_allclose(res.cov, cov, rtol=1e-10)
    assert 0.0 < res.p_value < 1.0  # a p-value, not its log10
    d = res.as_dict()
    assert d["cov"][0][1] == pytest.approx(cov[0, 1])


def test_string_labels_and_pos_label():
    y, (a, b, _) = _data(4)
    ys = np.where(y == 1, "malignant", "benign")
    r1 = delong_roc_test(y, a, b)
    r2 = delong_roc_test(ys, a, b, pos_label="malignant")
    assert r1.p_value == pytest.approx(r2.p_value)
    assert r1.auc_a == pytest.approx(r2.auc_a)
    r3 = delong_roc_test(ys, -a, -b, pos_label="benign")
    assert r3.auc_a == pytest.approx(r1.auc_a) and r3.p_value == pytest.approx(r1.p_value)


def test_identical_scores_give_p_one():
    y, (a, _, _) = _data(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = delong_roc_test(y, a, a.copy())
    assert res.p_value == 1.0 and res.z == 0.0 and res.delta == 0.0
    assert res.ci == (0.0, 0.0)
    # a monotone transform ranks identically: same AUC, p = 1
    res2 = delong_roc_test(y, a, np.exp(a))
    assert res2.p_value == 1.0


def test_strongly_different_scores_give_small_p():
    rng = np.random.default_rng(6)
    n = 400
    y = (rng.random(n) < 0.5).astype(int)
    good = rng.normal(size=n) + 2.0 * y
    poor = rng.normal(size=n) + 0.1 * y
    res = delong_roc_test(y, good, poor)
    assert res.auc_a > 0.85 and res.auc_b < 0.65
    assert res.p_value < 1e-3
    assert res.ci_low > 0
    res_rev = delong_roc_test(y, poor, good)
    assert res_rev.delta == pytest.approx(-res.delta)
    assert res_rev.p_value == pytest.approx(res.p_value)


def test_nested_flag_warns():
    y, (a, b, _) = _data(7)
    with pytest.warns(NestedModelWarning, match="conservative"):
        res = delong_roc_test(y, a + b, a, nested=True)
    assert res.nested


def test_zero_variance_with_nonzero_delta_is_nan_with_warning():
    y = np.array([0, 0, 0, 1, 1, 1])
    perfect = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    constant = np.full(6, 0.5)
    with pytest.warns(DegenerateTestWarning):
        res = delong_roc_test(y, perfect, constant)
    assert res.delta == pytest.approx(0.5)
    assert math.isnan(res.p_value) and math.isnan(res.z)


def test_auc_ci_and_errors():
    y, (a, _, _) = _data(8)
    auc, lo, hi = delong_auc_ci(y, a)
    assert lo < auc < hi and 0 <= lo and hi <= 1
    with pytest.raises(DataError, match="at least 2 positives"):
        delong_roc_test([0, 0, 0, 1], [1, 2, 3, 4], [1, 2, 4, 3])
    with pytest.raises(DataError, match="samples"):
        delong_roc_test([0, 0, 1, 1], [1, 2, 3, 4], [1, 2, 4])
