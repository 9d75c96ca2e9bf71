r"""Haar-like features (Viola & Jones 2001) on a fixed-size window.

(Over 400 lines because one family is one concept: the definition, the two
feature sets and their enumeration, the integral-image operator, the public
functions and the transformer; the resize is :mod:`featurekit.handcrafted._resize`.)

Each image (the region of interest) is resized to a ``window`` of
``(height, width)`` pixels (default 24 x 24) and described by the responses
of rectangle features, identical to :func:`skimage.feature.haar_like_feature`
for the same window, feature types and coordinates
(:func:`skimage.feature.haar_like_feature_coord`):

============  ==================================  ===========================
type          rectangles (each ``dy`` x ``dx``)    value
============  ==================================  ===========================
``type-2-x``  R0 left, R1 right                   R1 - R0
``type-2-y``  R0 top, R1 below                    R1 - R0
``type-3-x``  R0, R1, R2 left to right            R1 - R0 - R2
``type-3-y``  R0, R1, R2 top to bottom            R1 - R0 - R2
``type-4``    R0 top-left, R1 top-right,          R1 + R3 - R0 - R2
              R2 bottom-right, R3 bottom-left
============  ==================================  ===========================

where ``R`` is the sum of the window pixels in the rectangle. On a constant
image of value ``c`` the two- and four-rectangle features are 0 and the
three-rectangle ones are ``-c * dy * dx`` (skimage's definition).

Feature sets (``feature_set``):

* ``'grid'`` (default), a multi-scale descriptor of affordable size in the
  spirit of the overcomplete Haar dictionaries classified with SVMs by
  Papageorgiou & Poggio (2000): square rectangles (``dy = dx = s``) at the
  scales ``s = 2, 4, 8, ...`` up to a third of the shorter window side (so
  that every type fits at every scale; ``s = 1`` for windows under 6
  pixels), their top-left corners on a grid of step ``max(1, s // 2)``
  (neighbouring features overlap by half) from ``(0, 0)``, every type at
  every scale. A 24 x 24 window has **2,763** such features (``type-2-x``
  597, ``type-2-y`` 597, ``type-3-x`` 519, ``type-3-y`` 519, ``type-4`` 531).
* ``'full'``: skimage's complete enumeration -- per type in the order given,
  top-left corner ``y`` (rows) then ``x``, then rectangle height ``dy``
  (``1..H``) and width ``dx`` (``1..W``), keeping the features that fit the
  window. A 24 x 24 window has 162,336 features (``type-2-x`` 43,200,
  ``type-2-y`` 43,200, ``type-3-x`` 27,600, ``type-3-y`` 27,600, ``type-4``
  20,736): about 650 KB per image in float32, a 420 MB cache entry on the 647
  BUSI benign/malignant images, and tens of minutes of cross-validation.

Both are ordered as skimage enumerates (type, ``y``, ``x``, ``dy``, ``dx``),
the grid being a subset of the full set with the same names
(``haar_<type>_y<y>_x<x>_h<height>_w<width>``) and values. ``feature_types``
keeps some types; ``n_features`` keeps a deterministic subset of the chosen
set, drawn without replacement by ``numpy.random.default_rng(random_state)``
and kept in enumeration order. Full-set coordinates are decoded
arithmetically from the feature index, so a subset of a huge window costs no
memory. A set larger than :data:`MAX_FEATURES` (e.g. skimage's full 200 x 200
would need tens of GB) is rejected with a clear error unless ``n_features``
is set.

Resize rule: the image (cropped to the bounding box of its mask when one is
given; mask pixels inside the box are not blanked) is converted to float
(BT.709 gray for RGB) and resized as
``skimage.transform.resize(img, window, order=1, mode='reflect',
anti_aliasing=True, preserve_range=True)``: bilinear interpolation after a
Gaussian anti-aliasing filter when shrinking, values in native intensity
units. Feature values are therefore sums of native intensities (a 24 x 24
window of an 8-bit image gives values up to about 24 * 24 * 255). The resize
is computed as two sparse linear maps that read only what the interpolation
needs (:mod:`featurekit.handcrafted._resize`): equal to skimage's to float
rounding, in memory independent of the image size (an 8000 x 8000 ROI: about 1 s
and 18 MB instead of 2-3 minutes and 1.5 GB), so no ``max_side`` is needed.

Computation: with the zero-padded integral image ``I`` (``I[0, :] = I[:, 0] =
0``) a rectangle sum is ``I[r1+1, c1+1] - I[r0, c1+1] - I[r1+1, c0] +
I[r0, c0]``, so every feature is a fixed linear combination of at most 16
integral-image entries; all features of a batch are one sparse matrix product
``S @ I`` (scipy.sparse on the CPU, torch sparse CSR on a GPU), in chunks of
images of bounded memory.

References
----------
P. Viola and M. Jones, "Rapid object detection using a boosted cascade of
simple features", Proc. IEEE CVPR 2001, pp. I-511-518.

C. Papageorgiou and T. Poggio, "A trainable system for object detection",
International Journal of Computer Vision 38(1):15-33, 2000.

P. Viola and M. J. Jones, "Robust real-time face detection", International
Journal of Computer Vision 57(2):137-154, 2004.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import List, Optional, Tuple

import numpy as np

from featurekit.errors import DataError
from featurekit.handcrafted._base import HandcraftedTransformer
from featurekit.handcrafted._input import check_images, check_masks, check_shared, load_images, mask_box, run_chunks

__all__ = [
    "FEATURE_SETS",
    "FEATURE_TYPES",
    "MAX_FEATURES",
    "HaarCoords",
    "haar_feature_count",
    "haar_feature_coords",
    "haar_feature_names",
    "haar_window",
    "haar_features",
    "HaarFeatures",
]

#: skimage's feature types, in its default order.
FEATURE_TYPES = ("type-2-x", "type-2-y", "type-3-x", "type-3-y", "type-4")
#: (ky, kx): the feature spans ky*dy rows and kx*dx columns.
_SPAN = {"type-2-x": (1, 2), "type-2-y": (2, 1), "type-3-x": (1, 3), "type-3-y": (3, 1), "type-4": (2, 2)}
#: Largest number of features computed per image (about 5 M: a 24x24 window has 162,336).
MAX_FEATURES = 5_000_000
#: Feature sets: a multi-scale grid (default) or skimage's full enumeration.
FEATURE_SETS = ("grid", "full")
#: Largest feature matrix a single call may return (bytes).
MAX_OUTPUT_BYTES = 8 << 30


def _window(window) -> Tuple[int, int]:
    if isinstance(window, (int, np.integer)) and not isinstance(window, bool):
        h = w = int(window)
    else:
        try:
            h, w = (int(v) for v in window)
        except (TypeError, ValueError):
            raise DataError(f"window must be an int or (height, width), got {window!r}") from None
        if tuple(window) != (h, w):
            raise DataError(f"window must hold integers, got {window!r}")
    if h < 2 or w < 2:
        raise DataError(f"window must be at least 2x2 pixels, got {h}x{w}")
    return h, w


def _types(feature_types) -> Tuple[str, ...]:
    if feature_types is None:
        return FEATURE_TYPES
    if isinstance(feature_types, str):
        feature_types = (feature_types,)
    types = tuple(feature_types)
    bad = [t for t in types if t not in FEATURE_TYPES]
    if bad or not types or len(set(types)) != len(types):
        raise DataError(f"feature_types must be distinct values from {FEATURE_TYPES}, got {feature_types!r}")
    return types


def _block_counts(h: int, w: int, t: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per top-left corner (y, x): number of (dy, dx) and the dx count ``nx(x)``."""
    ky, kx = _SPAN[t]
    ny = (h - np.arange(h)) // ky
    nx = (w - np.arange(w)) // kx
    counts = (ny[:, None] * nx[None, :]).ravel().astype(np.int64)
    return counts, ny, nx


