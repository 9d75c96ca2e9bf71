"""``ImagesOf``: sample ids in, the dataset's images out -- ids and images in one Pipeline.

featurekit pipelines take sample ids as ``X``: :class:`~featurekit.evaluation.estimators.features.CachedFeatures`
maps them to cached feature rows; :class:`ImagesOf` maps them to the images
themselves (ROI-cropped, with their masks), so an image transformer such as
:class:`~featurekit.handcrafted.HaarFeatures` can sit beside cached CNN features::

    make_pipeline(make_union(CachedFeatures("vgg16/block5_conv3", cache),
                             make_pipeline(ImagesOf(ds), HaarFeatures())),
                  StandardScaler(), SVC())

Rows follow the ids given, whatever their order, so the transformer composes
with any splitter, ``FeatureUnion``, ``ColumnTransformer`` and ``GridSearchCV``;
the union's ``get_feature_names_out`` and ``set_output`` reach the image
transformer behind it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array

from featurekit.errors import DataError

__all__ = ["ImagesOf", "as_ids"]


def as_ids(X: Any) -> np.ndarray:
    """Sample ids from ``X``: shape ``(n,)``, ``(n, 1)``, a list or a one-column DataFrame.

    ``X`` goes through scikit-learn's ``check_array`` first (any dtype, at least
    one sample and one column, no sparse or complex data), so a wrong input is
    the error scikit-learn's own estimators give, as a :class:`DataError`.

    Returns
    -------
    ndarray of str, shape (n,)
    """
    if hasattr(X, "iloc"):  # pandas Series / DataFrame
        X = X.to_numpy()
    try:
        arr = check_array(X, dtype=None, ensure_2d=False, ensure_all_finite=False, input_name="X")
    except (TypeError, ValueError) as exc:
        raise DataError(f"sample ids: {exc}") from exc
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"expected sample ids of shape (n,) or (n, 1), got shape {arr.shape}")
    return np.asarray([str(v) for v in arr], dtype=object)


# sklearn ships no types: mypy checks the keyword against object.__init_subclass__, not sklearn's
class ImagesOf(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):  # type: ignore[call-arg]
    """Map sample ids to the samples of a dataset (images with masks), in the order given.

    Parameters
    ----------
    dataset : featurekit.data.Dataset
        The images; ROI cropping follows the dataset's ``roi``.

    Attributes
    ----------
    n_features_in_ : int
        Always 1 (the id column).

    Notes
    -----
    Stateless: nothing is learnt; ``fit`` checks that the ids belong to the
    dataset. ``transform`` returns a :class:`~featurekit.data.Dataset` of those
    samples, which every featurekit handcrafted transformer accepts as ``X``
    (images and masks, decoded lazily, batch by batch).

    Its output is images, never a table: like a ``FunctionTransformer`` whose
    function returns no DataFrame, :meth:`set_output` is accepted (so that a
    ``Pipeline``, ``FeatureUnion`` or ``ColumnTransformer`` can configure all
    its steps) and records the setting, and ``transform`` still returns the
    Dataset -- the image transformer after it makes the table.
    """

    def __init__(self, dataset=None):
        self.dataset = dataset

    def _check(self):
        if self.dataset is None or not callable(getattr(self.dataset, "subset", None)):
            raise DataError(f"ImagesOf needs a featurekit Dataset, got {type(self.dataset).__name__}")
        return self.dataset

    def fit(self, X, y=None):
        """Check that every id of ``X`` is in the dataset; learn nothing."""
        self._check().rows(as_ids(X))
        self.n_features_in_ = 1
        return self

    def transform(self, X):
        """The samples of the ids in ``X``, in that order, as a Dataset."""
        ds = self._check()
        return ds.subset(ds.rows(as_ids(X)))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``["image"]``: one image (with its mask) per id; the transformer after this one names the features."""
        return np.asarray(["image"], dtype=object)

    def set_output(self, *, transform=None):
        """Record the output container a Pipeline or union asks for; the output stays a Dataset of images.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None

        Returns
        -------
        self
        """
        if transform is not None:
            self._sklearn_output_config = {**getattr(self, "_sklearn_output_config", {}), "transform": transform}
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.string = True
        tags.input_tags.two_d_array = True  # a column of ids
        tags.target_tags.required = False
        return tags
