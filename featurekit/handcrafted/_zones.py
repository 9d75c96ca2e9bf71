r"""Steps shared by the run, zone, dependence and neighbourhood families.

:mod:`~featurekit.handcrafted.glrlm`, :mod:`~featurekit.handcrafted.glszm`,
:mod:`~featurekit.handcrafted.gldm` and :mod:`~featurekit.handcrafted.ngtdm`
follow pyradiomics' (v3) definitions in 2-D. They share:

* **quantisation** of each image's mask bounding box to grey levels ``1..N``
  (0 outside the mask) by pyradiomics' rule, the one GLCM uses
  (:func:`~featurekit.handcrafted.glcm_quantize.quantize_levels`), padded
  with zeros so that every neighbour lookup and every run stays in the array;
* **neighbourhoods** (GLDM, NGTDM): the pixels at Chebyshev distance ``d``
  for each ``d`` in ``distances`` (8 pixels at ``d = 1``), both directions,
  as pyradiomics' ``distances`` setting;
* **the matrix features** of the GLRLM, GLSZM and GLDM, which have one form:
  a count matrix :math:`P(i, j)` of grey level :math:`i` against a size
  :math:`j` (run length, zone size, dependence count), :math:`N_z = \sum P`
  (runs, zones, pixels) and :math:`N_p = \sum_j j \sum_i P(i, j)` (pixels).
  :func:`matrix_features` computes the 16 formulas below for a whole batch
  from the sparse entries ``(unit, i, j, count)`` -- a unit is one image, or
  one (image, angle) of the GLRLM -- with ``bincount`` (no dense matrix):

  ================  ==========================================================
  key               value (:math:`p_g(i) = \sum_j P`, :math:`p_s(j) = \sum_i P`)
  ================  ==========================================================
  ``SE``            :math:`\sum P / j^2 / N_z` (short run / small area ...)
  ``LE``            :math:`\sum P j^2 / N_z`
  ``GLN``           :math:`\sum_i p_g^2 / N_z`;  ``GLNN``: :math:`/ N_z^2`
  ``SN``            :math:`\sum_j p_s^2 / N_z`;  ``SNN``: :math:`/ N_z^2`
  ``PCT``           :math:`N_z / N_p`
  ``GLV``, ``SV``   variance of :math:`i` (of :math:`j`) under :math:`P / N_z`
  ``ENT``           :math:`-\sum p \log_2(p + \epsilon)`, :math:`p = P / N_z`,
                    :math:`\epsilon` = ``numpy.spacing(1)`` (pyradiomics)
  ``LGE``, ``HGE``  :math:`\sum P / i^2 / N_z`, :math:`\sum P i^2 / N_z`
  ``SLGE`` ...      :math:`\sum P / (i^2 j^2) / N_z`, ``SHGE`` :math:`i^2/j^2`,
                    ``LLGE`` :math:`j^2/i^2`, ``LHGE`` :math:`i^2 j^2`
  ================  ==========================================================

Grey levels absent from the ROI and sizes that never occur add nothing to
these sums, so they equal pyradiomics' values computed after it deletes the
empty rows and columns.

Parameters of the four families' functions and transformers (pyradiomics'
names in brackets): ``bin_width`` (``binWidth``, default 25 when ``bin_count``
is not given), ``bin_count`` (``binCount``), ``quant_range`` (``'roi'``,
``'image'`` or ``(lo, hi)``, :mod:`featurekit.handcrafted.glcm_quantize`),
``features`` (``'all'`` or a list of the family's names), ``n_jobs``
(joblib workers over images), ``empty_mask`` (``'error'`` or ``'whole'``) and
``device`` (accepted for a uniform interface: these families compute with
NumPy on the CPU); the transformers add ``max_side`` (default 2048: larger
images are downsized first, with a warning, as GLCM, since the counting holds
several integer copies of the mask's bounding box). Integer gray images are
quantised as they are, without a float64 copy (the same levels). The
transformers' output is ``float32``, columns ``<family>_<feature>``
(:mod:`featurekit.handcrafted._base`).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from featurekit.errors import DataError
from featurekit.handcrafted._base import Family, FamilyTransformer
from featurekit.handcrafted._params import check_features, prefixed
from featurekit.handcrafted.glcm_quantize import check_binning, quantize_levels

__all__ = [
    "MATRIX_KEYS",
    "check_distances",
    "neighbour_offsets",
    "neighbour_steps",
    "quantized_rois",
    "aggregate",
    "aggregate_keys",
    "dense_entries",
    "matrix_features",
    "texture_family",
    "texture_params_doc",
]

MATRIX_KEYS = ("SE", "LE", "GLN", "GLNN", "SN", "SNN", "PCT", "GLV", "SV", "ENT",
               "LGE", "HGE", "SLGE", "SHGE", "LLGE", "LHGE")
#: Largest dense (unit, i, j) table aggregated with one bincount; larger or sparse ones are sorted.
_DENSE = 1 << 22
_EPS = np.spacing(1)
#: Pixels of the images of one chunk: a chunk's temporaries (runs, labels, codes) are a few
#: integers per pixel.
_PIXELS = 1 << 22


def check_distances(distances) -> Tuple[int, ...]:
    """Neighbourhood distances as distinct positive ints (Chebyshev), raising :class:`DataError`."""
    try:
        values = [float(d) for d in distances]
    except TypeError:
        raise DataError(f"distances must be a sequence of positive integers, got {distances!r}") from None
    if not values or not all(math.isfinite(d) and d >= 1 and d.is_integer() for d in values):
        raise DataError(f"distances must be positive integers (pixels, Chebyshev distance), got {distances!r}")
    if len(set(values)) != len(values):
        raise DataError(f"distances repeat: {distances!r}")
    return tuple(sorted(int(d) for d in values))


def neighbour_offsets(distances: Sequence[int]) -> List[Tuple[int, int]]:
    """``(dr, dc)`` of every pixel at Chebyshev distance ``d`` for ``d`` in ``distances`` (both directions)."""
    out = []
    for d in distances:
        for dr in range(-d, d + 1):
            for dc in range(-d, d + 1):
                if max(abs(dr), abs(dc)) == d:
                    out.append((dr, dc))
    return out


def neighbour_steps(offsets: np.ndarray, width: int) -> np.ndarray:
    """Flat offsets (int64) of the ``(dr, dc)`` rows of ``offsets`` (:func:`neighbour_offsets` as an
    array) in a C-contiguous array ``width`` wide."""
    return offsets[:, 0] * width + offsets[:, 1]


def quantized_rois(images, masks, bin_width, bin_count, quant_range, pad: int,
                   first: int = 0) -> Tuple[List[np.ndarray], np.ndarray]:
    """Levels of each mask's bounding box, ``1..N_g`` inside the mask, 0 outside and in a
    border of ``pad`` zeros; and ``N_g`` per image (errors name the image)."""
    levels, top = [], []
    for k, (img, m) in enumerate(zip(images, masks)):
        try:
            lv, _, lmax = quantize_levels(img, m, bin_width, bin_count, quant_range, crop=True, pad=pad)
        except DataError as exc:
            raise DataError(f"image {first + k}: {exc}") from None
        levels.append(lv)
        top.append(lmax)
    return levels, np.asarray(top, dtype=np.int64)


def aggregate(code: np.ndarray, j: np.ndarray, G1: int, n: int,
              weights: Optional[np.ndarray] = None) -> Tuple[np.ndarray, ...]:
    """Distinct entries ``(unit, i, j)`` with their summed counts (``weights``, else 1 each).

    ``code`` is ``unit * G1 + i`` (``i < G1``, ``unit < n``); entries of level
    ``i = 0`` (outside the mask) are dropped. Returns ``(unit, i, j, count)``:
    ints, ints, ints, float64.
    """
    J1 = int(j.max(initial=0)) + 1
    key = np.multiply(code, J1, dtype=np.int64)
    key += j
    return aggregate_keys(key, n, G1, J1, weights)


def aggregate_keys(key: np.ndarray, n: int, G1: int, J1: int,
                   weights: Optional[np.ndarray] = None) -> Tuple[np.ndarray, ...]:
    """:func:`aggregate` of entries given as ``key = (unit * G1 + i) * J1 + j`` (int64, ``j < J1``)."""
    if n * G1 * J1 <= min(_DENSE, max(1 << 16, 4 * key.size)):  # a table not much larger than the entries
        c = np.bincount(key, weights, minlength=n * G1 * J1).reshape(n, G1, J1)
        return dense_entries(c)
    key, inv = np.unique(key, return_inverse=True)
    c = np.bincount(inv.ravel(), weights, minlength=len(key)).astype(np.float64)
    uj, jj = np.divmod(key, J1)
    uu, ii = np.divmod(uj, G1)
    keep = ii != 0
    return uu[keep], ii[keep], jj[keep], c[keep]


def dense_entries(counts: np.ndarray) -> Tuple[np.ndarray, ...]:
    """The non-zero entries ``(unit, i, j, count)`` of ``(n, G1, J1)`` counts, level 0 dropped."""
    counts[:, 0, :] = 0
    flat = counts.reshape(-1)
    nz = np.flatnonzero(flat != 0)  # a bool array's non-zeros are found several times faster
    uj, j = np.divmod(nz, counts.shape[2])
    u, i = np.divmod(uj, counts.shape[1])
    return u, i, j, flat[nz].astype(np.float64)


def _sum_sq_groups(unit: np.ndarray, key: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """Per unit, the sum over groups ``key`` of (sum of ``c`` in the group) squared."""
    span = int(key.max(initial=0)) + 1
    code = unit * span + key
    if n * span <= min(_DENSE, max(1 << 16, 4 * code.size)):
        s = np.bincount(code, c, minlength=n * span).reshape(n, span)
        return (s * s).sum(axis=1)
    code, inv = np.unique(code, return_inverse=True)
    s = np.bincount(inv.ravel(), c, minlength=len(code))
    return np.bincount(code // span, s * s, minlength=n)


def matrix_features(unit: np.ndarray, i: np.ndarray, j: np.ndarray, c: np.ndarray, n: int,
                    keys: Sequence[str]) -> np.ndarray:
    """``(n, len(keys))`` features (module docstring) of the distinct entries ``(unit, i, j, c)``.

    A unit without entries gets NaN (the caller decides what that means). The
    sums per unit are taken together: every weighted sum the keys need in one
    segment reduction over the entries (sorted by unit, as :func:`aggregate`
    and :func:`dense_entries` return them), then the centred ones (variances,
    entropy) in a second.
    """
    if len(unit) > 1 and np.any(unit[1:] < unit[:-1]):  # each unit's entries in one segment
        order = np.argsort(unit, kind="stable")
        unit, i, j, c = unit[order], i[order], j[order], c[order]
    bounds = np.searchsorted(unit, np.arange(n + 1))
    some = bounds[1:] > bounds[:-1]
    starts = bounds[:-1][some]

    def totals(rows) -> np.ndarray:
        """Per unit, the sum of each row over the unit's entries: ``(len(rows), n)``."""
        out = np.zeros((len(rows), n))
        if len(starts) and rows:
            out[:, some] = np.add.reduceat(np.stack(rows), starts, axis=1)
        return out

    fi, fj = i.astype(np.float64), j.astype(np.float64)
    i2, j2 = fi * fi, fj * fj
    weights = {"SE": lambda: c / j2, "LE": lambda: c * j2, "PCT": lambda: c * fj, "GLV": lambda: c * fi,
               "SV": lambda: c * fj, "LGE": lambda: c / i2, "HGE": lambda: c * i2, "SLGE": lambda: c / (i2 * j2),
               "SHGE": lambda: c * i2 / j2, "LLGE": lambda: c * j2 / i2, "LHGE": lambda: c * i2 * j2}
    with np.errstate(divide="ignore", invalid="ignore"):
        linear = [k for k in dict.fromkeys(keys) if k in weights]
        first = totals([c] + [weights[k]() for k in linear])
        Nz, tot = first[0], dict(zip(linear, first[1:]))
        centred = [k for k in dict.fromkeys(keys) if k in ("GLV", "SV", "ENT")]
        rows = []
        for key in centred:
            if key == "ENT":
                p = c / Nz[unit]
                rows.append(p * np.log2(p + _EPS))
            else:
                x = fi if key == "GLV" else fj
                d = x - (tot[key] / Nz)[unit]
                rows.append(c * d * d)
        second = dict(zip(centred, totals(rows)))
        squares = {}  # the non-uniformities and their normalised forms share one sum of squares
        for key in keys:
            if key in ("GLN", "GLNN", "SN", "SNN") and key[0] not in squares:
                squares[key[0]] = _sum_sq_groups(unit, i if key[0] == "G" else j, c, n)
        out: Dict[str, np.ndarray] = {}
        for key in keys:
            if key in ("GLN", "SN"):
                v = squares[key[0]] / Nz
            elif key in ("GLNN", "SNN"):
                v = squares[key[0]] / (Nz * Nz)
            elif key == "PCT":
                v = Nz / tot[key]
            elif key in ("GLV", "SV"):
                v = second[key] / Nz
            elif key == "ENT":
                v = -second[key]
                v[Nz == 0] = np.nan
            elif key in weights:
                v = tot[key] / Nz
            else:  # pragma: no cover - keys come from the family tables
                raise KeyError(key)
            out[key] = v
    return np.stack([out[k] for k in keys], axis=1) if keys else np.empty((n, 0))


