"""Cached features as a scikit-learn transformer.

:class:`CachedFeatures` turns sample ids into feature rows read from the HDF5
feature cache (:class:`featurekit.cache.FeatureCache`). Put it first in a
:class:`~sklearn.pipeline.Pipeline` and the pipeline's ``X`` becomes the array
of sample ids: cross-validation splits ids, every step after it (scaler, PCA,
selection, classifier) is fitted on the training ids of the fold only, and the
activations themselves are never recomputed -- the cache is the only place
they are made.

>>> from sklearn.pipeline import make_pipeline                       # doctest: +SKIP
>>> from sklearn.preprocessing import StandardScaler
>>> from sklearn.linear_model import LogisticRegression
>>> pipe = make_pipeline(CachedFeatures("vgg16/block4_pool", cache="cache/busi.h5"),
...                      StandardScaler(), LogisticRegression())
>>> pipe.fit(np.array(train_ids), y_train).predict_proba(np.array(test_ids))

Reading is memoised per process: the whole matrix of one cache entry is read
once (keyed by file path, size, modification time and entry id) and rows are
taken from memory afterwards, so a 5x3 cross-validation does not reopen the
file 30 times; which entry a transformer names (its id, width and dataset) is
resolved once per file version too. A cache file that is rewritten (new
mtime) is read again.

Rows holding NaN or infinite values are found when the entry is read; asking
for one of them is a :class:`~featurekit.errors.DataError` naming the feature
set, the cache file and the ids -- never a scaler or classifier traceback, and
never numbers computed from them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from featurekit.cache import FeatureCache
from featurekit.data.images_of import as_ids
from featurekit.errors import CacheError, DataError

__all__ = ["CachedFeatures", "as_ids", "load_entry"]


@functools.lru_cache(maxsize=64)
def _load(path: str, size: int, mtime_ns: int, entry_id: str, key: str):
    cache = FeatureCache(path)
    data = cache.get(key, entry_id=entry_id)
    ids = cache.ids
    index = {s: i for i, s in enumerate(ids)}
    data.flags.writeable = False
    bad = np.flatnonzero(~np.isfinite(data).all(axis=1)) if data.dtype.kind == "f" else np.zeros(0, np.int64)
    return data, index, bad


@functools.lru_cache(maxsize=64)
def _names(path: str, size: int, mtime_ns: int, entry_id: str, key: str) -> tuple | None:
    names = FeatureCache(path).feature_names(key, entry_id=entry_id)
    return None if names is None else tuple(names)


def _file_version(cache: FeatureCache | str | os.PathLike) -> tuple[str, int, int]:
    """The cache file's identity for the memos: resolved path, size, modification time."""
    path = Path(cache.path if isinstance(cache, FeatureCache) else cache)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CacheError(f"no feature cache at {path}") from None
    return str(path.resolve()), st.st_size, st.st_mtime_ns


_RESOLVED: dict = {}


def _resolution(cache: FeatureCache, key: str, entry_id: str | None, match: dict | None) -> tuple[str, int, str]:
    """``(entry_id, dim, dataset fingerprint)`` of the entry a :class:`CachedFeatures` names (memoised per file
    version, as the rows are: a cross-validation resolves the same entry in every fit, and walking the cache's
    metadata costs more than a small fit)."""
    memo_key = (_file_version(cache), key, entry_id, repr(sorted((match or {}).items())))
    hit = _RESOLVED.get(memo_key)
    if hit is None:
        entry = cache.entry(key, entry_id) if entry_id is not None else cache.find(key, **(match or {}))
        dim = int(entry.shape[1]) if len(entry.shape) > 1 else 1
        hit = (entry.entry_id, dim, str(cache.meta.get("fingerprint", "")))
        if len(_RESOLVED) >= 256:
            _RESOLVED.clear()
        _RESOLVED[memo_key] = hit
    return hit


def entry_feature_names(cache: FeatureCache | str | os.PathLike, key: str, entry_id: str) -> tuple | None:
    """The feature names of one entry (memoised per file version: a 162k-name Haar entry is read once)."""
    return _names(*_file_version(cache), entry_id, key)


def load_entry(cache: FeatureCache | str | os.PathLike, key: str, entry_id: str):
    """The full matrix of one entry and an ``id -> row`` index (memoised).

    Returns
    -------
    data : ndarray (read-only), shape (N, D)
    index : dict of str to int
    bad : ndarray of int
        Rows holding NaN or infinite values.
    """
    return _load(*_file_version(cache), entry_id, key)


