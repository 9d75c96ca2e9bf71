r"""Grey-level co-occurrence matrices (GLCM) and Haralick texture features.

Pipeline (per image, vectorised over a batch), one module per step:

1. **Quantisation** to grey levels ``1..N`` by pyradiomics' rule (``bin_width``
   default 25, or ``bin_count``; range of the ROI, of the image or fixed):
   :mod:`featurekit.handcrafted.glcm_quantize`.
2. **Counting** of the level pairs at each offset ``(round(d sin θ),
   round(d cos θ))`` (skimage's rule), both pixels inside the image and the
   mask; ``symmetric=True`` (default, as pyradiomics) adds the transpose; each
   matrix is normalised to sum 1: :mod:`featurekit.handcrafted.glcm_counts`.
   pyradiomics uses the same offsets for ``d = 1``; for ``d > 1`` it takes
   every offset at Chebyshev distance ``d`` (8 directions at ``d = 2``), which
   this module does not. (Beware pyradiomics' ``force2D=True`` on a 2-D image:
   it takes axis 0, the rows, as the out-of-plane axis and keeps only the
   0-degree pairs; plain 2-D extraction is the setting these features equal.)
3. **Features** per offset, pyradiomics' 24 (v3 names and formulas) and
   :func:`skimage.feature.graycoprops`' set as ``sk-<prop>``:
   :mod:`featurekit.handcrafted.glcm_formulas` (the formula table, after
   pyradiomics' documentation of its GLCM feature class).
4. **Aggregation** over the angles of each distance (here): ``'mean'`` over
   the angles that have at least one pair (pyradiomics' ``nanmean``; an image
   with no pair at a distance raises), optionally the ``'range'`` (max - min)
   and the values per ``'angle'``; columns named by :func:`glcm_feature_names`.

Speed: only the bounding box of the mask is quantised and counted (pairs need
both pixels in the mask), in ``uint8``/``uint16`` levels; counting is
skimage's compiled loop on the CPU, one ``torch.bincount`` per batch on a
GPU; features are computed for all images x offsets of a batch at once.
Results equal pyradiomics' ``RadiomicsGLCM`` and skimage's ``graycoprops``
to ~1e-12 (tests); figures in ``benchmarks/README.md``.

Notes
-----
IBSI (Zwanenburg et al., Radiology 2020) defines 23 of the 24 pyradiomics
features, all but ``MCC`` (its *dissimilarity* is ``DifferenceAverage``, its
*sum variance* ``ClusterTendency``). On the IBSI 1 digital phantom -- each of
its slices one 2-D image, ``bin_width=1``, distance 1 -- their means over the
slices equal IBSI's "2D, averaged" reference values to the three digits IBSI
publishes (``tests/test_ibsi_phantom.py``).

Differs from IBSI in the ``bin_width`` discretisation, because pyradiomics
puts the bin edges at multiples of the width (level
:math:`\lfloor x/W \rfloor - \lfloor lo/W \rfloor + 1`) where IBSI starts
them at the range's minimum (:math:`\lfloor (x - lo)/W \rfloor + 1`): the
levels are the same when ``lo`` is a multiple of ``W``, otherwise some pixels
get the next level up. Every family quantised by
:mod:`featurekit.handcrafted.glcm_quantize` (GLRLM, GLSZM, GLDM, NGTDM, the
first-order histogram) shares this difference.

References
----------
R. M. Haralick, K. Shanmugam and I. Dinstein, "Textural features for image
classification", IEEE Trans. Syst. Man Cybern. SMC-3(6):610-621, 1973.

J. J. M. van Griethuysen et al., "Computational Radiomics System to Decode the
Radiographic Phenotype", Cancer Research 77(21):e104-e107, 2017.
"""

from __future__ import annotations

from functools import partial
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from featurekit.errors import DataError
from featurekit.handcrafted._base import HandcraftedTransformer
from featurekit.handcrafted._input import check_images, check_masks, load_images, resolve_device, run_chunks
from featurekit.handcrafted.glcm_counts import check_offsets as _check_offsets
from featurekit.handcrafted.glcm_counts import count_matrices, glcm_offsets
from featurekit.handcrafted.glcm_formulas import (
    GLCM_FEATURES,
    PYRADIOMICS_FEATURES,
    SKIMAGE_FEATURES,
    haralick_features,
)
from featurekit.handcrafted.glcm_formulas import check_features as _check_features
from featurekit.handcrafted.glcm_quantize import MAX_LEVELS, check_binning, quantize_levels
from featurekit.handcrafted.glcm_quantize import check_quant as _check_quant

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

AGGREGATES = ("mean", "range", "angle")
#: Sub-batches of the counting/feature step hold at most this many matrix cells.
_CELLS = 1 << 21


