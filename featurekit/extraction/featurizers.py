"""Featurizers: turn batches of dataset rows into cache entries.

A featurizer declares the :class:`~featurekit.cache.EntrySpec` s it produces
and computes the grid batches it is asked for from images decoded once for
every featurizer of a run (:meth:`input_transform`, :meth:`session`; the pass
is :func:`featurekit.extraction.decode.run_together`). :class:`CNNFeaturizer`
computes every requested layer of one model in one forward pass per batch; the
handcrafted families are in :mod:`featurekit.extraction.texture` (no torch there).
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import torch

from featurekit.cache import EntrySpec
from featurekit.devices import check_workers, cpu_cores, resolve_precision, resolve_preprocess, torch_device
from featurekit.extraction.activations import ActivationExtractor
from featurekit.extraction.pooling import LARGE_DIM, layer_dim
from featurekit.io import version_attrs
from featurekit.models.layers import Layer
from featurekit.models.memory import check_memory
from featurekit.models.weights import LoadedModel, ModelRef
from featurekit.specs import CacheKey

Batches = Sequence[tuple[int, int]]


#: featurekit's device resolver, returning a torch.device (see featurekit.devices)
resolve_device = torch_device


#: autocast dtype of each recorded precision
_AUTOCAST = {"amp-fp16": torch.float16, "amp-bf16": torch.bfloat16}


def default_workers(cuda: bool = False) -> int:
    """DataLoader workers: on the CPU, decoding runs beside the forward pass, so the cores are left to torch
    on small machines (cores - 1, at most 4); on CUDA every core but the core driving the GPU decodes."""
    cores = cpu_cores()
    return max(0, cores - 1) if cuda else min(4, max(0, cores - 1))


class CNNFeaturizer:
    """Pooled activations of several layers of one model, one forward pass per batch.

    The model is built only when something must be computed: a cache hit
    needs just the :class:`~featurekit.models.weights.ModelRef`.

    ``amp`` (True = ``"auto"``, ``"fp16"``, ``"bf16"``, ``"none"``/False) is
    the autocast precision, resolved by :func:`featurekit.devices.resolve_precision`
    and recorded in every entry (``"precision"``). ``preprocess`` (``"host"``,
    ``"device"``, ``"auto"``) is where resize and normalisation run
    (:mod:`featurekit.extraction.device_preprocess`); the values are the same,
    so it is not recorded.
    """

    def __init__(self, ref: ModelRef, layers: Sequence[Layer], pool: str = "gap",
                 device: str = "auto", amp=True, num_workers: int | None = None,
                 dtype: str = "float32", preprocess: str = "host"):
        self.ref = ref
        self.layers = sorted(layers, key=lambda layer: layer.index)
        self.pool = pool
        self.device = resolve_device(device)
        self.precision = resolve_precision(amp, self.device)
        self.preprocess = resolve_preprocess(preprocess, self.device)
        cuda = self.device.type == "cuda"
        self.num_workers = default_workers(cuda) if num_workers is None else check_workers(num_workers)
        self.dtype = dtype
        self.specs = [self._spec(layer) for layer in self.layers]
        self.description = f"{ref.name} ({len(self.layers)} layers)"
        self.loaded: LoadedModel | None = None

    def _spec(self, layer: Layer) -> EntrySpec:
        ref = self.ref
        params = {
            "family": "cnn", "model": ref.name, "layer": layer.name, "layer_index": layer.index,
            "module": layer.module, "pool": self.pool, **ref.identity, "input_size": ref.preprocessing.size,
            "preprocessing": ref.preprocessing.to_dict(),
            "precision": self.precision,
        }
        # what the pool was applied to; CHW maps add nothing, so their entry ids match existing caches
        if layer.layout != "chw":
            params.update(layer.form)
        return EntrySpec(key=str(CacheKey.of_layer(ref.name, layer.name)), params=params,
                         dim=layer_dim(layer, self.pool, ref.name), dtype=self.dtype,
                         attrs={**version_attrs(), "weights_path": ref.weights_path or "",
                                "last_layer_index": len(ref.table) - 1})

    @property
    def amp(self) -> bool:
        """Whether the forward pass autocasts (see ``precision``)."""
        return self.precision != "float32"

    def large_entries(self) -> list[EntrySpec]:
        return [s for s in self.specs if s.dim > LARGE_DIM]

    def load(self) -> LoadedModel:
        if self.loaded is None:
            self.loaded = self.ref.load()
        for spec in self.specs:  # the hash of what was actually built (random init included)
            spec.attrs["weights_sha256"] = self.loaded.weights_sha256
        return self.loaded

    def input_transform(self):
        """What turns one decoded image into this model's input (picklable: it runs in DataLoader workers).

        ``preprocess="device"``: a :class:`~featurekit.extraction.device_preprocess.DeviceFeed`, which
        only prepares the decoded image for the upload; its ``stack`` keeps a batch as a list (images
        of several sizes) and ``compute`` finishes the transform on the device.
        """
        if self.preprocess == "device":
            from featurekit.extraction.device_preprocess import DeviceFeed

            return DeviceFeed(self.load().preprocessing, self.device)
        return self.load().preprocessing

    @contextlib.contextmanager
    def session(self, dataset, batches: Batches, specs: Sequence[EntrySpec]):
        """The model set up for ``batches`` (hooks on): yields ``compute(start, x) -> {entry_id: rows}``
        for ``x``, the stacked inputs of a batch (:meth:`input_transform` of each image)."""
        wanted = {s.params["layer"]: s.entry_id for s in specs}
        layers = [layer for layer in self.layers if layer.name in wanted]
        check_memory(self.ref.name, self.ref.preprocessing.size, max(b - a for a, b in batches), self.device,
                     channels=self.ref.preprocessing.channels,
                     small_input=bool((self.ref.arch or {}).get("small_input")))
        loaded = self.load()
        cuda = self.device.type == "cuda"
        # channels_last: 1.3-2.1x faster convolutions on CPU (oneDNN) as on GPU, same values to ~1e-6
        # Module.to takes a device with memory_format at run time; torch's typed overloads take one or the other
        model = loaded.model.to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        feed = self.input_transform() if self.preprocess == "device" else None
        with ActivationExtractor(model, layers, self.pool) as extractor:
            def compute(start: int, x) -> dict:
                # device preprocessing: x is the batch's decoded images; they go up and are resized there
                x = feed.to_device(x) if feed else x.to(self.device, non_blocking=cuda)
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(self.device.type, dtype=_AUTOCAST.get(self.precision), enabled=self.amp):
                    out = extractor(x)
                return {wanted[name]: t.float().cpu().numpy() for name, t in out.items()}

            yield compute