class CachedFeatures(TransformerMixin, BaseEstimator):
    """Rows of a feature-cache entry for the sample ids in ``X``.

    Parameters
    ----------
    key : str
        Feature key in the cache, e.g. ``"vgg16/block4_pool"``, ``"gabor"``.
    cache : path or FeatureCache
        The cache file. A relative path is made absolute by :meth:`fit`, so a
        fitted (pickled, cloned after fitting) pipeline finds its cache from any
        working directory.
    entry_id : str, optional
        The entry of ``key`` to read (when the key holds several, e.g.
        ImageNet and random weights); otherwise ``match`` must select exactly one.
    match : dict, optional
        Parameters the entry must have (``weights``, ``pool``, ``input_size``...),
        as in :meth:`FeatureCache.find`, e.g. ``match={"pool": "gap"}``.
    dtype : str, default="float64"
        dtype of the returned matrix.

    Attributes
    ----------
    cache_path_ : str
        Absolute path of the cache file (what :meth:`transform` reads).
    entry_id_ : str
        The resolved entry.
    feature_names_out_ : ndarray of str
        The cache's feature names, or ``<key>_0 .. <key>_{D-1}``.
    n_features_out_ : int
    n_features_in_ : int
        Always 1 (the id column).
    fingerprint_ : str
        Fingerprint of the dataset the cache belongs to.

    Notes
    -----
    Nothing is learnt from the data: ``fit`` only validates the parameters,
    resolves the entry and checks that the training ids are in the cache, so
    putting this transformer inside a cross-validation loop cannot leak.
    ``__init__`` and ``set_params`` store the parameters untouched; a bad value
    is a :class:`~featurekit.errors.DataError` from ``fit``. ``transform``
    returns the rows in the order of the given ids (duplicates allowed, e.g.
    after oversampling). Unknown ids raise :class:`~featurekit.errors.CacheError`.
    """

    def __init__(self, key: str, cache=None, *, entry_id: str | None = None,
                 match: dict | None = None, dtype: str = "float64"):
        self.key = key
        self.cache = cache
        self.entry_id = entry_id
        self.match = match
        self.dtype = dtype

    # ------------------------------------------------------------------ helpers
    def _check_params(self) -> None:
        """Every parameter checked (at fit: scikit-learn's rule, nothing is validated in ``__init__``)."""
        name = f"CachedFeatures({self.key!r})"
        if not isinstance(self.key, str) or not self.key:
            raise DataError(f"CachedFeatures: key must be a feature key such as 'gabor', got {self.key!r}")
        if self.cache is None:
            raise CacheError(f"{name} needs cache=PATH")
        if not isinstance(self.cache, (FeatureCache, str, os.PathLike)):
            raise DataError(f"{name}: cache must be a path or a FeatureCache, got {type(self.cache).__name__}")
        if self.entry_id is not None and not isinstance(self.entry_id, str):
            raise DataError(f"{name}: entry_id must be a string, got {self.entry_id!r}")
        if self.match is not None and not (isinstance(self.match, Mapping)
                                           and all(isinstance(k, str) for k in self.match)):
            raise DataError(f"{name}: match must be a dict of entry parameters, e.g. {{'pool': 'gap'}}; "
                            f"got {self.match!r}")
        try:
            dtype = np.dtype(self.dtype)
        except (TypeError, ValueError):
            dtype = None
        if dtype is None or dtype.kind != "f":
            raise DataError(f"{name}: dtype must be a floating-point dtype such as 'float64', got {self.dtype!r}")

    def _cache(self) -> FeatureCache:
        """The cache: the absolute path fixed at fit once fitted, the ``cache`` parameter until then."""
        path = getattr(self, "cache_path_", None)
        if path is not None:
            return FeatureCache(path)
        if self.cache is None:
            raise CacheError(f"CachedFeatures({self.key!r}) needs cache=PATH")
        return self.cache if isinstance(self.cache, FeatureCache) else FeatureCache(self.cache)

    def _resolved(self) -> tuple[str, int, str]:
        """``(entry_id, dim, dataset fingerprint)`` of the entry this transformer names."""
        return _resolution(self._cache(), self.key, self.entry_id, self.match)

    def _rows(self, X) -> np.ndarray:
        ids = as_ids(X)
        data, index, bad = load_entry(self._cache(), self.key, self.entry_id_)
        try:
            rows = np.fromiter((index[s] for s in ids), dtype=np.int64, count=ids.shape[0])
        except KeyError:
            missing = [s for s in ids if s not in index]
            raise CacheError(
                f"{len(missing)} sample id(s) are not in {self._cache().path} "
                f"(features {self.key!r}), e.g. {missing[:3]}"
            ) from None
        if bad.size:
            hit = np.isin(rows, bad)
            if hit.any():
                where = sorted(set(ids[hit].tolist()))
                raise DataError(
                    f"features {self.key!r} (entry {self.entry_id_}) in {self._cache().path} hold NaN or "
                    f"infinite values in {len(where)} of the rows asked for: id(s) {', '.join(where[:5])}"
                    f"{' ...' if len(where) > 5 else ''}; drop these images, or remove the entry to recompute "
                    f"it (featurekit cache rm {self._cache().path} --key {self.key} --entry {self.entry_id_})")
        return data[rows].astype(self.dtype, copy=True)

    # ------------------------------------------------------------------ sklearn API
    def fit(self, X, y=None):
        """Check the parameters, resolve the cache entry and check that every id of ``X`` is in the cache.

        Parameters
        ----------
        X : array-like of str, shape (n,) or (n, 1)
            Sample ids.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        cache = self.cache.path if isinstance(self.cache, FeatureCache) else self.cache
        self.cache_path_ = os.path.abspath(os.fspath(cache))
        self.entry_id_, dim, fingerprint = self._resolved()
        names = entry_feature_names(self.cache_path_, self.key, self.entry_id_)
        if not names or len(names) != dim:
            names = [f"{self.key}_{i}" for i in range(dim)]
        self.feature_names_out_ = np.asarray(names, dtype=object)
        self.n_features_out_ = dim
        self.n_features_in_ = 1
        self.fingerprint_ = fingerprint
        self._rows(X)  # fail early on unknown ids
        return self

    def transform(self, X) -> np.ndarray:
        """Cached feature rows of the ids in ``X`` (in that order).

        Returns
        -------
        ndarray of shape (n_samples, n_features_out_)
        """
        check_is_fitted(self, "entry_id_")
        return self._rows(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Feature names of the entry (from the cache, or ``<key>_i``)."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = True
        tags.target_tags.required = False
        return tags
