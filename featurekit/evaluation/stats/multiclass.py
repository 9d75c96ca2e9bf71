"""Multi-class metrics of class probabilities, and their intervals by the bootstrap over the independent unit.

Inputs
------
``y_true`` holds class codes ``0..K-1`` (the position of each class in
``classes``), ``proba`` one row of ``K`` class probabilities per prediction
(rows sum to 1, e.g. ``predict_proba``). The predicted class is the argmax of
the row (the first of tied maxima, as :func:`numpy.argmax` and scikit-learn's
``predict``).

Metrics (:data:`MULTICLASS_METRICS`, then the per-class
:data:`PER_CLASS_METRICS` keyed ``"metric[class]"``)
-------------------------------------------------------------------------
* ``accuracy``, ``balanced_accuracy`` (the mean sensitivity over the classes
  present), ``precision`` / ``recall`` / ``f1`` averaged over the classes
  (``_macro``: plain mean; ``_weighted``: weighted by each class's number of
  samples), all from the ``K × K`` confusion matrix (rows = true class).
* ``kappa``: Cohen's κ, quadratic-weighted (weight ``(i − j)²`` between
  codes ``i`` and ``j``) when the classes are ordered (BI-RADS), unweighted
  otherwise.
* ``log_loss``: the mean of ``−log p(true class)``, probabilities clipped to
  ``[eps, 1 − eps]`` (float64 ``eps``, as scikit-learn).
* ``roc_auc``: the macro one-vs-rest AUC, the mean over classes ``c`` of the
  binary AUC of ``proba[:, c]`` for ``y == c`` against the rest (the ranking
  kernel of :mod:`featurekit.evaluation.stats.ranking`).
* per class: ``roc_auc[c]``, ``sensitivity[c]`` (recall of ``c``),
  ``specificity[c]`` (of ``c`` against the rest).

Undefined values are nan, never a substitute number: a class with no sample
has no AUC and no sensitivity, a class never predicted no precision, a
class that is every sample no specificity. An average over classes (macro
AUC, macro and weighted precision / recall / F1, balanced accuracy) is taken
over the classes where its terms are defined -- scikit-learn's
``zero_division=np.nan`` rule; for the AUC scikit-learn raises instead --
and is nan only when no class has one. :func:`multiclass_metrics` says so
with an :class:`~featurekit.evaluation.stats.labels.UndefinedMetricWarning`.

Weights
-------
Every metric is a function of sums of per-prediction weights: the weighted
confusion matrix, the summed weighted log loss, and the weighted counts per
score value of each one-vs-rest AUC. So a metric with ``sample_weight`` is
scikit-learn's with ``sample_weight``, and a bootstrap replicate -- weights
= how many times each unit was drawn -- is the metric of the resampled
predictions.

Intervals
---------
By the rules of :mod:`featurekit.evaluation.stats.unit_bootstrap`: the unit
resampled is the group when there are groups, else the prediction, drawn with
all its predictions and repeats; the estimate and each replicate are the
metric per repeat, then the mean over repeats (over the repeats where it is
defined); the interval is BCa with the leave-one-unit-out jackknife, the
percentile interval where BCa is undefined, and ``method`` says which.
The draws are those of the binary bootstrap (:func:`unit_weights`) for the
same seed and number of units.

Speed: the confusion matrices and log-loss sums of all replicates, repeats
and models are one product of the ``(B, U)`` weights with a per-unit table of
``K·K + 1`` counts per repeat and model; each one-vs-rest AUC is the binary
bootstrap's weighted AUC (:class:`~featurekit.evaluation.stats.unit_bootstrap.UnitData`,
one per class and repeat). Replicates are evaluated in chunks of bounded size.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterator, Sequence

import numpy as np

from featurekit.errors import DataError
from featurekit.evaluation.stats.bootstrap import BootstrapResult, PairedBootstrapResult, check_n_boot
from featurekit.evaluation.stats.intervals import check_confidence
from featurekit.evaluation.stats.labels import UndefinedMetricWarning
from featurekit.evaluation.stats.metrics import METRICS
from featurekit.evaluation.stats.unit_bootstrap import (
    UnitData,
    _chunk,
    bootstrap_result,
    check_units,
    jackknife_weights,
    paired_bootstrap_result,
    unit_weights,
)

__all__ = [
    "MULTICLASS_METRICS",
    "PER_CLASS_METRICS",
    "multiclass_metric_names",
    "confusion_matrix",
    "multiclass_metrics",
    "MulticlassUnitData",
    "multiclass_unit_bootstrap",
    "multiclass_paired_bootstrap",
]

#: the scalar metrics, in display order
MULTICLASS_METRICS: tuple[str, ...] = (
    "roc_auc", "accuracy", "balanced_accuracy", "f1_macro", "precision_macro", "recall_macro",
    "f1_weighted", "precision_weighted", "recall_weighted", "kappa", "log_loss",
)
#: the per-class metrics, keyed ``f"{metric}[{class_name}]"``
PER_CLASS_METRICS: tuple[str, ...] = ("roc_auc", "sensitivity", "specificity")

_AUC = [("roc_auc", METRICS["roc_auc"])]
#: rows of class probabilities may miss 1 by this much (float32 softmax outputs)
_SUM_TOLERANCE = 1e-5


def multiclass_metric_names(classes: Sequence[Any]) -> list[str]:
    """Every metric key for these classes: :data:`MULTICLASS_METRICS`, then per metric of
    :data:`PER_CLASS_METRICS` one key per class, ``"roc_auc[benign]"``."""
    return list(MULTICLASS_METRICS) + [f"{m}[{c}]" for m in PER_CLASS_METRICS for c in classes]


# --------------------------------------------------------------------------
# checking the inputs
# --------------------------------------------------------------------------


def _check_classes(classes: Any) -> list[str]:
    names = [str(c) for c in np.asarray(classes, dtype=object).reshape(-1)]
    if len(names) < 2:
        raise DataError(f"multi-class metrics need at least 2 classes, got {names}")
    if len(set(names)) != len(names):
        raise DataError(f"class names must be unique, got {names}")
    return names


def _check_codes(y_true: Any, n_classes: int) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1 or y.size == 0:
        raise DataError(f"y_true must be a non-empty 1-D array of class codes, got shape {y.shape}")
    if y.dtype.kind not in "iu":
        if y.dtype.kind != "f" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DataError(f"y_true must hold integer class codes 0..{n_classes - 1}, got dtype {y.dtype}")
    y = y.astype(np.int64)
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        raise DataError(f"y_true holds codes outside 0..{n_classes - 1} (one per class): "
                        f"{np.unique(y[bad])[:6].tolist()}")
    return y


def _check_proba(proba: Any, n: int, n_classes: int, name: str) -> np.ndarray:
    try:
        p = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric: {exc}") from exc
    if p.shape != (n, n_classes):
        raise DataError(f"{name} must have one row per prediction and one column per class, "
                        f"({n}, {n_classes}), got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise DataError(f"{name} contains NaN or infinite values")
    if p.min() < 0 or p.max() > 1 + _SUM_TOLERANCE or np.max(np.abs(p.sum(axis=1) - 1)) > _SUM_TOLERANCE:
        raise DataError(f"{name} must hold class probabilities: values in [0, 1], each row summing to 1 "
                        "(pass predict_proba, not decision scores)")
    return p


# --------------------------------------------------------------------------
# metrics of weighted confusion matrices
# --------------------------------------------------------------------------


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, nan where ``den == 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan slices give nan
        return np.nanmean(a, axis=axis)


def _weighted(values: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Support-weighted mean over the last axis, over the defined (finite) values."""
    ok = np.isfinite(values)
    w = np.where(ok, support, 0.0)
    return _divide(np.sum(np.where(ok, values, 0.0) * w, axis=-1), np.sum(w, axis=-1))


