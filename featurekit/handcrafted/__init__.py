"""Handcrafted texture features: Gabor filter banks, GLCM / Haralick, Haar-like.

Each family has pure functions (``gabor_features``, ``glcm_features``,
``haar_features``, ...) and a scikit-learn transformer (:class:`GaborFeatures`,
:class:`GLCMFeatures`, :class:`HaarFeatures`) whose ``featurize(images, masks)``
is the batch entry point of the feature cache. Inputs follow
:mod:`featurekit.handcrafted._input`.
"""

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
    GLCMFeatures,
    PYRADIOMICS_FEATURES,
    SKIMAGE_FEATURES,
    glcm_feature_names,
    glcm_features,
    glcm_matrix,
    glcm_offsets,
    quantize,
)
from featurekit.handcrafted.haar import (
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

#: The transformer of each family, by the key the feature cache stores it under.
FAMILIES = {"gabor": GaborFeatures, "glcm": GLCMFeatures, "haar": HaarFeatures}

__all__ = [
    "FAMILIES",
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
