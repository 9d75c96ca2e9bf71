"""The HDF5 feature cache: compute every feature once, reuse it everywhere.

One HDF5 file per dataset (default ``cache/<dataset>-<fingerprint12>.h5``;
``$FEATUREKIT_CACHE`` or ``--cache FILE`` choose another). Layout, readable
with plain h5py::

    /                    attrs: featurekit_cache (format version), fingerprint,
                         dataset, source, n, class_names (JSON), positive, created
    /ids                 (N,) UTF-8 strings, dataset order
    /labels              (N,) int64, index into class_names (-1 = unlabelled)
    /groups              (N,) strings, when the dataset has groups
    /features/<key>/<entry_id>        (N, D) float32 (or float16)
    /feature_names/<key>/<entry_id>   (D,) strings, when the extractor names them

``key`` says what the features are (``vgg16/block4_pool``, ``gabor``); the
``entry_id`` (``v`` + 16 hex digits) is a hash of every parameter that changes
the values (model, layer, pooling, weights and their sha256, input size,
preprocessing; for handcrafted features the estimator's parameters). A key can
hold several entries (e.g. ImageNet and random weights); each entry carries
its parameters as attributes: ``model``, ``layer``, ``pool``, ``weights``,
``input_size``, ``preprocessing`` ..., ``params`` (the JSON the id hashes),
``featurekit_version``, ``torch_version``, ``created``.

Crash safety. The HDF5 file is never modified in place: a writer journals each
finished batch as an ``.npy`` file under ``<file>.partial/<entry_id>/``
(written to a temporary name, then renamed: a batch file is whole or absent),
and when every row of the run's entries is journaled it builds the new file
next to the old one and ``os.replace``-s it in one atomic step. A run killed at
any moment (SIGKILL included) leaves the old file intact and opening, plus the
batches it finished; the next run recomputes only the missing batches, on the
same batch grid, so its results are identical to an uninterrupted run.
Writers take an exclusive ``flock`` on ``<file>.lock``: a second writer waits
up to ``lock_timeout`` seconds, then fails with :class:`CacheLockedError`.
Readers need no lock: they see the last committed file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import h5py
import numpy as np

from featurekit import __version__
from featurekit.errors import CacheError, CacheLockedError
from featurekit.specs import Weights

FORMAT_VERSION = 1
_STR = h5py.string_dtype("utf-8")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def default_cache_dir() -> Path:
    return Path(os.environ.get("FEATUREKIT_CACHE", "cache"))


def default_cache_path(dataset) -> Path:
    """``cache/<name>-<fingerprint[:12]>.h5``: different data never share a file."""
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in (dataset.name or "dataset"))
    return default_cache_dir() / f"{name}-{dataset.fingerprint()[:12]}.h5"


@dataclass(frozen=True)
class EntrySpec:
    """What a writer is asked to store: one (N, dim) feature matrix."""

    key: str
    params: dict
    dim: int
    dtype: str = "float32"
    attrs: dict = field(default_factory=dict)
    feature_names: Sequence[str] | None = None

    @property
    def entry_id(self) -> str:
        blob = canonical_json({"key": self.key, "dtype": self.dtype, **self.params})
        return "v" + hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def h5path(self) -> str:
        return f"features/{self.key}/{self.entry_id}"


@dataclass(frozen=True)
class Entry:
    """A committed entry as found in a cache file."""

    key: str
    entry_id: str
    shape: tuple[int, ...]
    dtype: str
    attrs: dict

    @property
    def params(self) -> dict:
        return json.loads(self.attrs.get("params", "{}"))

    def matches(self, **match) -> bool:
        """Whether the entry's parameters equal ``match`` (``weights`` as a choice: ``"none"`` is seed 0)."""
        params = self.params
        for name, want in match.items():
            have = params.get(name, self.attrs.get(name))
            if want is None:
                continue
            if name == "weights":
                if not Weights.parse(want).matches(str(have)):
                    return False
            elif str(have) != str(want):
                return False
        return True

    def describe(self) -> str:
        p = self.params
        shown = {k: p[k] for k in ("weights", "input_size", "pool") if k in p}
        extra = " ".join(f"{k}={v}" for k, v in shown.items())
        return f"{self.key} [{self.entry_id}] {self.shape[0]}x{self.shape[1]} {self.dtype} {extra}".rstrip()


