"""File-system primitives every featurekit writer shares (the bottom layer, with ``errors``).

One of each: the clock (:func:`utc_now`), the JSON forms (:func:`canonical_json`
for hashing, :func:`jsonable` for strict JSON files), and the atomic write
(:func:`atomic_write`, :func:`atomic_write_bytes`, :func:`atomic_write_text`,
:func:`write_json`), and its counterpart for a whole folder (:class:`StagedFolder`).

Atomic write. Data go to a temporary file beside the target (same folder, so the
rename stays on one file system), are flushed and ``fsync``-ed, and replace the
target in one ``os.replace``; the folder is ``fsync``-ed after. A crash, a
``kill -9`` or a full disk at any moment leaves either the old file or the new
one, never a half-written file (a symbolic link is written through: its target is
replaced); on any failure the temporary file is removed, so
a full disk is not kept full by debris. A full disk (``ENOSPC``/``EDQUOT``) is
reported as :class:`~featurekit.errors.DiskFullError` naming the folder and the
size being written; a read-only file system as :class:`~featurekit.errors.ReadOnlyError`.

Outputs are never overwritten silently: :func:`refuse_existing` raises
:class:`~featurekit.errors.OutputExistsError` for an existing file or a
non-empty folder unless ``overwrite`` is given, and a folder is then replaced
wholesale (:class:`StagedFolder`: written beside it, swapped in when complete),
so nothing of the old output is left beside the new one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import math
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from featurekit.errors import DiskFullError, FeaturekitError, OutputExistsError, ReadOnlyError, StorageError

__all__ = [
    "utc_now",
    "canonical_json",
    "jsonable",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "fsync_dir",
    "storage_error",
    "temp_name",
    "versions",
    "version_attrs",
    "refuse_existing",
    "StagedFolder",
]

#: the libraries whose versions are recorded with every result (distribution names)
RECORDED_LIBRARIES = ("numpy", "scipy", "scikit-learn", "pandas", "torch", "torchvision", "xgboost", "h5py",
                      "scikit-image", "timm")

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-11-25T21:10:40+00:00``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Versions of featurekit, Python and the libraries that make the numbers (installed ones).

    Read from the installed distributions' metadata: nothing is imported, so
    recording provenance never loads torch.
    """
    import platform
    from importlib import metadata

    from featurekit import __version__

    out = {"featurekit": __version__, "python": platform.python_version()}
    for dist in RECORDED_LIBRARIES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def version_attrs() -> dict[str, str]:
    """:func:`versions` as flat ``<name>_version`` attributes (cache entries, checkpoints)."""
    return {f"{k.replace('-', '_')}_version": v for k, v in versions().items()}


def canonical_json(obj: Any) -> str:
    """Compact JSON with sorted keys: equal objects give equal strings (for hashing)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays converted, NaN/inf -> None, paths -> str."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


def temp_name(path: str | os.PathLike) -> Path:
    """A hidden temporary name beside ``path`` unique to this process and call."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")


def storage_error(exc: OSError, folder: str | os.PathLike, nbytes: int | None = None) -> FeaturekitError | None:
    """The featurekit error for a write that failed with ``exc`` in ``folder`` (None if not a storage fault)."""
    need = f" (about {_human(nbytes)} needed)" if nbytes else ""
    if exc.errno in _FULL:
        return DiskFullError(f"no space left on the device holding {folder}{need}: free space there "
                             "or write elsewhere; nothing already saved was changed")
    if exc.errno == errno.EROFS:
        return ReadOnlyError(f"{folder} is on a read-only file system: cannot write there")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ReadOnlyError(f"no permission to write in {folder}")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.ENOENT):
        # the folder cannot hold files: a part of its path is a file, or it cannot be made (e.g. under /proc)
        blocking = file_in_path(folder)
        if blocking is not None:
            return StorageError(f"cannot write in {folder}: {blocking} is a file, not a folder")
        return StorageError(f"cannot write in {folder}: no file can be created there ({exc.strerror})")
    return None


