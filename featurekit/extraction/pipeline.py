"""``extract``: the Python API behind ``featurekit extract``.

Fills one feature cache with CNN layer activations and handcrafted features
for a dataset: parameters are resolved, what the cache already holds is
reused, what is missing is computed in batches (journaled as they finish) and
committed atomically at the end, all entries of the run in one commit. A cache
that already holds everything, intact, is only read: no lock, no write, so it
may sit on a read-only file system.

One decoding pass. The featurizers of a run (one per CNN model, one per
handcrafted family) do not each read the images: every image is decoded once
(with its mask and region of interest) and the arrays feed all featurizers
that lack its rows; each CNN's own resize and normalisation run beside the
decoding in DataLoader worker processes (:mod:`featurekit.extraction.decode`).
Each featurizer still computes exactly the batches the cache writer planned
for it, so the values are those of separate runs, bit for bit. On a Dask
cluster (``executor``) the same pass runs in shards of grid cells, one task
each, every featurizer computing its batches of the shard from one decoding
(:mod:`featurekit.extraction.distributed`).

Unreadable images. With ``on_error="raise"`` (the default) the first image
that cannot be read or processed stops the run with a
:class:`~featurekit.errors.DataError` naming it; the finished batches stay in
the journal, and once the image is fixed or removed the next run reuses every
finished row (rows are keyed by id and content). With ``on_error="skip"`` such
images are left out: files that cannot be read at all before anything starts,
images whose decoding or features fail when their batch is computed (the batch
is then computed image by image to find them). Their rows are absent from the
cache (never zeros), they are listed in :attr:`ExtractionResult.skipped` and in
the cache (``/skipped``), and reading them names them.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from featurekit.cache import DatasetMeta, EntrySpec, FeatureCache, default_cache_path
from featurekit.errors import DataError, FeaturekitError, LayerError
from featurekit.extraction.distributed import run_jobs
from featurekit.extraction.memo import ResolutionMemo, hand_key, request_key
from featurekit.specs import (
    CacheKey,
    HandcraftedSpec,
    LayerSpec,
    Weights,
    group_layers,
    parse_handcrafted,
    parse_layers,
)


def read_handcrafted_params(path, families) -> list:
    """The specs of a pyradiomics parameter file (``radiomics:params=FILE.yaml``), read by
    :func:`featurekit.handcrafted.read_pyradiomics_params`, imported only when a file is named."""
    from featurekit.handcrafted.pyradiomics_params import read_pyradiomics_params

    return read_pyradiomics_params(path, families)


@dataclass
class ExtractionResult:
    """What an extraction produced: the cache and, per entry, whether it was computed.

    ``layer_keys`` maps each layer spec (as text, e.g. ``"vgg16:8-17"``) to the
    cache keys of the layers it selected, in table order. ``skipped`` maps the
    ids of images left out (``on_error="skip"``) to the reason; ``reused_rows``
    counts the rows taken from other caches and journals of the same images
    (same id and content) instead of being computed.
    """

    cache: FeatureCache
    computed: list[EntrySpec] = field(default_factory=list)
    reused: list[EntrySpec] = field(default_factory=list)
    models: dict = field(default_factory=dict)  # model name -> ModelRef / LoadedModel (provenance)
    layer_keys: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    reused_rows: int = 0

    @property
    def specs(self) -> list[EntrySpec]:
        return self.computed + self.reused

    def get(self, key: str) -> np.ndarray:
        spec = next(s for s in self.specs if s.key == key)
        return self.cache.get(spec.key, entry_id=spec.entry_id)


def build_featurizers(layers: Sequence = (), handcrafted: Sequence = (), *, weights=None,
                      size: int | None = None, pool: str = "gap", mode: str = "crop", device: str = "auto",
                      amp=True, num_workers: int | None = None, seed: int | None = None,
                      dtype: str = "float32", preprocess: str = "host",
                      recorded: Sequence[tuple[str, str]] = ()) -> tuple[list, dict[str, list[str]]]:
    """Featurizers for layer specs and handcrafted families (resolves models, builds none).

    ``recorded``: the ``(weights tag, sha256)`` pairs a feature cache holds entries of, which stand
    for an absent ImageNet weights file (see :func:`~featurekit.models.weights.resolve_model`).
    Returns the featurizers and ``{str(layer spec): [cache keys]}``.
    """
    from featurekit.extraction.texture import HandcraftedFeaturizer
    from featurekit.handcrafted import family_of, from_spec
    from featurekit.specs import HandcraftedSpec

    w = Weights.parse(weights, seed=seed)
    specs = parse_layers(layers)
    featurizers: list = []  # CNNFeaturizer, then HandcraftedFeaturizer
    keys: dict[str, list[str]] = {}
    by_model: dict[str, list[LayerSpec]] = {}
    if specs:
        from featurekit.models.registry import get_spec
        from featurekit.models.weights import resolve_model
    for spec in specs:
        by_model.setdefault(get_spec(spec.model).name, []).append(spec)
    for model, model_specs in by_model.items():
        ref = resolve_model(model, w, size=size, mode=mode, recorded=recorded)
        chosen = {}
        for spec in model_specs:
            picked = ref.table.select(spec.selector)
            keys[str(spec)] = [str(CacheKey.of_layer(ref.name, layer.name)) for layer in picked]
            chosen.update({layer.index: layer for layer in picked})
        from featurekit.extraction.featurizers import CNNFeaturizer

        featurizers.append(CNNFeaturizer(ref, list(chosen.values()), pool, device, amp, num_workers, dtype,
                                         preprocess))
    for item in parse_handcrafted(handcrafted, read_params=read_handcrafted_params):
        if isinstance(item, HandcraftedSpec):
            featurizers.append(HandcraftedFeaturizer(item.family, from_spec(item), dtype))
        else:
            featurizers.append(HandcraftedFeaturizer(family_of(item), item, dtype))
    return featurizers, keys


def extract(dataset, *args, executor=None, shard_size: int | None = None, **options) -> ExtractionResult:
    """Extract features of ``dataset`` into a feature cache.

    Parameters
    ----------
    dataset : featurekit.data.Dataset
    layers : list of str or LayerSpec
        Layer specs (``"vgg16:8-17"``, ``"resnet50:conv5_*"``); all layers of
        one model come from one forward pass per batch.
    handcrafted : list of str, HandcraftedSpec or transformer; or "gabor,glcm"
        ``"gabor"``, ``"glcm:bin_count=64"``, or a configured transformer
        (``GLCMFeatures(bin_count=64)``).
    cache : path, FeatureCache or None
        Default: ``cache/<dataset>-<fingerprint12>.h5``.
    weights : Weights or str
        ``Weights.imagenet()`` (default), ``Weights.random(seed)``, ``Weights.file(path)``,
        or their text forms ``"imagenet"``, ``"none"``, ``"none:seed=3"``, a path.
    size, resize : input size and resize mode ("crop" or "squash", see Preprocessing); default the weights'.
    pool : {"gap", "gmp", "gapgmp", "spp", "none"}
    batch_size, device, num_workers : execution (CUDA when present).
    amp : {"auto", "fp16", "bf16", "none"}
        Autocast precision of the forward pass, recorded in each entry
        (``"precision"``): ``auto`` is float16 on CUDA, float32 elsewhere.
    preprocess : {"host", "device", "auto"}
        Where resize and normalisation run: in the DataLoader workers (default),
        or on the model's device after uploading the decoded uint8 images
        (``auto``: on CUDA). Same values, same entries
        (:mod:`featurekit.extraction.device_preprocess`).
    seed : int
        Seed of random initialisation when ``weights`` is the text ``"none"``
        (``Weights.random(seed)`` says it directly).
    dtype : {"float32", "float16"}
        How the features are stored.
    progress : bool
        Show a progress bar (images/s and ETA).
    lock_timeout : float or None
        Seconds to wait for another writer of the same cache (None = forever).
    on_error : {"raise", "skip"}
        What an image that cannot be read or processed does: stop the run
        (naming it), or be left out of the cache and listed (see the module).
    executor : None, "local", Executor or dask.distributed.Client
        Where the batches are computed: here (default), or in shards of about
        ``shard_size`` rows on a Dask cluster (:mod:`featurekit.extraction.distributed`);
        the cache is written here either way.

    Every option but ``executor`` and ``shard_size`` is declared once, in
    :data:`featurekit.options.EXTRACT` (the command line's flags and a study step's keys
    are the same options); a wrong value is an :class:`~featurekit.options.OptionError` naming it.
    """
    from featurekit.options import EXTRACT

    return _extract(dataset, **EXTRACT.bind("extract", POSITIONAL, args, options), executor=executor,
                    shard_size=shard_size)


#: the options extract also takes by position, after the dataset
POSITIONAL = ("layers", "handcrafted")


def _signature():
    """extract's signature as help() and IDEs show it, its options read from featurekit.options."""
    from featurekit.options import EXTRACT

    return EXTRACT.api_signature(["dataset"], POSITIONAL, ["executor", "shard_size"])


