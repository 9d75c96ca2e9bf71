r"""Gabor filter-bank texture features.

(Over 400 lines because one family is one concept: its definition with the
formulas, the bank, the statistics and their exact merging over tiles, the
public functions and the transformer; the tiled FFT engine is
:mod:`featurekit.handcrafted._tiled_fft`.)

A Gabor filter is a Gaussian envelope modulated by a complex plane wave
(Daugman 1985); a bank of them at several frequencies and orientations, with
first-order statistics of each response, is the classic texture descriptor of
Jain & Farrokhnia (1991) and Manjunath & Ma (1996).

Kernel (identical to :func:`skimage.filters.gabor_kernel` with
``sigma_x = sigma_y = sigma``)

.. math::

    g(y, x) = \frac{1}{2\pi\sigma^2}
              \exp\!\Big(-\frac{x^2 + y^2}{2\sigma^2}\Big)
              \exp\!\big(i\,(2\pi f\,(x\cos\theta + y\sin\theta) + \varphi)\big),

on the grid :math:`|x| \le x_0`, :math:`|y| \le y_0` with
:math:`x_0 = y_0 = \lceil \max(|n\sigma\cos\theta|, |n\sigma\sin\theta|, 1)\rceil`
(``n = n_stds``). ``x`` runs along columns, ``y`` along rows, so
:math:`\theta = 0` is a wave along the columns (vertical stripes respond).
When ``sigma`` is not given it follows from the half-magnitude bandwidth
``b`` in octaves: :math:`\sigma = \frac{1}{\pi f}\sqrt{\ln 2 / 2}\,
\frac{2^b + 1}{2^b - 1}`.

Response: the true 2-D convolution of the float image with ``g`` (as
``scipy.ndimage.convolve``), the image extended by ``mode='reflect'``
(``d c b a | a b c d | d c b a``: scipy's half-sample symmetric mode, the
default of :func:`skimage.filters.gabor`). Features are statistics of the
magnitude :math:`|I * g|` (or its real / imaginary part) over the image, or
over the mask pixels when a mask is given (the filter still sees the pixels
around the mask).

Differences from :func:`skimage.filters.gabor`: the image is always converted
to float first (skimage convolves integer images in their integer dtype and
truncates the responses), and only isotropic envelopes are offered (one
``sigma``), which makes every kernel separable. For images smaller than about
half the kernel (e.g. 3 x 7 pixels against the 35 x 35 kernel of
``f = 0.1``) ``scipy.ndimage``'s N-D reflect extension departs from its own
1-D rule; this module always uses the 1-D rule (``numpy.pad(...,
'symmetric')`` repeated as often as needed), so it equals skimage on every
image at least that large.

Computation (:mod:`featurekit.handcrafted._tiled_fft`): one FFT of the
reflect-padded, mean-centred image per frequency
(padding = that frequency's largest kernel half-size), then per filter a
product with the kernel's spectrum (the outer product of two 1-D spectra, as
the kernel is separable) and an inverse FFT; the image mean is added back
exactly as ``mean * sum(g)`` in the DC bin.

Large images: an image larger than :data:`TILE` (1024) pixels on a side is
filtered in tiles of at most 1024 x 1024 pixels, each read with a margin of
the largest kernel half-size (the image reflect-extended at its borders), so
that every response on a tile equals the whole-image response; each tile's
responses are reduced to their moments (count, mean, central sums of powers
2-4) and the tiles' moments are merged exactly (Chan, Golub & LeVeque 1983;
Pebay 2008). The statistics equal the whole-image ones up to float rounding,
and memory is that of one tile (about 0.2 GB for the default bank) plus the
image, whatever its size: a 8000 x 8000 image needs no ``max_side``. On the CPU ``scipy.fft`` runs it
single-threaded per process (robust on a busy machine, where multi-threaded
FFTs collapse; use ``n_jobs`` to spread images over cores); on a CUDA device
``torch.fft`` does.
``dtype='float32'`` (default) matches skimage to about 1e-6 relative;
``'float64'`` to about 1e-12 at ~2x the CPU time.

References
----------
J. G. Daugman, "Uncertainty relation for resolution in space, spatial
frequency, and orientation optimized by two-dimensional visual cortical
filters", J. Opt. Soc. Am. A 2(7):1160-1169, 1985.

A. K. Jain and F. Farrokhnia, "Unsupervised texture segmentation using Gabor
filters", Pattern Recognition 24(12):1167-1186, 1991.

B. S. Manjunath and W. Y. Ma, "Texture features for browsing and retrieval of
image data", IEEE TPAMI 18(8):837-842, 1996.

T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for computing the
sample variance: analysis and recommendations", The American Statistician
37(3):242-247, 1983.

P. Pebay, "Formulas for robust, one-pass parallel computation of covariances
and arbitrary-order statistical moments", Sandia Report SAND2008-6212, 2008.
"""

