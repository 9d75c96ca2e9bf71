"""Multi-class metrics equal scikit-learn's (with and without weights); their unit bootstrap
resamples units whole, covers at the nominal level, and compares paired models."""

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from featurekit.errors import DataError
from featurekit.evaluation.stats.intervals import bca_interval
from featurekit.evaluation.stats.labels import UndefinedMetricWarning
from featurekit.evaluation.stats.multiclass import (
    MULTICLASS_METRICS,
    MulticlassUnitData,
    confusion_matrix,
    multiclass_metric_names,
    multiclass_metrics,
    multiclass_paired_bootstrap,
    multiclass_unit_bootstrap,
)
from featurekit.evaluation.stats.unit_bootstrap import unit_codes

CLASSES = ["normal", "benign", "malignant", "other"]


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _predictions(rng, n, k, signal=1.0, tied=0):
    """Class codes and probabilities; the first ``tied`` rows take one of 3 probability vectors (ties)."""
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k))
    z[np.arange(n), y] += signal
    p = _softmax(z)
    p[:tied] = p[rng.integers(0, 3, tied)]
    return y, p


def _sklearn(y, p, classes, sample_weight=None, ordered=False):
    """Every key of multiclass_metric_names by scikit-learn on the same predictions."""
    k = len(classes)
    labels = np.arange(k)
    pred = np.argmax(p, axis=1)
    sw = sample_weight
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes absent from y_true: sklearn warns too
        out = {
            "accuracy": skm.accuracy_score(y, pred, sample_weight=sw),
            "balanced_accuracy": skm.balanced_accuracy_score(y, pred, sample_weight=sw),
            "kappa": skm.cohen_kappa_score(y, pred, labels=labels, sample_weight=sw,
                                           weights="quadratic" if ordered else None),
            "log_loss": skm.log_loss(y, p, labels=labels, sample_weight=sw),
        }
        for avg in ("macro", "weighted"):
            for name, fn in (("f1", skm.f1_score), ("precision", skm.precision_score),
                             ("recall", skm.recall_score)):
                out[f"{name}_{avg}"] = fn(y, pred, labels=labels, average=avg, sample_weight=sw,
                                          zero_division=np.nan)
    aucs = []
    for c, name in enumerate(classes):
        pos = y == c
        auc = skm.roc_auc_score(pos, p[:, c], sample_weight=sw) if 0 < pos.sum() < pos.size else np.nan
        aucs.append(auc)
        out[f"roc_auc[{name}]"] = auc
        out[f"sensitivity[{name}]"] = skm.recall_score(pos, pred == c, sample_weight=sw, zero_division=np.nan)
        out[f"specificity[{name}]"] = skm.recall_score(~pos, pred != c, sample_weight=sw, zero_division=np.nan)
    out["roc_auc"] = np.nanmean(aucs)
    if all(np.isfinite(aucs)):
        assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro",
                                                                 labels=labels, sample_weight=sw), abs=1e-12)
    return out


def _assert_same(got, want):
    assert list(got) == multiclass_metric_names(CLASSES[:_n_classes(got)])
    for key, v in want.items():
        if np.isnan(v):
            assert np.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(v, abs=1e-12), key


def _n_classes(values):
    return sum(1 for key in values if key.startswith("sensitivity["))


# ---------------------------------------------------------------- metrics


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ordered", [False, True])
def test_metrics_equal_sklearn(weighted, ordered):
    rng = np.random.default_rng(7)
    y, p = _predictions(rng, 150, 4, tied=40)
    sw = rng.integers(0, 4, y.size).astype(float) if weighted else None
    got = multiclass_metrics(y, p, CLASSES, ordered=ordered, sample_weight=sw)
    assert list(got) == multiclass_metric_names(CLASSES)
    assert list(got)[:len(MULTICLASS_METRICS)] == list(MULTICLASS_METRICS)
    _assert_same(got, _sklearn(y, p, CLASSES, sw, ordered))
    np.testing.assert_array_equal(confusion_matrix(y, p.argmax(1), 4, sw),
                                  skm.confusion_matrix(y, p.argmax(1), labels=range(4), sample_weight=sw))


