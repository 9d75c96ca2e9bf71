r"""Quantisation of an image to GLCM grey levels ``1..N`` (pyradiomics' rule).

* ``bin_width=W`` (default 25, as pyradiomics): edges
  ``numpy.arange(lo - lo % W, hi + 2 W, W)``, i.e. equally spaced from 0, the
  first edge at or below ``lo``; level = ``numpy.digitize(x, edges)``
  (:math:`\lfloor x/W \rfloor - \lfloor lo/W \rfloor + 1`). A flat region gets
  the single bin ``[lo - 0.5, lo + 0.5)``.
* ``bin_count=N``: edges ``numpy.histogram(values, N)[1]`` (``N`` equal bins
  from ``lo`` to ``hi``) with the last edge raised by 1 so that ``hi`` falls
  into bin ``N``; level = ``numpy.digitize(x, edges)``.
* the range ``(lo, hi)`` is, by ``quant_range``: ``'roi'`` (default,
  pyradiomics) the min/max of the mask pixels (the whole image when there is
  no mask); ``'image'`` the min/max of the whole image even with a mask; or a
  fixed ``(lo, hi)`` given by the user, the same for every image, pixels
  clipped to it first. The choice changes the features: ``'roi'`` adapts the
  levels to each lesion's own contrast, a fixed range keeps one intensity
  scale for the whole data set.

Nothing is fitted from data. At most :data:`MAX_LEVELS` levels: 16-bit images
are quantised in their native units by the same rule (a 12-bit range with bin
width 25 gives 164 levels); a range that would need more levels (a full 16-bit
range with bin width 25: 2,622) raises :class:`~featurekit.errors.DataError`
saying to set ``bin_count`` or the smallest ``bin_width`` that fits.

Speed: one compiled pass finds the ROI's range and one writes each ROI pixel's bin
(:mod:`featurekit.handcrafted._kernels`): guessed arithmetically from the uniform edges,
then moved until it is ``numpy.digitize``'s bin exactly (tests), or, for whole-number
pixels (8/16-bit, also as float64), looked up in a table of the ROI's values binned that
way; no temporaries. The features only need the mask's bounding
box, so :func:`quantize_levels` can quantise that
box alone (``crop=True``), in ``uint8``/``uint16``.

References
----------
pyradiomics documentation, "Image pre-processing: discretization",
https://pyradiomics.readthedocs.io/en/latest/radiomics.html#radiomics.imageoperations.binImage
"""

from __future__ import annotations

import bisect
import math
from typing import Optional, Tuple, Union

import numpy as np

from featurekit.errors import DataError
from featurekit.handcrafted._input import mask_box

__all__ = ["MAX_LEVELS", "DEFAULT_BIN_WIDTH", "check_quant", "check_binning", "bin_edges", "quantize_levels"]

#: Largest number of grey levels after quantisation.
MAX_LEVELS = 1024
#: pyradiomics' default bin width, used when neither bin_width nor bin_count is given.
DEFAULT_BIN_WIDTH = 25.0

QuantRange = Union[str, Tuple[float, float]]


def check_quant(bin_width, bin_count, quant_range) -> None:
    """Validate the binning parameters (raises :class:`DataError`)."""
    if bin_width is not None and bin_count is not None:
        raise DataError("give bin_width or bin_count, not both")
    if bin_count is not None:
        if isinstance(bin_count, bool) or not isinstance(bin_count, (int, np.integer)) or bin_count < 1:
            raise DataError(f"bin_count must be an int >= 1, got {bin_count!r}")
        if bin_count > MAX_LEVELS:
            raise DataError(f"bin_count={bin_count} exceeds MAX_LEVELS={MAX_LEVELS}")
    else:
        w = DEFAULT_BIN_WIDTH if bin_width is None else bin_width
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


def check_binning(bin_width, bin_count, quant_range) -> dict:
    """The binning parameters, validated (:func:`check_quant`), as keyword arguments:
    ``quant_range`` as ``'roi'``, ``'image'`` or a ``(float, float)`` tuple."""
    check_quant(bin_width, bin_count, quant_range)
    rng = quant_range if isinstance(quant_range, str) else tuple(float(v) for v in quant_range)
    return {"bin_width": bin_width, "bin_count": bin_count, "quant_range": rng}


def bin_edges(lo: float, hi: float, bin_width=None, bin_count=None) -> np.ndarray:
    """Bin edges of the range ``[lo, hi]`` (float64), by the rules of the module docstring.

    With ``bin_count`` these are ``numpy.histogram_bin_edges(values, bin_count)``
    of values whose min/max are ``lo``/``hi`` (a flat range widened by 0.5 on
    each side), the last edge raised by 1.
    """
    if bin_count is not None:  # numpy.histogram_bin_edges' own steps, without its overhead
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, int(bin_count) + 1, endpoint=True, dtype=np.float64)
        edges[-1] += 1
        return edges
    w = DEFAULT_BIN_WIDTH if bin_width is None else float(bin_width)
    low = lo - (lo % w)
    if (hi - low) / w > 1 << 24:
        raise DataError(f"bin_width={w:g} cuts the intensities {lo:g}..{hi:g} into more than 2**24 bins")
    edges = np.arange(low, hi + 2 * w, w)
    if len(edges) == 1:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return edges