def _chunk_size(images) -> int:
    """Images per chunk: a chunk's arrays stay bounded (:data:`_PIXELS`), at most 64 images."""
    return max(1, min(64, _PIXELS // max(img.size for img in images)))


def texture_family(family: str, table: Sequence[str], chunk: Callable,
                   own: Optional[Dict[str, Callable]] = None) -> Family:
    """The :class:`~featurekit.handcrafted._base.Family` of one of the four families.

    Its check validates the shared parameters of the module docstring and the
    family's ``own`` ones (name -> check returning the validated value); the
    chunk function takes them all by name, ``features`` as a tuple of names of
    ``table``.
    """
    own = own or {}

    def check(bin_width=None, bin_count=None, quant_range="roi", features="all", **params) -> dict:
        args = check_binning(bin_width, bin_count, quant_range)
        args["features"] = check_features(features, table, family)
        args.update({name: own[name](value) for name, value in params.items()})
        return args

    return Family(check, lambda p: prefixed(family, p["features"]), chunk, chunk_size=_chunk_size)


def texture_params_doc(table: str, own: str = "") -> str:
    """numpydoc entries of a family's parameters for :func:`~featurekit.handcrafted._base.batch_function`:
    its ``own`` entries, then the shared ones (``features`` from the data ``table``)."""
    return own + f"""\
bin_width, bin_count, quant_range, features
    As for every family of :mod:`featurekit.handcrafted._zones` (pyradiomics'
    ``binWidth`` / ``binCount``); ``features`` from :data:`{table}`."""


class _TextureTransformer(FamilyTransformer):
    """Transformer of a family without parameters of its own: the shared ones of the module docstring.

    A family with parameters of its own has an ``__init__`` that stores them
    and passes the shared ones on (scikit-learn reads the parameters from ``__init__``).
    """

    def __init__(self, bin_width=None, bin_count=None, quant_range="roi", features="all", device="cpu",
                 n_jobs=None, empty_mask="error", max_side=2048):
        self.bin_width = bin_width
        self.bin_count = bin_count
        self.quant_range = quant_range
        self.features = features
        super().__init__(device=device, n_jobs=n_jobs, empty_mask=empty_mask, max_side=max_side)