def test_quadratic_kappa_counts_how_far_off_an_error_is():
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    near, far = np.eye(4)[[0, 1, 1, 2, 2, 3, 3, 3]], np.eye(4)[[0, 3, 1, 3, 2, 0, 3, 3]]
    plain = [multiclass_metrics(y, q, CLASSES)["kappa"] for q in (near, far)]
    quad = [multiclass_metrics(y, q, CLASSES, ordered=True)["kappa"] for q in (near, far)]
    assert plain[0] == pytest.approx(plain[1])  # the same number of errors
    assert quad[0] > quad[1]  # but one class off is less wrong than three


def test_a_class_without_samples_is_undefined_and_left_out_of_the_averages():
    rng = np.random.default_rng(3)
    y, p = _predictions(rng, 90, 4)
    y[y == 3] = 1  # no sample of class 3; it is still predicted sometimes
    assert (p.argmax(1) == 3).any()
    with pytest.warns(UndefinedMetricWarning, match="no sample of class.*other"):
        got = multiclass_metrics(y, p, CLASSES)
    assert np.isnan(got["roc_auc[other]"]) and np.isnan(got["sensitivity[other]"])
    assert got["roc_auc"] == pytest.approx(np.mean([got[f"roc_auc[{c}]"] for c in CLASSES[:3]]))
    _assert_same(got, _sklearn(y, p, CLASSES))


def test_bad_input_is_a_data_error():
    y, p = _predictions(np.random.default_rng(0), 20, 3)
    classes = CLASSES[:3]
    with pytest.raises(DataError, match="probabilities"):
        multiclass_metrics(y, p * 2, classes)
    with pytest.raises(DataError, match="codes outside"):
        multiclass_metrics(y + 1, p, classes)
    with pytest.raises(DataError, match="one column per class"):
        multiclass_metrics(y, p[:, :2], classes)
    with pytest.raises(DataError, match="unique"):
        multiclass_metrics(y, p, ["a", "a", "b"])
    with pytest.raises(DataError, match="groups"):
        multiclass_unit_bootstrap(y, p, classes, groups=np.arange(3))
    with pytest.raises(DataError, match="unknown multi-class metric"):
        multiclass_unit_bootstrap(y, p, classes, ["auc"])


# ---------------------------------------------------------------- the bootstrap


def test_replicates_are_the_metrics_of_resampled_groups_per_repeat():
    """A replicate = sklearn with sample_weight = how often each prediction's group was drawn, per repeat,
    averaged over repeats; and for accuracy and macro AUC, the metric of the explicitly resampled rows
    (a group is drawn with all its predictions)."""
    rng = np.random.default_rng(11)
    n_groups, classes = 24, CLASSES[:3]
    group = np.repeat(np.arange(n_groups), rng.integers(1, 4, n_groups))
    y = (np.arange(n_groups) % 3)[group]  # one class per patient
    n = group.size
    z = rng.normal(size=(2, n, 3))
    z[:, np.arange(n), y] += 1.0
    p = np.round(_softmax(z), 2)
    p[..., 2] = 1.0 - p[..., 0] - p[..., 1]  # coarse probabilities: ties
    yy, pp, gg = np.r_[y, y], np.r_[p[0], p[1]], np.r_[group, group]
    reps = np.repeat([0, 1], n)
    n_boot = 8
    res = multiclass_unit_bootstrap(yy, pp, classes, groups=gg, repeats=reps, n_boot=n_boot, random_state=5,
                                    return_distribution=True)
    # the draws are of unit codes (the groups' positions among their sorted names)
    unit = unit_codes(group)[0]
    draws = np.random.default_rng(5).integers(0, n_groups, size=(n_boot, n_groups))
    for b in range(n_boot):
        counts = np.bincount(draws[b], minlength=n_groups).astype(float)
        per_repeat = [_sklearn(y, p[r], classes, counts[unit]) for r in (0, 1)]
        for key, result in res.items():
            assert result.distribution[b] == pytest.approx(np.mean([v[key] for v in per_repeat]), abs=1e-12), key
        rows = np.concatenate([np.flatnonzero(unit == u) for u in draws[b]])
        resampled = [(skm.accuracy_score(y[rows], p[r][rows].argmax(1)),
                      skm.roc_auc_score(y[rows], p[r][rows], multi_class="ovr")) for r in (0, 1)]
        assert res["accuracy"].distribution[b] == pytest.approx(np.mean([a for a, _ in resampled]))
        assert res["roc_auc"].distribution[b] == pytest.approx(np.mean([a for _, a in resampled]))
    for key, result in res.items():
        assert result.estimate == pytest.approx(np.mean([_sklearn(y, p[r], classes)[key] for r in (0, 1)]))
        assert result.method == "bca" and result.lo <= result.estimate <= result.hi, key


