"""Intervals with known coverage: Wilson, BCa over the independent unit; coverage simulations.

The coverage simulations draw 2000 (or more) data sets at known true values
and check that nominal 95 % intervals cover in 93-97 % of them: with 2000
draws the Monte-Carlo standard error of a 95 % coverage is 0.5 %, so the band
is four standard errors wide on each side. The bootstrap simulations evaluate
all data sets of one design (same labels and groups, fresh scores) as the
``k`` score vectors of one :class:`UnitData` -- the path every bootstrap of
featurekit takes -- so they share the unit draws; each data set's interval is
still an ordinary bootstrap interval of its own data.
"""

import math

import numpy as np
import pytest
from scipy.stats import binomtest, bootstrap, norm
from sklearn.metrics import f1_score, roc_auc_score

from featurekit.errors import DataError
from featurekit.evaluation.stats.intervals import bca_interval, wilson_interval
from featurekit.evaluation.stats.metrics import METRICS
from featurekit.evaluation.stats.unit_bootstrap import (
    UnitData,
    jackknife_weights,
    unit_bootstrap,
    unit_bootstrap_paired,
    unit_codes,
    unit_weights,
)

AUC = [("roc_auc", METRICS["roc_auc"])]


def _bca_of_models(data: UnitData, metrics, n_boot: int, seed: int):
    est = data.estimates(metrics)
    reps = data.replicates(metrics, n_boot, np.random.default_rng(seed))
    jack = data.jackknife(metrics)
    return est, reps, jack


# ---------------------------------------------------------------- Wilson


def test_wilson_equals_scipy_binomtest():
    ks = np.array([0, 1, 7, 50, 115, 156])
    lo, hi = wilson_interval(ks, 156, 0.95)
    for k, a, b in zip(ks, lo, hi):
        ci = binomtest(int(k), 156).proportion_ci(0.95, method="wilson")
        assert (a, b) == pytest.approx((ci.low, ci.high), abs=1e-12)
    lo90, hi90 = wilson_interval(40, 60, 0.9)
    ci = binomtest(40, 60).proportion_ci(0.9, method="wilson")
    assert (float(lo90), float(hi90)) == pytest.approx((ci.low, ci.high), abs=1e-12)
    # the example: accuracy .737 on 156 test images
    lo, hi = wilson_interval(115, 156)
    assert (float(lo), float(hi)) == pytest.approx((0.663, 0.800), abs=0.002)
    assert np.isnan(wilson_interval(0, 0)[0])
    with pytest.raises(DataError):
        wilson_interval(5, 4)
    with pytest.raises(DataError):
        wilson_interval(1, 4, confidence=1.5)


@pytest.mark.parametrize("n, p", [(156, 0.737), (60, 0.9), (300, 0.3), (45, 0.6)])
def test_wilson_coverage_simulation(n, p):
    rng = np.random.default_rng(7)
    k = rng.binomial(n, p, size=4000)
    lo, hi = wilson_interval(k, n, 0.95)
    coverage = np.mean((lo <= p) & (p <= hi))
    assert 0.93 <= coverage <= 0.97, coverage


# ---------------------------------------------------------------- BCa


def test_bca_equals_scipy_bootstrap_on_the_same_resamples():
    x = np.random.default_rng(3).exponential(size=40)
    ref = bootstrap((x,), np.mean, n_resamples=999, method="BCa", rng=np.random.default_rng(5))
    w = np.vstack(list(unit_weights(40, 999, np.random.default_rng(5))))
    jack = np.vstack(list(jackknife_weights(40))) @ x / 39
    lo, hi, ok = bca_interval(w @ x / 40, x.mean(), jack)
    assert bool(ok)
    assert (float(lo), float(hi)) == pytest.approx(tuple(ref.confidence_interval), rel=1e-12)
    # vectorised over leading axes: each row as on its own
    reps = np.vstack([w @ x / 40, w @ x ** 2 / 40])
    lo2, hi2, _ = bca_interval(reps, [x.mean(), np.mean(x ** 2)], np.vstack([jack, jack * 0 + 1]))
    assert (lo2[0], hi2[0]) == pytest.approx((float(lo), float(hi)))
    # degenerate jackknife (no spread): the percentile interval instead
    assert np.quantile(reps[1], 0.025) == pytest.approx(lo2[1])


def test_bca_falls_back_to_percentile_where_undefined():
    reps = np.r_[np.full(50, np.nan), np.linspace(0, 1, 950)]
    lo, hi, ok = bca_interval(reps, 0.5, np.linspace(0, 1, 20))
    assert not bool(ok)
    assert (float(lo), float(hi)) == pytest.approx(tuple(np.quantile(np.linspace(0, 1, 950), [0.025, 0.975])))


# ---------------------------------------------------------------- the unit bootstrap engine


