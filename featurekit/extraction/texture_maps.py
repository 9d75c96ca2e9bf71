"""The handcrafted counterpart of the layer maps: where a Gabor filter bank's response energy lies.

Gabor features are statistics of the bank's responses over the image (or the
mask pixels). The response energy ``Σ_filters |I * g|²`` at a pixel says how
much that pixel weighs in those statistics, so its share inside the lesion
(:func:`featurekit.evaluation.stats.lesion_energy.lesion_energy`) is the handcrafted
counterpart of a layer map's lesion energy -- defined when the features are
computed on the whole image (with ``--roi mask`` the crop is mostly lesion).

Maps are on the native image (the handcrafted families see it unresized),
averaged over a :data:`GRID` of near-equal cells, and so is the lesion mask
(its share of each cell, ``-1`` for an image without a lesion region). Both
are entries of the maps' cache (``gabor/energy``, whose id hashes the bank;
``lesion/native-32x32``), bound to the data and verified on every read. No
torch: responses come from :func:`featurekit.handcrafted.gabor.gabor_response`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from featurekit.cache import DatasetMeta, EntrySpec, FeatureCache
from featurekit.extraction.maps import NO_LESION, MapResult, maps_cache_path, store_entries
from featurekit.handcrafted.gabor import DEFAULT_FREQUENCIES, gabor_bank, gabor_response
from featurekit.io import version_attrs

__all__ = ["GRID", "cell_means", "gabor_energy", "gabor_maps"]

#: cells of a native-image map (rows, columns)
GRID = (32, 32)


def cell_means(a: np.ndarray, grid: tuple[int, int] = GRID) -> np.ndarray:
    """Means of ``a`` (H, W) over a grid of near-equal cells (``np.linspace`` edges); H, W >= the grid."""
    a = np.asarray(a, dtype=np.float64)
    rows = np.linspace(0, a.shape[0], grid[0] + 1).astype(int)
    cols = np.linspace(0, a.shape[1], grid[1] + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(a, rows[:-1], axis=0), cols[:-1], axis=1)
    return sums / np.outer(np.diff(rows), np.diff(cols))


def gabor_energy(image: np.ndarray, bank: Sequence[tuple]) -> np.ndarray:
    """``Σ |I * g|²`` over the filters ``(frequency, theta, sigma, half_size)`` of a :func:`gabor_bank`."""
    energy = None
    for frequency, theta, sigma, _ in bank:
        r = gabor_response(image, frequency, theta, sigma=sigma, dtype="float32")
        e = r.real ** 2 + r.imag ** 2
        energy = e if energy is None else energy + e
    if energy is None:
        raise ValueError("the Gabor bank has no filter")
    return energy


def gabor_maps(dataset, *, frequencies: Sequence[float] = DEFAULT_FREQUENCIES, orientations=8,
               cache=None, lock_timeout: float | None = 600.0) -> MapResult:
    """Gabor response-energy maps and lesion grids of every image of ``dataset`` (cached).

    Returns a :class:`~featurekit.extraction.maps.MapResult` with one "layer", ``gabor``
    (model ``gabor``, kind ``energy``).
    """
    bank = gabor_bank(frequencies, orientations)
    params = {"family": "map", "kind": "energy", "model": "gabor", "grid": list(GRID),
              "bank": [[float(f), float(t), float(s)] for f, t, s, _ in bank]}
    energy = EntrySpec("gabor/energy", params, GRID[0] * GRID[1], "float32", version_attrs())
    lesion = EntrySpec(f"lesion/native-{GRID[0]}x{GRID[1]}", {"family": "lesion", "geometry": "native",
                                                               "grid": list(GRID)},
                       GRID[0] * GRID[1], "float32", version_attrs())
    store = cache if isinstance(cache, FeatureCache) else FeatureCache(cache or maps_cache_path(dataset))

    def compute(todo, writer):
        want = {s.entry_id for s in todo}
        for start, stop in writer.plan(todo, 8):
            arrays = {energy.entry_id: [], lesion.entry_id: []}
            for i in range(start, stop):
                sample = dataset[i]
                arrays[energy.entry_id].append(cell_means(gabor_energy(sample.image, bank)).ravel())
                m = sample.mask
                arrays[lesion.entry_id].append(
                    cell_means(m).ravel() if m is not None and m.any() else np.full(energy.dim, NO_LESION))
            writer.write(start, stop, {k: np.stack(v) for k, v in arrays.items() if k in want})

    computed, reused = store_entries(store, DatasetMeta.from_dataset(dataset), [energy, lesion], compute,
                                     lock_timeout)
    maps = store.get(energy.key, entry_id=energy.entry_id).reshape(-1, *GRID)
    les = store.get(lesion.key, entry_id=lesion.entry_id).reshape(-1, *GRID)
    return MapResult("gabor", "energy", [], {"gabor": maps}, {"gabor": np.where(les < 0, np.nan, les)}, store,
                     computed, reused, entries={"gabor": (energy.key, energy.entry_id)})
