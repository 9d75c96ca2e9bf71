"""GLCM / Haralick: hand-computed matrices and features on a tiny image, equality
with skimage.feature.graycoprops and (when installed) pyradiomics on BUSI."""

import logging
import math

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops

from featurekit.errors import DataError
from featurekit.handcrafted import (
    GLCM_FEATURES,
    PYRADIOMICS_FEATURES,
    SKIMAGE_FEATURES,
    GLCMFeatures,
    glcm_feature_names,
    glcm_features,
    glcm_matrix,
    glcm_offsets,
    quantize,
)
from featurekit.handcrafted.glcm_counts import count_matrices, count_pairs
from featurekit.handcrafted.glcm_quantize import MAX_LEVELS, bin_edges, quantize_levels
from featurekit.imageio import read_image, read_mask

EPS = np.spacing(1)
TINY = np.array([[1, 1, 2, 3],
                 [1, 2, 2, 3],
                 [3, 3, 1, 2],
                 [2, 1, 3, 3]], dtype=np.uint8)
ANGLES = (0, 45, 90, 135)
OFFSETS = {0: (0, 1), 45: (1, 1), 90: (1, 0), 135: (1, -1)}  # skimage's (round(sin), round(cos))


# --------------------------------------------------------------------------- reference (loops)
def ref_counts(levels, mask, dr, dc, G, symmetric=True):
    P = np.zeros((G, G))
    H, W = levels.shape
    for r in range(H):
        for c in range(W):
            r2, c2 = r + dr, c + dc
            if 0 <= r2 < H and 0 <= c2 < W and mask[r, c] and mask[r2, c2]:
                P[levels[r, c] - 1, levels[r2, c2] - 1] += 1
    return P + P.T if symmetric else P