@dataclass(frozen=True)
class DatasetMeta:
    """What binds a cache file to one dataset."""

    ids: Sequence[str]
    labels: np.ndarray
    class_names: Sequence[str]
    fingerprint: str
    name: str = ""
    source: str = ""
    positive: str | None = None
    groups: np.ndarray | None = None

    @classmethod
    def from_dataset(cls, ds) -> "DatasetMeta":
        return cls(list(ds.ids), np.asarray(ds.labels, dtype=np.int64), list(ds.class_names),
                   ds.fingerprint(), ds.name or "", str(ds.source or ""), ds.positive,
                   None if ds.groups is None else np.asarray(ds.groups).astype(str))


class FeatureCache:
    """A feature cache file: read arrays by key; write through :meth:`writer`.

    Examples
    --------
    >>> cache = FeatureCache("cache/busi-0123456789ab.h5")      # doctest: +SKIP
    >>> X = cache.get("vgg16/block4_pool")                      # doctest: +SKIP
    >>> X = cache.get("vgg16/block4_pool", weights="imagenet:IMAGENET1K_V1", pool="gap")  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.path)!r})"

    # ------------------------------------------------------------ reading
    @property
    def journal_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".partial")

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def exists(self) -> bool:
        return self.path.is_file()

    @contextlib.contextmanager
    def open(self) -> Iterator[h5py.File]:
        """Open the committed file read-only (h5py.File)."""
        if not self.path.is_file():
            raise CacheError(f"no feature cache at {self.path}")
        try:
            f = h5py.File(self.path, "r", locking=False)
        except OSError as exc:
            raise CacheError(f"{self.path} is not a readable HDF5 feature cache: {exc}") from exc
        try:
            if "featurekit_cache" not in f.attrs:
                raise CacheError(f"{self.path} is an HDF5 file but not a featurekit cache")
            yield f
        finally:
            f.close()

    @property
    def ids(self) -> list[str]:
        with self.open() as f:
            return [s.decode() if isinstance(s, bytes) else str(s) for s in f["ids"][()]]

    @property
    def labels(self) -> np.ndarray:
        with self.open() as f:
            return f["labels"][()]

    @property
    def groups(self) -> np.ndarray | None:
        with self.open() as f:
            return f["groups"].asstr()[()] if "groups" in f else None

    @property
    def meta(self) -> dict:
        with self.open() as f:
            attrs = dict(f.attrs)
        attrs["class_names"] = json.loads(attrs.get("class_names", "[]"))
        return attrs

    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    def entries(self, key: str | None = None) -> list[Entry]:
        out = []
        with self.open() as f:
            if "features" not in f:
                return out

            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    k, _, eid = name.rpartition("/")
                    if key is None or k == key:
                        out.append(Entry(k, eid, tuple(obj.shape), str(obj.dtype), dict(obj.attrs)))

            f["features"].visititems(visit)
        return sorted(out, key=lambda e: (e.key, e.entry_id))

    def keys(self) -> list[str]:
        return sorted({e.key for e in self.entries()})

    def find(self, key: str, **match) -> Entry:
        """The one entry of ``key`` whose parameters match; clear errors otherwise."""
        candidates = self.entries(key)
        if not candidates:
            known = ", ".join(self.keys()) or "none"
            raise CacheError(f"no features {key!r} in {self.path}; keys present: {known}")
        hits = [e for e in candidates if e.matches(**match)]
        if len(hits) == 1:
            return hits[0]
        listing = "; ".join(e.describe() for e in (hits or candidates))
        if not hits:
            raise CacheError(f"no entry of {key!r} in {self.path} matches {match}; entries: {listing}")
        raise CacheError(
            f"{len(hits)} entries of {key!r} in {self.path} match; choose one with parameters "
            f"(e.g. weights=..., pool=..., input_size=...) or its entry id: {listing}"
        )

    def get(self, key: str, ids: Iterable[str] | None = None, entry_id: str | None = None,
            **match) -> np.ndarray:
        """Features of ``key`` as an (N, D) array, rows in ``ids`` order when given."""
        entry = self._entry(key, entry_id, match)
        with self.open() as f:
            data = f[f"features/{entry.key}/{entry.entry_id}"]
            if ids is None:
                return data[()]
            # h5py fancy indexing wants increasing, unique rows
            unique, inverse = np.unique(self.rows(ids), return_inverse=True)
            return data[unique][inverse] if len(unique) else np.empty((0, data.shape[1]), data.dtype)

    def feature_names(self, key: str, entry_id: str | None = None, **match) -> list[str] | None:
        entry = self._entry(key, entry_id, match)
        with self.open() as f:
            path = f"feature_names/{entry.key}/{entry.entry_id}"
            return list(f[path].asstr()[()]) if path in f else None

    def _entry(self, key, entry_id, match) -> Entry:
        if entry_id is not None:
            for e in self.entries(key):
                if e.entry_id == entry_id:
                    return e
            raise CacheError(f"no entry {entry_id} of {key!r} in {self.path}")
        return self.find(key, **match)

    def rows(self, ids: Iterable[str]) -> np.ndarray:
        index = {s: i for i, s in enumerate(self.ids)}
        ids = list(ids)
        missing = [s for s in ids if s not in index]
        if missing:
            raise CacheError(f"{len(missing)} ids are not in {self.path}, e.g. {missing[:3]}")
        return np.fromiter((index[s] for s in ids), dtype=np.int64, count=len(ids))

    def pending(self) -> dict[str, int]:
        """Rows already journaled per entry id by an unfinished (e.g. killed) run."""
        out = {}
        if self.journal_dir.is_dir():
            for d in sorted(self.journal_dir.iterdir()):
                if d.is_dir():
                    out[d.name] = int(sum(stop - start for start, stop in _journal_ranges(d)))
        return out

    def info(self) -> dict:
        meta = self.meta
        return {
            "path": str(self.path),
            "size_bytes": self.path.stat().st_size,
            "dataset": meta.get("dataset"),
            "source": meta.get("source"),
            "fingerprint": meta.get("fingerprint"),
            "n": int(meta.get("n", 0)),
            "class_names": meta.get("class_names"),
            "created": meta.get("created"),
            "entries": [
                {"key": e.key, "entry_id": e.entry_id, "shape": list(e.shape), "dtype": e.dtype,
                 **{k: e.attrs[k] for k in ("model", "layer", "pool", "weights", "input_size") if k in e.attrs}}
                for e in self.entries()
            ],
            "pending_rows": self.pending(),
        }

    # ------------------------------------------------------------ writing
    def writer(self, dataset: DatasetMeta, lock_timeout: float | None = 600.0) -> "CacheWriter":
        """A context manager that holds the write lock; see :class:`CacheWriter`."""
        return CacheWriter(self, dataset, lock_timeout)

    def remove(self, key: str | None = None, entry_id: str | None = None, lock_timeout: float | None = 60.0,
               **match) -> int:
        """Remove entries (or, with no key, the whole file and its journal); returns the count."""
        with _FileLock(self.lock_path, lock_timeout, self.path):
            if key is None and entry_id is None:
                n = len(self.entries()) if self.exists() else 0
                self.path.unlink(missing_ok=True)
                shutil.rmtree(self.journal_dir, ignore_errors=True)
                return n
            doomed = [e for e in self.entries(key)
                      if (entry_id is None or e.entry_id == entry_id) and e.matches(**match)]
            if doomed:
                _rewrite(self.path, drop={(e.key, e.entry_id) for e in doomed})
            return len(doomed)


class CacheWriter:
    """Journaled writer of one run's entries (hold it in a ``with`` block).

    Usage: ``plan(specs, n, batch_size)`` returns the grid batches still to
    compute; ``write(start, stop, {entry_id: rows})`` journals one; ``commit()``
    moves every complete entry into the HDF5 file atomically.
    """

    def __init__(self, cache: FeatureCache, dataset: DatasetMeta, lock_timeout: float | None):
        self.cache = cache
        self.dataset = dataset
        self._lock = _FileLock(cache.lock_path, lock_timeout, cache.path)
        self._specs: dict[str, EntrySpec] = {}

    def __enter__(self) -> "CacheWriter":
        self.cache.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            self._bind_file()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()

    def _bind_file(self) -> None:
        ds = self.dataset
        # Only the lock holder writes temporary files: any left are debris of a killed writer.
        for debris in self.cache.path.parent.glob(f".{self.cache.path.name}.tmp-*"):
            debris.unlink(missing_ok=True)
        if self.cache.exists():
            meta = self.cache.meta
            if meta.get("fingerprint") != ds.fingerprint:
                raise CacheError(
                    f"cache {self.cache.path} belongs to another dataset (fingerprint "
                    f"{str(meta.get('fingerprint'))[:12]}, this data has {ds.fingerprint[:12]}): "
                    "choose another --cache file or remove it with `featurekit cache rm`"
                )
            return
        tmp = _tmp_name(self.cache.path)
        with h5py.File(tmp, "w") as f:
            f.attrs.update({
                "featurekit_cache": FORMAT_VERSION, "fingerprint": ds.fingerprint, "dataset": ds.name,
                "source": ds.source, "n": len(ds.ids), "class_names": json.dumps(list(ds.class_names)),
                "positive": ds.positive or "", "created": _now(), "featurekit_version": __version__,
            })
            f.create_dataset("ids", data=np.asarray(list(ds.ids), dtype=object), dtype=_STR)
            f.create_dataset("labels", data=np.asarray(ds.labels, dtype=np.int64))
            if ds.groups is not None:
                f.create_dataset("groups", data=np.asarray(ds.groups, dtype=object), dtype=_STR)
        _publish(tmp, self.cache.path)

    def missing(self, specs: Iterable[EntrySpec]) -> list[EntrySpec]:
        """The specs not yet committed to the file."""
        have = {(e.key, e.entry_id) for e in self.cache.entries()}
        return [s for s in specs if (s.key, s.entry_id) not in have]

    def plan(self, specs: Sequence[EntrySpec], batch_size: int) -> list[tuple[int, int]]:
        """Grid batches ``[k*B, (k+1)*B)`` that some spec still lacks in the journal."""
        n = len(self.dataset.ids)
        self._specs.update({s.entry_id: s for s in specs})
        for spec in specs:
            self._prepare_journal(spec)
        todo = []
        done = {s.entry_id: self._done_rows(s) for s in specs}
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            if any(not d[start:stop].all() for d in done.values()):
                todo.append((start, stop))
        return todo

    def _prepare_journal(self, spec: EntrySpec) -> None:
        """Create the entry's journal folder, clear debris of a killed write, describe the entry."""
        d = self.cache.journal_dir / spec.entry_id
        d.mkdir(parents=True, exist_ok=True)
        for tmp in d.glob(".*tmp*"):
            tmp.unlink(missing_ok=True)
        (d / "spec.json").write_text(canonical_json({"key": spec.key, "params": spec.params, "dim": spec.dim}))

    def _done_rows(self, spec: EntrySpec) -> np.ndarray:
        """Rows of ``spec`` already journaled (reads file names only)."""
        n = len(self.dataset.ids)
        d = self.cache.journal_dir / spec.entry_id
        done = np.zeros(n, dtype=bool)
        if d.is_dir():
            for start, stop in _journal_ranges(d):
                if stop <= n:
                    done[start:stop] = True
        return done

    def write(self, start: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        """Journal rows ``start:stop`` of each entry (atomic per file)."""
        for entry_id, rows in arrays.items():
            spec = self._specs[entry_id]
            rows = np.asarray(rows, dtype=spec.dtype)
            if rows.shape != (stop - start, spec.dim):
                raise CacheError(f"{spec.key}: batch {start}:{stop} has shape {rows.shape}, "
                                 f"expected {(stop - start, spec.dim)}")
            if not np.isfinite(rows).all():
                raise CacheError(f"{spec.key}: non-finite values in rows {start}:{stop}")
            d = self.cache.journal_dir / entry_id
            final = d / f"{start:010d}-{stop:010d}.npy"
            tmp = d / f".{final.name}.tmp-{os.getpid()}"
            with open(tmp, "wb") as fh:
                np.save(fh, rows)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)

    def commit(self, specs: Sequence[EntrySpec] | None = None) -> list[EntrySpec]:
        """Move complete entries from the journal into the file (one atomic replace)."""
        specs = list(specs if specs is not None else self._specs.values())
        specs = [s for s in self.missing(specs) if self._done_rows(s).all()]
        if not specs:
            return []
        n = len(self.dataset.ids)
        tmp = _tmp_name(self.cache.path)
        shutil.copyfile(self.cache.path, tmp)
        try:
            with h5py.File(tmp, "a") as f:
                for spec in specs:
                    self._store(f, spec, n)
            _publish(tmp, self.cache.path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        for spec in specs:
            shutil.rmtree(self.cache.journal_dir / spec.entry_id, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.cache.journal_dir.rmdir()
        return specs

    def _store(self, f: h5py.File, spec: EntrySpec, n: int) -> None:
        row_bytes = max(1, spec.dim * np.dtype(spec.dtype).itemsize)
        chunk_rows = int(max(1, min(n, (1 << 20) // row_bytes)))
        data = f.create_dataset(spec.h5path, shape=(n, spec.dim), dtype=spec.dtype,
                                chunks=(chunk_rows, spec.dim) if spec.dim else None)
        for start, stop in _journal_ranges(self.cache.journal_dir / spec.entry_id):
            if stop <= n:
                data[start:stop] = np.load(self.cache.journal_dir / spec.entry_id / f"{start:010d}-{stop:010d}.npy")
        data.attrs.update({k: _attr_value(v) for k, v in {**spec.params, **spec.attrs}.items()})
        data.attrs.update({"key": spec.key, "params": canonical_json(spec.params),
                           "featurekit_version": __version__, "created": _now()})
        if spec.feature_names is not None:
            f.create_dataset(f"feature_names/{spec.key}/{spec.entry_id}",
                             data=np.asarray(list(spec.feature_names), dtype=object), dtype=_STR)


def _attr_value(v):
    """HDF5-storable attribute: numbers as they are, str subclasses as str, the rest as JSON."""
    if isinstance(v, str):
        return str(v)
    if isinstance(v, (bool, int, float, np.integer, np.floating)):
        return v
    return canonical_json(v)


def _journal_ranges(d: Path) -> list[tuple[int, int]]:
    out = []
    for p in d.glob("*.npy"):
        a, sep, b = p.stem.partition("-")
        if sep and a.isdigit() and b.isdigit():
            out.append((int(a), int(b)))
    return sorted(out)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")


def _publish(tmp: Path, path: Path) -> None:
    """fsync ``tmp`` and atomically rename it over ``path``."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _rewrite(path: Path, drop: set[tuple[str, str]]) -> None:
    """Copy a cache without some entries (HDF5 never shrinks in place)."""
    tmp = _tmp_name(path)
    try:
        with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
            dst.attrs.update(dict(src.attrs))
            for name in src:
                if name not in ("features", "feature_names"):
                    src.copy(src[name], dst, name)
            for root in ("features", "feature_names"):
                if root not in src:
                    continue

                def visit(name, obj, root=root):
                    if isinstance(obj, h5py.Dataset):
                        key, _, eid = name.rpartition("/")
                        if (key, eid) not in drop:
                            dst.require_group(f"{root}/{key}")
                            src.copy(obj, dst[f"{root}/{key}"], eid)

                src[root].visititems(visit)
        _publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class _FileLock:
    """Exclusive advisory lock (``flock``) with a timeout; records the holder's pid."""

    def __init__(self, path: Path, timeout: float | None, target: Path):
        self.path, self.timeout, self.target = Path(path), timeout, target
        self._fh = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    fh.close()
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "unknown"
                    fh.close()
                    raise CacheLockedError(
                        f"cache {self.target} is being written by another process (pid {holder}); "
                        f"gave up after {self.timeout:g} s: wait for it to finish or raise --lock-timeout"
                    ) from None
                time.sleep(0.1)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
