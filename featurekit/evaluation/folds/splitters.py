"""featurekit's cross-validation protocols as scikit-learn-compatible splitters.

Three splitters that share one base class (:class:`_BaseCV`: the input checks
and the scikit-learn plumbing), its fold records and the group-aware
stratified assignment.

Every splitter has ``split(X, y, groups)`` yielding ``(train_idx, test_idx)``
(so it can be passed as ``cv=`` to scikit-learn) and ``get_n_splits``, plus
:meth:`iter_folds` yielding :class:`Fold` records that also carry the repeat
and fold numbers (and, for a predefined split, the validation indices).

Protocols
---------
:class:`StratifiedKFoldCV` (``"5"``, ``"5x3"``)
    Repeated stratified k-fold. Repeat ``r`` uses a seed derived from the one
    ``random_state`` (:class:`numpy.random.SeedSequence` spawning), so repeats
    differ yet are reproducible. Without groups: :class:`~sklearn.model_selection.StratifiedKFold`
    (each class spread over the folds to within ±1 sample). With groups (e.g.
    patient ids): :class:`~sklearn.model_selection.StratifiedGroupKFold`
    with shuffling, chosen automatically; a group is never in both train and test
    and the stratification is then only approximate. In every repeat each sample is
    in exactly one test fold.
:class:`HoldoutCV` (``"holdout:0.3x30"``)
    Repeated stratified holdout. Without groups:
    :class:`~sklearn.model_selection.StratifiedShuffleSplit` (test size
    ``ceil(test_size·n)``). With groups: a greedy stratified group split (groups in
    random order are moved to the test set when that brings its class counts
    closer to ``test_size`` of each class); test sizes are then approximate.
:class:`PredefinedSplitCV` (``"predefined"``)
    A fixed split given by a per-sample label ``train`` / ``val`` / ``test``:
    models are fitted on ``train``; ``val`` is held out for early stopping or
    threshold selection when a caller asks for it (:attr:`Fold.val_idx`), or
    merged into training with ``merge_val=True``; metrics are reported on
    ``test`` only.

:func:`featurekit.evaluation.folds.protocols.parse_cv` turns a CLI string into one
of these, and :func:`featurekit.evaluation.folds.protocols.iter_folds` gives the folds
of these and of any scikit-learn splitter.

Every split is checked at run time: when groups are given, a group found in
both train and test raises an error rather than leaking.

Thin data: a test part without a sample of some class leaves ROC AUC,
sensitivity, specificity... undefined there, and a fold mean over the other
folds looks better founded than it is. So the splitters refuse upfront what
cannot give every test part both classes, with a :class:`CVSpecError` that says
what would: stratified k-fold with more folds than the smallest class has
samples (or, grouped, groups), a grouped holdout or a predefined split whose
test (or train) part lacks a class. The ungrouped holdout instead swaps one
sample in where rounding would leave a class out of a part. What can still happen (grouped stratification is
approximate; foreign splitters) is counted per metric in the results
(``roc_auc_n_folds``) and flagged in the printed table and the report.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterator, Literal, NamedTuple, Sequence, overload

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, StratifiedShuffleSplit

from featurekit.errors import DataError

__all__ = [
    "CVSpecError",
    "Fold",
    "StratifiedKFoldCV",
    "HoldoutCV",
    "PredefinedSplitCV",
    "repeat_seeds",
    "check_group_disjoint",
    "inner_splits",
]


class CVSpecError(DataError):
    """A cross-validation specification that cannot be parsed, or is out of range for these data.

    A :class:`~featurekit.errors.DataError` (hence a ``ValueError``): e.g. more
    folds than the smallest class has samples. ``rephrase`` (None when the
    message names no class) words it again with the class's name for its code.
    """

    rephrase: Callable[[Sequence[str]], "CVSpecError"] | None = None


class Fold(NamedTuple):
    """One train/test split of a protocol.

    Attributes
    ----------
    repeat : int
        Repeat number (0-based).
    fold : int
        Fold number within the repeat (0-based).
    train_idx : ndarray of int
    test_idx : ndarray of int
    val_idx : ndarray of int or None
        Validation indices (predefined split only; ``None`` elsewhere).
    """

    repeat: int
    fold: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    val_idx: np.ndarray | None = None


def repeat_seeds(random_state: int | None, n_repeats: int) -> list[int]:
    """One integer seed per repeat, derived from ``random_state``.

    ``SeedSequence(random_state).spawn(n_repeats)``: independent streams,
    reproducible for an integer seed; ``None`` draws fresh entropy (not
    reproducible).
    """
    ss = np.random.SeedSequence(random_state)
    return [int(child.generate_state(1)[0]) for child in ss.spawn(n_repeats)]


def check_group_disjoint(groups: Any, a_idx: np.ndarray, b_idx: np.ndarray,
                         what: str = "train and test") -> None:
    """Raise :class:`DataError` if a group has samples in both index sets."""
    g = np.asarray(groups)
    shared = np.intersect1d(g[a_idx], g[b_idx])
    if shared.size:
        raise DataError(
            f"{shared.size} group(s) appear in both {what} (e.g. {shared[:5].tolist()}): "
            "samples of one group (patient) must stay on one side"
        )


@overload
def _n_samples(X: Any, y: Any, groups: Any, needs_y: Literal[True] = True) -> tuple[int, np.ndarray,
                                                                                    np.ndarray | None]: ...


@overload
def _n_samples(X: Any, y: Any, groups: Any, needs_y: bool) -> tuple[int, np.ndarray | None, np.ndarray | None]: ...


def _n_samples(X: Any, y: Any, groups: Any, needs_y: bool = True) -> tuple[int, np.ndarray | None,
                                                                              np.ndarray | None]:
    """``(n, y, groups)`` checked for one sample count; ``y`` is an array unless ``needs_y`` is False."""
    y_arr = None if y is None else np.asarray(y)
    if needs_y and y_arr is None:
        raise DataError("stratified splitting needs y")
    if y_arr is not None:
        if y_arr.ndim == 2 and y_arr.shape[1] == 1:
            y_arr = y_arr[:, 0]
        if y_arr.ndim != 1:
            raise DataError(f"y must be one-dimensional, got shape {y_arr.shape}")
    n = None
    for name, arr in (("X", X), ("y", y_arr), ("groups", groups)):
        if arr is None:
            continue
        k = arr.shape[0] if hasattr(arr, "shape") else len(arr)
        if n is None:
            n = k
        elif k != n:
            raise DataError(f"inconsistent numbers of samples: {name} has {k}, expected {n}")
    if n is None:
        raise DataError("split needs X, y or the split labels")
    g = None
    if groups is not None:
        g = np.asarray(groups)
        if g.ndim != 1:
            raise DataError(f"groups must be one-dimensional, got shape {g.shape}")
        if g.dtype.kind == "f" and np.isnan(g).any():
            raise DataError("groups contain NaN")
        if g.dtype == object and any(v is None for v in g):
            raise DataError("groups contain None")
    if n == 0:
        raise DataError("cannot split zero samples")
    return n, y_arr, g


class _BaseCV:
    """Shared plumbing: sklearn-style params, repr and ``split``."""

    _param_names: tuple[str, ...] = ()

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in self._param_names}

    def set_params(self, **params: Any):
        for k, v in params.items():
            if k not in self._param_names:
                raise CVSpecError(f"unknown parameter {k!r} for {type(self).__name__}")
            setattr(self, k, v)
        self._validate()
        return self

    def _validate(self) -> None:
        pass

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._param_names
                         if k != "split_labels")
        return f"{type(self).__name__}({args})"

    def iter_folds(self, X: Any = None, y: Any = None, groups: Any = None) -> Iterator[Fold]:
        raise NotImplementedError

    def split(self, X: Any = None, y: Any = None, groups: Any = None):
        """Yield ``(train_idx, test_idx)`` pairs (scikit-learn protocol)."""
        for f in self.iter_folds(X, y, groups):
            yield f.train_idx, f.test_idx


def _check_both_sides(y: np.ndarray, train: np.ndarray, test: np.ndarray, what: str, advice: str) -> None:
    """Refuse a train or test part without a sample of some class of ``y``."""
    classes = np.unique(y)
    for side, idx in (("test", test), ("train", train)):
        missing = np.setdiff1d(classes, y[idx])
        if idx.size == 0 or missing.size:
            consequence = ("ROC AUC, sensitivity... would be undefined on it" if side == "test"
                           else "no classifier can learn it")
            raise CVSpecError(
                f"{what} has no {side} sample of class(es) {missing.tolist() or classes.tolist()}, so "
                f"{consequence}; {advice}"
            )


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise CVSpecError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class StratifiedKFoldCV(_BaseCV):
    """Repeated stratified k-fold; stratified *group* k-fold when groups are given.

    Parameters
    ----------
    n_splits : int, default=5
        Folds per repeat (k >= 2).
    n_repeats : int, default=1
        Repeats R, each with its own seed derived from ``random_state``.
    random_state : int or None, default=0
        Master seed (``None``: different splits at every call).

    Notes
    -----
    ``split`` yields ``n_splits·n_repeats`` pairs, repeat by repeat. Within a
    repeat the test folds partition the samples; with ``n_repeats > 1`` the
    splitter is not a partition overall, so scikit-learn's ``cross_val_predict``
    (which needs one) only accepts ``n_repeats=1``; use :meth:`iter_folds` to get
    the repeat index instead.
    """

    _param_names = ("n_splits", "n_repeats", "random_state")

    def __init__(self, n_splits: int = 5, n_repeats: int = 1, random_state: int | None = 0):
        self.n_splits = n_splits
        self.n_repeats = n_repeats
        self.random_state = random_state
        self._validate()

    def _validate(self) -> None:
        _check_int("n_splits", self.n_splits, 2)
        _check_int("n_repeats", self.n_repeats, 1)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Total number of splits, ``n_splits · n_repeats``."""
        return int(self.n_splits) * int(self.n_repeats)

    def iter_folds(self, X: Any = None, y: Any = None, groups: Any = None) -> Iterator[Fold]:
        """Yield :class:`Fold` records (``val_idx`` is None)."""
        n, y_arr, g = _n_samples(X, y, groups)
        k = int(self.n_splits)
        self._check_k(k, y_arr, g)
        dummy = np.zeros((n, 1))
        for r, seed in enumerate(repeat_seeds(self.random_state, int(self.n_repeats))):
            if g is None:
                splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
                it = splitter.split(dummy, y_arr)
            else:
                splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
                it = splitter.split(dummy, y_arr, g)
            try:
                folds = list(it)
            except ValueError as exc:
                raise DataError(f"{self!r}: {exc}") from exc
            for f, (train, test) in enumerate(folds):
                if g is not None:
                    check_group_disjoint(g, train, test)
                yield Fold(r, f, train, test)

    def _check_k(self, k: int, y: np.ndarray, g: np.ndarray | None) -> None:
        """Refuse more folds than the smallest class has samples (grouped: groups)."""
        classes = np.unique(y)
        if classes.size < 2:
            raise CVSpecError(f"stratified k-fold needs two classes in y, got only {classes.tolist()}")
        unit = "sample" if g is None else "group"
        per_class = [int(np.count_nonzero(y == c)) if g is None else int(np.unique(g[y == c]).size)
                     for c in classes]
        k_max = min(per_class)
        if k <= k_max:
            return
        small = classes.tolist()[int(np.argmin(per_class))]
        reps = f"x{self.n_repeats}" if int(self.n_repeats) > 1 else ""

        def message(name) -> str:
            if k_max >= 2:
                advice = f"use at most {k_max} folds (cv {k_max}{reps}), or holdout, or more data"
            else:
                advice = (f"no k-fold can put a {name!r} {unit} in every test fold: add data of that class "
                          "or use a predefined split")
            return (f"{k} stratified folds need at least {k} {unit}s of every class, but class {name!r} has "
                    f"{k_max} {unit}{'s' if k_max != 1 else ''}: {k - k_max} of the {k} test folds would hold "
                    f"none, and ROC AUC, sensitivity... would be undefined there; {advice}")

        error = CVSpecError(message(small))
        if isinstance(small, (int, np.integer)):  # a class code: its name comes from the caller
            error.rephrase = lambda names: CVSpecError(message(names[int(small)]))
        raise error