def ref_features(P, Ng, n_present):
    """Every feature by its definition, with explicit loops (1-based levels)."""
    G = P.shape[0]
    p = P / P.sum()
    L = range(G)
    v = lambda a: a + 1.0  # level value of index a  # noqa: E731
    px = [sum(p[a, b] for b in L) for a in L]
    py = [sum(p[a, b] for a in L) for b in L]
    ux = sum(v(a) * p[a, b] for a in L for b in L)
    uy = sum(v(b) * p[a, b] for a in L for b in L)
    f = {}
    f["Autocorrelation"] = sum(v(a) * v(b) * p[a, b] for a in L for b in L)
    f["JointAverage"] = ux
    for name, k in (("ClusterProminence", 4), ("ClusterShade", 3), ("ClusterTendency", 2)):
        f[name] = sum((v(a) + v(b) - ux - uy) ** k * p[a, b] for a in L for b in L)
    f["Contrast"] = sum((a - b) ** 2 * p[a, b] for a in L for b in L)
    sx = math.sqrt(sum((v(a) - ux) ** 2 * p[a, b] for a in L for b in L))
    sy = math.sqrt(sum((v(b) - uy) ** 2 * p[a, b] for a in L for b in L))
    cov = sum((v(a) - ux) * (v(b) - uy) * p[a, b] for a in L for b in L)
    f["Correlation"] = 1.0 if sx * sy == 0 else cov / (sx * sy + EPS)
    pd = [sum(p[a, b] for a in L for b in L if abs(a - b) == k) for k in range(Ng)]
    da = sum(k * pd[k] for k in range(Ng))
    f["DifferenceAverage"] = da
    f["DifferenceEntropy"] = -sum(q * math.log2(q + EPS) for q in pd)
    f["DifferenceVariance"] = sum((k - da) ** 2 * pd[k] for k in range(Ng))
    f["JointEnergy"] = sum(p[a, b] ** 2 for a in L for b in L)
    hxy = -sum(p[a, b] * math.log2(p[a, b] + EPS) for a in L for b in L)
    f["JointEntropy"] = hxy
    hx = -sum(q * math.log2(q + EPS) for q in px)
    hy = -sum(q * math.log2(q + EPS) for q in py)
    hxy1 = -sum(p[a, b] * math.log2(px[a] * py[b] + EPS) for a in L for b in L)
    hxy2 = -sum(px[a] * py[b] * math.log2(px[a] * py[b] + EPS) for a in L for b in L)
    f["Imc1"] = (hxy - hxy1) / max(hx, hy) if max(hx, hy) != 0 else 0.0
    f["Imc2"] = 0.0 if hxy2 == hxy else math.sqrt(1 - math.exp(-2 * (hxy2 - hxy)))
    f["Idm"] = sum(p[a, b] / (1 + (a - b) ** 2) for a in L for b in L)
    Q = np.zeros((G, G))
    for a in L:
        for b in L:
            Q[a, b] = sum(p[a, k] * p[b, k] / (px[a] * py[k]) for k in L if px[a] * py[k] > 0)
    ev = np.sort(np.linalg.eigvals(Q).real)
    f["MCC"] = 1.0 if n_present < 2 else math.sqrt(max(ev[-2], 0.0))
    f["Idmn"] = sum(p[a, b] / (1 + (a - b) ** 2 / Ng**2) for a in L for b in L)
    f["Id"] = sum(p[a, b] / (1 + abs(a - b)) for a in L for b in L)
    f["Idn"] = sum(p[a, b] / (1 + abs(a - b) / Ng) for a in L for b in L)
    f["InverseVariance"] = sum(p[a, b] / (a - b) ** 2 for a in L for b in L if a != b)
    f["MaximumProbability"] = p.max()
    f["SumAverage"] = sum((v(a) + v(b)) * p[a, b] for a in L for b in L)
    ps = [sum(p[a, b] for a in L for b in L if v(a) + v(b) == k) for k in range(2, 2 * Ng + 1)]
    f["SumEntropy"] = -sum(q * math.log2(q + EPS) for q in ps)
    f["SumSquares"] = sum((v(a) - ux) ** 2 * p[a, b] for a in L for b in L)
    # skimage's graycoprops on 0-based levels
    f["sk-contrast"] = f["Contrast"]
    f["sk-dissimilarity"] = sum(abs(a - b) * p[a, b] for a in L for b in L)
    f["sk-homogeneity"] = f["Idm"]
    f["sk-ASM"] = f["JointEnergy"]
    f["sk-energy"] = math.sqrt(f["JointEnergy"])
    f["sk-correlation"] = 1.0 if (sx < 1e-15 or sy < 1e-15) else cov / (sx * sy)
    m0 = sum(a * p[a, b] for a in L for b in L)
    f["sk-mean"] = m0
    f["sk-variance"] = sum((a - m0) ** 2 * p[a, b] for a in L for b in L)
    f["sk-std"] = math.sqrt(f["sk-variance"])
    f["sk-entropy"] = -sum(p[a, b] * math.log(p[a, b]) for a in L for b in L if p[a, b] > 0)
    return np.array([f[name] for name in GLCM_FEATURES])


# --------------------------------------------------------------------------- tiny image
def test_tiny_matrix_by_hand():
    assert np.array_equal(quantize(TINY, bin_width=1), TINY)
    P = glcm_matrix(TINY, bin_width=1, normed=False)
    assert P.shape == (3, 3, 1, 4)
    # 0 degrees, counted by hand: pairs (1,1) (1,2) (2,3) | (1,2) (2,2) (2,3) | (3,3) (3,1) (1,2)
    # | (2,1) (1,3) (3,3), plus the transpose
    np.testing.assert_array_equal(P[:, :, 0, 0], [[2, 4, 2], [4, 2, 2], [2, 2, 4]])
    for a, ang in enumerate(ANGLES):
        dr, dc = OFFSETS[ang]
        np.testing.assert_array_equal(P[:, :, 0, a], ref_counts(TINY, np.ones_like(TINY, bool), dr, dc, 3))
    assert glcm_offsets([1], ANGLES) == [OFFSETS[a] for a in ANGLES]
    # same layout and counts as skimage
    sk = graycomatrix(TINY - 1, [1], np.deg2rad(ANGLES), levels=3, symmetric=True)
    np.testing.assert_array_equal(P, sk)


