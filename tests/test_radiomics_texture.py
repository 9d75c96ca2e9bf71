"""GLRLM, GLSZM, GLDM and NGTDM: hand-counted values, loop references of the definitions
on random images with masks, equality with pyradiomics' classes (BUSI, random masks),
batching, errors and the transformers."""

import logging
import subprocess
import sys
from collections import deque

import numpy as np
import pytest

from featurekit.errors import DataError
from featurekit.handcrafted import quantize
from featurekit.handcrafted.gldm import GLDM_FEATURES, GLDMFeatures, gldm_features
from featurekit.handcrafted.glrlm import GLRLM_ANGLES, GLRLM_FEATURES, GLRLMFeatures, glrlm_features
from featurekit.handcrafted.glszm import GLSZM_FEATURES, GLSZMFeatures, glszm_features
from featurekit.handcrafted.ngtdm import NGTDM_FEATURES, NGTDMFeatures, ngtdm_features
from featurekit.imageio import read_image, read_mask, to_gray

EPS = np.spacing(1)
TINY = np.array([[1, 1, 2, 3],
                 [1, 2, 2, 3],
                 [3, 3, 1, 2],
                 [2, 1, 3, 3]], dtype=np.uint8)
FUNCS = {"glrlm": glrlm_features, "glszm": glszm_features, "gldm": gldm_features, "ngtdm": ngtdm_features}
NAMES = {"glrlm": GLRLM_FEATURES, "glszm": GLSZM_FEATURES, "gldm": GLDM_FEATURES, "ngtdm": NGTDM_FEATURES}


# --------------------------------------------------------------------------- references (loops)
def ref_matrix_features(P):
    """The run/zone/dependence formulas on a dense matrix P[i - 1, j - 1], as written in pyradiomics' docs."""
    G, J = P.shape
    iv, jv = np.arange(1, G + 1, dtype=float), np.arange(1, J + 1, dtype=float)
    Nz = P.sum()
    Np = sum(P[a, b] * jv[b] for a in range(G) for b in range(J))
    pg, ps = P.sum(axis=1), P.sum(axis=0)
    p = P / Nz
    mu_i = sum(p[a, b] * iv[a] for a in range(G) for b in range(J))
    mu_j = sum(p[a, b] * jv[b] for a in range(G) for b in range(J))
    f = {
        "SE": sum(ps[b] / jv[b] ** 2 for b in range(J)) / Nz,
        "LE": sum(ps[b] * jv[b] ** 2 for b in range(J)) / Nz,
        "GLN": sum(v * v for v in pg) / Nz,
        "GLNN": sum(v * v for v in pg) / Nz ** 2,
        "SN": sum(v * v for v in ps) / Nz,
        "SNN": sum(v * v for v in ps) / Nz ** 2,
        "PCT": Nz / Np,
        "GLV": sum(p[a, b] * (iv[a] - mu_i) ** 2 for a in range(G) for b in range(J)),
        "SV": sum(p[a, b] * (jv[b] - mu_j) ** 2 for a in range(G) for b in range(J)),
        "ENT": -sum(p[a, b] * np.log2(p[a, b] + EPS) for a in range(G) for b in range(J)),
        "LGE": sum(pg[a] / iv[a] ** 2 for a in range(G)) / Nz,
        "HGE": sum(pg[a] * iv[a] ** 2 for a in range(G)) / Nz,
        "SLGE": sum(P[a, b] / (iv[a] ** 2 * jv[b] ** 2) for a in range(G) for b in range(J)) / Nz,
        "SHGE": sum(P[a, b] * iv[a] ** 2 / jv[b] ** 2 for a in range(G) for b in range(J)) / Nz,
        "LLGE": sum(P[a, b] * jv[b] ** 2 / iv[a] ** 2 for a in range(G) for b in range(J)) / Nz,
        "LHGE": sum(P[a, b] * iv[a] ** 2 * jv[b] ** 2 for a in range(G) for b in range(J)) / Nz,
    }
    return f


