"""Reading images and masks, with one documented rule for every image.

Decoding rule (:func:`read_image`)
----------------------------------
Every file is decoded to a NumPy array in its *native* intensity units and
dtype; nothing is rescaled, equalised or resized on read.

===========================  ===============================================
File / Pillow mode           Result
===========================  ===============================================
``L`` (8-bit gray)           ``uint8`` ``(H, W)``
``1`` (bilevel)              ``uint8`` ``(H, W)`` with values {0, 255}
``LA`` / ``La``              ``uint8`` ``(H, W)``, alpha dropped
``RGB``                      ``uint8`` ``(H, W, 3)`` -- kept RGB even when the
                             three channels are identical (no guessing)
``RGBA`` / ``RGBX`` / ...    ``uint8`` ``(H, W, 3)``, alpha dropped
``CMYK`` / ``YCbCr`` / ...   converted by Pillow to ``uint8`` RGB
``P`` / ``PA`` (palette)     ``uint8`` ``(H, W)`` if every palette entry is gray
                             (R == G == B), else ``uint8`` ``(H, W, 3)``
``I;16*`` (16-bit PNG/TIFF)  ``uint16`` ``(H, W)``
``I`` (32-bit int)           ``uint16`` ``(H, W)`` when all values lie in
                             0..65535 (e.g. 16-bit PGM), else :class:`DataError`
``F`` (32-bit float)         ``float32`` ``(H, W)``, values in [0, 1] (others are an error)
DICOM (``.dcm``)             ``float32`` in [0, 1] through the modality LUT,
                             the window and MONOCHROME1 inversion
                             (:mod:`featurekit.data.dicom`)
NIfTI, DICOM series folder   one slice, ``float32`` in [0, 1]
                             (:mod:`featurekit.data.volumes`)
===========================  ===============================================

Multi-frame files (animated GIF/PNG, multi-page TIFF) are read as their first
frame. Pillow decodes 48/64-bit colour PNGs to 8-bit RGB, so such files lose
their low byte; store 16-bit data as single-channel images.

Model-input rule (:func:`to_model_input`)
-----------------------------------------
A CNN input is always a ``float32`` ``(H, W, 3)`` array in [0, 1]:

* intensity: 8-bit images are scaled by 1/255, 16-bit images by 1/65535, bool
  masks map to 0/1, float images are taken as already in [0, 1]
  (:func:`to_unit_float`) -- DICOM files and volumes are read to [0, 1] by
  their headers and window, never by their container's dtype;
* channels: a gray image is replicated to 3 channels, an RGB image is kept as
  it is (:func:`to_rgb`).

Handcrafted texture features work on :func:`to_gray`: a ``float64`` ``(H, W)``
image in native units (an 8-bit image stays on the 0..255 scale), RGB reduced
to luma with the ITU-R BT.709 weights used by :func:`skimage.color.rgb2gray`.

Size rule (:func:`check_image_size`)
------------------------------------
An image (and a region of interest cropped from it) must be at least
:data:`MIN_SIDE` = 2 pixels on each side: a 1-pixel side holds no texture and
no shape, so resizing it to a network's input or computing texture features
from it would give numbers that describe nothing. Smaller images are a
:class:`DataError` naming the file, never silently featurised.

Every bad input (missing, truncated or corrupt file, non-image file, unsupported
mode, NaN, too small) raises :class:`featurekit.errors.DataError` whose message
names the file (or the array's shape) and the problem.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
from pathlib import Path
from typing import IO, Iterator, Mapping, Optional, Union

import numpy as np

from featurekit.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "DICOM_EXTENSIONS",
    "VOLUME_EXTENSIONS",
    "image_suffix",
    "image_stem",
    "reading_key",
    "MIN_SIDE",
    "check_image_size",
    "LUMA_WEIGHTS",
    "is_image_file",
    "open_bytes",
    "preloaded",
    "readable",
    "read_image",
    "read_mask",
    "image_shape",
    "to_unit_float",
    "to_gray",
    "to_rgb",
    "to_model_input",
]

PathLike = Union[str, os.PathLike]

#: Extensions (lower case) read through DICOM rather than Pillow.
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})

#: Name endings (lower case) of volumes read slice by slice (NIfTI, through nibabel).
VOLUME_EXTENSIONS = frozenset({".nii", ".nii.gz"})

#: Extensions (lower case) recognised as images by the loaders (see :func:`image_suffix`).
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm", ".ppm", ".pbm", ".pnm"}
) | DICOM_EXTENSIONS | VOLUME_EXTENSIONS

#: Version of the DICOM / volume reading rule, part of :func:`reading_key`.
_READING_VERSION = "featurekit.dicom-volume-reading/1"

#: Smallest image side (pixels) featurekit processes; see the size rule in the module docstring.
MIN_SIDE = 2

#: ITU-R BT.709 luma weights, identical to :func:`skimage.color.rgb2gray`.
LUMA_WEIGHTS = (0.2125, 0.7154, 0.0721)

_RGB_LIKE_MODES = frozenset({"RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"})
_GRAY_ALPHA_MODES = frozenset({"LA", "La"})
_UINT16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def image_suffix(path: PathLike) -> str:
    """The lower-case extension that says how a file is read: ``.nii.gz`` counts as one."""
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def image_stem(path: PathLike) -> str:
    """The file name without :func:`image_suffix` (``a.nii.gz`` -> ``a``)."""
    name = Path(path).name
    return name[: len(name) - len(image_suffix(name))]


def is_image_file(path: PathLike) -> bool:
    """True when ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return image_suffix(path) in IMAGE_EXTENSIONS


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")


