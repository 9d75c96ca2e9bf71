"""Featurizers: turn batches of dataset rows into cache entries.

A featurizer declares the :class:`~featurekit.cache.EntrySpec` s it produces
and yields ``(start, stop, {entry_id: rows})`` for the grid batches it is
asked for (:meth:`run`, decoding its own images), or computes batches decoded
once for every featurizer of a run (:meth:`input_transform`, :meth:`session`;
see :mod:`featurekit.extraction.decode`). :class:`CNNFeaturizer` computes every requested layer of one model
in one forward pass per batch; the handcrafted families are in
:mod:`featurekit.extraction.texture` (no torch there).
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Sequence

import torch

from featurekit.devices import check_workers, torch_device
from featurekit.io import version_attrs
from featurekit.cache import EntrySpec
from featurekit.errors import DataError, FeaturekitError
from featurekit.extraction.activations import ActivationExtractor
from featurekit.extraction.pooling import LARGE_DIM, layer_dim
from featurekit.models.layers import Layer
from featurekit.models.memory import check_memory
from featurekit.models.weights import LoadedModel, ModelRef

Batches = Sequence[tuple[int, int]]


#: the one device resolver, as torch.device (see featurekit.devices)
resolve_device = torch_device


def default_workers() -> int:
    # Decoding runs beside the forward pass; leave the cores to torch on small machines.
    return min(4, max(0, (os.cpu_count() or 1) - 1))


class _Images(torch.utils.data.Dataset):
    """Dataset rows -> preprocessed tensors; errors travel back as text, not tracebacks."""

    def __init__(self, dataset, preprocessing):
        self.dataset, self.preprocessing = dataset, preprocessing

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        try:
            return i, self.preprocessing(self.dataset.image(i)), None
        except FeaturekitError as exc:
            return i, None, str(exc)


def _collate(items):
    errors = [err for _, _, err in items if err is not None]
    if errors:
        return None, errors
    return torch.stack([x for _, x, _ in items]), None


class CNNFeaturizer:
    """Pooled activations of several layers of one model, one forward pass per batch.

    The model is built only when something must be computed: a cache hit
    needs just the :class:`~featurekit.models.weights.ModelRef`.
    """

    def __init__(self, ref: ModelRef, layers: Sequence[Layer], pool: str = "gap",
                 device: str = "auto", amp: bool = True, num_workers: int | None = None,
                 dtype: str = "float32"):
        self.ref = ref
        self.layers = sorted(layers, key=lambda layer: layer.index)
        self.pool = pool
        self.device = resolve_device(device)
        self.amp = bool(amp) and self.device.type == "cuda"
        self.num_workers = default_workers() if num_workers is None else check_workers(num_workers)
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
            "precision": "amp-fp16" if self.amp else "float32",
        }
        if layer.layout != "chw":  # what the pool was applied to (maps keep their historical entry ids)
            params.update(layer.form)
        return EntrySpec(key=f"{ref.name}/{layer.name}", params=params,
                         dim=layer_dim(layer, self.pool, ref.name), dtype=self.dtype,
                         attrs={**version_attrs(), "weights_path": ref.weights_path or "",
                                "last_layer_index": len(ref.table) - 1})

    def large_entries(self) -> list[EntrySpec]:
        return [s for s in self.specs if s.dim > LARGE_DIM]

    def load(self) -> LoadedModel:
        if self.loaded is None:
            self.loaded = self.ref.load()
            for spec in self.specs:  # the hash of what was actually built (random init included)
                spec.attrs["weights_sha256"] = self.loaded.weights_sha256
        return self.loaded

    def input_transform(self):
        """What turns one decoded image into this model's input (picklable: it runs in DataLoader workers)."""
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
        model = loaded.model.to(self.device, memory_format=torch.channels_last)
        with ActivationExtractor(model, layers, self.pool) as extractor:
            def compute(start: int, x) -> dict:
                x = x.to(self.device, non_blocking=cuda).contiguous(memory_format=torch.channels_last)
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                    out = extractor(x)
                return {wanted[name]: t.float().cpu().numpy() for name, t in out.items()}

            yield compute

    def run(self, dataset, batches: Batches, specs: Sequence[EntrySpec]) -> Iterator[tuple[int, int, dict]]:
        wanted = {s.params["layer"] for s in specs}
        if not batches or not any(layer.name in wanted for layer in self.layers):
            return
        with self.session(dataset, batches, specs) as compute:
            loader = torch.utils.data.DataLoader(
                _Images(dataset, self.input_transform()),
                batch_sampler=[list(range(a, b)) for a, b in batches],
                num_workers=self.num_workers, collate_fn=_collate, pin_memory=self.device.type == "cuda",
                persistent_workers=False,
            )
            for (start, stop), (x, errors) in zip(batches, loader):
                if errors:
                    raise DataError(errors[0])
                yield start, stop, compute(start, x)
