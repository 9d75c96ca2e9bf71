"""Compiled loops of the handcrafted families (numba), where NumPy's whole-array steps cost more
than the work: one pass over a mask's bounding box instead of several temporaries.

Each kernel does one step of one algorithm, defined in the module that calls it (the
definitions and references are there; the tests compare each kernel with a NumPy or SciPy
statement of its step). The kernels count, so their results are exact integers (the exact
``numpy.digitize`` bins; the shape's diameter is the one float, from exact integer hull
vertices). One module over 400 lines: the only one that imports numba, so that the compiled
code, its cache and its import cost stay in one place.

* :func:`all_finite`: the finiteness check of the input layer
  (:mod:`featurekit.handcrafted._input`);
* :func:`masked_range`, :func:`digitize_masked`: the quantisation of
  :func:`featurekit.handcrafted.glcm_quantize.quantize_levels` (every texture family);
* :func:`zones8`: the 8-connected zones of equal level of the GLSZM
  (:mod:`featurekit.handcrafted.glszm`);
* :func:`glrlm_runs`: the runs of the GLRLM (:mod:`featurekit.handcrafted.glrlm`);
* :func:`dependence_counts`, :func:`neighbourhood_counts`: the neighbourhood counts of the
  GLDM and the NGTDM (:mod:`featurekit.handcrafted.gldm`, :mod:`featurekit.handcrafted.ngtdm`);
* :func:`shape_counts`: the mesh, moment and diameter sums of the 2-D shape
  (:mod:`featurekit.handcrafted.shape2d`).

The kernels are compiled on their first call in a process (about a second each, once per
input type) and the machine code is cached beside this file (numba's ``cache=True``; a
read-only install caches in the user's cache folder), so later processes load it; where
neither folder is writable (:data:`CACHE` is False) each process compiles them again. This module
imports numba; the families import it only when they compute, so importing featurekit does not.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["all_finite", "masked_range", "digitize_masked", "zones8", "dependence_counts", "neighbourhood_counts",
           "glrlm_runs", "shape_counts"]


def _probe():  # pragma: no cover - compiled only to find out whether caching is possible
    return 0


try:  # numba caches beside this file, else in the user's cache folder
    njit(cache=True)(_probe)
    CACHE = True
except RuntimeError:  # neither is writable (a read-only install without a home): compile in each process
    CACHE = False


@njit(cache=CACHE, nogil=True, fastmath={"reassoc"})
def all_finite(x):  # pragma: no cover - compiled
    """Whether every value of the 2-D float array ``x`` is finite: the sum of ``v * 0`` is 0 for
    finite values and NaN once one is NaN or infinite (a sum the compiler vectorises; only
    reassociation is allowed, so NaN and infinity keep their meaning)."""
    s = 0.0
    for r in range(x.shape[0]):
        row = x[r]
        for c in range(x.shape[1]):
            s += row[c] * 0.0
    return s == 0.0


@njit(cache=CACHE, nogil=True)
def masked_range(x, mask, whole):  # pragma: no cover - compiled
    """``(min, max, integral)`` of ``x`` (2-D) where ``mask`` (bool, same shape) is set, of all
    of ``x`` when ``mask`` is None (``(inf, -inf, True)`` when nothing is selected);
    ``integral``: every selected value is a whole number (not checked when ``whole``: integer
    pixels)."""
    lo, hi = math.inf, -math.inf
    integral = True
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            if mask is None or mask[r, c]:
                v = float(x[r, c])
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
                if not whole and integral and v != math.floor(v):
                    integral = False
    return lo, hi, integral


@njit(cache=CACHE, nogil=True, inline="always")
def _bin(v, edges, e1, inv, uniform):  # pragma: no cover - compiled
    """``numpy.digitize(v, edges)``: guessed from the uniform inner edges, then moved until
    ``edges[k - 1] <= v < edges[k]``, which makes it exact whatever the guess's rounding."""
    n = edges.size
    k = 0
    if uniform:
        g = math.floor((v - e1) * inv) + 2.0
        k = int(min(max(g, 0.0), float(n)))
    while k < n and v >= edges[k]:
        k += 1
    while k > 0 and v < edges[k - 1]:
        k -= 1
    return k