@pytest.mark.parametrize("masked", [False, True])
def test_tiny_features_by_hand(masked):
    mask = np.ones(TINY.shape, bool)
    if masked:
        mask[:, 3] = False
        mask[3, 0] = False
    per_angle = []
    for ang in ANGLES:
        dr, dc = OFFSETS[ang]
        P = ref_counts(TINY, mask, dr, dc, 3)
        per_angle.append(ref_features(P, Ng=int(TINY[mask].max()), n_present=len(np.unique(TINY[mask]))))
    per_angle = np.array(per_angle)  # (angles, features)
    got = glcm_features([TINY], [mask] if masked else None, bin_width=1, aggregate=("mean", "range", "angle"))[0]
    names = glcm_feature_names("all", aggregate=("mean", "range", "angle"))
    assert len(got) == len(names) == len(GLCM_FEATURES) * 6
    got = got.reshape(len(GLCM_FEATURES), 6)
    np.testing.assert_allclose(got[:, 0], per_angle.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[:, 1], np.ptp(per_angle, axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[:, 2:], per_angle.T, rtol=1e-10, atol=1e-12)
    assert names[:3] == ["glcm_Autocorrelation_d1", "glcm_Autocorrelation_d1_range", "glcm_Autocorrelation_d1_a0"]


def test_constant_image_documented_values():
    feats = dict(zip(GLCM_FEATURES, glcm_features([np.full((9, 9), 130.0)])[0]))
    assert all(np.isfinite(v) for v in feats.values())
    L = 1.0  # a flat ROI gets the single level 1
    for name in ("Contrast", "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance",
                 "ClusterProminence", "ClusterShade", "ClusterTendency", "Imc1", "Imc2",
                 "SumSquares", "JointEntropy", "SumEntropy", "InverseVariance",
                 "sk-contrast", "sk-dissimilarity", "sk-variance", "sk-std", "sk-entropy", "sk-mean"):
        assert feats[name] == pytest.approx(0.0, abs=1e-12), name
    for name in ("JointEnergy", "Idm", "Idmn", "Id", "Idn", "MaximumProbability", "Correlation",
                 "MCC", "sk-ASM", "sk-energy", "sk-homogeneity", "sk-correlation"):
        assert feats[name] == pytest.approx(1.0, abs=1e-12), name
    assert feats["Autocorrelation"] == L * L and feats["JointAverage"] == L and feats["SumAverage"] == 2 * L


# --------------------------------------------------------------------------- quantisation
def test_quantisation_rules():
    x = np.array([[54.0, 74.0, 75.0, 100.0, 166.0]])
    # bin width: edges equally spaced from 0 (50, 75, ...), pyradiomics' example
    np.testing.assert_array_equal(quantize(x, bin_width=25), [[1, 1, 2, 3, 5]])
    np.testing.assert_array_equal(quantize(x, bin_count=4), [[1, 1, 1, 2, 4]])
    # ROI vs image vs fixed range (fixed: edges 0, 17.5, 35; pixels clipped to 35)
    img = np.array([[0.0, 10, 20, 30], [40, 50, 60, 70]])
    mask = np.array([[0, 0, 1, 1], [1, 1, 0, 0]], bool)
    np.testing.assert_array_equal(quantize(img, mask, bin_count=2), [[0, 0, 1, 1], [2, 2, 0, 0]])
    np.testing.assert_array_equal(quantize(img, mask, bin_count=2, quant_range="image"), [[0, 0, 1, 1], [2, 2, 0, 0]])
    np.testing.assert_array_equal(quantize(img, mask, bin_count=4, quant_range="image"), [[0, 0, 2, 2], [3, 3, 0, 0]])
    np.testing.assert_array_equal(quantize(img, mask, bin_count=4), [[0, 0, 1, 2], [3, 4, 0, 0]])
    np.testing.assert_array_equal(quantize(img, None, bin_count=2, quant_range=(0, 35)), [[1, 1, 2, 2], [2, 2, 2, 2]])
    # non-integer data take the arithmetic path: same as numpy.digitize
    rng = np.random.default_rng(0)
    y = rng.random((50, 60)) * 1000 - 300
    edges = np.histogram_bin_edges(y, 37)
    edges[-1] += 1
    np.testing.assert_array_equal(quantize(y, bin_count=37), np.digitize(y, edges))
    edges = np.arange(y.min() - (y.min() % 7.5), y.max() + 15, 7.5)
    np.testing.assert_array_equal(quantize(y, bin_width=7.5), np.digitize(y, edges))
    # the range choice changes the features
    a = glcm_features([img], [mask], bin_count=4, features=["Contrast"])
    b = glcm_features([img], [mask], bin_count=4, features=["Contrast"], quant_range="image")
    assert a[0, 0] != b[0, 0]


# --------------------------------------------------------------------------- box & engines
def _levels_with_mask(rng, shape, G):
    lv = rng.integers(1, G + 1, shape)
    mask = rng.random(shape) < 0.7
    mask[0, :] = False  # the box is smaller than the image
    return np.where(mask, lv, 0).astype(np.uint8), mask


def test_counting_engines_equal_pair_loops():
    """skimage's loop (CPU) and the one-bincount torch engine (run here on the CPU, as on a
    GPU) count the same pairs as a plain loop, for offsets rounded either way."""
    rng = np.random.default_rng(7)
    dists, angs = [1, 2, 2.5], [0, 30, 45, 60, 90, 135, 150]
    offs = glcm_offsets(dists, angs)
    assert (2, 1) in offs and (1, 2) in offs and (-2, 1) not in offs  # rounding of 2 sin 60 etc.
    levels, Gs, refs = [], [], []
    for shape, G in (((13, 17), 5), ((9, 11), 3), ((15, 8), 6)):
        lv, mask = _levels_with_mask(rng, shape, G)
        g = int(lv.max())
        levels.append(lv)
        Gs.append(g)
        refs.append(np.stack([ref_counts(lv, mask, dr, dc, g, symmetric=False) for dr, dc in offs]))
    for backend in ("skimage", "torch"):
        for symmetric in (False, True):
            P, G = count_matrices(levels, Gs, dists, angs, symmetric, backend=backend)
            assert P.shape == (3, len(offs), 6, 6) and G == 6
            for k, ref in enumerate(refs):
                want = ref + ref.transpose(0, 2, 1) if symmetric else ref
                np.testing.assert_array_equal(P[k, :, : Gs[k], : Gs[k]], want)
                assert not P[k, :, Gs[k]:].any() and not P[k, :, :, Gs[k]:].any()  # zero padding


def test_box_quantisation_equals_whole_image():
    """Quantising the mask's bounding box alone gives the whole image's levels on that box,
    for every range rule, both binnings and integer (LUT) as well as float data, including
    pixels outside the ROI far beyond its intensity range."""
    rng = np.random.default_rng(8)
    mask = np.zeros((30, 40), bool)
    mask[6:20, 9:31] = rng.random((14, 22)) < 0.8
    mask[6, 9] = mask[19, 30] = True
    box = (slice(6, 20), slice(9, 31))
    mask[7, 10] = False  # a pixel inside the box but outside the ROI
    ints = rng.integers(40, 200, (30, 40)).astype(np.float64)
    ints[0, 0], ints[7, 10] = 3, 65535  # outside the box / in the box, far from the ROI's range
    small = rng.integers(0, 120, (30, 40)).astype(np.float64)  # bin edges from 0: x + w in uint16
    small[7, 10] = 65530
    wild = ints.copy()
    wild[0, 0], wild[7, 10] = -3e5, 1e18  # not uint16: the float path
    data = {"ints": ints, "small ints": small, "wild": wild, "negative ints": ints - 1000,
            "floats": ints + rng.random((30, 40)), "16-bit": rng.integers(0, 65536, (30, 40)).astype(np.float64),
            # 8/16-bit pixels are quantised as they are (no conversion)
            "uint8": np.clip(small, 0, 255).astype(np.uint8), "uint16": ints.astype(np.uint16)}
    for name, img in data.items():
        scale = 13 if name == "16-bit" else 1  # 16-bit: fewer than MAX_LEVELS levels
        for binning in ({"bin_width": 25 * scale}, {"bin_count": 16}, {"bin_width": 7.5 * scale}):
            for qr in ("roi", "image", (50.0, 150.0)):
                if name in ("16-bit", "negative ints", "uint16") and qr != "roi":
                    continue
                if qr == "image" and img.dtype.kind == "f":  # the image's own range: without the 1e18 outlier
                    img = np.clip(img, -500, 500)
                whole = quantize(img, mask, quant_range=qr, **binning)
                lv, lmin, lmax = quantize_levels(img, mask, quant_range=qr, crop=True,
                                                 bin_width=binning.get("bin_width"), bin_count=binning.get("bin_count"))
                where = f"{name} {binning} {qr}"
                assert lv.dtype == np.uint8 or (lv.dtype == np.uint16 and whole.max() >= 254), where
                np.testing.assert_array_equal(lv, whole[box], err_msg=where)
                assert (lmin, lmax) == (whole[mask].min(), whole[mask].max()), where
    # levels equal numpy.digitize with pyradiomics' edges
    edges = np.arange(ints[mask].min() - ints[mask].min() % 25, ints[mask].max() + 50, 25.0)
    np.testing.assert_array_equal(quantize(ints, mask)[mask], np.digitize(ints[mask], edges))
    # a fixed range with fractional ends makes integer pixels fractional once clipped
    edges = np.arange(50.25, 149.5 + 0.5, 0.25)
    np.testing.assert_array_equal(quantize(ints, mask, bin_width=0.25, quant_range=(50.25, 149.5))[mask],
                                  np.digitize(np.clip(ints[mask], 50.25, 149.5), edges))


def test_many_levels_in_uint16_equal_skimage():
    """300 levels (uint16 levels, 301 x 301 counts) match skimage's graycomatrix."""
    rng = np.random.default_rng(9)
    img = rng.normal(1000, 300, (60, 70))
    lv = quantize(img, bin_count=300)
    assert lv.max() == 300
    P = glcm_matrix(img, bin_count=300, distances=[1, 2], normed=False)
    ref = graycomatrix((lv - 1).astype(np.uint16), [1, 2], np.deg2rad(ANGLES), levels=300, symmetric=True)
    np.testing.assert_array_equal(P, ref)
    F = glcm_features([img], bin_count=300, features="skimage", aggregate="angle", distances=[1, 2])[0]
    Pn = ref / ref.sum(axis=(0, 1), keepdims=True)
    want = np.concatenate([graycoprops(Pn, p)[d] for d in range(2) for p in SKIMAGE_FEATURES])
    np.testing.assert_allclose(F, want, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- real images
@pytest.fixture(scope="module")
def busi(busi_dir):
    out = []
    for rel in ("benign/benign (2).png", "malignant/malignant (5).png", "benign/benign (234).png"):
        path = busi_dir / rel
        out.append((read_image(path), read_mask(str(path).replace(".png", "_mask.png"))))
    assert out[2][0].ndim == 3  # one of BUSI's RGB images
    return out


def test_matches_skimage_graycoprops(busi):
    from featurekit.imageio import to_gray

    for img, mask in busi:
        gray = to_gray(img)[::2, ::2]
        m = mask[::2, ::2]
        lv = quantize(gray, bin_count=32)
        ang = np.deg2rad(ANGLES)
        P = graycomatrix((lv - 1).astype(np.uint8), [1, 2], ang, levels=32, symmetric=True, normed=True)
        got = glcm_features([gray], bin_count=32, distances=[1, 2], features="skimage", aggregate="angle")[0]
        ref = [graycoprops(P, prop)[d] for d in range(2) for prop in SKIMAGE_FEATURES]
        np.testing.assert_allclose(got, np.concatenate(ref), rtol=1e-6, atol=1e-12)
        # with a mask: outside pixels as an extra level that is then dropped
        lvm = quantize(gray, m, bin_count=32)
        lvm[~m] = 33
        Pm = graycomatrix((lvm - 1).astype(np.uint8), [1], ang, levels=33, symmetric=True)[:32, :32]
        got = glcm_features([gray], [m], bin_count=32, features="skimage", aggregate="angle")[0]
        ref = np.concatenate([graycoprops(Pm, prop)[0] for prop in SKIMAGE_FEATURES])
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-12)
        np.testing.assert_array_equal(glcm_matrix(gray, m, bin_count=32, normed=False)[:, :, 0, :],
                                      Pm[: lvm[m].max(), : lvm[m].max(), 0, :])


def test_matches_pyradiomics(busi):
    radiomics_glcm = pytest.importorskip("radiomics.glcm")  # optional test-only extra
    import SimpleITK as sitk

    from featurekit.imageio import to_gray

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    for img, mask in busi:
        gray = to_gray(img)
        assert mask.any() and not mask.all()
        for settings, ours in (({"binWidth": 25}, {}), ({"binCount": 16}, {"bin_count": 16})):
            ext = radiomics_glcm.RadiomicsGLCM(
                sitk.GetImageFromArray(gray), sitk.GetImageFromArray(mask.astype(np.uint8)), **settings
            )
            ext.enableAllFeatures()
            res = ext.execute()
            ref = np.array([float(res[name]) for name in PYRADIOMICS_FEATURES])
            got = glcm_features([gray], [mask], features="pyradiomics", **ours)[0]
            scale = np.abs(ref).max()
            np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-12 * scale)


