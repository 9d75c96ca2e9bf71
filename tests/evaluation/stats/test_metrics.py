"""Binary metrics: against scikit-learn, against hand-computed cases, degenerate cases."""

import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from featurekit.errors import DataError
from featurekit.evaluation.stats import metrics as M
from featurekit.evaluation.stats.metrics import (
    METRICS,
    THRESHOLD_FREE,
    UndefinedMetricWarning,
    binary_report,
    confusion_counts,
    get_metric,
    youden_threshold,
)


def _random_case(seed, n=300, pos="malignant", neg="benign", ties=False):
    rng = np.random.default_rng(seed)
    y = rng.choice([neg, pos], size=n, p=[0.65, 0.35])
    s = rng.normal(size=n) + 0.9 * (y == pos)
    if ties:
        s = np.round(s * 2) / 2  # many tied scores
    return y, s


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_label_metrics_match_sklearn_with_string_labels(seed, ties):
    y, s = _random_case(seed, ties=ties)
    thr = 0.3
    y_pred = np.where(s >= thr, "malignant", "benign")
    kw = dict(pos_label="malignant")
    assert M.accuracy(y, y_pred, **kw) == pytest.approx(skm.accuracy_score(y, y_pred))
    assert M.precision(y, y_pred, **kw) == pytest.approx(skm.precision_score(y, y_pred, **kw))
    assert M.sensitivity(y, y_pred, **kw) == pytest.approx(skm.recall_score(y, y_pred, **kw))
    assert M.specificity(y, y_pred, **kw) == pytest.approx(
        skm.recall_score(y, y_pred, pos_label="benign"))
    assert M.npv(y, y_pred, **kw) == pytest.approx(skm.precision_score(y, y_pred, pos_label="benign"))
    assert M.f1(y, y_pred, **kw) == pytest.approx(skm.f1_score(y, y_pred, **kw))
    assert M.mcc(y, y_pred, **kw) == pytest.approx(skm.matthews_corrcoef(y, y_pred))
    assert M.balanced_accuracy(y, y_pred, **kw) == pytest.approx(
        skm.balanced_accuracy_score(y, y_pred))
    assert M.youden_index(y, y_pred, **kw) == pytest.approx(
        skm.balanced_accuracy_score(y, y_pred, adjusted=True))
    assert M.roc_auc(y, s, **kw) == pytest.approx(skm.roc_auc_score(y == "malignant", s))
    assert M.pr_auc(y, s, **kw) == pytest.approx(
        skm.average_precision_score(y, s, pos_label="malignant"))


def test_explicit_positive_class_is_not_sort_order():
    # "benign" sorts first; choosing it as positive flips sensitivity and specificity
    y, s = _random_case(5)
    y_pred = np.where(s >= 0.0, "malignant", "benign")
    assert M.sensitivity(y, y_pred, pos_label="benign") == pytest.approx(
        M.specificity(y, y_pred, pos_label="malignant"))
    assert M.roc_auc(y, -s, pos_label="benign") == pytest.approx(M.roc_auc(y, s, pos_label="malignant"))
    assert M.precision(y, y_pred, pos_label="benign") == pytest.approx(
        skm.precision_score(y, y_pred, pos_label="benign"))


def test_registry_matches_sklearn_on_scores():
    y, s = _random_case(3, pos=1, neg=0)
    thr = 0.25
    pred = (s >= thr).astype(int)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "npv": skm.precision_score(y, pred, pos_label=0),
        "sensitivity": skm.recall_score(y, pred),
        "specificity": skm.recall_score(y, pred, pos_label=0),
        "f1": skm.f1_score(y, pred),
        "mcc": skm.matthews_corrcoef(y, pred),
        "youden_index": skm.balanced_accuracy_score(y, pred, adjusted=True),
        "roc_auc": skm.roc_auc_score(y, s),
        "pr_auc": skm.average_precision_score(y, s),
    }
    assert set(METRICS) == set(expected)
    for name, fn in METRICS.items():
        assert fn(y, s, thr) == pytest.approx(expected[name]), name
    assert THRESHOLD_FREE == {"roc_auc", "pr_auc"}
    report = binary_report(y, s, threshold=thr)
    for name in METRICS:
        assert report[name] == pytest.approx(expected[name]), name
    assert report["tp"] + report["fn"] == report["n_pos"] == int(np.sum(y == 1))
    assert report["n"] == len(y)


