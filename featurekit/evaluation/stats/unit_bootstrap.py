"""Bootstrap over the independent unit: patients (or duplicate groups) when grouped, samples otherwise.

Why
---
An interval covers its target only if the resampling copies how the data
were drawn. Images of one patient (or near-duplicate images) are not
independent, and a sample predicted once per repeat of a repeated CV is one
sample, not ``R``. So the unit resampled here is the **group** when there are
groups and the **sample** otherwise, and a unit is drawn together with all
its predictions (all its images, all its repeats). The class counts are not
held fixed: they vary from replicate to replicate as they would in a new
sample of patients, which is part of the uncertainty of accuracy, F1 or a
pooled AUC (a stratified bootstrap leaves it out and is too narrow).

Procedure (per replicate ``b = 1..B``)
--------------------------------------
Draw ``U`` units with replacement among the ``U`` units, i.e. a weight
``w_b(u)`` = the number of times unit ``u`` was drawn. In every repeat ``r``
the metric is evaluated on the predictions of that repeat, each weighted by
its unit's ``w_b(u)`` (confusion counts and per-score-value counts are sums
of weights, so this is exactly the metric on the resampled predictions), and
the replicate value is the mean over repeats -- the same estimator as the
point estimate (the metric of the pooled out-of-fold predictions of each
repeat, averaged over repeats). Repeats that hold one class only in the data
are left out of both.

The interval is the BCa interval (:func:`~featurekit.evaluation.stats.intervals.bca_interval`,
Efron 1987) from the replicates and the leave-one-unit-out jackknife; where
BCa is undefined (the metric is undefined on some resamples, or the
replicates are degenerate) the percentile interval of the finite replicates.

What it does not cover: the variability of the training sets (the models
are fixed). For comparisons across training sets use the corrected resampled
t-test (:func:`~featurekit.evaluation.stats.intervals.corrected_resampled_ttest`).

Speed: the replicate confusion counts of all repeats are one product of the
``(B, U)`` weights with the per-unit counts; the replicate counts per score
value are the weights gathered in score order (a weighted count where scores
tie), so all replicates of all metrics cost ``O(B·n_predictions)``, evaluated
by the metrics' own count formulas
(:meth:`~featurekit.evaluation.stats.metrics.Metric.from_counts`). ``k`` models of
the same samples (:class:`UnitData` with 2-D scores) are evaluated together,
on the same draws.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterator, Sequence

import numpy as np

from featurekit.errors import DataError
from featurekit.evaluation.stats.bootstrap import BootstrapResult, PairedBootstrapResult, check_n_boot
from featurekit.evaluation.stats.intervals import bca_interval, bootstrap_p_value, check_confidence
from featurekit.evaluation.stats.labels import UndefinedMetricWarning, binarize_labels, check_scores
from featurekit.evaluation.stats.metrics import Metric, get_metric

__all__ = [
    "UnitData",
    "unit_codes",
    "check_units",
    "unit_weights",
    "jackknife_weights",
    "unit_bootstrap",
    "unit_bootstrap_paired",
    "bootstrap_result",
    "paired_bootstrap_result",
]

#: elements of one (replicates × units) or (replicates × score values) block
_CHUNK_ELEMENTS = 2_000_000


def unit_codes(units: Any) -> tuple[np.ndarray, int]:
    """Integer codes ``0..U-1`` of the unit labels (groups or sample ids) and ``U``."""
    u = np.asarray([str(v) for v in np.asarray(units, dtype=object).reshape(-1)], dtype=object)
    _, codes = np.unique(u, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    return codes, int(codes.max()) + 1 if codes.size else 0


def _chunk(rows: int, width: int) -> int:
    return int(max(1, min(rows, _CHUNK_ELEMENTS // max(width, 1))))


def unit_weights(n_units: int, n_boot: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Bootstrap weights in blocks: ``w[b, u]`` = times unit ``u`` is drawn in replicate ``b``.

    Each block draws ``rng.integers(0, n_units, (c, n_units))`` and counts. The
    blocks depend on ``n_units`` and ``n_boot`` only, so a seed gives the same
    draws whatever is evaluated on them; in one block (``n_boot · n_units``
    within the chunk size) they are the resamples :func:`scipy.stats.bootstrap`
    draws with the same generator.
    """
    chunk = _chunk(n_boot, n_units)
    for start in range(0, n_boot, chunk):
        c = min(chunk, n_boot - start)
        idx = rng.integers(0, n_units, size=(c, n_units))
        offs = (np.arange(c, dtype=np.int64) * n_units)[:, None]
        yield np.bincount((idx + offs).ravel(), minlength=c * n_units).reshape(c, n_units).astype(np.float64)


