r"""Grey-level run length matrix (GLRLM) features, pyradiomics' 16 in 2-D.

A run is a maximal line of consecutive pixels inside the mask with the same
grey level, along one of four directions (0°, 45°, 90°, 135°); pixels outside
the mask end a run. :math:`P(i, j \mid \theta)` counts the runs of level
:math:`i` and length :math:`j` in direction :math:`\theta`.

Pipeline, vectorised over a batch:

1. **Quantisation** of the mask's bounding box to levels ``1..N_g`` (0
   outside), pyradiomics' rule (``bin_width`` default 25, or ``bin_count``;
   ``quant_range``), shared with GLCM: :mod:`featurekit.handcrafted._zones`.
2. **Runs**: the box, padded with zeros, is read as one flat array whose
   direction-``θ`` neighbours are a fixed stride apart (1, ``W``, ``W + 1``,
   ``W - 1`` for a padded width ``W``); the elements of each residue class of
   that stride, concatenated, list every line in direction ``θ`` separated
   by zeros. The runs of many (image, direction) layouts are then the
   constant non-zero segments of one array (one ``flatnonzero`` of its
   changes); layouts are taken in groups of at most :data:`_LAYOUT` elements,
   so that the group's temporaries stay in cache and in the process's heap
   (one array for a whole chunk reaches megabytes, which the allocator hands
   back to the system and faults in again on every call: ~25% slower).
3. **Features** per (image, direction) from the sparse counts
   (:func:`featurekit.handcrafted._zones.matrix_features`), then the
   **mean over the directions** that hold runs, as pyradiomics
   (``nanmean`` over angles). Like pyradiomics' C code, which zeroes its
   matrix, a direction in which no line crosses two mask pixels (e.g. 90° for
   a one-row mask) is left out; an image left without any direction (a
   one-pixel ROI) raises :class:`~featurekit.errors.DataError`.

Features (pyradiomics' names; :math:`N_r` runs, :math:`N_p` pixels):
ShortRunEmphasis, LongRunEmphasis, GrayLevelNonUniformity(Normalized),
RunLengthNonUniformity(Normalized), RunPercentage (:math:`N_r / N_p`),
GrayLevelVariance, RunVariance, RunEntropy, Low/HighGrayLevelRunEmphasis,
ShortRunLow/HighGrayLevelEmphasis, LongRunLow/HighGrayLevelEmphasis;
formulas in :mod:`featurekit.handcrafted._zones`. pyradiomics'
``weightingNorm`` (distance-weighted sum of the angles) is not offered.

featurekit follows pyradiomics and is tested against pyradiomics'
``RadiomicsGLRLM`` (equal to ~1e-12).

Notes
-----
IBSI (Zwanenburg et al., Radiology 2020) defines these 16 features with the
same formulas. On the IBSI 1 digital phantom -- each of its slices one 2-D
image, ``bin_width=1`` -- their means over the slices equal IBSI's "2D,
averaged" reference values to the three digits IBSI publishes
(``tests/test_ibsi_phantom.py``): the mean over the directions, then over the
slices, is IBSI's mean over (slice, direction) when every slice has runs in
every direction. Differs from IBSI only where the discretisation does
(``bin_width``'s bin edges, see :mod:`featurekit.handcrafted.glcm`).

References
----------
M. M. Galloway, "Texture analysis using gray level run lengths", Computer
Graphics and Image Processing 4(2):172-179, 1975.

pyradiomics documentation, "Gray Level Run Length Matrix (GLRLM) Features",
https://pyradiomics.readthedocs.io/en/latest/features.html
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from featurekit.errors import DataError
from featurekit.handcrafted._base import batch_function, transformer_doc
from featurekit.handcrafted._params import check_features, prefixed
from featurekit.handcrafted._zones import (
    _TextureTransformer,
    aggregate_keys,
    matrix_features,
    quantized_rois,
    texture_family,
    texture_params_doc,
)

__all__ = ["GLRLM_FEATURES", "GLRLM_ANGLES", "glrlm_feature_names", "glrlm_features", "GLRLMFeatures"]

#: pyradiomics' GLRLM feature names and their formula (keys of featurekit.handcrafted._zones).
_TABLE = {
    "ShortRunEmphasis": "SE",
    "LongRunEmphasis": "LE",
    "GrayLevelNonUniformity": "GLN",
    "GrayLevelNonUniformityNormalized": "GLNN",
    "RunLengthNonUniformity": "SN",
    "RunLengthNonUniformityNormalized": "SNN",
    "RunPercentage": "PCT",
    "GrayLevelVariance": "GLV",
    "RunVariance": "SV",
    "RunEntropy": "ENT",
    "LowGrayLevelRunEmphasis": "LGE",
    "HighGrayLevelRunEmphasis": "HGE",
    "ShortRunLowGrayLevelEmphasis": "SLGE",
    "ShortRunHighGrayLevelEmphasis": "SHGE",
    "LongRunLowGrayLevelEmphasis": "LLGE",
    "LongRunHighGrayLevelEmphasis": "LHGE",
}
GLRLM_FEATURES = tuple(_TABLE)
#: The run directions, degrees, with their (row, column) step (rows downwards, as GLCM).
GLRLM_ANGLES = {0: (0, 1), 45: (1, 1), 90: (1, 0), 135: (1, -1)}


def glrlm_feature_names(features="all") -> List[str]:
    """Output names ``glrlm_<feature>`` (pyradiomics' feature names)."""
    return prefixed("glrlm", check_features(features, GLRLM_FEATURES, "glrlm"))


#: Elements of the line layouts whose runs are found together: the group's temporaries (layout,
#: changes, run positions and keys, about ten bytes per element) stay within a core's cache and
#: are reused from group to group instead of being returned to the system and faulted in again.
_LAYOUT = 1 << 18


def _line_sizes(shape: Tuple[int, int]) -> List[Tuple[int, int]]:
    """Per direction of :data:`GLRLM_ANGLES`, ``(stride, row length)`` of the layout of
    :func:`_write_lines` for a padded box of ``shape`` (``stride`` rows)."""
    size, W = shape[0] * shape[1], shape[1]
    return [(1, size)] + [(s, size // s + 2) for s in (W + 1, W, W - 1)]


def _write_lines(lv: np.ndarray, d: int, out: np.ndarray) -> None:
    """Write the box's lines of direction ``d`` (index into :data:`GLRLM_ANGLES`) into ``out``,
    each line led by a zero.

    ``lv`` has a zero border, so a walk of stride ``s`` over its flat copy
    leaves a line only through a border zero; the residue classes of ``s``
    laid one after the other, each led by a zero, keep the lines apart.
    ``out`` starts and ends with a zero, so no run crosses into the next layout.
    """
    flat = lv.ravel()
    if d == 0:  # the rows, apart already (border column)
        out[:] = flat
        return
    s, width = _line_sizes(lv.shape)[d]
    m, rem = divmod(flat.size, s)
    seq = out.reshape(s, width)
    seq[:, 0] = 0
    seq[:, 1 : m + 1] = flat[: m * s].reshape(m, s).T
    seq[:rem, m + 1] = flat[m * s :]
    seq[rem:, m + 1] = 0


def _line_has_pair(lv: np.ndarray, d: int) -> bool:
    """Whether some line of direction ``d`` (index into :data:`GLRLM_ANGLES`) crosses two mask pixels."""
    r, c = np.nonzero(lv)
    line = (r, r - c + lv.shape[1], c, r + c)[d]
    return bool(np.bincount(line).max() >= 2)


def _groups(sizes: List[int]) -> List[Tuple[int, int]]:
    """Consecutive ranges of the layouts of ``sizes`` (elements) holding at most :data:`_LAYOUT`
    elements together (a larger layout alone)."""
    out, start, total = [], 0, 0
    for k, size in enumerate(sizes):
        if k > start and total + size > _LAYOUT:
            out.append((start, k))
            start, total = k, 0
        total += size
    out.append((start, len(sizes)))
    return out


def _run_entries(levels: List[np.ndarray], units: range, G1: int, J1: int) -> Tuple[np.ndarray, ...]:
    """The distinct ``(unit, level, length, count)`` of the runs of ``units`` (unit = image * 4 +
    direction), found in one array: the units' line layouts one after the other."""
    lines = [_line_sizes(levels[t // 4].shape)[t % 4] for t in units]
    starts = np.cumsum([0] + [s * w for s, w in lines])
    x = np.empty(int(starts[-1]), dtype=np.result_type(*levels))
    for k, t in enumerate(units):
        _write_lines(levels[t // 4], t % 4, x[starts[k] : starts[k + 1]])
    b = np.flatnonzero(x[1:] != x[:-1])
    b += 1  # segment starts but the first (x[0] is a border zero, as every unit's first value)
    length = np.empty_like(b)
    np.subtract(b[1:], b[:-1], out=length[:-1])
    length[-1] = x.size - b[-1]
    # a run is at most a box side long; longer segments are outside the mask (level 0, dropped)
    np.minimum(length, J1 - 1, out=length)
    key = length  # (unit * G1 + level) * J1 + length, built in place
    key += np.multiply(x[b], J1, dtype=np.int64)
    edges = np.searchsorted(b, starts)  # the segments of each unit
    for k in range(1, len(units)):
        key[edges[k] : edges[k + 1]] += k * G1 * J1
    u, i, j, c = aggregate_keys(key, len(units), G1, J1)
    return u + units.start, i, j, c


def _glrlm_chunk(images, masks, *, bin_width, bin_count, quant_range, features, first=0) -> np.ndarray:
    """Features ``(n, len(features))`` of a chunk of prepared images."""
    levels, top = quantized_rois(images, masks, bin_width, bin_count, quant_range, pad=1, first=first)
    n, G1 = len(levels), int(top.max()) + 1
    J1 = max(max(lv.shape) for lv in levels) + 1
    sizes = [s * w for lv in levels for s, w in _line_sizes(lv.shape)]  # unit = image * 4 + direction
    parts = [_run_entries(levels, range(a, b), G1, J1) for a, b in _groups(sizes)]
    u, i, j, c = (np.concatenate(v) for v in zip(*parts))
    F = matrix_features(u, i, j, c, 4 * n, [_TABLE[f] for f in features]).reshape(n, 4, -1)
    runs = np.bincount(u, c, minlength=4 * n).reshape(n, 4)
    long_run = np.bincount(u, c * (j >= 2), minlength=4 * n).reshape(n, 4) > 0
    valid = long_run.copy()
    for k, d in zip(*np.nonzero((runs > 0) & ~long_run)):  # only length-1 runs: pyradiomics' line rule
        valid[k, d] = _line_has_pair(levels[k], d)
    count = valid.sum(axis=1)
    if not count.all():
        k = int(np.flatnonzero(count == 0)[0])
        raise DataError(f"image {first + k}: no line at 0, 45, 90 or 135 degrees crosses two mask pixels "
                        "(e.g. a one-pixel ROI): run length features are undefined")
    return np.where(valid[:, :, None], F, 0.0).sum(axis=1) / count[:, None]


_FAMILY = texture_family("glrlm", GLRLM_FEATURES, _glrlm_chunk)


class GLRLMFeatures(_TextureTransformer):
    __doc__ = transformer_doc(
        "GLRLM features as a scikit-learn transformer (:func:`glrlm_features`).",
        "``glrlm_<feature>`` (e.g. ``glrlm_ShortRunEmphasis``)",
        texture_params_doc("GLRLM_FEATURES"),
    )

    _family = _FAMILY


glrlm_features = batch_function(
    GLRLMFeatures, "glrlm_features", "GLRLM features of a batch of images (module docstring for the definitions).",
    params=texture_params_doc("GLRLM_FEATURES"), masks="Only mask pixels count.",
    names="glrlm_feature_names",
)