def _kappa_weights(n_classes: int, ordered: bool) -> np.ndarray:
    i = np.arange(n_classes, dtype=np.float64)
    return (i[:, None] - i[None, :]) ** 2 if ordered else 1.0 - np.eye(n_classes)


def _confusion_metrics(conf: np.ndarray, loss: np.ndarray, ordered: bool) -> dict[str, np.ndarray]:
    """The confusion-matrix metrics and the log loss of weighted counts.

    ``conf`` has shape (..., K, K) (rows = true class), ``loss`` (...) the
    weighted sum of ``−log p(true class)``. Scalars come back with shape (...),
    the per-class ``sensitivity`` and ``specificity`` with shape (..., K).
    """
    k = conf.shape[-1]
    total = conf.sum(axis=(-2, -1))
    diag = np.diagonal(conf, axis1=-2, axis2=-1)
    support = conf.sum(axis=-1)  # true counts
    predicted = conf.sum(axis=-2)
    recall = _divide(diag, support)
    precision = _divide(diag, predicted)
    f1 = _divide(2.0 * diag, support + predicted)
    weights = _kappa_weights(k, ordered)
    expected = support[..., :, None] * predicted[..., None, :]
    kappa = 1.0 - _divide(np.einsum("...ij,ij->...", conf, weights),
                          _divide(np.einsum("...ij,ij->...", expected, weights), total))
    return {
        "accuracy": _divide(diag.sum(axis=-1), total),
        "balanced_accuracy": _nanmean(recall, -1),
        "f1_macro": _nanmean(f1, -1),
        "precision_macro": _nanmean(precision, -1),
        "recall_macro": _nanmean(recall, -1),
        "f1_weighted": _weighted(f1, support),
        "precision_weighted": _weighted(precision, support),
        "recall_weighted": _weighted(recall, support),
        "kappa": kappa,
        "log_loss": _divide(loss, total),
        "sensitivity": recall,
        "specificity": _divide(total[..., None] - support - predicted + diag, total[..., None] - support),
    }


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int, sample_weight: Any = None) -> np.ndarray:
    """The ``(K, K)`` confusion matrix of class codes: entry ``[i, j]`` = (weighted) number of
    predictions of true class ``i`` predicted as ``j``.

    scikit-learn's ``confusion_matrix(y_true, y_pred, labels=range(K), sample_weight=...)``.
    """
    y = _check_codes(y_true, n_classes)
    p = _check_codes(y_pred, n_classes)
    if p.shape != y.shape:
        raise DataError(f"y_true has {y.size} predictions but y_pred has {p.size}")
    w = None if sample_weight is None else _check_sample_weight(sample_weight, y.size)
    cells = np.bincount(y * n_classes + p, weights=w, minlength=n_classes * n_classes)
    return cells.reshape(n_classes, n_classes)


