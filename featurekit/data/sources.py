"""Where a dataset's pixels come from: small, picklable "source" objects.

A :class:`~featurekit.data.dataset.Dataset` never branches on how its images
or masks are stored; it asks one image source and (optionally) one mask source.

Image sources (``load(i) -> ndarray``)
    :class:`FileImages` -- one file path per sample, decoded lazily by
    :func:`featurekit.imageio.read_image` (nothing held in memory);
    :class:`ArrayImages` -- rows of in-memory arrays (e.g. an ``.npz``).

Mask sources (``load(i, shape, image_desc) -> bool ndarray | None``)
    :class:`FileMasks` -- zero or more mask files per sample, union;
    :class:`ArrayMasks` -- rows of in-memory arrays, nonzero = inside;
    :class:`CircleMasks` -- zero or more circles ``(cx, cy, r)`` per sample in
    image pixel coordinates (see :mod:`featurekit.data.roi`), union.

Every source has ``len()``, ``take(indices)`` (a new source for a subset,
sharing the underlying arrays), ``describe(i)`` (a file path or
``name[row]`` for error messages) and ``hash_into(i, h)``, which feeds the
sample's exact bytes (file bytes, array bytes or circle coordinates) into a
``hashlib`` object for :meth:`Dataset.fingerprint`.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from featurekit.data.roi import circles_to_mask
from featurekit.errors import DataChangedError, DataError
from featurekit.executors import worker_address
from featurekit.imageio import (
    MIN_SIDE,
    VOLUME_EXTENSIONS,
    check_image_size,
    image_suffix,
    open_bytes,
    preloaded,
    read_image,
    read_mask,
    reading_key,
)

__all__ = [
    "FileImages",
    "ArrayImages",
    "FileMasks",
    "ArrayMasks",
    "CircleMasks",
    "feed",
    "load_hashed",
]

_CHUNK = 1 << 20


def feed(h, data: bytes) -> None:
    """Update hash ``h`` with ``data`` preceded by its length (unambiguous framing)."""
    h.update(struct.pack("<Q", len(data)))
    h.update(data)


def _feed_file(h, path: str) -> None:
    p = Path(path)
    if p.is_dir():  # a DICOM series: every file of it, by name
        files = sorted(q for q in p.iterdir() if q.is_file())
        feed(h, b"folder%d" % len(files))
        for q in files:
            feed(h, q.name.encode("utf-8", "surrogateescape"))
            _feed_file(h, str(q))
        return
    try:
        with open_bytes(p) as f:
            size = f.seek(0, 2)  # the length of what is read: the preloaded content or the file
            f.seek(0)
            h.update(struct.pack("<Q", size))
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                h.update(chunk)
    except FileNotFoundError:
        raise _unreadable(path, "file not found (while computing the dataset fingerprint)") from None
    except OSError as exc:
        raise _unreadable(path, f"cannot read file ({exc})") from None


def _absolute(path: str | Path) -> str:
    """``path`` joined to this process's working directory (``..`` kept: a symlink before it stays honoured).

    Made when the source is built, so that every process reads the same file: a Dask worker
    started in another directory too.
    """
    return str(Path(path).absolute())


def _unreadable(path: str, problem: str) -> DataError:
    """``path`` cannot be read here; on a Dask worker the message names the worker."""
    worker = worker_address()
    where = "" if worker is None else (f" on Dask worker {worker} (the workers read the dataset's files at the "
                                       "paths the client gave: a file system every worker mounts there)")
    return DataError(f"{path}: {problem}{where}")


def _feed_array(h, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    feed(h, f"{arr.dtype.str}{arr.shape}".encode())
    feed(h, arr.tobytes())


def _reading(**options) -> dict:
    """The reading options that are set: a plain file is read as ``read_image(path)``, a one-argument seam."""
    return {k: v for k, v in options.items() if v is not None}


def _shape_mismatch(mask_desc: str, mshape, image_desc: str, ishape) -> DataError:
    return DataError(
        f"mask {mask_desc} is {mshape[0]}x{mshape[1]} (HxW) but image {image_desc} "
        f"is {ishape[0]}x{ishape[1]}: mask and image sizes must match"
    )


# --------------------------------------------------------------------------- images
class FileImages:
    """One image file per sample, decoded on every :meth:`load`.

    ``planes`` (optional, per sample) picks the slice of a volume or series
    folder, or the frame of a multi-frame DICOM file; ``window`` is how DICOM
    and volume values map to [0, 1] (:mod:`featurekit.data.window`). Both are
    part of the content hash of DICOM files and volumes (:func:`reading_key`).
    """

    def __init__(self, paths: Sequence[str | Path], planes: Optional[Sequence[Optional[int]]] = None,
                 window=None):
        self.paths = tuple(_absolute(p) for p in paths)
        self.planes = tuple(planes) if planes is not None else (None,) * len(self.paths)
        self.window = window

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, i: int) -> np.ndarray:
        return read_image(self.paths[i], **_reading(window=self.window, plane=self.planes[i]))

    def describe(self, i: int) -> str:
        return self.paths[i] if self.planes[i] is None else f"{self.paths[i]} [plane {self.planes[i]}]"

    def hash_into(self, i: int, h) -> None:
        feed(h, b"file")
        _feed_file(h, self.paths[i])
        reading = reading_key(self.paths[i], self.window, self.planes[i])
        if reading:
            feed(h, reading)

    def take(self, indices: np.ndarray) -> "FileImages":
        return FileImages([self.paths[j] for j in indices], [self.planes[j] for j in indices], self.window)


class _Rows:
    """Rows of one or more stacked arrays, addressed by an ``(n, 2)`` index.

    ``index[k] = (a, r)`` means sample ``k`` is ``arrays[a][r]``; subsets
    share the arrays and only copy the index.
    """

    def __init__(self, arrays: Sequence[np.ndarray], index: Optional[np.ndarray] = None,
                 names: Optional[Sequence[str]] = None):
        self.arrays = tuple(arrays)
        if index is None:
            index = np.array(
                [(a, r) for a, arr in enumerate(self.arrays) for r in range(len(arr))], dtype=np.int64
            ).reshape(-1, 2)
        self.index = np.asarray(index, dtype=np.int64).reshape(-1, 2)
        self.names = tuple(names) if names is not None else tuple(f"array{a}" for a in range(len(self.arrays)))

    def __len__(self) -> int:
        return len(self.index)

    def _row(self, i: int) -> np.ndarray:
        a, r = self.index[i]
        return self.arrays[a][r]

    def describe(self, i: int) -> str:
        a, r = self.index[i]
        return f"{self.names[a]}[{r}]"

    def hash_into(self, i: int, h) -> None:
        feed(h, b"array")
        _feed_array(h, self._row(i))

    def take(self, indices: np.ndarray):
        new = object.__new__(type(self))
        new.arrays, new.names = self.arrays, self.names
        new.index = self.index[np.asarray(indices, dtype=np.int64)]
        return new


class ArrayImages(_Rows):
    """In-memory images: each array is ``(N, H, W)`` or ``(N, H, W, 3)``."""

    def __init__(self, arrays, index=None, names=None):
        super().__init__(arrays, index, names)
        for name, arr in zip(self.names, self.arrays):
            if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] != 3):
                raise DataError(f"{name}: images must be (N, H, W) or (N, H, W, 3), got {arr.shape}")
            if len(arr) and min(arr.shape[1:3]) < MIN_SIDE:
                check_image_size(arr[0], name, "every image")

    def load(self, i: int) -> np.ndarray:
        return np.array(self._row(i))  # a copy: callers may modify it


# --------------------------------------------------------------------------- masks
class FileMasks:
    """Zero or more mask files per sample; the mask is their union (plane ``planes[i]`` of mask volumes)."""

    circles = None

    def __init__(self, paths: Sequence[Sequence[str | Path]], planes: Optional[Sequence[Optional[int]]] = None):
        self.paths = tuple(tuple(_absolute(p) for p in group) for group in paths)
        self.planes = tuple(planes) if planes is not None else (None,) * len(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def has(self, i: int) -> bool:
        return bool(self.paths[i])

    def nonempty(self, i: int) -> bool:
        """Whether sample ``i``'s mask has a pixel inside (its files decoded, no image read)."""
        return any(bool(np.any(read_mask(p, **_reading(plane=self.planes[i])))) for p in self.paths[i])

    def load(self, i: int, shape: tuple[int, int], image_desc: str) -> Optional[np.ndarray]:
        if not self.paths[i]:
            return None
        union = None
        for p in self.paths[i]:
            m = read_mask(p, **_reading(plane=self.planes[i]))
            if m.shape != tuple(shape):
                raise _shape_mismatch(p, m.shape, image_desc, shape)
            union = m if union is None else (union | m)
        return union

    def describe(self, i: int) -> str:
        return "; ".join(self.paths[i]) or "(no mask)"

    def hash_into(self, i: int, h) -> None:
        feed(h, b"maskfiles%d" % len(self.paths[i]))
        for p in self.paths[i]:
            _feed_file(h, p)
        plane = self.planes[i]
        if plane is not None:
            feed(h, b"plane%d" % plane)

    def take(self, indices: np.ndarray) -> "FileMasks":
        return FileMasks([self.paths[j] for j in indices], [self.planes[j] for j in indices])


