"""What a cache holds: entry specifications, committed entries, and the dataset a file is bound to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from featurekit.io import canonical_json
from featurekit.specs import Weights


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

    def identity(self) -> dict:
        """What the journal records to prove its rows were computed for this spec."""
        return {"key": self.key, "params": self.params, "dim": int(self.dim), "dtype": self.dtype}


@dataclass(frozen=True)
class Entry:
    """A committed entry as found in a cache file (its attributes already checked)."""

    key: str
    entry_id: str
    shape: tuple[int, ...]
    dtype: str
    attrs: dict
    params: dict = field(default_factory=dict, compare=False)

    def matches(self, **match) -> bool:
        """Whether the entry's parameters equal ``match`` (``weights`` as a choice: ``"none"`` is seed 0)."""
        for name, want in match.items():
            have = self.params.get(name, self.attrs.get(name))
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
        dims = "x".join(str(s) for s in self.shape)
        return f"{self.key} [{self.entry_id}] {dims} {self.dtype} {extra}".rstrip()


@dataclass(frozen=True)
class DatasetMeta:
    """What binds a cache file to one dataset.

    ``row_hashes`` are the per-sample content hashes
    (:meth:`featurekit.data.Dataset.sample_hash`); rows are reused across
    datasets by (id, content hash), so without them (None) nothing is reused
    from other data. ``skipped`` lists ``(id, reason)`` of images left out
    before binding (files that could not be read with ``on_error="skip"``);
    they are recorded in the file, not part of ``ids``. ``reading``: what turned
    DICOM and volume files into [0, 1] (:meth:`featurekit.data.Dataset.reading`),
    recorded in the file; None for other data. ``group_kind``: what a group is
    (:attr:`featurekit.data.Dataset.group_kind`).
    """

    ids: Sequence[str]
    labels: np.ndarray
    class_names: Sequence[str]
    fingerprint: str
    name: str = ""
    source: str = ""
    positive: str | None = None
    groups: np.ndarray | None = None
    row_hashes: Sequence[str] | None = None
    skipped: Sequence[tuple[str, str]] = ()
    reading: dict | None = None
    group_kind: str | None = None

    @classmethod
    def from_dataset(cls, ds, skipped: Sequence[tuple[str, str]] = ()) -> "DatasetMeta":
        hashes = ds.sample_hashes()
        return cls(list(ds.ids), np.asarray(ds.labels, dtype=np.int64), list(ds.class_names),
                   ds.fingerprint(), ds.name or "", str(ds.source or ""), ds.positive,
                   None if ds.groups is None else np.asarray(ds.groups).astype(str), hashes, tuple(skipped),
                   ds.reading(), ds.group_kind)

    @property
    def hashes(self) -> list[str]:
        return list(self.row_hashes) if self.row_hashes is not None else [""] * len(self.ids)