extract.__signature__ = _signature()  # type: ignore[attr-defined]


def _extract(dataset, layers: Sequence, handcrafted: Sequence, *, cache, weights, size: int | None, pool: str,
             resize: str, batch_size: int, device: str, amp: str, num_workers: int | None, seed: int, dtype: str,
             progress: bool, lock_timeout: float | None, on_error: str, preprocess: str, executor,
             shard_size: int | None) -> ExtractionResult:
    """:func:`extract` with its options resolved."""
    if not layers and not handcrafted:
        raise LayerError("nothing to extract: give layer specs (e.g. 'vgg16:8-17') and/or handcrafted families")
    if len(dataset) == 0:
        raise LayerError(f"dataset {dataset.name!r} is empty")
    pre_skipped: list[tuple[str, str]] = []
    if on_error == "skip":
        dataset, pre_skipped = _readable(dataset)
    meta = DatasetMeta.from_dataset(dataset, skipped=pre_skipped)
    cache = cache if isinstance(cache, FeatureCache) else FeatureCache(cache or default_cache_path(dataset))
    cache.check_path()
    w = Weights.parse(weights, seed=seed)
    layer_specs, hand = parse_layers(layers), parse_handcrafted(handcrafted, read_params=read_handcrafted_params)
    requests = {model: request_key(model, selectors, w, size=size, mode=resize, pool=pool, dtype=dtype,
                                   device=device, amp=amp)
                for model, selectors in group_layers(layer_specs).items()}
    requests.update({str(item): hand_key(item, dtype) for item in hand if isinstance(item, HandcraftedSpec)})
    if hand:
        dataset.check_mask_regions()
    cached = _fully_cached(meta, cache, hand, requests, dtype, on_error)
    if cached is not None:
        cached.skipped = {**dict(pre_skipped), **cache.skipped}
        return cached
    featurizers, keys = build_featurizers(layer_specs, hand, weights=w, size=size, pool=pool, mode=resize,
                                          device=device, amp=amp, num_workers=num_workers, dtype=dtype,
                                          preprocess=preprocess, recorded=_recorded_weights(cache))
    result = ExtractionResult(cache, layer_keys=keys)
    for f in featurizers:
        big: list[EntrySpec] = getattr(f, "large_entries", lambda: [])()
        if big:
            warnings.warn(f"pool='{pool}' stores {big[0].dim} values per image for {big[0].key}; "
                          f"the cache will hold about {len(dataset) * sum(s.dim for s in big) * 4 / 1e9:.2f} GB",
                          stacklevel=2)
        if hasattr(f, "ref"):
            result.models[f.ref.name] = f.ref
    all_specs = [s for f in featurizers for s in f.specs]
    if cache.holds(meta, all_specs, allow_skipped=on_error == "skip"):
        # everything is there and intact: read only (no lock, nothing written)
        result.reused = all_specs
        result.skipped = {**dict(pre_skipped), **cache.skipped}
        _remember(cache, layer_specs, hand, requests, featurizers, result, dtype)
        return result
    with cache.writer(meta, lock_timeout=lock_timeout, on_error=on_error) as writer:
        todo_all: list[EntrySpec] = []
        try:
            jobs = []
            for f in featurizers:
                todo_specs = writer.missing(f.specs)
                result.reused += [s for s in f.specs if s not in todo_specs]
                if todo_specs:
                    jobs.append((f, writer.plan(todo_specs, batch_size), todo_specs))
                    todo_all += todo_specs
            _run(jobs, dataset, writer, batch_size, progress, executor=executor, shard_size=shard_size,
                 device=device)
            for f, _, _ in jobs:
                if getattr(f, "loaded", None) is not None:
                    result.models[f.ref.name] = f.loaded
            writer.commit(todo_all)
        except FeaturekitError:
            # keep what is complete (the journal keeps the rest); an error of this commit is suppressed
            # so that the first error propagates
            with contextlib.suppress(FeaturekitError):
                writer.commit(todo_all)
            raise
        result.computed = todo_all
        result.skipped = writer.skipped
        result.reused_rows = writer.reused_rows
    _remember(cache, layer_specs, hand, requests, featurizers, result, dtype)
    return result


