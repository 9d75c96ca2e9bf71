"""Multiplicity-adjusted p-values: Holm (family-wise error) and Benjamini–Hochberg (false discovery rate).

A table of ``m`` pairwise tests read at level ``α`` finds "significant"
differences by chance alone far more often than ``α``. The adjusted p-values
here are compared with ``α`` directly:

* ``"holm"`` (default) -- Holm's step-down procedure controls the
  family-wise error rate (the chance of any false rejection) at ``α`` under
  any dependence between the tests (Holm 1979). With ``p_(1) ≤ … ≤ p_(m)``,
  ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j))``.
* ``"bh"`` -- Benjamini & Hochberg's step-up procedure controls the expected
  proportion of false rejections among the rejections (false discovery rate)
  for independent or positively dependent tests (Benjamini & Hochberg 1995):
  ``p̃_(i) = min_{j ≥ i} min(1, m·p_(j) / j)``
  (:func:`scipy.stats.false_discovery_control`).
* ``None`` / ``"none"`` -- no adjustment.

The family is the set of finite p-values passed in one call; nan p-values (a
test that could not be made) stay nan and do not count in ``m``.

References
----------
Holm S. A simple sequentially rejective multiple test procedure. Scand J Stat
1979;6:65-70.

Benjamini Y, Hochberg Y. Controlling the false discovery rate: a practical and
powerful approach to multiple testing. J R Stat Soc B 1995;57:289-300.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import false_discovery_control

from featurekit.errors import DataError

__all__ = ["ADJUSTMENTS", "check_adjust", "adjust_pvalues"]

#: accepted ``adjust`` values -> canonical method name ("" = none)
ADJUSTMENTS = {"holm": "holm", "bh": "bh", "fdr_bh": "bh", "none": "", "": "", None: ""}


def check_adjust(adjust: Any) -> str:
    """The canonical name of an ``adjust`` option: ``"holm"``, ``"bh"`` or ``""`` (none)."""
    key = adjust.lower() if isinstance(adjust, str) else adjust
    if key not in ADJUSTMENTS:
        raise DataError(f"adjust must be 'holm', 'bh' or None, got {adjust!r}")
    return ADJUSTMENTS[key]


def _holm(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p, kind="mergesort")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.maximum.accumulate(stepped)
    return out


def adjust_pvalues(p_values: Any, method: Any = "holm") -> tuple[np.ndarray, int]:
    """Multiplicity-adjusted p-values of one family of tests.

    Parameters
    ----------
    p_values : array-like of shape (m,)
        Raw p-values; nan entries are kept as nan and are not part of the family.
    method : {"holm", "bh", None}, default="holm"
        See the module docstring (``"fdr_bh"`` and ``"none"`` are accepted too).

    Returns
    -------
    adjusted : ndarray of shape (m,)
    family_size : int
        The number of finite p-values adjusted together.
    """
    method = check_adjust(method)
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    finite = np.isfinite(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise DataError("p-values must lie in [0, 1]")
    out = p.copy()
    m = int(finite.sum())
    if m and method == "holm":
        out[finite] = _holm(p[finite])
    elif m and method == "bh":
        out[finite] = false_discovery_control(p[finite], method="bh")
    return out, m
