r"""Local binary patterns: rotation-invariant uniform codes, several radii, histogram over the ROI.

For every pixel and radius ``R``, ``P`` neighbours are sampled on the circle
of radius ``R`` (``P = 8 R`` by default: 8, 16, 24 for radii 1, 2, 3) and
each gets the bit "neighbour >= centre". The rotation-invariant uniform code
(Ojala et al.'s :math:`LBP^{riu2}_{P,R}`) is the number of 1 bits when the
pattern changes between 0 and 1 at most twice, else ``P + 1``: ``P + 2``
codes. The features are the fractions of the ROI's pixels with each code,
per radius: columns ``lbp_r<R>_p<P>_<code>``.

The codes equal :func:`skimage.feature.local_binary_pattern` with
``method='uniform'`` exactly (tests), including its conventions, which this
module follows: neighbour ``p`` sits at ``(-R sin(2 pi p / P), R cos(2 pi p
/ P))`` rounded to 5 decimals and is read by bilinear interpolation, pixels
outside the image reading 0; the changes are counted along ``p = 0 .. P-1``
without the wrap-around pair. pyradiomics' ``LBP2D`` image type is the same
skimage call on the whole image (``lbp2DRadius``, ``lbp2DSamples``); it then
computes other features of the code image, not this histogram.

Intensities are compared in native units (no quantisation); neighbours
outside the mask are read as they are (the mask selects which codes count).

Speed: only the mask's bounding box (plus the radius) is coded, with numpy
over all its pixels at once, one shifted interpolation per neighbour -- the
same arithmetic as skimage's per-pixel loop, hence the same bits.

References
----------
T. Ojala, M. Pietikainen and T. Maenpaa, "Multiresolution gray-scale and
rotation invariant texture classification with local binary patterns", IEEE
TPAMI 24(7):971-987, 2002.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np

from featurekit.errors import DataError
from featurekit.handcrafted._base import Family, FamilyTransformer, batch_function, transformer_doc
from featurekit.handcrafted._input import mask_box

__all__ = ["lbp_codes", "lbp_features", "lbp_feature_names", "LBPFeatures"]


def _check_radii(radii, points) -> Tuple[Tuple[float, int], ...]:
    """``((R, P), ...)`` from ``radii`` and ``points`` (None: ``8 R`` each)."""
    if isinstance(radii, (int, float, np.integer, np.floating)):
        radii = (radii,)
    try:
        rs = tuple(float(r) for r in radii)
    except (TypeError, ValueError):
        raise DataError(f"radii must be positive numbers, got {radii!r}") from None
    if not rs or any(not (math.isfinite(r) and r > 0) for r in rs) or len(set(rs)) != len(rs):
        raise DataError(f"radii must be distinct positive numbers, got {radii!r}")
    if points is None:
        ps = tuple(max(1, int(round(8 * r))) for r in rs)
    else:
        if isinstance(points, (int, np.integer)):
            points = (points,) * len(rs)
        try:
            ps = tuple(points)
        except TypeError:
            raise DataError(f"points must be an int or one int per radius, got {points!r}") from None
        if len(ps) != len(rs) or any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1
                                     for p in ps):
            raise DataError(f"points must be an int >= 1 or one per radius ({len(rs)}), got {points!r}")
    return tuple(zip(rs, (int(p) for p in ps)))


def _names(pairs) -> List[str]:
    return [f"lbp_r{r:g}_p{p}_{k}" for r, p in pairs for k in range(p + 2)]


def lbp_feature_names(radii=(1, 2, 3), points=None) -> List[str]:
    """``lbp_r<R>_p<P>_<code>`` for every radius and code ``0 .. P+1`` (``P+1``: not uniform)."""
    return _names(_check_radii(radii, points))


def lbp_codes(image: np.ndarray, P: int, R: float, *, origin: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """Rotation-invariant uniform LBP codes (``uint8``/``uint16`` ``0 .. P+1``) of a gray image.

    Equal to ``skimage.feature.local_binary_pattern(image, P, R, 'uniform')``.
    ``image`` may be a window of a larger image whose top-left pixel is at
    ``origin``: the interpolation weights are computed from the full image's
    coordinates (as skimage does), so the codes of pixels at least ``ceil(R)``
    from the window's edges inside the image are those of the full image.
    """
    img = np.asarray(image, dtype=np.float64)
    H, W = img.shape
    pad = int(math.ceil(R)) + 1
    x = np.pad(img, pad)  # outside the image skimage reads 0
    y0, x0 = origin
    rows = np.arange(y0, y0 + H, dtype=np.float64)
    cols = np.arange(x0, x0 + W, dtype=np.float64)
    ang = 2 * np.pi * np.arange(P, dtype=np.float64) / P
    rp, cp = np.round(-R * np.sin(ang), 5), np.round(R * np.cos(ang), 5)
    ones = np.zeros((H, W), dtype=np.uint16 if P > 250 else np.uint8)
    changes = np.zeros((H, W), dtype=ones.dtype)
    prev = None

    def at(dy: int, dx: int) -> np.ndarray:
        return x[pad + dy : pad + dy + H, pad + dx : pad + dx + W]

    for r, c in zip(rp, cp):
        r0, c0 = math.floor(r), math.floor(c)
        if r == r0 and c == c0:
            v = at(r0, c0)
        else:
            # skimage's bilinear rule, weights from the absolute coordinates of each row / column
            rr, cc = rows + r, cols + c
            dr, dc = (rr - np.floor(rr))[:, None], (cc - np.floor(cc))[None, :]
            r1, c1 = math.ceil(r), math.ceil(c)
            top = (1 - dc) * at(r0, c0) + dc * at(r0, c1)
            bottom = (1 - dc) * at(r1, c0) + dc * at(r1, c1)
            v = (1 - dr) * top + dr * bottom
        bit = v >= img
        ones += bit
        if prev is not None:
            changes += prev != bit
        prev = bit
    return np.where(changes <= 2, ones, ones.dtype.type(P + 1))


def _lbp_chunk(images, masks, *, pairs, first=0) -> np.ndarray:
    out = np.empty((len(images), sum(p + 2 for _, p in pairs)))
    for i, (img, m) in enumerate(zip(images, masks)):
        H, W = img.shape
        if m is None:
            r0, r1, c0, c1 = 0, H, 0, W
        else:
            r0, r1, c0, c1 = mask_box(m)
        col = 0
        for R, P in pairs:
            e = int(math.ceil(R)) + 1  # the window holds every neighbour an ROI pixel reads
            y0, y1, x0, x1 = max(0, r0 - e), min(H, r1 + e), max(0, c0 - e), min(W, c1 + e)
            codes = lbp_codes(img[y0:y1, x0:x1], P, R, origin=(y0, x0))
            codes = codes[r0 - y0 : r1 - y0, c0 - x0 : c1 - x0]
            roi = codes.ravel() if m is None else codes[m[r0:r1, c0:c1]]
            out[i, col : col + P + 2] = np.bincount(roi, minlength=P + 2) / roi.size
            col += P + 2
    return out


_FAMILY = Family(lambda radii=(1, 2, 3), points=None: {"pairs": _check_radii(radii, points)},
                 lambda p: _names(p["pairs"]), _lbp_chunk, chunk_size=16)


#: numpydoc entries of the family's own parameters (its batch function's and transformer's docstrings).
_PARAMS_DOC = """\
radii : sequence of float, default (1, 2, 3)
points : int or sequence of int, optional
    Neighbours per radius; default ``8 R`` (8, 16, 24).
"""


class LBPFeatures(FamilyTransformer):
    __doc__ = transformer_doc(
        "Rotation-invariant uniform LBP histograms over the ROI as a scikit-learn transformer "
        "(:func:`lbp_features`; the module docstring).",
        "``lbp_r<R>_p<P>_<code>`` (e.g. ``lbp_r1_p8_9``, the non-uniform fraction at radius 1)",
        _PARAMS_DOC,
    )

    _family = _FAMILY

    def __init__(self, radii=(1, 2, 3), points=None, device="cpu", n_jobs=None, empty_mask="error",
                 max_side=None):
        self.radii = radii
        self.points = points
        super().__init__(device=device, n_jobs=n_jobs, empty_mask=empty_mask, max_side=max_side)


lbp_features = batch_function(
    LBPFeatures, "lbp_features", "LBP histograms of the ROIs of a batch of images (module docstring).",
    params=_PARAMS_DOC, masks="The codes of the pixels inside count; ``None``: the whole image.",
    returns="``float64`` ``(n_images, sum(P + 2))``: the fraction of ROI pixels with each code, columns named "
            "by :func:`lbp_feature_names`.",
)