KEYS = {
    "glrlm": ("SE", "LE", "GLN", "GLNN", "SN", "SNN", "PCT", "GLV", "SV", "ENT",
              "LGE", "HGE", "SLGE", "SHGE", "LLGE", "LHGE"),
    "glszm": ("SE", "LE", "GLN", "GLNN", "SN", "SNN", "PCT", "GLV", "SV", "ENT",
              "LGE", "HGE", "SLGE", "SHGE", "LLGE", "LHGE"),
    "gldm": ("SE", "LE", "GLN", "SN", "SNN", "GLV", "SV", "ENT", "LGE", "HGE", "SLGE", "SHGE", "LLGE", "LHGE"),
}


def ref_glrlm(lv, mask):
    """Mean over the directions with runs (a direction counts when a line crosses two mask pixels)."""
    H, W = lv.shape
    G = int(lv[mask].max())
    per_angle = []
    for dr, dc in GLRLM_ANGLES.values():
        P = np.zeros((G, max(H, W)))
        pair = False
        for r0 in range(H):
            for c0 in range(W):
                if 0 <= r0 - dr < H and 0 <= c0 - dc < W:
                    continue  # not the first pixel of its line
                r, c, run, level, on_line = r0, c0, 0, 0, 0
                while 0 <= r < H and 0 <= c < W:
                    here = lv[r, c] if mask[r, c] else 0
                    on_line += bool(mask[r, c])
                    if here != level:
                        if level:
                            P[level - 1, run - 1] += 1
                        level, run = here, 0
                    run += 1
                    r, c = r + dr, c + dc
                if level:
                    P[level - 1, run - 1] += 1
                pair |= on_line >= 2
        if pair:
            per_angle.append(ref_matrix_features(P))
    return {k: np.mean([f[k] for f in per_angle]) for k in KEYS["glrlm"]}


def ref_glszm(lv, mask):
    H, W = lv.shape
    G = int(lv[mask].max())
    P = np.zeros((G, int(mask.sum())))
    seen = ~mask.copy()
    for r in range(H):
        for c in range(W):
            if seen[r, c]:
                continue
            seen[r, c], queue, size = True, deque([(r, c)]), 0
            while queue:
                y, x = queue.popleft()
                size += 1
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < H and 0 <= xx < W and not seen[yy, xx] and lv[yy, xx] == lv[r, c]:
                            seen[yy, xx] = True
                            queue.append((yy, xx))
            P[lv[r, c] - 1, size - 1] += 1
    return ref_matrix_features(P)


def ring(distances):
    return [(dy, dx) for dy in range(-9, 10) for dx in range(-9, 10) if max(abs(dy), abs(dx)) in distances]


def ref_gldm(lv, mask, distances=(1,), alpha=0):
    H, W = lv.shape
    hood = ring(distances)
    P = np.zeros((int(lv[mask].max()), len(hood) + 1))
    for r, c in zip(*np.nonzero(mask)):
        dep = sum(1 for dy, dx in hood if 0 <= r + dy < H and 0 <= c + dx < W and mask[r + dy, c + dx]
                  and abs(int(lv[r + dy, c + dx]) - int(lv[r, c])) <= alpha)
        P[lv[r, c] - 1, dep] += 1
    return ref_matrix_features(P)


def ref_ngtdm(lv, mask, distances=(1,)):
    H, W = lv.shape
    G = int(lv[mask].max())
    n, s = np.zeros(G + 1), np.zeros(G + 1)
    for r, c in zip(*np.nonzero(mask)):
        nb = [lv[r + dy, c + dx] for dy, dx in ring(distances)
              if 0 <= r + dy < H and 0 <= c + dx < W and mask[r + dy, c + dx]]
        n[lv[r, c]] += 1
        s[lv[r, c]] += abs(lv[r, c] - np.mean(nb)) if nb else 0.0  # pyradiomics: no neighbour, no difference
    Nvp = n.sum()
    p = n / Nvp
    L = [i for i in range(1, G + 1) if n[i] > 0]
    sum_ps = sum(p[i] * s[i] for i in L)
    ngp = len(L)
    pairs = [(i, j) for i in L for j in L]
    return {
        "Coarseness": 1 / sum_ps if sum_ps else 1e6,
        "Contrast": (sum(p[i] * p[j] * (i - j) ** 2 for i, j in pairs) * s.sum() / Nvp / (ngp * (ngp - 1))
                     if ngp > 1 else 0.0),
        "Busyness": (sum_ps / sum(abs(i * p[i] - j * p[j]) for i, j in pairs)
                     if sum(abs(i * p[i] - j * p[j]) for i, j in pairs) else 0.0),
        "Complexity": sum(abs(i - j) * (p[i] * s[i] + p[j] * s[j]) / (p[i] + p[j]) for i, j in pairs) / Nvp,
        "Strength": sum((p[i] + p[j]) * (i - j) ** 2 for i, j in pairs) / s.sum() if s.sum() else 0.0,
    }


