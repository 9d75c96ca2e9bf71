"""What a run's numbers are, in words: the one place that turns a run's provenance into phrases.

A pooled AUC is "pooled out-of-fold predictions of stratified 5-fold CV" on one
run and "on the test split (n = 156)" on another; the Youden threshold is chosen
on a validation split, by an inner CV of the training folds, or on the training
folds' own scores. :func:`describe_run` derives these phrases from what the
run folder recorded -- ``cv`` (the specification, parsed by
:func:`featurekit.evaluation.folds.protocols.parse_cv`), ``protocol``, ``options``
(``youden``, ``youden_cv``), ``kind`` and ``validation`` of fine-tuning runs,
optional ``samples`` counts per split -- and the results rows (``n``: the
distinct samples predicted, i.e. the test split's size in a predefined split),
so the report, its figures and ``featurekit evaluate``'s terminal table never
describe a protocol the run did not use.

:func:`describe_task` says what is predicted: one positive class against the
other (binary), one class against the rest of three or more (``one_vs_rest``
in the provenance), or every class (``task`` "multiclass": macro one-vs-rest
AUC, the most probable class as the prediction, no threshold).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from featurekit.errors import FeaturekitError
from featurekit.evaluation.folds.protocols import parse_cv
from featurekit.evaluation.folds.splitters import HoldoutCV, PredefinedSplitCV, StratifiedKFoldCV

__all__ = ["RunTask", "RunWording", "describe_task", "describe_run", "describe_runs"]


@dataclass(frozen=True)
class RunTask:
    """What a run predicts.

    Attributes
    ----------
    classes : tuple of str
        The classes of a multi-class run, in code order; empty for a binary run.
    positive : str or None
        The positive class of a binary run.
    one_vs_rest : tuple of str
        The classes present when a binary run is one class against the rest of three or more.
    ordered : bool
        The classes are ordered (Cohen's kappa quadratic-weighted).
    """

    classes: tuple = ()
    positive: str | None = None
    one_vs_rest: tuple = ()
    ordered: bool = False

    @property
    def multiclass(self) -> bool:
        return bool(self.classes)

    @property
    def header(self) -> str:
        """The task in a line: "positive: malignant", "malignant vs the rest (3 classes)",
        "3 classes (benign, malignant, normal): multi-class"."""
        if self.multiclass:
            return (f"{len(self.classes)} classes ({', '.join(self.classes)}): multi-class"
                    + (", ordered" if self.ordered else ""))
        if self.one_vs_rest:
            return f"{self.positive} vs the rest ({len(self.one_vs_rest)} classes)"
        return f"positive: {self.positive}"

    @property
    def auc(self) -> str:
        """What the AUC is."""
        return (f"the macro one-vs-rest AUC (the mean over the {len(self.classes)} classes of each class's AUC "
                "against the rest)")

    @property
    def predicted(self) -> str:
        """What the predicted class is."""
        return "the predicted class is the most probable one, no threshold"

    @property
    def kappa(self) -> str:
        """Which Cohen's kappa."""
        return "Cohen's kappa, quadratic-weighted (ordered classes)" if self.ordered else \
            "Cohen's kappa (unweighted)"

    @property
    def test(self) -> str:
        """The paired test between two rows' AUCs."""
        return "paired bootstrap of the macro-AUC difference" if self.multiclass else "DeLong"

    def sentence(self) -> str:
        """The multi-class metrics in one sentence (empty for a binary run)."""
        if not self.multiclass:
            return ""
        return (f"AUC: {self.auc}; accuracy, balanced accuracy, F1, sensitivity and specificity: {self.predicted}, "
                f"F1 / precision / recall macro-averaged over the classes (weighted: by each class's count); "
                f"κ: {self.kappa}.")


def describe_task(provenance: Mapping[str, Any] | None, results: pd.DataFrame | None = None) -> RunTask:
    """What a run predicts, from its provenance (``task``, ``classes``, ``positive``, ``one_vs_rest``,
    ``options.ordered``), else from its results columns (``n[<class>]`` of a multi-class run)."""
    provenance = provenance or {}
    classes = [str(c) for c in provenance.get("classes") or []] if provenance.get("task") == "multiclass" else []
    if not classes and provenance.get("task") != "binary" and results is not None:
        classes = [str(c)[2:-1] for c in results.columns if str(c).startswith("n[") and str(c).endswith("]")]
    options = provenance.get("options") or {}
    positive = provenance.get("positive")
    return RunTask(tuple(classes), None if classes or positive is None else str(positive),
                   tuple(str(c) for c in provenance.get("one_vs_rest") or []),
                   bool(options.get("ordered", False)) if isinstance(options, Mapping) else False)


@dataclass(frozen=True)
class RunWording:
    """The phrases of one run.

    Attributes
    ----------
    protocol : str
        The protocol, e.g. "stratified 5-fold CV repeated 3 times", "the predefined test split".
    estimate : str
        Where the pooled estimates and their intervals come from.
    spread : str
        What "mean ± sd" is taken over.
    threshold : str
        Where each Youden threshold was chosen.
    scores : str
        The per-sample scores of the ROC curves and DeLong's test.
    first_repeat : str
        The predictions of the confusion matrices (the first repeat).
    youden_short : str
        A label for the Youden panels, e.g. "Youden (inner CV of training folds)".
    task : RunTask
        What the run predicts.
    """

    protocol: str
    estimate: str
    spread: str
    threshold: str
    scores: str
    first_repeat: str
    youden_short: str
    task: RunTask = RunTask()

    def sentence(self) -> str:
        """Estimate, spread and threshold (binary) or the multi-class metrics in one paragraph."""
        lead = f"Pooled estimates and their 95% intervals: {self.estimate}. Mean ± sd: {self.spread}. "
        if self.task.multiclass:
            return lead + self.task.sentence()
        return lead + f"@Youden / @Y: at the Youden-optimal threshold {self.threshold}."


def _as_int(x: Any) -> int | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return int(f) if math.isfinite(f) else None


def _n_tested(results: pd.DataFrame | None) -> int | None:
    """The distinct samples the run predicted (its test split's size in a single split)."""
    if results is None or results.empty or "n" not in results.columns:
        return None
    values = pd.to_numeric(results["n"], errors="coerce").dropna()
    return int(values.max()) if not values.empty else None


def _splitter(provenance: Mapping[str, Any], results: pd.DataFrame | None):
    """The run's protocol as featurekit's splitter, from ``cv`` or else the ``protocol`` text; None if foreign."""
    cv = provenance.get("cv")
    text = str(provenance.get("protocol") or "")
    if cv is not None and str(cv).strip():
        try:
            splitter = parse_cv(str(cv))
        except FeaturekitError:
            splitter = None  # a scikit-learn splitter's repr: described by its protocol text below
        if isinstance(splitter, PredefinedSplitCV):  # whether val joined training is in the protocol text only
            return PredefinedSplitCV(merge_val="val merged" in text)
        if splitter is not None:
            return splitter
    if not text and results is not None and "protocol" in results.columns and not results.empty:
        text = str(results["protocol"].dropna().astype(str).iloc[0]) if results["protocol"].notna().any() else ""
    m = re.match(r"stratified (\d+)-fold(?: x(\d+))?", text)
    if m:
        return StratifiedKFoldCV(int(m.group(1)), int(m.group(2) or 1))
    m = re.match(r"stratified holdout ([0-9.eE+-]+) x(\d+)", text)
    if m:
        return HoldoutCV(float(m.group(1)), int(m.group(2)))
    if text.startswith("predefined"):
        return PredefinedSplitCV(merge_val=("val merged" in text))
    return None


def _times(k: int) -> str:
    return {1: "once", 2: "twice"}.get(k, f"{k} times")


def _has_val(provenance: Mapping[str, Any]) -> bool | None:
    """Whether a predefined split had a validation part: True, False, or None (not recorded)."""
    if "validation" in provenance:  # fine-tuning runs record it
        return str(provenance["validation"]).startswith("predefined")
    samples = provenance.get("samples") or {}
    if isinstance(samples, Mapping) and "val" in samples:
        return (_as_int(samples.get("val")) or 0) > 0
    return None


def _threshold(provenance: Mapping[str, Any], splitter, folds: str) -> tuple[str, str]:
    """(phrase, short label) of where each Youden threshold was chosen; ``folds``: "training folds"..."""
    options = provenance.get("options") or {}
    mode = str(options.get("youden", "") or "")
    own = f"{folds}'" if folds.endswith("s") else f"{folds}'s"
    predefined = isinstance(splitter, PredefinedSplitCV)
    has_val = _has_val(provenance) if predefined and not splitter.merge_val else False
    finetuned = provenance.get("kind") == "finetuned" or mode == "val"
    if finetuned:
        if mode == "val":
            if has_val:
                return "chosen on the validation split", "Youden (validation split)"
            fraction = options.get("val_fraction")
            part = f"the validation part held out of the {folds}" + (
                f" ({fraction:g} of each)" if isinstance(fraction, (int, float)) else "")
            return f"chosen on {part}", f"Youden (validation part of {folds})"
        if mode == "train":
            return f"chosen on the {own} own scores (training and validation parts)", f"Youden ({own} own scores)"
    if mode == "inner":
        k = _as_int(options.get("youden_cv")) or 3
        inner = f"chosen by an inner {k}-fold CV of the {folds}"
        short = f"Youden (inner CV of {folds})"
    elif mode == "train":
        inner = f"chosen on the {own} own scores (resubstitution)"
        short = f"Youden ({own} own scores)"
    else:
        return f"chosen on the {folds} only", f"Youden ({folds})"
    if has_val:
        return "chosen on the validation split", "Youden (validation split)"
    if has_val is None and predefined:
        return (f"chosen on the validation split where it holds both classes, otherwise {inner[len('chosen '):]}",
                "Youden (validation split or training split)")
    return inner, short


def describe_run(provenance: Mapping[str, Any] | None, results: pd.DataFrame | None = None) -> RunWording:
    """The phrases of one run, from its provenance and its results rows.

    Parameters
    ----------
    provenance : mapping
        ``provenance.json`` of the run folder (``cv``, ``protocol``, ``options``...).
    results : DataFrame, optional
        Its results rows (``n`` gives the size of a single test split; ``protocol``
        stands in when the provenance lacks one).
    """
    provenance = provenance or {}
    splitter = _splitter(provenance, results)
    n = _n_tested(results)
    n_text = f" (n = {n})" if n is not None else ""
    group_kind = (provenance.get("dataset") or {}).get("group_kind")
    # what a group is when the data say it (a patient, a volume, near-duplicate images), else just "grouped"
    grouped = (f", grouped by {group_kind}" if group_kind else ", grouped") if provenance.get("grouped") else ""
    if isinstance(splitter, StratifiedKFoldCV):
        k, r = int(splitter.n_splits), int(splitter.n_repeats)
        cv = f"stratified {k}-fold CV" + (f" repeated {r} times" if r > 1 else "") + grouped
        estimate = (f"pooled out-of-fold predictions of {cv} (each sample predicted {_times(r)}"
                    + ("; pooled per repeat and averaged over the repeats)" if r > 1 else ")"))
        spread = f"over the {k * r} test folds" + (f" ({k} folds × {r} repeats)" if r > 1 else "")
        scores = (f"each sample's mean out-of-fold score over the {r} repeats" if r > 1
                  else "each sample's out-of-fold score")
        first = ("out-of-fold predictions of the first repeat (every sample once)" if r > 1
                 else "out-of-fold predictions (every sample once)")
        folds = "training folds"
    elif isinstance(splitter, HoldoutCV):
        f, r = float(splitter.test_size), int(splitter.n_repeats)
        cv = (f"{r} random stratified holdout splits" if r > 1
              else "one random stratified holdout split") + f" (test fraction {f:g}{grouped})"
        estimate = (f"over {cv}: each split's test predictions pooled, averaged over the splits" if r > 1
                    else f"on the test part of {cv}{n_text}")
        spread = f"over the {r} holdout test sets" if r > 1 else "on the one test set (no sd)"
        scores = ("each sample's mean score over the holdout splits that tested it" if r > 1
                  else f"the test part's scores{n_text}")
        first = "the first holdout split's test part" if r > 1 else f"the test part{n_text}"
        folds = "splits' training parts" if r > 1 else "training part"
    elif isinstance(splitter, PredefinedSplitCV):
        cv = "the predefined train / validation / test split" + (
            " (validation merged into training)" if splitter.merge_val else "")
        estimate = f"on the test split{n_text}"
        spread = "on the one test split (no sd)"
        scores = f"the test split's scores{n_text}"
        first = f"the test split{n_text}"
        folds = "training split"
    else:
        cv = str(provenance.get("protocol") or provenance.get("cv") or "the run's protocol")
        estimate = f"pooled test predictions of {cv}"
        spread = "over its test folds"
        scores = "each sample's mean test score"
        first = "the test predictions of the first repeat"
        folds = "training folds"
    threshold, short = _threshold(provenance, splitter, folds)
    return RunWording(cv, estimate, spread, threshold, scores, first, short, describe_task(provenance, results))


def describe_runs(runs) -> dict[str, RunWording]:
    """``{run name: wording}`` of :class:`~featurekit.evaluation.results.runfolder.RunFolder` objects."""
    return {run.name: describe_run(run.provenance, run.results) for run in runs}
