"""Helpers of the evaluation tests: synthetic feature caches written through the real cache writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featurekit.cache import DatasetMeta, EntrySpec, FeatureCache


def make_cache(path, features: dict, *, n: int | None = None, labels=None, groups=None,
               class_names=("benign", "malignant"), positive="malignant", ids=None,
               fingerprint: str = "f" * 64) -> FeatureCache:
    """Write a feature cache.

    ``features`` maps a key to an ``(N, D)`` array, or to ``(array, params)`` or
    ``(array, params, feature_names)``; a key containing ``/`` is given CNN
    parameters (family cnn, model, layer, layer_index, weights) unless ``params`` says otherwise.
    """
    first = next(iter(features.values()))
    arr0 = first[0] if isinstance(first, tuple) else first
    n = n or arr0.shape[0]
    ids = list(ids) if ids is not None else [f"s{i:03d}" for i in range(n)]
    labels = np.asarray(labels if labels is not None else np.arange(n) % 2, dtype=np.int64)
    meta = DatasetMeta(ids, labels, list(class_names), fingerprint, "synthetic", "memory:synthetic", positive,
                       None if groups is None else np.asarray(groups).astype(str))
    specs, arrays = [], {}
    for i, (key, value) in enumerate(features.items()):
        names = None
        if isinstance(value, tuple):
            arr, params = value[0], dict(value[1])
            names = value[2] if len(value) > 2 else None
        else:
            arr, params = value, {}
        arr = np.asarray(arr, dtype=np.float32)
        if "/" in key and "family" not in params:
            model, layer = key.split("/", 1)
            params = {"family": "cnn", "model": model, "layer": layer, "layer_index": i + 1,
                      "weights": "none:seed=0", "weights_sha256": "0" * 64, "pool": "gap",
                      "input_size": 32, **params}
        elif "family" not in params:
            params = {"family": key, "estimator": key.title(), **params}
        spec = EntrySpec(key=key, params=params, dim=arr.shape[1], feature_names=names)
        specs.append(spec)
        arrays[spec.entry_id] = arr
    cache = FeatureCache(Path(path))
    with cache.writer(meta) as w:
        todo = w.missing(specs)
        w.plan(todo, n)
        w.write(0, n, {s.entry_id: arrays[s.entry_id] for s in todo})
        w.commit(todo)
    return cache


def separable(n: int, d: int, shift: float, seed: int, labels=None) -> np.ndarray:
    """Gaussian features whose first columns are shifted by ``shift`` for label 1."""
    rng = np.random.default_rng(seed)
    y = np.asarray(labels if labels is not None else np.arange(n) % 2)
    X = rng.normal(size=(n, d))
    X[y == 1, : max(1, d // 4)] += shift
    return X


# --------------------------------------------------------------------------- spies
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin  # noqa: E402

#: tag -> list of ("fit" | "predict", ids) events (module level: sklearn.clone deep-copies params)
EVENTS: dict[str, list] = {}


def _ids(X) -> list[str]:
    return [str(v) for v in np.asarray(X, dtype=object).reshape(-1)]


class IdRecorder(TransformerMixin, BaseEstimator):
    """Pass-through transformer that records the ids it is fitted on."""

    def __init__(self, tag: str = "default"):
        self.tag = tag

    def fit(self, X, y=None):
        EVENTS.setdefault(self.tag, []).append(("fit", _ids(X)))
        return self

    def transform(self, X):
        return X


class LookupClassifier(ClassifierMixin, BaseEstimator):
    """Scores every id with a fixed table, whatever it was trained on; records fit/predict ids."""

    def __init__(self, table: dict | None = None, tag: str = "default"):
        self.table = table
        self.tag = tag

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        EVENTS.setdefault(self.tag, []).append(("fit", _ids(X)))
        return self

    def predict_proba(self, X):
        ids = _ids(X)
        EVENTS.setdefault(self.tag, []).append(("predict", ids))
        p = np.array([self.table[i] for i in ids], dtype=float)
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