# --------------------------------------------------------------------------- file contents read once
#: ``str(path) -> bytes`` of files already read in this context (see :func:`preloaded`)
_PRELOADED: contextvars.ContextVar[Mapping[str, bytes] | None] = contextvars.ContextVar(
    "featurekit_preloaded", default=None)


def _preloaded_content(path: PathLike) -> bytes | None:
    return (_PRELOADED.get() or {}).get(str(path))


@contextlib.contextmanager
def preloaded(contents: Mapping[str, bytes]) -> Iterator[None]:
    """Within the block, :func:`open_bytes` of these paths serves the given bytes instead of the file.

    So that what a run hashes and what it decodes are the same bytes (a file
    rewritten in between changes neither), the file is read once and both the
    hash and the decoders (Pillow, pydicom) read that content. Per thread /
    task context (a :class:`contextvars.ContextVar`).
    """
    token = _PRELOADED.set({**(_PRELOADED.get() or {}), **{str(k): v for k, v in contents.items()}})
    try:
        yield
    finally:
        _PRELOADED.reset(token)


def open_bytes(path: PathLike) -> IO[bytes]:
    """A binary file object of ``path``: its preloaded content (:func:`preloaded`) or the file."""
    data = _preloaded_content(path)
    return io.BytesIO(data) if data is not None else open(path, "rb")


def readable(path: PathLike) -> Union[str, IO[bytes]]:
    """What a decoder should open: the preloaded content of ``path`` as a file object, else the path."""
    data = _preloaded_content(path)
    return io.BytesIO(data) if data is not None else str(path)


# --------------------------------------------------------------------------- Pillow
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


def _decode_error(path: Path, exc: BaseException) -> DataError:
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return DataError(f"{path}: not a recognised image file (cannot identify format)")
    if isinstance(exc, Image.DecompressionBombError):
        return DataError(f"{path}: image too large to decode safely ({exc})")
    return DataError(f"{path}: corrupt or truncated image ({exc})")


def _open_pillow(path: Path):
    from PIL import Image

    try:
        im = Image.open(readable(path))
    except _DECODE_ERRORS + (Image.DecompressionBombError,) as exc:
        raise _decode_error(path, exc) from None
    try:
        im.load()
    except _DECODE_ERRORS + (Image.DecompressionBombError,) as exc:
        im.close()
        raise _decode_error(path, exc) from None
    return im


def _palette_is_gray(im) -> bool:
    palette = im.getpalette(rawmode="RGB")
    if not palette:
        return False
    entries = np.asarray(palette, dtype=np.int32).reshape(-1, 3)
    return bool(np.all(entries[:, 0] == entries[:, 1]) and np.all(entries[:, 1] == entries[:, 2]))


def _pillow_to_array(im, path: Path) -> np.ndarray:
    mode = im.mode
    if mode == "L":
        return np.asarray(im, dtype=np.uint8).copy()
    if mode == "1":
        return np.asarray(im.convert("L"), dtype=np.uint8).copy()
    if mode in _GRAY_ALPHA_MODES:
        return np.asarray(im.convert("L"), dtype=np.uint8).copy()
    if mode in ("P", "PA"):
        # via RGBA so that palette transparency is dropped cleanly (no Pillow warning)
        rgb = np.asarray(im.convert("RGBA"), dtype=np.uint8)[..., :3]
        return (rgb[..., 0] if _palette_is_gray(im) else rgb).copy()
    if mode in _RGB_LIKE_MODES:
        return np.asarray(im.convert("RGB") if mode != "RGB" else im, dtype=np.uint8).copy()
    if mode in _UINT16_MODES:
        return np.asarray(im).astype(np.uint16)
    if mode == "I":
        arr = np.asarray(im)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise DataError(
                f"{path}: 32-bit integer image with values {arr.min()}..{arr.max()} outside "
                "0..65535 is not supported (store it as 16-bit or float)"
            )
        return arr.astype(np.uint16)
    if mode == "F":
        arr = np.asarray(im, dtype=np.float32).copy()
        finite = arr[np.isfinite(arr)]
        if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
            # float pixels are taken as intensities in [0, 1] (to_unit_float): other values are not guessed
            raise DataError(
                f"{path}: 32-bit float image with values {finite.min():g}..{finite.max():g} outside [0, 1]; "
                "featurekit reads float images as intensities in [0, 1]: store it as 8- or 16-bit integers, "
                "or scaled to [0, 1]"
            )
        return arr
    raise DataError(f"{path}: unsupported image mode {mode!r}")