def _recorded_weights(cache: FeatureCache) -> list[tuple[str, str]]:
    """``(weights tag, sha256)`` of the CNN entries ``cache`` holds: what its rows were computed with.

    Entries are found by id, and an id hashes the weights' sha256: a model resolved with one of
    these hashes in place of an absent file finds exactly the rows computed from that file.
    """
    from featurekit.errors import CacheError

    if not cache.exists():
        return []
    try:
        entries = cache.entries()
    except CacheError:
        return []
    return sorted({(str(e.params["weights"]), str(e.params["weights_sha256"])) for e in entries
                   if e.params.get("family") == "cnn" and e.params.get("weights") and e.params.get("weights_sha256")})


def _readable(dataset):
    """``on_error="skip"``: the dataset without the samples whose files cannot be read, and those (id, reason)."""
    bad = []
    for i in range(len(dataset)):
        try:
            dataset.sample_hash(i)
        except DataError as exc:
            bad.append((i, str(exc)))
    if not bad:
        return dataset, []
    ids = dataset.ids
    keep = sorted(set(range(len(dataset))) - {i for i, _ in bad})
    if not keep:
        raise DataError(f"no image of {dataset.name!r} can be read; e.g. {bad[0][1]}")
    return dataset.subset(keep), [(ids[i], why) for i, why in bad]


