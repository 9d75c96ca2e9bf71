"""Region-of-interest geometry: bounding boxes, margins, crops and circles.

Conventions
-----------
* A *box* is ``(r0, r1, c0, c1)``: rows ``r0 <= r < r1`` and columns
  ``c0 <= c < c1`` (half-open, like a NumPy slice).
* Circle coordinates are continuous image coordinates ``(cx, cy, r)`` in
  pixels, origin at the top-left *corner* of the image, x to the right, y
  down: pixel ``(row i, col j)`` covers ``[j, j+1) x [i, i+1)`` and its centre
  is ``(j + 0.5, i + 0.5)``. A pixel is inside a circle when its centre is
  within distance ``r`` of ``(cx, cy)``. With this convention scaling an image
  by ``s`` scales the coordinates exactly by ``s``.

Margin rule (shared by ``roi='mask'`` and ``roi='mias'``)
--------------------------------------------------------
The tight box of height ``h`` and width ``w`` is enlarged by ``margin * h`` on
the top and on the bottom and by ``margin * w`` on the left and on the right,
rounded outwards to whole pixels, then clipped to the image.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

__all__ = [
    "ROI_MODES",
    "Box",
    "mask_box",
    "circles_box",
    "expand_box",
    "crop",
    "circles_to_mask",
]

#: Accepted values of ``Dataset.roi``.
ROI_MODES = ("none", "mask", "mias")

Box = tuple  # (r0, r1, c0, c1)

_EPS = 1e-9


def mask_box(mask: np.ndarray) -> Optional[Box]:
    """Tight half-open box of the ``True`` pixels, or ``None`` for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def circles_box(circles: Sequence[tuple[float, float, float]]) -> Optional[Box]:
    """Continuous box bounding the squares around the circles, or ``None`` if none.

    One circle gives the square ``[cx - r, cx + r] x [cy - r, cy + r]``;
    several give the box bounding all their squares.
    """
    if not circles:
        return None
    c = np.asarray(circles, dtype=np.float64).reshape(-1, 3)
    cx, cy, r = c[:, 0], c[:, 1], c[:, 2]
    return (float((cy - r).min()), float((cy + r).max()), float((cx - r).min()), float((cx + r).max()))


def expand_box(box: Box, margin: float, shape: tuple[int, int]) -> Box:
    """Enlarge ``box`` by ``margin`` x its size on each side, round outwards, clip to ``shape``."""
    r0, r1, c0, c1 = box
    h, w = r1 - r0, c1 - c0
    H, W = int(shape[0]), int(shape[1])
    return (
        max(0, math.floor(r0 - margin * h + _EPS)),
        min(H, math.ceil(r1 + margin * h - _EPS)),
        max(0, math.floor(c0 - margin * w + _EPS)),
        min(W, math.ceil(c1 + margin * w - _EPS)),
    )


def crop(arr: np.ndarray, box: Box) -> np.ndarray:
    """``arr[r0:r1, c0:c1]`` (a view; trailing channel axis kept)."""
    r0, r1, c0, c1 = box
    return arr[r0:r1, c0:c1]


def circles_to_mask(circles: Sequence[tuple[float, float, float]], shape: tuple[int, int]) -> np.ndarray:
    """Rasterise the union of circles on an image of ``shape`` (pixel-centre rule)."""
    H, W = int(shape[0]), int(shape[1])
    mask = np.zeros((H, W), dtype=bool)
    for cx, cy, r in circles:
        r0, r1 = max(0, math.floor(cy - r)), min(H, math.ceil(cy + r) + 1)
        c0, c1 = max(0, math.floor(cx - r)), min(W, math.ceil(cx + r) + 1)
        if r0 >= r1 or c0 >= c1:
            continue
        yy = np.arange(r0, r1, dtype=np.float64)[:, None] + 0.5
        xx = np.arange(c0, c1, dtype=np.float64)[None, :] + 0.5
        mask[r0:r1, c0:c1] |= (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    return mask
