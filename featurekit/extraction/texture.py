"""The handcrafted featurizer: a featurekit texture transformer as a producer of cache entries.

Kept apart from :mod:`featurekit.extraction.featurizers` so that planning a
run of handcrafted features -- and a fully cached one -- never imports torch.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np

from featurekit.cache import EntrySpec
from featurekit.errors import DataError, FeaturekitError
from featurekit.io import version_attrs

__all__ = ["HandcraftedFeaturizer"]

Batches = Sequence[tuple[int, int]]


class HandcraftedFeaturizer:
    """A featurekit texture transformer (Gabor, GLCM, Haar-like) as a cache producer.

    The transformer must provide ``featurize(images, masks) -> (n, D)`` and
    ``get_feature_names_out()``; its ``get_params()`` identify the entry.
    """

    def __init__(self, family: str, transformer, dtype: str = "float32"):
        self.family = family
        self.transformer = transformer
        self.dtype = dtype
        names = list(transformer.get_feature_names_out())
        params = {"family": family, "estimator": type(transformer).__name__,
                  **{k: v for k, v in transformer.get_params().items() if k not in ("n_jobs", "device")}}
        self.specs = [EntrySpec(key=family, params=params, dim=len(names), dtype=dtype,
                                attrs=version_attrs(), feature_names=names)]
        self.description = family

    def _named_error(self, dataset, start: int, images, masks, exc: FeaturekitError) -> DataError:
        """The batch's error, naming the file: the images are redone one by one (on this
        error path only) and the first that fails is named with its own message."""
        for k, (img, m) in enumerate(zip(images, masks)):
            try:
                self.transformer.featurize([img], [m])
            except FeaturekitError as one:
                msg = str(one).removeprefix("image 0: ")
                return DataError(f"{self.family} features of {dataset.image_path(start + k)} "
                                 f"(row {start + k}, id {dataset.ids[start + k]}): {msg}")
        return DataError(f"{self.family} features of rows {start}-{start + len(images) - 1} "
                         f"({dataset.ids[start]} ...): {exc}")

    def input_transform(self):
        """None: this featurizer takes the decoded image and mask arrays (see :mod:`featurekit.extraction.decode`)."""
        return None

    @contextlib.contextmanager
    def session(self, dataset, batches: Batches, specs: Sequence[EntrySpec]):
        """Yields ``compute(start, (images, masks)) -> {entry_id: rows}`` for the decoded rows from ``start`` on."""
        entry_id = self.specs[0].entry_id

        def compute(start: int, x) -> dict:
            images, masks = x
            try:
                values = self.transformer.featurize(images, masks)
            except FeaturekitError as exc:
                raise self._named_error(dataset, start, images, masks, exc) from exc
            return {entry_id: np.asarray(values, dtype=np.float32)}

        yield compute