def _feature_set(feature_set) -> str:
    if feature_set not in FEATURE_SETS:
        raise DataError(f"feature_set must be one of {FEATURE_SETS}, got {feature_set!r}")
    return feature_set


def _grid_scales(h: int, w: int) -> List[int]:
    """Rectangle sides of the 'grid' set: 2, 4, 8, ... with 3 s <= min(h, w); [1] if none."""
    scales, s = [], 2
    while 3 * s <= min(h, w):
        scales.append(s)
        s *= 2
    return scales or [1]


def _grid_arrays(h: int, w: int, types) -> Tuple[np.ndarray, ...]:
    """``(type_index, y, x, dy, dx)`` of the 'grid' set in enumeration order."""
    parts = []
    for type_index, t in enumerate(types):
        ky, kx = _SPAN[t]
        for s in _grid_scales(h, w):
            step = max(1, s // 2)
            ys = np.arange(0, h - ky * s + 1, step)
            xs = np.arange(0, w - kx * s + 1, step)
            y, x = (a.ravel() for a in np.meshgrid(ys, xs, indexing="ij"))
            parts.append((np.full(y.size, type_index), y, x, np.full(y.size, s), np.full(y.size, s)))
    ti, y, x, dy, dx = (np.concatenate([p[k] for p in parts]).astype(np.int64) for k in range(5))
    order = np.lexsort((dx, dy, x, y, ti))
    return ti[order], y[order], x[order], dy[order], dx[order]


def _set_size(h: int, w: int, types, feature_set: str) -> int:
    if feature_set == "full":
        return int(sum(_block_counts(h, w, t)[0].sum() for t in types))
    return int(sum(
        ((h - _SPAN[t][0] * s) // max(1, s // 2) + 1) * ((w - _SPAN[t][1] * s) // max(1, s // 2) + 1)
        for t in types for s in _grid_scales(h, w)
    ))


def _check_haar(window, feature_types, n_features, random_state, feature_set="grid"):
    """Validated ``(window, types, feature_set, number of output features)``; never enumerates."""
    h, w = _window(window)
    types = _types(feature_types)
    feature_set = _feature_set(feature_set)
    if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer))):
        raise DataError(f"random_state must be an int or None, got {random_state!r}")
    total = _set_size(h, w, types, feature_set)
    if n_features is None:
        if total > MAX_FEATURES:
            raise DataError(
                f"a {h}x{w} window has {total:,} Haar-like features ({feature_set!r} set) of types "
                f"{list(types)} (> MAX_FEATURES={MAX_FEATURES:,}; about {total * 8 / 2**30:.1f} GiB per "
                "image in float64); use a smaller window, fewer feature_types, feature_set='grid', or "
                "n_features=N for a seeded subset"
            )
        return (h, w), types, feature_set, total
    if isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer)) or n_features < 1:
        raise DataError(f"n_features must be a positive int or None, got {n_features!r}")
    if n_features > total:
        raise DataError(f"n_features={n_features:,} exceeds the {total:,} features of the {feature_set!r} "
                        f"set of a {h}x{w} window")
    if n_features > MAX_FEATURES:
        raise DataError(f"n_features={n_features:,} exceeds MAX_FEATURES={MAX_FEATURES:,}")
    return (h, w), types, feature_set, int(n_features)


