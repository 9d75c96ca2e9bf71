"""Validation of the parameters several handcrafted families share by meaning.

``features`` (a family's feature names, ``'all'`` or a list) and ``spacing``
(the pixel size, for physical units): the first-order, shape and texture
families read them alike, so they are checked alike.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from featurekit.errors import DataError

__all__ = ["check_features", "check_spacing", "prefixed"]


def check_features(features, table: Sequence[str], family: str) -> Tuple[str, ...]:
    """``'all'`` or a list of names of ``table`` (in the given order) -> tuple of names."""
    if isinstance(features, str):
        if features == "all":
            return tuple(table)
        features = (features,)
    try:
        feats = tuple(features)
    except TypeError:
        raise DataError(f"{family} features must be 'all' or a list of names, got {features!r}") from None
    unknown = [f for f in feats if f not in table]
    if unknown or not feats or len(set(feats)) != len(feats):
        raise DataError(f"{family} features must be 'all' or distinct names from {', '.join(table)}; "
                        f"got {features!r}")
    return feats


def prefixed(family: str, names: Sequence[str]) -> List[str]:
    """Output column names ``<family>_<name>``."""
    return [f"{family}_{f}" for f in names]


def check_spacing(spacing) -> Tuple[float, float]:
    """``(row spacing, column spacing)``, both positive and finite."""
    try:
        dy, dx = (float(v) for v in spacing)
    except (TypeError, ValueError):
        raise DataError(f"spacing must be two positive numbers (rows, columns), got {spacing!r}") from None
    if not (np.isfinite(dy) and np.isfinite(dx) and dy > 0 and dx > 0):
        raise DataError(f"spacing must be two positive numbers (rows, columns), got {spacing!r}")
    return dy, dx