def _stratified_group_holdout(y: np.ndarray, groups: np.ndarray, test_size: float,
                              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Greedy stratified group holdout (see :class:`HoldoutCV`)."""
    _, g_inv = np.unique(groups, return_inverse=True)
    _, y_inv = np.unique(y, return_inverse=True)
    n_groups = int(g_inv.max()) + 1
    counts = np.zeros((n_groups, int(y_inv.max()) + 1))
    np.add.at(counts, (g_inv, y_inv), 1.0)
    target = test_size * counts.sum(axis=0)
    in_test = np.zeros(n_groups, dtype=bool)
    current = np.zeros(counts.shape[1])
    dist = np.abs(current - target).sum()
    for gi in rng.permutation(n_groups):
        cand = current + counts[gi]
        d = np.abs(cand - target).sum()
        if d < dist:
            in_test[gi] = True
            current, dist = cand, d
    test_mask = in_test[g_inv]
    return np.flatnonzero(~test_mask), np.flatnonzero(test_mask)


class HoldoutCV(_BaseCV):
    """Repeated stratified holdout (grouped when groups are given).

    Parameters
    ----------
    test_size : float, default=0.3
        Fraction of samples in the test set, in (0, 1).
    n_repeats : int, default=30
        Number of independent holdout splits, each with its own seed derived from
        ``random_state``.
    random_state : int or None, default=0

    Notes
    -----
    Without groups each test set has ``ceil(test_size·n)`` samples and each class
    is represented proportionally (scikit-learn's ``StratifiedShuffleSplit``); when
    that proportion rounds a class down to no test (or no training) sample, one of
    its samples is swapped in for one of the most frequent class, so every class
    with at least 2 samples is on both sides (a class with 1 sample raises
    :class:`CVSpecError`). With groups the split is greedy on whole groups, so
    sizes are approximate; a split whose train or test side misses a class raises
    :class:`CVSpecError` (too few groups).
    """

    _param_names = ("test_size", "n_repeats", "random_state")

    def __init__(self, test_size: float = 0.3, n_repeats: int = 30, random_state: int | None = 0):
        self.test_size = test_size
        self.n_repeats = n_repeats
        self.random_state = random_state
        self._validate()

    def _validate(self) -> None:
        ts = self.test_size
        if isinstance(ts, bool) or not isinstance(ts, (float, int, np.floating, np.integer)) \
                or not (0.0 < float(ts) < 1.0):
            raise CVSpecError(f"test_size must be a fraction in (0, 1), got {ts!r}")
        _check_int("n_repeats", self.n_repeats, 1)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of splits, ``n_repeats``."""
        return int(self.n_repeats)

    def iter_folds(self, X: Any = None, y: Any = None, groups: Any = None) -> Iterator[Fold]:
        """Yield one :class:`Fold` per repeat (``fold`` is always 0)."""
        n, y_arr, g = _n_samples(X, y, groups)
        ts = float(self.test_size)
        for r, seed in enumerate(repeat_seeds(self.random_state, int(self.n_repeats))):
            if g is None:
                sss = StratifiedShuffleSplit(n_splits=1, test_size=ts, random_state=seed)
                try:
                    train, test = next(sss.split(np.zeros((n, 1)), y_arr))
                except ValueError as exc:
                    raise CVSpecError(f"{self!r}: {exc}") from exc
                train, test = _both_classes_on_both_sides(y_arr, train, test, np.random.default_rng(seed))
                advice = "every class needs at least 2 samples for a holdout split"
            else:
                train, test = _stratified_group_holdout(y_arr, g, ts, np.random.default_rng(seed))
                check_group_disjoint(g, train, test)
                advice = "too few groups for this test_size"
            _check_both_sides(y_arr, train, test, f"{self!r}: the holdout split of repeat {r}", advice)
            yield Fold(r, 0, np.sort(train), np.sort(test))


def _both_classes_on_both_sides(y: np.ndarray, train: np.ndarray, test: np.ndarray,
                                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Swap samples so that every class with >= 2 samples is in train and in test; sizes kept.

    A class missing on one side gets one of its samples (drawn with ``rng``)
    from the other side, in exchange for one sample of the class most frequent
    on the receiving side. Splits where every class is on both sides are returned
    unchanged.
    """
    train, test = np.array(train), np.array(test)
    for c in np.unique(y):
        for dst, src in ((test, train), (train, test)):
            if np.any(y[dst] == c) or np.count_nonzero(y[src] == c) < 2:
                continue
            values, counts = np.unique(y[dst], return_counts=True)
            donor = values[int(np.argmax(counts))]
            i = rng.choice(np.flatnonzero(y[src] == c))
            j = rng.choice(np.flatnonzero(y[dst] == donor))
            src[i], dst[j] = dst[j], src[i]
    return train, test


_SPLIT_ALIASES = {
    "train": "train", "training": "train", "tr": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val", "va": "val",
    "test": "test", "testing": "test", "te": "test",
}


class PredefinedSplitCV(_BaseCV):
    """A fixed train / validation / test split given per sample.

    Parameters
    ----------
    split_labels : array-like of str, shape (n_samples,), optional
        ``"train"``, ``"val"`` or ``"test"`` per sample (case-insensitive; also
        ``training``/``validation``/``valid``/``dev``/``testing``). May be set
        later with ``set_params(split_labels=...)`` (e.g. once a manifest is read).
    merge_val : bool, default=False
        ``False``: fit on ``train`` only; ``val`` is exposed as
        :attr:`Fold.val_idx` for early stopping or threshold selection when a
        caller asks for it, and is otherwise unused. ``True``: ``val`` samples are
        added to the training indices (``val_idx`` is then empty).

    Notes
    -----
    ``split`` yields a single ``(train_idx, test_idx)``; metrics are reported on
    ``test`` only. With groups, a group in both train (or val) and test raises
    :class:`DataError`; a group shared by train and val only warns (it biases
    early stopping / threshold choice, not the test estimate).
    """

    _param_names = ("split_labels", "merge_val")

    def __init__(self, split_labels: Any = None, merge_val: bool = False):
        self.split_labels = split_labels
        self.merge_val = merge_val

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Always 1."""
        return 1

    def _normalised(self) -> np.ndarray:
        if self.split_labels is None:
            raise DataError(
                "the predefined split has no split labels: pass split_labels (a train/val/test "
                "label per sample, e.g. the manifest's split column)"
            )
        raw = np.asarray(self.split_labels, dtype=object)
        if raw.ndim != 1:
            raise DataError(f"split_labels must be one-dimensional, got shape {raw.shape}")
        out = np.empty(raw.shape[0], dtype=object)
        bad = set()
        for i, v in enumerate(raw):
            key = _SPLIT_ALIASES.get(str(v).strip().lower()) if v is not None else None
            if key is None:
                bad.add(repr(v))
            out[i] = key
        if bad:
            raise DataError(
                f"unknown split label(s) {sorted(bad)[:6]}; expected train, val or test"
            )
        return out

    def iter_folds(self, X: Any = None, y: Any = None, groups: Any = None) -> Iterator[Fold]:
        """Yield the single :class:`Fold` (with ``val_idx``)."""
        labels = self._normalised()
        for name, arr in (("X", X), ("y", y), ("groups", groups)):
            if arr is None:
                continue
            k = arr.shape[0] if hasattr(arr, "shape") else len(arr)
            if k != labels.shape[0]:
                raise DataError(
                    f"split_labels has {labels.shape[0]} entries but {name} has {k} samples"
                )
        train = np.flatnonzero(labels == "train")
        val = np.flatnonzero(labels == "val")
        test = np.flatnonzero(labels == "test")
        if train.size == 0 or test.size == 0:
            raise DataError(
                f"the predefined split needs train and test samples, got {train.size} train, "
                f"{val.size} val, {test.size} test"
            )
        if y is not None:
            _check_both_sides(_n_samples(None, y, None)[1], train, test, "the predefined split",
                              "move samples of that class into the split's test (or train) part")
        if groups is not None:
            g = np.asarray(groups)
            check_group_disjoint(g, train, test, "train and test")
            check_group_disjoint(g, val, test, "val and test")
            shared = np.intersect1d(g[train], g[val])
            if shared.size:
                warnings.warn(
                    f"{shared.size} group(s) appear in both train and val; early stopping or "
                    "threshold selection on val will be optimistic",
                    UserWarning, stacklevel=2,
                )
        if self.merge_val:
            train = np.sort(np.r_[train, val])
            val = np.empty(0, dtype=train.dtype)
        yield Fold(0, 0, train, test, val)


def inner_splits(y, groups=None, k: int = 3, random_state: int | None = 0) -> list | None:
    """Stratified (group) k-fold splits of *training* data for inner CVs.

    Used by nested searches, stacking and the Youden threshold: ``k`` is
    lowered to the smallest class count (and, with ``groups``, the smallest
    number of groups in a class) so every inner fold sees both classes.
    Returns ``None`` when fewer than 2 folds are possible.
    """
    y = np.asarray(y)
    _, counts = np.unique(y, return_counts=True)
    k_eff = int(min(k, counts.min())) if counts.size > 1 else 0
    if groups is not None:
        groups = np.asarray(groups)
        k_eff = min(k_eff, int(min(np.unique(groups[y == c]).size for c in np.unique(y))))
    if k_eff < 2:
        return None
    dummy = np.zeros((y.shape[0], 1))
    if groups is not None:
        return list(StratifiedGroupKFold(k_eff, shuffle=True, random_state=random_state).split(dummy, y, groups))
    return list(StratifiedKFold(k_eff, shuffle=True, random_state=random_state).split(dummy, y))
