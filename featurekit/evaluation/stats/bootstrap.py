"""Stratified bootstrap confidence intervals of metrics on pooled predictions.

One resampling scheme: its single and paired intervals and the per-fold
variant share the replicate index generation and the percentile rule.

Scope: one vector of (pooled out-of-fold) scores per sample, e.g. the
predictions of a k-fold cross-validation where every sample is predicted once.

Procedure (per replicate ``b = 1..B``, ``B = n_boot``): draw ``m`` positives
with replacement among the ``m`` positives and ``n`` negatives among the ``n``
negatives (stratified: the class sizes, hence the prevalence, stay fixed and
every replicate holds both classes), and evaluate the metric on the replicate.
The interval is the percentile interval: the ``α/2`` and ``1 − α/2``
quantiles of the ``B`` replicate values (``α = 1 − confidence``; linear
interpolation, ``numpy.quantile``'s default). The point ``estimate`` is the
metric on the original data, not the bootstrap mean.

Speed: every metric of :data:`~featurekit.evaluation.stats.metrics.METRICS` is
computed for all replicates at once by its own formula of counts
(:meth:`~featurekit.evaluation.stats.metrics.Metric.from_counts`): ``roc_auc`` and
``pr_auc`` from per-replicate counts of each distinct score value (the ranking
kernel of :mod:`featurekit.evaluation.stats.ranking`, ``O(B·(m + n))``), the
threshold metrics from per-replicate confusion counts; any other callable is
evaluated replicate by replicate.

Caveats: the samples are treated as independent and the class counts are
held fixed, which leaves out the variability of the prevalence: intervals of
accuracy, F1 or a pooled AUC come out too narrow. ``featurekit``'s results
use :mod:`featurekit.evaluation.stats.unit_bootstrap` (resampling patients / groups
or samples, BCa) and Wilson intervals for proportions instead
(:mod:`featurekit.evaluation.results.summary`). The percentile interval under-covers
with very few positives (say fewer than 20).

Reproducibility: the replicates depend only on ``random_state``, ``m``, ``n``
and ``n_boot``, so for the same seed every metric (and the paired version)
sees the same resamples.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from featurekit.errors import DataError
from featurekit.evaluation.stats.intervals import bootstrap_p_value, check_confidence, percentile_interval
from featurekit.evaluation.stats.labels import UndefinedMetricWarning, binarize_labels, check_scores
from featurekit.evaluation.stats.metrics import Metric, get_metric
from featurekit.evaluation.stats.ranking import value_counts

__all__ = [
    "BootstrapResult",
    "PairedBootstrapResult",
    "bootstrap_ci",
    "bootstrap_metrics",
    "bootstrap_paired_ci",
    "bootstrap_delta_auc",
    "percentile_interval",
    "check_n_boot",
]

#: elements per (chunk × samples) index array; bounds memory to a few tens of MB
_CHUNK_ELEMENTS = 2_000_000


class _Interval:
    """``ci`` and ``as_dict`` shared by the bootstrap results."""

    # what the dataclasses that inherit this give it (annotations only: no fields of this class)
    __dataclass_fields__: ClassVar[dict[str, Any]]
    lo: float
    hi: float

    @property
    def ci(self) -> tuple[float, float]:
        """``(lo, hi)``."""
        return (self.lo, self.hi)

    def as_dict(self) -> dict:
        """Plain dict without the distribution."""
        d = asdict(self)
        d.pop("distribution")
        return d


@dataclass(frozen=True)
class BootstrapResult(_Interval):
    """A metric with its stratified-bootstrap percentile interval.

    Attributes
    ----------
    metric : str
    estimate : float
        The metric on the original data.
    lo, hi : float
        Percentile interval at ``confidence``.
    confidence : float
    n_boot : int
        Number of replicates drawn.
    n_valid : int
        Replicates where the metric was defined (finite); the interval uses these.
    std_error : float
        Standard deviation of the valid replicate values (``ddof=1``).
    distribution : ndarray of shape (n_boot,) or None
        Replicate values, when asked for.
    method : str
        How the interval was made: ``"percentile"`` (this module), ``"bca"``
        (:mod:`featurekit.evaluation.stats.unit_bootstrap`).
    """

    metric: str
    estimate: float
    lo: float
    hi: float
    confidence: float
    n_boot: int
    n_valid: int
    std_error: float
    distribution: np.ndarray | None = field(default=None, repr=False, compare=False)
    method: str = "percentile"


@dataclass(frozen=True)
class PairedBootstrapResult(_Interval):
    """Difference of a metric between two paired score vectors, bootstrapped.

    Attributes
    ----------
    metric : str
    estimate_a, estimate_b : float
        The metric of each score vector on the original data.
    delta : float
        ``estimate_a − estimate_b``.
    lo, hi : float
        Percentile interval of the difference at ``confidence``.
    p_value : float
        Two-sided p-value of ``H0: delta = 0`` from the bootstrap standard
        error, ``2·Φ(−|δ̂| / sd(δ*))`` over the valid replicates
        (:func:`~featurekit.evaluation.stats.intervals.bootstrap_p_value`).
    confidence, n_boot, n_valid, std_error, distribution, method
        As in :class:`BootstrapResult` (for the differences).
    """

    metric: str
    estimate_a: float
    estimate_b: float
    delta: float
    lo: float
    hi: float
    p_value: float
    confidence: float
    n_boot: int
    n_valid: int
    std_error: float
    distribution: np.ndarray | None = field(default=None, repr=False, compare=False)
    method: str = "percentile"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


class _Spec:
    """A metric to bootstrap: a :class:`~featurekit.evaluation.stats.metrics.Metric` (or its name) or a callable."""

    def __init__(self, metric: str | Metric | Callable[..., float], threshold: float):
        self.threshold = float(threshold)
        self.metric: Metric | None  # None: the callable ``fn``
        if isinstance(metric, Metric):
            self.name, self.metric = metric.name, metric
        elif callable(metric):
            self.name = getattr(metric, "__name__", "metric")
            self.metric = None
            self.fn = metric
        else:
            self.name, self.metric = get_metric(metric)

    @property
    def needs_counts(self) -> bool:
        """Whether the replicates need the counts per score value (threshold-free metrics)."""
        return self.metric is not None and self.metric.threshold_free

    def estimate(self, y01: np.ndarray, s: np.ndarray) -> float:
        if self.metric is None:
            return float(self.fn(y01, s))
        return self.metric(y01, s, self.threshold, pos_label=1)


def check_n_boot(n_boot: int) -> None:
    """A :class:`~featurekit.errors.DataError` unless ``n_boot`` is a positive integer."""
    if not isinstance(n_boot, (int, np.integer)) or isinstance(n_boot, bool) or n_boot < 1:
        raise DataError(f"n_boot must be a positive integer, got {n_boot!r}")


def _check_args(n_boot: int, confidence: float) -> None:
    check_n_boot(n_boot)
    check_confidence(confidence)


def _split_classes(y_true: Any, pos_label: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = binarize_labels(y_true, pos_label)
    pos = np.flatnonzero(t)
    neg = np.flatnonzero(~t)
    if pos.size == 0 or neg.size == 0:
        raise DataError(
            f"a stratified bootstrap needs both classes, got {pos.size} positives and "
            f"{neg.size} negatives"
        )
    return t, pos, neg


def _summarise(values: np.ndarray, confidence: float, what: str) -> tuple[float, float, int, float]:
    finite = np.isfinite(values)
    n_valid = int(finite.sum())
    if n_valid < values.size:
        warnings.warn(
            f"{what} is undefined in {values.size - n_valid} of {values.size} bootstrap "
            "replicates; the interval uses the others",
            UndefinedMetricWarning, stacklevel=3,
        )
    lo, hi = percentile_interval(values, confidence)
    se = float(np.std(values[finite], ddof=1)) if n_valid > 1 else float("nan")
    return lo, hi, n_valid, se


class _Scores:
    """Per score vector: positive/negative scores and the codes of their distinct values."""

    def __init__(self, s: np.ndarray, t: np.ndarray, pos: np.ndarray, neg: np.ndarray, need_codes: bool):
        self.sp = s[pos]
        self.sn = s[neg]
        if need_codes:
            vc = value_counts(t, s)
            self.n_values = vc.values.size
            self.codes_p = vc.codes[pos]
            self.codes_n = vc.codes[neg]

    def counts(self, ip: np.ndarray, ineg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per replicate (rows), counts of sampled positives/negatives per value (ascending)."""
        c, u = ip.shape[0], self.n_values
        offs = (np.arange(c, dtype=np.int64) * u)[:, None]
        cp = np.bincount((self.codes_p[ip] + offs).ravel(), minlength=c * u).reshape(c, u)
        cn = np.bincount((self.codes_n[ineg] + offs).ravel(), minlength=c * u).reshape(c, u)
        return cp.astype(np.float64), cn.astype(np.float64)