from __future__ import annotations

import math
from functools import partial
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from featurekit.errors import DataError
from featurekit.handcrafted._base import HandcraftedTransformer
from featurekit.handcrafted._input import check_images, check_shared, load_images, resolve_device, run_chunks
from featurekit.handcrafted._tiled_fft import Plan, plan, responses, tiles

__all__ = [
    "DEFAULT_FREQUENCIES",
    "GABOR_STATISTICS",
    "GABOR_RESPONSES",
    "gabor_bank",
    "gabor_kernel",
    "gabor_response",
    "gabor_features",
    "gabor_feature_names",
    "GaborFeatures",
]

#: Frequencies (cycles/pixel) of the published bank.
DEFAULT_FREQUENCIES = (0.5, 0.25, 0.125, 0.1)
#: Statistics a response can be summarised by.
GABOR_STATISTICS = ("mean", "var", "std", "energy", "skew", "kurtosis")
#: Which part of the complex response is summarised.
GABOR_RESPONSES = ("magnitude", "real", "imag")
_DTYPES = ("float32", "float64")


def _sigma_prefactor(bandwidth: float) -> float:
    b = float(bandwidth)
    return 1.0 / np.pi * math.sqrt(math.log(2) / 2.0) * (2.0**b + 1) / (2.0**b - 1)


def _thetas(orientations) -> List[float]:
    """Orientations in radians: ``int n`` -> ``k*pi/n``; a sequence is in degrees."""
    if isinstance(orientations, (int, np.integer)) and not isinstance(orientations, bool):
        n = int(orientations)
        if n < 1:
            raise DataError(f"orientations must be >= 1, got {n}")
        return [k * math.pi / n for k in range(n)]
    try:
        degs = [float(d) for d in orientations]
    except TypeError:
        raise DataError(
            f"orientations must be an int (number of angles k*180/n) or a sequence of degrees, "
            f"got {orientations!r}"
        ) from None
    if not degs or not all(math.isfinite(d) for d in degs):
        raise DataError(f"orientations must be a non-empty list of finite degrees, got {orientations!r}")
    if len(set(degs)) != len(degs):
        raise DataError(f"orientations repeat: {orientations!r}")
    return [math.radians(d) for d in degs]


def gabor_bank(
    frequencies: Sequence[float] = DEFAULT_FREQUENCIES,
    orientations: Union[int, Sequence[float]] = 8,
    bandwidth: float = 1.0,
    sigma: Optional[float] = None,
    n_stds: float = 3.0,
) -> List[Tuple[float, float, float, int]]:
    """The filters of a bank as ``(frequency, theta_radians, sigma, half_size)``.

    Frequency-major order (all orientations of the first frequency first).
    ``half_size`` is :math:`x_0 = y_0` of the module docstring.

    Parameters
    ----------
    frequencies : sequence of float
        Cycles per pixel, each in (0, 0.5].
    orientations : int or sequence of float
        ``n`` -> angles ``k * 180 / n`` degrees, ``k = 0..n-1``; or explicit degrees.
    bandwidth : float
        Half-magnitude bandwidth in octaves (> 0), used when ``sigma`` is None.
    sigma : float, optional
        Envelope standard deviation in pixels, overriding ``bandwidth``.
    n_stds : float
        Kernel half-size in standard deviations.
    """
    try:
        freqs = [float(f) for f in frequencies]
    except TypeError:
        raise DataError(f"frequencies must be a sequence of floats, got {frequencies!r}") from None
    if not freqs or not all(0 < f <= 0.5 for f in freqs):
        raise DataError(f"frequencies must lie in (0, 0.5] cycles/pixel, got {frequencies!r}")
    if len(set(freqs)) != len(freqs):
        raise DataError(f"frequencies repeat: {frequencies!r}")
    return _bank(freqs, _thetas(orientations), bandwidth, sigma, n_stds)


