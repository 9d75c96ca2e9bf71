"""One decoding pass over a run's batch grid, feeding every featurizer of the run.

Decoding an image (a BUSI PNG: ~5 ms) can cost more than its features (GLCM:
~1 ms). :func:`run_together` decodes each row of a run once and hands the
decoded arrays to every featurizer that needs the row:

- the featurizers keep the batches the cache writer planned for each of them
  (``writer.plan``: cuts of the grid ``k * batch_size``, so a featurizer that
  lacks fewer rows -- resume, row reuse -- is asked for fewer); the pass walks
  the grid cell by cell and decodes the union of the rows the cell's batches
  need, each once (image, mask and region of interest: ``dataset[i]``);
- a featurizer with an *input transform* (a CNN: resize and normalise for its
  model) gets its batches as stacked inputs, transformed beside the decoding in
  the DataLoader worker processes (as many as the CNN featurizers ask for,
  ``num_workers``); a featurizer without one (the handcrafted families) gets
  the decoded image and mask arrays. Memory: the cells in flight (one per
  worker, plus the DataLoader's prefetch), never the whole dataset;
- every featurizer computes on exactly the batches a run of its own would see,
  so the values are those of separate runs, bit for bit;
- errors: an image that cannot be decoded (or transformed) fails every batch
  that holds it. ``on_error="raise"`` raises its :class:`DataError` (naming
  the file); ``on_error="skip"`` redoes the failing batch image by image and reports
  the bad image as ``(i, i + 1, reason)``. A file that changed since the run
  took its content hash (:class:`~featurekit.errors.DataChangedError`) is no bad
  image: the pass stops before the cell that holds it, with either setting.

On a Dask cluster each task runs this pass over a shard of the cells
(:mod:`featurekit.extraction.distributed`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from typing import Iterator, Sequence

from featurekit.errors import DataChangedError, DataError, FeaturekitError

__all__ = ["Cell", "plan_cells", "CellDecoder", "run_together", "stack_of"]

Batch = tuple[int, int]


@dataclass(frozen=True)
class Cell:
    """One grid cell of a run: the rows to decode, each featurizer's batches in it, the rows whose arrays return."""

    rows: tuple[int, ...]
    batches: tuple[tuple[Batch, ...], ...]  # per featurizer (in run order)
    keep: tuple[int, ...]  # rows a featurizer without input transform needs as arrays


