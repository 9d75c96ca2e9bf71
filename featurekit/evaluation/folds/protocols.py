"""Where folds come from: CV specifications, any splitter -> :class:`Fold` records.

:func:`parse_cv` turns a specification (``"5"``, ``"5x3"``,
``"holdout:0.3x30"``, ``"predefined"``, an int) into one of featurekit's
splitters (:mod:`featurekit.evaluation.folds.splitters`); :func:`iter_folds` gives the
:class:`Fold` records (repeat, fold, train, test, val indices) of a
specification, of featurekit's splitters or of **any scikit-learn splitter**
(``StratifiedKFold``, ``RepeatedStratifiedKFold``, ``GroupKFold``,
``LeaveOneGroupOut``... anything with ``split(X, y, groups)``), checking that
no group is split; :func:`describe_protocol` names the protocol for tables and
provenance. Every engine that cross-validates (``evaluate``, ``finetune``) gets
its folds here.

The splitters themselves and :func:`inner_splits` live in
:mod:`featurekit.evaluation.folds.splitters` and are re-exported here.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterator

import numpy as np

from featurekit.errors import DataError, FeaturekitError
from featurekit.evaluation.folds.splitters import (
    CVSpecError,
    Fold,
    HoldoutCV,
    PredefinedSplitCV,
    StratifiedKFoldCV,
    _BaseCV,
    _n_samples,
    check_group_disjoint,
    inner_splits,
    repeat_seeds,
)

__all__ = [
    "CVSpecError",
    "Fold",
    "StratifiedKFoldCV",
    "HoldoutCV",
    "PredefinedSplitCV",
    "parse_cv",
    "iter_folds",
    "describe_protocol",
    "repeat_seeds",
    "check_group_disjoint",
    "inner_splits",
]


_KFOLD_RE = re.compile(r"^(\d+)(?:\s*x\s*(\d+))?$")
_HOLDOUT_RE = re.compile(r"^holdout\s*(?::\s*([0-9.eE+-]+)(?:\s*x\s*(\d+))?)?$")

CV_SPEC_HELP = (
    "expected 'K' (stratified K-fold, e.g. '5'), 'KxR' (K folds repeated R times, e.g. '5x3'), "
    "'holdout:F' or 'holdout:FxR' (test fraction F in (0, 1), R repeats, e.g. 'holdout:0.3x30') "
    "or 'predefined' (a train/val/test label per sample)"
)


def parse_cv(spec: Any, *, random_state: int | None = 0, split_labels: Any = None):
    """Build a splitter from a CV specification string.

    Parameters
    ----------
    spec : str, int or splitter
        ``"5"`` → ``StratifiedKFoldCV(5, 1)``; ``"5x3"`` → ``StratifiedKFoldCV(5, 3)``;
        ``"holdout:0.3"`` → ``HoldoutCV(0.3, 1)``; ``"holdout:0.3x30"`` →
        ``HoldoutCV(0.3, 30)``; ``"predefined"`` → ``PredefinedSplitCV(split_labels)``.
        Case and spaces are ignored. An int is ``K``; an object with ``split``
        (any scikit-learn splitter) is returned unchanged.
    random_state : int or None, default=0
        Master seed of the randomised protocols.
    split_labels : array-like, optional
        For ``"predefined"`` (may also be set later with ``set_params``).

    Returns
    -------
    StratifiedKFoldCV, HoldoutCV, PredefinedSplitCV or the splitter given
        Group-aware automatically: pass ``groups`` to ``split``.

    Raises
    ------
    CVSpecError
        Unparseable or out-of-range specification; the message shows the
        accepted forms.
    """
    if hasattr(spec, "split") and not isinstance(spec, str):
        return spec
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        spec = str(int(spec))
    if not isinstance(spec, str):
        raise CVSpecError(f"cannot parse CV specification {spec!r}: {CV_SPEC_HELP}")
    s = spec.strip().lower()
    if s == "predefined":
        return PredefinedSplitCV(split_labels)
    m = _KFOLD_RE.match(s)
    if m:
        k = int(m.group(1))
        r = int(m.group(2)) if m.group(2) else 1
        if k < 2:
            raise CVSpecError(f"CV specification {spec!r}: need at least 2 folds, got {k}")
        if r < 1:
            raise CVSpecError(f"CV specification {spec!r}: need at least 1 repeat, got {r}")
        return StratifiedKFoldCV(k, r, random_state=random_state)
    m = _HOLDOUT_RE.match(s)
    if m:
        if m.group(1) is None:
            raise CVSpecError(
                f"CV specification {spec!r}: holdout needs a test fraction, e.g. 'holdout:0.3x30'"
            )
        try:
            frac = float(m.group(1))
        except ValueError:
            raise CVSpecError(
                f"CV specification {spec!r}: {m.group(1)!r} is not a number"
            ) from None
        if not (0.0 < frac < 1.0) or not math.isfinite(frac):
            raise CVSpecError(
                f"CV specification {spec!r}: the holdout test fraction must be in (0, 1), "
                f"got {frac}"
            )
        r = int(m.group(2)) if m.group(2) else 1
        if r < 1:
            raise CVSpecError(f"CV specification {spec!r}: need at least 1 repeat, got {r}")
        return HoldoutCV(frac, r, random_state=random_state)
    raise CVSpecError(f"cannot parse CV specification {spec!r}: {CV_SPEC_HELP}")


def iter_folds(cv: Any, X: Any = None, y: Any = None, groups: Any = None, *,
               random_state: int | None = 0, split_labels: Any = None) -> Iterator[Fold]:
    """The folds of any CV protocol, as :class:`Fold` records.

    Parameters
    ----------
    cv : str, int, featurekit splitter or scikit-learn splitter
        A specification for :func:`parse_cv` (``"5x3"``, ``5``, ``"holdout:0.3x30"``,
        ``"predefined"``), one of featurekit's splitters, or any object with
        ``split(X, y, groups)`` (``get_n_splits`` optional).
    X : array-like of shape (n_samples, ...), optional
        Only its length matters; a placeholder is made from ``y`` when omitted.
    y : array-like of shape (n_samples,), optional
        Labels (needed by stratified protocols).
    groups : array-like of shape (n_samples,), optional
        Group (patient) per sample. featurekit's splitters then keep groups
        together; for other splitters a group found on both sides of a split
        raises :class:`~featurekit.errors.DataError` rather than leaking.
    random_state : int or None, default=0
        Seed of a protocol parsed from a specification.
    split_labels : array-like, optional
        Train/val/test label per sample, for ``"predefined"``.

    Yields
    ------
    Fold
        For featurekit's splitters, their own records (repeat, fold, and the
        validation indices of a predefined split). For other splitters the
        ``i``-th split is ``fold = i % k``, ``repeat = i // k`` where ``k`` is
        the number of splits per repeat, ``get_n_splits() / n_repeats`` when the
        splitter has an integer ``n_repeats`` (``RepeatedStratifiedKFold``,
        ``RepeatedKFold``); otherwise ``repeat = 0`` and ``fold = i``.

    Raises
    ------
    CVSpecError
        An unparseable specification, or a splitter that refuses these data
        (its ``ValueError``, e.g. more folds than samples, with the splitter named).
    DataError
        Bad labels or groups, or a group split across train and test.
    """
    splitter = parse_cv(cv, random_state=random_state, split_labels=split_labels)
    if isinstance(splitter, _BaseCV):
        yield from splitter.iter_folds(X, y, groups)
        return
    n, y_arr, g = _n_samples(X, y, groups, needs_y=False)
    Xd = X if X is not None else np.zeros((n, 1))
    per_repeat = _splits_per_repeat(splitter, Xd, y_arr, g)
    try:
        for i, (train, test) in enumerate(splitter.split(Xd, y_arr, g)):
            train, test = _indices(train, n), _indices(test, n)
            if g is not None:
                try:
                    check_group_disjoint(g, train, test)
                except DataError as exc:
                    raise DataError(
                        f"{splitter!r} does not keep the groups together: {exc}; use a group-aware splitter "
                        "(GroupKFold, StratifiedGroupKFold, LeaveOneGroupOut...) or no groups") from None
            repeat, fold = divmod(i, per_repeat) if per_repeat else (0, i)
            yield Fold(repeat, fold, train, test)
    except FeaturekitError:
        raise
    except ValueError as exc:
        raise CVSpecError(f"{splitter!r}: {exc}") from exc


def _splits_per_repeat(splitter: Any, X: Any, y: Any, groups: Any) -> int | None:
    """Splits per repeat of a foreign splitter; None when it does not repeat."""
    reps = getattr(splitter, "n_repeats", None)
    if isinstance(reps, (int, np.integer)) and not isinstance(reps, bool) and reps > 1 \
            and hasattr(splitter, "get_n_splits"):
        try:
            total = int(splitter.get_n_splits(X, y, groups))
        except ValueError as exc:
            raise CVSpecError(f"{splitter!r}: {exc}") from exc
        if total % int(reps) == 0:
            return total // int(reps)
    return None


def _indices(idx: Any, n: int) -> np.ndarray:
    """Integer indices from a split's index array (or boolean mask)."""
    a = np.asarray(idx)
    if a.dtype == bool:
        if a.shape != (n,):
            raise DataError(f"a boolean split mask has shape {a.shape}, expected ({n},)")
        return np.flatnonzero(a)
    return a.astype(np.int64, copy=False)


def describe_protocol(splitter: Any, grouped: bool = False) -> str:
    """Human-readable protocol, e.g. ``stratified 5-fold x3 (grouped)``.

    Parameters
    ----------
    splitter : splitter or specification
        A featurekit splitter, a specification for :func:`parse_cv`, or any
        other splitter (described by its ``repr``).
    grouped : bool, default=False
        Whether groups were given (appends `` (grouped)``).
    """
    g = " (grouped)" if grouped else ""
    if isinstance(splitter, (str, int, np.integer)) and not isinstance(splitter, bool):
        splitter = parse_cv(splitter)
    if isinstance(splitter, StratifiedKFoldCV):
        reps = f" x{splitter.n_repeats}" if int(splitter.n_repeats) > 1 else ""
        return f"stratified {splitter.n_splits}-fold{reps}{g}"
    if isinstance(splitter, HoldoutCV):
        return f"stratified holdout {splitter.test_size:g} x{splitter.n_repeats}{g}"
    if isinstance(splitter, PredefinedSplitCV):
        return f"predefined split{' (val merged)' if splitter.merge_val else ''}{g}"
    return repr(splitter) + g
