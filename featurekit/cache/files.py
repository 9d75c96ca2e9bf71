"""Whole cache files: the entry-less skeleton, copying entries, rewriting without entries, removing.

A skeleton (root attributes, ids, labels, row hashes, groups, skipped images)
is built in memory and written with one atomic write; everything HDF5 appends
to an existing file goes to a temporary copy whose space was reserved first
(:func:`featurekit.cache.layout.reserve`), and replaces the file atomically.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from featurekit import __version__
from featurekit.cache.entries import DatasetMeta
from featurekit.cache.journal import Journal
from featurekit.cache.layout import (FORMAT_VERSION, LIBVER, SIDECARS, check_space, create_checked, h5_error,
                                     reserve, seal, write_strings)
from featurekit.cache.lock import FileLock
from featurekit.cache.reader import FeatureCache
from featurekit.errors import CacheError
from featurekit.io import atomic_call, storage_error, utc_now

__all__ = ["skeleton", "root_attrs", "copy_entry", "h5_append", "remove_file", "remove_entries"]


def skeleton(attrs: dict, ids: Sequence[str], labels, groups, row_hashes: Sequence[str],
              skipped: Sequence[tuple[str, str, str]]) -> bytes:
    """The bytes of a cache file without entries (built in memory: nothing half-written on disk)."""
    buf = io.BytesIO()
    with h5py.File(buf, "w", libver=LIBVER) as f:
        f.attrs.update({**attrs, "featurekit_cache": FORMAT_VERSION, "n": len(ids)})
        seal(f)
        write_strings(f, "ids", ids)
        create_checked(f, "labels", np.asarray(labels, dtype=np.int64))
        write_strings(f, "row_hashes", row_hashes)
        if groups is not None:
            write_strings(f, "groups", [str(g) for g in groups])
        if skipped:
            g = f.create_group("skipped")
            for k, name in enumerate(("ids", "row_hashes", "reasons")):
                write_strings(g, name, [rec[k] for rec in skipped])
    return buf.getvalue()


def root_attrs(ds: DatasetMeta) -> dict:
    attrs = {"fingerprint": ds.fingerprint, "dataset": ds.name, "source": ds.source,
             "class_names": json.dumps(list(ds.class_names)), "positive": ds.positive or "",
             "created": utc_now(), "featurekit_version": __version__}
    if ds.reading is not None:  # DICOM / volumes: the window and the rules that gave the pixels
        attrs["reading"] = json.dumps(ds.reading, sort_keys=True)
    if ds.group_kind is not None and ds.groups is not None:
        attrs["group_kind"] = ds.group_kind
    return attrs


def copy_entry(src: h5py.File, dst: h5py.File, key: str, entry_id: str) -> None:
    for root in ("features", "feature_names"):
        path = f"{root}/{key}/{entry_id}"
        if path in src:
            src.copy(src[path], dst.require_group(f"{root}/{key}"), entry_id)


def h5_append(path: Path, nbytes: int, body) -> None:
    """Run ``body(f)`` on the temporary copy at ``path`` opened for appending, with h5py errors translated."""
    try:
        with h5py.File(path, "a", libver=LIBVER) as f:
            body(f)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise h5_error(exc, path, "write the cache", nbytes) from None


def remove_file(cache: FeatureCache, lock_timeout: float | None) -> int:
    """Remove a cache file, readable or not, with its journal; returns how many entries it had."""
    cache.check_path()
    if not cache.exists() and not cache.journal_dir.exists():
        raise CacheError(f"no feature cache at {cache.path}")
    with FileLock(cache.lock_path, lock_timeout, cache.path):
        try:
            n = len(cache.entries()) if cache.exists() else 0
        except CacheError:
            n = 0
        try:
            cache.path.unlink(missing_ok=True)
        except OSError as exc:
            raise storage_error(exc, cache.path.parent) or exc from None
        Journal(cache.journal_dir).discard()
        for suffix in SIDECARS:
            cache.path.with_name(cache.path.name + suffix).unlink(missing_ok=True)
        for stale in cache.path.parent.glob(f".{cache.path.name}.partial-stale-*"):
            Journal(stale).discard()
    return n


def remove_entries(cache: FeatureCache, key: str | None, entry_id: str | None, lock_timeout: float | None,
                   match: dict) -> int:
    """Rewrite the file without the matching entries (HDF5 never shrinks in place); returns the count."""
    cache.snapshot()  # a clear error for a missing or unreadable file, before any lock is taken
    with FileLock(cache.lock_path, lock_timeout, cache.path):
        snap = cache.snapshot()
        doomed = {e.entry_id for e in snap.entries
                  if (key is None or e.key == key) and (entry_id is None or e.entry_id == entry_id)
                  and e.matches(**match)}
        if not doomed:
            return 0
        image = skeleton(snap.attrs, snap.ids, snap.labels, snap.groups, snap.row_hashes, snap.skipped)
        need = cache.path.stat().st_size + (1 << 20)
        check_space(cache.path.parent, need)

        def build(tmp: Path) -> None:
            tmp.write_bytes(image)
            reserve(tmp, need)

            def body(f):
                with h5py.File(cache.path, "r", locking=False) as src:
                    for e in snap.entries:
                        if e.entry_id not in doomed:
                            copy_entry(src, f, e.key, e.entry_id)

            h5_append(tmp, need, body)

        atomic_call(cache.path, build, nbytes=need)
        cache._snap = None
        return len(doomed)
