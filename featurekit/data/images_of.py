"""``ImagesOf``: sample ids in, the dataset's images out -- ids and images in one Pipeline.

featurekit pipelines take sample ids as ``X``: :class:`~featurekit.evaluation.features.CachedFeatures`
maps them to cached feature rows; :class:`ImagesOf` maps them to the images
themselves (ROI-cropped, with their masks), so an image transformer such as
:class:`~featurekit.handcrafted.HaarFeatures` can sit beside cached CNN features::

    make_pipeline(make_union(CachedFeatures("vgg16/block5_conv3", cache),
                             make_pipeline(ImagesOf(ds), HaarFeatures())),
                  StandardScaler(), SVC())

Rows follow the ids given, whatever their order, so the transformer composes
with any splitter, ``FeatureUnion`` and ``GridSearchCV``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from featurekit.errors import DataError

__all__ = ["ImagesOf", "as_ids"]


def as_ids(X: Any) -> np.ndarray:
    """Sample ids from ``X``: shape ``(n,)``, ``(n, 1)``, a list or a one-column DataFrame.

    Returns
    -------
    ndarray of str, shape (n,)
    """
    if hasattr(X, "iloc"):  # pandas Series / DataFrame
        X = X.to_numpy()
    arr = np.asarray(X, dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"expected sample ids of shape (n,) or (n, 1), got shape {arr.shape}")
    return np.asarray([str(v) for v in arr], dtype=object)


class ImagesOf(TransformerMixin, BaseEstimator):
    """Map sample ids to the samples of a dataset (images with masks), in the order given.

    Parameters
    ----------
    dataset : featurekit.data.Dataset
        The images; ROI cropping follows the dataset's ``roi``.

    Notes
    -----
    Stateless: nothing is learnt; ``fit`` checks that the ids belong to the
    dataset. ``transform`` returns a :class:`~featurekit.data.Dataset` of those
    samples, which every featurekit handcrafted transformer accepts as ``X``
    (images and masks, decoded lazily, batch by batch).
    """

    def __init__(self, dataset=None):
        self.dataset = dataset

    def _check(self):
        if self.dataset is None or not callable(getattr(self.dataset, "subset", None)):
            raise DataError(f"ImagesOf needs a featurekit Dataset, got {type(self.dataset).__name__}")
        return self.dataset

    def fit(self, X, y=None):
        self._check().rows(as_ids(X))
        self.n_features_in_ = 1
        return self

    def transform(self, X):
        ds = self._check()
        return ds.subset(ds.rows(as_ids(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags
