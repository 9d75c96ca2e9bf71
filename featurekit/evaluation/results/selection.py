"""Choosing the best candidate inside the estimate: selection by inner CV on training data only.

Scoring many candidates (every layer x classifier, every handcrafted family,
every fusion) on the same outer folds and reporting the best row reports a
maximum: it is biased upward (the winner's curse), and its interval is the
interval of one row, not of the procedure "pick the best" (Varma & Simon,
"Bias in error estimation when using cross-validation for model selection",
BMC Bioinformatics 2006; Cawley & Talbot, "On over-fitting in model selection
and subsequent selection bias in performance evaluation", JMLR 2010).

:class:`SelectBestCandidate` makes the choice part of the fitted model, so that
an outer cross-validation estimates the whole procedure: on the data it is
fitted on, every candidate is scored by an inner (stratified, grouped when there
are groups) cross-validation -- or, when a validation split is given, fitted on
the training data and scored on the validation split -- the best one by the
criterion is refitted on all the data it was given, and it alone predicts.
Fitted on an outer fold's training part and scored on its test part, its test
scores are untouched by the choice.

The candidates are scikit-learn estimators that take the same ``X`` (in
featurekit, sample ids resolved by :class:`~featurekit.evaluation.estimators.features.CachedFeatures`),
so selection over feature sets reads the cache and extracts nothing.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from featurekit.errors import DataError
from featurekit.evaluation.estimators.fusion import _fit_base
from featurekit.evaluation.estimators.meta import _NamedPipelinesClassifier, check_named_estimators
from featurekit.evaluation.estimators.resampling import _take
from featurekit.evaluation.folds.splitters import inner_splits

__all__ = ["SelectBestCandidate", "SELECTION_CRITERIA", "SELECTED", "check_criterion", "choose_best", "criterion_name",
           "describe_selection", "select_per_fold", "selected_predictions", "selection_frequencies"]


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
    return (np.asarray(y)[:, None] == np.arange(k)[None, :]).astype(np.float64)


def _roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if s.ndim == 2:  # macro one-vs-rest over the classes present
        present = [c for c in range(s.shape[1]) if 0 < np.count_nonzero(y == c) < y.shape[0]]
        return float(np.mean([roc_auc_score(y == c, s[:, c]) for c in present])) if present else np.nan
    return float(roc_auc_score(y, s))


def _pr_auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    if s.ndim == 2:
        present = [c for c in range(s.shape[1]) if np.any(y == c)]
        return float(np.mean([average_precision_score(y == c, s[:, c]) for c in present]))
    return float(average_precision_score(y, s))


def _neg_log_loss(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    if s.ndim == 2:
        p = np.clip(s, 1e-15, 1.0)
        return -float(log_loss(y, p / p.sum(axis=1, keepdims=True), labels=list(range(s.shape[1]))))
    return -float(log_loss(y, np.clip(s, 1e-15, 1 - 1e-15), labels=[0, 1]))


def _neg_brier(y: np.ndarray, s: np.ndarray) -> float:
    if s.ndim == 2:  # the multi-class Brier score: squared distance to the one-hot truth
        return -float(np.mean(np.sum((s - _onehot(y, s.shape[1])) ** 2, axis=1)))
    return -float(np.mean((s - y) ** 2))


#: criterion name -> (score of labels and scores: positive-class scores of binary labels, or
#: class probabilities (n, K) of class codes 0..K-1, where AUC and PR AUC are the macro one-vs-rest
#: means; higher is better, description)
SELECTION_CRITERIA: dict[str, tuple[Callable[[np.ndarray, np.ndarray], float], str]] = {
    "roc_auc": (_roc_auc, "ROC AUC"),
    "pr_auc": (_pr_auc, "average precision (PR AUC)"),
    "neg_log_loss": (_neg_log_loss, "negative log loss"),
    "neg_brier": (_neg_brier, "negative Brier score"),
}


def _fit_and_score(selector: Any, est: Any, X: Any, y: np.ndarray, groups: np.ndarray | None,
                   train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The scores on ``test`` (as ``selector`` records them) of a clone of ``est`` fitted on ``train``."""
    model = _fit_base(est, _take(X, train), y[train], None if groups is None else groups[train])
    return selector._scores(model, _take(X, test))


class SelectBestCandidate(_NamedPipelinesClassifier):
    """Choose one of several candidate classifiers on the training data, refit it, predict with it.

    Parameters
    ----------
    candidates : list of (str, estimator)
        Named unfitted binary classifiers (pipelines) taking the same ``X``;
        names must be unique. Each is cloned before it is fitted.
    criterion : {"roc_auc", "pr_auc", "neg_log_loss", "neg_brier"}, default="roc_auc"
        What the choice maximises, computed on the pooled out-of-fold
        positive-class scores of the inner CV (or on the validation split).
    cv : int, default=3
        Inner stratified folds (grouped when ``fit`` gets ``groups``; lowered to
        the smallest class or group count, see
        :func:`~featurekit.evaluation.folds.splitters.inner_splits`).
    random_state : int or None, default=0
        Seed of the inner folds (the same folds for every candidate: their
        scores are paired).

    Attributes
    ----------
    best_name_ : str
        The chosen candidate (the first of the best when scores tie).
    best_estimator_ : estimator
        The chosen candidate, fitted on all the data ``fit`` got.
    candidate_scores_ : dict of str to float
        The criterion of every candidate (NaN when undefined for it).
    inner_oof_scores_ : ndarray of shape (n_samples,) or None
        Out-of-fold positive-class scores of the chosen candidate in the inner
        CV (None when the choice used a validation split): honest scores of the
        training data for choosing a threshold without another inner CV.
    selected_on_ : str
        ``"inner CV (k folds)"`` or ``"validation split (n = ...)"``.
    classes_ : ndarray of shape (2,)

    Notes
    -----
    Cost: ``k`` fits per candidate plus one refit. The inner fits run through
    joblib, so on a Dask cluster they become tasks of their own. In
    :func:`~featurekit.evaluation.results.crossval.cross_validate` the same choice is
    made from the candidates' own fold fits (the *selected* row), at no extra
    cost; this estimator is that choice as one model, e.g. the final model of
    "choose the best, then use it".

    References
    ----------
    Varma S, Simon R. Bias in error estimation when using cross-validation for
    model selection. BMC Bioinformatics 7:91, 2006.

    Cawley GC, Talbot NLC. On over-fitting in model selection and subsequent
    selection bias in performance evaluation. JMLR 11:2079-2107, 2010.
    """

    _pairs_param = "candidates"

    def __init__(self, candidates: Sequence[tuple[str, Any]] = (), *, criterion: str = "roc_auc", cv: int = 3,
                 random_state: int | None = 0):
        self.candidates = candidates
        self.criterion = criterion
        self.cv = cv
        self.random_state = random_state

    def fit(self, X: Any, y: Any, groups: Any = None, *, validation: tuple[Any, Any] | None = None):
        """Score every candidate on ``X, y`` alone, refit the best.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            What the candidates take (sample ids, or features).
        y : array-like of shape (n_samples,)
            Two classes (``classes_[1]`` is the positive one) or more.
        groups : array-like of shape (n_samples,), optional
            Patient / duplicate groups: the inner folds keep them together, and
            candidates that take groups (a nested search) get them.
        validation : (X_val, y_val), optional
            A validation split (a predefined protocol's ``val`` part): each
            candidate is fitted on ``X, y`` and scored on it, with no inner CV;
            the chosen candidate's model fitted on ``X, y`` is kept.
        """
        pairs = check_named_estimators(self.candidates, "SelectBestCandidate", "candidates")
        check_criterion(self.criterion)
        if isinstance(self.cv, bool) or not isinstance(self.cv, (int, np.integer)) or self.cv < 2:
            raise DataError(f"SelectBestCandidate: cv must be an integer >= 2, got {self.cv!r}")
        X, y = self._check_X(X, y, reset=True)
        self._set_classes(y)
        y01 = self._codes(y)
        names, ests = [n for n, _ in pairs], [e for _, e in pairs]
        g = None if groups is None else np.asarray(groups)
        from joblib import Parallel, delayed

        if validation is not None:
            X_val, y_val = validation
            y_val01 = self._codes(y_val)
            models = Parallel()(delayed(_fit_base)(e, X, y, g) for e in ests)
            best, values = choose_best(y_val01, {n: self._scores(m, X_val) for n, m in zip(names, models)},
                                       self.criterion)
            self.best_estimator_ = models[names.index(best)]
            self.inner_oof_scores_ = None
            self.selected_on_ = f"validation split (n = {y_val01.shape[0]})"
        else:
            splits = inner_splits(y01, g, int(self.cv), self.random_state)
            if splits is None:
                raise DataError("SelectBestCandidate: too few samples per class (or groups per class) for the "
                                "inner CV: at least 2 of each are needed")
            parts = Parallel()(delayed(_fit_and_score)(self, e, X, y, g, tr, te) for e in ests for tr, te in splits)
            oof = np.empty((len(ests), y01.shape[0]) + parts[0].shape[1:], dtype=np.float64)
            for i, (_, te) in enumerate(splits * len(ests)):
                oof[i // len(splits), te] = parts[i]
            best, values = choose_best(y01, dict(zip(names, oof)), self.criterion)
            self.best_estimator_ = _fit_base(ests[names.index(best)], X, y, g)
            self.inner_oof_scores_ = oof[names.index(best)]
            self.selected_on_ = f"inner CV ({len(splits)} folds)"
        self.best_name_ = best
        self.candidate_scores_ = values
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """The chosen candidate's probability of every class in ``classes_``."""
        check_is_fitted(self, "best_estimator_")
        X = self._check_X(X, reset=False)
        return self._proba(self._scores(self.best_estimator_, X))


def criterion_name(criterion: str, n_classes: int = 2) -> str:
    """How a criterion is named in rows and reports; the AUCs of more than two classes are macro means."""
    name = SELECTION_CRITERIA[check_criterion(criterion)][1]
    return f"macro {name}" if n_classes > 2 and criterion in ("roc_auc", "pr_auc") else name


def check_criterion(criterion: str) -> str:
    """``criterion`` if it names a selection criterion, else a DataError listing them."""
    if criterion not in SELECTION_CRITERIA:
        raise DataError(f"unknown selection criterion {criterion!r}: choose one of {', '.join(SELECTION_CRITERIA)}")
    return criterion


def choose_best(y: np.ndarray, scores: Mapping[str, np.ndarray | None],
                criterion: str = "roc_auc") -> tuple[str, dict[str, float]]:
    """The candidate whose scores of ``y`` are best by ``criterion``, and every candidate's value.

    Parameters
    ----------
    y : array of {0, 1}, or of class codes 0..K-1
        Labels of the samples the scores are for (inner out-of-fold predictions
        of a training part, or a validation split): never the data the chosen
        candidate will be judged on.
    scores : dict of str to array or None
        Positive-class scores (or class probabilities, shape (n, K)) per candidate, in the candidates' order (the
        first of the best wins a tie). None or non-finite scores count as
        undefined (NaN).
    criterion : str
        A key of :data:`SELECTION_CRITERIA` (higher is better).
    """
    fn = SELECTION_CRITERIA[check_criterion(criterion)][0]
    y = np.asarray(y)
    values: dict[str, float] = {}
    for name, s in scores.items():
        ok = s is not None and np.unique(y).size >= 2 and bool(np.all(np.isfinite(s)))
        values[name] = fn(y, np.asarray(s, dtype=np.float64)) if ok else float("nan")
    v = np.asarray(list(values.values()), dtype=np.float64)
    if v.size == 0 or np.all(np.isnan(v)):
        raise DataError(f"no candidate could be scored for the selection ({', '.join(values) or 'none given'}): "
                        "each class needs samples in the data the choice is made on")
    return list(values)[int(np.nanargmax(v))], values


def selection_frequencies(chosen: Sequence[str], candidates: Sequence[str]) -> dict[str, float]:
    """Share of the outer folds in which each candidate was chosen (selection stability)."""
    n = len(chosen)
    return {c: (sum(1 for x in chosen if x == c) / n if n else 0.0) for c in candidates}


def describe_selection(record: Mapping[str, Any] | None) -> str | None:
    """What the selected row is, in words, from a run's ``provenance["selection"]`` (None without one)."""
    if not record:
        return None
    freq = {k: v for k, v in dict(record.get("frequency", {})).items() if v > 0}
    ranked = ", ".join(f"{k} ({v:.0%})" for k, v in sorted(freq.items(), key=lambda kv: -kv[1]))
    n = int(record.get("n_candidates", len(record.get("candidates", []))))
    folds = len(record.get("chosen", []))
    where = record.get("chosen_on", "inner CV of each training part")
    return (f"selected: in each of the {folds} outer folds, the best of {n} candidate rows by "
            f"{record.get('criterion_name', record.get('criterion'))} on the {where} (never on the test part), "
            f"scored on that fold's test part; chosen: {ranked}. The best of the {n} candidate rows, each scored "
            f"on the same test folds, is a maximum and so optimistic; the selected row estimates the procedure "
            f"'choose the best, then use it'.")


# ---------------------------------------------------------------------------
# the selected row of a cross-validation
# ---------------------------------------------------------------------------

#: feature-set name of the row that chooses its candidate inside each training part
SELECTED = "selected"


def select_per_fold(outs: Sequence[dict], metas: Mapping[str, dict], y01: np.ndarray,
                    criterion: str) -> list[dict] | None:
    """The candidate chosen in each outer fold, from held-out training-side scores only.

    ``outs`` are the fold results of :func:`featurekit.evaluation.results.crossval.cross_validate`
    (with ``held_out``: the
    validation split's or the inner CV's out-of-fold scores of the training
    part). Every candidate of a fold was scored on the same samples, so the
    criterion compares them on equal terms. Returns one dict per fold
    (``repeat, fold, name, value, values, n_held_out, chosen_on``), or None when
    a fold has no held-out scores (too few samples per class for an inner CV).
    """
    by_fold: dict[tuple[int, int], dict[str, dict]] = {}
    for o in outs:
        by_fold.setdefault((o["repeat"], o["fold"]), {})[o["name"]] = o
    chosen = []
    for (r, f), runs in sorted(by_fold.items()):
        names = [n for n in metas if n in runs]
        held = {n: runs[n]["held_out"] for n in names}
        if any(h is None for h in held.values()):
            warnings.warn(f"fold {f} of repeat {r}: too few training samples per class for the inner CV "
                          "that the selection needs; no selected row", UserWarning, stacklevel=3)
            return None
        idx, _, where = held[names[0]]
        best, values = choose_best(y01[idx], {n: held[n][1] for n in names}, criterion)
        chosen.append({"repeat": int(r), "fold": int(f), "name": best, "values": values,
                       "value": values[best], "n_held_out": int(len(idx)), "chosen_on": where})
    return chosen


def _label(meta: Mapping[str, Any]) -> str:
    return f"{meta['feature_set']} | {meta['classifier']}"


def selected_predictions(chosen: list[dict], frames: list[pd.DataFrame], metas: Mapping[str, dict],
                          key: tuple[str, str], criterion: str, n_classes: int = 2) -> tuple[pd.DataFrame, dict]:
    """The selected row's out-of-fold predictions (the chosen candidate's, fold by fold) and its record."""
    index = {(fr["feature_set"].iat[0], fr["classifier"].iat[0], int(fr["repeat"].iat[0]), int(fr["fold"].iat[0])): fr
             for fr in frames if not fr.empty}
    parts = []
    for c in chosen:
        m = metas[c["name"]]
        fr = index[(m["feature_set"], m["classifier"], c["repeat"], c["fold"])]
        parts.append(fr.assign(feature_set=key[0], classifier=key[1]))
    labels = [_label(m) for m in metas.values()]
    picks = [_label(metas[c["name"]]) for c in chosen]
    freq = selection_frequencies(picks, labels)
    ranked = sorted(((v, k) for k, v in freq.items() if v > 0), key=lambda t: (-t[0], labels.index(t[1])))
    record = {
        "criterion": criterion,
        "criterion_name": criterion_name(criterion, n_classes),
        "chosen_on": chosen[0]["chosen_on"],
        "candidates": labels,
        "n_candidates": len(labels),
        "chosen": [{"repeat": c["repeat"], "fold": c["fold"], "candidate": _label(metas[c["name"]]),
                    "name": c["name"], "value": c["value"], "n_held_out": c["n_held_out"]} for c in chosen],
        "frequency": freq,
        "summary": "; ".join(f"{k} {v:.0%}" for v, k in ranked),
    }
    return pd.concat(parts, ignore_index=True), record