def _read_pillow(path: Path) -> np.ndarray:
    im = _open_pillow(path)
    try:
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
        arr = _pillow_to_array(im, path)
    finally:
        im.close()
    return arr


# --------------------------------------------------------------------------- public
def read_image(path: PathLike, window=None, plane: Optional[int] = None) -> np.ndarray:
    """Decode an image file to an array, in native units except for DICOM and volumes.

    Parameters
    ----------
    path : str or os.PathLike
        PNG, JPEG, TIFF, BMP, PGM/PPM (through Pillow), DICOM (``.dcm``,
        through pydicom), NIfTI (``.nii``, ``.nii.gz``, through nibabel) or a
        DICOM series folder; pydicom and nibabel are imported only when needed.
    window : str or featurekit.data.window.Window, optional
        How DICOM and NIfTI values map to [0, 1] (:mod:`featurekit.data.window`);
        default ``auto``. Pillow files have no window.
    plane : int, optional
        The frame of a multi-frame DICOM file or the slice of a volume / series
        (required for those); ``None`` for 2-D images.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` for gray, ``(H, W, 3)`` for colour. Pillow files: dtype
        ``uint8``, ``uint16`` or ``float32`` following the table in the module
        docstring. DICOM and volumes: ``float32`` in [0, 1], read through the
        modality LUT, the window and MONOCHROME1 inversion
        (:mod:`featurekit.data.dicom`, :mod:`featurekit.data.volumes`).

    Raises
    ------
    DataError
        Missing file, undecodable / truncated / non-image file, unsupported
        mode, empty image, DICOM without pydicom or NIfTI without nibabel
        installed, a stack without a plane, values that no window maps.
    """
    p = Path(path)
    suffix = image_suffix(p)
    if _is_series(p) or suffix in VOLUME_EXTENSIONS:
        from featurekit.data.volumes import read_plane

        if not p.is_dir():
            _check_file(p)
        arr = read_plane(p, window, plane)
    else:
        _check_file(p)
        if suffix in DICOM_EXTENSIONS:
            from featurekit.data.dicom import read_dicom

            arr = read_dicom(p, window, plane)
        else:
            _no_plane(p, plane)
            arr = _read_pillow(p)
    if arr.size == 0:
        raise DataError(f"{p}: image has zero size {arr.shape}")
    return check_image_size(arr, str(p))


def _is_series(p: Path) -> bool:
    """A DICOM series folder (any other folder is "not a regular file")."""
    if not p.is_dir():
        return False
    from featurekit.data.dicom import is_dicom_series

    return is_dicom_series(p)


def _no_plane(p: Path, plane: Optional[int]) -> None:
    if plane is not None:
        raise DataError(f"{p}: a 2-D image has no plane {plane}")


def reading_key(path: PathLike, window=None, plane: Optional[int] = None) -> bytes:
    """What decides a file's pixels besides its bytes, for content hashes.

    Empty for Pillow files (their decoding has no options); for DICOM files,
    volumes and series the reading version, the window and the plane, so two
    readings of one file never share a cache row.
    """
    p = Path(path)
    if not (p.is_dir() or image_suffix(p) in DICOM_EXTENSIONS | VOLUME_EXTENSIONS):
        return b""
    from featurekit.data.window import Window

    return f"{_READING_VERSION}|{Window.parse(window).key}|{plane}".encode()


def check_image_size(img: np.ndarray, where: str, what: str = "image") -> np.ndarray:
    """Return ``img`` when both sides are at least :data:`MIN_SIDE` pixels, else raise.

    Parameters
    ----------
    img : ndarray, ``(H, W)`` or ``(H, W, C)``
    where : str
        The file (or ``array[row]``) named in the error.
    what : str
        What the array is, for the message (``"image"``, ``"region of interest"``).

    Raises
    ------
    DataError
    """
    h, w = (int(v) for v in np.shape(img)[:2])
    if h < MIN_SIDE or w < MIN_SIDE:
        raise DataError(f"{where}: {what} is {h}x{w} pixels (HxW); featurekit needs at least "
                        f"{MIN_SIDE}x{MIN_SIDE} (a 1-pixel side has no texture or shape to describe)")
    return img


