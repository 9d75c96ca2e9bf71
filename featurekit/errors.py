"""Exceptions raised by featurekit.

Every error a user can cause derives from :class:`FeaturekitError`, so the CLI
can print the message without a traceback. Each also derives from the builtin
exception a Python caller would expect (``ValueError``, ``KeyError``...).
"""


class FeaturekitError(Exception):
    """Base class of all user-facing featurekit errors."""


class DataError(FeaturekitError, ValueError):
    """Bad input data: unreadable image, empty folder, mask mismatch, bad manifest."""


class DataChangedError(DataError):
    """An input file changed while featurekit was reading it: not a bad image, so never skipped as one."""


class LayerError(FeaturekitError, ValueError):
    """Unknown model or layer name, or a malformed layer specification."""


class WeightsError(FeaturekitError, RuntimeError):
    """Weights that cannot be resolved, downloaded or loaded."""


class ResourceError(FeaturekitError, ValueError):
    """Execution settings the machine cannot run: a negative worker count, a batch whose
    activations cannot fit in the device's free memory."""


class CacheError(FeaturekitError, RuntimeError):
    """A feature cache that cannot be read or written."""


class CacheLockedError(CacheError):
    """Another process holds the write lock of a feature cache."""


class StorageError(FeaturekitError, OSError):
    """A write that the file system refused: full disk, read-only location, no permission."""


class DiskFullError(StorageError):
    """No space left where featurekit was writing (the folder and the size are named)."""


class ReadOnlyError(StorageError):
    """A location featurekit must write to is read-only or not writable."""


class OutputExistsError(FeaturekitError, FileExistsError):
    """An output (run folder, checkpoint) already exists and overwriting it was not asked for."""


class ClusterError(FeaturekitError, RuntimeError):
    """A cluster that cannot be reached or used (Dask missing, bad scheduler address)."""
