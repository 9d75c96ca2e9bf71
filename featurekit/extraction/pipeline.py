"""``extract``: the Python API behind ``featurekit extract``.

Fills one feature cache with CNN layer activations and handcrafted features
for a dataset: parameters are resolved, what the cache already holds is
reused, what is missing is computed in batches (journaled as they finish) and
committed atomically at the end.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from featurekit.cache import DatasetMeta, EntrySpec, FeatureCache, default_cache_path
from featurekit.errors import LayerError
from featurekit.extraction.featurizers import CNNFeaturizer, HandcraftedFeaturizer
from featurekit.models.layers import split_spec
from featurekit.models.registry import get_spec
from featurekit.models.weights import resolve_model


@dataclass
class ExtractionResult:
    """What an extraction produced: the cache and, per entry, whether it was computed."""

    cache: FeatureCache
    computed: list[EntrySpec] = field(default_factory=list)
    reused: list[EntrySpec] = field(default_factory=list)
    models: dict = field(default_factory=dict)  # model name -> ModelRef (provenance)

    @property
    def specs(self) -> list[EntrySpec]:
        return self.computed + self.reused

    def get(self, key: str) -> np.ndarray:
        spec = next(s for s in self.specs if s.key == key)
        return self.cache.get(spec.key, entry_id=spec.entry_id)


def group_layer_specs(specs: Sequence[str], size: int | None = None) -> dict[str, list[str]]:
    """``["vgg16:8-10", "vgg16:17", "resnet50:conv5_*"]`` -> {model: [selectors]} (one pass per model)."""
    grouped: dict[str, list[str]] = {}
    for spec in specs:
        model, selector = split_spec(spec)
        grouped.setdefault(get_spec(model).name, []).append(selector)
    return grouped


def build_featurizers(layers: Sequence[str] = (), handcrafted: Sequence = (), *, weights: str = "imagenet",
                      size: int | None = None, pool: str = "gap", mode: str = "crop", device: str = "auto",
                      amp: bool = True, num_workers: int | None = None, seed: int = 0,
                      dtype: str = "float32") -> list:
    """Resolve layer specs and handcrafted families into featurizers (loads the models)."""
    featurizers = []
    for model, selectors in group_layer_specs(layers).items():
        ref = resolve_model(model, weights, seed=seed, size=size, mode=mode)
        chosen = {}
        for selector in selectors:
            for layer in ref.table.select(selector):
                chosen[layer.index] = layer
        featurizers.append(CNNFeaturizer(ref, list(chosen.values()), pool, device, amp, num_workers, dtype))
    for item in handcrafted:
        family, transformer = item if isinstance(item, tuple) else (item, None)
        featurizers.append(HandcraftedFeaturizer(family, transformer or default_handcrafted(family), dtype))
    return featurizers


def default_handcrafted(family: str):
    """The default transformer of a handcrafted family (``gabor``, ``glcm``, ``haar``) for the cache.

    Defaults are the transformers' own (the published Gabor bank, pyradiomics'
    GLCM with bin width 25 over the ROI, the full 24x24 Haar set) except that
    an empty mask falls back to the whole image instead of raising.
    """
    from featurekit import handcrafted

    table = handcrafted.FAMILIES
    if family not in table:
        raise LayerError(f"unknown handcrafted family {family!r}; choose from {', '.join(table)}")
    # An empty mask (e.g. a BUSI 'normal' image) means "no lesion drawn": use the whole image.
    return table[family](empty_mask="whole")


def extract(dataset, layers: Sequence[str] = (), handcrafted: Sequence = (), *, cache=None,
            weights: str = "imagenet", size: int | None = None, pool: str = "gap", mode: str = "crop",
            batch_size: int = 16, device: str = "auto", amp: bool = True, num_workers: int | None = None,
            seed: int = 0, dtype: str = "float32", progress: bool = True,
            lock_timeout: float | None = 600.0) -> ExtractionResult:
    """Extract features of ``dataset`` into a feature cache.

    Parameters
    ----------
    dataset : featurekit.data.Dataset
    layers : list of str
        Layer specs (``"vgg16:8-17"``, ``"resnet50:conv5_*"``); all layers of
        one model come from one forward pass per batch.
    handcrafted : list of str or (family, transformer)
        ``"gabor"``, ``"glcm"``, ``"haar"``, or a configured transformer.
    cache : path, FeatureCache or None
        Default: ``cache/<dataset>-<fingerprint12>.h5``.
    weights : {"imagenet", "none"} or path
    size, mode : input size and resize mode (see Preprocessing); default the weights'.
    pool : {"gap", "gmp", "gapgmp", "spp", "none"}
    batch_size, device, amp, num_workers : execution (CUDA with AMP when present).
    seed : int
        Seed of random initialisation with ``weights="none"``.
    progress : bool
        Show a progress bar (images/s and ETA).
    lock_timeout : float or None
        Seconds to wait for another writer of the same cache (None = forever).
    """
    if not layers and not handcrafted:
        raise LayerError("nothing to extract: give layer specs (e.g. 'vgg16:8-17') and/or handcrafted families")
    if len(dataset) == 0:
        raise LayerError(f"dataset {dataset.name!r} is empty")
    cache = cache if isinstance(cache, FeatureCache) else FeatureCache(cache or default_cache_path(dataset))
    featurizers = build_featurizers(layers, handcrafted, weights=weights, size=size, pool=pool, mode=mode,
                                    device=device, amp=amp, num_workers=num_workers, seed=seed, dtype=dtype)
    result = ExtractionResult(cache)
    for f in featurizers:
        big = getattr(f, "large_entries", lambda: [])()
        if big:
            warnings.warn(f"pool='{pool}' stores {big[0].dim} values per image for {big[0].key}; "
                          f"the cache will hold about {len(dataset) * sum(s.dim for s in big) * 4 / 1e9:.2f} GB",
                          stacklevel=2)
        if hasattr(f, "ref"):
            result.models[f.ref.name] = f.ref
    with cache.writer(DatasetMeta.from_dataset(dataset), lock_timeout=lock_timeout) as writer:
        for f in featurizers:
            todo_specs = writer.missing(f.specs)
            result.reused += [s for s in f.specs if s not in todo_specs]
            if not todo_specs:
                continue
            batches = writer.plan(todo_specs, batch_size)
            total = sum(b - a for a, b in batches)
            with tqdm(total=total, unit="img", desc=f.description, disable=not progress or total == 0,
                      dynamic_ncols=True, leave=True) as bar:
                for start, stop, arrays in f.run(dataset, batches, todo_specs):
                    writer.write(start, stop, arrays)
                    bar.update(stop - start)
            writer.commit(todo_specs)
            result.computed += todo_specs
            if getattr(f, "loaded", None) is not None:
                result.models[f.ref.name] = f.loaded
    return result
