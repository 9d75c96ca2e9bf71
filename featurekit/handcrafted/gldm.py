r"""Grey-level dependence matrix (GLDM) features, pyradiomics' 14 in 2-D.

A neighbour of a mask pixel of level :math:`i` is *dependent* when it lies in
the mask, within the neighbourhood, and its level differs from :math:`i` by at
most :math:`\alpha` (``gldm_a``, pyradiomics' name, default 0).
:math:`P(i, j)` counts the mask pixels of level :math:`i` with :math:`j - 1`
dependent neighbours (:math:`j \geq 1`: the pixel depends on itself). The
neighbourhood is every pixel at Chebyshev distance ``d`` for ``d`` in
``distances`` (default ``(1,)``: the 8 adjacent pixels), as pyradiomics'
``distances`` setting.

Pipeline, vectorised over a batch:

1. **Quantisation** of the mask's bounding box to levels ``1..N_g`` (0
   outside), pyradiomics' rule (``bin_width`` default 25, or ``bin_count``;
   ``quant_range``), shared with GLCM: :mod:`featurekit.handcrafted._zones`.
2. **Dependence counts**: per neighbour offset one compiled pass comparing
   the zero-padded box with its shifted view, then one histogram of (level,
   count) (:func:`featurekit.handcrafted._kernels.dependence_counts`).
3. **Features** of all images at once from the sparse counts
   (:func:`featurekit.handcrafted._zones.matrix_features`), with
   :math:`N_z = N_p` (every mask pixel is one entry).

Features (pyradiomics' names): SmallDependenceEmphasis,
LargeDependenceEmphasis, GrayLevelNonUniformity, DependenceNonUniformity,
DependenceNonUniformityNormalized, GrayLevelVariance, DependenceVariance,
DependenceEntropy, Low/HighGrayLevelEmphasis,
SmallDependenceLow/HighGrayLevelEmphasis,
LargeDependenceLow/HighGrayLevelEmphasis. (pyradiomics' two deprecated ones,
GrayLevelNonUniformityNormalized = first-order Uniformity and
DependencePercentage = 1, are left out, as pyradiomics does.) featurekit
follows pyradiomics and is tested against pyradiomics' ``RadiomicsGLDM``
(equal to ~1e-12).

Notes
-----
IBSI (Zwanenburg et al., Radiology 2020) calls the matrix NGLDM (``gldm_a``
is its coarseness :math:`\alpha`, the neighbourhood its Chebyshev distance
:math:`\delta`) and defines the 14 features with the same formulas under
other names (*low/high dependence emphasis* for Small/LargeDependenceEmphasis,
*low/high grey level count emphasis* for Low/HighGrayLevelEmphasis,
*dependence count* for Dependence). On the IBSI 1 digital phantom -- each of
its slices one 2-D image, ``bin_width=1`` -- their means over the slices equal
IBSI's "2D" reference values to the three digits IBSI publishes
(``tests/test_ibsi_phantom.py``). Of IBSI's three other NGLDM features,
*normalised grey level non-uniformity* is the first-order ``Uniformity`` on
the same levels and *dependence count percentage* is 1; *dependence count
energy* is not offered, as pyradiomics. Differs from IBSI otherwise only
where the discretisation does (``bin_width``'s bin edges, see
:mod:`featurekit.handcrafted.glcm`).

References
----------
C. Sun and W. G. Wee, "Neighboring gray level dependence matrix for texture
classification", Computer Vision, Graphics, and Image Processing
23(3):341-352, 1983.

pyradiomics documentation, "Gray Level Dependence Matrix (GLDM) Features",
https://pyradiomics.readthedocs.io/en/latest/features.html
"""

from __future__ import annotations

import math
from typing import List

import numpy as np

from featurekit.errors import DataError
from featurekit.handcrafted._base import batch_function, transformer_doc
from featurekit.handcrafted._params import check_features, prefixed
from featurekit.handcrafted._zones import (
    _TextureTransformer,
    check_distances,
    dense_entries,
    matrix_features,
    neighbour_offsets,
    neighbour_steps,
    quantized_rois,
    texture_family,
    texture_params_doc,
)

__all__ = ["GLDM_FEATURES", "gldm_feature_names", "gldm_features", "GLDMFeatures"]

