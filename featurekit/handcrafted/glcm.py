r"""Grey-level co-occurrence matrices (GLCM) and Haralick texture features.

Pipeline (per image, vectorised over a batch):

1. **Quantisation** to grey levels ``1..N`` (pyradiomics' rule, so that the
   features can be compared with it):

   * ``bin_width=W`` (default 25, as pyradiomics): edges
     ``numpy.arange(lo - lo % W, hi + 2 W, W)``, i.e. equally spaced from 0,
     the first edge at or below ``lo``; level = ``numpy.digitize(x, edges)``
     (:math:`\lfloor x/W \rfloor - \lfloor lo/W \rfloor + 1`). A flat region
     gets the single bin ``[lo - 0.5, lo + 0.5)``.
   * ``bin_count=N``: edges ``numpy.histogram(values, N)[1]`` (``N`` equal
     bins from ``lo`` to ``hi``) with the last edge raised by 1 so that ``hi``
     falls into bin ``N``; level = ``numpy.digitize(x, edges)``.
   * the range ``(lo, hi)`` is, by ``quant_range``: ``'roi'`` (default,
     pyradiomics) the min/max of the mask pixels (the whole image when there
     is no mask); ``'image'`` the min/max of the whole image even with a
     mask; or a fixed ``(lo, hi)`` given by the user, the same for every
     image, pixels clipped to it first. The choice changes the features:
     ``'roi'`` adapts the levels to each lesion's own contrast, a fixed range
     keeps one intensity scale for the whole data set.

   Nothing is fitted from data. At most :data:`MAX_LEVELS` levels (a 16-bit
   image needs ``bin_count`` or a wide ``bin_width``).

2. **Counting**. For distance ``d`` and angle :math:`\theta` the offset is
   ``(dr, dc) = (round(d sin θ), round(d cos θ))`` rounded half away from
   zero, exactly as :func:`skimage.feature.graycomatrix` (0° = the right
   neighbour, 90° = the pixel below with ``dr = +1``). ``P[i, j]`` counts the
   pixel pairs ``(r, c) -> (r + dr, c + dc)`` with levels ``i`` and ``j``,
   both pixels inside the image and inside the mask. ``symmetric=True``
   (default, as pyradiomics) adds the transpose; each matrix is normalised to
   sum 1: :math:`p(i,j) = P(i,j) / \sum P`. pyradiomics uses the same offsets
   for ``d = 1``; for ``d > 1`` it takes every offset at Chebyshev distance
   ``d`` (8 directions at ``d = 2``), which this module does not. (Beware
   pyradiomics' ``force2D=True`` on a 2-D image: it takes axis 0, the rows,
   as the out-of-plane axis and keeps only the 0-degree pairs; plain 2-D
   extraction is the setting these features equal.)

3. **Features** per offset, then aggregated over the angles of each distance:
   ``'mean'`` over the angles that have at least one pair (pyradiomics'
   ``nanmean``; an image with no pair at a distance raises), optionally the
   ``'range'`` (max - min) and the values per ``'angle'``.

Features (:math:`N_g` = highest grey level present in the ROI, :math:`i, j`
grey level values ``1..N_g``, :math:`p_x, p_y` marginals, :math:`\mu_x =
\sum i\,p(i,j)`, :math:`\sigma_x^2 = \sum (i-\mu_x)^2 p(i,j)`,
:math:`p_{x+y}(k) = \sum_{i+j=k} p`, :math:`p_{x-y}(k) = \sum_{|i-j|=k} p`,
:math:`\epsilon` = ``numpy.spacing(1)``, :math:`\log = \log_2`), with
pyradiomics' names and formulas (GLCM feature class, v3):

==================  =========================================================
Autocorrelation     :math:`\sum p(i,j)\,ij`
JointAverage        :math:`\mu_x`
ClusterProminence   :math:`\sum (i+j-\mu_x-\mu_y)^4 p(i,j)`
ClusterShade        :math:`\sum (i+j-\mu_x-\mu_y)^3 p(i,j)`
ClusterTendency     :math:`\sum (i+j-\mu_x-\mu_y)^2 p(i,j)`
Contrast            :math:`\sum (i-j)^2 p(i,j)`
Correlation         :math:`\frac{\sum p(i,j)(i-\mu_x)(j-\mu_y)}{\sigma_x\sigma_y+\epsilon}`,
                    1 when :math:`\sigma_x\sigma_y = 0` (flat region)
DifferenceAverage   :math:`\sum_k k\,p_{x-y}(k)`
DifferenceEntropy   :math:`-\sum_k p_{x-y}(k)\log(p_{x-y}(k)+\epsilon)`
DifferenceVariance  :math:`\sum_k (k-DA)^2 p_{x-y}(k)`
JointEnergy         :math:`\sum p(i,j)^2`
JointEntropy        :math:`HXY = -\sum p(i,j)\log(p(i,j)+\epsilon)`
Imc1                :math:`\frac{HXY - HXY1}{\max(HX, HY)}` (0 when the max is 0),
                    :math:`HXY1 = -\sum p(i,j)\log(p_x(i)p_y(j)+\epsilon)`
Imc2                :math:`\sqrt{1 - e^{-2(HXY2 - HXY)}}` (0 when equal),
                    :math:`HXY2 = -\sum p_x(i)p_y(j)\log(p_x(i)p_y(j)+\epsilon)`
Idm                 :math:`\sum_k p_{x-y}(k)/(1+k^2)`
MCC                 square root of the second largest eigenvalue of
                    :math:`Q(i,j) = \sum_k \frac{p(i,k)p(j,k)}{p_x(i)p_y(k)}`;
                    1 when the ROI has a single grey level
Idmn                :math:`\sum_k p_{x-y}(k)/(1+k^2/N_g^2)`
Id                  :math:`\sum_k p_{x-y}(k)/(1+k)`
Idn                 :math:`\sum_k p_{x-y}(k)/(1+k/N_g)`
InverseVariance     :math:`\sum_{k\ge1} p_{x-y}(k)/k^2`
MaximumProbability  :math:`\max p(i,j)`
SumAverage          :math:`\sum_k k\,p_{x+y}(k)`
SumEntropy          :math:`-\sum_k p_{x+y}(k)\log(p_{x+y}(k)+\epsilon)`
SumSquares          :math:`\sum (i-\mu_x)^2 p(i,j)`
==================  =========================================================

plus :func:`skimage.feature.graycoprops`' set, named ``sk-<prop>``, computed
exactly as skimage does on the levels shifted to ``0..N-1`` (the
``graycomatrix`` input ``level - 1``): ``sk-contrast``, ``sk-dissimilarity``
(:math:`\sum p|i-j|`), ``sk-homogeneity`` (:math:`\sum p/(1+(i-j)^2)`),
``sk-ASM``, ``sk-energy`` (:math:`\sqrt{ASM}`), ``sk-correlation`` (1 when a
standard deviation is below 1e-15), ``sk-mean`` (:math:`\sum i'p`, 0-based),
``sk-variance``, ``sk-std``, ``sk-entropy`` (natural log, :math:`0\log 0=0`).

Constant image (or ROI): one grey level, :math:`p = [1]`: Contrast,
DifferenceAverage/Entropy/Variance, ClusterX, Imc1, Imc2, SumSquares,
JointEntropy, SumEntropy, InverseVariance = 0; JointEnergy, Idm, Idmn, Id,
Idn, MaximumProbability, Correlation, MCC = 1; Autocorrelation = L²,
JointAverage = L, SumAverage = 2L for that level L; no NaN.

Computation: one ``numpy.bincount`` per chunk of images over codes
``(image, offset, i, j)``, then every feature vectorised over
(image x offset) matrices; eigenvalues by ``numpy.linalg.eigvalsh`` on the
symmetric form :math:`D_x^{-1/2} P D_y^{-1} P^T D_x^{-1/2}` of Q.

References
----------
R. M. Haralick, K. Shanmugam and I. Dinstein, "Textural features for image
classification", IEEE Trans. Syst. Man Cybern. SMC-3(6):610-621, 1973.

pyradiomics documentation, "Gray Level Co-occurrence Matrix (GLCM) Features",
https://pyradiomics.readthedocs.io/en/latest/features.html

J. J. M. van Griethuysen et al., "Computational Radiomics System to Decode the
Radiographic Phenotype", Cancer Research 77(21):e104-e107, 2017.
"""