class ArrayMasks(_Rows):
    """In-memory masks: each array ``(N, H, W)``, nonzero = inside."""

    circles = None

    def __init__(self, arrays, index=None, names=None):
        super().__init__(arrays, index, names)
        for name, arr in zip(self.names, self.arrays):
            if arr.ndim != 3:
                raise DataError(f"{name}: masks must be (N, H, W), got {arr.shape}")

    def has(self, i: int) -> bool:
        return True

    def nonempty(self, i: int) -> bool:
        return bool(np.any(np.asarray(self._row(i)) != 0))

    def load(self, i: int, shape: tuple[int, int], image_desc: str) -> np.ndarray:
        m = np.asarray(self._row(i)) != 0
        if m.shape != tuple(shape):
            raise _shape_mismatch(self.describe(i), m.shape, image_desc, shape)
        return m


class CircleMasks:
    """Zero or more circles ``(cx, cy, r)`` per sample, in image pixel coordinates."""

    def __init__(self, circles: Sequence[Sequence[tuple[float, float, float]]]):
        self.circles = tuple(tuple((float(cx), float(cy), float(r)) for cx, cy, r in group)
                             for group in circles)
        for group in self.circles:
            for c in group:
                if not c[2] > 0:
                    raise DataError(f"circle {c}: radius must be positive")

    def __len__(self) -> int:
        return len(self.circles)

    def has(self, i: int) -> bool:
        return True  # no circle = an empty mask (e.g. a normal film)

    def nonempty(self, i: int) -> bool:
        return any(r > 0 for _, _, r in self.circles[i])

    def load(self, i: int, shape: tuple[int, int], image_desc: str) -> np.ndarray:
        return circles_to_mask(self.circles[i], shape)

    def describe(self, i: int) -> str:
        return f"circles {list(self.circles[i])}"

    def hash_into(self, i: int, h) -> None:
        feed(h, b"circles")
        feed(h, np.asarray(self.circles[i], dtype="<f8").tobytes())

    def take(self, indices: np.ndarray) -> "CircleMasks":
        return CircleMasks([self.circles[j] for j in indices])


