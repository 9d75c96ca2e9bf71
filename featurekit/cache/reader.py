"""Reading a feature cache: :class:`FeatureCache`, checked on every read path.

A :class:`FeatureCache` reads the file's description once into a
:class:`~featurekit.cache.snapshot.Snapshot` and keeps it while the file is
unchanged (same inode, size and mtime), so the properties do not reopen the
file; damaged entries are reported in :meth:`FeatureCache.damaged` and the
others stay readable. Every read of an entry checks that it was written for
the file's rows (``rows_sha256``) and, the first time the entry is read in a
process (per file version: inode, size, mtime), its ``sha256``: a full read
hashes what it read, a read of some rows first checks the whole entry.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import h5py
import numpy as np

from featurekit.cache.entries import DatasetMeta, Entry, EntrySpec
from featurekit.cache.layout import array_digest, dataset_blocks, read_strings
from featurekit.cache.snapshot import Snapshot, bound, h5open, load_snapshot, snap_skipped, stat_key
from featurekit.errors import CacheError

__all__ = ["FeatureCache", "default_cache_dir", "default_cache_path"]

#: (resolved path, inode, size, mtime_ns, entry_id) of entries whose sha256 was checked in this process.
_VERIFIED: set[tuple] = set()


def default_cache_dir() -> Path:
    return Path(os.environ.get("FEATUREKIT_CACHE", "cache"))


def cache_file_name(name: str, fingerprint: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in (name or "dataset"))
    return f"{safe}-{fingerprint[:12]}.h5"


def default_cache_path(dataset) -> Path:
    """``cache/<name>-<fingerprint[:12]>.h5``: different data never share a file."""
    return default_cache_dir() / cache_file_name(dataset.name, dataset.fingerprint())


class FeatureCache:
    """A feature cache file: read arrays by key; write through :meth:`writer`.

    Examples
    --------
    >>> cache = FeatureCache("cache/busi-0123456789ab.h5")      # doctest: +SKIP
    >>> X = cache.get("vgg16/block4_pool")                      # doctest: +SKIP
    >>> X = cache.get("vgg16/block4_pool", weights="imagenet:IMAGENET1K_V1", pool="gap")  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        # a link is the file it names: written through, locked and journaled beside its target
        self.path = Path(os.path.realpath(path)) if path.is_symlink() else path
        self._snap: Snapshot | None = None

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.path)!r})"

    # ------------------------------------------------------------ files
    @property
    def journal_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".partial")

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def exists(self) -> bool:
        return self.path.is_file()

    def check_path(self) -> None:
        """A cache is a file: a folder (e.g. ``--cache cache/``) is a clear error."""
        if self.path.is_dir():
            raise CacheError(f"{self.path} is a folder; a feature cache is a file, e.g. {self.path / 'data.h5'} "
                             "(or leave --cache out: the default is cache/<dataset>-<fingerprint>.h5)")

    def snapshot(self) -> Snapshot:
        """The file's checked description (re-read when the file changed)."""
        self.check_path()
        try:
            key = stat_key(self.path)
        except FileNotFoundError:
            raise CacheError(f"no feature cache at {self.path}") from None
        if self._snap is None or self._snap.stat != key:
            self._snap = load_snapshot(self.path)
        return self._snap

    @contextlib.contextmanager
    def open(self) -> Iterator[h5py.File]:
        """Open the committed file read-only (h5py.File): the very file the snapshot describes."""
        for _ in range(3):
            snap = self.snapshot()
            f = h5open(self.path)
            if os.fstat(f.id.get_vfd_handle()).st_ino == snap.stat[0]:
                break
            f.close()  # replaced by a writer in between: describe the new file first
        else:
            raise CacheError(f"{self.path} keeps being replaced while it is read; try again")
        try:
            yield f
        finally:
            f.close()

    # ------------------------------------------------------------ description
    @property
    def ids(self) -> list[str]:
        return list(self.snapshot().ids)

    @property
    def labels(self) -> np.ndarray:
        return self.snapshot().labels.copy()

    @property
    def groups(self) -> np.ndarray | None:
        g = self.snapshot().groups
        return None if g is None else g.copy()

    @property
    def row_hashes(self) -> list[str]:
        return list(self.snapshot().row_hashes)

    @property
    def skipped(self) -> dict[str, str]:
        """Images of the dataset that have no rows (unreadable, ``on_error="skip"``): id -> reason."""
        return {i: reason for i, _, reason in self.snapshot().skipped}

    @property
    def meta(self) -> dict:
        snap = self.snapshot()
        return {**snap.attrs, "class_names": list(snap.class_names), "reading": snap.reading}

    @property
    def fingerprint(self) -> str:
        return self.snapshot().fingerprint

    def entries(self, key: str | None = None) -> list[Entry]:
        return [e for e in self.snapshot().entries if key is None or e.key == key]

    def damaged(self) -> list[tuple[str, str]]:
        """Objects under ``/features`` that cannot be read: (HDF5 path, reason)."""
        return list(self.snapshot().damaged)

    def keys(self) -> list[str]:
        return sorted({e.key for e in self.entries()})

    def find(self, key: str, **match) -> Entry:
        """The one entry of ``key`` whose parameters match; clear errors otherwise."""
        candidates = self.entries(key)
        if not candidates:
            broken = [f"{p} ({why})" for p, why in self.damaged() if p.startswith(f"features/{key}/")]
            if broken:
                raise CacheError(f"features {key!r} in {self.path} are damaged: {'; '.join(broken)}; "
                                 "`featurekit extract` recomputes them")
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

    def entry(self, key: str, entry_id: str | None = None, **match) -> Entry:
        """The entry of ``key`` with ``entry_id``, or the entry whose parameters match ``match``."""
        if entry_id is not None:
            for e in self.entries(key):
                if e.entry_id == entry_id:
                    return e
            broken = [why for p, why in self.damaged() if p == f"features/{key}/{entry_id}"]
            if broken:
                raise CacheError(f"entry {entry_id} of {key!r} in {self.path} is damaged: {broken[0]}")
            raise CacheError(f"no entry {entry_id} of {key!r} in {self.path}")
        return self.find(key, **match)

    # ------------------------------------------------------------ checked reads
    def _damage(self, entry: Entry, what: str) -> CacheError:
        return CacheError(f"{self.path}: entry {entry.key} [{entry.entry_id}] is damaged ({what}); it is not "
                          "served: `featurekit extract` recomputes it, `featurekit cache verify` checks the file")

    def _check_rows(self, entry: Entry, snap: Snapshot) -> None:
        if entry.attrs.get("rows_sha256") != snap.rows_sha256 or entry.shape[0] != len(snap.ids):
            raise self._damage(entry, "it was written for other rows than the file's /ids and /row_hashes")

    def _memo_key(self, snap: Snapshot, entry: Entry) -> tuple:
        return (str(self.path.resolve()), *snap.stat, entry.entry_id)

    def _read(self, entry: Entry, rows: np.ndarray | None) -> np.ndarray:
        snap = self.snapshot()
        self._check_rows(entry, snap)
        if rows is not None:
            self.verify_entry(entry)  # memoised: a whole pass the first time only
        with self.open() as f:
            try:
                data = f[f"features/{entry.key}/{entry.entry_id}"]
                if rows is None:
                    out = data[()]
                elif len(rows):
                    # h5py fancy indexing wants increasing, unique rows
                    unique, inverse = np.unique(rows, return_inverse=True)
                    out = data[unique][inverse]
                else:
                    out = np.empty((0, entry.shape[1]), dtype=data.dtype)
            except Exception as exc:  # noqa: BLE001 - a failed checksum is an OSError; damaged metadata varies
                raise self._damage(entry, f"read failed: {exc}") from None
            if rows is None:
                key = self._memo_key(snap, entry)
                if key not in _VERIFIED:  # the rest of verify_entry, on the array just read
                    if array_digest([out]) != entry.attrs["sha256"]:
                        raise self._damage(entry, "its sha256 does not match")
                    self._names(f, entry)
                    _VERIFIED.add(key)
        return out

    def verify_entry(self, entry: Entry) -> None:
        """Check every part of an entry (rows, every chunk, sha256, feature names); memoised per file version.

        The one check behind ``cache verify``, every reuse decision of a
        writer or of ``extract`` and the reads: an entry that fails any part
        of it is neither reused nor served.
        """
        snap = self.snapshot()
        self._check_rows(entry, snap)
        key = self._memo_key(snap, entry)
        if key in _VERIFIED:
            return
        with self.open() as f:
            try:
                digest = array_digest(dataset_blocks(f[f"features/{entry.key}/{entry.entry_id}"]))
            except Exception as exc:  # noqa: BLE001
                raise self._damage(entry, f"read failed: {exc}") from None
            if digest != entry.attrs["sha256"]:
                raise self._damage(entry, "its sha256 does not match")
            self._names(f, entry)
        _VERIFIED.add(key)

    def _names(self, f: h5py.File, entry: Entry) -> list[str] | None:
        """The entry's feature names read from the open file (checksummed), or None when it has none."""
        path = f"feature_names/{entry.key}/{entry.entry_id}"
        if path not in f:
            return None
        try:
            names = read_strings(f[path])
        except Exception as exc:  # noqa: BLE001
            raise self._damage(entry, f"its feature names cannot be read: {exc}") from None
        if len(names) != entry.shape[1]:
            raise self._damage(entry, f"{len(names)} feature names for {entry.shape[1]} features")
        return names

    def get(self, key: str, ids: Iterable[str] | None = None, entry_id: str | None = None,
            **match) -> np.ndarray:
        """Features of ``key`` as an (N, D) array, rows in ``ids`` order when given (checked, see module)."""
        entry = self.entry(key, entry_id, **match)
        return self._read(entry, None if ids is None else self.rows(ids))

    def feature_names(self, key: str, entry_id: str | None = None, **match) -> list[str] | None:
        entry = self.entry(key, entry_id, **match)
        with self.open() as f:
            return self._names(f, entry)

    def rows(self, ids: Iterable[str]) -> np.ndarray:
        """Row numbers of ``ids``; ids without a row are a CacheError naming them (and why, when skipped)."""
        index = {s: i for i, s in enumerate(self.snapshot().ids)}
        ids = [str(s) for s in ids]
        missing = [s for s in ids if s not in index]
        if missing:
            skipped = self.skipped
            why = [f"{s} ({skipped[s]})" for s in missing if s in skipped]
            note = f"; skipped as unreadable when the cache was made: {'; '.join(why[:3])}" if why else ""
            raise CacheError(f"{len(missing)} ids are not in {self.path}, e.g. {missing[:3]}{note}")
        return np.fromiter((index[s] for s in ids), dtype=np.int64, count=len(ids))

    def verify(self) -> list[str]:
        """Check every checksum of the file; returns the problems found (empty = intact)."""
        try:
            snap = self.snapshot()
        except CacheError as exc:
            return [str(exc)]
        problems = [f"{self.path}: {p} is damaged: {why}" for p, why in snap.damaged]
        with self.open() as f:
            for name in ("ids", "labels", "row_hashes", "groups", "skipped/ids", "skipped/row_hashes",
                         "skipped/reasons"):
                if name in f:
                    try:
                        for _ in dataset_blocks(f[name]):
                            pass
                    except Exception as exc:  # noqa: BLE001
                        problems.append(f"{self.path}: /{name} is damaged: {exc}")
        for entry in snap.entries:
            try:
                self.verify_entry(entry)
            except CacheError as exc:
                problems.append(str(exc))
        return problems

    # ------------------------------------------------------------ binding
    def holds(self, dataset: DatasetMeta, specs: Iterable[EntrySpec], allow_skipped: bool = False) -> bool:
        """Whether the committed file already has every spec for ``dataset``, intact (reads only, no lock)."""
        if not self.exists():
            return False
        try:
            snap = self.snapshot()
            if not bound(snap, dataset) or (snap_skipped(snap, dataset) and not allow_skipped):
                return False
            have = {(e.key, e.entry_id): e for e in snap.entries}
            for spec in specs:
                entry = have.get((spec.key, spec.entry_id))
                if entry is None:
                    return False
                self.verify_entry(entry)
        except CacheError:
            return False
        return True

    def pending(self) -> dict[str, int]:
        """Rows already journaled per entry id by an unfinished (e.g. killed) run."""
        from featurekit.cache.journal import Journal

        return Journal(self.journal_dir).pending()

    def info(self) -> dict:
        snap = self.snapshot()
        meta = self.meta
        return {
            "path": str(self.path),
            "size_bytes": self.path.stat().st_size,
            "format": meta.get("featurekit_cache"),
            "dataset": meta.get("dataset"),
            "source": meta.get("source"),
            "fingerprint": meta.get("fingerprint"),
            **({"reading": meta["reading"]} if meta.get("reading") is not None else {}),
            "n": len(snap.ids),
            "class_names": meta.get("class_names"),
            "created": meta.get("created"),
            "entries": [
                {"key": e.key, "entry_id": e.entry_id, "shape": list(e.shape), "dtype": e.dtype,
                 **{k: e.attrs[k] for k in ("model", "layer", "pool", "weights", "input_size") if k in e.attrs}}
                for e in snap.entries
            ],
            "damaged": [{"path": p, "reason": why} for p, why in snap.damaged],
            "skipped": [{"id": i, "reason": why} for i, _, why in snap.skipped],
            "pending_rows": self.pending(),
        }

    # ------------------------------------------------------------ writing
    def writer(self, dataset: DatasetMeta, lock_timeout: float | None = 600.0, on_error: str = "raise"):
        """A context manager that holds the write lock; see :class:`~featurekit.cache.writer.CacheWriter`."""
        from featurekit.cache.writer import CacheWriter

        return CacheWriter(self, dataset, lock_timeout, on_error=on_error)

    def remove(self, key: str | None = None, entry_id: str | None = None, lock_timeout: float | None = 60.0,
               **match) -> int:
        """Remove entries (or, with no key, the whole file and its journal, readable or not); returns the count."""
        from featurekit.cache.files import remove_entries, remove_file

        if key is None and entry_id is None:
            return remove_file(self, lock_timeout)
        return remove_entries(self, key, entry_id, lock_timeout, match)


def warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)