def reference(family, lv, mask, **kw):
    if family == "ngtdm":
        f = ref_ngtdm(lv, mask, **kw)
        return np.array([f[k] for k in NGTDM_FEATURES])
    f = {"glrlm": ref_glrlm, "glszm": ref_glszm, "gldm": ref_gldm}[family](lv, mask, **kw)
    return np.array([f[k] for k in KEYS[family]])


# --------------------------------------------------------------------------- hand-counted values
def test_tiny_runs_and_zones_by_hand():
    row = np.zeros(TINY.shape, bool)
    row[0] = True  # one row: only 0 degrees has runs, (1, 2) (2, 1) (3, 1)
    f = dict(zip(GLRLM_FEATURES, glrlm_features([TINY], [row], bin_width=1)[0]))
    assert f["ShortRunEmphasis"] == pytest.approx((1 / 4 + 1 + 1) / 3, rel=1e-14)
    assert f["LongRunEmphasis"] == pytest.approx(6 / 3, rel=1e-14)
    assert f["RunPercentage"] == pytest.approx(3 / 4, rel=1e-14)
    assert f["RunLengthNonUniformity"] == pytest.approx((2 ** 2 + 1) / 3, rel=1e-14)
    assert f["GrayLevelNonUniformity"] == pytest.approx(1.0, rel=1e-14)
    # 8-connected zones of TINY: level 1 sizes 3 and 2, level 2 sizes 4 and 1, level 3 sizes 2 and 4
    f = dict(zip(GLSZM_FEATURES, glszm_features([TINY], bin_width=1)[0]))
    sizes = np.array([3, 2, 4, 1, 2, 4])
    assert f["ZonePercentage"] == pytest.approx(6 / 16, rel=1e-14)
    assert f["SmallAreaEmphasis"] == pytest.approx(np.mean(1 / sizes ** 2), rel=1e-14)
    assert f["LargeAreaEmphasis"] == pytest.approx(np.mean(sizes ** 2), rel=1e-14)
    assert f["GrayLevelNonUniformity"] == pytest.approx((4 + 4 + 4) / 6, rel=1e-14)
    # dependence (alpha 0, 8 neighbours): every pixel depends on itself; NGTDM of a flat image
    flat = np.full((5, 6), 7.0)
    g = dict(zip(GLDM_FEATURES, gldm_features([flat])[0]))
    corner, edge, inner = 4, 2 * (3 + 4), 3 * 4  # pixels with 3, 5 and 8 equal neighbours
    assert g["LargeDependenceEmphasis"] == pytest.approx((corner * 16 + edge * 36 + inner * 81) / 30, rel=1e-14)
    assert list(ngtdm_features([flat])[0]) == [1e6, 0.0, 0.0, 0.0, 0.0]


# --------------------------------------------------------------------------- loop references
CASES = [("glrlm", {}), ("glszm", {}), ("gldm", {}), ("gldm", {"distances": (1, 2), "alpha": 1}),
         ("ngtdm", {}), ("ngtdm", {"distances": (1, 3)})]