#: pyradiomics' GLDM feature names and their formula (keys of featurekit.handcrafted._zones).
_TABLE = {
    "SmallDependenceEmphasis": "SE",
    "LargeDependenceEmphasis": "LE",
    "GrayLevelNonUniformity": "GLN",
    "DependenceNonUniformity": "SN",
    "DependenceNonUniformityNormalized": "SNN",
    "GrayLevelVariance": "GLV",
    "DependenceVariance": "SV",
    "DependenceEntropy": "ENT",
    "LowGrayLevelEmphasis": "LGE",
    "HighGrayLevelEmphasis": "HGE",
    "SmallDependenceLowGrayLevelEmphasis": "SLGE",
    "SmallDependenceHighGrayLevelEmphasis": "SHGE",
    "LargeDependenceLowGrayLevelEmphasis": "LLGE",
    "LargeDependenceHighGrayLevelEmphasis": "LHGE",
}
GLDM_FEATURES = tuple(_TABLE)


def check_alpha(gldm_a) -> float:
    """``gldm_a`` as a float >= 0 (raises :class:`DataError`)."""
    try:
        a = float(gldm_a)
    except (TypeError, ValueError):
        a = math.nan
    if isinstance(gldm_a, bool) or not (math.isfinite(a) and a >= 0):
        raise DataError(f"gldm_a must be a number >= 0 (grey levels), got {gldm_a!r}")
    return a


def gldm_feature_names(features="all") -> List[str]:
    """Output names ``gldm_<feature>`` (pyradiomics' feature names)."""
    return prefixed("gldm", check_features(features, GLDM_FEATURES, "gldm"))


def _gldm_chunk(images, masks, *, bin_width, bin_count, quant_range, distances, gldm_a, features,
                first=0) -> np.ndarray:
    """Features ``(n, len(features))`` of a chunk of prepared images."""
    pad = max(distances)
    levels, top = quantized_rois(images, masks, bin_width, bin_count, quant_range, pad=pad, first=first)
    from featurekit.handcrafted._kernels import dependence_counts

    offsets = np.array(neighbour_offsets(distances), dtype=np.int64)
    n, G1, J1 = len(levels), int(top.max()) + 1, len(offsets) + 2
    counts = np.zeros((n, G1 * J1))
    for k, lv in enumerate(levels):
        counts[k] = dependence_counts(lv, neighbour_steps(offsets, lv.shape[1]), float(gldm_a), J1, G1).ravel()
    u, i, j, c = dense_entries(counts.reshape(n, G1, J1))
    return matrix_features(u, i, j, c, n, [_TABLE[f] for f in features])


_FAMILY = texture_family("gldm", GLDM_FEATURES, _gldm_chunk,
                         {"distances": check_distances, "gldm_a": check_alpha})


#: numpydoc entries of the family's own parameters (its batch function's and transformer's docstrings).
_OWN_DOC = """\
distances : sequence of int, default (1,)
    Chebyshev distances of the neighbourhood (pyradiomics' ``distances``).
gldm_a : float, default 0
    Largest level difference of a dependent neighbour (pyradiomics' ``gldm_a``).
"""


class GLDMFeatures(_TextureTransformer):
    __doc__ = transformer_doc(
        "GLDM features as a scikit-learn transformer (:func:`gldm_features`).",
        "``gldm_<feature>`` (e.g. ``gldm_DependenceEntropy``)",
        texture_params_doc("GLDM_FEATURES", _OWN_DOC),
    )

    _family = _FAMILY

    def __init__(self, distances=(1,), gldm_a=0, bin_width=None, bin_count=None, quant_range="roi", features="all",
                 device="cpu", n_jobs=None, empty_mask="error", max_side=2048):
        self.distances = distances
        self.gldm_a = gldm_a
        super().__init__(bin_width=bin_width, bin_count=bin_count, quant_range=quant_range, features=features,
                         device=device, n_jobs=n_jobs, empty_mask=empty_mask, max_side=max_side)


gldm_features = batch_function(
    GLDMFeatures, "gldm_features", "GLDM features of a batch of images (module docstring for the definitions).",
    params=texture_params_doc("GLDM_FEATURES", _OWN_DOC), masks="Only mask pixels count.",
    names="gldm_feature_names",
)
