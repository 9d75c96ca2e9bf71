"""Input rules shared by the handcrafted feature families.

What a transformer accepts as ``X`` and how each sample becomes one 2-D
``float64`` gray image in native intensity units (the rule of
:func:`featurekit.imageio.to_gray`):

=====================================  ==========================================
``X``                                  samples
=====================================  ==========================================
featurekit ``Dataset`` (anything with  ``len(X)`` samples: ``X.image(i)`` (ROI
``image(i)``, ``mask(i)``, ``len``)    crop, native units) and ``X.mask(i)``
list / tuple of arrays                 one sample per element: ``(H, W)`` gray,
                                       ``(H, W, 3)`` RGB, ``(H, W, 1)``, or
                                       ``(W,)`` = a 1-pixel-high image
``(N, H, W)`` array                    ``N`` gray images
``(N, H, W, 3)`` / ``(N, H, W, 1)``    ``N`` colour images (BT.709 luma)
``(N, W)`` array / DataFrame           scikit-learn's tabular convention: row
                                       ``i`` is sample ``i``, read as a
                                       ``(1, W)`` image (see below)
=====================================  ==========================================

RGB is reduced to gray with the ITU-R BT.709 luma weights
``0.2125 R + 0.7154 G + 0.0721 B`` (as :func:`skimage.color.rgb2gray`, without
rescaling); 8- and 16-bit images keep their scale (0..255, 0..65535).

2-D ``X``.  scikit-learn hands every transformer ``X`` of shape
``(n_samples, n_features)`` and expects ``n_samples`` output rows. The rule
"sample ``i`` is ``X[i]``" is applied consistently: for an ``(N, H, W)`` stack
``X[i]`` is an image, for an ``(N, W)`` matrix ``X[i]`` is a row of ``W``
pixels, i.e. a ``(1, W)`` image. A *single* image therefore has to be passed
as ``image[None]`` or ``[image]``; passing it bare gives one row of features
per image row.

Rejected with :class:`~featurekit.errors.DataError` (a ``ValueError``):
NaN/inf pixels, complex or non-numeric data, sparse matrices, 1-D ``X``, empty
images, masks whose shape differs from their image, and empty masks (unless
``empty_mask='whole'``, which then uses the whole image). A family computed
from the masks alone (2-D shape, ``read_pixels=False``) does not read pixel
values, so NaN/inf pixels are no error there (scikit-learn tag ``allow_nan``).

Parameters shared by the three transformers, validated here once per call
(:func:`check_shared`):

==============  ===========================================================
``device``      ``'cpu'`` (default for every family), ``'cuda[:k]'``, or
                ``'auto'`` (a GPU when torch sees one)
``n_jobs``      joblib workers over images on the CPU (``None`` = 1, ``-1`` =
                all cores)
``empty_mask``  ``'error'`` (default) or ``'whole'``
``max_side``    ``None`` (never resize) or an int >= 8: an image whose longer
                side exceeds it is downsized (aspect ratio kept; longer side
                = ``max_side``) with :func:`featurekit.handcrafted._resize.resize`
                (skimage's anti-aliased bilinear rule, in native units), its
                mask resized the same way and kept where >= 0.5, and a
                :class:`DownsizedWarning` names the images. Part of
                ``get_params``, hence of the feature cache's entry id.
==============  ===========================================================

Memory. Every image becomes one ``float64`` gray array (8 bytes per pixel;
an RGB image is converted in row blocks, so no ``(H, W, 3)`` float copy is
made), except that families which only read their images (all of them: Gabor,
Haar-like, GLCM and every :class:`~featurekit.handcrafted._base.FamilyTransformer`) keep gray
images that are integer (8/16-bit) or already ``float64`` as they are, without
a copy (``keep_integers``; ``float64`` ones still checked for NaN/inf): a
batch then costs its decoded size, not 8x it, and no time goes into copying.
Such a family never writes into its images (they are the caller's arrays).
:func:`prepare` returns the images as :class:`Prepared` lists, which the
family functions take as they are (no second validation or copy).
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from featurekit.errors import DataError

__all__ = [
    "DownsizedWarning",
    "Prepared",
    "check_shared",
    "prepare",
    "is_dataset",
    "is_tabular",
    "load_images",
    "check_images",
    "check_masks",
    "mask_box",
    "resolve_device",
    "chunks",
    "run_chunks",
    "EMPTY_MASK_MODES",
]

EMPTY_MASK_MODES = ("error", "whole")
#: Smallest accepted ``max_side``.
MIN_SIDE = 8
#: Pixels converted from RGB at a time (bounds the float64 temporaries to ~24 MB).
_GRAY_BLOCK = 1 << 20


class DownsizedWarning(UserWarning):
    """An image larger than ``max_side`` was downsized before its features were computed."""


class Prepared(list):
    """Images (float64 gray) or masks (bool or None) already validated by :func:`prepare`.

    :func:`check_images`, :func:`check_masks` and :func:`load_images` return
    such a list unchanged: validation and the float conversion happen once.
    """


def is_dataset(X: Any) -> bool:
    """True for a featurekit ``Dataset`` or anything shaped like one (duck typing)."""
    return (
        callable(getattr(X, "image", None))
        and callable(getattr(X, "mask", None))
        and hasattr(X, "__len__")
        and not isinstance(X, np.ndarray)
    )


def is_tabular(X: Any) -> bool:
    """True for 2-D numeric array-likes that are not lists of images (ndarray, DataFrame)."""
    if is_dataset(X) or isinstance(X, (list, tuple)):
        return False
    return getattr(X, "ndim", None) == 2


def _to_gray(img: np.ndarray, where: str) -> np.ndarray:
    from featurekit.imageio import to_gray  # lazy: keeps the import graph light

    try:
        return to_gray(img)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None


def _as_numeric(arr: Any, where: str) -> np.ndarray:
    """``np.asarray`` with the errors scikit-learn's checks expect."""
    try:
        import scipy.sparse as sp

        if sp.issparse(arr):
            raise DataError(
                f"{where}: sparse input is not supported (Sparse matrix given); pass dense images"
            )
    except ImportError:  # pragma: no cover - scipy is a dependency
        pass
    if hasattr(arr, "to_numpy") and not isinstance(arr, np.ndarray):  # pandas
        arr = arr.to_numpy()
    a = np.asarray(arr)
    if a.dtype.kind == "c":
        raise DataError(f"{where}: Complex data not supported (dtype {a.dtype})")
    if a.dtype.kind == "O":
        # raises TypeError "float() argument must be a string or a real number"
        # for non-numeric objects, as np.asarray does in scikit-learn
        a = a.astype(np.float64)
    elif a.dtype.kind == "b":
        a = a.astype(np.uint8)
    elif a.dtype.kind not in "uif":
        raise DataError(f"{where}: expected numeric pixels, got dtype {a.dtype}")
    return a  # NaN / inf are rejected by featurekit.imageio.to_gray