@pytest.mark.parametrize("family,kw", CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_random_images_with_masks_equal_the_definitions(family, kw):
    rng = np.random.default_rng(7)
    images, masks, want = [], [], []
    for _ in range(6):
        H, W = rng.integers(2, 9, 2)
        img = rng.integers(0, 5, (H, W)).astype(float) * 10 + 3
        m = rng.random((H, W)) < rng.uniform(0.4, 1.0)
        m[rng.integers(H), :] = True  # two pixels on a row at least: every family is defined
        lv = quantize(img, m, bin_width=10)
        want.append(reference(family, lv, m, **kw))
        images.append(img)
        masks.append(m)
    ours = {k if k != "alpha" else "gldm_a": v for k, v in kw.items()}
    got = FUNCS[family](images, masks, bin_width=10, **ours)
    # float64 sums of a few dozen terms in another order: agreement to a few ulps
    np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- pyradiomics
def _pyradiomics_class(family):
    radiomics = pytest.importorskip(f"radiomics.{family}")  # optional test-only extra
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    return getattr(radiomics, f"Radiomics{family.upper()}")


def _pyradiomics(family, img, mask, **settings):
    import SimpleITK as sitk

    ext = _pyradiomics_class(family)(sitk.GetImageFromArray(img),
                                     sitk.GetImageFromArray(mask.astype(np.uint8)), **settings)
    ext.enableAllFeatures()
    res = ext.execute()
    return np.array([float(res[name]) for name in NAMES[family]])


@pytest.fixture(scope="module")
def busi(busi_dir):
    out = []
    for rel in ("benign/benign (2).png", "malignant/malignant (5).png", "benign/benign (234).png"):
        path = busi_dir / rel
        out.append((to_gray(read_image(path)), read_mask(str(path).replace(".png", "_mask.png"))))
    return out


SETTINGS = [("glrlm", {}), ("glszm", {}), ("gldm", {}), ("gldm", {"distances": [1, 2], "gldm_a": 1}),
            ("ngtdm", {}), ("ngtdm", {"distances": [1, 2]})]


@pytest.mark.parametrize("family,settings", SETTINGS, ids=[f"{f}-{s}" for f, s in SETTINGS])
def test_matches_pyradiomics_on_busi(busi, family, settings):
    _pyradiomics_class(family)
    images, masks = [g for g, _ in busi], [m for _, m in busi]
    assert all(m.any() and not m.all() for m in masks)
    for bins, ours in (({"binWidth": 25}, {}), ({"binCount": 16}, {"bin_count": 16})):
        got = FUNCS[family](images, masks, **settings, **ours)
        for k, (img, m) in enumerate(busi):
            ref = _pyradiomics(family, img, m, **settings, **bins)
            # the same float64 formulas summed in another order: relative agreement ~1e-15 per
            # feature; 1e-9 leaves room for sums of ~10^5 terms
            np.testing.assert_allclose(got[k], ref, rtol=1e-9, atol=0, err_msg=f"{family} image {k} {bins}")


@pytest.mark.parametrize("family", list(FUNCS))
def test_matches_pyradiomics_on_sparse_random_masks(family):
    """Scattered masks: directions without runs (GLRLM), isolated pixels (NGTDM, GLDM), one-pixel zones."""
    _pyradiomics_class(family)
    rng = np.random.default_rng(11)
    for _ in range(8):
        H, W = rng.integers(3, 12, 2)
        img = rng.integers(0, 6, (H, W)).astype(float) * 25
        m = rng.random((H, W)) < 0.35
        m[0, :2] = True
        got = FUNCS[family]([img], [m])[0]
        np.testing.assert_allclose(got, _pyradiomics(family, img, m), rtol=1e-12, atol=1e-300)


# --------------------------------------------------------------------------- batches, errors
@pytest.mark.parametrize("family", list(FUNCS))
def test_batch_equals_single_images(busi, family):
    images = [g[:150, :180] for g, _ in busi]
    masks = [m[:150, :180] if m[:150, :180].sum() > 1 else None for _, m in busi]
    batch = FUNCS[family](images, masks)
    for k in range(len(images)):
        np.testing.assert_allclose(batch[k], FUNCS[family]([images[k]], [masks[k]])[0], rtol=1e-13, atol=0)
    np.testing.assert_allclose(FUNCS[family](images[::-1], masks[::-1]), batch[::-1], rtol=1e-13, atol=0)
    from featurekit.handcrafted import _zones

    with pytest.MonkeyPatch.context() as mp:  # chunks bounded by their pixels: one image each here
        mp.setattr(_zones, "_PIXELS", 1)
        np.testing.assert_allclose(FUNCS[family](images, masks), batch, rtol=1e-13, atol=0)


def test_glrlm_runs_equal_whatever_tables_are_grouped(busi):
    """The runs are counted in tables of a few images bounded by their cells (glrlm._TABLE_CELLS):
    one image per table, all in one, or no table (each image's runs listed and sorted, the path
    of 16-bit levels in a large box) gives the same features."""
    from featurekit.handcrafted import glrlm

    images = [g[:150, :180] for g, _ in busi]
    masks = [m[:150, :180] if m[:150, :180].sum() > 1 else None for _, m in busi]
    batch = glrlm_features(images, masks)
    for bound in (1, 5_000, 10_000, 20_000, 1 << 30):  # an image's table: 4 x (at most 12) x 181 cells
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(glrlm, "_TABLE_CELLS", bound)
            np.testing.assert_allclose(glrlm_features(images, masks), batch, rtol=1e-13, atol=0)


def test_glszm_zones_joined_only_at_corners():
    """A checkerboard's levels touch only at corners: each is one 8-connected zone (25 and 24
    pixels on 7 x 7), made of single-pixel 4-connected ones that glszm joins."""
    board = (np.indices((7, 7)).sum(axis=0) % 2 + 1).astype(float)
    f = dict(zip(GLSZM_FEATURES, glszm_features([board], bin_width=1)[0]))
    assert f["ZonePercentage"] == pytest.approx(2 / 49, rel=1e-14)
    assert f["LargeAreaEmphasis"] == pytest.approx((25 ** 2 + 24 ** 2) / 2, rel=1e-14)
    assert f["GrayLevelNonUniformity"] == pytest.approx(1.0, rel=1e-14)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_zones8_equal_scipy_labels_per_level(dtype):
    """The compiled zone scan finds the zones of scipy.ndimage.label (3 x 3 structure) of each
    level: their levels and sizes, in the raster order of their first pixel; on random levels
    (many small zones, corner contacts), a snake and a checkerboard (one zone of diagonals,
    the union-find's long paths), and levels beyond 255."""
    from scipy import ndimage

    from featurekit.handcrafted._kernels import zones8

    rng = np.random.default_rng(3)
    snake = np.zeros((15, 17), int)
    snake[1::4, 1:-1] = 1
    snake[2::8, -2] = snake[4::8, 1] = snake[3::8, -2] = snake[5::8, 1] = 1
    checker = np.indices((30, 31)).sum(axis=0) % 2 + 1
    cases = [rng.integers(0, 4, (40, 37)), rng.integers(0, 2, (64, 64)) * rng.integers(1, 3, (64, 64)),
             snake, checker, np.ones((5, 7), int)]
    if dtype == np.uint16:
        cases.append(rng.integers(0, 3, (30, 30)) * 400)
    for k, lv in enumerate(cases):
        lv = np.pad(lv, 1).astype(dtype)
        level, size = zones8(lv)
        first, want_level, want_size = [], [], []
        for v in np.unique(lv[lv != 0]):
            lab, n = ndimage.label(lv == v, structure=np.ones((3, 3)))
            for z in range(1, n + 1):
                where = np.flatnonzero(lab.ravel() == z)
                first.append(where[0])
                want_level.append(v)
                want_size.append(where.size)
        order = np.argsort(first)
        np.testing.assert_array_equal(level, np.asarray(want_level)[order], err_msg=f"case {k}")
        np.testing.assert_array_equal(size, np.asarray(want_size)[order], err_msg=f"case {k}")
        assert size.sum() == np.count_nonzero(lv)


def test_digitize_kernel_equals_numpy_digitize_on_and_near_edges():
    """The quantisation kernel's bins equal numpy.digitize's for values on, just below and just
    above every edge, irregular outer edges, few edges, clipping to a fixed range, a mask and
    every pixel type, with the border of zeros where asked."""
    from featurekit.handcrafted._kernels import digitize_masked

    rng = np.random.default_rng(5)
    for edges in (np.arange(-50.0, 300.0, 25.0), np.linspace(0.1, 0.9, 38), np.array([3.0, 4.0]),
                  np.array([0.0, 1.0, 2.5]), np.r_[-1e-3, np.arange(0.0, 10.0, 0.7), 12.0]):
        near = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
        x = np.concatenate([near, rng.uniform(edges[0] - 1, edges[-1] + 1, 300)])
        x = rng.permutation(x).reshape(1, -1)
        mask = rng.random(x.shape) < 0.8
        for pad in (0, 2):
            out = np.zeros((1 + 2 * pad, x.shape[1] + 2 * pad), np.uint16)
            digitize_masked(x, mask, edges, 0.0, 0.0, False, out, pad)
            inner = out[pad : pad + 1, pad : pad + x.shape[1]]
            np.testing.assert_array_equal(inner, np.where(mask, np.digitize(x, edges), 0))
            assert not out.sum() - inner.sum()  # the border stays 0
        lo, hi = float(edges[1]), float(edges[-2])
        out = np.zeros(x.shape, np.uint16)
        digitize_masked(x, None, edges, lo, hi, True, out, 0)
        np.testing.assert_array_equal(out, np.digitize(np.clip(x, lo, hi), edges))
    ints = rng.integers(0, 256, (20, 30))
    edges = np.arange(0.0, 300.0, 25.0)
    for dtype in (np.uint8, np.uint16, np.float64):
        out = np.zeros(ints.shape, np.uint8)
        digitize_masked(ints.astype(dtype)[:, ::2], None, edges, 0.0, 0.0, False, out[:, :15], 0)  # a strided view
        np.testing.assert_array_equal(out[:, :15], np.digitize(ints[:, ::2], edges))


def test_bad_input_raises_clear_errors():
    img = np.arange(64, dtype=np.float64).reshape(8, 8)
    one = np.zeros((8, 8), bool)
    one[4, 4] = True
    with pytest.raises(DataError, match="image 1: no line .*crosses two mask pixels"):
        glrlm_features([img, img], [None, one])
    for fn in (glszm_features, gldm_features, ngtdm_features):  # defined for one pixel (pyradiomics' values)
        assert np.isfinite(fn([img], [one])).all()
    with pytest.raises(DataError, match="distances"):
        gldm_features([img], distances=[1.5])
    with pytest.raises(DataError, match="distances"):
        ngtdm_features([img], distances=[0])
    with pytest.raises(DataError, match="gldm_a"):
        gldm_features([img], gldm_a=-1)
    with pytest.raises(DataError, match="ShortRunEmphasis"):
        glrlm_features([img], features=["ShortRunEmphasis", "Nope"])
    with pytest.raises(DataError, match="not both"):
        glszm_features([img], bin_width=10, bin_count=8)
    img16 = np.random.default_rng(3).integers(0, 65536, (20, 20)).astype(np.uint16)
    for fn in FUNCS.values():  # ~2600 levels with bin width 25: the error says what to set
        with pytest.raises(DataError, match="image 0: .*grey levels.*bin_count"):
            fn([img16])


@pytest.mark.parametrize("cls,family,n", [(GLRLMFeatures, "glrlm", 16), (GLSZMFeatures, "glszm", 16),
                                          (GLDMFeatures, "gldm", 14), (NGTDMFeatures, "ngtdm", 5)])
def test_transformers(busi, cls, family, n):
    names = cls().get_feature_names_out()
    assert len(names) == n and all(name.startswith(f"{family}_") for name in names)
    assert list(names) == [f"{family}_{f}" for f in NAMES[family]]
    est = cls(bin_count=16, features=list(NAMES[family][:2]))
    images, masks = [g[:100, :120] for g, _ in busi], [None] * 3
    out = est.featurize(images, masks)
    assert out.dtype == np.float32 and out.shape == (3, 2)
    np.testing.assert_allclose(out, FUNCS[family](images, bin_count=16)[:, :2].astype(np.float32), rtol=0)
    assert list(est.fit(np.stack(images)).get_feature_names_out()) == [f"{family}_{f}" for f in NAMES[family][:2]]
    with pytest.raises(DataError):
        cls(bin_width=-1).fit()
    # 8- and 16-bit images are quantised without a float64 copy: the same values, exactly
    rng = np.random.default_rng(5)
    for ints, kw in ((rng.integers(0, 256, (3, 30, 40)).astype(np.uint8), {}),
                     (rng.integers(0, 4096, (3, 30, 40)).astype(np.uint16), {"bin_count": 32})):
        np.testing.assert_array_equal(cls(**kw).fit_transform(ints), cls(**kw).fit_transform(ints.astype(np.float64)))


def test_computing_these_families_imports_no_torch():
    code = ("import sys, numpy as np\n"
            "from featurekit.handcrafted.glrlm import glrlm_features\n"
            "from featurekit.handcrafted.glszm import glszm_features\n"
            "from featurekit.handcrafted.gldm import GLDMFeatures\n"
            "from featurekit.handcrafted.ngtdm import NGTDMFeatures\n"
            "x = np.random.default_rng(0).integers(0, 255, (2, 16, 16)).astype(np.uint8)\n"
            "glrlm_features(x); glszm_features(x); GLDMFeatures().fit_transform(x); NGTDMFeatures().fit_transform(x)\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_pyradiomics_parameter_file_gives_the_extractor_values(busi_dir, tmp_path):
    """pyradiomics' settings (binWidth, gldm_a, distances, feature lists) reach these families by name."""
    _pyradiomics_class("glrlm")
    import SimpleITK as sitk
    from _busi_crops import busi_crops
    from radiomics import featureextractor

    from featurekit.handcrafted import from_spec, read_pyradiomics_params

    path = tmp_path / "Params.yaml"
    path.write_text("featureClass: {glrlm: , glszm: [ZoneEntropy, SmallAreaEmphasis], gldm: , ngtdm: }\n"
                    "setting: {binWidth: 10, gldm_a: 1, distances: [1, 2], label: 1}\n")
    specs = read_pyradiomics_params(path)
    assert [str(s) for s in specs] == ["glrlm:bin_width=10.0",
                                       "glszm:bin_width=10.0;features=ZoneEntropy,SmallAreaEmphasis",
                                       "gldm:bin_width=10.0;distances=1,2;gldm_a=1",
                                       "ngtdm:bin_width=10.0;distances=1,2"]
    images, masks = busi_crops(busi_dir, names=("benign/benign (2).png", "malignant/malignant (5).png"))
    extractor = featureextractor.RadiomicsFeatureExtractor(str(path))
    for spec in specs:
        t = from_spec(spec)
        ours = t.featurize(images, masks)
        for i, (img, m) in enumerate(zip(images, masks)):
            res = extractor.execute(sitk.GetImageFromArray(img), sitk.GetImageFromArray(m.astype(np.uint8)))
            ref = [float(res[f"original_{name}"]) for name in t.get_feature_names_out()]
            np.testing.assert_allclose(ours[i], ref, rtol=2e-7)  # the cache's float32


def test_kernels_work_where_numba_cannot_cache():
    """Where no folder is writable for numba's cache (a read-only install without a home),
    the kernels module still imports and computes, compiling in the process instead of
    raising at import."""
    import subprocess
    import sys

    code = (
        "import numba.core.caching as c\n"
        "impl = getattr(c, 'CacheImpl', None) or c._CacheImpl\n"  # (_CacheImpl in older numba)
        "impl._locator_classes = []\n"  # no cache folder can be found
        "import numpy as np\n"
        "from featurekit.handcrafted import _kernels as k\n"
        "assert not k.CACHE\n"
        "lv = np.zeros((5, 6), np.uint8); lv[1:4, 1:3] = 2; lv[2, 4] = 2\n"
        "level, size = k.zones8(lv)\n"
        "print(level.tolist(), size.tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "[2, 2] [6, 1]"  # the 3 x 2 block, and the pixel two columns apart
