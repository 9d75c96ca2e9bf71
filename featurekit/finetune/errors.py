"""Errors of the fine-tuning package (all :class:`~featurekit.errors.FeaturekitError` s)."""

from featurekit.errors import FeaturekitError, WeightsError


class FinetuneError(FeaturekitError, ValueError):
    """A fine-tuning option or combination of options that cannot work."""


class HeadMismatchError(WeightsError):
    """A checkpoint's classification head does not fit the classes asked for."""