@njit(cache=CACHE, nogil=True)
def digitize_masked(x, mask, edges, lo, hi, clip, out, pad, table=0):  # pragma: no cover - compiled
    """Write ``numpy.digitize(v, edges)`` of each pixel ``v`` of ``x`` where ``mask`` (all when
    None) into ``out[r + pad, c + pad]`` (``out`` zeroed by the caller: other pixels stay 0).

    ``clip``: ``v`` is first clipped to ``[lo, hi]`` (``numpy.clip``). ``table > 0``: the
    selected values are whole numbers from ``lo`` to ``lo + table - 1`` (after clipping): their
    bins are looked up in a table of those ``table`` values, binned once each.
    """
    n = edges.size
    uniform = n >= 4 and edges[n - 2] > edges[1]  # (edges of huge values can coincide in float64)
    e1 = edges[1] if n > 1 else 0.0
    inv = (n - 3) / (edges[n - 2] - edges[1]) if uniform else 0.0
    if table > 0:
        lut = np.empty(table, dtype=out.dtype)
        for t in range(table):
            lut[t] = _bin(lo + t, edges, e1, inv, uniform)
        base = int(lo)
        for r in range(x.shape[0]):
            for c in range(x.shape[1]):
                if mask is None or mask[r, c]:
                    v = int(x[r, c])
                    if clip:
                        v = min(max(v, base), base + table - 1)
                    out[r + pad, c + pad] = lut[v - base]
        return
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            if mask is not None and not mask[r, c]:
                continue
            v = float(x[r, c])
            if clip:
                v = min(max(v, lo), hi)
            out[r + pad, c + pad] = _bin(v, edges, e1, inv, uniform)


@njit(cache=CACHE, nogil=True)
def _root(parent, p):  # pragma: no cover - compiled
    """The root of ``p`` in the forest ``parent``, halving the path on the way."""
    while parent[p] != p:
        parent[p] = parent[parent[p]]
        p = parent[p]
    return p


@njit(cache=CACHE, nogil=True)
def _unite(parent, p, q):  # pragma: no cover - compiled
    a, b = _root(parent, p), _root(parent, q)
    if a < b:
        parent[b] = a
    elif b < a:
        parent[a] = b


@njit(cache=CACHE, nogil=True)
def zones8(levels):  # pragma: no cover - compiled
    """Level and size (pixels) of every 8-connected zone of equal non-zero value of the 2-D
    ``levels``, whose border (first and last rows and columns) is 0.

    Run-based labelling: each row's runs of equal non-zero value are the nodes of a union-find
    forest (roots: a zone's first run); a run is joined with the runs of the row above of its
    value that touch it, diagonally included (columns ``start - 1`` to ``end``), found by one
    merge of the two rows' sorted runs. The zones are returned in the raster order of their
    first pixel, each with the summed lengths of its runs.

    References
    ----------
    L. He, Y. Chao, K. Suzuki and K. Wu, "Fast connected-component labeling", Pattern
    Recognition 42(9) 1977-1987, 2009 (run-based two-scan labelling).
    """
    H, W = levels.shape
    cap = max(1, (H - 2) * (W - 2))  # at most one run per pixel
    start = np.empty(cap, dtype=np.int32)
    end = np.empty(cap, dtype=np.int32)
    value = np.empty(cap, dtype=np.int64)
    parent = np.empty(cap, dtype=np.int32)
    n = 0
    cuts = np.empty(W, dtype=np.int32)
    above = 0  # the first run of the row above
    for r in range(1, H - 1):
        row = levels[r]
        first = n
        m = 0  # the columns where the value changes, found without a branch per pixel
        for c in range(1, W):
            cuts[m] = c
            m += row[c] != row[c - 1]
        for t in range(m - 1):  # the last change is into the border zero
            s, c = cuts[t], cuts[t + 1]
            v = row[s]
            if v == 0:
                continue
            start[n], end[n], value[n], parent[n] = s, c, v, n
            # the runs of the row above that touch columns s - 1 .. c (8-connected)
            k = above
            while k < first and end[k] < s:
                k += 1
            above = k
            while k < first and start[k] <= c:
                if value[k] == v:
                    _unite(parent, n, k)
                k += 1
            n += 1
        above = first
    count = np.zeros(n, dtype=np.int64)
    n_zones = 0
    for k in range(n):
        root = _root(parent, k)
        parent[k] = root
        if root == k:
            n_zones += 1
        count[root] += end[k] - start[k]
    zone_level = np.empty(n_zones, dtype=np.int64)
    zone_size = np.empty(n_zones, dtype=np.int64)
    z = 0
    for k in range(n):
        if parent[k] == k:
            zone_level[z] = value[k]
            zone_size[z] = count[k]
            z += 1
    return zone_level, zone_size


