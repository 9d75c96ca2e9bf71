"""The scikit-learn transformer shared by the three handcrafted families.

Contract (identical for :class:`GaborFeatures`, :class:`GLCMFeatures`,
:class:`HaarFeatures`):

* parameters are stored by ``__init__`` untouched; nothing is computed there;
* the transformers are *stateless*: nothing is learnt from data. ``fit``
  validates the parameters (and, for array input, the data) and records
  ``feature_names_out_`` / ``n_features_out_``; ``transform`` works on an
  unfitted instance too (scikit-learn tag ``requires_fit=False``), which is
  what the feature cache relies on through :meth:`featurize`;
* ``X`` is any input of :mod:`featurekit.handcrafted._input`; a featurekit
  ``Dataset`` also supplies masks;
* output: ``float32`` ``(n_samples, n_features_out)`` (the cache's dtype, so a
  cached matrix equals a freshly transformed one), pandas with
  ``set_output(transform="pandas")``;
* 2-D tabular ``X`` (ndarray or DataFrame) follows scikit-learn's rules for
  tabular data: ``fit`` records ``n_features_in_`` (and ``feature_names_in_``
  for a DataFrame) and ``transform`` of 2-D tabular data checks them. Image
  input (stacks, lists, Datasets) may have any size and clears them.

The base class owns the parameters every family shares -- ``device``
(default ``'cpu'`` for all three), ``n_jobs``, ``empty_mask`` and
``max_side`` (see :mod:`featurekit.handcrafted._input`) -- and validates
them together with the family's own parameters once per call
(:meth:`_check_params`); the input is prepared once
(:func:`~featurekit.handcrafted._input.prepare`) and handed to the family's
``_compute`` with the validated parameters.

Most families are one :class:`Family` -- its parameter check, its output
names and its per-chunk computation -- served by both its batch function
(:meth:`Family.features`) and its transformer (:class:`FamilyTransformer`,
which reads the family's parameters from ``get_params``), so that the two
validate, name, chunk and compute alike; the batch function itself is made by
:func:`batch_function` from the transformer, whose ``__init__`` lists the
parameters (scikit-learn's rule), so both take the same ones with the same
defaults.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import partial
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from featurekit.errors import DataError
from featurekit.handcrafted._input import (
    check_images,
    check_shared,
    is_dataset,
    is_tabular,
    load_images,
    prepare,
    run_chunks,
)

__all__ = ["HandcraftedTransformer", "Family", "FamilyTransformer", "SHARED_PARAMS", "batch_function",
           "transformer_doc"]

#: The parameters every family shares (:func:`~featurekit.handcrafted._input.check_shared`).
SHARED_PARAMS = ("device", "n_jobs", "empty_mask", "max_side")


@dataclass(frozen=True)
class Family:
    """One family's steps, the same for its batch function and its transformer.

    Attributes
    ----------
    check : callable
        ``check(**family parameters) -> dict``: validates the family's own
        parameters (named as in the transformer's ``__init__``) and returns the
        keyword arguments of ``chunk`` (raises :class:`DataError`).
    names : callable
        ``names(checked) -> list of str``: the output columns of those arguments.
    chunk : callable
        ``chunk(images, masks, **checked, first=k) -> float64 (n, D)``: the
        features of a chunk of prepared images (``first``: index of its first
        image, for error messages).
    chunk_size : int or callable
        Images per chunk, or ``chunk_size(images)`` for a size that depends
        on the images (bounded memory).
    reads_pixels : bool
        False for a family computed from the masks alone: the input layer
        does not read (convert, check) the images' values
        (:func:`~featurekit.handcrafted._input.prepare`, ``read_pixels``).
    """

    check: Callable[..., dict]
    names: Callable[[dict], List[str]]
    chunk: Callable[..., np.ndarray]
    chunk_size: Union[int, Callable[[Sequence[np.ndarray]], int]] = 64
    reads_pixels: bool = True

    def run(self, images, masks, params: dict) -> np.ndarray:
        """Features of prepared images, ``params`` being the checked family arguments plus the
        shared ones; chunked (:func:`~featurekit.handcrafted._input.run_chunks`, on the CPU)."""
        args = {k: v for k, v in params.items() if k not in SHARED_PARAMS}
        size = self.chunk_size(images) if callable(self.chunk_size) else self.chunk_size
        return run_chunks(partial(self.chunk, **args), images, masks, params["n_jobs"], "cpu", chunk_size=size)

    def features(self, images, masks=None, *, device="cpu", n_jobs=None, empty_mask="error", **family) -> np.ndarray:
        """The family's batch function: check the parameters, load the images (integer gray
        images kept as they are, as the transformer does), run."""
        params = self.check(**family)
        params.update(check_shared(device, n_jobs, empty_mask))
        imgs, msks = load_images(images, masks, empty_mask, keep_integers=True, read_pixels=self.reads_pixels)
        return self.run(imgs, msks, params)


class HandcraftedTransformer(TransformerMixin, BaseEstimator):
    """Base class: owns the shared parameters; subclasses define ``_check_family``,
    ``_names`` and ``_compute``.

    Parameters
    ----------
    device : {'cpu', 'cuda', 'cuda:k', 'auto'}, default 'cpu'
    n_jobs : int, optional
        joblib workers over images on the CPU.
    empty_mask : {'error', 'whole'}, default 'error'
    max_side : int, optional
        Downsize images whose longer side exceeds this (with a warning).
    """

    #: the family only reads its images: integer and float64 gray images need no float64 copy
    _keep_integers = False
    #: the family reads pixel values (False: the masks and the images' shapes alone; NaN pixels are no error)
    _reads_pixels = True

    def __init__(self, *, device="cpu", n_jobs=None, empty_mask="error", max_side=None):
        self.device = device
        self.n_jobs = n_jobs
        self.empty_mask = empty_mask
        self.max_side = max_side

    # ------------------------------------------------------------------ subclass API
    def _check_family(self) -> dict:  # pragma: no cover - abstract
        """The family's own parameters, validated, as a dict (raises DataError on bad values)."""
        raise NotImplementedError

    def _names(self, params: dict) -> List[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _compute(self, images, masks, params: dict) -> np.ndarray:  # pragma: no cover
        """float64 (n, D) features of prepared images and masks, with validated ``params``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ one validation per call
    def _check_params(self) -> dict:
        """Every parameter validated once: the shared ones (``device`` resolved) and the family's."""
        params = check_shared(self.device, self.n_jobs, self.empty_mask, self.max_side)
        params.update(self._check_family())
        return params

    # ------------------------------------------------------------------ scikit-learn
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = not self._reads_pixels
        tags.input_tags.sparse = False
        tags.transformer_tags.preserves_dtype = []  # always float32
        tags.target_tags.required = False
        return tags

    def _validate_tabular(self, X, reset: bool) -> None:
        from sklearn.utils.validation import validate_data

        try:
            validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False, skip_check_array=True)
        except ValueError as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(str(exc)) from exc

    def fit(self, X=None, y=None):
        """Validate parameters (and array data); learn nothing.

        Parameters
        ----------
        X : images, optional
            Any accepted input; arrays and lists are checked (NaN, dtype,
            shape); a Dataset's images are not read, its masks are when some
            might be empty: a Dataset where some images have a lesion mask and
            others none is a DataError
            (:meth:`~featurekit.data.Dataset.check_mask_regions`).
        y : ignored

        Returns
        -------
        self
        """
        params = self._check_params()
        for attr in ("n_features_in_", "feature_names_in_"):
            if hasattr(self, attr):
                delattr(self, attr)
        if X is not None and is_dataset(X):
            X.check_mask_regions()  # the lesion in some images, the whole image in others: refused
        elif X is not None:
            check_images(X, read_pixels=self._reads_pixels)
            if is_tabular(X):
                self._validate_tabular(X, reset=True)
        names = self._names(params)
        self.feature_names_out_ = np.asarray(names, dtype=object)
        self.n_features_out_ = len(names)
        return self

    def transform(self, X):
        """Features of every sample of ``X``.

        Parameters
        ----------
        X : Dataset, list of arrays, (N, H, W[, 3]) array or (N, W) array
            See :mod:`featurekit.handcrafted._input`.

        Returns
        -------
        numpy.ndarray
            ``float32`` ``(n_samples, n_features_out)``.
        """
        if is_tabular(X) and hasattr(self, "n_features_in_"):
            self._validate_tabular(X, reset=False)
        return self._run(X, None)

    def featurize(self, images: Sequence[np.ndarray],
                  masks: Optional[Sequence[Optional[np.ndarray]]] = None) -> np.ndarray:
        """Batch entry point used by the feature cache.

        Parameters
        ----------
        images : list of numpy.ndarray
            Native images (gray ``(H, W)`` or RGB ``(H, W, 3)``; converted by
            :func:`featurekit.imageio.to_gray`).
        masks : list of (numpy.ndarray or None), optional
            One bool mask (or ``None`` = whole image) per image.

        Returns
        -------
        numpy.ndarray
            ``float32`` ``(len(images), n_features_out)``, columns named by
            :meth:`get_feature_names_out`.
        """
        return self._run(list(images), masks)

    def _run(self, X, masks) -> np.ndarray:
        """Validate the parameters, prepare the input (once each), compute, check finiteness."""
        params = self._check_params()
        images, masks = prepare(X, masks, empty_mask=params["empty_mask"], max_side=params["max_side"],
                                keep_integers=self._keep_integers, read_pixels=self._reads_pixels)
        out = np.asarray(self._compute(images, masks, params))
        if not np.all(np.isfinite(out)):  # never hand out a silent NaN column
            bad = np.argwhere(~np.isfinite(out))[0]
            names = self._names(params)
            raise DataError(
                f"non-finite feature {names[bad[1]]!r} for sample {bad[0]}; please report this input"
            )
        return out.astype(np.float32, copy=False)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Output feature names (``input_features`` is ignored: features do not map to pixels)."""
        return np.asarray(self._names(self._check_params()), dtype=object)


class FamilyTransformer(HandcraftedTransformer):
    """Transformer of a :class:`Family` (class attribute ``_family``).

    Every ``__init__`` parameter but the shared ones (:data:`SHARED_PARAMS`)
    goes to ``_family.check``, by name; a subclass only lists its parameters in
    ``__init__`` (scikit-learn reads them from there).
    """

    #: the families only read their images: integer and float64 gray images as they are
    _keep_integers = True
    _family: Family

    @property
    def _reads_pixels(self) -> bool:  # type: ignore[override]
        return self._family.reads_pixels

    def _check_family(self) -> dict:
        own = {k: v for k, v in self.get_params(deep=False).items() if k not in SHARED_PARAMS}
        return self._family.check(**own)

    def _names(self, params) -> List[str]:
        return self._family.names(params)

    def _compute(self, images, masks, params) -> np.ndarray:
        return self._family.run(images, masks, params)


#: The documentation of the parameters every batch function shares (numpydoc entries).
_SHARED_DOC = """\
device : {'cpu', 'cuda', 'cuda:k', 'auto'}, default 'cpu'
    Accepted for the shared interface; these features are computed on the CPU.