def test_hand_computed_confusion_matrix():
    # 10 samples, positive "M": TP=3, FN=1, FP=2, TN=4
    y = np.array(["M", "M", "M", "M", "B", "B", "B", "B", "B", "B"])
    p = np.array(["M", "M", "M", "B", "M", "M", "B", "B", "B", "B"])
    c = confusion_counts(y, p, pos_label="M")
    assert tuple(c) == (3, 2, 4, 1)
    assert (c.n_pos, c.n_neg, c.n) == (4, 6, 10)
    assert M.accuracy(y, p, pos_label="M") == pytest.approx(7 / 10)
    assert M.sensitivity(y, p, pos_label="M") == pytest.approx(3 / 4)
    assert M.specificity(y, p, pos_label="M") == pytest.approx(4 / 6)
    assert M.precision(y, p, pos_label="M") == pytest.approx(3 / 5)
    assert M.npv(y, p, pos_label="M") == pytest.approx(4 / 5)
    assert M.f1(y, p, pos_label="M") == pytest.approx(6 / 9)
    assert M.balanced_accuracy(y, p, pos_label="M") == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert M.youden_index(y, p, pos_label="M") == pytest.approx(3 / 4 + 4 / 6 - 1)
    assert M.mcc(y, p, pos_label="M") == pytest.approx((3 * 4 - 2 * 1) / math.sqrt(5 * 4 * 6 * 5))
    # boolean predictions mean "is positive"
    assert tuple(confusion_counts(y, p == "M", pos_label="M")) == (3, 2, 4, 1)


def test_hand_computed_auc_with_ties():
    # positives 0.9, 0.5, 0.5; negatives 0.5, 0.1
    # pairs: (0.9>0.5, 0.9>0.1) = 2; (0.5=0.5 -> 1/2, 0.5>0.1) x2 = 3 -> 5/6
    y = [1, 1, 1, 0, 0]
    s = [0.9, 0.5, 0.5, 0.5, 0.1]
    assert M.roc_auc(y, s) == pytest.approx(5 / 6)
    # AP: thresholds 0.9 -> P=1, R=1/3; 0.5 -> P=3/4, R=1; AP = 1/3*1 + 2/3*3/4
    assert M.pr_auc(y, s) == pytest.approx(1 / 3 + 0.5)


