"""Binary classification metrics with an explicit positive class, as data.

Each metric is one row of a table (:data:`METRICS`): a :class:`Metric` holding
its name, formula, numerator and denominator as a function of counts, when
it is undefined, its direction and whether it needs a threshold. Everything
else — the public functions (:func:`accuracy` ... :func:`roc_auc`), the
registry, :func:`binary_report`, the vectorised bootstrap — is made from the
table, so a metric is written once.

Conventions
-----------
* Labels: anything comparable; the positive class is named with ``pos_label``
  (default ``1``), never inferred from the sort order
  (:mod:`featurekit.evaluation.stats.labels` checks the input; malformed input raises
  :class:`~featurekit.errors.DataError`).
* Confusion counts: ``TP`` (positive, predicted positive), ``FP`` (negative,
  predicted positive), ``TN``, ``FN``; ``P = TP + FN``, ``N = TN + FP``.
* From scores: a sample is predicted positive iff ``score >= threshold``
  (the convention of :func:`sklearn.metrics.roc_curve`; note that estimators'
  own ``predict`` usually uses ``>``, so a probability of exactly 0.5 may differ).
* Threshold-free metrics (ROC AUC, PR AUC) are functions of the counts of
  positives and negatives per distinct score value, computed by the ranking
  kernel every AUC shares, :mod:`featurekit.evaluation.stats.ranking`.
* Degenerate cases never pass silently. A metric whose denominator is zero
  (precision with no predicted positive, ROC AUC with one class...) returns
  ``zero_division``: by default ``"warn"``, which returns **nan** and emits an
  :class:`UndefinedMetricWarning` (unlike scikit-learn, whose ``"warn"`` returns
  0). Pass ``zero_division=0.0`` (or ``1.0``, ``np.nan``) to get that value
  silently.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np

from featurekit.errors import DataError
from featurekit.evaluation.stats.labels import (
    UndefinedMetricWarning,
    binarize_labels,
    binarize_predictions,
    truth_and_scores,
)
from featurekit.evaluation.stats.ranking import ap_terms, auc_terms, roc_points, value_counts
from featurekit.evaluation.stats.thresholds import predict_at, youden_threshold
from featurekit.specs import lookup

__all__ = [
    "UndefinedMetricWarning",
    "ConfusionCounts",
    "Metric",
    "binarize_labels",
    "predict_at",
    "confusion_counts",
    "accuracy",
    "balanced_accuracy",
    "precision",
    "npv",
    "sensitivity",
    "specificity",
    "f1",
    "mcc",
    "youden_index",
    "roc_auc",
    "pr_auc",
    "roc_curve",
    "youden_threshold",
    "binary_report",
    "METRICS",
    "THRESHOLD_FREE",
    "METRIC_ALIASES",
    "get_metric",
]


class ConfusionCounts(NamedTuple):
    """Counts of a binary confusion matrix (positive class first)."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n_pos(self) -> int:
        """Number of positives, ``P = TP + FN``."""
        return self.tp + self.fn

    @property
    def n_neg(self) -> int:
        """Number of negatives, ``N = TN + FP``."""
        return self.tn + self.fp

    @property
    def n(self) -> int:
        """Number of samples."""
        return self.tp + self.fp + self.tn + self.fn


def _confusion(t: np.ndarray, p: np.ndarray) -> ConfusionCounts:
    tp = int(np.count_nonzero(t & p))
    fp = int(np.count_nonzero(~t & p))
    fn = int(np.count_nonzero(t & ~p))
    return ConfusionCounts(tp, fp, int(t.shape[0] - tp - fp - fn), fn)


def confusion_counts(y_true: Any, y_pred: Any, *, pos_label: Any = 1) -> ConfusionCounts:
    """Binary confusion counts with an explicit positive class.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels in the label space of ``y_true`` (a sample is
        positive iff ``y_pred == pos_label``), or booleans (``True`` = positive).
    pos_label : scalar, default=1

    Returns
    -------
    ConfusionCounts
        ``(tp, fp, tn, fn)`` with ``TP = #(y=pos, ŷ=pos)``, ``FP = #(y≠pos, ŷ=pos)``,
        ``TN = #(y≠pos, ŷ≠pos)``, ``FN = #(y=pos, ŷ≠pos)``.
    """
    return _confusion(*binarize_predictions(y_true, y_pred, pos_label))


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------


