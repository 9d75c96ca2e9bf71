r"""Grey-level run length matrix (GLRLM) features, pyradiomics' 16 in 2-D.

A run is a maximal line of consecutive pixels inside the mask with the same
grey level, along one of four directions (0°, 45°, 90°, 135°); pixels outside
the mask end a run. :math:`P(i, j \mid \theta)` counts the runs of level
:math:`i` and length :math:`j` in direction :math:`\theta`.

Pipeline, vectorised over a batch:

1. **Quantisation** of the mask's bounding box to levels ``1..N_g`` (0
   outside), pyradiomics' rule (``bin_width`` default 25, or ``bin_count``;
   ``quant_range``), shared with GLCM: :mod:`featurekit.handcrafted._zones`.
2. **Runs**: each line of the zero-padded box in each direction is walked
   once, the positions where its level changes collected without a branch
   per pixel, the runs between them keyed by (image, direction, level,
   length (compiled: :func:`featurekit.handcrafted._kernels.glrlm_runs`),
   counted in one table for the images whose tables fit :data:`_TABLE_CELLS`
   together (else listed and sorted,
   :func:`featurekit.handcrafted._zones.aggregate_keys`).
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
    dense_entries,
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


#: Cells of the count tables ``(4, levels, lengths)`` of the images counted together (int64);
#: an image whose own table is larger (16-bit levels in a large box) lists its runs instead.
_TABLE_CELLS = 1 << 20


def _line_has_pair(lv: np.ndarray, d: int) -> bool:
    """Whether some line of direction ``d`` (index into :data:`GLRLM_ANGLES`) crosses two mask pixels."""
    r, c = np.nonzero(lv)
    line = (r, r - c + lv.shape[1], c, r + c)[d]
    return bool(np.bincount(line).max() >= 2)


def _run_entries(levels: List[np.ndarray], G1: int, J1: int) -> Tuple[np.ndarray, ...]:
    """The distinct ``(unit, level, length, count)`` of the runs of the images ``levels``
    (unit = image * 4 + direction): counted in one table for a few images at once, or, where
    one image's table would exceed :data:`_TABLE_CELLS`, listed and sorted image by image."""
    from featurekit.handcrafted._kernels import glrlm_runs

    cells, parts = 4 * G1 * J1, []
    if cells <= _TABLE_CELLS:
        group = _TABLE_CELLS // cells
        none = np.empty(0, dtype=np.int64)
        for a in range(0, len(levels), group):
            part = levels[a : a + group]
            counts = np.zeros((len(part), 4, G1, J1), dtype=np.int64)
            for k, lv in enumerate(part):
                glrlm_runs(lv, G1, J1, counts[k], none, 0)
            u, i, j, c = dense_entries(counts.reshape(4 * len(part), G1, J1))
            parts.append((u + 4 * a, i, j, c))
    else:
        no_table = np.zeros((0, 0, 0), dtype=np.int64)
        for k, lv in enumerate(levels):
            keys = np.empty(4 * np.count_nonzero(lv), dtype=np.int64)
            n_keys = glrlm_runs(lv, G1, J1, no_table, keys, 0)
            u, i, j, c = aggregate_keys(keys[:n_keys], 4, G1, J1)
            parts.append((u + 4 * k, i, j, c))
    return tuple(np.concatenate(v) for v in zip(*parts))


def _glrlm_chunk(images, masks, *, bin_width, bin_count, quant_range, features, first=0) -> np.ndarray:
    """Features ``(n, len(features))`` of a chunk of prepared images."""
    levels, top = quantized_rois(images, masks, bin_width, bin_count, quant_range, pad=1, first=first)
    n, G1 = len(levels), int(top.max()) + 1
    J1 = max(max(lv.shape) for lv in levels) + 1
    u, i, j, c = _run_entries(levels, G1, J1)
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