def test_youden_threshold_hand_case():
    # sorted scores:  0.9 0.8 0.7 0.6 0.5 0.4 0.3 0.2
    # labels:         1   1   0   1   1   0   0   0
    # J at t=0.8: 2/4 - 0 = 0.5 ; t=0.6: 3/4 - 1/4 = 0.5 ; t=0.5: 1 - 1/4 = 0.75 (max)
    y = np.array([1, 1, 0, 1, 1, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    assert youden_threshold(y, s) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    perm = rng.permutation(8)
    assert youden_threshold(y[perm], s[perm]) == pytest.approx(0.5)
    # positive class given by name, and J at the threshold is the maximum
    ys = np.where(y == 1, "malignant", "benign")
    t = youden_threshold(ys, s, pos_label="malignant")
    assert t == pytest.approx(0.5)
    assert METRICS["youden_index"](ys, s, t, pos_label="malignant") == pytest.approx(0.75)


def test_youden_threshold_tie_rule_takes_highest_threshold():
    # J(0.8) = 1/2 - 0 = 0.5 and J(0.4) = 1 - 1/2 = 0.5 (tie); J(0.6) = 1/2 - 1/2 = 0
    y = np.array([1, 0, 1, 0])
    s = np.array([0.8, 0.6, 0.4, 0.2])
    assert youden_threshold(y, s) == pytest.approx(0.8)


def test_youden_threshold_needs_both_classes():
    with pytest.raises(DataError, match="both classes"):
        youden_threshold([1, 1, 1], [0.1, 0.2, 0.3])


def test_zero_division_default_is_nan_with_warning():
    y = [1, 1, 0, 0]
    p = [0, 0, 0, 0]  # nothing predicted positive
    with pytest.warns(UndefinedMetricWarning, match="precision"):
        assert math.isnan(M.precision(y, p))
    assert M.precision(y, p, zero_division=0.0) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert M.precision(y, p, zero_division=1.0) == 1.0
    with pytest.warns(UndefinedMetricWarning, match="MCC"):
        assert math.isnan(M.mcc(y, p))
    assert M.mcc(y, p, zero_division=0.0) == skm.matthews_corrcoef(y, p)


def test_single_class_degenerate_values():
    y = ["benign"] * 5
    s = [0.1, 0.2, 0.3, 0.4, 0.9]
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(M.roc_auc(y, s, pos_label="malignant"))
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(M.pr_auc(y, s, pos_label="malignant"))
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(M.sensitivity(y, ["benign"] * 5, pos_label="malignant"))
    assert M.specificity(y, ["benign"] * 5, pos_label="malignant") == 1.0
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(M.balanced_accuracy(y, ["benign"] * 5, pos_label="malignant"))
    with pytest.warns(UndefinedMetricWarning):
        rep = binary_report(y, s, 0.5, pos_label="malignant")
    assert rep["fp"] == 1 and rep["tn"] == 4 and rep["n_pos"] == 0
    assert math.isnan(rep["sensitivity"]) and math.isnan(rep["roc_auc"])
    assert rep["specificity"] == pytest.approx(0.8)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(DataError, match="not one of the labels"):
        M.roc_auc(["a", "b", "a"], [0.1, 0.2, 0.3], pos_label="c")
    with pytest.raises(DataError, match="type"):
        M.roc_auc(["a", "a", "a"], [0.1, 0.2, 0.3], pos_label=1)
    with pytest.raises(DataError, match="two classes"):
        M.roc_auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match="NaN"):
        M.roc_auc([0, 1, 1], [0.1, np.nan, 0.3])
    with pytest.raises(DataError, match="samples"):
        M.roc_auc([0, 1, 1], [0.1, 0.3])
    with pytest.raises(DataError, match="empty"):
        M.accuracy([], [])
    with pytest.raises(DataError, match="positive-class column"):
        M.roc_auc([0, 1], np.array([[0.9, 0.1], [0.2, 0.8]]))
    with pytest.raises(DataError, match="neither in y_true"):
        M.accuracy(["a", "b"], ["a", "c"], pos_label="b")
    with pytest.raises(DataError, match="unknown metric"):
        get_metric("auroc2")


def test_get_metric_aliases():
    assert get_metric("AUC")[0] == "roc_auc"
    assert get_metric("ppv")[0] == "precision"
    assert get_metric("recall")[0] == "sensitivity"
    assert get_metric("average_precision")[0] == "pr_auc"


def test_threshold_convention_is_greater_or_equal():
    y = [0, 1]
    s = [0.2, 0.5]
    assert METRICS["sensitivity"](y, s, 0.5) == 1.0
    assert METRICS["sensitivity"](y, s, 0.5000001, zero_division=0.0) == 0.0


# --------------------------------------------------------------------------- the one ranking kernel


def _tied_case(seed, n):
    """Scores on a coarse grid (many ties, also across classes), ~30% positives."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    y[:2] = [0, 1]
    s = np.round(rng.normal(size=n) + y, 1 if seed % 2 else 0)
    return y, s


@pytest.mark.parametrize("seed, n", [(0, 7), (1, 60), (2, 500), (3, 2000)])
def test_one_auc_kernel_equals_sklearn_with_ties(seed, n):
    from featurekit.evaluation.stats.bootstrap import bootstrap_ci
    from featurekit.evaluation.stats.delong import delong_components
    from featurekit.evaluation.stats.ranking import auc_from_counts, value_counts

    y, s = _tied_case(seed, n)
    assert np.unique(s).size < n  # ties present
    expected = skm.roc_auc_score(y, s)
    # counts and placements are integers and half-integers: the only rounding is float64's
    vc = value_counts(y == 1, s)
    assert float(auc_from_counts(vc.pos, vc.neg)) == pytest.approx(expected, abs=1e-12)
    assert M.roc_auc(y, s) == pytest.approx(expected, abs=1e-12)
    assert binary_report(y, s)["roc_auc"] == pytest.approx(expected, abs=1e-12)
    assert bootstrap_ci(y, s, n_boot=1).estimate == pytest.approx(expected, abs=1e-12)
    if min(y.sum(), (1 - y).sum()) >= 2:
        aucs, v10, _ = delong_components(y, [s, -s])
        np.testing.assert_allclose(aucs, [expected, 1 - expected], rtol=0, atol=1e-12)
        assert v10[0].mean() == pytest.approx(expected, abs=1e-12)
    fpr, tpr, thr = M.roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tpr, sk_tpr, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(thr[1:], sk_thr[1:])
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(expected, abs=1e-12)


def test_every_auc_goes_through_the_one_kernel(monkeypatch):
    """metrics, binary_report, bootstrap, DeLong and the report's ROC all count ranks in ranking.placements."""
    from featurekit.evaluation.stats import ranking
    from featurekit.evaluation.stats.bootstrap import bootstrap_ci
    from featurekit.evaluation.stats.delong import delong_roc_test

    calls = []
    real = ranking.placements

    def spy(counts):
        calls.append(np.shape(counts))
        return real(counts)

    monkeypatch.setattr(ranking, "placements", spy)
    y, s = _tied_case(5, 80)
    for compute in (lambda: M.roc_auc(y, s), lambda: binary_report(y, s),
                    lambda: bootstrap_ci(y, s, n_boot=50), lambda: delong_roc_test(y, s, s + 0.3 * y)):
        calls.clear()
        compute()
        assert calls, compute
    calls.clear()
    bootstrap_ci(y, s, n_boot=50)
    assert any(len(shape) == 2 and shape[0] == 50 for shape in calls)  # all replicates in one call


def test_metric_table_is_vectorised_over_counts():
    """Arrays of counts (the bootstrap's replicates) give the metric of each, as single calls do."""
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 6, size=(200, 4))
    counts[:5] = [[0, 0, 3, 2], [2, 0, 0, 3], [0, 3, 2, 0], [1, 1, 1, 1], [0, 0, 0, 4]]  # degenerate rows
    for name, metric in METRICS.items():
        if metric.threshold_free:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            vec = metric.from_counts(tuple(counts.T), np.nan)
            one = [float(metric.from_counts(tuple(int(v) for v in row), np.nan)) for row in counts]
        np.testing.assert_array_equal(vec, one, err_msg=name)
    assert {m.name for m in METRICS.values() if m.threshold_free} == THRESHOLD_FREE
    assert all(m.higher_is_better for m in METRICS.values())
    assert M.accuracy.__doc__.startswith("Accuracy ``(TP + TN)") and "zero_division" in M.f1.__doc__
