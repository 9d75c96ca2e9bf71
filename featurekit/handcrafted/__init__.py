"""Handcrafted features: Gabor filter banks, GLCM / Haralick, Haar-like, and the radiomics set.

Each family has pure functions (``gabor_features``, ``glcm_features``,
``haar_features``, ...) and a scikit-learn transformer (:class:`GaborFeatures`,
:class:`GLCMFeatures`, :class:`HaarFeatures`, :class:`FirstOrderFeatures`,
:class:`Shape2DFeatures`, :class:`LBPFeatures`, :class:`GLRLMFeatures`,
:class:`GLSZMFeatures`, :class:`GLDMFeatures`, :class:`NGTDMFeatures`) whose
``featurize(images, masks)`` is the batch entry point of the feature cache. :data:`FAMILIES` names them
(one line per family); the ``radiomics`` group (pyradiomics' feature classes,
:data:`featurekit.specs.HANDCRAFTED_GROUPS`) and pyradiomics parameter files
(:func:`read_pyradiomics_params`) select several at once. Inputs and the parameters the
three transformers share (``device``, ``n_jobs``, ``empty_mask``,
``max_side``) follow :mod:`featurekit.handcrafted._input`.

Large images, per family: Gabor filters them tile by tile with exactly merged
moments and Haar-like resizes them with an operator that reads only what the
interpolation needs -- both exact at any size in bounded memory, so their
``max_side`` defaults to None; GLCM downsizes images larger than
``max_side=2048`` with a :class:`DownsizedWarning`.
"""

from featurekit.handcrafted._input import DownsizedWarning
from featurekit.handcrafted.firstorder import FIRSTORDER_FEATURES, FirstOrderFeatures, firstorder_features
from featurekit.handcrafted.gabor import (
    DEFAULT_FREQUENCIES,
    GABOR_RESPONSES,
    GABOR_STATISTICS,
    GaborFeatures,
    gabor_bank,
    gabor_feature_names,
    gabor_features,
    gabor_kernel,
    gabor_response,
)
from featurekit.handcrafted.glcm import (
    GLCM_FEATURES,
    MAX_LEVELS,
    PYRADIOMICS_FEATURES,
    SKIMAGE_FEATURES,
    GLCMFeatures,
    glcm_feature_names,
    glcm_features,
    glcm_matrix,
    glcm_offsets,
    quantize,
)
from featurekit.handcrafted.gldm import GLDM_FEATURES, GLDMFeatures, gldm_features
from featurekit.handcrafted.glrlm import GLRLM_FEATURES, GLRLMFeatures, glrlm_features
from featurekit.handcrafted.glszm import GLSZM_FEATURES, GLSZMFeatures, glszm_features
from featurekit.handcrafted.haar import (
    FEATURE_SETS,
    FEATURE_TYPES,
    MAX_FEATURES,
    HaarCoords,
    HaarFeatures,
    haar_feature_coords,
    haar_feature_count,
    haar_feature_names,
    haar_features,
    haar_window,
)
from featurekit.handcrafted.lbp import LBPFeatures, lbp_features
from featurekit.handcrafted.ngtdm import NGTDM_FEATURES, NGTDMFeatures, ngtdm_features
from featurekit.handcrafted.pyradiomics_params import read_pyradiomics_params
from featurekit.handcrafted.shape2d import SHAPE2D_FEATURES, Shape2DFeatures, shape2d_features

#: The transformer of each family, by the key the feature cache stores it under: one line
#: per family, its name also in :data:`featurekit.specs.HANDCRAFTED` (tests/test_api.py checks)
FAMILIES = {
    "gabor": GaborFeatures,
    "glcm": GLCMFeatures,
    "haar": HaarFeatures,
    "firstorder": FirstOrderFeatures,
    "shape": Shape2DFeatures,
    "lbp": LBPFeatures,
    "glrlm": GLRLMFeatures,
    "glszm": GLSZMFeatures,
    "gldm": GLDMFeatures,
    "ngtdm": NGTDMFeatures,
}


def from_spec(spec, *, empty_mask: str = "whole"):
    """The transformer a :class:`featurekit.specs.HandcraftedSpec` (or ``"glcm:bin_count=64"``) names.

    Unknown parameter names are an error listing the valid ones. ``empty_mask``
    is the cache's default (an empty mask -- e.g. a BUSI 'normal' image -- means
    the whole image) unless the spec sets it.
    """
    from featurekit.errors import LayerError
    from featurekit.specs import HandcraftedSpec

    spec = HandcraftedSpec.parse(spec)
    klass = FAMILIES[spec.family]
    valid = klass().get_params(deep=False)
    unknown = [k for k, _ in spec.params if k not in valid]
    if unknown:
        raise LayerError(f"{spec.family} has no parameter {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(sorted(valid))}")
    return klass(**{"empty_mask": empty_mask, **dict(spec.params)})


def family_of(transformer) -> str:
    """The cache key of a configured handcrafted transformer (``"gabor"`` for a GaborFeatures)."""
    from featurekit.errors import LayerError

    for family, klass in FAMILIES.items():
        if isinstance(transformer, klass):
            return family
    raise LayerError(f"{type(transformer).__name__} is not a featurekit handcrafted transformer "
                     f"({', '.join(FAMILIES)})")

__all__ = [
    "FAMILIES",
    "FIRSTORDER_FEATURES",
    "FirstOrderFeatures",
    "firstorder_features",
    "SHAPE2D_FEATURES",
    "Shape2DFeatures",
    "shape2d_features",
    "LBPFeatures",
    "lbp_features",
    "GLRLM_FEATURES",
    "GLRLMFeatures",
    "glrlm_features",
    "GLSZM_FEATURES",
    "GLSZMFeatures",
    "glszm_features",
    "GLDM_FEATURES",
    "GLDMFeatures",
    "gldm_features",
    "NGTDM_FEATURES",
    "NGTDMFeatures",
    "ngtdm_features",
    "read_pyradiomics_params",
    "from_spec",
    "family_of",
    "DownsizedWarning",
    "FEATURE_SETS",
    "GABOR_RESPONSES",
    "GABOR_STATISTICS",
    "MAX_LEVELS",
    "MAX_FEATURES",
    "FEATURE_TYPES",
    "HaarCoords",
    "HaarFeatures",
    "haar_feature_coords",
    "haar_feature_count",
    "haar_feature_names",
    "haar_features",
    "haar_window",
    "GLCM_FEATURES",
    "GLCMFeatures",
    "PYRADIOMICS_FEATURES",
    "SKIMAGE_FEATURES",
    "glcm_feature_names",
    "glcm_features",
    "glcm_matrix",
    "glcm_offsets",
    "quantize",
    "DEFAULT_FREQUENCIES",
    "GaborFeatures",
    "gabor_bank",
    "gabor_feature_names",
    "gabor_features",
    "gabor_kernel",
    "gabor_response",
]
