"""Passes over an image's pixels: the input layer's finiteness check and the quantisation of
:func:`featurekit.handcrafted.glcm_quantize.quantize_levels` (every texture family and GLCM)."""

from __future__ import annotations

import math

import numpy as np

from featurekit.handcrafted._kernels._compile import jit

__all__ = ["all_finite", "masked_range", "digitize_masked"]


@jit(fastmath={"reassoc"})
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


@jit
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


@jit(inline="always")
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


@jit
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