def quantize(
    image: np.ndarray,
    mask: Optional[np.ndarray] = None,
    *,
    bin_width: Optional[float] = None,
    bin_count: Optional[int] = None,
    quant_range: Union[str, Tuple[float, float]] = "roi",
) -> np.ndarray:
    """Grey levels ``1..N`` of an image (0 outside the mask).

    Rules in :mod:`featurekit.handcrafted.glcm_quantize` (pyradiomics'
    discretisation).

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
    return quantize_levels(img, msk, bin_width, bin_count, quant_range)[0].astype(np.int32)


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
    lv, _, top = quantize_levels(img, msk, bin_width, bin_count, quant_range, crop=True)
    P, G = count_matrices([lv], [top], distances, angles, bool(symmetric))
    P = P[0]
    if normed:
        s = P.sum(axis=(1, 2), keepdims=True)
        P = P / np.where(s == 0, 1, s)
    return P.reshape(len(distances), len(angles), G, G).transpose(2, 3, 0, 1)


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
    """Features ``(n, D)`` of a chunk of checked images (``first``: index of its first image)."""
    n_d, n_a = len(distances), len(angles)
    n_off = n_d * n_a
    levels, level_max, present = [], [], []
    for i, (img, m) in enumerate(zip(images, masks)):
        try:
            lv, lmin, lmax = quantize_levels(img, m, bin_width, bin_count, quant_range, crop=True)
        except DataError as exc:
            raise DataError(f"image {first + i}: {exc}") from None
        levels.append(lv)
        level_max.append(lmax)
        present.append(1 if lmin == lmax else 2)  # only "< 2" matters (MCC)
    Ng, n_present = np.array(level_max), np.array(present)
    n = len(levels)
    F = np.empty((n, n_off, len(features)))
    valid = np.empty((n, n_off), dtype=bool)
    start = 0
    while start < n:  # sub-batches of bounded memory: n_sub * n_off * (G+1)^2 <= _CELLS
        stop, G = start + 1, max(1, int(Ng[start]))
        while stop < n and (stop + 1 - start) * n_off * (max(G, int(Ng[stop])) + 1) ** 2 <= _CELLS:
            G = max(G, int(Ng[stop]))
            stop += 1
        P, G = count_matrices(levels[start:stop], Ng[start:stop], distances, angles, symmetric, device)
        m = stop - start
        sums = P.sum(axis=(2, 3))  # (m, n_off)
        ok = sums > 0
        P /= np.where(ok, sums, 1.0)[:, :, None, None]
        F[start:stop] = haralick_features(
            P.reshape(m * n_off, G, G), np.repeat(Ng[start:stop], n_off),
            np.repeat(n_present[start:stop], n_off), features,
        ).reshape(m, n_off, len(features))
        valid[start:stop] = ok
        start = stop
    per_angle = F.reshape(n, n_d, n_a, len(features)).transpose(0, 1, 3, 2)  # (n, n_d, nf, n_a)
    valid_angle = valid.reshape(n, n_d, n_a)
    none = np.logical_not(valid_angle.any(axis=2))  # (n, n_d): no pair at any angle of a distance
    if none.any():
        di = int(np.flatnonzero(none.any(axis=0))[0])
        raise DataError(
            f"image {first + int(np.flatnonzero(none[:, di])[0])}: no pixel pair inside the image/mask at "
            f"distance {distances[di]:g} for any angle; the ROI is too small for this distance"
        )
    if "angle" in aggregate and not valid_angle.all():
        di = int(np.flatnonzero(~valid_angle.all(axis=(0, 2)))[0])
        i, ai = (int(v) for v in np.argwhere(~valid_angle[:, di])[0])
        raise DataError(
            f"image {first + i}: no pixel pair at distance {distances[di]:g}, angle {angles[ai]:g}; "
            "per-angle features are undefined (use aggregate='mean')"
        )
    ok = valid_angle[:, :, None, :]  # angles without pairs are left out of the mean and range
    blocks = []  # (n, n_d, nf, width) per aggregate, in the order of the names
    for agg in aggregate:
        if agg == "mean":
            mean = (per_angle.mean(axis=3) if valid_angle.all()
                    else np.where(ok, per_angle, 0.0).sum(axis=3) / ok.sum(axis=3))
            blocks.append(mean[..., None])
        elif agg == "range":
            hi = np.where(ok, per_angle, -np.inf).max(axis=3)
            blocks.append((hi - np.where(ok, per_angle, np.inf).min(axis=3))[..., None])
        else:
            blocks.append(per_angle)
    return np.concatenate(blocks, axis=3).reshape(n, -1)


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
        Where the pair counting runs (skimage's ``graycomatrix`` on the CPU,
        one ``torch.bincount`` per batch on a GPU); quantisation and features
        are always computed with numpy.
    n_jobs : int, optional
    empty_mask : {'error', 'whole'}

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(n_images, D)``, columns named by :func:`glcm_feature_names`.
    """
    distances, angles = _check_offsets(distances, angles)
    binning = check_binning(bin_width, bin_count, quant_range)
    feats = _check_features(features)
    aggs = _check_aggregate(aggregate)
    imgs, msks = load_images(images, masks, empty_mask, keep_integers=True)  # read only: no float64 copy
    dev = resolve_device(device)
    fn = partial(_glcm_chunk, distances=distances, angles=angles, **binning, symmetric=bool(symmetric),
                 features=feats, aggregate=aggs, device=dev)
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

    #: the family only reads its images: integer and float64 gray images as they are
    _keep_integers = True

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