def test_batch_equals_single_images_and_torch_counting(busi, monkeypatch):
    from featurekit.handcrafted import glcm as glcm_module
    from featurekit.imageio import to_gray

    grays = [to_gray(img)[:200, :220] for img, _ in busi]
    masks = [m[:200, :220] if m[:200, :220].any() else None for _, m in busi]
    batch = glcm_features(grays, masks, distances=[1, 3])
    for i in range(len(grays)):
        np.testing.assert_allclose(batch[i], glcm_features([grays[i]], [masks[i]], distances=[1, 3])[0], rtol=1e-12)
    lv = quantize(grays[0], masks[0])
    np.testing.assert_array_equal(count_pairs(lv, int(lv.max()), [1, 3], ANGLES, backend="skimage"),
                                  count_pairs(lv, int(lv.max()), [1, 3], ANGLES, backend="torch"))
    # the whole pipeline with the GPU's counting engine (one torch.bincount per batch), run on the CPU
    engines = []

    def torch_engine(*args, **kwargs):
        engines.append("torch")
        return count_matrices(*args, **kwargs, backend="torch")

    monkeypatch.setattr(glcm_module, "count_matrices", torch_engine)
    np.testing.assert_array_equal(glcm_features(grays, masks, distances=[1, 3]), batch)
    assert engines