# --------------------------------------------------------------------------- one read: hash and decode
def load_hashed(source, h, i: int, *args):
    """Sample ``i`` of ``source`` decoded from the very bytes fed into ``h`` (as ``source.hash_into`` feeds them).

    Each file is read once; the hash and the decoder both read that content
    (:func:`featurekit.imageio.preloaded`; NIfTI volumes, which nibabel opens
    by name, through a private copy of it), so what is decoded is what was
    hashed even if the file changes meanwhile (messages name the real file).
    In-memory sources hash and load their own arrays. A DICOM series folder
    is hashed before and after its plane is decoded: a change that lasts
    until then is a :class:`~featurekit.errors.DataChangedError`.
    ``args``: what ``source.load`` takes after ``i``.
    """
    paths = getattr(source, "paths", None)
    if paths is None:
        source.hash_into(i, h)
        return source.load(i, *args)
    group = (paths[i],) if isinstance(paths[i], str) else tuple(paths[i])
    if any(Path(p).is_dir() for p in group):
        after = h.copy()
        source.hash_into(i, h)
        out = source.load(i, *args)
        source.hash_into(i, after)
        if after.digest() != h.digest():
            raise DataChangedError(f"{source.describe(i)}: {CHANGED}")
        return out
    contents = {}
    for p in group:
        try:
            contents[p] = Path(p).read_bytes()
        except FileNotFoundError:
            raise _unreadable(p, "file not found") from None
        except OSError as exc:
            raise _unreadable(p, f"cannot read file ({exc})") from None
    if not any(image_suffix(p) in VOLUME_EXTENSIONS for p in group):
        # Pillow, pydicom and the hash read the content held here (imageio.preloaded)
        with preloaded(contents):
            source.hash_into(i, h)
            return source.load(i, *args)
    # nibabel opens volumes by name: they are decoded from a private copy of that content
    with tempfile.TemporaryDirectory(prefix="featurekit-read-") as tmp:
        copies = []
        for k, p in enumerate(group):
            copy = Path(tmp) / str(k) / Path(p).name
            copy.parent.mkdir()
            copy.write_bytes(contents[p])
            copies.append(str(copy))
        one = source.take(np.array([i]))
        one.paths = (copies[0],) if isinstance(paths[i], str) else (tuple(copies),)
        one.hash_into(0, h)
        try:
            return one.load(0, *args)
        except DataError as exc:
            message = str(exc)
            for name, p in zip(copies, group):
                message = message.replace(name, p)
            raise type(exc)(message) from None


#: What a :class:`~featurekit.errors.DataChangedError` says after the file's name.
CHANGED = ("the file changed while featurekit was reading it (its content differs from the content hash this "
           "run took): nothing computed from it is kept; run again once it no longer changes")