def _bank(freqs, thetas, bandwidth, sigma, n_stds):
    if sigma is None:
        if not (math.isfinite(float(bandwidth)) and float(bandwidth) > 0):
            raise DataError(f"bandwidth must be > 0 octaves, got {bandwidth!r}")
    elif not (math.isfinite(float(sigma)) and float(sigma) > 0):
        raise DataError(f"sigma must be > 0 pixels, got {sigma!r}")
    if not (math.isfinite(float(n_stds)) and float(n_stds) > 0):
        raise DataError(f"n_stds must be > 0, got {n_stds!r}")
    bank = []
    for f in freqs:
        s = float(sigma) if sigma is not None else _sigma_prefactor(bandwidth) / f
        for t in thetas:
            ct, st = math.cos(t), math.sin(t)
            half = math.ceil(max(abs(n_stds * s * ct), abs(n_stds * s * st), 1))
            bank.append((f, t, s, int(half)))
    return bank


def gabor_kernel(
    frequency: float,
    theta: float = 0.0,
    bandwidth: float = 1.0,
    sigma: Optional[float] = None,
    n_stds: float = 3.0,
    offset: float = 0.0,
) -> np.ndarray:
    """Complex Gabor kernel, equal to ``skimage.filters.gabor_kernel(frequency, theta,
    bandwidth, sigma, sigma, n_stds, offset)``.

    Parameters
    ----------
    frequency : float
        Cycles per pixel.
    theta : float
        Orientation in radians (0: the wave runs along the columns).
    bandwidth, sigma, n_stds : see :func:`gabor_bank`.
    offset : float
        Phase offset in radians.

    Returns
    -------
    numpy.ndarray
        ``complex128`` ``(2 y0 + 1, 2 x0 + 1)``.
    """
    ((f, t, s, half),) = _bank([float(frequency)], [float(theta)], bandwidth, sigma, n_stds)
    ct, st = math.cos(t), math.sin(t)
    y, x = np.meshgrid(np.arange(-half, half + 1), np.arange(-half, half + 1), indexing="ij", sparse=True)
    rotx = x * ct + y * st
    roty = -x * st + y * ct
    g = np.exp(-0.5 * (rotx**2 / s**2 + roty**2 / s**2) + 1j * (2 * np.pi * f * rotx + offset))
    return g / (2 * np.pi * s * s)


def gabor_response(
    image: np.ndarray,
    frequency: float,
    theta: float = 0.0,
    bandwidth: float = 1.0,
    sigma: Optional[float] = None,
    n_stds: float = 3.0,
    offset: float = 0.0,
    dtype: str = "float64",
    device: str = "cpu",
) -> np.ndarray:
    """Complex response of one Gabor filter; ``real``/``imag`` equal
    :func:`skimage.filters.gabor` applied to the float image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` gray or ``(H, W, 3)`` RGB (BT.709 luma), any numeric dtype.
    frequency, theta, bandwidth, sigma, n_stds, offset : see :func:`gabor_kernel`.
    dtype : {'float64', 'float32'}
    device : {'cpu', 'cuda', 'auto'}

    Returns
    -------
    numpy.ndarray
        ``complex`` ``(H, W)``.
    """
    (img,) = check_images([image])
    gabor_bank([frequency], 1, bandwidth, sigma, n_stds)  # validates
    bank = _bank([float(frequency)], [float(theta)], bandwidth, sigma, n_stds)
    dev = resolve_device(device)
    if dtype not in _DTYPES:
        raise DataError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    p = Plan(bank, offset, img.shape, dev, dtype)
    ((_, r),) = list(responses(img, p, dev, dtype, float(img.mean())))
    r = r if isinstance(r, np.ndarray) else r.cpu().numpy()
    return r.astype(np.complex128)


#: Core side of the tiles a large image is filtered in (a 1024 x 1024 core plus
#: the kernel margin: about 200 MB of FFT buffers for the default bank).
TILE = 1024


def _moments(v: np.ndarray, higher: bool) -> np.ndarray:
    """``[n, mean, M2, M3, M4]`` (float64) of the values ``v``, ``Mk = sum (v - mean)^k``.

    Two passes in ``v``'s dtype with numpy's pairwise summation (relative error
    a few ``eps``); M3, M4 only when ``higher``.
    """
    n = v.size
    mean = v.sum() / n
    d = v - mean
    d2 = np.square(d)
    out = [n, float(mean), float(d2.sum()), 0.0, 0.0]
    if higher:
        out[3] = float((d2 * d).sum())
        out[4] = float(np.square(d2).sum())
    return np.array(out, dtype=np.float64)