def test_sixteen_bit_images():
    rng = np.random.default_rng(3)
    img16 = rng.integers(0, 65536, (40, 40)).astype(np.uint16)
    # bin width 25 on a 16-bit range: ~2600 levels; the error says which parameter to set
    with pytest.raises(DataError, match=r"image 0: .*2\d{3} grey levels.*set bin_count") as err:
        glcm_features([img16])
    width = float(str(err.value).rsplit(">= ", 1)[1])  # the smallest bin width it suggests works
    assert glcm_features([img16], bin_width=width, features=["Contrast"]).shape == (1, 1)  # ~1020 levels
    assert width < 65536 / (MAX_LEVELS - 2) * 1.01
    f16 = glcm_features([img16], bin_count=32)
    ff = glcm_features([img16.astype(np.float64)], bin_count=32)
    np.testing.assert_array_equal(f16, ff)
    # 12-bit data in a 16-bit container quantise in native units with the default bin width
    img12 = rng.integers(0, 4096, (40, 40)).astype(np.uint16)
    edges = np.arange(img12.min() - img12.min() % 25, img12.max() + 50, 25.0)
    np.testing.assert_array_equal(quantize(img12), np.digitize(img12, edges))
    # the transformer on a uint16 stack: a DataError naming the image and the parameter
    stack = np.stack([img12, img16])
    with pytest.raises(DataError, match="image 1: .*bin_count"):
        GLCMFeatures().fit_transform(stack)
    assert np.isfinite(GLCMFeatures(bin_count=64).fit_transform(stack)).all()