@njit(cache=CACHE, nogil=True)
def _reach(steps):  # pragma: no cover - compiled
    r = 0
    for st in steps:
        r = max(r, abs(st))
    return r


@njit(cache=CACHE, nogil=True)
def _histogram(levels, value, K, G1):  # pragma: no cover - compiled
    """``(G1, K)`` counts of the pairs ``(levels[i], value[i])``, row 0 cleared. Four interleaved
    tables, so that runs of equal pairs do not wait on one counter."""
    c = np.zeros((4, G1 * K), dtype=np.int64)
    for i in range(levels.size):
        c[i & 3, np.int64(levels[i]) * K + value[i]] += 1
    out = (c[0] + c[1] + c[2] + c[3]).reshape(G1, K)
    out[0, :] = 0
    return out


@njit(cache=CACHE, nogil=True)
def dependence_counts(levels, steps, alpha, J1, G1):  # pragma: no cover - compiled
    """``(G1, J1)`` counts of (level, dependence count ``j``) of the non-zero pixels of the 2-D
    C-contiguous ``levels`` (a border of zeros as wide as the largest step): ``j - 1`` is the
    number of neighbours at the flat offsets ``steps`` that are non-zero and differ from the
    pixel's level by at most ``alpha`` (:mod:`featurekit.handcrafted.gldm`); row 0 (the zeros)
    empty.

    One pass per offset over two shifted views of the array (a loop the compiler vectorises),
    then one histogram.
    """
    flat = levels.ravel()
    N, reach = flat.size, _reach(steps)
    centre = flat[reach : N - reach]
    dep = np.ones(centre.size, dtype=np.int32)
    whole = alpha < 1  # whole-number levels: dependent means equal (a zero is never equal)
    a = np.int32(min(alpha, 1 << 30))
    for st in steps:
        nb = flat[reach + st : N - reach + st]
        if whole:
            for i in range(centre.size):
                dep[i] += nb[i] == centre[i]
        else:
            for i in range(centre.size):
                d = np.int32(nb[i]) - np.int32(centre[i])
                dep[i] += (nb[i] != 0) & (abs(d) <= a)
    return _histogram(centre, dep, J1, G1)


