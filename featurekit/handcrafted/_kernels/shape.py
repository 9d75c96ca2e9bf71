"""The sums the 2-D shape features are made of (:mod:`featurekit.handcrafted.shape2d`): the mesh's
vertices and marching squares, the pixel moments and the diameter over the convex hull."""

from __future__ import annotations

import numpy as np

from featurekit.handcrafted._kernels._compile import jit

__all__ = ["shape_counts"]


@jit
def _cross(oy, ox, ay, ax, by, bx):  # pragma: no cover - compiled
    return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)


@jit
def shape_counts(u, dy, dx):  # pragma: no cover - compiled
    """The sums the 2-D shape features are made of (:mod:`featurekit.handcrafted.shape2d`), of the
    C-contiguous uint8 2-D ``u`` of 0 and 1: a mask's bounding box with a border of zeros.

    Returns ``(counts, d2)``: ``counts`` (int64) = pixels, sums of ``y``, ``x``, ``y^2``,
    ``x^2``, ``x y`` over the pixel centres (box coordinates), vertical and horizontal
    inside/outside pairs (the mesh's vertices), marching squares with one and with three inside
    corners, saddles (two diagonal ones); ``d2`` the largest squared distance between two mesh
    vertices, rows scaled by ``dy`` and columns by ``dx``. The vertices' coordinates are whole
    numbers of half pixels; the farthest pair is found among the vertices of their convex hull
    (Andrew's monotone chain over the leftmost and rightmost vertex at each height, exact in
    integers), compared pairwise.
    """
    H, W = u.shape
    n_p = sy = sx = syy = sxx = sxy = 0
    n_v = n_h = n1 = n3 = n_saddle = 0
    T = 2 * H  # heights in half pixels: 2 r (horizontal pairs of row r), 2 r + 1 (vertical pairs)
    lo = np.full(T, -1, dtype=np.int64)
    hi = np.full(T, -1, dtype=np.int64)
    for r in range(H - 1):  # the last row and column are outside: no pair or square starts there
        up, down = u[r], u[r + 1]
        row_n = row_x = row_xx = 0
        # simple branch-free sums and extremes: loops the compiler vectorises
        first_h, last_h, first_v, last_v = W, -1, W, -1  # the outermost pairs of each kind
        for c in range(W - 1):
            diff = up[c] != up[c + 1]  # vertex (row r, column c + 1/2)
            n_h += diff
            first_h = min(first_h, c if diff else W)
            last_h = max(last_h, c if diff else -1)
        for c in range(W - 1):
            diff = up[c] != down[c]  # vertex (row r + 1/2, column c)
            n_v += diff
            first_v = min(first_v, c if diff else W)
            last_v = max(last_v, c if diff else -1)
        for c in range(W - 1):
            k = np.int64(up[c]) + up[c + 1] + down[c] + down[c + 1]
            n1 += k == 1
            n3 += k == 3
        for c in range(W - 1):
            n_saddle += (up[c] == down[c + 1]) & (up[c + 1] == down[c]) & (up[c] != down[c])
        for c in range(W - 1):
            a = np.int64(up[c])
            row_n += a
            row_x += a * c
            row_xx += a * c * c
        y = np.int64(r - 1)  # box coordinates: the padded row r is the box's row r - 1
        # x = c - 1: sums of x and x^2 from those of c
        n_p += row_n
        sx_row = row_x - row_n
        sx += sx_row
        sxx += row_xx - 2 * row_x + row_n
        sy += y * row_n
        syy += y * y * row_n
        sxy += y * sx_row
        if last_h >= 0:  # the leftmost and rightmost vertex at the heights of this row's pairs
            lo[2 * r], hi[2 * r] = 2 * first_h + 1, 2 * last_h + 1
        if last_v >= 0:
            lo[2 * r + 1], hi[2 * r + 1] = 2 * first_v, 2 * last_v
    # candidate hull vertices, by height then column: the leftmost and rightmost at each height
    m = 0
    py = np.empty(2 * T, dtype=np.int64)
    px = np.empty(2 * T, dtype=np.int64)
    for t in range(T):
        if hi[t] >= 0:
            py[m], px[m] = t, lo[t]
            m += 1
            if hi[t] != lo[t]:
                py[m], px[m] = t, hi[t]
                m += 1
    hull_y = np.empty(2 * m + 1, dtype=np.int64)
    hull_x = np.empty(2 * m + 1, dtype=np.int64)
    k = 0
    for i in range(m):  # one chain ...
        while k >= 2 and _cross(hull_y[k - 2], hull_x[k - 2], hull_y[k - 1], hull_x[k - 1], py[i], px[i]) <= 0:
            k -= 1
        hull_y[k], hull_x[k] = py[i], px[i]
        k += 1
    lower = k + 1
    for i in range(m - 2, -1, -1):  # ... and the other, back
        while k >= lower and _cross(hull_y[k - 2], hull_x[k - 2], hull_y[k - 1], hull_x[k - 1], py[i], px[i]) <= 0:
            k -= 1
        hull_y[k], hull_x[k] = py[i], px[i]
        k += 1
    n_hull = max(1, k - 1) if m > 1 else m
    fy = hull_y[:n_hull] * (0.5 * dy)
    fx = hull_x[:n_hull] * (0.5 * dx)
    d2 = 0.0
    for i in range(n_hull):
        for j in range(i + 1, n_hull):
            ey, ex = fy[i] - fy[j], fx[i] - fx[j]
            e2 = ey * ey + ex * ex
            if e2 > d2:
                d2 = e2
    counts = np.array([n_p, sy, sx, syy, sxx, sxy, n_v, n_h, n1, n3, n_saddle], dtype=np.int64)
    return counts, d2
