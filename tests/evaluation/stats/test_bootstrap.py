"""Stratified bootstrap: vectorised paths agree with the plain loop; CIs cover the truth."""

import math
import warnings

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from featurekit.errors import DataError
from featurekit.evaluation.stats.bootstrap import (
    bootstrap_ci,
    bootstrap_delta_auc,
    bootstrap_metrics,
    bootstrap_paired_ci,
    percentile_interval,
)
from featurekit.evaluation.stats.delong import delong_roc_test
from featurekit.evaluation.stats.metrics import UndefinedMetricWarning


def _binormal(rng, m, n, d):
    """Positives N(d, 1), negatives N(0, 1): true AUC = Φ(d / √2)."""
    y = np.r_[np.ones(m, dtype=int), np.zeros(n, dtype=int)]
    s = np.r_[rng.normal(d, 1.0, m), rng.normal(0.0, 1.0, n)]
    return y, s


def test_vectorised_auc_and_ap_equal_the_loop_on_the_same_replicates():
    rng = np.random.default_rng(0)
    y, s = _binormal(rng, 40, 70, 0.8)
    s = np.round(s, 1)  # ties
    fast = bootstrap_metrics(y, s, ["roc_auc", "pr_auc", "f1"], threshold=0.4, n_boot=300,
                             random_state=11, return_distribution=True)

    def sk_auc(yy, ss):
        return roc_auc_score(yy, ss)

    def sk_ap(yy, ss):
        return average_precision_score(yy, ss)

    def sk_f1(yy, ss):
        return f1_score(yy, ss >= 0.4)

    slow = bootstrap_metrics(y, s, [sk_auc, sk_ap, sk_f1], n_boot=300, random_state=11,
                             return_distribution=True)
    np.testing.assert_allclose(fast["roc_auc"].distribution, slow["sk_auc"].distribution, atol=1e-12)
    np.testing.assert_allclose(fast["pr_auc"].distribution, slow["sk_ap"].distribution, atol=1e-12)
    np.testing.assert_allclose(fast["f1"].distribution, slow["sk_f1"].distribution, atol=1e-12)
    assert fast["roc_auc"].estimate == pytest.approx(roc_auc_score(y, s))
    assert fast["pr_auc"].estimate == pytest.approx(average_precision_score(y, s))
    r = fast["roc_auc"]
    assert (r.lo, r.hi) == pytest.approx(percentile_interval(r.distribution, 0.95))
    assert r.lo < r.estimate < r.hi and r.n_valid == 300


def test_resampling_is_stratified_and_seeded():
    rng = np.random.default_rng(1)
    y, s = _binormal(rng, 13, 29, 1.0)
    seen = []

    def count_pos(yy, ss):
        seen.append((int(np.sum(yy)), len(yy)))
        return float(np.mean(ss))

    bootstrap_ci(y, s, count_pos, n_boot=50)
    assert seen == [(13, 42)] * 51  # the estimate on the data, then 50 replicates
    a = bootstrap_ci(y, s, n_boot=200, random_state=3, return_distribution=True)
    b = bootstrap_ci(y, s, n_boot=200, random_state=3, return_distribution=True)
    c = bootstrap_ci(y, s, n_boot=200, random_state=4, return_distribution=True)
    np.testing.assert_array_equal(a.distribution, b.distribution)
    assert not np.array_equal(a.distribution, c.distribution)
    assert a.distribution is not None and bootstrap_ci(y, s, n_boot=20).distribution is None


def test_string_labels():
    rng = np.random.default_rng(2)
    y, s = _binormal(rng, 30, 30, 1.0)
    ys = np.where(y == 1, "malignant", "benign")
    r1 = bootstrap_ci(y, s, n_boot=200)
    r2 = bootstrap_ci(ys, s, pos_label="malignant", n_boot=200)
    assert (r1.estimate, r1.lo, r1.hi) == pytest.approx((r2.estimate, r2.lo, r2.hi))


def test_percentile_ci_coverage_of_known_auc():
    d = 1.0
    true_auc = norm.cdf(d / math.sqrt(2))  # 0.760
    rng = np.random.default_rng(2024)
    n_sim, covered = 100, 0
    widths = []
    for i in range(n_sim):
        y, s = _binormal(rng, 50, 80, d)
        r = bootstrap_ci(y, s, "roc_auc", n_boot=2000, random_state=i)
        covered += r.lo <= true_auc <= r.hi
        widths.append(r.hi - r.lo)
    coverage = covered / n_sim
    assert 0.88 <= coverage <= 0.99, coverage
    assert 0.1 < np.mean(widths) < 0.25