def jackknife_weights(n_units: int) -> Iterator[np.ndarray]:
    """Leave-one-unit-out weights in blocks: row ``i`` is all ones but unit ``i``."""
    chunk = _chunk(n_units, n_units)
    for start in range(0, n_units, chunk):
        c = min(chunk, n_units - start)
        w = np.ones((c, n_units))
        w[np.arange(c), start + np.arange(c)] = 0.0
        yield w


def _dense_ranks(scores: np.ndarray) -> np.ndarray:
    """Per row, the code of each score among the row's distinct values (ascending, ``0..``)."""
    order = np.argsort(scores, axis=-1, kind="stable")
    srt = np.take_along_axis(scores, order, axis=-1)
    new = np.ones(srt.shape, dtype=np.int64)
    new[..., 1:] = srt[..., 1:] != srt[..., :-1]
    codes = np.empty(srt.shape, dtype=np.int64)
    np.put_along_axis(codes, order, np.cumsum(new, axis=-1) - 1, axis=-1)
    return codes


class _Repeat:
    """The predictions of one repeat (``k`` score vectors of the same samples) as per-unit counts."""

    def __init__(self, units: np.ndarray, n_units: int, is_pos: np.ndarray, scores: np.ndarray):
        self.units, self.is_pos, self.scores, self.n_units = units, is_pos, scores, n_units
        self._ranks: tuple[np.ndarray, np.ndarray, bool] | None = None  # see _ranked

    def per_unit_confusion(self, threshold: float) -> np.ndarray:
        """Per unit and model, the counts ``(tp, fp, tn, fn)`` of its predictions: shape (n_units, k, 4)."""
        k, u = self.scores.shape[0], self.n_units
        pred = self.scores >= threshold
        pos = np.broadcast_to(self.is_pos, pred.shape)
        idx = self.units[None, :] * k + np.arange(k)[:, None]
        cells = (pos & pred, ~pos & pred, ~pos & ~pred, pos & ~pred)
        return np.stack([np.bincount(idx[c], minlength=u * k).reshape(u, k) for c in cells], axis=-1)

    def value_counts(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted counts of positives / negatives per score value, shape (B, k, n): values
        ascending, one slot per prediction of the repeat (slots of tied values stay empty)."""
        ranks, order, distinct = self._ranked()
        k, n = self.scores.shape
        b = weights.shape[0]
        if distinct:
            w = weights[:, self.units[order]]  # (B, k, n), predictions in score order
            pos = self.is_pos[order]
            return w * pos, w * ~pos
        w = weights[:, self.units]
        out = []
        for sel in (self.is_pos, ~self.is_pos):
            codes = ranks[:, sel]  # (k, n_sel)
            idx = (np.arange(b * k, dtype=np.int64).reshape(b, k, 1) * n + codes[None, :, :]).ravel()
            wts = np.broadcast_to(w[:, None, sel], (b, k, codes.shape[1])).ravel()
            out.append(np.bincount(idx, weights=wts, minlength=b * k * n).reshape(b, k, n))
        return out[0], out[1]

    def _ranked(self) -> tuple[np.ndarray, np.ndarray, bool]:
        """The scores' dense ranks per model, their stable sort order, and whether all scores of every
        model are distinct (then slot v holds the prediction of rank v); computed once."""
        if self._ranks is None:
            ranks = _dense_ranks(self.scores)
            order = np.argsort(ranks, axis=1, kind="stable")
            self._ranks = ranks, order, bool(np.all(ranks.max(axis=1) == ranks.shape[1] - 1))
        return self._ranks


class UnitData:
    """The predictions of ``k`` models of the same samples, mapped onto resampling units.

    Parameters
    ----------
    units : ndarray of int, shape (n_predictions,)
        Unit code (``0..n_units-1``) of each prediction (:func:`unit_codes`).
    n_units : int
    is_pos : ndarray of bool, shape (n_predictions,)
    scores : ndarray of float, shape (n_predictions,) or (k, n_predictions)
        One score vector per model (all predict the same samples: paired).
    repeats : ndarray, shape (n_predictions,), optional
        The repeat of each prediction (default: one repeat). Repeats holding
        one class only are left out.

    All metric values have shape (k, n_weight_rows) (``k = 1`` for 1-D ``scores``).
    """

    def __init__(self, units: np.ndarray, n_units: int, is_pos: np.ndarray, scores: np.ndarray,
                 repeats: np.ndarray | None = None):
        self.n_units = int(n_units)
        scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
        self.k = scores.shape[0]
        reps = np.zeros(units.shape[0], dtype=np.int64) if repeats is None else np.asarray(repeats)
        self.repeats: list[_Repeat] = []
        for r in np.unique(reps):
            sel = reps == r
            if 0 < np.count_nonzero(is_pos[sel]) < np.count_nonzero(sel):
                self.repeats.append(_Repeat(units[sel], self.n_units, is_pos[sel], scores[:, sel]))
        self._confusion: dict[float, np.ndarray] = {}

    def confusion(self, weights: np.ndarray, threshold: float) -> list[tuple]:
        """Per repeat, the weighted ``(tp, fp, tn, fn)``, each of shape (k, B): one product for all."""
        if threshold not in self._confusion:
            per_unit = np.stack([r.per_unit_confusion(threshold) for r in self.repeats], axis=1)
            self._confusion[threshold] = per_unit.reshape(self.n_units, -1).astype(np.float64)
        counts = (weights @ self._confusion[threshold]).reshape(weights.shape[0], len(self.repeats), self.k, 4)
        counts = counts.transpose(1, 2, 0, 3)  # (R, k, B, 4)
        return [tuple(c[..., j] for j in range(4)) for c in counts]

    def _width(self) -> int:
        """Elements per weight row in the largest intermediate array (for chunking)."""
        return max([self.n_units] + [self.k * r.units.size for r in self.repeats])

    def metrics(self, weights: np.ndarray, metrics: Sequence[tuple[str, Metric]],
                threshold: float = 0.5) -> dict[str, np.ndarray]:
        """Per metric, its value under each row of ``weights`` (B, n_units): the mean over repeats, (k, B)."""
        per: dict[str, list[np.ndarray]] = {name: [] for name, _ in metrics}
        shape = (self.k, weights.shape[0])
        confusion: list[tuple] = []  # per repeat, computed when a metric needs a threshold
        if self.repeats and any(not m.threshold_free for _, m in metrics):
            confusion = self.confusion(weights, threshold)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            for i, rep in enumerate(self.repeats):
                vals = None
                for name, metric in metrics:
                    if metric.threshold_free:
                        vals = rep.value_counts(weights) if vals is None else vals
                        per[name].append(metric.from_counts(vals, np.nan).T)
                    else:
                        per[name].append(metric.from_counts(confusion[i], np.nan))
        out = {}
        for name, values in per.items():
            if not values:
                out[name] = np.full(shape, np.nan)
                continue
            stack = np.stack([np.broadcast_to(np.asarray(v, dtype=np.float64), shape) for v in values])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-nan replicate columns give nan
                out[name] = np.nanmean(stack, axis=0)
        return out

    def _blocks(self, weights: Iterator[np.ndarray], metrics, threshold) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {}
        for block in weights:
            step = _chunk(block.shape[0], self._width())
            for start in range(0, block.shape[0], step):
                for name, v in self.metrics(block[start:start + step], metrics, threshold).items():
                    parts.setdefault(name, []).append(v)
        return {name: np.concatenate(v, axis=1) for name, v in parts.items()}

    def estimates(self, metrics: Sequence[tuple[str, Metric]], threshold: float = 0.5) -> dict[str, np.ndarray]:
        """The metrics on the data as they are (every unit weight 1), shape (k,)."""
        res = self.metrics(np.ones((1, self.n_units)), metrics, threshold)
        return {name: v[:, 0] for name, v in res.items()}

    def replicates(self, metrics: Sequence[tuple[str, Metric]], n_boot: int, rng: np.random.Generator,
                   threshold: float = 0.5) -> dict[str, np.ndarray]:
        """Bootstrap replicates, shape (k, n_boot) per metric; every model sees the same unit draws."""
        return self._blocks(unit_weights(self.n_units, n_boot, rng), metrics, threshold)

    def jackknife(self, metrics: Sequence[tuple[str, Metric]], threshold: float = 0.5) -> dict[str, np.ndarray]:
        """Leave-one-unit-out values, shape (k, n_units) per metric."""
        return self._blocks(jackknife_weights(self.n_units), metrics, threshold)


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------


def _resolve(metrics: Sequence[str | Metric]) -> list[tuple[str, Metric]]:
    out = []
    for m in metrics:
        out.append((m.name, m) if isinstance(m, Metric) else get_metric(m))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise DataError(f"metric names must be unique, got {names}")
    return out


def check_units(groups: Any, repeats: Any, n: int) -> tuple[np.ndarray, int, Any]:
    """The unit code of each of ``n`` predictions and the number of units (:func:`unit_codes` of
    ``groups``, else one unit per prediction), after checking ``groups`` and ``repeats`` (one
    entry per prediction) and that there are at least 2 units; ``repeats`` is passed through."""
    if groups is None:
        units, n_units = np.arange(n, dtype=np.int64), n
    else:
        if np.shape(groups) != (n,):
            raise DataError(f"groups must have one entry per sample ({n}), got shape {np.shape(groups)}")
        units, n_units = unit_codes(groups)
    if repeats is not None and np.shape(repeats) != (n,):
        raise DataError(f"repeats must have one entry per sample ({n}), got shape {np.shape(repeats)}")
    if n_units < 2:
        raise DataError(f"a bootstrap over units needs at least 2 units, got {n_units}")
    return units, n_units, repeats


def _inputs(y_true: Any, score_vectors: Sequence[Any], groups: Any, repeats: Any, pos_label: Any):
    t = binarize_labels(y_true, pos_label)
    scores = [check_scores(s, t.shape[0], name) for name, s in score_vectors]
    return (t, scores, *check_units(groups, repeats, t.shape[0]))


def _interval(reps: np.ndarray, est: float, jack: np.ndarray, confidence: float, what: str):
    finite = np.isfinite(reps)
    n_valid = int(finite.sum())
    if n_valid < reps.size:
        # stacklevel: the caller of the public bootstrap function that called a *_result below
        warnings.warn(f"{what} is undefined in {reps.size - n_valid} of {reps.size} bootstrap replicates; "
                      "the interval is the percentile interval of the others", UndefinedMetricWarning,
                      stacklevel=4)
    lo, hi, is_bca = bca_interval(reps, est, jack, confidence)
    se = float(np.std(reps[finite], ddof=1)) if n_valid > 1 else float("nan")
    return float(lo), float(hi), n_valid, se, "bca" if bool(is_bca) else "percentile"


def bootstrap_result(name: str, estimate: float, replicates: np.ndarray, jackknife: np.ndarray,
                     confidence: float, return_distribution: bool = False) -> BootstrapResult:
    """One metric's interval from its estimate, bootstrap replicates (n_boot,) and jackknife values
    (n_units,): BCa, or the percentile interval of the finite replicates where BCa is undefined
    (with an :class:`UndefinedMetricWarning` when some replicates are undefined)."""
    lo, hi, n_valid, se, method = _interval(replicates, estimate, jackknife, confidence, name)
    return BootstrapResult(metric=name, estimate=float(estimate), lo=lo, hi=hi, confidence=confidence,
                           n_boot=int(replicates.size), n_valid=n_valid, std_error=se,
                           distribution=replicates if return_distribution else None, method=method)


def paired_bootstrap_result(name: str, estimates: np.ndarray, replicates: np.ndarray, jackknife: np.ndarray,
                            confidence: float, return_distribution: bool = False) -> PairedBootstrapResult:
    """The interval and p-value of ``metric(a) − metric(b)`` from both models' estimates (2,),
    replicates on the same draws (2, n_boot) and jackknife values (2, n_units), as :func:`bootstrap_result`."""
    ea, eb = (float(v) for v in estimates)
    diff = replicates[0] - replicates[1]
    lo, hi, n_valid, se, method = _interval(diff, ea - eb, jackknife[0] - jackknife[1], confidence,
                                            f"the difference of {name}")
    return PairedBootstrapResult(metric=name, estimate_a=ea, estimate_b=eb, delta=ea - eb, lo=lo, hi=hi,
                                 p_value=bootstrap_p_value(diff, ea - eb), confidence=confidence, n_boot=int(diff.size),
                                 n_valid=n_valid, std_error=se,
                                 distribution=diff if return_distribution else None, method=method)


def unit_bootstrap(y_true: Any, y_score: Any, metrics: Sequence[str | Metric] = ("roc_auc",), *,
                   groups: Any = None, repeats: Any = None, threshold: float = 0.5, pos_label: Any = 1,
                   n_boot: int = 2000, confidence: float = 0.95,
                   random_state: int | np.random.Generator | None = 0,
                   return_distribution: bool = False) -> dict[str, BootstrapResult]:
    """BCa intervals of metrics by a bootstrap over the independent unit (module docstring).

    Parameters
    ----------
    y_true : array-like of shape (n_predictions,)
    y_score : array-like of shape (n_predictions,)
        Out-of-fold scores, higher meaning more likely ``pos_label``.
    metrics : sequence of str or Metric, default=("roc_auc",)
        Names of :data:`~featurekit.evaluation.stats.metrics.METRICS` (or aliases).
    groups : array-like of shape (n_predictions,), optional
        The unit of each prediction: patient / duplicate-group ids, or the
        sample id when a sample has one prediction per repeat. Predictions of
        one unit are resampled together. Default: every prediction is a unit.
    repeats : array-like of shape (n_predictions,), optional
        The repeat of each prediction: metrics are computed per repeat and
        averaged. Default: one repeat.
    threshold, pos_label, n_boot, confidence, random_state, return_distribution
        As in :func:`featurekit.evaluation.stats.bootstrap.bootstrap_metrics`.

    Returns
    -------
    dict of str to BootstrapResult
        ``method`` is ``"bca"``, or ``"percentile"`` where BCa is undefined.
    """
    check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    t, (s,), units, n_units, repeats = _inputs(y_true, [("y_score", y_score)], groups, repeats, pos_label)
    specs = _resolve(metrics)
    data = UnitData(units, n_units, t, s, repeats)
    if not data.repeats:
        raise DataError("a bootstrap needs both classes among the predictions")
    est = {k: float(v[0]) for k, v in data.estimates(specs, threshold).items()}
    reps = {k: v[0] for k, v in data.replicates(specs, n_boot, np.random.default_rng(random_state),
                                                 threshold).items()}
    jack = {k: v[0] for k, v in data.jackknife(specs, threshold).items()}
    return {name: bootstrap_result(name, est[name], reps[name], jack[name], confidence, return_distribution)
            for name, _ in specs}


def unit_bootstrap_paired(y_true: Any, scores_a: Any, scores_b: Any, metric: str | Metric = "roc_auc", *,
                          groups: Any = None, repeats: Any = None, threshold: float = 0.5,
                          pos_label: Any = 1, n_boot: int = 2000, confidence: float = 0.95,
                          random_state: int | np.random.Generator | None = 0,
                          return_distribution: bool = False) -> PairedBootstrapResult:
    """BCa interval of ``metric(a) − metric(b)`` by a paired bootstrap over the independent unit.

    Every replicate draws the units once and evaluates both score vectors on
    them, so the correlation of the two models is kept; the jackknife
    likewise. Parameters as in :func:`unit_bootstrap`.

    Returns
    -------
    PairedBootstrapResult
        ``p_value`` is the bootstrap-standard-error p-value of ``H0: delta = 0``
        (:func:`~featurekit.evaluation.stats.intervals.bootstrap_p_value`).
    """
    check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    t, (sa, sb), units, n_units, repeats = _inputs(
        y_true, [("scores_a", scores_a), ("scores_b", scores_b)], groups, repeats, pos_label)
    (name, m), = _resolve([metric])
    data = UnitData(units, n_units, t, np.vstack([sa, sb]), repeats)
    if not data.repeats:
        raise DataError("a bootstrap needs both classes among the predictions")
    specs = [(name, m)]
    return paired_bootstrap_result(name, data.estimates(specs, threshold)[name],
                                   data.replicates(specs, n_boot, np.random.default_rng(random_state), threshold)[name],
                                   data.jackknife(specs, threshold)[name], confidence, return_distribution)