def _one_image(a: np.ndarray, where: str, keep_integers: bool = False, read_pixels: bool = True) -> np.ndarray:
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim == 3 and a.shape[-1] not in (1, 3):
        raise DataError(
            f"{where}: expected (H, W), (H, W, 3) or (H, W, 1), got an array of shape {a.shape}"
        )
    if a.ndim not in (2, 3):
        raise DataError(f"{where}: expected a 2-D image, got an array of shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(f"{where}: empty image of shape {a.shape}")
    if not read_pixels:  # a family of the masks alone: only the image's form counts, its values are not read
        return a if a.ndim == 2 else a[..., 0]
    if keep_integers and (a.dtype.kind in "ui" or a.dtype == np.float64) and (a.ndim == 2 or a.shape[-1] == 1):
        # integers are exact in float64 wherever they are read, float64 is the type itself: no copy
        g = a if a.ndim == 2 else a[..., 0]
        if g.dtype.kind == "f":
            from featurekit.handcrafted._kernels import all_finite

            if not all_finite(g):
                _to_gray(g, where)  # raises the one NaN/inf error, naming the image
        return g
    if a.ndim == 3 and a.shape[-1] == 3 and a.size > 3 * _GRAY_BLOCK:
        out = np.empty(a.shape[:2], dtype=np.float64)
        step = max(1, _GRAY_BLOCK // a.shape[1])
        for r in range(0, a.shape[0], step):  # the same per-pixel rule, bounded temporaries
            out[r : r + step] = _to_gray(a[r : r + step], where)
        return out
    return _to_gray(a, where)


def check_images(X: Any, keep_integers: bool = False, read_pixels: bool = True) -> List[np.ndarray]:
    """Images of a non-Dataset ``X`` as a list of ``float64`` ``(H, W)`` arrays
    (integer and ``float64`` gray images kept as they are with ``keep_integers``; with
    ``read_pixels=False`` every image is kept as it is, its values not read: a 2-D view).

    See the module docstring for the accepted forms.
    """
    if isinstance(X, Prepared):
        return X
    if is_dataset(X):
        raise TypeError("check_images does not read Datasets; use load_images")
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise DataError("no images: X is an empty list (0 samples)")
        return [_one_image(_as_numeric(x, f"image {i}"), f"image {i}", keep_integers, read_pixels)
                for i, x in enumerate(X)]
    a = _as_numeric(X, "X")
    if a.ndim < 2:
        raise DataError(
            f"Expected a 2D array (n_samples, n_features), a stack of images or a list of "
            f"images, got a {a.ndim}D array of shape {a.shape} instead. Reshape your data: a "
            "single image as image[None] or [image], a single 1-D sample as x[None]"
        )
    if a.ndim > 4 or (a.ndim == 4 and a.shape[-1] not in (1, 3)):
        raise DataError(
            f"X: expected (N, W), (N, H, W), (N, H, W, 3) or (N, H, W, 1), got shape {a.shape}"
        )
    if a.shape[0] == 0:
        raise DataError(f"Found array with 0 sample(s) (shape={a.shape}) while a minimum of 1 is required")
    if a.ndim == 2 and a.shape[1] == 0:
        raise DataError(f"Found array with 0 feature(s) (shape={a.shape}) while a minimum of 1 is required.")
    if a.size == 0:
        raise DataError(f"X: empty images in an array of shape {a.shape}")
    return [_one_image(a[i], f"image {i}", keep_integers, read_pixels) for i in range(a.shape[0])]


def check_masks(
    images: Sequence[np.ndarray],
    masks: Optional[Sequence[Optional[np.ndarray]]],
    empty_mask: str = "error",
) -> List[Optional[np.ndarray]]:
    """Validate masks against their images: bool, same shape, not empty.

    Returns a list with one entry per image: a bool ``(H, W)`` array, or
    ``None`` (no mask: the whole image is the region of interest). An empty
    mask raises :class:`DataError` when ``empty_mask='error'`` and becomes
    ``None`` when ``empty_mask='whole'``.
    """
    if isinstance(masks, Prepared) and len(masks) == len(images):
        return masks
    if empty_mask not in EMPTY_MASK_MODES:
        raise DataError(f"empty_mask must be one of {EMPTY_MASK_MODES}, got {empty_mask!r}")
    n = len(images)
    if masks is None:
        return [None] * n
    masks = list(masks)
    if len(masks) != n:
        raise DataError(f"{len(masks)} masks given for {n} images")
    out: List[Optional[np.ndarray]] = []
    for i, (img, m) in enumerate(zip(images, masks)):
        if m is None:
            out.append(None)
            continue
        m = np.asarray(m)
        if m.ndim == 3 and m.shape[-1] in (1, 3):
            m = np.any(m != 0, axis=-1)
        if m.shape != img.shape:
            raise DataError(f"mask {i}: shape {m.shape} differs from its image's shape {img.shape}")
        if m.dtype.kind == "f" and not np.all(np.isfinite(m)):
            raise DataError(f"mask {i}: contains NaN or inf values")
        m = m if m.dtype == bool else m != 0  # a bool mask is only read: no copy
        if not m.any():
            if empty_mask == "error":
                raise DataError(
                    f"mask {i} is empty (no pixel inside the region of interest); pass empty_mask='whole' to "
                    "use the whole image for such samples -- unless empty masks go with a class (BUSI's normal "
                    "images): then read no masks at all (Dataset.without_masks(), --no-masks), or the "
                    "features describe the lesion in some classes and the whole image in others"
                )
            out.append(None)
            continue
        out.append(m)
    return out


def mask_box(mask: np.ndarray) -> Tuple[int, int, int, int]:
    """Rows and columns ``(r0, r1, c0, c1)`` (half-open) of the bounding box of a checked,
    non-empty bool mask (:func:`check_masks`); the columns are looked for in its rows only."""
    rows = np.flatnonzero(mask.any(axis=1))
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(mask[r0:r1].any(axis=0))
    return r0, r1, int(cols[0]), int(cols[-1]) + 1


def _sample(X: Any, i: int):
    """``(X.image(i), X.mask(i))``, read in one go through ``X[i]`` when that returns a
    featurekit ``Sample`` (one decode instead of two)."""
    if hasattr(X, "__getitem__"):
        s = X[i]
        if hasattr(s, "image") and hasattr(s, "mask") and not callable(s.image):
            return s.image, s.mask
    return X.image(i), X.mask(i)


def load_images(
    X: Any,
    masks: Optional[Sequence[Optional[np.ndarray]]] = None,
    empty_mask: str = "error",
    keep_integers: bool = False,
    read_pixels: bool = True,
) -> Tuple[List[np.ndarray], List[Optional[np.ndarray]]]:
    """``(images, masks)`` of any accepted ``X`` (see the module docstring).

    A Dataset supplies its own masks (``X.mask(i)``); ``masks`` is then not
    allowed. Otherwise ``masks`` is ``None`` or one entry per image.
    """
    if isinstance(X, Prepared):
        return X, check_masks(X, masks, empty_mask)
    if is_dataset(X):
        if masks is not None:
            raise DataError("a Dataset carries its own masks; do not pass masks as well")
        n = len(X)
        if n == 0:
            raise DataError("no images: the dataset is empty (0 samples)")
        images, raw = [], []
        for i in range(n):
            img, m = _sample(X, i)
            images.append(_one_image(_as_numeric(np.asarray(img), f"sample {i}"), f"sample {i}", keep_integers,
                                     read_pixels))
            raw.append(m)
        return images, check_masks(images, raw, empty_mask)
    images = check_images(X, keep_integers, read_pixels)
    return images, check_masks(images, masks, empty_mask)


def resolve_device(device: Any) -> str:
    """``'auto'`` -> ``'cuda'`` when torch sees a GPU, else ``'cpu'``; validates the rest.

    The one resolver of :mod:`featurekit.devices` (``auto`` on a machine without
    an NVIDIA driver answers ``cpu`` without importing torch).
    """
    from featurekit.devices import resolve_device as resolve

    return resolve(device)


def check_shared(device: Any = "cpu", n_jobs: Any = None, empty_mask: Any = "error",
                 max_side: Any = None) -> dict:
    """Validated shared parameters (module docstring): ``{'device': resolved, 'n_jobs',
    'empty_mask', 'max_side'}``; raises :class:`DataError` naming the bad one."""
    if empty_mask not in EMPTY_MASK_MODES:
        raise DataError(f"empty_mask must be one of {EMPTY_MASK_MODES}, got {empty_mask!r}")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer))
                               or n_jobs == 0):
        raise DataError(f"n_jobs must be None or a non-zero int (-1 = all cores), got {n_jobs!r}")
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer))
                                 or max_side < MIN_SIDE):
        raise DataError(f"max_side must be None or an int >= {MIN_SIDE} (pixels), got {max_side!r}")
    return {"device": resolve_device(device), "n_jobs": None if n_jobs is None else int(n_jobs),
            "empty_mask": empty_mask, "max_side": None if max_side is None else int(max_side)}