from __future__ import annotations

import math
from functools import lru_cache, partial
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from featurekit.errors import DataError
from featurekit.handcrafted._base import HandcraftedTransformer
from featurekit.handcrafted._input import check_images, check_masks, load_images, resolve_device, run_chunks

__all__ = [
    "PYRADIOMICS_FEATURES",
    "SKIMAGE_FEATURES",
    "GLCM_FEATURES",
    "MAX_LEVELS",
    "quantize",
    "glcm_offsets",
    "glcm_matrix",
    "glcm_features",
    "glcm_feature_names",
    "GLCMFeatures",
]

#: pyradiomics' 24 GLCM features (v3 names), in output order.
PYRADIOMICS_FEATURES = (
    "Autocorrelation", "JointAverage", "ClusterProminence", "ClusterShade", "ClusterTendency",
    "Contrast", "Correlation", "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance",
    "JointEnergy", "JointEntropy", "Imc1", "Imc2", "Idm", "MCC", "Idmn", "Id", "Idn",
    "InverseVariance", "MaximumProbability", "SumAverage", "SumEntropy", "SumSquares",
)
#: skimage.feature.graycoprops' properties, output as ``sk-<name>``.
SKIMAGE_FEATURES = (
    "contrast", "dissimilarity", "homogeneity", "ASM", "energy", "correlation",
    "mean", "variance", "std", "entropy",
)
#: Every feature name accepted in ``features``.
GLCM_FEATURES = PYRADIOMICS_FEATURES + tuple(f"sk-{f}" for f in SKIMAGE_FEATURES)
#: Largest number of grey levels after quantisation.
MAX_LEVELS = 1024
AGGREGATES = ("mean", "range", "angle")
_EPS = float(np.spacing(1))


