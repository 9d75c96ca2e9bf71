"""Counting loops of the texture matrices of the levels of a zero-bordered box: the GLSZM's
8-connected zones (:mod:`featurekit.handcrafted.glszm`), the GLRLM's runs
(:mod:`featurekit.handcrafted.glrlm`), the GLDM's and the NGTDM's neighbourhood counts
(:mod:`featurekit.handcrafted.gldm`, :mod:`featurekit.handcrafted.ngtdm`)."""

from __future__ import annotations

import numpy as np

from featurekit.handcrafted._kernels._compile import jit

__all__ = ["zones8", "dependence_counts", "neighbourhood_counts", "glrlm_runs"]


@jit
def _root(parent, p):  # pragma: no cover - compiled
    """The root of ``p`` in the forest ``parent``, halving the path on the way."""
    while parent[p] != p:
        parent[p] = parent[parent[p]]
        p = parent[p]
    return p


@jit
def _unite(parent, p, q):  # pragma: no cover - compiled
    a, b = _root(parent, p), _root(parent, q)
    if a < b:
        parent[b] = a
    elif b < a:
        parent[a] = b


@jit
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


@jit
def _reach(steps):  # pragma: no cover - compiled
    r = 0
    for st in steps:
        r = max(r, abs(st))
    return r


@jit
def _fold(tables, G1, K):  # pragma: no cover - compiled
    """The four interleaved ``(4, G1 * K)`` ``tables`` summed into one ``(G1, K)`` table, row 0
    (the pixels outside the mask) cleared. (Four tables, so that runs of pixels adding to one
    cell do not wait on one counter.)"""
    out = (tables[0] + tables[1] + tables[2] + tables[3]).reshape(G1, K)
    out[0, :] = 0
    return out


@jit
def _histogram(levels, value, K, G1):  # pragma: no cover - compiled
    """``(G1, K)`` counts of the pairs ``(levels[i], value[i])``, row 0 cleared."""
    c = np.zeros((4, G1 * K), dtype=np.int64)
    for i in range(levels.size):
        c[i & 3, np.int64(levels[i]) * K + value[i]] += 1
    return _fold(c, G1, K)


@jit
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


@jit
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
    return _fold(n, G1, K), _fold(s, G1, K)


@jit
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
