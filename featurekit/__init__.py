"""featurekit: which features separate benign from malignant, and how sure can we be.

Handcrafted texture features (Gabor, GLCM, Haar-like) and per-layer CNN
activations, extracted in one pass, cached in HDF5, compared with leak-free
cross-validation.
"""

__version__ = "0.1.0"

from featurekit.errors import (  # noqa: E402
    CacheError,
    CacheLockedError,
    DataError,
    FeaturekitError,
    LayerError,
    WeightsError,
)

__all__ = [
    "__version__",
    "FeaturekitError",
    "DataError",
    "LayerError",
    "WeightsError",
    "CacheError",
    "CacheLockedError",
]