def haar_feature_count(window=(24, 24), feature_types=None, feature_set: str = "grid") -> int:
    """Number of Haar-like features of a window in a feature set (all types by default)."""
    h, w = _window(window)
    return _set_size(h, w, _types(feature_types), _feature_set(feature_set))


@dataclass(frozen=True)
class HaarCoords:
    """Features of a window: type index (into ``types``), top-left ``y, x`` and
    rectangle size ``dy, dx`` (each of the 2-4 rectangles is ``dy`` x ``dx``)."""

    window: Tuple[int, int]
    types: Tuple[str, ...]
    type_index: np.ndarray
    y: np.ndarray
    x: np.ndarray
    dy: np.ndarray
    dx: np.ndarray

    def __len__(self) -> int:
        return int(self.y.size)

    def names(self) -> List[str]:
        """``haar_<type>_y<y>_x<x>_h<height>_w<width>`` (the whole feature's extent)."""
        out = []
        for ti, y, x, dy, dx in zip(self.type_index.tolist(), self.y.tolist(), self.x.tolist(),
                                    self.dy.tolist(), self.dx.tolist()):
            t = self.types[ti]
            ky, kx = _SPAN[t]
            out.append(f"haar_{t}_y{y}_x{x}_h{ky * dy}_w{kx * dx}")
        return out

    def rectangles(self, t: int) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Rectangles ``(r0, c0, r1, c1)`` (inclusive) of the features of type index ``t``,
        in skimage's rectangle order."""
        sel = self.type_index == t
        y, x, dy, dx = self.y[sel], self.x[sel], self.dy[sel], self.dx[sel]
        name = self.types[t]
        if name in ("type-2-x", "type-3-x"):
            n = 2 if name == "type-2-x" else 3
            return [(y, x + k * dx, y + dy - 1, x + (k + 1) * dx - 1) for k in range(n)]
        if name in ("type-2-y", "type-3-y"):
            n = 2 if name == "type-2-y" else 3
            return [(y + k * dy, x, y + (k + 1) * dy - 1, x + dx - 1) for k in range(n)]
        # type-4: top-left, top-right, bottom-right, bottom-left
        return [
            (y, x, y + dy - 1, x + dx - 1),
            (y, x + dx, y + dy - 1, x + 2 * dx - 1),
            (y + dy, x + dx, y + 2 * dy - 1, x + 2 * dx - 1),
            (y + dy, x, y + 2 * dy - 1, x + dx - 1),
        ]

    def to_skimage(self):
        """``(feature_coord, feature_type)`` as :func:`skimage.feature.haar_like_feature_coord`
        returns them (object arrays), for ``haar_like_feature(..., feature_coord=...)``."""
        n = len(self)
        coord = np.empty(n, dtype=object)
        ftype = np.empty(n, dtype=object)
        for t in range(len(self.types)):
            idx = np.flatnonzero(self.type_index == t)
            rects = [tuple(np.asarray(a).tolist() for a in r) for r in self.rectangles(t)]
            for j, i in enumerate(idx.tolist()):
                coord[i] = [[(r[0][j], r[1][j]), (r[2][j], r[3][j])] for r in rects]
                ftype[i] = self.types[t]
        return coord, ftype