def _nearest(folder: str | os.PathLike) -> Path:
    """``folder`` or its nearest parent that exists."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def file_in_path(folder: str | os.PathLike) -> Path | None:
    """The file that stands where ``folder`` or one of its parents should be a folder (None: there is none)."""
    existing = _nearest(folder)
    return None if existing.is_dir() else existing


def check_writable(path: str | os.PathLike, what: str = "") -> None:
    """Refuse, before any work, an output ``path`` whose folder cannot hold it (a StorageError naming why).

    A part of the folder's path is a file, or its nearest existing folder takes
    no new file (read-only, no permission, ``/proc``): probed with an unnamed
    temporary file, so nothing is left there.
    """
    path = Path(path)
    blocking = file_in_path(path.parent)
    if blocking is not None:
        raise StorageError(f"cannot write {what or 'the output'} {path}: {blocking} is a file, not a folder")
    existing = _nearest(path.parent)
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        err = storage_error(exc, existing)
        if err is not None:
            raise type(err)(f"cannot write {what or 'the output'} {path}: {err}") from None


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _replaced_atomically(path: Path, nbytes: int | None) -> Iterator[Path]:
    """The temporary file beside ``path`` that replaces it, durably, once the block has written it.

    A disk-full or read-only error is raised as featurekit's (naming the folder);
    the temporary file never survives, whatever happens. A ``path`` that is a
    symbolic link is written through: its target is replaced, the link stays.
    """
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    tmp = temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        err = storage_error(exc, path.parent, nbytes)
        if err is not None:
            raise err from None
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, nbytes: int | None = None,
                 encoding: str | None = None) -> Iterator[IO]:
    """Write ``path`` atomically: ``with atomic_write(p) as fh: fh.write(...)``.

    Parameters
    ----------
    path : path
        The target; its folder is created when missing.
    mode : {"wb", "w"}
    nbytes : int, optional
        The expected size, named in the disk-full error.
    encoding : str, optional
        Text mode encoding (default UTF-8).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    with _replaced_atomically(Path(path), nbytes) as tmp:
        with open(tmp, mode, encoding=(encoding or "utf-8") if mode == "w" else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> Path:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb", nbytes=len(data)) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Replace ``path`` with UTF-8 ``text`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_call(path: str | os.PathLike, write: Callable[[Path], Any], *, nbytes: int | None = None) -> Path:
    """Atomic write through a function that writes a named file (``torch.save``, ``fig.savefig``, h5py).

    ``write(tmp)`` writes the temporary file; it then replaces ``path`` as in :func:`atomic_write`.
    """
    path = Path(path)
    with _replaced_atomically(path, nbytes) as tmp:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    return path


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    """Strict JSON (NaN -> null, numpy -> plain), written atomically."""
    text = json.dumps(jsonable(obj), indent=indent, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


# ---------------------------------------------------------------------------- outputs
def refuse_existing(path: str | os.PathLike, overwrite: bool = False, *, what: str = "",
                    kind: str | None = None) -> Path:
    """Refuse, before any work, an output that cannot be written where asked.

    Raises :class:`~featurekit.errors.OutputExistsError` when ``path`` is an
    existing file or a non-empty folder and ``overwrite`` is false (an empty
    folder counts as free). ``kind`` says what the output is: a ``"file"``
    (a checkpoint, a CSV) can never replace a folder and a ``"folder"`` (a run
    folder) never a file, whatever ``overwrite`` says -- refused here rather
    than by the write at the end of the work; so is a path whose folder can
    hold no file (:func:`check_writable`).
    """
    if kind not in (None, "file", "folder"):
        raise ValueError(f"kind must be 'file' or 'folder', got {kind!r}")
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise OutputExistsError(f"{what or 'output'} {path} is a folder: name a file (one inside it, say)")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise OutputExistsError(f"{what or 'output folder'} {path} is a file, not a folder: name a folder")
    check_writable(path, what)
    if overwrite:
        return path
    if path.is_dir():
        if next(path.iterdir(), None) is None:
            return path
        raise OutputExistsError(f"{what or 'output folder'} {path} already exists and is not empty: "
                                "choose another one, or pass --overwrite (API: overwrite=True) to replace "
                                "it as a whole")
    if path.exists():
        raise OutputExistsError(f"{what or 'output'} {path} already exists: choose another path, or pass "
                                "--overwrite (API: overwrite=True) to replace it")
    return path


class StagedFolder:
    """A folder written in full beside its destination, then swapped in whole.

    ``StagedFolder(dest)`` checks ``dest`` at once (:func:`refuse_existing`:
    a non-empty ``dest`` needs ``overwrite=True``), so a long computation is
    refused before it starts. Files go to :attr:`path`, a hidden sibling
    ``.NAME.new-*`` created on first use; :meth:`commit` moves it to ``dest``
    (an old ``dest`` is first renamed aside, then deleted), so ``dest`` never
    holds a mix of an old and a new output, whenever the process dies. A
    stage that is never committed is removed when the object is dropped or
    the interpreter exits (``kill -9`` may leave a hidden ``.NAME.new-*``).

    Used as a context manager, it commits on success and discards on error.
    """

    def __init__(self, dest: str | os.PathLike, *, overwrite: bool = False, what: str = "output folder"):
        self.dest = Path(dest)
        self.overwrite = bool(overwrite)
        self.what = what
        refuse_existing(self.dest, self.overwrite, what=what, kind="folder")
        self._path: Path | None = None
        self._finalizer: weakref.finalize | None = None  # removes the staging folder unless committed

    @property
    def path(self) -> Path:
        """The staging folder (created on first access)."""
        if self._path is None:
            tmp = self.dest.with_name(f".{self.dest.name}.new-{os.getpid()}-{os.urandom(4).hex()}")
            try:
                tmp.mkdir(parents=True)
            except OSError as exc:
                raise storage_error(exc, tmp.parent) or exc from None
            self._path = tmp
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(tmp), True)
        return self._path

    def commit(self) -> Path:
        """Swap the staged folder in as ``dest``; returns ``dest``."""
        stage = self.path
        refuse_existing(self.dest, self.overwrite, what=self.what)  # nobody filled it meanwhile
        old = None
        try:
            if self.dest.is_dir() and next(self.dest.iterdir(), None) is not None:
                old = self.dest.with_name(f".{self.dest.name}.old-{os.getpid()}-{os.urandom(4).hex()}")
                os.rename(self.dest, old)
            elif self.dest.is_dir():
                self.dest.rmdir()
            try:
                os.rename(stage, self.dest)
            except OSError:
                if old is not None:
                    os.rename(old, self.dest)  # put the old folder back
                    old = None
                raise
        except OSError as exc:
            raise storage_error(exc, self.dest.parent) or exc from None
        if self._finalizer is not None:  # set with the staging folder, which self.path made above
            self._finalizer.detach()
        fsync_dir(self.dest.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.dest

    def discard(self) -> None:
        """Remove the staging folder (nothing is swapped in)."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> "StagedFolder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