def test_weighted_replicates_equal_explicit_resamples_with_groups_repeats_and_ties():
    rng = np.random.default_rng(11)
    n_groups = 30
    k = rng.integers(1, 4, n_groups)
    grp = np.repeat(np.arange(n_groups), k)
    y_grp = np.r_[np.ones(12, bool), np.zeros(18, bool)]
    y = y_grp[grp]
    n = grp.size
    # two repeats, scores rounded (ties)
    s = np.round(np.r_[y * 0.8 + rng.normal(0, 0.5, n), y * 0.8 + rng.normal(0, 0.5, n)], 1)
    units, n_units = unit_codes(np.r_[grp, grp])
    assert n_units == n_groups
    reps = np.r_[np.zeros(n, int), np.ones(n, int)]
    yy = np.r_[y, y]
    metrics = [("roc_auc", METRICS["roc_auc"]), ("f1", METRICS["f1"]), ("accuracy", METRICS["accuracy"])]
    data = UnitData(units, n_groups, yy, s, reps)
    got = data.replicates(metrics, 25, np.random.default_rng(3), threshold=0.4)
    draws = np.random.default_rng(3).integers(0, n_groups, size=(25, n_groups))
    for b in range(25):
        vals = {"roc_auc": [], "f1": [], "accuracy": []}
        for r in (0, 1):
            rows = np.concatenate([np.flatnonzero((units == u) & (reps == r)) for u in draws[b]])
            yt, sc = yy[rows], s[rows]
            vals["roc_auc"].append(roc_auc_score(yt, sc) if 0 < yt.sum() < yt.size else np.nan)
            vals["f1"].append(f1_score(yt, sc >= 0.4))
            vals["accuracy"].append(np.mean(yt == (sc >= 0.4)))
        for m, v in vals.items():
            assert got[m][0, b] == pytest.approx(np.nanmean(v), abs=1e-12), (m, b)
    # the public function gives the same replicates and labels its interval
    res = unit_bootstrap(yy, s, ["roc_auc"], groups=np.r_[grp, grp], repeats=reps, n_boot=25, random_state=3,
                         return_distribution=True)["roc_auc"]
    np.testing.assert_allclose(res.distribution, got["roc_auc"][0])
    assert res.method == "bca" and res.lo < res.estimate < res.hi


def test_unit_bootstrap_rejects_bad_input():
    y = np.r_[np.ones(5, int), np.zeros(5, int)]
    s = np.linspace(0, 1, 10)
    with pytest.raises(DataError, match="groups"):
        unit_bootstrap(y, s, groups=np.arange(3))
    with pytest.raises(DataError, match="n_boot"):
        unit_bootstrap(y, s, n_boot=0)
    with pytest.raises(DataError, match="both classes"):
        unit_bootstrap(np.ones(10, int), s)


# ---------------------------------------------------------------- coverage of the bootstrap


def test_auc_coverage_of_the_bootstrap_over_patients():
    """Patients with 1-3 images each: resampling patients covers (AUC, and sensitivity: a proportion
    whose images are not independent), resampling images does not."""
    rng = np.random.default_rng(2024)
    n_pos, n_neg, d, sd_patient, sd_image = 30, 45, 1.2, 0.8, 0.6
    k = rng.integers(1, 4, n_pos + n_neg)
    patient = np.repeat(np.arange(n_pos + n_neg), k)
    y = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)][patient]
    n_sets = 2000
    scores = (d * y + rng.normal(0, sd_patient, (n_sets, n_pos + n_neg))[:, patient]
              + rng.normal(0, sd_image, (n_sets, patient.size)))
    sd = math.sqrt(sd_patient ** 2 + sd_image ** 2)
    true_auc = norm.cdf(d / (math.sqrt(2) * sd))
    true_sensitivity = norm.cdf((d - d / 2) / sd)  # at the threshold d/2
    metrics = AUC + [("sensitivity", METRICS["sensitivity"])]
    data = UnitData(patient, n_pos + n_neg, y, scores)
    est = data.estimates(metrics, d / 2)
    reps = data.replicates(metrics, 300, np.random.default_rng(1), d / 2)
    jack = data.jackknife(metrics, d / 2)
    for name, truth in (("roc_auc", true_auc), ("sensitivity", true_sensitivity)):
        lo, hi, ok = bca_interval(reps[name], est[name], jack[name])
        coverage = np.mean((lo <= truth) & (truth <= hi))
        print("coverage over patients", name, coverage)
        assert ok.all() and 0.93 <= coverage <= 0.97, (name, coverage)
    # the same data with each image taken as independent: too narrow
    est, reps, jack = _bca_of_models(UnitData(np.arange(patient.size), patient.size, y, scores[:500]),
                                     AUC, 200, 1)
    lo, hi, _ = bca_interval(reps["roc_auc"], est["roc_auc"], jack["roc_auc"])
    naive = np.mean((lo <= true_auc) & (true_auc <= hi))
    print("coverage over images", naive)
    assert naive < 0.91


def test_paired_auc_difference_coverage():
    """Two correlated markers on the same 60 samples; true ΔAUC = Φ(1.2/√2) − Φ(0.8/√2)."""
    rng = np.random.default_rng(99)
    n, n_sets, da, db = 60, 2000, 1.2, 0.8
    y = np.arange(n) < 24
    shared = rng.normal(size=(n_sets, n))
    a = da * y + shared
    b = db * y + 0.6 * shared + 0.8 * rng.normal(size=(n_sets, n))
    true_delta = norm.cdf(da / math.sqrt(2)) - norm.cdf(db / math.sqrt(2))
    est, reps, jack = _bca_of_models(UnitData(np.arange(n), n, y, np.vstack([a, b])), AUC, 200, 2)
    diff = {key: v["roc_auc"][:n_sets] - v["roc_auc"][n_sets:] for key, v in
            (("est", est), ("reps", reps), ("jack", jack))}
    lo, hi, _ = bca_interval(diff["reps"], diff["est"], diff["jack"])
    coverage = np.mean((lo <= true_delta) & (true_delta <= hi))
    print("coverage of the difference", coverage)
    assert 0.93 <= coverage <= 0.97, coverage
    # the public paired function is this computation for one data set
    res = unit_bootstrap_paired(y.astype(int), a[0], b[0], n_boot=200, random_state=2)
    assert res.delta == pytest.approx(diff["est"][0])
    assert (res.lo, res.hi) == pytest.approx((lo[0], hi[0]))