def haar_feature_coords(window=(24, 24), feature_types=None, n_features: Optional[int] = None,
                        random_state: Optional[int] = 0, feature_set: str = "grid") -> HaarCoords:
    """The features of a window in enumeration order (module docstring), or a seeded subset.

    Parameters
    ----------
    window : int or (height, width)
    feature_types : str or sequence of str, optional
        Subset of :data:`FEATURE_TYPES`, in the order wanted (default all).
    n_features : int, optional
        Keep this many features of the set, drawn without replacement with
        ``numpy.random.default_rng(random_state).choice(total, n_features,
        replace=False)`` and sorted (enumeration order). ``None``: all.
    random_state : int, optional
        Seed of the subset (ignored when ``n_features`` is None).
    feature_set : {'grid', 'full'}, default 'grid'

    Returns
    -------
    HaarCoords

    Raises
    ------
    DataError
        Unknown types or set, bad window, ``n_features`` larger than the
        set, or more than :data:`MAX_FEATURES` features.
    """
    (h, w), types, feature_set, _ = _check_haar(window, feature_types, n_features, random_state, feature_set)
    if feature_set == "grid":
        ti, ys, xs, dys, dxs = _grid_arrays(h, w, types)
        if n_features is not None:
            keep = np.sort(np.random.default_rng(random_state).choice(ti.size, size=int(n_features), replace=False))
            ti, ys, xs, dys, dxs = ti[keep], ys[keep], xs[keep], dys[keep], dxs[keep]
        return HaarCoords((h, w), types, ti, ys, xs, dys, dxs)
    per_type = [_block_counts(h, w, t) for t in types]
    totals = np.array([c.sum() for c, _, _ in per_type], dtype=np.int64)
    total = int(totals.sum())
    if n_features is None:
        index = np.arange(total, dtype=np.int64)
    else:
        rng = np.random.default_rng(random_state)
        index = np.sort(rng.choice(total, size=int(n_features), replace=False).astype(np.int64))
    starts = np.concatenate([[0], np.cumsum(totals)])
    ti = np.searchsorted(starts, index, side="right") - 1
    ys, xs, dys, dxs = (np.empty(index.size, dtype=np.int64) for _ in range(4))
    for t, (counts, _ny, nx) in enumerate(per_type):
        sel = ti == t
        if not sel.any():
            continue
        k = index[sel] - starts[t]
        cum = np.cumsum(counts)
        block = np.searchsorted(cum, k, side="right")
        within = k - (cum[block] - counts[block])
        y, x = np.divmod(block, w)
        nxx = nx[x]
        ys[sel], xs[sel] = y, x
        dys[sel] = within // nxx + 1
        dxs[sel] = within % nxx + 1
    return HaarCoords((h, w), types, ti.astype(np.int64), ys, xs, dys, dxs)