def _too_many_levels(lmax: int, lo: float, hi: float, bin_width) -> DataError:
    # levels = floor(hi/w) - floor(lo/w) + 1 <= (hi - lo)/w + 2: the smallest width that fits
    w = (hi - lo) / (MAX_LEVELS - 2)
    step = 10.0 ** (math.floor(math.log10(w)) - 2)
    w = math.ceil(w / step) * step  # rounded up to 3 significant digits
    given = DEFAULT_BIN_WIDTH if bin_width is None else bin_width
    return DataError(
        f"intensities {lo:g}..{hi:g} quantise to {lmax} grey levels with bin_width={given:g} "
        f"(more than MAX_LEVELS={MAX_LEVELS}): "
        f"set bin_count (e.g. bin_count=64; on the command line --handcrafted glcm:bin_count=64) "
        f"or bin_width >= {w:.3g}"
    )


def quantize_levels(
    img: np.ndarray,
    mask: Optional[np.ndarray],
    bin_width=None,
    bin_count=None,
    quant_range: QuantRange = "roi",
    crop: bool = False,
    pad: int = 0,
) -> Tuple[np.ndarray, int, int]:
    """Levels of one checked image: ``(levels, lowest level, highest level)`` in the ROI.

    Parameters
    ----------
    img : numpy.ndarray
        ``float64``, ``uint8`` or ``uint16`` ``(H, W)`` (as
        :func:`featurekit.handcrafted._input.check_images` gives).
    mask : numpy.ndarray or None
        Bool ``(H, W)``, not empty; levels outside are 0.
    bin_width, bin_count, quant_range
        Validated by :func:`check_quant`.
    crop : bool
        Quantise only the bounding box of the mask (the pixels that can form a
        pair inside the ROI); the whole image when there is no mask.
    pad : int
        A border of ``pad`` zeros around the levels (the texture families'
        neighbour lookups stay in the array).

    Returns
    -------
    levels : numpy.ndarray
        ``uint8`` when the binning has fewer than 255 bins, else ``uint16``;
        ``(H, W)`` or the bounding box, plus the border.
    lmin, lmax : int
        Lowest and highest level inside the ROI (``lmax`` is :math:`N_g`).
    """
    from featurekit.handcrafted._kernels import digitize_masked, masked_range

    fixed = not isinstance(quant_range, str)
    box_mask = mask
    x = img
    if mask is not None and crop:
        r0, r1, c0, c1 = mask_box(mask)
        x, box_mask = img[r0:r1, c0:c1], mask[r0:r1, c0:c1]
    if x.dtype.itemsize == 8 and x.dtype.kind in "ui":  # 64-bit integers are binned as float64 values
        x = x.astype(np.float64)
    rlo, rhi, integral = masked_range(x, box_mask, x.dtype.kind in "ui")
    if fixed:
        lo, hi = (float(v) for v in quant_range)
        rlo, rhi = min(max(rlo, lo), hi), min(max(rhi, lo), hi)  # the ROI's range after clipping
    elif quant_range == "image":
        lo, hi = float(img.min()), float(img.max())
    else:
        lo, hi = rlo, rhi
    edges = bin_edges(lo, hi, bin_width, bin_count)
    lmin, lmax = bisect.bisect_right(edges, rlo), bisect.bisect_right(edges, rhi)  # = digitize
    if lmax > MAX_LEVELS:
        raise _too_many_levels(lmax, lo, rhi, bin_width)  # bin_count <= MAX_LEVELS
    dtype = np.uint8 if len(edges) < 255 else np.uint16  # every level is <= len(edges)
    levels = np.zeros((x.shape[0] + 2 * pad, x.shape[1] + 2 * pad), dtype=dtype)
    # whole-number pixels (8/16-bit, also as float64) whose range is no larger than the box: a
    # table of their bins (clipping to a range of whole numbers keeps them whole); below 2**52 in
    # magnitude, so that every value of the range is exact in float64 and in int64
    exact = integral and rlo.is_integer() and rhi.is_integer() and max(-rlo, rhi) < 2.0**52
    table = int(rhi - rlo) + 1 if exact else 0
    if 0 < table <= max(1024, x.size):
        digitize_masked(x, box_mask, edges, rlo, rhi, fixed, levels, pad, table)
    else:
        digitize_masked(x, box_mask, edges, lo, hi, fixed, levels, pad)
    return levels, lmin, lmax
