"""One featurizer's batches, computed here or in shards on a Dask cluster.

:func:`run_featurizer` is what the extraction loop iterates on a cluster, one
featurizer after the other: ``(start, stop, {entry_id: rows})`` for every grid
batch the cache writer planned. (Locally the extraction loop runs all
featurizers of a run from one decoding pass instead,
:mod:`featurekit.extraction.decode`; on a cluster each featurizer's shards
decode their own images.) With the local executor it is exactly
:meth:`featurizer.run`. With a
:class:`~featurekit.executors.DaskExecutor` the batches are cut into *shards*
(whole batches, about ``shard_size`` rows each), one Dask task per shard:

- the dataset and the featurizer are scattered once to every worker; a worker
  builds the featurizer's model on its first shard and keeps it for the rest
  of the run (:meth:`CNNFeaturizer.load` memoises it in the worker's copy);
- a worker runs one shard at a time with all its threads
  (:func:`~featurekit.executors.exclusive_worker`): the hooks of the shared
  model must not interleave;
- finished shards stream back to the caller, whose single cache writer
  journals each batch as today, so the lock, crash safety and resume hold, and
  the batch grid -- hence every number -- is the one a local run uses. A
  worker that dies mid-shard: Dask runs the shard again elsewhere. Workers read
  images (and weights files) from their paths, so those must be on a file system
  every worker sees; the cache is written only by the caller.
- what a featurizer learns while computing (the sha256 of weights built on the
  worker, e.g. a random initialisation) is sent back with each shard and
  recorded in the caller's entry specs.

``pool="none"`` (full activation maps, megabytes per image and layer) is refused
on a cluster: every map would cross the network to the one writer.

Device on a worker: ``device="auto"`` is resolved by each worker (a GPU worker
uses its GPU, ``cuda:0`` of what ``CUDA_VISIBLE_DEVICES`` -- set per worker by
dask-cuda -- shows it); precision stays what the caller planned and recorded in
the entry (mixed precision only when the caller itself resolved to CUDA). A
worker decodes its shard's images in the task's thread, not in DataLoader
processes (Dask workers start processes with ``spawn``: each would import torch
afresh); more worker processes per machine decode in parallel.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

from featurekit.devices import torch_device
from featurekit.errors import ClusterError, DataError
from featurekit.executors import as_executor, exclusive_worker

__all__ = ["run_featurizer", "compute_batches", "plan_shards", "SHARDS_PER_WORKER", "MAX_SHARD_ROWS"]

#: default shards per worker thread: enough to balance uneven images, few enough to amortise set-up
SHARDS_PER_WORKER = 4
#: default upper bound of a shard's rows
MAX_SHARD_ROWS = 1024


def plan_shards(batches: Sequence[tuple[int, int]], shard_size: int | None = None,
                n_workers: int = 1) -> list[list[tuple[int, int]]]:
    """Consecutive grid batches grouped into shards of about ``shard_size`` rows.

    A shard is made of whole batches (so the batch grid, hence the journal and
    the results, are those of a local run). ``shard_size=None``: about
    :data:`SHARDS_PER_WORKER` shards per worker thread, at most
    :data:`MAX_SHARD_ROWS` rows each.
    """
    batches = list(batches)
    if not batches:
        return []
    total = sum(b - a for a, b in batches)
    if shard_size is None:
        shard_size = min(MAX_SHARD_ROWS, math.ceil(total / (SHARDS_PER_WORKER * max(1, n_workers))))
    if int(shard_size) < 1:
        raise ClusterError(f"shard_size must be a positive number of images, got {shard_size}")
    shards, current, rows = [], [], 0
    for a, b in batches:
        current.append((a, b))
        rows += b - a
        if rows >= shard_size:
            shards.append(current)
            current, rows = [], 0
    if current:
        shards.append(current)
    return shards


def _adopt_worker_device(featurizer, device_request: str) -> None:
    """On a worker: decode in the task's own thread; resolve ``device="auto"`` there."""
    if getattr(featurizer, "num_workers", 0):
        # Dask workers start processes with "spawn": a DataLoader process per shard would
        # import torch afresh (seconds). Decoding does not change the values.
        featurizer.num_workers = 0
    current = getattr(featurizer, "device", None)
    if current is None or str(device_request) != "auto" or current.type != "cpu":
        return
    here = torch_device("auto")  # this worker's own answer
    if here.type == "cuda":
        featurizer.device = here  # float32 as planned: featurizer.amp stays False


