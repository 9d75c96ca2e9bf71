"""What a cache file says about itself, read once and checked: :class:`Snapshot`; and whether it is bound to a dataset.

A snapshot holds the root attributes, ids, labels, groups, row hashes,
skipped images and the list of entries. Entries are listed one by one: an
entry whose object header or attributes are damaged (or do not match their
seal) is recorded in ``damaged`` and the others stay readable. A damaged
sample list or root makes the whole file unreadable (a
:class:`~featurekit.errors.CacheError` naming it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from featurekit.cache.entries import DatasetMeta, Entry
from featurekit.cache.layout import FORMAT_VERSION, check_seal, json_attr, read_attrs, read_strings, rows_digest
from featurekit.errors import CacheError

__all__ = ["Snapshot", "load_snapshot", "stat_key", "h5open", "bound", "snap_skipped"]


@dataclass
class Snapshot:
    """What a cache file says about itself, read once per file version."""

    stat: tuple
    attrs: dict
    class_names: list
    ids: list
    labels: np.ndarray
    groups: np.ndarray | None
    row_hashes: list
    skipped: list  # (id, row hash, reason)
    entries: list = field(default_factory=list)
    damaged: list = field(default_factory=list)  # (h5 path, reason)
    reading: dict | None = None  # DICOM / volume data: what turned the files into [0, 1]

    @property
    def fingerprint(self) -> str:
        return str(self.attrs.get("fingerprint", ""))

    @property
    def rows_sha256(self) -> str:
        return rows_digest(self.ids, self.row_hashes)


def stat_key(path: Path) -> tuple:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def h5open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise CacheError(f"{path} is not a readable HDF5 feature cache: {exc}") from None


def load_snapshot(path: Path) -> Snapshot:
    """Read and check a cache file's description; entries that cannot be read are listed as damaged."""
    where = str(path)
    stat = stat_key(path)
    with h5open(path) as f:
        try:
            attrs = read_attrs(f, where)
        except CacheError as exc:
            raise CacheError(f"{exc}; not a featurekit cache") from None
        version = attrs.get("featurekit_cache")
        if version is None:
            raise CacheError(f"{path} is an HDF5 file but not a featurekit cache")
        if version == 1:
            raise CacheError(
                f"{path} was written by an older featurekit (cache format 1: no checksums, no row hashes), so "
                f"it cannot be checked: remove it (`featurekit cache rm {path}`) and extract again")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CacheError(f"{path} has cache format {version!r}; this featurekit reads format {FORMAT_VERSION}")
        check_seal(attrs, where)
        class_names = json_attr(attrs, "class_names", where, list)
        if not all(isinstance(c, str) for c in class_names):
            raise CacheError(f"{where}: attribute 'class_names' is not a list of names: not a featurekit cache")
        for name in ("fingerprint", "dataset"):
            if not isinstance(attrs.get(name), str):
                raise CacheError(f"{where}: attribute {name!r} is missing or not text: not a featurekit cache")
        try:
            ids = read_strings(f["ids"])
            labels = np.asarray(f["labels"][()], dtype=np.int64)
            groups = np.asarray(read_strings(f["groups"])) if "groups" in f else None
            row_hashes = read_strings(f["row_hashes"])
            skipped = []
            if "skipped" in f:
                g = f["skipped"]
                skipped = list(zip(read_strings(g["ids"]), read_strings(g["row_hashes"]), read_strings(g["reasons"])))
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise CacheError(f"{path}: the sample list (/ids, /labels, /row_hashes) is damaged or missing "
                             f"({exc}); remove the file (`featurekit cache rm {path}`) and extract again") from None
        if not (len(labels) == len(row_hashes) == len(ids)) or (groups is not None and len(groups) != len(ids)):
            raise CacheError(f"{path}: /ids, /labels, /row_hashes and /groups differ in length: damaged file")
        reading = json_attr(attrs, "reading", where, dict) if "reading" in attrs else None
        snap = Snapshot(stat, attrs, class_names, ids, labels, groups, row_hashes, skipped, reading=reading)
        if "features" in f:
            _walk(f["features"], "features", snap, where)
    snap.entries.sort(key=lambda e: (e.key, e.entry_id))
    return snap


def _walk(group: h5py.Group, prefix: str, snap: Snapshot, where: str) -> None:
    """List the entries under ``group``, each on its own: a damaged one is recorded and skipped."""
    try:
        names = list(group.keys())
    except Exception as exc:  # noqa: BLE001 - HDF5 raises several types for damaged metadata
        snap.damaged.append((prefix, f"cannot be listed ({exc})"))
        return
    for name in names:
        path = f"{prefix}/{name}"
        try:
            obj = group[name]
        except Exception as exc:  # noqa: BLE001
            snap.damaged.append((path, f"cannot be opened ({exc})"))
            continue
        if isinstance(obj, h5py.Group):
            _walk(obj, path, snap, where)
            continue
        key, _, entry_id = path[len("features/"):].rpartition("/")
        try:
            attrs = read_attrs(obj, f"{where}: {path}")
            check_seal(attrs, f"{where}: {path}")
            params = json_attr(attrs, "params", f"{where}: {path}", dict)
            for name_ in ("sha256", "rows_sha256"):
                if not isinstance(attrs.get(name_), str):
                    raise CacheError(f"{where}: {path} has no {name_} checksum attribute")
            if obj.ndim != 2:
                raise CacheError(f"{where}: {path} has shape {obj.shape}, not (rows, features)")
            shape, dtype = tuple(int(s) for s in obj.shape), str(obj.dtype)
        except Exception as exc:  # noqa: BLE001
            snap.damaged.append((path, str(exc)))
            continue
        snap.entries.append(Entry(key, entry_id, shape, dtype, attrs, params))


def bound(snap: Snapshot, dataset: DatasetMeta) -> bool:
    """Whether the file ``snap`` is the cache of ``dataset``: same fingerprint and the same rows, by id and content.

    The file's rows are the dataset's minus the images it records as skipped.
    """
    if snap.fingerprint != dataset.fingerprint:
        return False
    hashes = dataset.hashes
    skipped = {i: h for i, h, _ in snap.skipped}
    index = {s: k for k, s in enumerate(dataset.ids)}
    if any(i in index and h != hashes[index[i]] for i, h in skipped.items()):
        return False
    keep = [k for k, s in enumerate(dataset.ids) if s not in skipped]
    return (snap.ids == [dataset.ids[k] for k in keep]
            and snap.row_hashes == [hashes[k] for k in keep])


def snap_skipped(snap: Snapshot, dataset: DatasetMeta) -> dict[str, str]:
    """The dataset's images that the file records as skipped (unreadable): id -> reason."""
    ids = set(dataset.ids)
    return {i: why for i, _, why in snap.skipped if i in ids}