def _downsized_shape(shape: Tuple[int, int], max_side: int) -> Tuple[int, int]:
    scale = max_side / max(shape)
    h, w = (max(1, min(max_side, int(round(v * scale)))) for v in shape)
    return h, w


def limit_side(images: List[np.ndarray], masks: List[Optional[np.ndarray]], max_side: Optional[int]):
    """Downsize images whose longer side exceeds ``max_side`` (module docstring), with one warning."""
    if max_side is None:
        return images, masks
    big = [i for i, img in enumerate(images) if max(img.shape) > max_side]
    if not big:
        return images, masks
    from featurekit.handcrafted._resize import resize

    images, masks = list(images), list(masks)
    first = images[big[0]].shape
    for i in big:
        shape = _downsized_shape(images[i].shape, max_side)
        images[i] = resize(images[i], shape)
        mask = masks[i]
        if mask is not None:
            weight = resize(mask.view(np.uint8), shape)
            m = weight >= 0.5
            if not m.any():  # a mask too thin to survive the resize keeps its strongest pixel
                m.flat[int(np.argmax(weight))] = True
            masks[i] = m
    import warnings

    warnings.warn(
        f"{len(big)} of {len(images)} images are larger than max_side={max_side} px and were downsized "
        f"(image {big[0]}: {first[0]}x{first[1]} -> {'x'.join(map(str, images[big[0]].shape))}); "
        "set max_side=None to compute the features at full resolution",
        DownsizedWarning, stacklevel=4,
    )
    return images, masks