def test_sixteen_bit_png_through_extract_names_the_file(tmp_path, capsys):
    from PIL import Image

    from featurekit.cli import main

    rng = np.random.default_rng(4)
    data = tmp_path / "data"
    for cls in ("benign", "malignant"):
        (data / cls).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(rng.integers(0, 256, (30, 40), dtype=np.uint8)).save(data / cls / f"{cls}{k}.png")
    Image.fromarray(rng.integers(0, 65536, (30, 40), dtype=np.uint16)).save(data / "malignant" / "deep.png")
    code = main(["extract", str(data), "--handcrafted", "glcm", "--cache", str(tmp_path / "c.h5"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "malignant/deep.png" in err and "glcm:bin_count=64" in err and "Traceback" not in err
    # ... and the parameter it names is the way out
    assert main(["extract", str(data), "--handcrafted", "glcm:bin_count=64", "--cache", str(tmp_path / "c.h5"),
                 "--quiet"]) == 0


# --------------------------------------------------------------------------- errors & estimator
def test_bad_input_raises_clear_errors():
    img = np.arange(64, dtype=np.float64).reshape(8, 8)
    bad = img.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        glcm_features([bad])
    with pytest.raises(DataError, match="empty"):
        glcm_features([img], [np.zeros((8, 8), bool)])
    one = np.zeros((8, 8), bool)
    one[4, 4] = True
    with pytest.raises(DataError, match="image 1: no pixel pair"):
        glcm_features([img, img], [None, one])
    row = np.zeros((8, 8), bool)
    row[2, :] = True
    assert np.isfinite(glcm_features([img], [row])).all()  # only 0 degrees has pairs: mean over it
    with pytest.raises(DataError, match="angle 45"):
        glcm_features([img], [row], aggregate="angle")
    with pytest.raises(DataError, match="not both"):
        glcm_features([img], bin_width=10, bin_count=8)
    with pytest.raises(DataError, match="zero offset"):
        glcm_features([img], distances=[0.2])
    with pytest.raises(DataError, match="features"):
        glcm_features([img], features=["Homogeneity1"])
    with pytest.raises(DataError, match="quant_range"):
        glcm_features([img], quant_range=(5, 5))


def test_estimator_names():
    est = GLCMFeatures(distances=[1, 2], features=["Contrast", "sk-homogeneity"], aggregate=["mean", "range"])
    assert list(est.get_feature_names_out()) == [
        "glcm_Contrast_d1", "glcm_Contrast_d1_range", "glcm_sk-homogeneity_d1", "glcm_sk-homogeneity_d1_range",
        "glcm_Contrast_d2", "glcm_Contrast_d2_range", "glcm_sk-homogeneity_d2", "glcm_sk-homogeneity_d2_range",
    ]
    names = GLCMFeatures().get_feature_names_out()
    assert len(names) == 34 and "glcm_Contrast_d1" in names and "glcm_MCC_d1" in names


def test_quantisation_of_extreme_pixel_types_and_values():
    """64-bit integer pixels are binned as their float64 values (as numpy.digitize reads them);
    whole numbers beyond 2**52 or beyond int64, and ranges whose float64 edges coincide, get
    numpy.digitize's bins, not a table lookup out of its range or a division by zero."""
    rng = np.random.default_rng(4)
    small = rng.integers(0, 256, (20, 20))
    mask = np.ones((20, 20), bool)
    high = small > 128
    cases = [(small.astype(np.uint64), {}), (small.astype(np.int64), {"bin_count": 8}),
             ((small + 2**60).astype(np.int64), {"bin_count": 8}),
             (np.array([[0, 2**64 - 1]], np.uint64), {"bin_count": 8}),
             (np.where(high, 1e19 + 2048, 1e19), {"bin_count": 2}),
             (-np.where(high, 1e19, 1e19 + 2048), {"bin_count": 2}),
             (np.where(high, 2.0**53 + 2, 2.0**53), {"bin_count": 2}),
             (np.full((20, 20), 1e16), {"bin_count": 8})]
    for img, binning in cases:
        m = np.ones(img.shape, bool)
        lv, lmin, lmax = quantize_levels(img, m, crop=True, **binning)
        x = img.astype(np.float64)
        edges = bin_edges(x.min(), x.max(), binning.get("bin_width"), binning.get("bin_count"))
        want = np.digitize(x, edges)
        np.testing.assert_array_equal(lv, want, err_msg=f"{img.dtype} {binning} {x.min():g}")
        assert (lmin, lmax) == (want.min(), want.max())
    for name in ("glcm", "glrlm", "glszm", "gldm", "ngtdm"):  # the families take them too
        from featurekit.handcrafted import FAMILIES

        np.testing.assert_array_equal(FAMILIES[name]().featurize([small.astype(np.uint64)], [mask]),
                                      FAMILIES[name]().featurize([small.astype(np.float64)], [mask]))