# --------------------------------------------------------------------------- quantisation
def _check_quant(bin_width, bin_count, quant_range):
    if bin_width is not None and bin_count is not None:
        raise DataError("give bin_width or bin_count, not both")
    if bin_count is not None:
        if isinstance(bin_count, bool) or not isinstance(bin_count, (int, np.integer)) or bin_count < 1:
            raise DataError(f"bin_count must be an int >= 1, got {bin_count!r}")
        if bin_count > MAX_LEVELS:
            raise DataError(f"bin_count={bin_count} exceeds MAX_LEVELS={MAX_LEVELS}")
    else:
        w = 25.0 if bin_width is None else bin_width
        try:
            w = float(w)
        except (TypeError, ValueError):
            raise DataError(f"bin_width must be a positive number, got {bin_width!r}") from None
        if not (math.isfinite(w) and w > 0):
            raise DataError(f"bin_width must be a positive number, got {bin_width!r}")
    if isinstance(quant_range, str):
        if quant_range not in ("roi", "image"):
            raise DataError(f"quant_range must be 'roi', 'image' or (lo, hi), got {quant_range!r}")
    else:
        try:
            lo, hi = (float(v) for v in quant_range)
        except (TypeError, ValueError):
            raise DataError(f"quant_range must be 'roi', 'image' or (lo, hi), got {quant_range!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise DataError(f"quant_range (lo, hi) needs finite lo < hi, got {quant_range!r}")


def _edges(values: np.ndarray, lo: float, hi: float, bin_width, bin_count, fixed: bool) -> np.ndarray:
    if bin_count is not None:
        if fixed:
            edges = np.histogram_bin_edges(values, bin_count, range=(lo, hi))
        else:  # == numpy.histogram(values, bin_count)[1], without counting
            edges = np.histogram_bin_edges(values, bin_count)
        edges = edges.astype(np.float64)
        edges[-1] += 1
        return edges
    w = 25.0 if bin_width is None else float(bin_width)
    low = lo - (lo % w)
    edges = np.arange(low, hi + 2 * w, w)
    if len(edges) == 1:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return edges


def quantize(
    image: np.ndarray,
    mask: Optional[np.ndarray] = None,
    *,
    bin_width: Optional[float] = None,
    bin_count: Optional[int] = None,
    quant_range: Union[str, Tuple[float, float]] = "roi",
) -> np.ndarray:
    """Grey levels ``1..N`` of an image (0 outside the mask); see the module docstring.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` (or RGB, converted by the BT.709 rule).
    mask : numpy.ndarray, optional
        Bool ``(H, W)``; pixels outside get level 0.
    bin_width : float, optional
        Default 25 when ``bin_count`` is not given.
    bin_count : int, optional
    quant_range : {'roi', 'image'} or (lo, hi)

    Returns
    -------
    numpy.ndarray
        ``int32`` ``(H, W)``.
    """
    _check_quant(bin_width, bin_count, quant_range)
    (img,) = check_images([image])
    (msk,) = check_masks([img], [mask])
    return _quantize(img, msk, bin_width, bin_count, quant_range)[0].astype(np.int32)


def _digitize(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``numpy.digitize(x, edges)`` (int64) for (nearly) uniform edges, in O(1) per pixel.

    The bin is computed arithmetically; pixels within rounding of an edge, in
    the first or last bins (whose edges may be irregular) get the exact
    ``numpy.digitize`` result.
    """
    n = len(edges)
    if n < 4:
        return np.digitize(x, edges).astype(np.int64)
    step = (edges[n - 2] - edges[1]) / (n - 3)
    r = (x - edges[1]) * (1.0 / step)
    f = np.floor(r)
    k = f.astype(np.int64) + 2
    frac = r - f
    near = (frac < 1e-6) | (frac > 1 - 1e-6) | (k <= 1) | (k >= n - 1)
    if near.any():
        k[near] = np.digitize(x[near], edges)
    return k


def _quantize(img, mask, bin_width, bin_count, quant_range):
    """Levels (int64, 0 outside the mask), lowest and highest level inside the ROI."""
    fixed = not isinstance(quant_range, str)
    x = img
    roi = img if mask is None else img[mask]
    if fixed:
        lo, hi = (float(v) for v in quant_range)
        x = np.clip(img, lo, hi)
        values = np.clip(roi, lo, hi)
        rlo, rhi = float(values.min()), float(values.max())
    else:
        values = img if quant_range == "image" else roi
        lo, hi = float(values.min()), float(values.max())
        rlo, rhi = (lo, hi) if values is roi else (float(roi.min()), float(roi.max()))
    edges = _edges(values.ravel(), lo, hi, bin_width, bin_count, fixed)
    levels = None
    xmin, xmax = float(x.min()), float(x.max())
    if xmax - xmin < 65536:  # integer images (8/16-bit): exact lookup table
        xi = x.astype(np.int64)
        if np.array_equal(xi, x):
            base = int(xmin)
            lut = np.digitize(np.arange(base, int(xmax) + 1, dtype=np.float64), edges).astype(np.int64)
            levels = lut[xi - base] if base else lut[xi]
    if levels is None:
        levels = _digitize(x, edges)
    if mask is not None:
        levels[~mask] = 0
    lmin, lmax = (int(v) for v in np.digitize([rlo, rhi], edges))
    if lmax > MAX_LEVELS:
        raise DataError(
            f"the image quantises to {lmax} grey levels (> MAX_LEVELS={MAX_LEVELS}); "
            "use bin_count or a larger bin_width (e.g. for 16-bit images)"
        )
    return levels, lmin, lmax


# --------------------------------------------------------------------------- offsets & counting
def _round_half_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def glcm_offsets(distances: Sequence[float] = (1,), angles: Sequence[float] = (0, 45, 90, 135)) -> List[Tuple[int, int]]:
    """``(dr, dc)`` per (distance, angle), distance-major: ``round(d sin θ), round(d cos θ)``.

    ``angles`` in degrees; rounding half away from zero, as skimage's C ``round``.
    """
    out = []
    for d in distances:
        for a in angles:
            t = math.radians(float(a))
            out.append((_round_half_away(math.sin(t) * float(d)), _round_half_away(math.cos(t) * float(d))))
    return out


def _count_pairs(levels: np.ndarray, G: int, offsets, device: str = "cpu", backend: Optional[str] = None,
                 symmetric: bool = False) -> np.ndarray:
    """Counts ``(n_off, G, G)`` of one image's level pairs per offset (plus the
    transpose when ``symmetric``).

    ``levels`` holds 1..G inside the ROI and 0 outside; a pair is counted when
    both pixels are inside the image and the ROI (codes in row/column 0 are
    dropped). One ``bincount`` of ``i * (G + 1) + j`` per offset: numpy on the
    CPU, torch on another device (``backend`` forces one, for tests).
    """
    H, W = levels.shape
    G1 = G + 1
    out = np.zeros((len(offsets), G, G), dtype=np.float64)
    use_numpy = (device == "cpu") if backend is None else backend == "numpy"
    if use_numpy:
        lv = levels.astype(np.int64, copy=False)
        lvG = lv * G1
    else:
        import torch

        lv = torch.from_numpy(np.ascontiguousarray(levels, dtype=np.int64)).to(device)
        lvG = lv * G1
    for o, (dr, dc) in enumerate(offsets):
        r0, r1 = max(0, -dr), min(H, H - dr)
        c0, c1 = max(0, -dc), min(W, W - dc)
        if r0 >= r1 or c0 >= c1:
            continue
        code = lvG[r0:r1, c0:c1] + lv[r0 + dr : r1 + dr, c0 + dc : c1 + dc]
        if use_numpy:
            cnt = np.bincount(code.ravel(), minlength=G1 * G1)
        else:
            import torch

            cnt = torch.bincount(code.reshape(-1), minlength=G1 * G1).cpu().numpy()
        c = cnt.reshape(G1, G1)[1:, 1:]
        out[o] = c + c.T if symmetric else c
    return out


def _matrices(levels_list, Gs, offsets, symmetric: bool, device: str = "cpu"):
    """Counts ``(n, n_off, G, G)`` zero-padded to the largest ``G`` (level k at index k-1)."""
    G = max(1, max(Gs))
    P = np.zeros((len(levels_list), len(offsets), G, G), dtype=np.float64)
    for i, (lv, g) in enumerate(zip(levels_list, Gs)):
        g = max(1, int(g))
        P[i, :, :g, :g] = _count_pairs(lv, g, offsets, device, symmetric=symmetric)
    return P, G


def glcm_matrix(
    image: np.ndarray,
    mask: Optional[np.ndarray] = None,
    *,
    distances: Sequence[float] = (1,),
    angles: Sequence[float] = (0, 45, 90, 135),
    bin_width: Optional[float] = None,
    bin_count: Optional[int] = None,
    quant_range: Union[str, Tuple[float, float]] = "roi",
    symmetric: bool = True,
    normed: bool = True,
) -> np.ndarray:
    """Co-occurrence matrices of one image, in :func:`skimage.feature.graycomatrix`'s layout.

    Parameters
    ----------
    image, mask : see :func:`quantize`.
    distances : sequence of float
        Pixel distances (> 0).
    angles : sequence of float
        Degrees.
    bin_width, bin_count, quant_range : see :func:`quantize`.
    symmetric : bool
        Add the transpose (count each pair both ways).
    normed : bool
        Divide each matrix by its sum (an empty matrix stays 0).

    Returns
    -------
    numpy.ndarray
        ``(N_g, N_g, n_distances, n_angles)``; index ``k`` is grey level
        ``k + 1``, ``N_g`` the highest level present in the ROI. Unnormalised
        counts are integers stored as float64.
    """
    distances, angles = _check_offsets(distances, angles)
    _check_quant(bin_width, bin_count, quant_range)
    (img,) = check_images([image])
    (msk,) = check_masks([img], [mask])
    lv, _, top = _quantize(img, msk, bin_width, bin_count, quant_range)
    offsets = glcm_offsets(distances, angles)
    P, G = _matrices([lv], [top], offsets, bool(symmetric))
    P = P[0]
    if normed:
        s = P.sum(axis=(1, 2), keepdims=True)
        P = P / np.where(s == 0, 1, s)
    return P.reshape(len(distances), len(angles), G, G).transpose(2, 3, 0, 1)


# --------------------------------------------------------------------------- features
@lru_cache(maxsize=16)
def _diag_operators(G: int):
    """Sparse ``(G*G, 2G-1)`` and ``(G*G, G)`` maps of p(i, j) onto i + j and |i - j|."""
    import scipy.sparse as sp

    ii, jj = np.meshgrid(np.arange(G), np.arange(G), indexing="ij")
    rows = np.arange(G * G)
    ones = np.ones(G * G)
    add = sp.csr_matrix((ones, (rows, (ii + jj).ravel())), shape=(G * G, 2 * G - 1))
    sub = sp.csr_matrix((ones, (rows, np.abs(ii - jj).ravel())), shape=(G * G, G))
    return add.T.tocsr(), sub.T.tocsr()


def _features(P: np.ndarray, Ng: np.ndarray, n_levels_present: np.ndarray, wanted: Sequence[str]) -> np.ndarray:
    """Features of normalised matrices ``P`` (B, G, G); ``Ng``/``n_levels_present`` per matrix (B,).

    Intermediate quantities are computed once and only when a wanted feature
    needs them. Returns (B, len(wanted)) float64.
    """
    B, G, _ = P.shape
    eps = _EPS
    lv = np.arange(1, G + 1, dtype=np.float64)  # grey level values i, j
    kS = np.arange(2, 2 * G + 1, dtype=np.float64)
    kD = np.arange(0, G, dtype=np.float64)
    flatP = P.reshape(B, G * G)
    memo = {}

    def get(name):
        if name not in memo:
            memo[name] = _COEF[name](get)
        return memo[name]

    _COEF = {
        "px": lambda g: P.sum(axis=2),
        "py": lambda g: P.sum(axis=1),
        "ux": lambda g: g("px") @ lv,
        "uy": lambda g: g("py") @ lv,
        "dx": lambda g: lv[None, :] - g("ux")[:, None],
        "dy": lambda g: lv[None, :] - g("uy")[:, None],
        "sigx": lambda g: np.sqrt(np.sum(g("px") * g("dx") ** 2, axis=1)),
        "sigy": lambda g: np.sqrt(np.sum(g("py") * g("dy") ** 2, axis=1)),
        "corm": lambda g: np.einsum("bij,bi,bj->b", P, g("dx"), g("dy")),
        "pxAddy": lambda g: (_diag_operators(G)[0] @ flatP.T).T,
        "pxSuby": lambda g: (_diag_operators(G)[1] @ flatP.T).T,
        "c": lambda g: kS[None, :] - g("ux")[:, None] - g("uy")[:, None],
        "da": lambda g: g("pxSuby") @ kD,
        "HXY": lambda g: -np.sum(flatP * np.log2(flatP + eps), axis=1),
        "HX": lambda g: -np.sum(g("px") * np.log2(g("px") + eps), axis=1),
        "HY": lambda g: -np.sum(g("py") * np.log2(g("py") + eps), axis=1),
        "pxy": lambda g: g("px")[:, :, None] * g("py")[:, None, :],
        "lpxy": lambda g: np.log2(g("pxy") + eps),
        "HXY1": lambda g: -np.sum(P * g("lpxy"), axis=(1, 2)),
        "HXY2": lambda g: -np.sum(g("pxy") * g("lpxy"), axis=(1, 2)),
        "JointEnergy": lambda g: np.sum(flatP * flatP, axis=1),
        "Idm": lambda g: g("pxSuby") @ (1 / (1 + kD**2)),
        "sk-mean": lambda g: g("px") @ (lv - 1),
        "sk-variance": lambda g: np.sum(g("px") * (lv[None, :] - 1 - g("sk-mean")[:, None]) ** 2, axis=1),
    }
    Ngf = Ng.astype(np.float64)[:, None]

    def corr(g):
        prod = g("sigx") * g("sigy")
        return np.where(prod == 0, 1.0, g("corm") / (prod + eps))

    def sk_corr(g):
        flat = (g("sigx") < 1e-15) | (g("sigy") < 1e-15)
        return np.where(flat, 1.0, g("corm") / np.where(flat, 1.0, g("sigx") * g("sigy")))

    def imc1(g):
        div = np.fmax(g("HX"), g("HY"))
        return np.where(div != 0, (g("HXY") - g("HXY1")) / np.where(div != 0, div, 1.0), 0.0)

    def imc2(g):
        arg = np.maximum(g("HXY2") - g("HXY"), 0.0)
        return np.where(g("HXY2") == g("HXY"), 0.0, np.sqrt(1 - np.exp(-2 * arg)))

    def sk_entropy(g):
        pos = flatP > 0
        return -np.sum(flatP * np.log(np.where(pos, flatP, 1.0)), axis=1)

    feats = {
        "Autocorrelation": lambda g: np.einsum("bij,i,j->b", P, lv, lv),
        "JointAverage": lambda g: g("ux"),
        "ClusterProminence": lambda g: np.sum(g("pxAddy") * g("c") ** 4, axis=1),
        "ClusterShade": lambda g: np.sum(g("pxAddy") * g("c") ** 3, axis=1),
        "ClusterTendency": lambda g: np.sum(g("pxAddy") * g("c") ** 2, axis=1),
        "Contrast": lambda g: g("pxSuby") @ (kD**2),
        "Correlation": corr,
        "DifferenceAverage": lambda g: g("da"),
        "DifferenceEntropy": lambda g: -np.sum(g("pxSuby") * np.log2(g("pxSuby") + eps), axis=1),
        "DifferenceVariance": lambda g: np.sum(g("pxSuby") * (kD[None, :] - g("da")[:, None]) ** 2, axis=1),
        "JointEnergy": lambda g: g("JointEnergy"),
        "JointEntropy": lambda g: g("HXY"),
        "Imc1": imc1,
        "Imc2": imc2,
        "Idm": lambda g: g("Idm"),
        "MCC": lambda g: _mcc(P, g("px"), g("py"), n_levels_present),
        "Idmn": lambda g: np.sum(g("pxSuby") / (1 + kD[None, :] ** 2 / Ngf**2), axis=1),
        "Id": lambda g: g("pxSuby") @ (1 / (1 + kD)),
        "Idn": lambda g: np.sum(g("pxSuby") / (1 + kD[None, :] / Ngf), axis=1),
        "InverseVariance": lambda g: g("pxSuby")[:, 1:] @ (1 / kD[1:] ** 2) if G > 1 else np.zeros(B),
        "MaximumProbability": lambda g: flatP.max(axis=1),
        "SumAverage": lambda g: g("pxAddy") @ kS,
        "SumEntropy": lambda g: -np.sum(g("pxAddy") * np.log2(g("pxAddy") + eps), axis=1),
        "SumSquares": lambda g: np.sum(g("px") * g("dx") ** 2, axis=1),
        # skimage's graycoprops on 0-based levels
        "sk-contrast": lambda g: g("pxSuby") @ (kD**2),
        "sk-dissimilarity": lambda g: g("da"),
        "sk-homogeneity": lambda g: g("Idm"),
        "sk-ASM": lambda g: g("JointEnergy"),
        "sk-energy": lambda g: np.sqrt(g("JointEnergy")),
        "sk-correlation": sk_corr,
        "sk-mean": lambda g: g("sk-mean"),
        "sk-variance": lambda g: g("sk-variance"),
        "sk-std": lambda g: np.sqrt(g("sk-variance")),
        "sk-entropy": sk_entropy,
    }
    return np.stack([np.asarray(feats[w](get), dtype=np.float64) for w in wanted], axis=1)


def _mcc(P, px, py, n_levels_present) -> np.ndarray:
    """Maximal correlation coefficient: sqrt of the 2nd largest eigenvalue of Q.

    :math:`Q = D_x^{-1} P D_y^{-1} P^T` is similar to the symmetric PSD matrix
    :math:`M = A A^T`, :math:`A = D_x^{-1/2} P D_y^{-1/2}` (rows/columns of
    empty levels are 0 in both), so ``eigvalsh(M)`` gives Q's eigenvalues.
    """
    with np.errstate(divide="ignore"):
        rx = np.where(px > 0, 1.0 / np.sqrt(np.where(px > 0, px, 1.0)), 0.0)
        ry = np.where(py > 0, 1.0 / np.sqrt(np.where(py > 0, py, 1.0)), 0.0)
    A = P * rx[:, :, None] * ry[:, None, :]
    M = A @ A.transpose(0, 2, 1)
    G = P.shape[1]
    if G < 2:
        return np.ones(P.shape[0])
    ev = np.linalg.eigvalsh(M)  # ascending
    mcc = np.sqrt(np.maximum(ev[:, -2], 0.0))
    return np.where(n_levels_present < 2, 1.0, mcc)


def _check_offsets(distances, angles):
    try:
        distances = [float(d) for d in distances]
        angles = [float(a) for a in angles]
    except TypeError:
        raise DataError(f"distances and angles must be sequences of numbers, got {distances!r}, {angles!r}") from None
    if not distances or not all(math.isfinite(d) and d > 0 for d in distances):
        raise DataError(f"distances must be positive numbers, got {distances!r}")
    if not angles or not all(math.isfinite(a) for a in angles):
        raise DataError(f"angles must be finite degrees, got {angles!r}")
    if len(set(distances)) != len(distances) or len(set(angles)) != len(angles):
        raise DataError(f"distances/angles repeat: {distances!r}, {angles!r}")
    for (dr, dc), (d, a) in zip(glcm_offsets(distances, angles), [(d, a) for d in distances for a in angles]):
        if dr == 0 and dc == 0:
            raise DataError(f"distance {d:g} at angle {a:g} rounds to a zero offset")
    return distances, angles


def _check_features(features) -> Tuple[str, ...]:
    if isinstance(features, str):
        if features == "all":
            return GLCM_FEATURES
        if features == "pyradiomics":
            return PYRADIOMICS_FEATURES
        if features == "skimage":
            return tuple(f"sk-{f}" for f in SKIMAGE_FEATURES)
        features = (features,)
    features = tuple(features)
    bad = [f for f in features if f not in GLCM_FEATURES]
    if bad or not features or len(set(features)) != len(features):
        raise DataError(
            f"features must be 'all', 'pyradiomics', 'skimage' or distinct names from {GLCM_FEATURES}; "
            f"got {features!r}"
        )
    return features


def _check_aggregate(aggregate) -> Tuple[str, ...]:
    if isinstance(aggregate, str):
        aggregate = (aggregate,)
    aggregate = tuple(aggregate)
    if not aggregate or any(a not in AGGREGATES for a in aggregate) or len(set(aggregate)) != len(aggregate):
        raise DataError(f"aggregate must be distinct values from {AGGREGATES}, got {aggregate!r}")
    return aggregate


def glcm_feature_names(
    features="all",
    distances: Sequence[float] = (1,),
    angles: Sequence[float] = (0, 45, 90, 135),
    aggregate=("mean",),
) -> List[str]:
    """Output names: ``glcm_<feature>_d<d>`` (mean), ``..._range``, ``..._a<angle>``.

    Order: distance, feature, aggregate (``'angle'`` expands to one column per angle).
    """
    feats = _check_features(features)
    distances, angles = _check_offsets(distances, angles)
    aggs = _check_aggregate(aggregate)
    names = []
    for d in distances:
        for f in feats:
            for a in aggs:
                if a == "mean":
                    names.append(f"glcm_{f}_d{d:g}")
                elif a == "range":
                    names.append(f"glcm_{f}_d{d:g}_range")
                else:
                    names.extend(f"glcm_{f}_d{d:g}_a{t:g}" for t in angles)
    return names


def _glcm_chunk(images, masks, *, distances, angles, bin_width, bin_count, quant_range, symmetric,
                features, aggregate, device, first=0) -> np.ndarray:
    offsets = glcm_offsets(distances, angles)
    n_d, n_a = len(distances), len(angles)
    n_off = len(offsets)
    q = []
    for i, (img, m) in enumerate(zip(images, masks)):
        try:
            q.append(_quantize(img, m, bin_width, bin_count, quant_range))
        except DataError as exc:
            raise DataError(f"image {first + i}: {exc}") from None
    levels = [v[0] for v in q]
    Ng = np.array([v[2] for v in q])
    n_present = np.array([1 if v[1] == v[2] else 2 for v in q])  # only "< 2" matters (MCC)
    n = len(levels)
    F = np.empty((n, n_off, len(features)))
    valid = np.empty((n, n_off), dtype=bool)
    start = 0
    while start < n:  # sub-batches of bounded memory: n_sub * n_off * (G+1)^2 <= 2^21
        stop, G = start + 1, max(1, int(Ng[start]))
        while stop < n and (stop + 1 - start) * n_off * (max(G, int(Ng[stop])) + 1) ** 2 <= 1 << 21:
            G = max(G, int(Ng[stop]))
            stop += 1
        P, G = _matrices(levels[start:stop], Ng[start:stop], offsets, symmetric, device)
        m = stop - start
        sums = P.sum(axis=(2, 3))  # (m, n_off)
        ok = sums > 0
        P /= np.where(ok, sums, 1.0)[:, :, None, None]
        F[start:stop] = _features(
            P.reshape(m * n_off, G, G), np.repeat(Ng[start:stop], n_off),
            np.repeat(n_present[start:stop], n_off), features,
        ).reshape(m, n_off, len(features))
        valid[start:stop] = ok
        start = stop
    F = F.reshape(n, n_d, n_a, len(features))
    valid = valid.reshape(n, n_d, n_a)
    cols = []
    for di in range(n_d):
        ok = valid[:, di, :]  # (n, n_a)
        if not ok.any(axis=1).all():
            i = first + int(np.flatnonzero(~ok.any(axis=1))[0])
            raise DataError(
                f"image {i}: no pixel pair inside the image/mask at distance {distances[di]:g} "
                f"for any angle; the ROI is too small for this distance"
            )
        if "angle" in aggregate and not ok.all():
            i, a = (int(v) for v in np.argwhere(~ok)[0])
            raise DataError(
                f"image {first + i}: no pixel pair at distance {distances[di]:g}, angle {angles[a]:g}; "
                "per-angle features are undefined (use aggregate='mean')"
            )
        Fd = F[:, di]  # (n, n_a, nf)
        w = ok[:, :, None].astype(np.float64)
        mean = np.where(ok[:, :, None], Fd, 0.0).sum(axis=1) / w.sum(axis=1)
        hi = np.where(ok[:, :, None], Fd, -np.inf).max(axis=1)
        lo = np.where(ok[:, :, None], Fd, np.inf).min(axis=1)
        for fi in range(len(features)):
            for a in aggregate:
                if a == "mean":
                    cols.append(mean[:, fi])
                elif a == "range":
                    cols.append(hi[:, fi] - lo[:, fi])
                else:
                    cols.extend(Fd[:, ai, fi] for ai in range(n_a))
    return np.stack(cols, axis=1)


def glcm_features(
    images,
    masks=None,
    *,
    distances: Sequence[float] = (1,),
    angles: Sequence[float] = (0, 45, 90, 135),
    bin_width: Optional[float] = None,
    bin_count: Optional[int] = None,
    quant_range: Union[str, Tuple[float, float]] = "roi",
    symmetric: bool = True,
    features="all",
    aggregate=("mean",),
    device: str = "cpu",
    n_jobs: Optional[int] = None,
    empty_mask: str = "error",
) -> np.ndarray:
    """GLCM / Haralick features of a batch of images (module docstring for the formulas).

    Parameters
    ----------
    images : list of arrays, (N, H, W[, 3]) array or Dataset
    masks : list of (bool array or None), optional
        Only pairs with both pixels inside the mask count.
    distances : sequence of float, default (1,)
    angles : sequence of float, default (0, 45, 90, 135) degrees
    bin_width : float, optional
        Default 25 (pyradiomics) when ``bin_count`` is not given.
    bin_count : int, optional
    quant_range : {'roi', 'image'} or (lo, hi), default 'roi'
    symmetric : bool, default True
    features : 'all', 'pyradiomics', 'skimage' or list of names
    aggregate : sequence of {'mean', 'range', 'angle'}, default ('mean',)
    device : {'cpu', 'cuda', 'auto'}, default 'cpu'
        Where the pair counting runs (numpy on the CPU, ``torch.bincount``
        on a GPU); the features are always computed with numpy.
    n_jobs : int, optional
    empty_mask : {'error', 'whole'}

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(n_images, D)``, columns named by :func:`glcm_feature_names`.
    """
    distances, angles = _check_offsets(distances, angles)
    _check_quant(bin_width, bin_count, quant_range)
    feats = _check_features(features)
    aggs = _check_aggregate(aggregate)
    imgs, msks = load_images(images, masks, empty_mask)
    dev = resolve_device(device)
    fn = partial(
        _glcm_chunk, distances=distances, angles=angles, bin_width=bin_width, bin_count=bin_count,
        quant_range=quant_range if isinstance(quant_range, str) else tuple(float(v) for v in quant_range),
        symmetric=bool(symmetric), features=feats, aggregate=aggs, device=dev,
    )
    return run_chunks(fn, imgs, msks, n_jobs, dev, chunk_size=64)


class GLCMFeatures(HandcraftedTransformer):
    """GLCM / Haralick features as a scikit-learn transformer.

    See :func:`glcm_features` and the module docstring. Output columns
    ``glcm_<feature>_d<distance>`` (e.g. ``glcm_Contrast_d1``,
    ``glcm_sk-homogeneity_d1``), plus ``..._range`` / ``..._a<angle>``.

    Parameters
    ----------
    distances : sequence of float, default (1,)
    angles : sequence of float, default (0, 45, 90, 135)
    bin_width : float, optional (25 when ``bin_count`` is None)
    bin_count : int, optional
    quant_range : {'roi', 'image'} or (lo, hi), default 'roi'
    symmetric : bool, default True
    features : str or list of str, default 'all'
    aggregate : str or sequence of str, default 'mean'
    device : {'cpu', 'cuda', 'auto'}, default 'cpu'
    n_jobs : int, optional
    empty_mask : {'error', 'whole'}, default 'error'
    max_side : int or None, default 2048
        An image whose longer side exceeds it is downsized to it first, with
        a warning (:mod:`featurekit.handcrafted._input`): the counting holds
        several full-size integer copies of the image (about 3.8 GB for an
        8000 x 8000 image), 2048 bounds it to about 0.3 GB. ``None`` keeps
        the full resolution.

    Attributes
    ----------
    feature_names_out_ : ndarray of str
    n_features_out_ : int
    """

    def __init__(
        self,
        distances=(1,),
        angles=(0, 45, 90, 135),
        bin_width=None,
        bin_count=None,
        quant_range="roi",
        symmetric=True,
        features="all",
        aggregate="mean",
        device="cpu",
        n_jobs=None,
        empty_mask="error",
        max_side=2048,
    ):
        self.distances = distances
        self.angles = angles
        self.bin_width = bin_width
        self.bin_count = bin_count
        self.quant_range = quant_range
        self.symmetric = symmetric
        self.features = features
        self.aggregate = aggregate
        super().__init__(device=device, n_jobs=n_jobs, empty_mask=empty_mask, max_side=max_side)

    def _check_family(self) -> dict:
        _check_offsets(self.distances, self.angles)
        _check_quant(self.bin_width, self.bin_count, self.quant_range)
        _check_features(self.features)
        _check_aggregate(self.aggregate)
        return {}

    def _names(self, params) -> List[str]:
        return glcm_feature_names(self.features, self.distances, self.angles, self.aggregate)

    def _compute(self, images, masks, params) -> np.ndarray:
        return glcm_features(
            images, masks, distances=self.distances, angles=self.angles, bin_width=self.bin_width,
            bin_count=self.bin_count, quant_range=self.quant_range, symmetric=self.symmetric,
            features=self.features, aggregate=self.aggregate, device=params["device"],
            n_jobs=params["n_jobs"], empty_mask=params["empty_mask"],
        )
