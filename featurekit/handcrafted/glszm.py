r"""Grey-level size zone matrix (GLSZM) features, pyradiomics' 16 in 2-D.

A zone is a set of 8-connected mask pixels with the same grey level
(pyradiomics' connectivity in 2-D); :math:`P(i, j)` counts the zones of level
:math:`i` and size :math:`j` pixels.

Pipeline, vectorised over a batch:

1. **Quantisation** of the mask's bounding box to levels ``1..N_g`` (0
   outside), pyradiomics' rule (``bin_width`` default 25, or ``bin_count``;
   ``quant_range``), shared with GLCM: :mod:`featurekit.handcrafted._zones`.
2. **Zones**: one :func:`skimage.measure.label` per image of its
   4-connected regions of equal value (0 = background; half the time of
   8-connected labelling), sizes and levels from the rows' runs (a run lies
   in one region: a ``bincount`` of the runs' labels weighted by their
   lengths, fewer entries than pixels); regions of one level touching only
   at a corner (two diagonal pixels whose common neighbours both have other
   levels) are then joined into the 8-connected zones, for the whole batch
   at once, by a union-find over those contacts.
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


def _join(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Connected components of the graph of the edges ``(a, b)`` on the nodes ``0..n - 1``: each
    node's smallest node of its component.

    Union-find by rounds: every root hooks to the smallest root it shares an
    edge with (``numpy.minimum.at``), then every node points to its root
    (pointer jumping); parents only decrease, so the rounds end, when no edge
    joins two roots.
    """
    parent = np.arange(n)
    while True:
        pa, pb = parent[a], parent[b]
        apart = pa != pb
        if not apart.any():
            return parent
        pa, pb = pa[apart], pb[apart]
        np.minimum.at(parent, np.maximum(pa, pb), np.minimum(pa, pb))
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up


def _zones(levels: List[np.ndarray], G1: int) -> Tuple[np.ndarray, np.ndarray]:
    """``image * G1 + level`` and size of every 8-connected zone of equal non-zero level
    (``levels`` with a zero border).

    Each image's 4-connected zones are labelled (half the time of 8-connected
    labelling); two of them are one 8-connected zone where they touch at a
    corner: two diagonal pixels of one level whose two common neighbours both
    have another level (a common neighbour of that level would join them
    already). Those contacts, of all images at once, join the 4-connected
    zones (:func:`_join`).
    """
    from skimage.measure import label

    sizes, codes, src, dst, start = [], [], [], [], 0
    for k, lv in enumerate(levels):
        lab = label(lv, background=0, connectivity=1).ravel()
        f, W = lv.ravel(), lv.shape[1]
        s = np.flatnonzero(f[1:] != f[:-1])  # the rows' runs (the zero border ends every row)
        s += 1
        run_lab = lab[s]
        size = np.bincount(run_lab, np.diff(s, append=f.size)).astype(np.int64)
        code = np.zeros(size.size, dtype=np.int64)
        code[run_lab] = f[s]  # every pixel of a zone has its level (label 0, outside: 0)
        code += k * G1
        # the corners of the 2x2 square at each flat position (the zero border ends every row)
        tl, tr, bl, br = f[: -W - 1], f[1:-W], f[W:-1], f[W + 1 :]
        for p, q, o1, o2, dp, dq in ((tl, br, tr, bl, 0, W + 1), (tr, bl, tl, br, 1, W)):
            corner = p == q
            corner &= p != o1
            corner &= p != o2
            corner &= p != 0
            at = np.flatnonzero(corner)
            if at.size:
                src.append(lab[at + dp] + start)
                dst.append(lab[at + dq] + start)
        sizes.append(size)
        codes.append(code)
        start += size.size
    size, code = np.concatenate(sizes), np.concatenate(codes)
    if src:
        zone = _join(np.concatenate(src), np.concatenate(dst), start)
        size = np.bincount(zone, size, minlength=start).astype(np.int64)  # at each zone's smallest node
        keep = zone == np.arange(start)
        size, code = size[keep], code[keep]  # the 4-connected zones of one zone have its image and level
    inside = code % G1 != 0  # the outside of each image (label 0) is no zone
    return code[inside], size[inside]


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