def test_paired_delta_auc_agrees_with_delong_and_unpaired_replicates():
    rng = np.random.default_rng(5)
    n = 300
    y = (rng.random(n) < 0.4).astype(int)
    a = rng.normal(size=n) + 1.2 * y
    b = 0.7 * a + rng.normal(size=n) * 0.8
    res = bootstrap_delta_auc(y, a, b, n_boot=2000, random_state=7, return_distribution=True)
    dl = delong_roc_test(y, a, b)
    assert res.delta == pytest.approx(dl.delta)
    assert res.estimate_a == pytest.approx(roc_auc_score(y, a))
    assert res.std_error == pytest.approx(dl.se, rel=0.2)
    assert res.lo == pytest.approx(dl.ci_low, abs=0.02)
    assert res.hi == pytest.approx(dl.ci_high, abs=0.02)
    # same seed, same resamples: the paired difference is the difference of the margins
    ra = bootstrap_ci(y, a, n_boot=2000, random_state=7, return_distribution=True)
    rb = bootstrap_ci(y, b, n_boot=2000, random_state=7, return_distribution=True)
    np.testing.assert_allclose(res.distribution, ra.distribution - rb.distribution, atol=1e-12)
    assert 0 < res.p_value <= 1


def test_paired_identical_and_strongly_different():
    rng = np.random.default_rng(8)
    y, s = _binormal(rng, 60, 60, 1.0)
    same = bootstrap_paired_ci(y, s, s.copy(), n_boot=300)
    assert same.delta == 0 and same.lo == 0 and same.hi == 0 and same.p_value == 1.0
    noise = rng.normal(size=y.size)
    strong = bootstrap_paired_ci(y, s + 3.0 * y, noise, n_boot=500)
    assert strong.lo > 0.2 and strong.p_value < 0.01


def test_undefined_replicates_are_reported():
    # with a high threshold most replicates predict no positive: precision undefined
    y = np.r_[np.ones(5, dtype=int), np.zeros(30, dtype=int)]
    s = np.r_[np.full(4, 0.1), [0.95], np.full(30, 0.1)]
    with pytest.warns(UndefinedMetricWarning, match="undefined in"):
        r = bootstrap_ci(y, s, "precision", threshold=0.9, n_boot=400)
    assert 0 < r.n_valid < 400
    assert r.estimate == 1.0


def test_bad_arguments():
    with pytest.raises(DataError, match="both classes"):
        bootstrap_ci([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match="n_boot"):
        bootstrap_ci([0, 1], [0.1, 0.2], n_boot=0)
    with pytest.raises(DataError, match="confidence"):
        bootstrap_ci([0, 1], [0.1, 0.2], confidence=95)
    with pytest.raises(DataError, match="unknown metric"):
        bootstrap_ci([0, 1], [0.1, 0.2], "aucc")


def test_every_registry_metric_vectorised_equals_its_loop():
    """The bootstrap computes every metric of the table from counts; the same replicates one by one agree."""
    from featurekit.evaluation.stats.metrics import METRICS

    rng = np.random.default_rng(5)
    y, s = _binormal(rng, 9, 25, 0.7)
    s = np.round(s, 1)
    thr = 0.3
    fast = bootstrap_metrics(y, s, list(METRICS), threshold=thr, n_boot=120, random_state=2,
                             return_distribution=True)

    def looped(name):
        def fn(yy, ss):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                return METRICS[name](yy, ss, thr)
        fn.__name__ = f"loop_{name}"
        return fn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        slow = bootstrap_metrics(y, s, [looped(n) for n in METRICS], n_boot=120, random_state=2,
                                 return_distribution=True)
    for name in METRICS:
        np.testing.assert_allclose(fast[name].distribution, slow[f"loop_{name}"].distribution,
                                   rtol=0, atol=1e-12, err_msg=name)
        assert fast[name].estimate == pytest.approx(slow[f"loop_{name}"].estimate, abs=1e-12)