def read_mask(path: PathLike, plane: Optional[int] = None) -> np.ndarray:
    """Read a mask file as ``bool`` ``(H, W)``: nonzero is inside.

    Colour masks are inside where any channel is nonzero. DICOM masks and
    mask volumes (plane ``plane``) use their stored values: no LUT or window
    applies to labels.
    """
    p = Path(path)
    suffix = image_suffix(p)
    if _is_series(p) or suffix in VOLUME_EXTENSIONS or suffix in DICOM_EXTENSIONS:
        from featurekit.data.volumes import read_plane_mask

        if not p.is_dir():
            _check_file(p)
        return check_image_size(read_plane_mask(p, plane), str(p), "mask")
    arr = read_image(p, plane=plane)
    if arr.ndim == 3:
        return np.any(arr != 0, axis=-1)
    return arr != 0


def image_shape(path: PathLike) -> tuple[int, int]:
    """``(H, W)`` of an image file, read from its header without decoding pixels."""
    p = Path(path)
    _check_file(p)
    if p.suffix.lower() in DICOM_EXTENSIONS:
        from featurekit.data.dicom import dicom_shape

        return dicom_shape(p)
    from PIL import Image

    try:
        with Image.open(p) as im:
            w, h = im.size
    except _DECODE_ERRORS + (Image.DecompressionBombError,) as exc:
        raise _decode_error(p, exc) from None
    return int(h), int(w)


def _describe(img: np.ndarray) -> str:
    return f"array of shape {img.shape} and dtype {img.dtype}"


def to_unit_float(img: np.ndarray) -> np.ndarray:
    """Scale an image to ``float32`` in [0, 1] by its dtype, never by its content.

    Rule: ``uint8`` / 255, ``uint16`` / 65535, ``bool`` -> 0.0 / 1.0; float
    images are taken as already in [0, 1] and only cast to ``float32`` (not
    clipped, not min-max normalised). Other dtypes raise :class:`DataError`:
    convert them explicitly first.
    """
    img = np.asarray(img)
    if img.dtype == np.bool_:
        return img.astype(np.float32)
    if img.dtype == np.uint8:
        return img.astype(np.float32) / np.float32(255.0)
    if img.dtype == np.uint16:
        return img.astype(np.float32) / np.float32(65535.0)
    if img.dtype.kind == "f":
        return img.astype(np.float32, copy=False)
    raise DataError(
        f"to_unit_float: unsupported dtype {img.dtype} ({_describe(img)}); "
        "expected uint8, uint16, bool or float"
    )


def _check_finite(img: np.ndarray, where: str) -> None:
    if img.dtype.kind == "f" and not np.all(np.isfinite(img)):
        raise DataError(f"{where}: image contains NaN or infinite values ({_describe(img)})")


def to_gray(img: np.ndarray) -> np.ndarray:
    """Gray ``float64`` ``(H, W)`` image in native intensity units.

    A gray image is only cast (a ``uint8`` image stays on the 0..255 scale);
    an RGB image becomes ``0.2125 R + 0.7154 G + 0.0721 B`` (ITU-R BT.709, as
    :func:`skimage.color.rgb2gray`, but without rescaling to [0, 1]).
    ``(H, W, 1)`` is squeezed. NaN/inf or other shapes raise :class:`DataError`.
    """
    img = np.asarray(img)
    _check_finite(img, "to_gray")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return img.astype(np.float64)
    if img.ndim == 3 and img.shape[-1] == 3:
        return img.astype(np.float64) @ np.asarray(LUMA_WEIGHTS, dtype=np.float64)
    raise DataError(f"to_gray: expected (H, W) or (H, W, 3), got {_describe(img)}")


def to_rgb(img: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` image: gray replicated to three channels, colour kept; dtype kept."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=-1)
    if img.ndim == 3 and img.shape[-1] == 3:
        return img
    raise DataError(f"to_rgb: expected (H, W) or (H, W, 3), got {_describe(img)}")


def to_model_input(img: np.ndarray) -> np.ndarray:
    """The model-input rule: ``float32`` ``(H, W, 3)`` in [0, 1].

    Equivalent to ``to_rgb(to_unit_float(img))``; see the module docstring.
    NaN/inf raise :class:`DataError`.
    """
    img = np.asarray(img)
    _check_finite(img, "to_model_input")
    return np.ascontiguousarray(to_rgb(to_unit_float(img)))