def haar_feature_names(window=(24, 24), feature_types=None, n_features=None, random_state=0,
                       feature_set: str = "grid") -> List[str]:
    """Output names, e.g. ``haar_type-2-x_y0_x0_h2_w4``; see :meth:`HaarCoords.names`."""
    return haar_feature_coords(window, feature_types, n_features, random_state, feature_set).names()


@lru_cache(maxsize=4)
def _operator(window, types, n_features, random_state, feature_set="grid"):
    """Sparse ``(D, (h+1)(w+1))`` matrix mapping a padded integral image to the features."""
    import scipy.sparse as sp

    coords = haar_feature_coords(window, types, n_features, random_state, feature_set)
    h, w = coords.window
    W1 = w + 1
    rows, cols, vals = [], [], []
    feat = np.arange(len(coords), dtype=np.int64)
    for t, _name in enumerate(coords.types):
        sel = coords.type_index == t
        if not sel.any():
            continue
        f = feat[sel]
        for k, (r0, c0, r1, c1) in enumerate(coords.rectangles(t)):
            sign = 1.0 if k % 2 == 1 else -1.0  # skimage: odd rectangles minus even ones
            for rr, cc, s in ((r1 + 1, c1 + 1, 1.0), (r0, c1 + 1, -1.0), (r1 + 1, c0, -1.0), (r0, c0, 1.0)):
                rows.append(f)
                cols.append(rr * W1 + cc)
                vals.append(np.full(f.size, sign * s))
    S = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(coords), (h + 1) * W1),
    ).tocsr()
    S.sum_duplicates()
    S.eliminate_zeros()
    return S


def haar_window(image: np.ndarray, mask: Optional[np.ndarray] = None, window=(24, 24)) -> np.ndarray:
    """The resized ROI a Haar feature set is computed on (module docstring's resize rule).

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(height, width)``.
    """
    h, w = _window(window)
    (img,) = check_images([image])
    (msk,) = check_masks([img], [mask])
    return _resize(img, msk, (h, w))


