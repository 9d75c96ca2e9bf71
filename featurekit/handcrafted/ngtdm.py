r"""Neighbouring grey tone difference matrix (NGTDM) features, pyradiomics' 5 in 2-D.

For each mask pixel of level :math:`i`, :math:`\bar A` is the mean level of
its neighbours inside the mask -- the pixels at Chebyshev distance ``d`` for
``d`` in ``distances`` (default ``(1,)``: the 8 adjacent pixels), as
pyradiomics' ``distances`` setting. Per level, :math:`n_i` counts the mask
pixels of level :math:`i` and :math:`s_i = \sum |i - \bar A|`;
:math:`p_i = n_i / N_{v,p}`, :math:`N_{v,p} = \sum n_i`, :math:`N_{g,p}` the
number of levels present.

* Coarseness :math:`1 / \sum p_i s_i` (:math:`10^6` when the sum is 0),
* Contrast :math:`\frac{1}{N_{g,p}(N_{g,p}-1)} \sum_{i,j} p_i p_j (i-j)^2
  \cdot \frac{1}{N_{v,p}} \sum_i s_i` (0 for one level),
* Busyness :math:`\sum p_i s_i / \sum_{i,j} |i p_i - j p_j|` (0 when the
  denominator is 0),
* Complexity :math:`\frac{1}{N_{v,p}} \sum_{i,j} |i - j| \frac{p_i s_i + p_j
  s_j}{p_i + p_j}`,
* Strength :math:`\sum_{i,j} (p_i + p_j)(i - j)^2 / \sum_i s_i` (0 when
  :math:`\sum s_i = 0`),

sums over the levels present (:math:`p_i, p_j > 0`).

Pixels without a neighbour in the mask. pyradiomics' C code counts them in
:math:`n_i` with a difference of 0, while its documentation -- and IBSI
(Zwanenburg et al. 2020), whose :math:`N_{v,c}` counts only pixels with a
valid neighbourhood -- leave them out. This module follows pyradiomics' code,
so results equal pyradiomics' ``RadiomicsNGTDM`` (~1e-12, tests); the two
definitions agree whenever every mask pixel has a neighbour in the mask.

Pipeline, vectorised over a batch: quantisation of the mask's bounding box
(pyradiomics' rule, shared with GLCM, :mod:`featurekit.handcrafted._zones`),
one compiled pass over the zero-padded box for each pixel's neighbourhood
count and sum (:func:`featurekit.handcrafted._kernels.neighbourhood_counts`),
in integers; :math:`s_i` as the integer numerators :math:`|i \cdot count -
total|` summed per (level, neighbour count) and divided once per pair (no
division per pixel); and the
five formulas for all images at once on ``(images, levels, levels)`` arrays
of bounded size.

Notes
-----
IBSI (Zwanenburg et al., Radiology 2020) defines these 5 features with the
same formulas. On the IBSI 1 digital phantom -- each of its slices one 2-D
image, ``bin_width=1``, every ROI pixel with a neighbour in the ROI -- their
means over the slices equal IBSI's "2D" reference values to the three digits
IBSI publishes (``tests/test_ibsi_phantom.py``). Differs from IBSI for a mask
pixel without a neighbour in the mask, because pyradiomics' code counts it
(above; the test checks a case), and where the discretisation does
(``bin_width``'s bin edges, see :mod:`featurekit.handcrafted.glcm`).

References
----------
M. Amadasun and R. King, "Textural features corresponding to textural
properties", IEEE Trans. Syst. Man Cybern. 19(5):1264-1274, 1989.

pyradiomics documentation, "Neighbouring Gray Tone Difference Matrix (NGTDM)
Features", https://pyradiomics.readthedocs.io/en/latest/features.html
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from featurekit.handcrafted._base import batch_function, transformer_doc
from featurekit.handcrafted._params import check_features, prefixed
from featurekit.handcrafted._zones import (
    _TextureTransformer,
    check_distances,
    neighbour_offsets,
    neighbour_steps,
    quantized_rois,
    texture_family,
    texture_params_doc,
)

__all__ = ["NGTDM_FEATURES", "ngtdm_feature_names", "ngtdm_features", "NGTDMFeatures"]

NGTDM_FEATURES = ("Coarseness", "Contrast", "Busyness", "Complexity", "Strength")
#: Sub-batches of the pairwise step hold at most this many (image, level, level) cells.
_CELLS = 1 << 21


def ngtdm_feature_names(features="all") -> List[str]:
    """Output names ``ngtdm_<feature>`` (pyradiomics' feature names)."""
    return prefixed("ngtdm", check_features(features, NGTDM_FEATURES, "ngtdm"))


def _level_sums(lv: np.ndarray, offsets: np.ndarray, G1: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(n_i, s_i)`` of the padded box ``lv``, each of length ``G1`` (index 0: outside the mask),
    the neighbourhood ``offsets`` (``(dr, dc)`` rows).

    The integer numerators :math:`|i m - t|` (``m`` neighbours in the mask, ``t`` the sum of
    their levels) are summed per (level, ``m``) by
    :func:`featurekit.handcrafted._kernels.neighbourhood_counts` and divided once per pair; a
    pixel without a neighbour in the mask (``m = 0``) adds 0, as pyradiomics.
    """
    from featurekit.handcrafted._kernels import neighbourhood_counts

    n_im, s_im = neighbourhood_counts(lv, neighbour_steps(offsets, lv.shape[1]), G1)
    return n_im.sum(axis=1).astype(np.float64), (s_im[:, 1:] / np.arange(1, s_im.shape[1])).sum(axis=1)


def _formulas(n_i: np.ndarray, s_i: np.ndarray) -> np.ndarray:
    """The five features ``(n, 5)`` from ``n_i``, ``s_i`` of shape ``(n, G + 1)`` (index = level)."""
    lev = np.arange(n_i.shape[1], dtype=np.float64)
    Nvp = n_i.sum(axis=1)
    p = n_i / Nvp[:, None]
    present = n_i > 0
    Ngp = present.sum(axis=1)
    ps = p * s_i
    sum_ps, sum_s = ps.sum(axis=1), s_i.sum(axis=1)
    out = np.empty((len(n_i), 5))
    out[:, 0] = np.where(sum_ps != 0, 1.0 / np.where(sum_ps != 0, sum_ps, 1.0), 1e6)
    both = present[:, :, None] & present[:, None, :]
    d = lev[:, None] - lev[None, :]
    pair_p = p[:, :, None] + p[:, None, :]
    contrast = (p[:, :, None] * p[:, None, :] * d * d).sum(axis=(1, 2)) * sum_s / Nvp
    div = Ngp * (Ngp - 1)
    out[:, 1] = np.where(div != 0, contrast / np.where(div != 0, div, 1), 0.0)
    ip = lev * p
    absdiff = np.where(both, np.abs(ip[:, :, None] - ip[:, None, :]), 0.0).sum(axis=(1, 2))
    out[:, 2] = np.where(absdiff != 0, sum_ps / np.where(absdiff != 0, absdiff, 1.0), 0.0)
    num = np.where(both, ps[:, :, None] + ps[:, None, :], 0.0)
    out[:, 3] = (np.abs(d) * num / np.where(pair_p == 0, 1.0, pair_p)).sum(axis=(1, 2)) / Nvp
    strength = np.where(both, pair_p * d * d, 0.0).sum(axis=(1, 2))
    out[:, 4] = np.where(sum_s != 0, strength / np.where(sum_s != 0, sum_s, 1.0), 0.0)
    return out


def _ngtdm_chunk(images, masks, *, bin_width, bin_count, quant_range, distances, features,
                 first=0) -> np.ndarray:
    """Features ``(n, len(features))`` of a chunk of prepared images."""
    pad = max(distances)
    levels, top = quantized_rois(images, masks, bin_width, bin_count, quant_range, pad=pad, first=first)
    n, G1 = len(levels), int(top.max()) + 1
    offsets = np.array(neighbour_offsets(distances), dtype=np.int64)
    n_i, s_i = np.zeros((n, G1)), np.zeros((n, G1))
    for k, lv in enumerate(levels):
        n_i[k], s_i[k] = _level_sums(lv, offsets, G1)
    n_i[:, 0] = s_i[:, 0] = 0.0  # outside the mask
    step = max(1, _CELLS // (G1 * G1))
    F = np.concatenate([_formulas(n_i[a : a + step], s_i[a : a + step]) for a in range(0, n, step)])
    return F[:, [NGTDM_FEATURES.index(f) for f in features]]


_FAMILY = texture_family("ngtdm", NGTDM_FEATURES, _ngtdm_chunk, {"distances": check_distances})


#: numpydoc entries of the family's own parameters (its batch function's and transformer's docstrings).
_OWN_DOC = """\
distances : sequence of int, default (1,)
    Chebyshev distances of the neighbourhood (pyradiomics' ``distances``).
"""


class NGTDMFeatures(_TextureTransformer):
    __doc__ = transformer_doc(
        "NGTDM features as a scikit-learn transformer (:func:`ngtdm_features`).",
        "``ngtdm_<feature>`` (e.g. ``ngtdm_Coarseness``)",
        texture_params_doc("NGTDM_FEATURES", _OWN_DOC),
    )

    _family = _FAMILY

    def __init__(self, distances=(1,), bin_width=None, bin_count=None, quant_range="roi", features="all",
                 device="cpu", n_jobs=None, empty_mask="error", max_side=2048):
        self.distances = distances
        super().__init__(bin_width=bin_width, bin_count=bin_count, quant_range=quant_range, features=features,
                         device=device, n_jobs=n_jobs, empty_mask=empty_mask, max_side=max_side)


ngtdm_features = batch_function(
    NGTDMFeatures, "ngtdm_features", "NGTDM features of a batch of images (module docstring for the definitions).",
    params=texture_params_doc("NGTDM_FEATURES", _OWN_DOC), masks="Only mask pixels count.",
    names="ngtdm_feature_names",
)
