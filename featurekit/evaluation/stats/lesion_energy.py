"""Evidence on the lesion: the share of a map's positive energy inside the lesion region.

The score of one image (an energy-based pointing game, Wang et al., Score-CAM,
CVPRW 2020) is

    E = Σ m · max(a, 0)  /  Σ max(a, 0)

with ``a`` the map (an activation or class-activation map on the layer's
grid) and ``m`` the lesion's share of each grid cell, in [0, 1] (the mask or
MIAS circle carried through the model's own resize and crop, then averaged
over each cell). A map equal to a (cell-aligned) lesion mask scores 1; a
uniform map scores the lesion's area fraction, the chance level a map that
ignores the lesion reaches. A map with no positive value has no evidence to
place: its score is undefined (NaN) and it is left out of the means.

The summary is the mean score per class with a bootstrap interval over the
independent unit: duplicate groups (``--group-duplicates``) or patients when
the data have groups, images otherwise (the same rule and BCa interval as the
metrics, :mod:`featurekit.evaluation.stats.unit_bootstrap`). The chance level (the
mean area fraction of the same images) is reported beside it.

No torch here: maps and lesion grids are NumPy arrays.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from featurekit.errors import DataError
from featurekit.evaluation.stats.intervals import bca_interval, check_confidence
from featurekit.evaluation.stats.unit_bootstrap import jackknife_weights, unit_codes, unit_weights

__all__ = ["lesion_energy", "energy_summary", "ENERGY_COLUMNS"]

#: columns of :func:`energy_summary` (one row per layer and class; class "all" pools the classes)
ENERGY_COLUMNS = ["model", "layer", "layer_index", "kind", "class", "n", "lesion_energy", "ci_lo", "ci_hi",
                  "ci_method", "area_fraction", "units"]


def lesion_energy(maps: Any, lesion: Any) -> np.ndarray:
    """Per-image share of each map's positive energy inside the lesion.

    Parameters
    ----------
    maps : array of shape (N, H, W)
    lesion : array of shape (N, H, W)
        The lesion's share of each cell, in [0, 1] (a binary mask is a special case).

    Returns
    -------
    ndarray of shape (N,)
        In [0, 1]; NaN where a map has no positive value.
    """
    a = np.asarray(maps, dtype=np.float64)
    m = np.asarray(lesion, dtype=np.float64)
    if a.ndim != 3 or a.shape != m.shape:
        raise DataError(f"maps {a.shape} and lesion grids {m.shape} must both be (N, H, W) and equal")
    if m.size and (np.nanmin(m) < 0 or np.nanmax(m) > 1):
        raise DataError("lesion grids must hold the lesion's share of each cell, in [0, 1]")
    pos = np.clip(np.nan_to_num(a, nan=0.0), 0.0, None)
    total = pos.sum(axis=(1, 2))
    inside = (pos * m).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)


def _mean_interval(scores: np.ndarray, units: np.ndarray, n_boot: int, seed: int,
                   confidence: float) -> tuple[float, float, float, str]:
    """Mean of ``scores`` and its BCa interval, resampling whole units (each with all its images)."""
    codes, n_units = unit_codes(units)
    sums = np.bincount(codes, weights=scores, minlength=n_units)
    counts = np.bincount(codes, minlength=n_units).astype(np.float64)
    est = float(sums.sum() / counts.sum())
    if n_units < 2 or n_boot <= 0:
        return est, float("nan"), float("nan"), "none"
    rng = np.random.default_rng(seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = np.concatenate([(w @ sums) / (w @ counts) for w in unit_weights(n_units, n_boot, rng)])
        jack = np.concatenate([(w @ sums) / (w @ counts) for w in jackknife_weights(n_units)])
    lo, hi, is_bca = bca_interval(reps, est, jack, confidence)
    return est, float(lo), float(hi), "bca" if bool(is_bca) else "percentile"


def energy_summary(scores: Any, labels: Any, area: Any, *, groups: Any = None,
                   ids: Sequence[str] | None = None, n_boot: int = 2000, seed: int = 0,
                   confidence: float = 0.95, **row: Any) -> pd.DataFrame:
    """Mean lesion energy per class (and over all images) with its bootstrap interval.

    Parameters
    ----------
    scores : array of shape (N,)
        :func:`lesion_energy` of each image (NaN: left out).
    labels : sequence or array of str
        Class name of each image.
    area : array of shape (N,)
        Each image's lesion area fraction on the grid (the chance level of a uniform map).
    groups : array of shape (N,), optional
        The independent unit of each image (patient / duplicate group); images otherwise.
    ids : sequence of str, optional
        Image ids (the units when there are no groups; default: positions).
    n_boot, seed, confidence :
        Bootstrap replicates (0: no interval), their seed, the interval's level.
    **row :
        Columns repeated on every row (``model``, ``layer``, ``layer_index``, ``kind``).

    Returns
    -------
    DataFrame with :data:`ENERGY_COLUMNS`, classes in order of appearance, then ``all``.
    """
    check_confidence(confidence)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    a = np.asarray(area, dtype=np.float64).reshape(-1)
    lab = np.asarray([str(v) for v in labels], dtype=object)
    if not (len(s) == len(a) == len(lab)):
        raise DataError(f"scores ({len(s)}), areas ({len(a)}) and labels ({len(lab)}) differ in length")
    if groups is not None:
        units, unit_name = np.asarray(groups).astype(str), "groups"
    else:
        units = np.asarray([str(v) for v in (ids if ids is not None else range(len(s)))], dtype=object)
        unit_name = "images"
    out = []
    for name in list(dict.fromkeys(lab)) + ["all"]:
        keep = np.isfinite(s) & ((lab == name) if name != "all" else True)
        base = {**{c: row.get(c, "") for c in ("model", "layer", "layer_index", "kind")}, "class": name,
                "n": int(keep.sum()), "units": unit_name}
        if not keep.any():
            out.append({**base, "lesion_energy": np.nan, "ci_lo": np.nan, "ci_hi": np.nan, "ci_method": "none",
                        "area_fraction": np.nan})
            continue
        est, lo, hi, method = _mean_interval(s[keep], units[keep], n_boot, seed, confidence)
        out.append({**base, "lesion_energy": est, "ci_lo": lo, "ci_hi": hi, "ci_method": method,
                    "area_fraction": float(np.mean(a[keep]))})
    return pd.DataFrame(out, columns=ENERGY_COLUMNS)
