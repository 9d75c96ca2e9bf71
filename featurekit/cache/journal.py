"""The journal of an unfinished write: ``<file>.partial/``, bound to its data and to each entry's parameters.

Layout::

    <file>.partial/journal.json                 format, fingerprint, dataset name, ids, row hashes,
                                                 images found unreadable so far (id -> reason)
    <file>.partial/<entry_id>/spec.json         key, params, dim, dtype of the entry
    <file>.partial/<entry_id>/<start>-<stop>.<sha16>.npy   rows start..stop-1 (dataset order)

Every file is written to a temporary name and renamed (whole or absent). A
journal is used only for the data it is bound to (same fingerprint, ids and
row hashes) and an entry folder only for the parameters in its ``spec.json``;
a batch file is used only when its shape, dtype and digest (the ``sha16`` in
its name) check out. Anything else is discarded with a warning and
recomputed, never merged: a journal of other data contributes rows only by
(id, content hash), through :mod:`featurekit.cache.reuse`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from featurekit.cache.entries import DatasetMeta, EntrySpec
from featurekit.cache.layout import ENTRY_ID
from featurekit.errors import CacheError
from featurekit.io import atomic_write, atomic_write_text, canonical_json, storage_error

JOURNAL_FORMAT = 2
_BATCH = re.compile(r"^(\d{10})-(\d{10})\.([0-9a-f]{16})\.npy$")


@dataclass(frozen=True)
class Batch:
    start: int
    stop: int
    digest: str
    path: Path


def _digest(rows: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()[:16]


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err = storage_error(exc, path.parent)
        if err is not None:
            raise err from None
        raise


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class Journal:
    """The ``.partial`` folder of one cache file."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"Journal({str(self.folder)!r})"

    def exists(self) -> bool:
        return self.folder.is_dir()

    # ------------------------------------------------------------ binding
    def binding(self) -> dict | None:
        """journal.json when present and well formed, else None."""
        try:
            data = json.loads((self.folder / "journal.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ok = (isinstance(data, dict) and data.get("format") == JOURNAL_FORMAT
              and isinstance(data.get("fingerprint"), str) and isinstance(data.get("dataset"), str)
              and isinstance(data.get("ids"), list) and isinstance(data.get("row_hashes"), list)
              and len(data["ids"]) == len(data["row_hashes"])
              and all(isinstance(s, str) for s in data["ids"] + data["row_hashes"])
              and isinstance(data.get("skipped", {}), dict)
              and all(isinstance(v, str) for v in data.get("skipped", {}).values()))
        return data if ok else None

    def bound_to(self, dataset: DatasetMeta) -> bool:
        b = self.binding()
        return (b is not None and b["fingerprint"] == dataset.fingerprint and b["ids"] == list(dataset.ids)
                and b["row_hashes"] == dataset.hashes)

    def bind(self, dataset: DatasetMeta, skipped: dict[str, str]) -> None:
        _mkdir(self.folder)
        atomic_write_text(self.folder / "journal.json", json.dumps({
            "format": JOURNAL_FORMAT, "fingerprint": dataset.fingerprint, "dataset": dataset.name,
            "ids": list(dataset.ids), "row_hashes": dataset.hashes, "skipped": dict(skipped),
        }))

    # ------------------------------------------------------------ entries
    def entry_ids(self) -> list[str]:
        if not self.exists():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and ENTRY_ID.match(p.name))

    def identity(self, entry_id: str) -> dict | None:
        try:
            data = json.loads((self.folder / entry_id / "spec.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def prepare(self, spec: EntrySpec) -> str | None:
        """Make the entry's folder; an existing one for other parameters is discarded (returns why)."""
        d = self.folder / spec.entry_id
        why = None
        if d.is_dir():
            have = self.identity(spec.entry_id)
            if have is None or canonical_json(have) != canonical_json(spec.identity()):
                why = (f"journal {d} was written for other parameters than {spec.key} [{spec.entry_id}]"
                       if have is not None else f"journal {d} has no valid spec.json")
                _remove(d)
        _mkdir(d)
        for debris in d.glob(".*.tmp-*"):
            debris.unlink(missing_ok=True)
        if not (d / "spec.json").is_file():
            atomic_write_text(d / "spec.json", canonical_json(spec.identity()))
        return why

    def batches(self, entry_id: str) -> list[Batch]:
        """The batch files of an entry by name (not yet checked), sorted."""
        d = self.folder / entry_id
        out = []
        if d.is_dir():
            for p in d.iterdir():
                m = _BATCH.match(p.name)
                if m:
                    out.append(Batch(int(m.group(1)), int(m.group(2)), m.group(3), p))
        return sorted(out, key=lambda b: (b.start, b.stop))

    def load(self, batch: Batch, dim: int, dtype: str) -> np.ndarray:
        """A batch's rows, checked (shape, dtype, finite, digest); CacheError when damaged."""
        try:
            rows = np.load(batch.path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise CacheError(f"journal file {batch.path} is damaged ({exc})") from None
        if rows.shape != (batch.stop - batch.start, dim) or rows.dtype != np.dtype(dtype):
            raise CacheError(f"journal file {batch.path} holds {rows.shape} {rows.dtype}, "
                             f"expected {(batch.stop - batch.start, dim)} {np.dtype(dtype)}")
        if _digest(rows) != batch.digest or not np.isfinite(rows).all():
            raise CacheError(f"journal file {batch.path} does not match its checksum")
        return rows

    def checked_batches(self, spec: EntrySpec, n: int) -> tuple[list[Batch], list[str]]:
        """The entry's batches that check out; damaged ones are deleted (returns why, for a warning)."""
        good, bad = [], []
        for b in self.batches(spec.entry_id):
            try:
                if b.stop > n or b.start >= b.stop:
                    raise CacheError(f"journal file {b.path} is outside rows 0..{n - 1}")
                self.load(b, spec.dim, spec.dtype)
                good.append(b)
            except CacheError as exc:
                bad.append(str(exc))
                b.path.unlink(missing_ok=True)
        for stray in (self.folder / spec.entry_id).glob("*.npy"):
            if not _BATCH.match(stray.name):  # e.g. a batch of an older featurekit (no checksum)
                bad.append(f"journal file {stray} has no checksum")
                stray.unlink(missing_ok=True)
        return good, bad

    def write(self, entry_id: str, start: int, rows: np.ndarray) -> None:
        """Journal rows ``start .. start+len(rows)-1`` (atomic: the file is whole or absent)."""
        rows = np.ascontiguousarray(rows)
        stop = start + rows.shape[0]
        final = self.folder / entry_id / f"{start:010d}-{stop:010d}.{_digest(rows)}.npy"
        with atomic_write(final, "wb", nbytes=rows.nbytes + 128) as fh:
            np.save(fh, rows, allow_pickle=False)

    def discard(self, entry_ids: Sequence[str] | None = None) -> None:
        if entry_ids is None:
            _remove(self.folder)
            return
        for eid in entry_ids:
            _remove(self.folder / eid)
        if self.exists() and not self.entry_ids():
            _remove(self.folder)

    def pending(self) -> dict[str, int]:
        """Rows journaled per entry id (by file names)."""
        return {eid: int(sum(b.stop - b.start for b in self.batches(eid))) for eid in self.entry_ids()}