n_jobs : int, optional
    joblib workers over images (``None`` = 1, ``-1`` = all cores).
empty_mask : {'error', 'whole'}, default 'error'
    An empty mask is an error, or its image's whole area is the ROI."""


def transformer_doc(summary: str, columns: str, params: str) -> str:
    """The docstring of a :class:`FamilyTransformer`: ``summary``, its output ``columns``, the
    numpydoc entries ``params`` of the family's own parameters (the ones its batch function's
    docstring shows) with the shared ones, and the fitted attributes."""
    return (
        f"{summary}\n\nOutput columns {columns}.\n\nParameters\n----------\n{params.strip()}\n"
        "device, n_jobs, empty_mask, max_side\n    See :mod:`featurekit.handcrafted._input`.\n\n"
        "Attributes\n----------\nfeature_names_out_ : ndarray of str\nn_features_out_ : int\n"
    )


def batch_function(cls, name: str, summary: str, *, params: str, masks: str = "", names: str = "",
                   returns: str = "") -> Callable[..., np.ndarray]:
    """The batch function of the family of ``cls`` (a :class:`FamilyTransformer`), named ``name``.

    Its signature is ``(images, masks=None, *, <the parameters of cls.__init__
    but max_side>)`` with the same defaults, and it returns the float64
    features of :meth:`Family.features`. Its docstring is ``summary`` and the
    numpydoc parameter entries ``params`` of the family's own parameters
    (``masks``: what the mask selects; ``names``: the function naming the
    columns, or ``returns``: the whole description of the result) with those
    shared by every family.
    """
    init = list(inspect.signature(cls.__init__).parameters.values())[1:]
    sig = inspect.Signature(
        [inspect.Parameter("images", inspect.Parameter.POSITIONAL_OR_KEYWORD),
         inspect.Parameter("masks", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
        + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in init if p.name != "max_side"],
        return_annotation=np.ndarray,
    )
    family = cls._family

    def features(images, masks=None, **params) -> np.ndarray:
        args = sig.bind(images, masks, **params)  # a TypeError names an unknown parameter, as for any function
        args.apply_defaults()
        kwargs = dict(args.arguments)
        return family.features(kwargs.pop("images"), kwargs.pop("masks"), **kwargs)

    returns = returns or f"``float64`` ``(n_images, n_features)``, columns named by :func:`{names}`."
    mask_doc = f"\n    {masks}" if masks else ""
    features.__name__ = features.__qualname__ = name
    features.__module__ = cls.__module__
    features.__signature__ = sig  # type: ignore[attr-defined]  # what help() and inspect show
    features.__doc__ = (
        f"{summary}\n\nParameters\n----------\nimages : list of arrays, (N, H, W[, 3]) array or Dataset\n"
        f"masks : list of (bool array or None), optional{mask_doc}\n{params.strip()}\n{_SHARED_DOC}\n\n"
        f"Returns\n-------\nnumpy.ndarray\n    {returns}\n"
    )
    return features