def _check_sample_weight(sample_weight: Any, n: int) -> np.ndarray:
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise DataError(f"sample_weight must have one entry per prediction ({n}), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise DataError("sample_weight must be finite and non-negative")
    if not w.sum() > 0:
        raise DataError("sample_weight sums to 0: no prediction counts")
    return w


# --------------------------------------------------------------------------
# the engine: k models' probabilities of the same predictions, on units
# --------------------------------------------------------------------------


class MulticlassUnitData:
    """The class probabilities of ``k`` models of the same predictions, mapped onto resampling units.

    The multi-class counterpart of :class:`~featurekit.evaluation.stats.unit_bootstrap.UnitData`.

    Parameters
    ----------
    y : ndarray of int, shape (n_predictions,)
        Checked class codes ``0..K-1``.
    proba : ndarray of float, shape (k, n_predictions, K)
        Checked probabilities of each model (all predict the same samples: paired).
    units : ndarray of int, shape (n_predictions,)
        Unit code (``0..n_units-1``) of each prediction.
    n_units : int
    repeats : ndarray, shape (n_predictions,), optional
        The repeat of each prediction (default: one repeat).
    ordered : bool
        Whether κ is quadratic-weighted.
    auc : bool, default=True
        Whether to compute the one-vs-rest AUCs (the costly part); without them
        ``roc_auc`` and ``roc_auc[c]`` are nan.
    classes : sequence of str, optional
        The class names in the per-class keys (default ``"0".."K-1"``).

    :meth:`values` gives every key of :func:`multiclass_metric_names` with
    shape (k, n_weight_rows).
    """

    def __init__(self, y: np.ndarray, proba: np.ndarray, units: np.ndarray, n_units: int,
                 repeats: np.ndarray | None = None, *, ordered: bool = False, auc: bool = True,
                 classes: Sequence[str] | None = None):
        self.k, n, self.n_classes = proba.shape
        self.n_units, self.ordered = int(n_units), bool(ordered)
        self.classes = [str(c) for c in range(self.n_classes)] if classes is None else list(classes)
        reps = np.zeros(n, dtype=np.int64) if repeats is None else np.unique(repeats, return_inverse=True)[1]
        reps = reps.reshape(-1)
        self.n_repeats = int(reps.max()) + 1
        kk = self.n_classes * self.n_classes
        pred = np.argmax(proba, axis=2)  # (k, n)
        p_true = np.take_along_axis(proba, y[None, :, None], axis=2)[..., 0]
        eps = np.finfo(np.float64).eps
        loss = -np.log(np.clip(p_true, eps, 1 - eps))  # (k, n)
        # per unit, then per repeat and model, K·K + 1 columns: the confusion cells, the summed log loss
        base = (reps[None, :] * self.k + np.arange(self.k)[:, None]) * (kk + 1)  # (k, n)
        width = self.n_repeats * self.k * (kk + 1)
        rows = np.broadcast_to(units, base.shape)
        self._table = np.zeros((self.n_units, width))
        np.add.at(self._table, (rows, base + y[None, :] * self.n_classes + pred), 1.0)
        np.add.at(self._table, (rows, base + kk), loss)
        # per repeat and class: the binary bootstrap's one-vs-rest AUC of that class's column
        self._auc: list[list[UnitData]] = []
        if auc:
            for r in range(self.n_repeats):
                sel = reps == r
                self._auc.append([UnitData(units[sel], self.n_units, y[sel] == c, proba[:, sel, c])
                                  for c in range(self.n_classes)])
        self._width = max(self.n_units, width, self.k * int(np.bincount(reps).max()))

    def values(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Every metric under each row of ``weights`` (B, n_units): the mean over repeats, shape (k, B)."""
        b, r, k, kk = weights.shape[0], self.n_repeats, self.k, self.n_classes ** 2
        counts = (weights @ self._table).reshape(b, r, k, kk + 1)
        conf = counts[..., :kk].reshape(b, r, k, self.n_classes, self.n_classes)
        per = _confusion_metrics(conf, counts[..., kk], self.ordered)  # (B, R, k[, K])
        if self._auc:
            aucs = np.stack([np.stack([d.metrics(weights, _AUC)["roc_auc"] for d in rep])
                             for rep in self._auc])  # (R, K, k, B)
            per["roc_auc"] = _nanmean(aucs, 1).transpose(2, 0, 1)  # (B, R, k)
            per["auc_per_class"] = aucs.transpose(3, 0, 2, 1)  # (B, R, k, K)
        else:
            per["roc_auc"] = np.full((b, r, k), np.nan)
            per["auc_per_class"] = np.full((b, r, k, self.n_classes), np.nan)
        mean = {name: _nanmean(v, 1) for name, v in per.items()}  # over repeats: (B, k[, K])
        out = {name: mean[name].T for name in MULTICLASS_METRICS}
        for metric, key in (("roc_auc", "auc_per_class"), ("sensitivity", "sensitivity"),
                            ("specificity", "specificity")):
            for c, name in enumerate(self.classes):
                out[f"{metric}[{name}]"] = mean[key][..., c].T
        return out

    def evaluate(self, blocks: Iterator[np.ndarray]) -> dict[str, np.ndarray]:
        """:meth:`values` under blocks of weight rows, concatenated: (k, total rows) per metric."""
        parts: dict[str, list[np.ndarray]] = {}
        for block in blocks:
            step = _chunk(block.shape[0], self._width)
            for start in range(0, block.shape[0], step):
                for name, v in self.values(block[start:start + step]).items():
                    parts.setdefault(name, []).append(v)
        return {name: np.concatenate(v, axis=1) for name, v in parts.items()}

    def estimates(self) -> dict[str, np.ndarray]:
        """The metrics on the data as they are (every unit weight 1), shape (k,)."""
        return {name: v[:, 0] for name, v in self.values(np.ones((1, self.n_units))).items()}

    def replicates(self, n_boot: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Bootstrap replicates, shape (k, n_boot) per metric; every model sees the same unit draws."""
        return self.evaluate(unit_weights(self.n_units, n_boot, rng))

    def jackknife(self) -> dict[str, np.ndarray]:
        """Leave-one-unit-out values, shape (k, n_units) per metric."""
        return self.evaluate(jackknife_weights(self.n_units))


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------


def _warn_undefined(values: dict[str, float], conf: np.ndarray, classes: list[str]) -> None:
    """One :class:`UndefinedMetricWarning` naming what is undefined and what the averages leave out."""
    support, predicted = conf.sum(axis=1), conf.sum(axis=0)
    notes = []
    absent = [c for c, s in zip(classes, support) if s == 0]
    if absent:
        notes.append(f"no sample of class {absent}: its AUC, sensitivity and recall are undefined "
                     "and left out of the averages over classes")
    never = [c for c, s in zip(classes, predicted) if s == 0]
    if never:
        notes.append(f"class {never} never predicted: its precision is undefined and left out of "
                     "precision_macro and precision_weighted")
    nan = [k for k, v in values.items() if not np.isfinite(v)]
    if nan:
        notes.append(f"undefined (nan): {nan}")
    if notes:
        warnings.warn("; ".join(notes), UndefinedMetricWarning, stacklevel=3)


def multiclass_metrics(y_true: Any, proba: Any, classes: Sequence[Any], *, ordered: bool = False,
                       sample_weight: Any = None) -> dict[str, float]:
    """Every multi-class metric of class probabilities (module docstring).

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
        Class codes ``0..K-1``.
    proba : array-like of float, shape (n, K)
        Class probabilities; the predicted class is the argmax of each row.
    classes : sequence, length K
        The class names, in code order (used in the per-class keys).
    ordered : bool, default=False
        The classes are ordered (code order): κ is quadratic-weighted.
    sample_weight : array-like of shape (n,), optional
        Non-negative weights, as scikit-learn's ``sample_weight``.

    Returns
    -------
    dict of str to float
        The keys of :func:`multiclass_metric_names` in that order. Undefined
        values are nan, with an :class:`UndefinedMetricWarning`; averages over
        classes are over the classes where they are defined (scikit-learn's
        ``zero_division=np.nan``; for the macro AUC scikit-learn raises).
    """
    names = _check_classes(classes)
    y = _check_codes(y_true, len(names))
    p = _check_proba(proba, y.size, len(names), "proba")
    w = np.ones(y.size) if sample_weight is None else _check_sample_weight(sample_weight, y.size)
    data = MulticlassUnitData(y, p[None], np.arange(y.size), y.size, ordered=ordered, classes=names)
    values = {name: float(v[0, 0]) for name, v in data.values(w[None, :]).items()}
    _warn_undefined(values, confusion_matrix(y, np.argmax(p, axis=1), len(names), w), names)
    return values


def _select(metrics: Sequence[str] | str | None, classes: list[str]) -> list[str]:
    known = multiclass_metric_names(classes)
    if metrics is None:
        return known
    wanted = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in wanted if m not in known]
    if unknown:
        raise DataError(f"unknown multi-class metric(s) {unknown}; known: {known}")
    if len(set(wanted)) != len(wanted):
        raise DataError(f"metric names must be unique, got {wanted}")
    return wanted


def _prepare(y_true: Any, probas: Sequence[tuple[str, Any]], names: list[str], groups: Any, repeats: Any,
             ordered: bool, metrics: list[str]) -> MulticlassUnitData:
    y = _check_codes(y_true, len(names))
    p = np.stack([_check_proba(a, y.size, len(names), what) for what, a in probas])
    units, n_units, repeats = check_units(groups, repeats, y.size)
    auc = any(m.startswith("roc_auc") for m in metrics)
    return MulticlassUnitData(y, p, units, n_units, repeats, ordered=ordered, auc=auc, classes=names)


def multiclass_unit_bootstrap(y_true: Any, proba: Any, classes: Sequence[Any],
                              metrics: Sequence[str] | None = None, *, groups: Any = None,
                              repeats: Any = None, ordered: bool = False, n_boot: int = 2000,
                              confidence: float = 0.95, random_state: int | np.random.Generator | None = 0,
                              return_distribution: bool = False) -> dict[str, BootstrapResult]:
    """BCa intervals of multi-class metrics by a bootstrap over the independent unit.

    Parameters
    ----------
    y_true, proba, classes, ordered
        As in :func:`multiclass_metrics`.
    metrics : sequence of str, optional
        Keys of :func:`multiclass_metric_names`; default: all of them.
    groups : array-like of shape (n,), optional
        The unit of each prediction (patient, duplicate group, or the sample
        id when a sample has one prediction per repeat); a unit's predictions
        are resampled together. Default: every prediction is a unit.
    repeats : array-like of shape (n,), optional
        The repeat of each prediction: metrics are computed per repeat and
        averaged. Default: one repeat.
    n_boot, confidence, random_state, return_distribution
        As in :func:`featurekit.evaluation.stats.unit_bootstrap.unit_bootstrap`.

    Returns
    -------
    dict of str to BootstrapResult
        In the order of ``metrics``; ``method`` is ``"bca"``, or
        ``"percentile"`` where BCa is undefined.
    """
    check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    names = _check_classes(classes)
    wanted = _select(metrics, names)
    data = _prepare(y_true, [("proba", proba)], names, groups, repeats, ordered, wanted)
    est = data.estimates()
    reps = data.replicates(n_boot, np.random.default_rng(random_state))
    jack = data.jackknife()
    return {name: bootstrap_result(name, est[name][0], reps[name][0], jack[name][0], confidence,
                                   return_distribution) for name in wanted}


def multiclass_paired_bootstrap(y_true: Any, proba_a: Any, proba_b: Any, classes: Sequence[Any],
                                metric: str = "roc_auc", *, groups: Any = None, repeats: Any = None,
                                ordered: bool = False, n_boot: int = 2000, confidence: float = 0.95,
                                random_state: int | np.random.Generator | None = 0,
                                return_distribution: bool = False) -> PairedBootstrapResult:
    """BCa interval of ``metric(a) − metric(b)`` by a paired bootstrap over the independent unit.

    Both models are evaluated on the same unit draws and jackknife, and the
    result reads as that of the binary
    :func:`~featurekit.evaluation.stats.unit_bootstrap.unit_bootstrap_paired`
    (``p_value``: the bootstrap-standard-error p-value of ``delta = 0``).
    Parameters as in :func:`multiclass_unit_bootstrap`; ``metric`` is one key.
    """
    check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    names = _check_classes(classes)
    (name,) = _select(metric, names)
    data = _prepare(y_true, [("proba_a", proba_a), ("proba_b", proba_b)], names, groups, repeats,
                    ordered, [name])
    return paired_bootstrap_result(name, data.estimates()[name],
                                   data.replicates(n_boot, np.random.default_rng(random_state))[name],
                                   data.jackknife()[name], confidence, return_distribution)
