"""Writing a feature cache: the journaled, atomic :class:`CacheWriter`.

One protocol -- bind, plan with reuse, journal, commit -- whose steps share
the writer's state.

A writer holds the file's lock, binds the file and its journal to one dataset
(:class:`~featurekit.cache.entries.DatasetMeta`), journals every finished
batch (:mod:`featurekit.cache.journal`), seeds missing rows from other caches
of the same images (:mod:`featurekit.cache.reuse`), and commits: the new file
is built beside the old one and replaces it in one ``os.replace``. A commit
copies the old file once (all entries of a run are committed together) and
rebuilds it only when entries must be dropped (damaged, replaced, fewer rows,
another version of the dataset). The space a commit needs is reserved before
HDF5 writes anything (HDF5 crashes when the disk fills under it), so a full
disk is a clean :class:`~featurekit.errors.DiskFullError` and the old file
stays as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

from featurekit import __version__
from featurekit.cache.entries import DatasetMeta, EntrySpec
from featurekit.cache.journal import Journal
from featurekit.cache.files import copy_entry, h5_append, root_attrs, skeleton
from featurekit.cache.layout import (array_digest, attr_value, check_space, chunk_rows, create_checked, hash_rows,
                                     reserve, rows_digest, seal, write_strings)
from featurekit.cache.lock import FileLock
from featurekit.cache.reader import FeatureCache, warn
from featurekit.cache.snapshot import Snapshot, bound
from featurekit.cache.reuse import BLOCK_BYTES, FileRows, JournalRows, release_journals, runs, sibling_sources
from featurekit.errors import CacheError, DataError
from featurekit.io import atomic_call, atomic_write_bytes, canonical_json, storage_error, utc_now

__all__ = ["CacheWriter"]

#: Entry attributes that describe the stored array rather than how it was computed.
_BOOKKEEPING = ("key", "params", "created", "sha256", "rows_sha256")


class CacheWriter:
    """Journaled writer of one run's entries (hold it in a ``with`` block).

    Usage: ``missing(specs)`` filters what the file lacks (or holds damaged);
    ``plan(specs, batch_size)`` returns the batches still to compute (rows
    already journaled or reusable from other caches are not); ``write(start,
    stop, {entry_id: rows})`` journals one; ``skip({row: reason})`` records
    unreadable images (``on_error="skip"``); ``commit()`` moves every complete
    entry into the file atomically.
    """

    def __init__(self, cache: FeatureCache, dataset: DatasetMeta, lock_timeout: float | None,
                 on_error: str = "raise"):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.cache = cache
        self.dataset = dataset
        self.on_error = on_error
        self.journal = Journal(cache.journal_dir)
        self.reused_rows = 0
        self._lock = FileLock(cache.lock_path, lock_timeout, cache.path)
        self._ids = list(dataset.ids)
        self._hashes = dataset.hashes
        self._specs: dict[str, EntrySpec] = {}
        self._done: dict[str, np.ndarray] = {}
        self._skipped: dict[int, str] = {}
        self._replace: set[str] = set()
        self._old: Snapshot | None = None
        self._stale: list[Path] = []
        self._sources: list | None = None
        self._used: list = []

    # ------------------------------------------------------------ binding
    def __enter__(self) -> "CacheWriter":
        self.cache.check_path()
        self._lock.acquire()
        try:
            self._bind()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()

    @property
    def skipped(self) -> dict[str, str]:
        """Images without rows: read failures before binding and images found unreadable (id -> reason)."""
        out = dict(self.dataset.skipped)
        out.update({self._ids[k]: why for k, why in sorted(self._skipped.items())})
        return out

    def _bind(self) -> None:
        ds, path = self.dataset, self.cache.path
        index = {s: k for k, s in enumerate(self._ids)}
        # Only the lock holder writes temporary files: any left are debris of a killed writer.
        for debris in path.parent.glob(f".{path.name}.tmp-*"):
            debris.unlink(missing_ok=True)
        self._stale = sorted(path.parent.glob(f".{path.name}.partial-stale-*"))
        if self.cache.exists():
            try:
                snap = self.cache.snapshot()
            except CacheError as exc:
                raise CacheError(f"{exc}. It is not overwritten: remove it (`featurekit cache rm {path}`) or "
                                 "choose another --cache file") from None
            if bound(snap, ds):
                self._skipped.update({index[i]: why for i, _, why in snap.skipped if i in index})
            elif ds.name and snap.attrs.get("dataset") == ds.name:
                self._old = snap
                warn(f"{path} holds another version of dataset {ds.name!r} (fingerprint {snap.fingerprint[:12]}, "
                     f"now {ds.fingerprint[:12]}): it is rebuilt for the current data, reusing the rows of "
                     "unchanged images (same id and content)")
            else:
                raise CacheError(
                    f"cache {path} belongs to another dataset ({snap.attrs.get('dataset')!r}, fingerprint "
                    f"{snap.fingerprint[:12]}; this data is {ds.name!r}, {ds.fingerprint[:12]}): choose another "
                    "--cache file or remove it with `featurekit cache rm`")
        if self.journal.exists():
            binding = self.journal.binding()
            if binding is None:
                warn(f"discarding the journal {self.journal.folder}: it is not bound to any data (written by an "
                     "older featurekit, or damaged); its rows are recomputed")
                self.journal.discard()
            elif not self.journal.bound_to(ds):
                stale = path.with_name(f".{path.name}.partial-stale-{os.getpid()}-{time.monotonic_ns()}")
                try:
                    os.replace(self.journal.folder, stale)
                except OSError as exc:
                    raise storage_error(exc, path.parent) or exc from None
                self._stale.append(stale)
                warn(f"the journal {self.journal.folder} was written for other data (fingerprint "
                     f"{binding['fingerprint'][:12]}, this data {ds.fingerprint[:12]}): it is not merged; only "
                     "rows of the same images (same id and content) are reused from it")
            else:
                self._skipped.update({index[i]: why for i, why in binding.get("skipped", {}).items() if i in index})
        if self.on_error == "raise" and self._skipped:
            listing = "; ".join(f"{self._ids[k]}: {why}" for k, why in sorted(self._skipped.items())[:5])
            raise DataError(f"{len(self._skipped)} image(s) of this dataset were found unreadable by an earlier "
                            f"run with --on-error skip ({listing}): fix or remove those files; only an extraction "
                            "with on_error='skip' (featurekit extract --on-error skip) goes on without them")
        if not self.cache.exists():
            self._write_skeleton()

    def _rows(self) -> np.ndarray:
        """Dataset rows the file holds: all but the skipped images."""
        keep = np.ones(len(self._ids), dtype=bool)
        keep[list(self._skipped)] = False
        return np.flatnonzero(keep)

    def _skeleton_bytes(self, rows: np.ndarray) -> bytes:
        ds = self.dataset
        skipped = [(i, "", why) for i, why in ds.skipped]
        skipped += [(self._ids[k], self._hashes[k], why) for k, why in sorted(self._skipped.items())]
        return skeleton(root_attrs(ds), [self._ids[k] for k in rows], np.asarray(ds.labels)[rows],
                         None if ds.groups is None else np.asarray(ds.groups)[rows],
                         [self._hashes[k] for k in rows], skipped)

    def _write_skeleton(self) -> None:
        data = self._skeleton_bytes(self._rows())
        check_space(self.cache.path.parent, len(data))
        atomic_write_bytes(self.cache.path, data)

    # ------------------------------------------------------------ planning
    def missing(self, specs: Iterable[EntrySpec]) -> list[EntrySpec]:
        """The specs the file does not hold intact (damaged entries are reported and recomputed)."""
        specs = list(specs)
        if self._old is not None or not self.cache.exists():
            return specs
        snap = self.cache.snapshot()
        have = {(e.key, e.entry_id): e for e in snap.entries}
        damaged = dict(snap.damaged)
        out = []
        for spec in specs:
            entry = have.get((spec.key, spec.entry_id))
            if entry is not None and spec.entry_id not in self._replace:
                try:
                    self.cache.verify_entry(entry)
                    continue
                except CacheError as exc:
                    warn(f"{exc}: recomputing it")
                    self._replace.add(spec.entry_id)
            elif spec.h5path in damaged:
                warn(f"{self.cache.path}: entry {spec.key} [{spec.entry_id}] is damaged ({damaged[spec.h5path]}): "
                     "recomputing it")
                self._replace.add(spec.entry_id)
            out.append(spec)
        return out

    def _ensure_journal(self) -> None:
        if not self.journal.bound_to(self.dataset):
            self.journal.bind(self.dataset, {self._ids[k]: why for k, why in self._skipped.items()})

    def _open_entry(self, spec: EntrySpec) -> None:
        """Register ``spec`` and read which of its rows the journal holds intact."""
        n = len(self._ids)
        self._specs[spec.entry_id] = spec
        why = self.journal.prepare(spec)
        if why:
            warn(f"{why}: discarded, its rows are recomputed")
        good, bad = self.journal.checked_batches(spec, n)
        if bad:
            warn(f"{len(bad)} journal file(s) of {spec.key} discarded and recomputed: {bad[0]}")
        done = np.zeros(n, dtype=bool)
        for b in good:
            done[b.start:b.stop] = True
        self._done[spec.entry_id] = done

    def _skip_mask(self) -> np.ndarray:
        mask = np.zeros(len(self._ids), dtype=bool)
        mask[list(self._skipped)] = True
        return mask

    def plan(self, specs: Sequence[EntrySpec], batch_size: int) -> list[tuple[int, int]]:
        """Batches ``[start, stop)`` of the grid ``k*B`` that some spec still lacks.

        Rows journaled intact or reusable from other caches (same id and
        content) are not recomputed: a grid batch partly done is cut to the
        rows still missing.
        """
        n = len(self._ids)
        self._ensure_journal()
        for spec in specs:
            self._open_entry(spec)
        self._seed(specs)
        skip = self._skip_mask()
        todo = []
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            need = np.zeros(stop - start, dtype=bool)
            for spec in specs:
                need |= ~self._done[spec.entry_id][start:stop]
            need &= ~skip[start:stop]
            todo += [(start + a, start + b) for a, b in runs(need)]
        return todo

    # ------------------------------------------------------------ reuse
    def _row_sources(self) -> list:
        if self._sources is None:
            self._sources = []
            if self._old is not None:
                self._sources.append(FileRows(self.cache, self._old))
            for stale in self._stale:
                binding = Journal(stale).binding()
                if binding is not None:
                    self._sources.append(JournalRows(Journal(stale), binding))
            self._sources += list(sibling_sources(self.cache.path, self.dataset.name))
        return self._sources

    def _seed(self, specs: Sequence[EntrySpec]) -> None:
        """Journal the missing rows that other caches hold for the same (id, content hash)."""
        keyed = np.array([bool(h) for h in self._hashes], dtype=bool)

        def need(spec):
            return ~self._done[spec.entry_id] & ~self._skip_mask() & keyed

        if not any(need(s).any() for s in specs):
            return
        for src in self._row_sources():
            if self.on_error == "skip" and src.skipped:
                known = {k: f"{src.skipped[(i, h)]} (recorded in {src.name})"
                         for k, (i, h) in enumerate(zip(self._ids, self._hashes))
                         if k not in self._skipped and (i, h) in src.skipped}
                if known:
                    self.skip(known)
            for spec in specs:
                wanted = need(spec)
                if not wanted.any() or not src.has(spec):
                    continue
                src_row = np.array([src.keys.get((i, h), -1) for i, h in zip(self._ids, self._hashes)])
                found = wanted & (src_row >= 0)
                if isinstance(src, JournalRows):
                    covered = src.covered(spec)
                    found &= np.where(src_row >= 0, covered[np.maximum(src_row, 0)], False)
                block = max(1, BLOCK_BYTES // max(1, spec.dim * np.dtype(spec.dtype).itemsize))
                try:
                    for a, b in runs(found):
                        for s in range(a, b, block):
                            e = min(b, s + block)
                            self.journal.write(spec.entry_id, s, src.read(spec, src_row[s:e]))
                            self._done[spec.entry_id][s:e] = True
                            self.reused_rows += e - s
                except CacheError as exc:
                    warn(f"rows of {spec.key} not reused from {src.name}: {exc}")
                if found.any() and src not in self._used:
                    self._used.append(src)

    # ------------------------------------------------------------ writing
    def write(self, start: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        """Journal rows ``start:stop`` of each entry (atomic per file); rows already journaled are kept."""
        skip = self._skip_mask()[start:stop]
        for entry_id, rows in arrays.items():
            spec = self._specs[entry_id]
            rows = np.asarray(rows, dtype=spec.dtype)
            if rows.shape != (stop - start, spec.dim):
                raise CacheError(f"{spec.key}: batch {start}:{stop} has shape {rows.shape}, "
                                 f"expected {(stop - start, spec.dim)}")
            if not np.isfinite(rows).all():
                raise CacheError(f"{spec.key}: non-finite values in rows {start}:{stop}")
            for a, b in runs(~self._done[entry_id][start:stop] & ~skip):
                self.journal.write(entry_id, start + a, rows[a:b])
                self._done[entry_id][start + a:start + b] = True

    def skip(self, rows: dict[int, str]) -> None:
        """Record images that cannot be processed (``on_error="skip"``): they get no rows, and are listed."""
        if self.on_error != "skip":
            raise DataError(next(iter(rows.values())))
        self._skipped.update({int(k): str(why) for k, why in rows.items()})
        self.journal.bind(self.dataset, {self._ids[k]: why for k, why in self._skipped.items()})

    def complete(self, spec: EntrySpec) -> bool:
        done = self._done.get(spec.entry_id)
        return done is not None and bool((done | self._skip_mask()).all())

    # ------------------------------------------------------------ commit
    def commit(self, specs: Sequence[EntrySpec] | None = None) -> list[EntrySpec]:
        """Move complete entries from the journal into the file (one copy, one atomic replace)."""
        specs = list(specs if specs is not None else self._specs.values())
        have = set()
        if self._old is None and self.cache.exists():
            have = {e.entry_id for e in self.cache.snapshot().entries} - self._replace
        ready = [s for s in specs if s.entry_id not in have and self.complete(s)]
        if self._old is not None:
            ready += self._carry_over(self._old, {s.entry_id for s in ready})
        if not ready:
            return []
        rows = self._rows()
        if not len(rows):
            first = next(iter(self._skipped.values()), "")
            raise DataError(f"no image of dataset {self.dataset.name!r} could be processed; e.g. {first}")
        self._publish(ready, rows)
        self.cache._snap = None
        committed = {s.entry_id for s in ready}
        self.journal.discard([e for e in self.journal.entry_ids() if e in committed])
        self._old = None
        self._replace -= committed
        self._tidy(committed)
        return ready

    def _carry_over(self, old: Snapshot, taken: set[str]) -> list[EntrySpec]:
        """Entries of ``old`` (the earlier version) not asked for in this run: reuse their rows; commit the complete ones."""
        out = []
        for e in old.entries:
            if e.entry_id in taken:
                continue
            attrs = {k: v for k, v in e.attrs.items() if k not in _BOOKKEEPING and k not in e.params}
            try:
                names = self.cache.feature_names(e.key, entry_id=e.entry_id)
            except CacheError:
                continue
            spec = EntrySpec(e.key, e.params, e.shape[1], e.dtype, attrs, names)
            if spec.entry_id != e.entry_id:
                continue  # not written by this featurekit's rules: nothing to match it with
            self._ensure_journal()
            self._open_entry(spec)
            self._seed([spec])
            if self.complete(spec):
                out.append(spec)
            else:  # not asked for and not complete: no unfinished run of it (its rows stay in the kept file)
                self.journal.discard([spec.entry_id])
                self._specs.pop(spec.entry_id, None)
                self._done.pop(spec.entry_id, None)
        return out

    def _publish(self, ready: list[EntrySpec], rows: np.ndarray) -> None:
        path = self.cache.path
        snap = None if (self._old is not None or not self.cache.exists()) else self.cache.snapshot()
        append = (snap is not None and snap.ids == [self._ids[k] for k in rows]
                  and not self._replace and not snap.damaged)
        new_bytes = 0
        for s in ready:
            new_bytes += len(rows) * s.dim * np.dtype(s.dtype).itemsize
            if s.feature_names is not None:
                new_bytes += sum(len(str(x).encode()) for x in s.feature_names) * 2 + 64 * len(s.feature_names)
        old_size = path.stat().st_size if path.exists() else 0
        need = int(old_size + new_bytes * 1.05 + (1 << 20) + 65536 * len(ready))
        check_space(path.parent, need)
        drop = {s.entry_id for s in ready} | self._replace
        if self._old is not None:
            self._keep_old(self._old, rows)

        def build(tmp: Path) -> None:
            if append:
                shutil.copyfile(path, tmp)
            else:
                tmp.write_bytes(self._skeleton_bytes(rows))
            reserve(tmp, need)

            def body(f):
                if snap is not None and not append:
                    self._carry_entries(snap, f, rows, drop)
                for spec in ready:
                    self._store(f, spec, rows)

            h5_append(tmp, need, body)

        atomic_call(path, build, nbytes=need)

    def _keep_old(self, old: Snapshot, rows: np.ndarray) -> None:
        """Before a rebuild for another version of the dataset: keep the old file (``old``) beside when rows would go.

        Rows of images the current data lacks (a ``--subsample`` run, images
        removed) are not in the rebuilt file; the old file stays, as
        ``<name>-<its fingerprint12>.h5`` (a hard link where the file system
        allows), so nothing computed is lost and a later run over those images
        reuses its rows (:mod:`featurekit.cache.reuse`).
        """
        path = self.cache.path
        if not old.entries:
            return
        new = {(self._ids[k], self._hashes[k]) for k in rows}
        lost = sum((i, h) not in new for i, h in zip(old.ids, old.row_hashes))
        if not lost:
            return
        keep = path.with_name(f"{path.stem}-{old.fingerprint[:12]}{path.suffix}")
        n = 1
        while keep.exists() or keep.is_symlink():
            n += 1
            keep = path.with_name(f"{path.stem}-{old.fingerprint[:12]}-{n}{path.suffix}")
        try:
            try:
                os.link(path, keep)
            except OSError:
                atomic_call(keep, lambda tmp: shutil.copyfile(path, tmp), nbytes=path.stat().st_size)
        except OSError as exc:
            raise storage_error(exc, path.parent) or exc from None
        warn(f"{path} is rebuilt for the current data ({len(rows)} images); the {lost} image(s) it held that this "
             "data lacks (by id and content: images left out, changed, or read otherwise, e.g. another window or "
             f"masks) keep their rows, of all {len(old.entries)} entries, in {keep} (reused when they come back)")

    def _carry_entries(self, snap: Snapshot, dst: h5py.File, rows: np.ndarray, drop: set[str]) -> None:
        """Copy the intact entries of the bound file into a rebuilt one (fewer rows: rows selected by id)."""
        ids = [self._ids[k] for k in rows]
        same = snap.ids == ids
        if not same:
            index = {s: r for r, s in enumerate(snap.ids)}
            sel = np.array([index[s] for s in ids], dtype=np.int64)
        digest = rows_digest(ids, [self._hashes[k] for k in rows])
        with h5py.File(self.cache.path, "r", locking=False) as src:
            for e in snap.entries:
                if e.entry_id in drop:
                    continue
                if same:
                    copy_entry(src, dst, e.key, e.entry_id)
                    continue
                try:
                    data = src[f"features/{e.key}/{e.entry_id}"][sel]
                except (OSError, RuntimeError) as exc:
                    warn(f"{self.cache.path}: entry {e.key} [{e.entry_id}] is damaged ({exc}): dropped")
                    continue
                ds = create_checked(dst, f"features/{e.key}/{e.entry_id}", data, fletcher32=False)
                ds.attrs.update(e.attrs)
                ds.attrs.update({"sha256": array_digest([data]), "rows_sha256": digest})
                seal(ds)
                names = f"feature_names/{e.key}/{e.entry_id}"
                if names in src:
                    src.copy(src[names], dst.require_group(f"feature_names/{e.key}"), e.entry_id)

    def _store(self, f: h5py.File, spec: EntrySpec, rows: np.ndarray) -> None:
        n, m = len(self._ids), len(rows)
        skip = self._skip_mask()
        row_bytes = max(1, spec.dim * np.dtype(spec.dtype).itemsize)
        data = f.create_dataset(spec.h5path, shape=(m, spec.dim), dtype=spec.dtype,
                                chunks=(chunk_rows(m, row_bytes), spec.dim) if spec.dim else None)
        h = hashlib.sha256()
        cursor, pos = 0, 0  # next dataset row to place, next file row to fill
        for b in self.journal.batches(spec.entry_id):
            if b.stop <= cursor:
                continue
            start = max(b.start, cursor)
            if skip[cursor:start].sum() != start - cursor:
                raise CacheError(f"journal of {spec.key}: rows {cursor}..{start - 1} are missing")
            block = self.journal.load(b, spec.dim, spec.dtype)[start - b.start:]
            block = block[~skip[start:b.stop]]
            data[pos:pos + len(block)] = block
            hash_rows(h, block)
            pos += len(block)
            cursor = b.stop
        if pos != m or skip[cursor:n].sum() != n - cursor:
            raise CacheError(f"journal of {spec.key} holds {pos} of {m} rows")
        attrs = {k: attr_value(v) for k, v in {**spec.params, **spec.attrs}.items()}
        attrs.setdefault("featurekit_version", __version__)
        attrs.update({"key": spec.key, "params": canonical_json(spec.params), "created": utc_now(),
                      "sha256": h.hexdigest(),
                      "rows_sha256": rows_digest([self._ids[k] for k in rows], [self._hashes[k] for k in rows])})
        data.attrs.update(attrs)
        seal(data)
        if spec.feature_names is not None:
            write_strings(f, f"feature_names/{spec.key}/{spec.entry_id}", list(spec.feature_names))

    def _tidy(self, committed: set[str]) -> None:
        """Drop what the commit made redundant: stale journals, sibling journal entries now committed here."""
        for stale in self._stale:
            # entries of other runs still pending there move into this journal (by id and content)
            journal = Journal(stale)
            binding = journal.binding()
            if binding is not None:
                src = JournalRows(journal, binding)
                for eid in journal.entry_ids():
                    ident = journal.identity(eid)
                    if eid in committed or eid in self._specs or not ident:
                        continue
                    try:
                        spec = EntrySpec(ident["key"], ident["params"], int(ident["dim"]), ident["dtype"])
                    except (KeyError, TypeError, ValueError):
                        continue
                    if spec.entry_id == eid and src.has(spec):
                        self._ensure_journal()
                        self._open_entry(spec)
                        saved, self._sources = self._sources, [src]
                        self._seed([spec])
                        self._sources = saved
            journal.discard()
        self._stale = []
        release_journals(self._used, committed, self.cache.path.parent)
        self._used = []