def _resize(img: np.ndarray, mask: Optional[np.ndarray], window: Tuple[int, int]) -> np.ndarray:
    from featurekit.handcrafted._resize import resize

    if mask is not None:
        r0, r1, c0, c1 = mask_box(mask)
        img = img[r0:r1, c0:c1]  # a view: never copied whole
    return resize(img, window)


def _integral(windows: np.ndarray) -> np.ndarray:
    """Zero-padded integral images ``(n, (h+1)*(w+1))``."""
    n, h, w = windows.shape
    integral = np.zeros((n, h + 1, w + 1), dtype=np.float64)
    np.cumsum(np.cumsum(windows, axis=1), axis=2, out=integral[:, 1:, 1:])
    return integral.reshape(n, -1)


def _apply(S, II: np.ndarray, device: str) -> np.ndarray:
    """``II @ S.T``: features ``(n, D)`` of integral images ``II`` ``(n, P)``."""
    if device == "cpu":
        return np.ascontiguousarray((S @ II.T).T)
    return _apply_torch(S, II, device)


def _apply_torch(S, II: np.ndarray, device: str) -> np.ndarray:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        St = torch.sparse_csr_tensor(
            torch.from_numpy(S.indptr.astype(np.int64)), torch.from_numpy(S.indices.astype(np.int64)),
            torch.from_numpy(S.data), size=S.shape, dtype=torch.float64, device=device,
            check_invariants=False,
        )
    X = torch.from_numpy(np.ascontiguousarray(II.T)).to(device)
    return (St @ X).T.contiguous().cpu().numpy()


