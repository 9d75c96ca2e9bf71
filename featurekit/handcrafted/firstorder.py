r"""First-order statistics of the intensities inside the ROI (pyradiomics' ``firstorder`` class).

The 18 features pyradiomics enables by default, with its names and formulas
(``X`` the ROI's intensities in native units, ``N_p`` their number, ``c`` the
``voxel_array_shift``, ``p(i)`` the fraction of ROI pixels in grey level ``i``
after quantisation):

===========================  ================================================
``Energy``                   :math:`\sum (X + c)^2`
``TotalEnergy``              ``Energy`` times the pixel area (``spacing``)
``Entropy``                  :math:`-\sum_i p(i) \log_2(p(i) + \epsilon)`
``Minimum`` ``Maximum``      extremes of ``X``
``10Percentile``             ``numpy.percentile`` (linear interpolation)
``90Percentile``
``Mean`` ``Median``
``InterquartileRange``       75th minus 25th percentile
``Range``                    ``Maximum - Minimum``
``MeanAbsoluteDeviation``    mean of :math:`|X - \bar X|`
``RobustMeanAbsoluteDeviation``  the same over the values between the 10th and
                             90th percentiles (inclusive); 0 when there is none
                             (e.g. two pixels; pyradiomics returns NaN)
``RootMeanSquared``          :math:`\sqrt{\sum (X + c)^2 / N_p}`
``Skewness``                 :math:`m_3 / m_2^{3/2}` (0 for a flat ROI)
``Kurtosis``                 :math:`m_4 / m_2^2` (not the excess; 0 for a flat ROI)
``Variance``                 :math:`m_2` (population variance)
``Uniformity``               :math:`\sum_i p(i)^2`
===========================  ================================================

:math:`\epsilon` is the float64 machine epsilon, as pyradiomics. pyradiomics'
deprecated ``StandardDeviation`` (the square root of ``Variance``) is left out,
as pyradiomics does by default. Entropy and Uniformity use the grey levels of
:mod:`featurekit.handcrafted.glcm_quantize` (``bin_width`` 25 or
``bin_count``, the ROI's range), the rest the raw intensities.

Speed: the ROI's distinct values and their counts (one ``numpy.bincount``
for 8/16-bit intensities, a sort otherwise), then every statistic as a
weighted sum over them, in float64 around the mean; 8/16-bit images are read
as they are, without a float64 copy. Results equal pyradiomics' ``RadiomicsFirstOrder`` to
~1e-12 relative (tests).

Notes
-----
IBSI (Zwanenburg et al., Radiology 2020) defines 15 of these as
intensity-based statistics and ``Entropy`` and ``Uniformity`` as intensity
histogram features (on the same discretisation). On the IBSI 1 digital
phantom (its ROI, ``bin_width=1``) all 17 equal IBSI's reference values to
the three digits IBSI publishes (``tests/test_ibsi_phantom.py``), with one
difference by definition: IBSI's kurtosis is the *excess* kurtosis
(:math:`m_4 / m_2^2 - 3`) where pyradiomics' ``Kurtosis``, followed here, is
:math:`m_4 / m_2^2`; subtract 3 to compare. ``Entropy`` and ``Uniformity``
also differ where the discretisation does (``bin_width``'s bin edges, see
:mod:`featurekit.handcrafted.glcm`). IBSI's median absolute deviation,
coefficient of variation and quartile coefficient of dispersion are not
offered, as pyradiomics.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from featurekit.errors import DataError
from featurekit.handcrafted._base import Family, FamilyTransformer, batch_function, transformer_doc
from featurekit.handcrafted._params import check_features, check_spacing, prefixed
from featurekit.handcrafted.glcm_quantize import bin_edges, check_binning

__all__ = ["FIRSTORDER_FEATURES", "firstorder_features", "firstorder_feature_names", "FirstOrderFeatures"]

#: pyradiomics' default first-order features, in its order (v3 names).
FIRSTORDER_FEATURES = (
    "Energy", "TotalEnergy", "Entropy", "Minimum", "10Percentile", "90Percentile", "Maximum", "Mean",
    "Median", "InterquartileRange", "Range", "MeanAbsoluteDeviation", "RobustMeanAbsoluteDeviation",
    "RootMeanSquared", "Skewness", "Kurtosis", "Variance", "Uniformity",
)
_EPS = np.spacing(1)


def _check_shift(shift) -> float:
    try:
        c = float(shift)
    except (TypeError, ValueError):
        raise DataError(f"voxel_array_shift must be a number, got {shift!r}") from None
    if not np.isfinite(c) or isinstance(shift, bool):
        raise DataError(f"voxel_array_shift must be a finite number, got {shift!r}")
    return c


def firstorder_feature_names(features="all") -> List[str]:
    """Output names ``firstorder_<feature>`` (pyradiomics' ``original_firstorder_<feature>``)."""
    return prefixed("firstorder", check_features(features, FIRSTORDER_FEATURES, "firstorder"))


def _value_counts(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``x`` (ascending, float64) and how often each occurs.

    8/16-bit intensities (also as float64) are counted with one ``numpy.bincount``
    over the ROI's range; other values are sorted (``numpy.unique``).
    """
    lo, hi = x.min(), x.max()
    if 0 <= lo and hi <= 65535:
        xi = x.astype(np.uint16)
        if (xi == x).all():
            lo = int(lo)
            counts = np.bincount(xi - np.uint16(lo))
            nz = np.flatnonzero(counts)
            return (nz + lo).astype(np.float64), counts[nz]
    return np.unique(x.astype(np.float64, copy=False), return_counts=True)


def _percentiles(values: np.ndarray, cum: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """``numpy.percentile`` (linear) of the sample whose sorted distinct ``values``
    occur up to the cumulative counts ``cum``, with numpy's interpolation formula."""
    n = int(cum[-1])
    h = (n - 1) * np.asarray(qs, dtype=np.float64) / 100.0
    k = np.floor(h)
    t = h - k
    a = values[np.searchsorted(cum, k, side="right")]
    b = values[np.searchsorted(cum, np.minimum(k + 1, n - 1), side="right")]
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _one(img, m, bin_width, bin_count, quant_range, shift, area) -> np.ndarray:
    """The 18 features of one image, in :data:`FIRSTORDER_FEATURES` order.

    Every statistic is a sum over the ROI's distinct values weighted by their
    counts (:func:`_value_counts`); the grey levels are those values binned
    by pyradiomics' edges (:func:`~featurekit.handcrafted.glcm_quantize.bin_edges`).
    """
    x = (img if m is None else img[m]).ravel()
    v, c = _value_counts(x)
    cum = np.cumsum(c)
    n = int(cum[-1])
    lo, hi = v[0], v[-1]
    if isinstance(quant_range, str):
        qlo, qhi = (lo, hi) if quant_range == "roi" else (float(img.min()), float(img.max()))
        levels = np.digitize(v, bin_edges(qlo, qhi, bin_width, bin_count))
    else:
        qlo, qhi = quant_range
        levels = np.digitize(np.clip(v, qlo, qhi), bin_edges(qlo, qhi, bin_width, bin_count))
    per_level = np.bincount(levels, weights=c)
    p = per_level[per_level > 0] / n
    q = _percentiles(v, cum, (10, 25, 50, 75, 90))
    mean = np.dot(c, v) / n
    d = v - mean
    cd2 = c * d * d
    m2 = cd2.sum() / n
    m3 = np.dot(cd2, d) / n
    m4 = np.dot(cd2, d * d) / n
    s = v + shift
    energy = np.dot(c, s * s)
    inner = (v >= q[0]) & (v <= q[4])
    vi, ci = v[inner], c[inner]
    # no value between the 10th and 90th percentile (a few distinct values): pyradiomics' NaN, 0 here
    r_mad = np.dot(ci, np.abs(vi - np.dot(ci, vi) / ci.sum())) / ci.sum() if ci.size else 0.0
    return np.array([
        energy, energy * area, -np.sum(p * np.log2(p + _EPS)), lo, q[0], q[4], hi, mean, q[2], q[3] - q[1],
        hi - lo, np.dot(c, np.abs(d)) / n, r_mad, np.sqrt(energy / n),
        m3 / m2 ** 1.5 if m2 > 0 else 0.0, m4 / m2 ** 2 if m2 > 0 else 0.0, m2, np.dot(p, p),
    ])


def _check(bin_width=None, bin_count=None, quant_range="roi", voxel_array_shift=0.0, spacing=(1.0, 1.0),
           features="all") -> dict:
    """The family's parameters, validated, as the arguments of :func:`_firstorder_chunk`."""
    args = check_binning(bin_width, bin_count, quant_range)
    features = check_features(features, FIRSTORDER_FEATURES, "firstorder")
    shift = _check_shift(voxel_array_shift)
    dy, dx = check_spacing(spacing)
    return {**args, "shift": shift, "area": dy * dx, "features": features}


def _firstorder_chunk(images, masks, *, bin_width, bin_count, quant_range, shift, area, features,
                      first=0) -> np.ndarray:
    columns = np.array([FIRSTORDER_FEATURES.index(f) for f in features])
    out = np.empty((len(images), len(columns)))
    for i, (img, m) in enumerate(zip(images, masks)):
        try:
            out[i] = _one(img, m, bin_width, bin_count, quant_range, shift, area)[columns]
        except DataError as exc:
            raise DataError(f"image {first + i}: {exc}") from None
    return out


_FAMILY = Family(_check, lambda p: prefixed("firstorder", p["features"]), _firstorder_chunk)


#: numpydoc entries of the family's own parameters (its batch function's and transformer's docstrings).
_PARAMS_DOC = """\
bin_width, bin_count, quant_range
    Grey levels of ``Entropy`` and ``Uniformity``
    (:mod:`featurekit.handcrafted.glcm_quantize`; pyradiomics' ``binWidth``
    / ``binCount``).
voxel_array_shift : float, default 0
    Added to the intensities of ``Energy``, ``TotalEnergy`` and
    ``RootMeanSquared`` (pyradiomics' ``voxelArrayShift``).
spacing : (float, float), default (1, 1)
    Pixel size (rows, columns) in mm; ``TotalEnergy`` is ``Energy`` times its area.
features : 'all' or list of names of :data:`FIRSTORDER_FEATURES`
"""


class FirstOrderFeatures(FamilyTransformer):
    __doc__ = transformer_doc(
        "First-order statistics (pyradiomics' ``firstorder``) as a scikit-learn transformer "
        "(:func:`firstorder_features`; formulas in the module docstring).",
        "``firstorder_<feature>`` (e.g. ``firstorder_Entropy``)",
        _PARAMS_DOC,
    )

    _family = _FAMILY

    def __init__(self, bin_width=None, bin_count=None, quant_range="roi", voxel_array_shift=0.0,
                 spacing=(1.0, 1.0), features="all", device="cpu", n_jobs=None, empty_mask="error",
                 max_side=None):
        self.bin_width = bin_width
        self.bin_count = bin_count
        self.quant_range = quant_range
        self.voxel_array_shift = voxel_array_shift
        self.spacing = spacing
        self.features = features
        super().__init__(device=device, n_jobs=n_jobs, empty_mask=empty_mask, max_side=max_side)


firstorder_features = batch_function(
    FirstOrderFeatures, "firstorder_features",
    "First-order features of a batch of images (module docstring for the formulas).",
    params=_PARAMS_DOC, names="firstorder_feature_names",
)
