"""A run's featurizers computed here or, in shards of grid cells, on a Dask cluster.

:func:`run_jobs` is what the extraction loop iterates: ``(start, stop,
{entry_id: rows})`` for every grid batch the cache writer planned, for every
featurizer of the run. With the local executor it is exactly
:func:`~featurekit.extraction.decode.run_together` (one decoding pass feeding
every featurizer). With a :class:`~featurekit.executors.DaskExecutor` the grid
cells of that pass (:func:`~featurekit.extraction.decode.plan_cells`) are cut
into *shards* (whole cells, about ``shard_size`` rows each), one Dask task per
shard, and each task runs the same decoding pass over its cells:

- every featurizer of the run computes its batches of the shard's cells from
  one decoding of each image, as locally: a cluster decodes no more than a
  local run does, and each featurizer sees exactly the batches a local run
  gives it, so every number is the local one, bit for bit;
- the dataset and the featurizers go to each worker once (the output of one
  task every shard depends on, computed again if every worker holding it dies:
  :meth:`~featurekit.executors.DaskExecutor.stream`); a worker builds a model
  on its first shard and keeps it for the rest of the run (and frees it when
  the run ends), beside the shared featurizers, which stay as the caller sent
  them (Dask may copy them between workers at any time: :func:`_task_featurizers`);
- a worker runs one shard at a time with all its threads
  (:func:`~featurekit.executors.exclusive_worker`): the hooks of a shared model
  must not interleave;
- finished shards stream back to the caller, whose single cache writer
  journals each batch as in a local run, so the lock, crash safety and resume hold. A
  worker that dies mid-shard: Dask runs the shard again elsewhere. Workers read
  images (and weights files) from their paths, so those must be on a file
  system every worker sees; the cache is written only by the caller;
- ``on_error="skip"`` is decided on the worker, cell by cell, as locally (a
  failing batch is redone image by image; the featurizers after it leave the
  bad image out);
- what a featurizer learns while computing (the sha256 of weights built on the
  worker, e.g. a random initialisation) is sent back with each shard and
  recorded in the caller's entry specs.

``pool="none"`` (full activation maps, megabytes per image and layer) is refused
on a cluster: every map would cross the network to the single writer.

Device on a worker: ``device="auto"`` is resolved by each worker (a GPU worker
uses its GPU, ``cuda:0`` of what ``CUDA_VISIBLE_DEVICES`` -- set per worker by
dask-cuda -- shows it); precision stays what the caller planned and recorded in
the entry (mixed precision only when the caller itself resolved to CUDA). A
worker decodes its shard's images in the task's thread, not in DataLoader
processes (Dask workers start processes with ``spawn``: each would import torch
afresh); more worker processes per machine decode in parallel.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import uuid
from typing import Iterator, Sequence

from featurekit.devices import torch_device
from featurekit.errors import ClusterError
from featurekit.executors import as_executor, exclusive_worker
from featurekit.extraction.decode import Cell, plan_cells, run_together

__all__ = ["run_jobs", "plan_shards", "shard_cells", "SHARDS_PER_WORKER", "MAX_SHARD_ROWS"]

#: default shards per worker thread: enough to balance uneven images, few enough to amortise set-up
SHARDS_PER_WORKER = 4
#: default upper bound of a shard's rows
MAX_SHARD_ROWS = 1024


def _group(sizes: Sequence[int], shard_size: int | None, n_workers: int) -> list[list[int]]:
    """Consecutive item indices grouped into about ``shard_size`` rows each: a group is closed when it reaches
    ``shard_size``, or before an item that would take it further past than it falls short."""
    total = sum(sizes)
    if shard_size is None:
        shard_size = min(MAX_SHARD_ROWS, math.ceil(total / (SHARDS_PER_WORKER * max(1, n_workers))))
    if int(shard_size) < 1:
        raise ClusterError(f"shard_size must be a positive number of images, got {shard_size}")
    groups: list[list[int]] = []
    current: list[int] = []
    rows = 0
    for k, size in enumerate(sizes):
        if current and rows + size - shard_size > shard_size - rows:
            groups.append(current)
            current, rows = [], 0
        current.append(k)
        rows += size
        if rows >= shard_size:
            groups.append(current)
            current, rows = [], 0
    if current:
        groups.append(current)
    return groups


def plan_shards(batches: Sequence[tuple[int, int]], shard_size: int | None = None,
                n_workers: int = 1) -> list[list[tuple[int, int]]]:
    """Consecutive grid batches grouped into shards of about ``shard_size`` rows (the nearest whole batches).

    A shard is made of whole batches (so the batch grid, hence the journal and
    the results, are those of a local run). ``shard_size=None``: about
    :data:`SHARDS_PER_WORKER` shards per worker thread, at most
    :data:`MAX_SHARD_ROWS` rows each.
    """
    batches = list(batches)
    return [[batches[k] for k in group] for group in _group([b - a for a, b in batches], shard_size, n_workers)]


def shard_cells(cells: Sequence[Cell], shard_size: int | None = None, n_workers: int = 1) -> list[list[Cell]]:
    """Consecutive grid cells grouped into shards of about ``shard_size`` decoded rows (as :func:`plan_shards`)."""
    cells = list(cells)
    return [[cells[k] for k in group] for group in _group([len(c.rows) for c in cells], shard_size, n_workers)]


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


#: this worker's models of the current run: (run token, featurizer index) -> LoadedModel
_WORKER_MODELS: dict = {}


def _task_featurizers(featurizers, token: str) -> list:
    """This task's copies of the shared featurizers, with the models this worker built for the run.

    The shared objects themselves are never changed on a worker: Dask may copy them to another
    worker at any time (its active memory manager drops surplus replicas; a worker that lacks one
    fetches it from a peer), and a copy taken from an object holding a model would carry the model
    (hundreds of MB) and the forward hooks of an extraction running with it -- hooks that would then
    fire, and stop the forward pass, inside the other worker's extraction.
    """
    for key in [key for key in _WORKER_MODELS if key[0] != token]:  # one run's models at a time
        del _WORKER_MODELS[key]
    copies = []
    for k, f in enumerate(featurizers):
        f = copy.copy(f)
        # what the copy records (the hash of the weights it builds) goes into specs of its own
        f.specs = [dataclasses.replace(s, attrs=dict(s.attrs)) for s in f.specs]
        if hasattr(f, "loaded"):
            f.loaded = _WORKER_MODELS.get((token, k))  # load() records its hash in the copy's specs
        copies.append(f)
    return copies


def _run_shard(batches, specs, batch_size, device_request, on_error, token, featurizers, dataset):
    """Worker side: one decoding pass over the shard's cells for every featurizer, and what they recorded.

    ``batches[k]``, ``specs[k]``: featurizer ``k``'s batches in this shard and the entries to compute;
    ``token``: the run (the worker keeps its models for the run's later shards).
    """
    with exclusive_worker():
        featurizers = _task_featurizers(featurizers, token)
        for f in featurizers:
            _adopt_worker_device(f, device_request)
        jobs = list(zip(featurizers, batches, specs))
        out = list(run_together(dataset, jobs, batch_size, on_error=on_error))
        for k, f in enumerate(featurizers):
            if getattr(f, "loaded", None) is not None:
                _WORKER_MODELS[(token, k)] = f.loaded
    return out, {s.entry_id: dict(s.attrs) for f in featurizers for s in f.specs}


def run_jobs(jobs: Sequence[tuple], dataset, batch_size: int, *, executor=None, shard_size: int | None = None,
             device: str = "auto", on_error: str = "raise") -> Iterator[tuple[int, int, dict | str]]:
    """Every job's batches, here or in shards on a cluster (module docstring).

    Parameters
    ----------
    jobs : list of (featurizer, batches, specs)
        Each featurizer with the grid batches the cache writer planned for it and the entries to compute.
    dataset : Dataset
    batch_size : int
        The writer's grid.
    executor : None, "local", Executor or dask.distributed.Client
    shard_size : int, optional
        Rows per Dask task (rounded up to whole grid cells); default: see :func:`plan_shards`.
    device : str
        The device the caller asked for (``"auto"`` lets each worker pick its own).
    on_error : {"raise", "skip"}
        See :func:`~featurekit.extraction.decode.run_together`.

    Yields
    ------
    (start, stop, {entry_id: ndarray}) or (i, i + 1, reason)
        In grid order here; in the order shards finish on a cluster. A
        reason (str) in place of the rows: image ``i`` was skipped.
    """
    ex = as_executor(executor)
    if ex.is_local:
        yield from run_together(dataset, jobs, batch_size, on_error=on_error)
        return
    jobs = [(f, list(batches), list(specs)) for f, batches, specs in jobs if batches and specs]
    if not jobs:
        return
    if any(getattr(f, "pool", None) == "none" for f, _, _ in jobs):
        raise ClusterError(
            "pool='none' (full activation maps) is not extracted on a cluster: every map would travel to the "
            "one cache writer (vgg16 block3_conv2 alone is 3.2 MB per image). Use a pooled mode "
            "(gap, gmp, gapgmp, spp) or run this extraction with the local executor")
    featurizers = [f for f, _, _ in jobs]
    # which featurizers take decoded arrays only matters to the decoding itself: here only the cells' rows count
    cells = plan_cells([b for _, b, _ in jobs], batch_size, [False] * len(jobs))
    items, token = [], uuid.uuid4().hex
    for shard in shard_cells(cells, shard_size, ex.n_workers):
        per_job = [[batch for cell in shard for batch in cell.batches[k]] for k in range(len(jobs))]
        items.append((per_job, [specs for _, _, specs in jobs], batch_size, str(device), on_error, token))
    by_id = {s.entry_id: s for f in featurizers for s in getattr(f, "specs", [])}
    name = " + ".join(getattr(f, "description", "shard") for f in featurizers)
    try:
        for _, (results, attrs) in ex.stream(_run_shard, items, shared={"featurizers": featurizers,
                                                                         "dataset": dataset}, name=name):
            for entry_id, values in attrs.items():
                if entry_id in by_id:
                    by_id[entry_id].attrs.update(values)
            yield from results
    finally:
        _forget_run(ex, token)


def _drop_models(token: str) -> int:
    """Worker side: drop the run's models (returns how many)."""
    keys = [key for key in _WORKER_MODELS if key[0] == token]
    for key in keys:
        del _WORKER_MODELS[key]
    return len(keys)


def _forget_run(ex, token: str) -> None:
    """The run is over: its workers free its models (best effort: a worker that is gone holds none)."""
    client = getattr(ex, "client", None)
    if client is not None:
        with contextlib.suppress(Exception):
            client.run(_drop_models, token)