def test_coverage_of_macro_auc_and_accuracy():
    """1000 data sets of 3 × 30 samples (fixed labels, fresh probabilities), evaluated as the k models of one
    MulticlassUnitData (they share the unit draws; each interval is still its own data set's interval).
    The truths come from 3 × 100 000 samples of the same model. With 1000 data sets the Monte-Carlo
    standard error of a 95 % coverage is 0.7 %, so 93-97 % is a band of about three standard errors."""
    rng = np.random.default_rng(2026)
    k, per_class, n_sets, signal = 3, 30, 1000, 1.0
    y = np.repeat(np.arange(k), per_class)

    def draw(labels, size):
        z = rng.normal(size=size + (labels.size, k))
        z[..., np.arange(labels.size), labels] += signal
        return _softmax(z)

    big_y = np.repeat(np.arange(k), 100_000)
    big_p = draw(big_y, ())
    truth = {"roc_auc": skm.roc_auc_score(big_y, big_p, multi_class="ovr"),
             "accuracy": np.mean(big_p.argmax(1) == big_y)}
    data = MulticlassUnitData(y, draw(y, (n_sets,)), np.arange(y.size), y.size)
    est = data.estimates()
    reps = data.replicates(300, np.random.default_rng(1))
    jack = data.jackknife()
    for name, true in truth.items():
        lo, hi, ok = bca_interval(reps[name], est[name], jack[name])
        coverage = np.mean((lo <= true) & (true <= hi))
        print("coverage", name, coverage)
        assert ok.all() and 0.93 <= coverage <= 0.97, (name, coverage)


def test_paired_bootstrap_delta_and_p_value():
    rng = np.random.default_rng(4)
    classes = CLASSES[:3]
    y, good = _predictions(rng, 120, 3, signal=2.0)
    weak = _softmax(np.log(good) + rng.normal(0, 2.0, good.shape))  # the same model, blurred
    res = multiclass_paired_bootstrap(y, good, weak, classes, "roc_auc", n_boot=400)
    a, b = multiclass_metrics(y, good, classes), multiclass_metrics(y, weak, classes)
    assert (res.estimate_a, res.estimate_b) == (pytest.approx(a["roc_auc"]), pytest.approx(b["roc_auc"]))
    assert res.delta == res.estimate_a - res.estimate_b and res.delta > 0
    assert res.lo > 0 and res.p_value < 0.01
    same = multiclass_paired_bootstrap(y, good, good, classes, "accuracy", n_boot=400)
    assert same.delta == 0 and same.p_value == 1.0 and (same.lo, same.hi) == (0.0, 0.0)


def test_paired_bootstrap_p_values_are_uniform_under_the_null_and_have_no_floor():
    """Two models of equal expected macro AUC: p < 0.05 about 5 % of the time (300 simulations; the
    binomial sd of the rate is 0.013). A clear difference gets a p-value below 2 / (B + 1), the
    percentile p-value's floor, so a Holm adjustment over many comparisons can still reject."""
    rng = np.random.default_rng(0)
    classes = CLASSES[:3]
    p = []
    for sim in range(300):
        y = rng.integers(0, 3, 90)
        signal = np.zeros((90, 3))
        signal[np.arange(90), y] = 1.0
        a, b = (_softmax(signal + rng.normal(size=(90, 3))) for _ in range(2))
        p.append(multiclass_paired_bootstrap(y, a, b, classes, "roc_auc", n_boot=200, random_state=sim).p_value)
    p = np.asarray(p)
    assert 0.02 <= np.mean(p < 0.05) <= 0.09 and 0.06 <= np.mean(p < 0.10) <= 0.15
    assert 0.35 <= np.median(p) <= 0.65
    y, good = _predictions(np.random.default_rng(1), 300, 3, signal=3.0)
    noise = _softmax(np.random.default_rng(2).normal(size=good.shape))
    strong = multiclass_paired_bootstrap(y, good, noise, classes, "roc_auc", n_boot=100)
    assert strong.delta > 0.3 and strong.p_value < 2 / 101 / 100