def _replicates(
    t: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    score_vectors: Sequence[np.ndarray],
    specs: Sequence[_Spec],
    n_boot: int,
    rng: np.random.Generator,
) -> list[dict[str, np.ndarray]]:
    """Replicate values: one dict (metric name -> (n_boot,)) per score vector."""
    m, n = pos.size, neg.size
    need_codes = any(sp.needs_counts for sp in specs)
    prepared = [_Scores(s, t, pos, neg, need_codes) for s in score_vectors]
    out = [{sp.name: np.empty(n_boot) for sp in specs} for _ in score_vectors]
    chunk = int(max(1, min(n_boot, _CHUNK_ELEMENTS // (m + n))))
    y_rep = np.r_[np.ones(m, dtype=np.int64), np.zeros(n, dtype=np.int64)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for start in range(0, n_boot, chunk):
            c = min(chunk, n_boot - start)
            ip = rng.integers(0, m, size=(c, m))
            ineg = rng.integers(0, n, size=(c, n))
            sl = slice(start, start + c)
            for k, sc in enumerate(prepared):
                cp = cn = None
                for sp in specs:
                    if sp.metric is None:
                        vals = np.array([
                            float(sp.fn(y_rep, np.r_[sc.sp[ip[r]], sc.sn[ineg[r]]]))
                            for r in range(c)
                        ])
                    elif sp.needs_counts:
                        if cp is None:
                            cp, cn = sc.counts(ip, ineg)
                        vals = sp.metric.from_counts((cp, cn), np.nan)
                    else:
                        tp = (sc.sp >= sp.threshold)[ip].sum(axis=1)
                        fp = (sc.sn >= sp.threshold)[ineg].sum(axis=1)
                        vals = sp.metric.from_counts((tp, fp, n - fp, m - tp), np.nan)
                    out[k][sp.name][sl] = vals
    return out


def _specs(metrics: Sequence[str | Callable[..., float]], threshold: float) -> list[_Spec]:
    specs = [_Spec(mt, threshold) for mt in metrics]
    names = [sp.name for sp in specs]
    if len(set(names)) != len(names):
        raise DataError(f"metric names must be unique, got {names}")
    return specs


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------


def bootstrap_metrics(
    y_true: Any,
    y_score: Any,
    metrics: Sequence[str | Callable[..., float]] = ("roc_auc",),
    *,
    threshold: float = 0.5,
    pos_label: Any = 1,
    n_boot: int = 2000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    return_distribution: bool = False,
) -> dict[str, BootstrapResult]:
    """Stratified-bootstrap percentile intervals of several metrics at once.

    All metrics are evaluated on the same replicates.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_score : array-like of shape (n_samples,)
        Pooled out-of-fold scores, higher meaning more likely ``pos_label``.
    metrics : sequence of str, Metric or callable, default=("roc_auc",)
        Names of :data:`~featurekit.evaluation.stats.metrics.METRICS` (or aliases), its
        :class:`~featurekit.evaluation.stats.metrics.Metric` objects, or other
        callables ``f(y01, scores) -> float`` where ``y01`` is 0/1 (1 = positive).
    threshold : float, default=0.5
        Threshold of the threshold metrics (positive iff ``score >= threshold``).
    pos_label : scalar, default=1
    n_boot : int, default=2000
    confidence : float, default=0.95
    random_state : int, Generator or None, default=0
    return_distribution : bool, default=False

    Returns
    -------
    dict of str to BootstrapResult
        Keyed by canonical metric name (callables by ``__name__``).
    """
    _check_args(n_boot, confidence)
    t, pos, neg = _split_classes(y_true, pos_label)
    s = check_scores(y_score, t.shape[0])
    specs = _specs(metrics, threshold)
    y01 = t.astype(np.int64)
    estimates = {sp.name: sp.estimate(y01, s) for sp in specs}
    rng = np.random.default_rng(random_state)
    reps = _replicates(t, pos, neg, [s], specs, n_boot, rng)[0]
    results = {}
    for sp in specs:
        vals = reps[sp.name]
        lo, hi, n_valid, se = _summarise(vals, confidence, sp.name)
        results[sp.name] = BootstrapResult(
            metric=sp.name, estimate=estimates[sp.name], lo=lo, hi=hi,
            confidence=float(confidence), n_boot=int(n_boot), n_valid=n_valid, std_error=se,
            distribution=vals if return_distribution else None,
        )
    return results


def bootstrap_ci(
    y_true: Any,
    y_score: Any,
    metric: str | Callable[..., float] = "roc_auc",
    *,
    threshold: float = 0.5,
    pos_label: Any = 1,
    n_boot: int = 2000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    return_distribution: bool = False,
) -> BootstrapResult:
    """Stratified-bootstrap percentile interval of one metric.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_score : array-like of shape (n_samples,)
    metric : str or callable, default="roc_auc"
        A name of :data:`~featurekit.evaluation.stats.metrics.METRICS` (or alias), or a
        callable ``f(y01, scores) -> float`` (``y01`` is 0/1, 1 = positive).
    threshold, pos_label, n_boot, confidence, random_state, return_distribution
        See :func:`bootstrap_metrics`.

    Returns
    -------
    BootstrapResult
        ``estimate`` (on the original data), ``lo``, ``hi`` and optionally the
        replicate ``distribution``.
    """
    res = bootstrap_metrics(
        y_true, y_score, [metric], threshold=threshold, pos_label=pos_label, n_boot=n_boot,
        confidence=confidence, random_state=random_state,
        return_distribution=return_distribution,
    )
    return next(iter(res.values()))


def bootstrap_paired_ci(
    y_true: Any,
    scores_a: Any,
    scores_b: Any,
    metric: str | Callable[..., float] = "roc_auc",
    *,
    threshold: float = 0.5,
    pos_label: Any = 1,
    n_boot: int = 2000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    return_distribution: bool = False,
) -> PairedBootstrapResult:
    """Paired stratified bootstrap of ``metric(a) − metric(b)``.

    Each replicate resamples the *samples* once and evaluates both score
    vectors on it, so the correlation between the two models is kept.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    scores_a, scores_b : array-like of shape (n_samples,)
        Scores of two models on the same samples.
    metric : str or callable, default="roc_auc"
    threshold, pos_label, n_boot, confidence, random_state, return_distribution
        See :func:`bootstrap_metrics`.

    Returns
    -------
    PairedBootstrapResult
    """
    _check_args(n_boot, confidence)
    t, pos, neg = _split_classes(y_true, pos_label)
    sa = check_scores(scores_a, t.shape[0], "scores_a")
    sb = check_scores(scores_b, t.shape[0], "scores_b")
    spec = _specs([metric], threshold)[0]
    y01 = t.astype(np.int64)
    est_a, est_b = spec.estimate(y01, sa), spec.estimate(y01, sb)
    rng = np.random.default_rng(random_state)
    ra, rb = _replicates(t, pos, neg, [sa, sb], [spec], n_boot, rng)
    diff = ra[spec.name] - rb[spec.name]
    lo, hi, n_valid, se = _summarise(diff, confidence, f"the difference of {spec.name}")
    p = bootstrap_p_value(diff, est_a - est_b)
    return PairedBootstrapResult(
        metric=spec.name, estimate_a=est_a, estimate_b=est_b, delta=est_a - est_b, lo=lo, hi=hi,
        p_value=float(p), confidence=float(confidence), n_boot=int(n_boot), n_valid=n_valid,
        std_error=se, distribution=diff if return_distribution else None,
    )


def bootstrap_delta_auc(y_true: Any, scores_a: Any, scores_b: Any, **kwargs: Any) -> PairedBootstrapResult:
    """Paired stratified bootstrap of ``AUC(a) − AUC(b)``.

    Shorthand for ``bootstrap_paired_ci(y_true, scores_a, scores_b, "roc_auc", **kwargs)``.
    """
    return bootstrap_paired_ci(y_true, scores_a, scores_b, "roc_auc", **kwargs)