@njit(cache=CACHE, nogil=True)
def neighbourhood_counts(levels, steps, G1):  # pragma: no cover - compiled
    """``(n, s)`` of the non-zero pixels of the 2-D C-contiguous ``levels`` (a border of zeros as
    wide as the largest step), by (level, number ``m`` of non-zero neighbours at the flat offsets
    ``steps``): ``n[i, m]`` pixels and ``s[i, m]`` the sum of their ``|i m - t|`` (``t`` the sum
    of those neighbours' levels), whole numbers, so that ``s / m`` is the NGTDM's
    ``|i - mean|`` summed with one division per (level, m) (:mod:`featurekit.handcrafted.ngtdm`);
    row 0 (the zeros) empty. Shifted views as :func:`dependence_counts`."""
    flat = levels.ravel()
    N, reach = flat.size, _reach(steps)
    K = len(steps) + 1
    centre = flat[reach : N - reach]
    m = np.zeros(centre.size, dtype=np.int32)
    t = np.zeros(centre.size, dtype=np.int32)
    for st in steps:
        nb = flat[reach + st : N - reach + st]
        for i in range(centre.size):
            m[i] += nb[i] != 0
            t[i] += nb[i]
    n = np.zeros((4, G1 * K), dtype=np.int64)
    s = np.zeros((4, G1 * K), dtype=np.int64)
    for i in range(centre.size):
        v = np.int64(centre[i])
        at = v * K + m[i]
        n[i & 3, at] += 1
        s[i & 3, at] += abs(v * m[i] - t[i])
    n_im = (n[0] + n[1] + n[2] + n[3]).reshape(G1, K)
    s_im = (s[0] + s[1] + s[2] + s[3]).reshape(G1, K)
    n_im[0, :] = 0
    s_im[0, :] = 0
    return n_im, s_im


@njit(cache=CACHE, nogil=True)
def glrlm_runs(levels, G1, J1, counts, keys, unit):  # pragma: no cover - compiled
    """The runs of equal non-zero value of the 2-D C-contiguous ``levels`` (a border of zeros)
    along the rows, the diagonals down-right, the columns and the diagonals down-left (``d`` =
    0, 1, 2, 3: the GLRLM's 0, 45, 90 and 135 degrees, :mod:`featurekit.handcrafted.glrlm`),
    lengths ``< J1``: counted into ``counts[d, level, length]`` when ``counts`` (int64,
    ``(4, G1, J1)``) is not empty, else written to ``keys`` (int64, at least 4 x the non-zero
    pixels long) as ``((unit + d) * G1 + level) * J1 + length``; returns the number of keys.

    Each line is walked once, by its flat stride; the positions where its value changes are
    collected without a branch per pixel, and the runs lie between them.
    """
    H, W = levels.shape
    flat = levels.ravel()
    dense = counts.size > 0
    cuts = np.empty(max(H, W) + 1, dtype=np.int64)
    vals = np.empty(max(H, W) + 1, dtype=np.int64)
    k = 0
    for d in range(4):
        step = (1, W + 1, W, W - 1)[d]
        n_lines = H if d == 0 else W if d == 2 else H + W - 1
        for line in range(n_lines):
            if d == 0:
                p, size = line * W, W
            elif d == 2:
                p, size = line, H
            elif line < W:  # the diagonals start in the top row...
                p, size = line, min(H, W - line) if d == 1 else min(H, line + 1)
            else:  # ...or in the first (down-right) or last (down-left) column
                r = line - W + 1
                p, size = (r * W, min(H - r, W)) if d == 1 else (r * W + W - 1, min(H - r, W))
            m, prev = 0, np.int64(0)
            for t in range(size):
                v = np.int64(flat[p])
                cuts[m] = t
                vals[m] = v
                m += v != prev
                prev = v
                p += step
            for j in range(m):
                v = vals[j]
                if v != 0:  # a run ends at the next change (every line ends on a border zero)
                    length = cuts[j + 1] - cuts[j]
                    if dense:
                        counts[d, v, length] += 1
                    else:
                        keys[k] = ((unit + d) * G1 + v) * J1 + length
                        k += 1
    return k


@njit(cache=CACHE, nogil=True)
def _cross(oy, ox, ay, ax, by, bx):  # pragma: no cover - compiled
    return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)


@njit(cache=CACHE, nogil=True)
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