def _haar_chunk(images, masks, *, window, types, feature_set, n_features, random_state, device, dtype,
                first=0) -> np.ndarray:
    S = _operator(window, types, n_features, random_state, feature_set)
    wins = np.stack([_resize(img, m, window) for img, m in zip(images, masks)])
    out = np.empty((len(images), S.shape[0]), dtype=dtype)
    # bound the float64 temporaries to ~256 MiB
    step = max(1, (256 << 20) // max(1, S.shape[0] * 8 * 2))
    for s in range(0, len(images), step):
        out[s : s + step] = _apply(S, _integral(wins[s : s + step]), device)
    return out


def _check(window, feature_types, feature_set, n_features, random_state) -> dict:
    """The family's parameters, validated."""
    win, types, feature_set, total = _check_haar(window, feature_types, n_features, random_state, feature_set)
    return {"window": win, "types": types, "feature_set": feature_set, "n_features": n_features,
            "random_state": random_state, "total": total}


def _haar(images, masks, params: dict, dtype) -> np.ndarray:
    """Features of prepared images with validated parameters (family and shared)."""
    nbytes = len(images) * params["total"] * np.dtype(dtype).itemsize
    if nbytes > MAX_OUTPUT_BYTES:
        raise DataError(
            f"{len(images)} images x {params['total']:,} Haar features would need {nbytes / 2**30:.1f} GiB "
            f"(> {MAX_OUTPUT_BYTES / 2**30:.0f} GiB); use feature_set='grid', n_features, fewer "
            "feature_types, a smaller window, or fewer images per call"
        )
    fn = partial(
        _haar_chunk, window=params["window"], types=params["types"], feature_set=params["feature_set"],
        n_features=params["n_features"], random_state=params["random_state"], device=params["device"],
        dtype=np.dtype(dtype),
    )
    return run_chunks(fn, images, masks, params["n_jobs"], params["device"], chunk_size=64)


def haar_features(
    images,
    masks=None,
    *,
    window=(24, 24),
    feature_types=None,
    n_features: Optional[int] = None,
    random_state: Optional[int] = 0,
    feature_set: str = "grid",
    device: str = "cpu",
    n_jobs: Optional[int] = None,
    empty_mask: str = "error",
    dtype=np.float64,
) -> np.ndarray:
    """Haar-like features of a batch of images (module docstring).

    Parameters
    ----------
    images : list of arrays, (N, H, W[, 3]) array or Dataset
    masks : list of (bool array or None), optional
        Each image is cropped to its mask's bounding box before the resize.
    window : int or (height, width), default (24, 24)
    feature_types : str or sequence of str, optional
        Default all five, in :data:`FEATURE_TYPES` order.
    n_features : int, optional
        Seeded subset size (default: the whole set).
    random_state : int, default 0
    feature_set : {'grid', 'full'}, default 'grid'
        The multi-scale grid (2,763 features for 24 x 24) or skimage's full
        enumeration (162,336); see the module docstring.
    device : {'cpu', 'cuda', 'auto'}, default 'cpu'
    n_jobs : int, optional
    empty_mask : {'error', 'whole'}
    dtype : numpy dtype, default float64
        Of the returned matrix (the sums are always computed in float64).

    Returns
    -------
    numpy.ndarray
        ``(n_images, n_features)``, columns named by :func:`haar_feature_names`.
    """
    params = _check(window, feature_types, feature_set, n_features, random_state)
    params.update(check_shared(device, n_jobs, empty_mask))
    imgs, msks = load_images(images, masks, empty_mask, keep_integers=True)
    return _haar(imgs, msks, params, dtype)


class HaarFeatures(HandcraftedTransformer):
    """Haar-like features as a scikit-learn transformer.

    See :func:`haar_features` and the module docstring. Output columns
    ``haar_<type>_y<row>_x<col>_h<height>_w<width>`` (e.g.
    ``haar_type-2-x_y0_x0_h2_w4``), in skimage's enumeration order.

    Parameters
    ----------
    window : int or (height, width), default (24, 24)
    feature_types : str or sequence of str, optional
    n_features : int, optional
        Seeded subset of this size of the chosen set (default: all of it).
    random_state : int, default 0
    feature_set : {'grid', 'full'}, default 'grid'
        ``'grid'``: 2,763 multi-scale features for 24 x 24 (the default
        descriptor); ``'full'``: skimage's 162,336 (module docstring).
    device : {'cpu', 'cuda', 'auto'}, default 'cpu'
    n_jobs : int, optional
    empty_mask : {'error', 'whole'}, default 'error'
    max_side : int, optional
        Default None: no image is too large (the resize to the window reads
        only what it needs); see :mod:`featurekit.handcrafted._input`.

    Attributes
    ----------
    feature_names_out_ : ndarray of str
    n_features_out_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from featurekit.handcrafted import HaarFeatures
    >>> X = np.random.default_rng(0).random((2, 40, 30)) * 255
    >>> HaarFeatures().fit_transform(X).shape
    (2, 2763)
    >>> HaarFeatures(feature_set="full").fit_transform(X).shape
    (2, 162336)
    """

    _keep_integers = True

    def __init__(
        self,
        window=(24, 24),
        feature_types=None,
        n_features=None,
        random_state=0,
        feature_set="grid",
        device="cpu",
        n_jobs=None,
        empty_mask="error",
        max_side=None,
    ):
        self.window = window
        self.feature_types = feature_types
        self.n_features = n_features
        self.random_state = random_state
        self.feature_set = feature_set
        super().__init__(device=device, n_jobs=n_jobs, empty_mask=empty_mask, max_side=max_side)

    def _check_family(self) -> dict:
        return _check(self.window, self.feature_types, self.feature_set, self.n_features, self.random_state)

    def _names(self, params) -> List[str]:
        return list(_names_cached(params["window"], params["types"], params["n_features"],
                                  params["random_state"], params["feature_set"]))

    def _compute(self, images, masks, params) -> np.ndarray:
        return _haar(images, masks, params, np.float32)


@lru_cache(maxsize=8)
def _names_cached(window, types, n_features, random_state, feature_set) -> Tuple[str, ...]:
    return tuple(haar_feature_coords(window, types, n_features, random_state, feature_set).names())