def _run(jobs: list, dataset, writer, batch_size: int, progress: bool, **where) -> None:
    """Compute every job's batches into the journal; skipped images are recorded as such.

    One decoding pass for all featurizers, here or in shards of grid cells on a cluster
    (:func:`~featurekit.extraction.distributed.run_jobs`); one progress bar over the rows decoded.
    """
    rows = len({i for _, batches, _ in jobs for a, b in batches for i in range(a, b)})
    desc = " + ".join(f.description for f, _, _ in jobs)
    with _bar(rows, desc, progress) as bar:
        _write(run_jobs(jobs, dataset, batch_size, on_error=writer.on_error, **where), writer, bar)


def _bar(total: int, desc: str, progress: bool):
    return tqdm(total=total, unit="img", desc=desc, disable=not progress or total == 0, dynamic_ncols=True,
                leave=True)


def _write(items, writer, bar) -> None:
    """Journal computed batches (or record skipped images); the bar counts each row once."""
    seen: set[int] = set()
    for start, stop, arrays in items:
        if isinstance(arrays, str):  # on_error="skip": this image could not be read or processed
            writer.skip({start: arrays})
        else:
            writer.write(start, stop, arrays)
        new = set(range(start, stop)) - seen
        seen |= new
        bar.update(len(new))


def _remember(cache: FeatureCache, layer_specs: list[LayerSpec], hand: list, requests: dict[str, str],
              featurizers: list, result: ExtractionResult, dtype: str) -> None:
    """Record how each request resolved (see :mod:`featurekit.extraction.memo`)."""
    by_key = {s.key: s for s in result.specs}
    answers = {}
    for model, key in requests.items():
        specs = [str(sp) for sp in layer_specs if sp.model == model]
        if not specs:
            continue
        keys = {sp: result.layer_keys[sp] for sp in specs}
        entries = [(k, by_key[k].entry_id) for sp in specs for k in keys[sp] if k in by_key]
        answers[key] = {"layer_keys": keys, "entries": [list(e) for e in dict.fromkeys(entries)]}
    # handcrafted featurizers come last, in the order of ``hand``
    for item, f in zip(hand, featurizers[len(featurizers) - len(hand):]):
        if isinstance(item, HandcraftedSpec):
            answers[hand_key(item, dtype)] = {"layer_keys": {}, "entries": [[s.key, s.entry_id] for s in f.specs]}
    if answers:
        ResolutionMemo(cache.path).record(answers)


def _fully_cached(meta: DatasetMeta, cache: FeatureCache, hand: list, requests: dict[str, str],
                  dtype: str, on_error: str) -> ExtractionResult | None:
    """The result of a run whose every entry is already in ``cache``, intact (nothing resolved or built), else None.

    ``requests`` maps each CNN model and handcrafted spec to its memo key;
    configured transformer objects are planned directly (their specs are cheap).
    """
    from featurekit.errors import CacheError

    if not cache.exists():
        return None
    memo = ResolutionMemo(cache.path)
    looked_up = [memo.lookup(key) for key in requests.values()]
    answers = [a for a in looked_up if a is not None]
    if len(answers) < len(looked_up):
        return None
    wanted: dict[tuple[str, str], EntrySpec | None] = {}
    layer_keys: dict[str, list[str]] = {}
    for answer in answers:
        layer_keys.update(answer["layer_keys"])
        wanted.update({(k, eid): None for k, eid in answer["entries"]})
    for item in hand:
        if not isinstance(item, HandcraftedSpec):
            from featurekit.extraction.texture import HandcraftedFeaturizer
            from featurekit.handcrafted import family_of

            hand_spec = HandcraftedFeaturizer(family_of(item), item, dtype).specs[0]
            wanted[(hand_spec.key, hand_spec.entry_id)] = hand_spec
    try:
        present = {(e.key, e.entry_id): e for e in cache.entries()}
    except CacheError:
        return None
    reused = []
    for (key, eid), spec in wanted.items():
        entry = present.get((key, eid))
        if entry is None:
            return None
        if spec is None:
            spec = EntrySpec(key, entry.params, int(entry.shape[1]), entry.dtype, dict(entry.attrs))
            if spec.entry_id != eid:  # params recorded differently: resolve in full
                return None
        reused.append(spec)
    if not cache.holds(meta, reused, allow_skipped=on_error == "skip"):  # bound to this data, every checksum
        return None
    return ExtractionResult(cache, reused=reused, layer_keys=layer_keys)