def prepare(X: Any, masks: Optional[Sequence[Optional[np.ndarray]]] = None, *, empty_mask: str = "error",
            max_side: Optional[int] = None, keep_integers: bool = False,
            read_pixels: bool = True) -> Tuple[Prepared, Prepared]:
    """The one input preparation of the transformers: ``load_images`` then ``max_side``.

    Returns :class:`Prepared` images and masks, taken as they are by every
    function of this package. ``keep_integers``: integer and ``float64``
    gray images are kept as they are (no float64 copy) for families that only
    read them. ``read_pixels=False``: a family of the masks alone (2-D shape)
    gets the images as they are, their values not read (neither converted nor
    checked for NaN/inf: they cannot change its features).
    """
    images, msks = load_images(X, masks, empty_mask, keep_integers, read_pixels)
    images, msks = limit_side(images, msks, max_side)
    return Prepared(images), Prepared(msks)


def chunks(n: int, size: int) -> List[slice]:
    """Consecutive slices of at most ``size`` covering ``range(n)``."""
    size = max(1, int(size))
    return [slice(s, min(n, s + size)) for s in range(0, n, size)]


def run_chunks(fn, images, masks, n_jobs, device: str, chunk_size: int = 16) -> np.ndarray:
    """``fn(images[s], masks[s], first=s.start)`` over chunks, in parallel with joblib on CPU.

    ``n_jobs`` follows joblib (``None`` = 1, ``-1`` = all cores). On a GPU the
    chunks run one after another in this process (one device, no forking).
    Results are stacked in input order.
    """
    n = len(images)
    from joblib import effective_n_jobs

    jobs = 1 if device != "cpu" else effective_n_jobs(n_jobs)
    if jobs <= 1 or n <= 1:
        parts = [fn(images[s], masks[s], first=s.start) for s in chunks(n, max(chunk_size, 1))]
    else:
        from joblib import Parallel, delayed

        size = max(1, min(chunk_size, -(-n // jobs)))
        parts = Parallel(n_jobs=jobs)(delayed(fn)(images[s], masks[s], first=s.start) for s in chunks(n, size))
    return np.concatenate(parts, axis=0)
