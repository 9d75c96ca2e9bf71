r"""Grey-level size zone matrix (GLSZM) features, pyradiomics' 16 in 2-D.

A zone is a set of 8-connected mask pixels with the same grey level
(pyradiomics' connectivity in 2-D); :math:`P(i, j)` counts the zones of level
:math:`i` and size :math:`j` pixels.

Pipeline, vectorised over a batch:

1. **Quantisation** of the mask's bounding box to levels ``1..N_g`` (0
   outside), pyradiomics' rule (``bin_width`` default 25, or ``bin_count``;
   ``quant_range``), shared with GLCM: :mod:`featurekit.handcrafted._zones`.
2. **Zones**: per image, each row's runs of equal level are joined with the
   runs of the row above of that level that touch them, diagonally included
   (a union-find forest of runs), and each zone's pixels summed (compiled:
   :func:`featurekit.handcrafted._kernels.zones8`; the zones of
   :func:`scipy.ndimage.label` with a 3 x 3 structure per level, tests).
3. **Features** of all images at once from the sparse counts
   (:func:`featurekit.handcrafted._zones.matrix_features`).

Features (pyradiomics' names; :math:`N_z` zones, :math:`N_p` pixels):
SmallAreaEmphasis, LargeAreaEmphasis, GrayLevelNonUniformity(Normalized),
SizeZoneNonUniformity(Normalized), ZonePercentage (:math:`N_z / N_p`),
GrayLevelVariance, ZoneVariance, ZoneEntropy, Low/HighGrayLevelZoneEmphasis,
SmallAreaLow/HighGrayLevelEmphasis, LargeAreaLow/HighGrayLevelEmphasis.
featurekit follows pyradiomics and is tested against pyradiomics'
``RadiomicsGLSZM`` (equal to ~1e-12).

Notes
-----
IBSI (Zwanenburg et al., Radiology 2020) defines these 16 features with the
same formulas and, in 2-D, the same 8-connected zones (its *small/large zone*
features are pyradiomics' *SmallArea/LargeArea* ones). On the IBSI 1 digital
phantom -- each of its slices one 2-D image, ``bin_width=1`` -- their means
over the slices equal IBSI's "2D" reference values to the three digits IBSI
publishes (``tests/test_ibsi_phantom.py``). Differs from IBSI only where the
discretisation does (``bin_width``'s bin edges, see
:mod:`featurekit.handcrafted.glcm`).

References
----------
G. Thibault et al., "Texture indexes and gray level size zone matrix.
Application to cell nuclei classification", Pattern Recognition and
Information Processing (PRIP) 140-145, 2009.

pyradiomics documentation, "Gray Level Size Zone Matrix (GLSZM) Features",
https://pyradiomics.readthedocs.io/en/latest/features.html
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from featurekit.handcrafted._base import batch_function, transformer_doc
from featurekit.handcrafted._params import check_features, prefixed
from featurekit.handcrafted._zones import (
    _TextureTransformer,
    aggregate,
    matrix_features,
    quantized_rois,
    texture_family,
    texture_params_doc,
)

__all__ = ["GLSZM_FEATURES", "glszm_feature_names", "glszm_features", "GLSZMFeatures"]

#: pyradiomics' GLSZM feature names and their formula (keys of featurekit.handcrafted._zones).
_TABLE = {
    "SmallAreaEmphasis": "SE",
    "LargeAreaEmphasis": "LE",
    "GrayLevelNonUniformity": "GLN",
    "GrayLevelNonUniformityNormalized": "GLNN",
    "SizeZoneNonUniformity": "SN",
    "SizeZoneNonUniformityNormalized": "SNN",
    "ZonePercentage": "PCT",
    "GrayLevelVariance": "GLV",
    "ZoneVariance": "SV",
    "ZoneEntropy": "ENT",
    "LowGrayLevelZoneEmphasis": "LGE",
    "HighGrayLevelZoneEmphasis": "HGE",
    "SmallAreaLowGrayLevelEmphasis": "SLGE",
    "SmallAreaHighGrayLevelEmphasis": "SHGE",
    "LargeAreaLowGrayLevelEmphasis": "LLGE",
    "LargeAreaHighGrayLevelEmphasis": "LHGE",
}
GLSZM_FEATURES = tuple(_TABLE)


def glszm_feature_names(features="all") -> List[str]:
    """Output names ``glszm_<feature>`` (pyradiomics' feature names)."""
    return prefixed("glszm", check_features(features, GLSZM_FEATURES, "glszm"))


def _zones(levels: List[np.ndarray], G1: int) -> Tuple[np.ndarray, np.ndarray]:
    """``image * G1 + level`` and size of every 8-connected zone of equal non-zero level
    (``levels`` with a zero border): :func:`featurekit.handcrafted._kernels.zones8` per image."""
    from featurekit.handcrafted._kernels import zones8

    codes, sizes = [], []
    for k, lv in enumerate(levels):
        level, size = zones8(lv)
        level += k * G1
        codes.append(level)
        sizes.append(size)
    return np.concatenate(codes), np.concatenate(sizes)


def _glszm_chunk(images, masks, *, bin_width, bin_count, quant_range, features, first=0) -> np.ndarray:
    """Features ``(n, len(features))`` of a chunk of prepared images."""
    levels, top = quantized_rois(images, masks, bin_width, bin_count, quant_range, pad=1, first=first)
    n, G1 = len(levels), int(top.max()) + 1
    code, size = _zones(levels, G1)  # code = unit * G1 + level
    u, i, j, c = aggregate(code, size, G1, n)
    return matrix_features(u, i, j, c, n, [_TABLE[f] for f in features])


_FAMILY = texture_family("glszm", GLSZM_FEATURES, _glszm_chunk)


class GLSZMFeatures(_TextureTransformer):
    __doc__ = transformer_doc(
        "GLSZM features as a scikit-learn transformer (:func:`glszm_features`).",
        "``glszm_<feature>`` (e.g. ``glszm_SmallAreaEmphasis``)",
        texture_params_doc("GLSZM_FEATURES"),
    )

    _family = _FAMILY


glszm_features = batch_function(
    GLSZMFeatures, "glszm_features", "GLSZM features of a batch of images (module docstring for the definitions).",
    params=texture_params_doc("GLSZM_FEATURES"), masks="Only mask pixels count.",
    names="glszm_feature_names",
)
