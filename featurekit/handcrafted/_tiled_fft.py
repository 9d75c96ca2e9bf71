"""Separable complex filters applied by FFT, tile by tile (the engine of :mod:`.gabor`).

A filter bank is split into groups of equal kernel half-size ``P`` (for
Gabor, one group per frequency); a tile of an image is read with a margin
of the largest ``P``, the image extended by scipy's ``'reflect'`` rule
(``d c b a | a b c d | d c b a``) beyond its borders, so the response of a
filter on the tile equals its response on the whole image there. Per group:
one FFT of the mean-centred padded tile at a 5-smooth length, then per filter
a product with the kernel's spectrum (the outer product of two 1-D spectra)
and an inverse FFT; the mean's exact response ``mean * sum(g)`` is put back
into the DC bin. ``scipy.fft`` on the CPU, ``torch.fft`` on other devices.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import List, Tuple

import numpy as np

__all__ = ["tiles", "Plan", "plan", "responses"]


def _factors(f: float, t: float, s: float, half: int, offset: float):
    """Separable factors: ``g(y, x) = scale * v(y) * u(x)``."""
    m = np.arange(-half, half + 1, dtype=np.float64)
    env = np.exp(-(m**2) / (2 * s * s))
    u = env * np.exp(1j * 2 * np.pi * f * math.cos(t) * m)
    v = env * np.exp(1j * 2 * np.pi * f * math.sin(t) * m)
    scale = np.exp(1j * offset) / (2 * np.pi * s * s)
    return u, v, scale


def _reflect(idx: np.ndarray, n: int) -> np.ndarray:
    """scipy's 'reflect' extension (``d c b a | a b c d | d c b a``, period ``2n``) of
    indices into ``range(n)``."""
    idx = np.mod(idx, 2 * n)
    return np.where(idx >= n, 2 * n - 1 - idx, idx)


def tiles(n: int, tile: int) -> List[Tuple[int, int]]:
    """``range(n)`` split into ``ceil(n / tile)`` nearly equal consecutive parts."""
    k = max(1, -(-n // max(1, tile)))
    edges = [(i * n) // k for i in range(k + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _fast_len(n: int) -> int:
    """Smallest 5-smooth integer (2^a 3^b 5^c) >= n: a fast FFT length."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


class _Group:
    """Spectra of the filters sharing one padding, for one tile size and device."""

    def __init__(self, filters, offset, shape, device, dtype, backend=None):
        H, W = shape
        self.index = [k for k, _ in filters]
        self.P = max(b[3] for _, b in filters)
        self.Ly = _fast_len(H + 2 * self.P)
        self.Lx = _fast_len(W + 2 * self.P)
        # scipy.fft on the CPU, torch.fft elsewhere (backend='torch' forces it, for tests)
        self.use_torch = device != "cpu" or backend == "torch"
        cdt = np.complex64 if dtype == "float32" else np.complex128
        n = len(filters)
        V = np.zeros((n, self.Ly), dtype=np.complex128)
        U = np.zeros((n, self.Lx), dtype=np.complex128)
        scales = np.zeros(n, dtype=np.complex128)
        sums = np.zeros(n, dtype=np.complex128)
        l1 = np.zeros(n)
        for j, (_, (f, t, s, half)) in enumerate(filters):
            u, v, scale = _factors(f, t, s, half, offset)
            m = np.arange(-half, half + 1)
            V[j, m % self.Ly] = v
            U[j, m % self.Lx] = u
            scales[j] = scale
            sums[j] = scale * v.sum() * u.sum()
            l1[j] = abs(scale) * np.abs(v).sum() * np.abs(u).sum()
        self.V = (np.fft.fft(V, axis=1) * scales[:, None]).astype(cdt)
        self.U = np.fft.fft(U, axis=1).astype(cdt)
        # response to a constant image of value 1, as the DC bin of the product
        self.sums = sums * (self.Ly * self.Lx)
        self.l1 = l1  # sum |g|: bound of the response per unit of image amplitude
        if self.use_torch:
            import torch

            self.V = torch.from_numpy(self.V).to(device)
            self.U = torch.from_numpy(self.U).to(device)


class Plan:
    """A bank split into groups of equal padding (one group per frequency), for tiles
    of one shape."""

    def __init__(self, bank, offset, shape, device, dtype, backend=None):
        by_pad = {}
        for k, b in enumerate(bank):
            by_pad.setdefault((b[0], b[2]), []).append((k, b))
        self.groups = [_Group(fs, offset, shape, device, dtype, backend) for fs in by_pad.values()]
        self.P = max(grp.P for grp in self.groups)
        self.n = len(bank)
        self.l1 = np.zeros(self.n)
        for grp in self.groups:
            self.l1[grp.index] = grp.l1


def responses(image: np.ndarray, plan: Plan, device, dtype, mean: float, rows=None, cols=None):
    """Yield ``(k, response)`` for every filter ``k`` of the plan on the tile
    ``image[rows[0]:rows[1], cols[0]:cols[1]]`` (default: the whole image) as complex
    ``(h, w)`` views: numpy arrays, or torch tensors for groups on torch.

    The tile is read with a margin of the plan's largest kernel half-size, the
    image extended by reflection beyond its borders, so each response equals
    the whole-image response on the tile. The image is centred on ``mean`` (the
    whole image's) before the FFT, so rounding scales with the texture, not
    with the mean intensity; the mean's exact response, ``mean * sum(g)``, is
    put back into the DC bin of the product.
    """
    H, W = image.shape
    r0, r1 = rows or (0, H)
    c0, c1 = cols or (0, W)
    h, w = r1 - r0, c1 - c0
    Pm = plan.P
    iy = _reflect(np.arange(r0 - Pm, r1 + Pm), H)
    ix = _reflect(np.arange(c0 - Pm, c1 + Pm), W)
    xc = (image[np.ix_(iy, ix)] - mean).astype(np.float32 if dtype == "float32" else np.float64)
    x = None
    for grp in plan.groups:
        P = grp.P
        xp = xc[Pm - P : Pm + h + P, Pm - P : Pm + w + P]  # this group's margin
        if grp.use_torch:
            import torch

            if x is None:
                x = torch.from_numpy(xc).to(device)
            X = torch.fft.fft2(x[Pm - P : Pm + h + P, Pm - P : Pm + w + P], s=(grp.Ly, grp.Lx))
            buf = torch.empty_like(X)
            for j, k in enumerate(grp.index):
                torch.mul(X, grp.V[j][:, None], out=buf)
                buf.mul_(grp.U[j][None, :])
                buf[0, 0] += complex(mean * grp.sums[j])
                yield k, torch.fft.ifft2(buf)[P : P + h, P : P + w]
        else:
            import scipy.fft as sfft

            X = sfft.fft2(xp, s=(grp.Ly, grp.Lx))
            B = X[None] * grp.V[:, :, None]  # all filters of the group in one batch
            del X
            B *= grp.U[:, None, :]
            B[:, 0, 0] += mean * grp.sums
            R = sfft.ifft2(B, overwrite_x=True)
            del B
            for j, k in enumerate(grp.index):
                yield k, R[j, P : P + h, P : P + w]
            del R


@lru_cache(maxsize=8)
def plan(bank, offset, shape, device, dtype, backend=None) -> Plan:
    """The :class:`Plan` of a bank for tiles of ``shape`` (cached)."""
    return Plan(bank, offset, shape, device, dtype, backend)