def plan_cells(plans: Sequence[Sequence[Batch]], batch_size: int, wants_arrays: Sequence[bool]) -> list[Cell]:
    """The grid cells (``k * batch_size``) that hold some featurizer's batches, in grid order.

    ``plans[k]`` are featurizer ``k``'s batches (each inside one cell, as
    ``writer.plan`` cuts them); ``wants_arrays[k]``: featurizer ``k`` takes
    decoded arrays (no input transform).
    """
    by_cell: dict[int, list[list[Batch]]] = {}
    for k, batches in enumerate(plans):
        for a, b in batches:
            if (b - 1) // batch_size != a // batch_size:
                raise ValueError(f"batch {a}:{b} crosses the grid of {batch_size} rows")
            by_cell.setdefault(a // batch_size, [[] for _ in plans])[k].append((a, b))
    cells = []
    for c in sorted(by_cell):
        parts = by_cell[c]
        rows = sorted({i for part in parts for a, b in part for i in range(a, b)})
        keep = sorted({i for k, part in enumerate(parts) if wants_arrays[k] for a, b in part for i in range(a, b)})
        cells.append(Cell(tuple(rows), tuple(tuple(p) for p in parts), tuple(keep)))
    return cells


def stack_of(transform):
    """How a batch of ``transform``'s outputs is stacked: its own ``stack`` (device preprocessing keeps
    images of several sizes as a list, :mod:`featurekit.extraction.device_preprocess`), else ``torch.stack``."""
    stack = getattr(transform, "stack", None)
    if stack is None:
        import torch

        stack = torch.stack
    return stack


class CellDecoder:
    """Decodes one cell: each row once, then each featurizer's transform per batch (runs in DataLoader workers).

    Returns ``{"arrays": {row: (image, mask)}, "errors": {row: reason}, "inputs": [per featurizer: None, or per
    batch ``(x, {})`` with ``x`` the stacked inputs, or ``({row: input}, {row: reason})`` when some row failed]}``.
    """

    def __init__(self, dataset, transforms: Sequence, masks: bool):
        self.dataset, self.transforms, self.masks = dataset, list(transforms), bool(masks)

    def _decode(self, i: int):
        if self.masks:
            sample = self.dataset[i]  # image and mask from one decode
            return sample.image, sample.mask
        return self.dataset.image(i), None

    def __call__(self, cell: Cell) -> dict:
        arrays, errors = {}, {}
        for i in cell.rows:
            try:
                arrays[i] = self._decode(i)
            except DataChangedError as exc:  # not a bad image: the run stops (here or in a worker) at this cell
                return {"changed": str(exc)}
            except FeaturekitError as exc:
                errors[i] = str(exc)
        inputs = []
        for transform, batches in zip(self.transforms, cell.batches):
            inputs.append(None if transform is None else [self._inputs(transform, arrays, errors, a, b)
                                                          for a, b in batches])
        return {"arrays": {i: arrays[i] for i in cell.keep if i in arrays}, "errors": errors, "inputs": inputs}

    @staticmethod
    def _inputs(transform, arrays, errors, a, b):
        xs, failed = {}, {}
        for i in range(a, b):
            if i in errors:
                failed[i] = errors[i]
                continue
            try:
                xs[i] = transform(arrays[i][0])
            except FeaturekitError as exc:
                failed[i] = str(exc)
        return (xs, failed) if failed else (stack_of(transform)([xs[i] for i in range(a, b)]), {})


class _Cells:
    """The cells as a map-style dataset (what a DataLoader indexes)."""

    def __init__(self, decoder: CellDecoder, cells: Sequence[Cell]):
        self.decoder, self.cells = decoder, list(cells)

    def __len__(self) -> int:
        return len(self.cells)

    def __getitem__(self, k: int) -> dict:
        return self.decoder(self.cells[k])


def _same(item):
    return item


class _DieWithParent:
    """A DataLoader ``worker_init_fn``: the worker is killed when the process that started it dies.

    Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, so a killed ``extract`` leaves no
    worker decoding for nobody (torch's own check runs only between items);
    an extracting process already gone when the worker starts ends it at once. Elsewhere:
    torch's check only.
    """

    def __init__(self):
        self.parent = os.getpid()

    def __call__(self, worker_id: int) -> None:
        if sys.platform.startswith("linux"):
            import ctypes

            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        try:
            os.kill(self.parent, 0)  # the extracting process (not always the direct parent: forkserver)
        except ProcessLookupError:
            os._exit(1)
        except OSError:
            pass


def _decoded(decoder: CellDecoder, cells: list[Cell], workers: int, pin: bool) -> Iterator[dict]:
    """The decoded cells in order: in ``workers`` DataLoader processes (ending with this one), or here when 0."""
    if not workers:
        return map(decoder, cells)
    import torch

    # _Cells is a map-style dataset by duck typing (subclassing torch's Dataset would import torch with
    # this module); torch annotates the argument as a Dataset
    return iter(torch.utils.data.DataLoader(_Cells(decoder, cells),  # type: ignore[arg-type]
                                            batch_size=None, shuffle=False,
                                            num_workers=workers, collate_fn=_same, pin_memory=pin,
                                            persistent_workers=False, worker_init_fn=_DieWithParent()))


def _batch_input(decoded: dict, k: int, j: int, a: int, b: int, stack):
    """Featurizer ``k``'s ``j``-th batch ``a:b`` of the cell: ``take(start, stop)`` (the input of consecutive
    rows of it) and ``{row: reason}`` for its rows that failed to decode or transform; ``stack``: how
    featurizer ``k`` stacks its inputs (:func:`stack_of`; None for one that takes arrays)."""
    inputs = decoded["inputs"][k]
    if inputs is None:
        arrays = decoded["arrays"]
        failed = {i: decoded["errors"][i] for i in range(a, b) if i in decoded["errors"]}
        return lambda s, e: ([arrays[i][0] for i in range(s, e)], [arrays[i][1] for i in range(s, e)]), failed
    x, failed = inputs[j]
    if failed:
        return lambda s, e: stack([x[i] for i in range(s, e)]), failed
    return lambda s, e: x[s - a:e - a], {}


def _cut(a: int, b: int, skipped: set) -> list[Batch]:
    """``a:b`` without the rows skipped so far, in runs: what ``writer.plan`` gives a featurizer planned later."""
    out, start = [], None
    for i in range(a, b + 1):
        if i < b and i not in skipped:
            start = i if start is None else start
        elif start is not None:
            out.append((start, i))
            start = None
    return out


def _batch(compute, take, failed: dict, a: int, b: int, on_error: str):
    """One batch, or (``on_error="skip"``, it fails) image by image, as a run of this featurizer alone."""
    failed = {i: why for i, why in failed.items() if a <= i < b}
    if failed and on_error != "skip":
        raise DataError(failed[min(failed)])
    if not failed:
        try:
            out = compute(a, take(a, b))
        except DataError:
            if on_error != "skip":
                raise
        else:
            yield a, b, out
            return
    for i in range(a, b):
        if i in failed:
            yield i, i + 1, failed[i]
            continue
        try:
            out = compute(i, take(i, i + 1))
        except DataError as exc:
            yield i, i + 1, str(exc)
        else:
            yield i, i + 1, out


def run_together(dataset, jobs: Sequence[tuple], batch_size: int,
                 on_error: str = "raise") -> Iterator[tuple[int, int, dict | str]]:
    """Every job's batches from one decoding pass (module docstring).

    Parameters
    ----------
    dataset : Dataset
    jobs : list of (featurizer, batches, specs)
        Each featurizer with the batches the cache writer planned for it and the entries to compute.
    batch_size : int
        The writer's grid.
    on_error : {"raise", "skip"}

    Yields
    ------
    (start, stop, {entry_id: ndarray}) or (i, i + 1, reason)
        Cell by cell, in grid order, featurizer by featurizer in a cell; a reason (str): image ``i`` was
        skipped, and the featurizers after it leave it out of their batches (as if planned after it).
    """
    jobs = [(f, list(batches), list(specs)) for f, batches, specs in jobs if batches and specs]
    if not jobs:
        return
    with contextlib.ExitStack() as stack:
        computes = [stack.enter_context(f.session(dataset, batches, specs)) for f, batches, specs in jobs]
        transforms = [f.input_transform() for f, _, _ in jobs]
        # how each CNN stacks its inputs (none for the handcrafted families: they need no torch)
        stacks = [None if t is None else stack_of(t) for t in transforms]
        cells = plan_cells([b for _, b, _ in jobs], batch_size, [t is None for t in transforms])
        decoder = CellDecoder(dataset, transforms, masks=any(t is None for t in transforms))
        workers = max((getattr(f, "num_workers", 0) for (f, _, _), t in zip(jobs, transforms) if t is not None),
                      default=0)
        pin = any(getattr(getattr(f, "device", None), "type", "") == "cuda" for f, _, _ in jobs)
        for cell, decoded in zip(cells, _decoded(decoder, cells, workers, pin)):
            if "changed" in decoded:
                raise DataChangedError(decoded["changed"])
            skipped: set[int] = set()
            for k, compute in enumerate(computes):
                for j, (a, b) in enumerate(cell.batches[k]):
                    take, failed = _batch_input(decoded, k, j, a, b, stacks[k])
                    for start, stop in _cut(a, b, skipped):
                        for item in _batch(compute, take, failed, start, stop, on_error):
                            if isinstance(item[2], str):
                                skipped.add(item[0])
                            yield item
