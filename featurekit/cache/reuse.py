"""Rows reused by image: finding finished rows of the same (id, content hash) in other caches and journals.

A row of an entry depends only on the entry's parameters and on the sample's
content (image, mask, ROI: :meth:`featurekit.data.Dataset.sample_hash`), so it
can be taken from any cache or journal that computed the same entry for the
same (id, content hash). A writer looks, in this order, in the file it
replaces (an earlier version of the same dataset), in its own journal when it
was written for other data, and in the sibling caches and journals of the same
folder that belong to a dataset of the same name (newest first). Rows are read
through the same checks as any read (the entry's sha256 and rows digest, the
journal digests), so nothing damaged is reused.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from featurekit.cache.entries import EntrySpec
from featurekit.cache.journal import Journal
from featurekit.cache.layout import read_attrs
from featurekit.cache.lock import FileLock
from featurekit.cache.reader import FeatureCache
from featurekit.cache.snapshot import Snapshot
from featurekit.errors import CacheError, CacheLockedError
from featurekit.io import canonical_json

#: Rows are copied in blocks of about this many bytes.
BLOCK_BYTES = 64 << 20


class FileRows:
    """Rows of the committed entries of a cache file."""

    def __init__(self, cache: FeatureCache, snap: Snapshot | None = None):
        self.cache = cache
        self.snap = snap or cache.snapshot()
        self.name = str(cache.path)
        self.keys = {(i, h): r for r, (i, h) in enumerate(zip(self.snap.ids, self.snap.row_hashes)) if h}
        self.skipped = {(i, h): why for i, h, why in self.snap.skipped if h}

    def has(self, spec: EntrySpec) -> bool:
        want = canonical_json(spec.params)
        return any(e.entry_id == spec.entry_id and canonical_json(e.params) == want and e.shape[1] == spec.dim
                   and np.dtype(e.dtype) == np.dtype(spec.dtype) for e in self.snap.entries)

    def read(self, spec: EntrySpec, rows: np.ndarray) -> np.ndarray:
        return self.cache.get(spec.key, entry_id=spec.entry_id, ids=[self.snap.ids[r] for r in rows])


class JournalRows:
    """Rows of the checked batch files of a journal (of any data)."""

    def __init__(self, journal: Journal, binding: dict):
        self.journal = journal
        self.name = str(journal.folder)
        self.keys = {(i, h): r for r, (i, h) in enumerate(zip(binding["ids"], binding["row_hashes"])) if h}
        index = dict(zip(binding["ids"], binding["row_hashes"]))
        self.skipped = {(i, index[i]): why for i, why in binding.get("skipped", {}).items()
                        if index.get(i)}
        self.n = len(binding["ids"])
        self._batches: dict[str, list] = {}

    def has(self, spec: EntrySpec) -> bool:
        have = self.journal.identity(spec.entry_id)
        if have is None or canonical_json(have) != canonical_json(spec.identity()):
            return False
        if spec.entry_id not in self._batches:
            self._batches[spec.entry_id] = self.journal.checked_batches(spec, self.n)[0]
        return bool(self._batches[spec.entry_id])

    def covered(self, spec: EntrySpec) -> np.ndarray:
        done = np.zeros(self.n, dtype=bool)
        for b in self._batches.get(spec.entry_id, []):
            done[b.start:b.stop] = True
        return done

    def read(self, spec: EntrySpec, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), spec.dim), dtype=spec.dtype)
        filled = np.zeros(len(rows), dtype=bool)
        for b in self._batches.get(spec.entry_id, []):
            inside = (rows >= b.start) & (rows < b.stop) & ~filled
            if inside.any():
                data = self.journal.load(b, spec.dim, spec.dtype)
                out[inside] = data[rows[inside] - b.start]
                filled |= inside
        if not filled.all():
            raise CacheError(f"{self.name}: rows of {spec.key} vanished while being reused")
        return out


def sibling_sources(target: Path, dataset_name: str) -> Iterator[FileRows | JournalRows]:
    """Caches and journals beside ``target`` that belong to a dataset named ``dataset_name``, newest first."""
    folder = target.parent
    if not folder.is_dir():
        return
    found = []
    for path in folder.iterdir():
        if path == target or path == target.with_name(target.name + ".partial"):
            continue
        with contextlib.suppress(OSError):
            if path.suffix == ".h5" and path.is_file() and _dataset_name(path) == dataset_name:
                found.append((path.stat().st_mtime_ns, "file", path))
            elif path.name.endswith(".h5.partial") and path.is_dir():
                binding = Journal(path).binding()
                if binding is not None and binding["dataset"] == dataset_name:
                    found.append((path.stat().st_mtime_ns, "journal", path))
    for _, kind, path in sorted(found, reverse=True):
        try:
            if kind == "file":
                yield FileRows(FeatureCache(path))
            else:
                journal = Journal(path)
                binding = journal.binding()
                if binding is not None:
                    yield JournalRows(journal, binding)
        except (CacheError, OSError):
            continue  # unreadable, replaced or removed meanwhile: not a source


def _dataset_name(path: Path) -> str | None:
    try:
        with h5py.File(path, "r", locking=False) as f:
            attrs = read_attrs(f, str(path))
    except (OSError, CacheError):
        return None
    return attrs.get("dataset") if attrs.get("featurekit_cache") == 2 else None


def release_journals(sources: list, committed: set[str], folder: Path) -> None:
    """After a commit: remove, from the sibling journals rows were taken from, the entries now committed.

    Each sibling is touched only under its own lock (taken without waiting:
    one in use is left alone); a journal left empty is removed, and so is its
    cache file when that holds no entry (the skeleton of a run that never
    committed, e.g. one stopped by an unreadable image).
    """
    for src in sources:
        journal_dir = getattr(getattr(src, "journal", None), "folder", None)
        if journal_dir is None or journal_dir.parent != folder or not journal_dir.name.endswith(".partial"):
            continue
        owner = journal_dir.with_name(journal_dir.name[:-len(".partial")])
        lock = FileLock(owner.with_name(owner.name + ".lock"), 0, owner)
        try:
            lock.acquire()
        except (CacheLockedError, OSError):
            continue
        try:
            src.journal.discard([e for e in src.journal.entry_ids() if e in committed])
            if src.journal.exists() and not src.journal.entry_ids():
                src.journal.discard()
            if not src.journal.exists() and owner.is_file():
                with contextlib.suppress(CacheError):
                    if not FeatureCache(owner).entries():
                        owner.unlink()
        finally:
            lock.release()


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` runs where ``mask`` is True."""
    if not mask.any():
        return []
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