def _check_zero_division(zero_division: Any) -> None:
    if isinstance(zero_division, str):
        if zero_division != "warn":
            raise DataError(f"zero_division must be 'warn' or a number, got {zero_division!r}")
    elif not isinstance(zero_division, (int, float, np.floating, np.integer)):
        raise DataError(f"zero_division must be 'warn' or a number, got {zero_division!r}")


def _ratio(num, den, zero_division, what: str):
    """``num / den`` with ``zero_division`` where ``den == 0`` (scalars or arrays)."""
    _check_zero_division(zero_division)
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    zero = den == 0
    fill = np.nan if zero_division == "warn" else float(zero_division)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(zero, fill, num / np.where(zero, 1.0, den))
    if zero_division == "warn" and np.any(zero):
        warnings.warn(f"{what}; returning nan", UndefinedMetricWarning, stacklevel=4)
    return out[()] if out.ndim == 0 else out


def _rate(a, b):
    """``a / b``, 0 where ``b == 0`` (inside formulas already guarded by their denominator)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def _both(tp, fp, tn, fn):
    return (np.add(tp, fn) > 0) & (np.add(tn, fp) > 0)


def _sens_plus_spec(tp, fp, tn, fn):
    return _rate(tp, np.add(tp, fn)) + _rate(tn, np.add(tn, fp))


def _mcc(tp, fp, tn, fn):
    tp, fp, tn, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, tn, fn))
    return tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))


@dataclass(frozen=True)
class Metric:
    """A binary metric as data, callable on scores.

    Attributes
    ----------
    name : str
        Canonical name (a column of ``results.csv``).
    title : str
        Name in prose (in warnings: "precision is undefined ...").
    formula : str
        The formula, for documentation.
    terms : callable
        ``(numerator, denominator)`` as a function of the counts: of the
        confusion counts ``(tp, fp, tn, fn)``, or, when ``threshold_free``, of
        the counts of positives and negatives per distinct score value
        ``(cp, cn)`` (:mod:`featurekit.evaluation.stats.ranking`). Vectorised: arrays
        of counts (e.g. one per bootstrap replicate) give arrays of values.
    undefined : str
        When the denominator is 0, in words ("with no predicted positive (TP + FP = 0)").
    threshold_free : bool
        Whether the metric ranks scores rather than thresholding them.
    higher_is_better : bool
    proportion : bool
        Whether the metric is a binomial proportion: ``terms`` are a number
        of successes and a number of trials of independent samples (accuracy,
        precision, NPV, sensitivity, specificity), so that a score interval for
        a proportion (:func:`~featurekit.evaluation.stats.intervals.wilson_interval`)
        applies when each sample is predicted once.
    aliases : tuple of str
        Other accepted names (:func:`get_metric`).
    note : str
        A remark for the documentation.

    Calling it, ``metric(y_true, y_score, threshold=0.5, *, pos_label=1,
    zero_division="warn")``, gives its value on scores (predicted positive iff
    ``score >= threshold``; threshold-free metrics ignore it).
    """

    name: str
    title: str
    formula: str
    terms: Callable[..., tuple]
    undefined: str
    threshold_free: bool = False
    higher_is_better: bool = True
    proportion: bool = False
    aliases: tuple = ()
    note: str = ""

    def from_counts(self, counts: tuple, zero_division: Any = "warn"):
        """The metric of ``counts`` (``(tp, fp, tn, fn)``, or ``(cp, cn)`` when threshold-free)."""
        num, den = self.terms(*counts)
        return _ratio(num, den, zero_division, f"{self.title} is undefined {self.undefined}")

    def counts(self, is_pos: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> tuple:
        """The counts this metric is a function of, from checked labels and scores."""
        if self.threshold_free:
            vc = value_counts(is_pos, scores)
            return vc.pos, vc.neg
        return _confusion(is_pos, scores >= threshold)

    def __call__(self, y_true: Any, y_score: Any, threshold: float = 0.5, *, pos_label: Any = 1,
                 zero_division: Any = "warn") -> float:
        t, s = truth_and_scores(y_true, y_score, pos_label)
        return float(self.from_counts(self.counts(t, s, threshold), zero_division))


_TABLE = (
    Metric("accuracy", "accuracy", "(TP + TN) / (TP + FP + TN + FN)",
           lambda tp, fp, tn, fn: (tp + tn, tp + tn + fp + fn),
           "with no samples", proportion=True, aliases=("acc",)),
    Metric("balanced_accuracy", "balanced accuracy", "(sensitivity + specificity) / 2",
           lambda *c: (np.where(_both(*c), _sens_plus_spec(*c), 0.0), np.where(_both(*c), 2.0, 0.0)),
           "with a single class in y_true", aliases=("bacc",)),
    Metric("precision", "precision", "TP / (TP + FP)",
           lambda tp, fp, tn, fn: (tp, tp + fp),
           "with no predicted positive (TP + FP = 0)", proportion=True, aliases=("ppv",),
           note="Also called positive predictive value (PPV)."),
    Metric("npv", "NPV", "TN / (TN + FN)",
           lambda tp, fp, tn, fn: (tn, tn + fn),
           "with no predicted negative (TN + FN = 0)", proportion=True, note="Negative predictive value."),
    Metric("sensitivity", "sensitivity", "TP / (TP + FN)",
           lambda tp, fp, tn, fn: (tp, tp + fn),
           "with no positive sample (TP + FN = 0)", proportion=True, aliases=("recall", "tpr"),
           note="Also called recall or true positive rate."),
    Metric("specificity", "specificity", "TN / (TN + FP)",
           lambda tp, fp, tn, fn: (tn, tn + fp),
           "with no negative sample (TN + FP = 0)", proportion=True, aliases=("tnr",), note="True negative rate."),
    Metric("f1", "F1", "2 TP / (2 TP + FP + FN)",
           lambda tp, fp, tn, fn: (2 * tp, 2 * tp + fp + fn),
           "with no positive and no predicted positive (2TP + FP + FN = 0)", aliases=("f1_score",),
           note="The harmonic mean of precision and sensitivity."),
    Metric("mcc", "MCC", "(TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))", _mcc,
           "when a row or column of the confusion matrix is empty",
           note="Matthews correlation coefficient, in [-1, 1], symmetric in the choice of the positive "
                "class; scikit-learn returns 0 where it is undefined."),
    Metric("youden_index", "Youden's J", "sensitivity + specificity − 1",
           lambda *c: (np.where(_both(*c), _sens_plus_spec(*c) - 1.0, 0.0), np.where(_both(*c), 1.0, 0.0)),
           "with a single class in y_true", aliases=("youden", "j")),
    Metric("roc_auc", "ROC AUC", "(Σ_{i∈pos} R_i − P(P+1)/2) / (P·N) = P(X > Y) + ½·P(X = Y)", auc_terms,
           "with a single class in y_true", threshold_free=True, aliases=("auc", "auroc"),
           note="The Mann–Whitney statistic: R_i are the midranks of the scores in the pooled sample, "
                "X a random positive and Y a random negative score (ties count one half, as the "
                "trapezoidal area under the ROC curve); see :mod:`featurekit.evaluation.stats.ranking`."),
    Metric("pr_auc", "average precision", "Σ_k (R_k − R_{k−1}) · P_k", ap_terms,
           "with no positive in y_true", threshold_free=True, aliases=("ap", "average_precision", "auprc"),
           note="Area under the precision–recall curve: P_k and R_k are precision and recall when "
                "predicting positive iff score >= t_k, over the distinct scores t_k in decreasing order "
                "(R_0 = 0); scikit-learn's average_precision_score (a step function, no interpolation). "
                "Its chance level is the prevalence P / (P + N); with no negative it is 1."),
)

#: name -> :class:`Metric` (callable ``(y_true, y_score, threshold=0.5, *, pos_label=1)``), in table order
METRICS: dict[str, Metric] = {m.name: m for m in _TABLE}

#: metrics of :data:`METRICS` that ignore the threshold
THRESHOLD_FREE: frozenset[str] = frozenset(m.name for m in _TABLE if m.threshold_free)

#: accepted alternative names -> canonical name in :data:`METRICS`
METRIC_ALIASES: dict[str, str] = {a: m.name for m in _TABLE for a in m.aliases}


def get_metric(name: str) -> tuple[str, Metric]:
    """Resolve a metric name (or alias, case-insensitive) to ``(name, metric)``.

    Raises
    ------
    DataError
        Unknown name; the message lists the known ones.
    """
    return lookup(name, METRICS, METRIC_ALIASES, "metric")


# --------------------------------------------------------------------------
# the public functions, made from the table
# --------------------------------------------------------------------------


_ZERO_DIVISION_DOC = """\
zero_division : "warn" or float, default="warn"
    Value where the metric is undefined; ``"warn"`` returns nan with an
    :class:`UndefinedMetricWarning`."""


def _doc(metric: Metric, inputs: str) -> str:
    return "\n".join([
        f"{metric.title[:1].upper()}{metric.title[1:]} ``{metric.formula}``.", "",
        *([metric.note, ""] if metric.note else []),
        f"Undefined (``zero_division``) {metric.undefined}.", "",
        "Parameters", "----------", inputs, "pos_label : scalar, default=1", _ZERO_DIVISION_DOC, "",
        "Returns", "-------", "float",
    ])


def _label_metric(metric: Metric) -> Callable[..., float]:
    def fn(y_true: Any, y_pred: Any, *, pos_label: Any = 1, zero_division: Any = "warn") -> float:
        return float(metric.from_counts(confusion_counts(y_true, y_pred, pos_label=pos_label), zero_division))

    fn.__name__ = fn.__qualname__ = metric.name
    fn.__doc__ = _doc(metric, "y_true, y_pred : array-like of shape (n_samples,)\n"
                              "    True and predicted labels, or boolean predictions (True = positive); "
                              "see :func:`confusion_counts`.")
    return fn


def _score_metric(metric: Metric) -> Callable[..., float]:
    def fn(y_true: Any, y_score: Any, *, pos_label: Any = 1, zero_division: Any = "warn") -> float:
        return metric(y_true, y_score, pos_label=pos_label, zero_division=zero_division)

    fn.__name__ = fn.__qualname__ = metric.name
    fn.__doc__ = _doc(metric, "y_true : array-like of shape (n_samples,)\n"
                              "y_score : array-like of shape (n_samples,)\n"
                              "    Scores, higher meaning more likely ``pos_label``.")
    return fn


accuracy = _label_metric(METRICS["accuracy"])
balanced_accuracy = _label_metric(METRICS["balanced_accuracy"])
precision = _label_metric(METRICS["precision"])
npv = _label_metric(METRICS["npv"])
sensitivity = _label_metric(METRICS["sensitivity"])
specificity = _label_metric(METRICS["specificity"])
f1 = _label_metric(METRICS["f1"])
mcc = _label_metric(METRICS["mcc"])
youden_index = _label_metric(METRICS["youden_index"])
roc_auc = _score_metric(METRICS["roc_auc"])
pr_auc = _score_metric(METRICS["pr_auc"])


def roc_curve(y_true: Any, y_score: Any, *, pos_label: Any = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical ROC curve, one point per distinct threshold (positive iff ``score >= t``).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_score : array-like of shape (n_samples,)
    pos_label : scalar, default=1

    Returns
    -------
    fpr, tpr, thresholds : ndarray
        From ``(0, 0)`` (threshold ``+inf``) to ``(1, 1)``; the trapezoidal
        area under the points is :func:`roc_auc`.
    """
    t, s = truth_and_scores(y_true, y_score, pos_label)
    return roc_points(value_counts(t, s))


def binary_report(y_true: Any, y_score: Any, threshold: float = 0.5, pos_label: Any = 1) -> dict:
    """Every metric of :data:`METRICS` at one threshold, with the counts.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_score : array-like of shape (n_samples,)
        Scores; predicted positive iff ``score >= threshold``.
    threshold : float, default=0.5
    pos_label : scalar, default=1

    Returns
    -------
    dict
        ``n``, ``n_pos``, ``n_neg``, ``threshold``, ``tp``, ``fp``, ``tn``,
        ``fn``, then one float per entry of :data:`METRICS` (undefined ones are
        nan, each with an :class:`UndefinedMetricWarning`).
    """
    t, s = truth_and_scores(y_true, y_score, pos_label)
    c = _confusion(t, s >= threshold)
    vc = value_counts(t, s)
    out: dict[str, Any] = {
        "n": c.n, "n_pos": c.n_pos, "n_neg": c.n_neg, "threshold": float(threshold),
        "tp": c.tp, "fp": c.fp, "tn": c.tn, "fn": c.fn,
    }
    for name, metric in METRICS.items():
        out[name] = float(metric.from_counts((vc.pos, vc.neg) if metric.threshold_free else c))
    return out