def compute_batches(featurizer, dataset, batches: Sequence[tuple[int, int]], specs,
                    on_error: str = "raise") -> Iterator[tuple[int, int, dict | str]]:
    """``featurizer.run`` over ``batches``, in order; with ``on_error="skip"`` a failing batch is redone
    image by image and each image that fails again is yielded as ``(i, i + 1, reason)``."""
    remaining = list(batches)
    while remaining:
        done = 0
        try:
            for item in featurizer.run(dataset, remaining, specs):
                yield item
                done += 1
            return
        except DataError:
            if on_error != "skip":
                raise
        start, stop = remaining[done]
        for i in range(start, stop):
            try:
                yield from featurizer.run(dataset, [(i, i + 1)], specs)
            except DataError as exc:
                yield i, i + 1, str(exc)
        remaining = remaining[done + 1:]


def _run_shard(batches, specs, device_request, on_error, featurizer, dataset):
    """Worker side: every batch of one shard, and the attributes the featurizer recorded."""
    with exclusive_worker():
        _adopt_worker_device(featurizer, device_request)
        out = list(compute_batches(featurizer, dataset, batches, specs, on_error))
    return out, {s.entry_id: dict(s.attrs) for s in featurizer.specs}


def run_featurizer(featurizer, dataset, batches: Sequence[tuple[int, int]], specs, *, executor=None,
                   shard_size: int | None = None, device: str = "auto",
                   on_error: str = "raise") -> Iterator[tuple[int, int, dict | str]]:
    """``featurizer.run(dataset, batches, specs)``, here or in shards on a cluster (module docstring).

    Parameters
    ----------
    featurizer : CNNFeaturizer or HandcraftedFeaturizer
    dataset : Dataset
    batches : list of (start, stop)
        The grid batches the cache writer planned.
    specs : list of EntrySpec
        The entries to compute.
    executor : None, "local", Executor or dask.distributed.Client
    shard_size : int, optional
        Rows per Dask task (rounded up to whole batches); default: see :func:`plan_shards`.
    device : str
        The device the caller asked for (``"auto"`` lets each worker pick its own).
    on_error : {"raise", "skip"}
        See :func:`compute_batches` (on a cluster, the worker redoes its failing batch).

    Yields
    ------
    (start, stop, {entry_id: ndarray}) or (i, i + 1, reason)
        In grid order locally; in the order shards finish on a cluster. A
        reason (str) in place of the rows: image ``i`` was skipped.
    """
    ex = as_executor(executor)
    if ex.is_local:
        yield from compute_batches(featurizer, dataset, batches, specs, on_error)
        return
    if getattr(featurizer, "pool", None) == "none":
        raise ClusterError(
            "pool='none' (full activation maps) is not extracted on a cluster: every map would travel to the "
            "one cache writer (vgg16 block3_conv2 alone is 3.2 MB per image). Use a pooled mode "
            "(gap, gmp, gapgmp, spp) or run this extraction with the local executor")
    shards = plan_shards(batches, shard_size, ex.n_workers)
    items = [(shard, list(specs), str(device), on_error) for shard in shards]
    by_id = {s.entry_id: s for s in getattr(featurizer, "specs", [])}
    for _, (results, attrs) in ex.stream(_run_shard, items, shared={"featurizer": featurizer, "dataset": dataset},
                                         name=getattr(featurizer, "description", "shard")):
        for entry_id, values in attrs.items():
            if entry_id in by_id:
                by_id[entry_id].attrs.update(values)
        yield from results