def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Moments ``(..., 5)`` of the union of two disjoint sets of values (Chan et al.
    1983; Pebay 2008, eqs. 2.1-2.3), exact in exact arithmetic."""
    na, nb = a[..., 0], b[..., 0]
    n = na + nb
    safe = np.where(n > 0, n, 1.0)
    delta = b[..., 1] - a[..., 1]
    ab = na * nb
    out = np.empty_like(a)
    out[..., 0] = n
    out[..., 1] = a[..., 1] + delta * nb / safe
    out[..., 2] = a[..., 2] + b[..., 2] + delta**2 * ab / safe
    out[..., 3] = (a[..., 3] + b[..., 3] + delta**3 * ab * (na - nb) / safe**2
                   + 3 * delta * (na * b[..., 2] - nb * a[..., 2]) / safe)
    out[..., 4] = (a[..., 4] + b[..., 4] + delta**4 * ab * (na * na - ab + nb * nb) / safe**3
                   + 6 * delta**2 * (na * na * b[..., 2] + nb * nb * a[..., 2]) / safe**2
                   + 4 * delta * (na * b[..., 3] - nb * a[..., 3]) / safe)
    return out


def _statistics(mom: np.ndarray, statistics: Sequence[str], floor) -> np.ndarray:
    """``(n_filters, n_statistics)`` from moments ``(n_filters, 5)``. A response whose
    standard deviation is at most ``floor`` (per filter: rounding noise) is
    constant: skew = kurtosis = 0."""
    n = mom[:, 0]
    mean = mom[:, 1]
    var = mom[:, 2] / n
    flat = var <= np.square(floor)
    safe = np.where(flat, 1.0, var)
    cols = []
    for s in statistics:
        if s == "mean":
            cols.append(mean)
        elif s == "var":
            cols.append(var)
        elif s == "std":
            cols.append(np.sqrt(var))
        elif s == "energy":
            cols.append(var + mean * mean)
        elif s == "skew":
            cols.append(np.where(flat, 0.0, mom[:, 3] / n / safe**1.5))
        elif s == "kurtosis":
            cols.append(np.where(flat, 0.0, mom[:, 4] / n / safe**2 - 3.0))
    return np.stack(cols, axis=1)


def _gabor_chunk(images, masks, *, bank, offset, statistics, response, dtype, device, backend=None,
                 tile=None, first=0) -> np.ndarray:
    """Features of a list of images, each filtered tile by tile.

    An image is cut into tiles of at most ``tile`` x ``tile`` pixels (default
    :data:`TILE`); each tile is filtered with its reflect-extended margin (so
    its responses equal the whole image's there), summarised by its moments,
    and the moments of the tiles are merged (:func:`_merge`). Memory is that
    of one tile, whatever the image size; an image of at most one tile is
    filtered whole. Tiles without mask pixels are skipped.
    """
    tile = TILE if tile is None else int(tile)
    eps = float(np.finfo(np.float32 if dtype == "float32" else np.float64).eps)
    on_cpu = device == "cpu"
    higher = "skew" in statistics or "kurtosis" in statistics
    out = np.empty((len(images), len(bank), len(statistics)), dtype=np.float64)
    for i, (img, mask) in enumerate(zip(images, masks)):
        mean = float(img.mean())
        mom = None
        for r0, r1 in tiles(img.shape[0], tile):
            for c0, c1 in tiles(img.shape[1], tile):
                sel = None if mask is None else np.flatnonzero(mask[r0:r1, c0:c1])
                if sel is not None and sel.size == 0:
                    continue
                tplan = plan(bank, offset, (r1 - r0, c1 - c0), device, dtype, backend)
                part = np.empty((len(bank), 5))
                for k, r in responses(img, tplan, device, dtype, mean, (r0, r1), (c0, c1)):
                    if on_cpu:
                        r = r if isinstance(r, np.ndarray) else r.numpy()
                        v = np.abs(r) if response == "magnitude" else (r.real if response == "real" else r.imag)
                    else:
                        v = r.abs() if response == "magnitude" else (r.real if response == "real" else r.imag)
                        v = v.cpu().numpy()
                    v = v.reshape(-1) if sel is None else v.reshape(-1)[sel]
                    part[k] = _moments(v, higher)
                mom = part if mom is None else _merge(mom, part)
        # rounding floor of a response: 100 eps * max|image| * sum|g|
        floor = 100 * eps * max(abs(float(img.min())), abs(float(img.max()))) * tplan.l1
        if mom is None:  # the input layer gives every masked image at least one mask pixel
            raise DataError(f"image {i}: its mask has no pixel")
        out[i] = _statistics(mom, statistics, floor)
    return out.reshape(len(images), -1)


def _check(frequencies, orientations, bandwidth, sigma, n_stds, offset, statistics, response, dtype) -> dict:
    """The family's parameters, validated: ``bank`` (see :func:`gabor_bank`), ``offset``,
    ``statistics``, ``response``, ``dtype``."""
    bank = gabor_bank(frequencies, orientations, bandwidth, sigma, n_stds)
    if isinstance(statistics, str):
        statistics = (statistics,)
    statistics = tuple(statistics)
    bad = [s for s in statistics if s not in GABOR_STATISTICS]
    if bad or not statistics or len(set(statistics)) != len(statistics):
        raise DataError(f"statistics must be distinct names from {GABOR_STATISTICS}, got {statistics!r}")
    if response not in GABOR_RESPONSES:
        raise DataError(f"response must be one of {GABOR_RESPONSES}, got {response!r}")
    if dtype not in _DTYPES:
        raise DataError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    try:
        offset = float(offset)
    except (TypeError, ValueError):
        offset = math.nan
    if not math.isfinite(offset):
        raise DataError(f"offset must be a finite number of radians, got {offset!r}")
    return {"bank": tuple(bank), "offset": offset, "statistics": statistics, "response": response, "dtype": dtype}


def _names(bank, statistics, response) -> List[str]:
    part = "" if response == "magnitude" else f"{response}_"
    return [f"gabor_f{f:g}_t{round(math.degrees(t), 6):g}_{part}{s}" for f, t, _, _ in bank for s in statistics]


def _gabor(images, masks, params: dict) -> np.ndarray:
    """Features of prepared images with validated parameters (family and shared)."""
    fn = partial(
        _gabor_chunk, bank=params["bank"], offset=params["offset"], statistics=params["statistics"],
        response=params["response"], dtype=params["dtype"], device=params["device"],
    )
    return run_chunks(fn, images, masks, params["n_jobs"], params["device"], chunk_size=8)


def gabor_feature_names(
    frequencies: Sequence[float] = DEFAULT_FREQUENCIES,
    orientations: Union[int, Sequence[float]] = 8,
    statistics: Sequence[str] = ("mean", "var"),
    response: str = "magnitude",
) -> List[str]:
    """Names ``gabor_f<freq>_t<degrees>_<stat>`` (``..._<response>_<stat>`` for
    ``response`` other than ``'magnitude'``), in output order: frequency, then
    orientation, then statistic."""
    p = _check(frequencies, orientations, 1.0, None, 3.0, 0.0, statistics, response, "float64")
    return _names(p["bank"], p["statistics"], p["response"])


def gabor_features(
    images,
    masks=None,
    *,
    frequencies: Sequence[float] = DEFAULT_FREQUENCIES,
    orientations: Union[int, Sequence[float]] = 8,
    bandwidth: float = 1.0,
    sigma: Optional[float] = None,
    n_stds: float = 3.0,
    offset: float = 0.0,
    statistics: Sequence[str] = ("mean", "var"),
    response: str = "magnitude",
    dtype: str = "float32",
    device: str = "cpu",
    n_jobs: Optional[int] = None,
    empty_mask: str = "error",
) -> np.ndarray:
    r"""Gabor filter-bank statistics of a batch of images.

    Each image is filtered by every kernel of the bank (module docstring);
    the chosen part of the response (``magnitude`` :math:`|r|`, ``real`` or
    ``imag``) is summarised over the image, or over its mask, by:

    * ``mean`` :math:`\mu = \frac{1}{N}\sum r`;
    * ``var`` :math:`\frac{1}{N}\sum (r - \mu)^2` (population variance, ddof=0);
    * ``std`` its square root; ``energy`` :math:`\frac{1}{N}\sum r^2`;
    * ``skew`` :math:`m_3 / m_2^{3/2}`, ``kurtosis`` :math:`m_4 / m_2^2 - 3`
      (central moments, Fisher's excess); both are defined as 0 for a constant
      response, i.e. a standard deviation within rounding noise
      (:math:`\le 100\,\epsilon\,\max|I|\sum|g|`, :math:`\epsilon` of
      ``dtype``), e.g. a constant image, or the imaginary part at
      ``f = 0.5, theta = 0`` which vanishes on the pixel grid.

    Defaults give the published bank: 8 orientations x 4 frequencies
    (0.5, 0.25, 0.125, 0.1 cycles/pixel), bandwidth 1 octave, magnitude mean
    and variance -> 64 features.

    Parameters
    ----------
    images : list of arrays, (N, H, W[, 3]) array or Dataset
        See :mod:`featurekit.handcrafted._input`.
    masks : list of (bool array or None), optional
        Statistics over the mask pixels only (a Dataset supplies its own).
    frequencies, orientations, bandwidth, sigma, n_stds : see :func:`gabor_bank`.
    offset : float
        Phase offset (radians); it does not change magnitudes.
    statistics : sequence of str
        From :data:`GABOR_STATISTICS`.
    response : {'magnitude', 'real', 'imag'}
    dtype : {'float32', 'float64'}
        Working precision of the FFTs (statistics accumulate in float64).
    device : {'cpu', 'cuda', 'auto'}, default 'cpu'
    n_jobs : int, optional
        joblib workers on the CPU (``None`` = 1, ``-1`` = all cores).
    empty_mask : {'error', 'whole'}

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(n_images, n_filters * n_statistics)``, columns named by
        :func:`gabor_feature_names`.
    """
    params = _check(frequencies, orientations, bandwidth, sigma, n_stds, offset, statistics, response, dtype)
    params.update(check_shared(device, n_jobs, empty_mask))
    imgs, msks = load_images(images, masks, empty_mask, keep_integers=True)
    return _gabor(imgs, msks, params)


class GaborFeatures(HandcraftedTransformer):
    """Gabor filter-bank features as a scikit-learn transformer.

    See :func:`gabor_features` for the definition. Output columns
    ``gabor_f<freq>_t<degrees>_<stat>``, e.g. ``gabor_f0.25_t45_mean``.

    Parameters
    ----------
    frequencies : sequence of float, default (0.5, 0.25, 0.125, 0.1)
    orientations : int or sequence of float (degrees), default 8
    bandwidth : float, default 1.0
        Octaves; ignored when ``sigma`` is set.
    sigma : float, optional
    n_stds : float, default 3.0
    offset : float, default 0.0
    statistics : sequence of str, default ('mean', 'var')
    response : {'magnitude', 'real', 'imag'}, default 'magnitude'
    dtype : {'float32', 'float64'}, default 'float32'
    device : {'cpu', 'cuda', 'auto'}, default 'cpu'
    n_jobs : int, optional
    empty_mask : {'error', 'whole'}, default 'error'
    max_side : int, optional
        Default None: every image is filtered at full resolution, tile by tile
        (exact, memory of one 1024 x 1024 tile); an int downsizes larger
        images first, with a warning (:mod:`featurekit.handcrafted._input`).

    Attributes
    ----------
    feature_names_out_ : ndarray of str
    n_features_out_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from featurekit.handcrafted import GaborFeatures
    >>> X = np.random.default_rng(0).random((2, 32, 32))
    >>> GaborFeatures().fit_transform(X).shape
    (2, 64)
    """

    _keep_integers = True

    def __init__(
        self,
        frequencies=DEFAULT_FREQUENCIES,
        orientations=8,
        bandwidth=1.0,
        sigma=None,
        n_stds=3.0,
        offset=0.0,
        statistics=("mean", "var"),
        response="magnitude",
        dtype="float32",
        device="cpu",
        n_jobs=None,
        empty_mask="error",
        max_side=None,
    ):
        self.frequencies = frequencies
        self.orientations = orientations
        self.bandwidth = bandwidth
        self.sigma = sigma
        self.n_stds = n_stds
        self.offset = offset
        self.statistics = statistics
        self.response = response
        self.dtype = dtype
        super().__init__(device=device, n_jobs=n_jobs, empty_mask=empty_mask, max_side=max_side)

    def _check_family(self) -> dict:
        return _check(self.frequencies, self.orientations, self.bandwidth, self.sigma, self.n_stds,
                      self.offset, self.statistics, self.response, self.dtype)

    def _names(self, params) -> List[str]:
        return _names(params["bank"], params["statistics"], params["response"])

    def _compute(self, images, masks, params) -> np.ndarray:
        return _gabor(images, masks, params)
