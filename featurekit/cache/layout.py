"""The HDF5 layout of a feature cache: names, checksums, safe attribute reading, storage faults.

Everything that touches the bytes of a cache file at the lowest level lives
here, so the reader, the writer and ``featurekit cache verify`` agree on one
format (see :mod:`featurekit.cache` for the layout).

Checksums. Each entry carries ``sha256`` (the digest of its array,
little-endian, C order) and ``rows_sha256`` (the digest of the ``/ids`` and
``/row_hashes`` it was written for), so neither damaged numbers nor rows moved
to other samples go unnoticed. The small datasets (ids, labels, row hashes,
groups, skipped images, feature names) are chunked with HDF5's Fletcher-32
filter, which HDF5 checks on every read. Feature arrays are not: HDF5's
Fletcher-32 doubles the time of every read of them (``benchmarks/bench_cache.py``),
while their sha256 costs one pass, once per process and file version. Files are written with
the HDF5 1.8 object format, whose object headers carry their own checksums.

Attributes are read defensively: only strings and numbers are accepted (h5py
never unpickles; anything else, e.g. an opaque blob, makes the file "not a
featurekit cache").
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

from featurekit.errors import CacheError, FeaturekitError
from featurekit.io import canonical_json, storage_error

#: Written by this featurekit. Format 1 (no checksums, no row hashes) is refused: rebuild those files.
FORMAT_VERSION = 2
#: HDF5 object format: 1.8 (checksummed object headers), readable by any HDF5 >= 1.8.
LIBVER = ("v108", "v108")
ENTRY_ID = re.compile(r"^v[0-9a-f]{16}$")
#: Rows per chunk are chosen so a chunk holds about this many bytes.
CHUNK_BYTES = 1 << 20
#: files beside a cache that belong to it (removed with it): the extraction's resolution memo
SIDECARS = (".resolved.json",)

_MESSAGE_ERRNO = re.compile(r"errno = (\d+)")


# ----------------------------------------------------------------------------- errors
def h5_error(exc: BaseException, path: str | os.PathLike, action: str, nbytes: int | None = None) -> Exception:
    """The featurekit error for an h5py failure: full disk and read-only named, the rest a CacheError.

    HDF5 reports a failed ``write(2)`` as an OSError or RuntimeError whose
    message holds ``errno = N``; that is translated like a plain OSError.
    """
    if isinstance(exc, FeaturekitError):
        return exc
    code = getattr(exc, "errno", None)
    if code is None:
        m = _MESSAGE_ERRNO.search(str(exc))
        code = int(m.group(1)) if m else None
    if code is not None:
        err = storage_error(OSError(code, os.strerror(code)), Path(path).parent, nbytes)
        if err is not None:
            return err
    return CacheError(f"{path}: cannot {action}: {exc}")


def check_space(folder: Path, nbytes: int) -> None:
    """Raise DiskFullError when ``folder`` has clearly less than ``nbytes`` free."""
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(folder).free
        if free < nbytes:
            nospace = OSError(errno.ENOSPC, "no space")
            raise storage_error(nospace, folder, nbytes) or nospace


def reserve(path: Path, size: int) -> None:
    """Allocate ``size`` bytes for the file at ``path`` before HDF5 writes into it.

    HDF5 crashes (segmentation fault) when the disk fills under it, so the
    space is taken first, where a full disk is a clean ``ENOSPC``; HDF5 writes
    into the reserved blocks and cuts the file to its real end when it closes.
    On file systems without ``fallocate`` the free space is checked instead.
    """
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, max(int(size), 1))
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            check_space(Path(path).parent, size - os.fstat(fd).st_size)
        else:
            raise
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- attributes
def attr_value(v):
    """HDF5-storable attribute: numbers as they are, str subclasses as str, the rest as JSON."""
    if isinstance(v, str):
        return str(v)
    if isinstance(v, (bool, int, float, np.integer, np.floating, np.bool_)):
        return v
    return canonical_json(v)


def read_attrs(obj, where: str) -> dict:
    """The attributes of ``obj`` as str/int/float/bool; anything else is refused (never unpickled)."""
    out = {}
    for name in obj.attrs.keys():
        try:
            value = obj.attrs[name]
        except Exception as exc:  # noqa: BLE001 - h5py raises OSError, TypeError, ValueError...
            raise CacheError(f"{where}: attribute {name!r} cannot be read ({exc})") from None
        if isinstance(value, (bytes, np.bytes_)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise CacheError(f"{where}: attribute {name!r} holds bytes that are not UTF-8 text: "
                                 "not what featurekit writes (nothing in it was loaded)") from None
        elif isinstance(value, (np.bool_, bool)):
            value = bool(value)
        elif isinstance(value, (np.integer, int)):
            value = int(value)
        elif isinstance(value, (np.floating, float)):
            value = float(value)
        elif not isinstance(value, str):
            raise CacheError(f"{where}: attribute {name!r} is a {type(value).__name__}, not text or a "
                             "number: not what featurekit writes (nothing in it was loaded)")
        out[str(name)] = value
    return out


def json_attr(attrs: dict, name: str, where: str, kind: type, default=None):
    """Parse the JSON text attribute ``name`` and check it is a ``kind``."""
    if name not in attrs:
        if default is not None:
            return default
        raise CacheError(f"{where}: attribute {name!r} is missing: not a featurekit cache")
    try:
        value = json.loads(attrs[name]) if isinstance(attrs[name], str) else None
    except ValueError:
        value = None
    if not isinstance(value, kind):
        raise CacheError(f"{where}: attribute {name!r} is not the JSON {kind.__name__} featurekit writes: "
                         "not a featurekit cache, or a damaged one")
    return value


def attrs_digest(attrs: dict) -> str:
    """The seal of a set of attributes (as :func:`read_attrs` returns them), ``attrs_sha256`` left out."""
    return hashlib.sha256(canonical_json({k: v for k, v in attrs.items() if k != "attrs_sha256"}).encode()).hexdigest()


def seal(obj) -> None:
    """Store ``attrs_sha256`` on ``obj``, computed from its attributes as read back."""
    obj.attrs["attrs_sha256"] = attrs_digest(read_attrs(obj, obj.name))


def check_seal(attrs: dict, where: str) -> None:
    if attrs.get("attrs_sha256") != attrs_digest(attrs):
        raise CacheError(f"{where}: the attributes do not match their checksum (attrs_sha256): damaged")


# ----------------------------------------------------------------------------- datasets
def chunk_rows(n: int, row_bytes: int) -> int:
    return int(max(1, min(max(n, 1), CHUNK_BYTES // max(1, row_bytes))))


def create_checked(group: h5py.Group, name: str, data: np.ndarray, fletcher32: bool = True) -> h5py.Dataset:
    """A chunked dataset holding ``data`` (1-D or 2-D), Fletcher-32 checksummed unless told otherwise."""
    data = np.asarray(data)
    if data.size == 0:
        return group.create_dataset(name, data=data)
    rows = chunk_rows(data.shape[0], int(np.prod(data.shape[1:], dtype=np.int64)) * data.dtype.itemsize)
    return group.create_dataset(name, data=data, chunks=(rows, *data.shape[1:]), fletcher32=fletcher32)


def strings_array(values: Iterable[str]) -> np.ndarray:
    """UTF-8 strings as a fixed-length HDF5 string array (no global heap: checksummed, fails cleanly)."""
    encoded = [str(v).encode("utf-8") for v in values]
    width = max([len(b) for b in encoded] + [1])
    return np.asarray(encoded, dtype=f"S{width}").astype(h5py.string_dtype("utf-8", width))


def read_strings(ds: h5py.Dataset) -> list[str]:
    """A string dataset (fixed or variable length) as a list of str."""
    if ds.shape == (0,):
        return []
    return [str(s) for s in ds.asstr()[()]]


def write_strings(group: h5py.Group, name: str, values: Sequence[str]) -> h5py.Dataset:
    return create_checked(group, name, strings_array(values))


# ----------------------------------------------------------------------------- digests
def rows_digest(ids: Sequence[str], row_hashes: Sequence[str]) -> str:
    """The digest binding an entry to the rows it was written for (ids and content hashes)."""
    h = hashlib.sha256(b"featurekit.cache.rows/1")
    for i, c in zip(ids, row_hashes):
        h.update(f"{len(i)}:{i}{c}\x00".encode("utf-8"))
    h.update(str(len(ids)).encode())
    return h.hexdigest()


def hash_rows(h, block: np.ndarray) -> None:
    """Feed an array's bytes (little-endian, C order) to ``h`` without copying when they already are."""
    block = np.ascontiguousarray(block)
    if block.dtype.byteorder == ">" or (block.dtype.byteorder == "=" and np.little_endian is False):
        block = block.astype(block.dtype.newbyteorder("<"))
    h.update(block.reshape(-1).view(np.uint8))


def array_digest(blocks: Iterable[np.ndarray]) -> str:
    """sha256 of an array given as consecutive row blocks (little-endian, C order)."""
    h = hashlib.sha256()
    for block in blocks:
        hash_rows(h, block)
    return h.hexdigest()


def dataset_blocks(ds: h5py.Dataset) -> Iterable[np.ndarray]:
    """Read ``ds`` in chunk-sized row blocks."""
    n = ds.shape[0]
    step = ds.chunks[0] if ds.chunks else max(1, n)
    for start in range(0, n, step):
        yield ds[start:min(n, start + step)]
