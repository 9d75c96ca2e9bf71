"""Gabor filter bank: equality with skimage.filters.gabor on real BUSI images,
orientation selectivity, integer inputs, bad input, tiles of large images."""

import math
import tracemalloc

import numpy as np
import pytest
from scipy.signal import convolve2d
from skimage.filters import gabor as sk_gabor
from skimage.filters import gabor_kernel as sk_gabor_kernel

from featurekit.errors import DataError
from featurekit.handcrafted import (
    GaborFeatures,
    gabor_bank,
    gabor_feature_names,
    gabor_features,
    gabor_kernel,
    gabor_response,
)
from featurekit.imageio import read_image, read_mask

FREQS = (0.5, 0.25, 0.125, 0.1)
THETAS = [k * math.pi / 8 for k in range(8)]


def _crop(img, mask, size=128):
    """size x size crop centred on the lesion (clipped to the image)."""
    rows, cols = np.nonzero(mask)
    cy, cx = int(rows.mean()), int(cols.mean())
    y0 = min(max(0, cy - size // 2), img.shape[0] - size)
    x0 = min(max(0, cx - size // 2), img.shape[1] - size)
    return img[y0 : y0 + size, x0 : x0 + size], mask[y0 : y0 + size, x0 : x0 + size]


@pytest.fixture(scope="module")
def busi_crops(busi_dir):
    out = []
    for rel in ("benign/benign (1).png", "malignant/malignant (10).png"):
        path = busi_dir / rel
        img = read_image(path)
        mask = read_mask(str(path).replace(".png", "_mask.png"))
        img, mask = _crop(img, mask)
        assert img.dtype == np.uint8 and mask.any() and not mask.all()
        out.append((img, mask))
    return out


@pytest.fixture(scope="module")
def sk_responses(busi_crops):
    """skimage's real/imag responses of the default bank, on the float images."""
    refs = []
    for img, _ in busi_crops:
        x = img.astype(np.float64)
        refs.append([sk_gabor(x, f, t) for f in FREQS for t in THETAS])
    return refs


def _stats(v):
    m = v.mean()
    d = v - m
    var = (d * d).mean()
    flat = np.sqrt(var) <= 1e-9 * (np.abs(v).max() + 1)  # e.g. imag part at f=0.5, theta=0
    return {
        "mean": m, "var": var, "std": np.sqrt(var), "energy": (v * v).mean(),
        "skew": 0.0 if flat else (d**3).mean() / var**1.5,
        "kurtosis": 0.0 if flat else (d**4).mean() / var**2 - 3,
    }


def _expected(responses, mask, stats, response="magnitude"):
    row = []
    for re, im in responses:
        v = {"magnitude": np.hypot(re, im), "real": re, "imag": im}[response]
        v = v if mask is None else v[mask]
        s = _stats(v)
        row.extend(s[k] for k in stats)
    return np.array(row)


def test_kernel_is_skimage_kernel():
    for f, t, bw, sigma, off in [(0.5, 0.0, 1, None, 0), (0.1, 1.1, 1, None, 0.3),
                                 (0.25, 2.5, 1.5, None, 0), (0.2, 0.7, 1, 3.0, 1.0)]:
        ours = gabor_kernel(f, t, bandwidth=bw, sigma=sigma, offset=off)
        ref = sk_gabor_kernel(f, t, bandwidth=bw, sigma_x=sigma, sigma_y=sigma, offset=off)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("with_mask", [False, True])
def test_default_bank_matches_skimage_on_busi(busi_crops, sk_responses, with_mask):
    images = [img for img, _ in busi_crops]
    masks = [m for _, m in busi_crops] if with_mask else None
    expected = np.stack([
        _expected(resp, m if with_mask else None, ("mean", "var"))
        for resp, (_, m) in zip(sk_responses, busi_crops)
    ])
    fast = gabor_features(images, masks, device="cpu")  # float32 FFTs
    assert fast.shape == (2, 64)
    np.testing.assert_allclose(fast, expected, rtol=1e-4)
    exact = gabor_features(images, masks, device="cpu", dtype="float64")
    np.testing.assert_allclose(exact, expected, rtol=1e-9)


@pytest.mark.parametrize("response", ["magnitude", "real", "imag"])
def test_all_statistics_and_responses_match_skimage(busi_crops, sk_responses, response):
    img, mask = busi_crops[1]
    stats = ("mean", "var", "std", "energy", "skew", "kurtosis")
    got = gabor_features([img], [mask], statistics=stats, response=response, dtype="float64",
                         device="cpu")[0]
    exp = _expected(sk_responses[1], mask, stats, response)
    got, exp = got.reshape(-1, len(stats)), exp.reshape(-1, len(stats))
    # values that vanish (mean of odd kernels, the imaginary part at f=0.5, theta=0)
    # are compared on the scale of their statistic
    scale = np.abs(exp).max(axis=0)
    assert np.all(np.abs(got - exp) <= 1e-8 * np.abs(exp) + 1e-10 * scale)
    if response == "imag":  # sin(pi x) = 0 on the grid: a constant response, skew = kurtosis = 0
        assert exp[0, 1] < 1e-20 and got[0, 4] == 0 and got[0, 5] == 0


def test_integer_images_are_filtered_as_float(busi_crops):
    img, _ = busi_crops[0]
    as_uint8 = gabor_response(img, 0.1, 0.3)
    as_float = gabor_response(img.astype(np.float64), 0.1, 0.3)
    np.testing.assert_array_equal(as_uint8, as_float)
    re_f, _ = sk_gabor(img.astype(np.float64), 0.1, 0.3)
    np.testing.assert_allclose(as_float.real, re_f, rtol=1e-9, atol=1e-9 * np.abs(re_f).max())
    # skimage's own trap: a uint8 input is convolved in uint8 (negative responses wrap/clip)
    re_u8, _ = sk_gabor(img, 0.1, 0.3)
    assert re_u8.dtype == np.uint8 and not np.allclose(re_u8, re_f, atol=1.0)
    # 16-bit: same features as the float image
    img16 = img.astype(np.uint16) * 257
    np.testing.assert_allclose(
        gabor_features([img16], dtype="float64", device="cpu"),
        gabor_features([img16.astype(np.float64)], dtype="float64", device="cpu"),
        rtol=1e-12,
    )


def test_rgb_uses_bt709_luma():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    gray = rgb.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721])
    np.testing.assert_allclose(
        gabor_features([rgb], device="cpu", dtype="float64"),
        gabor_features([gray], device="cpu", dtype="float64"), rtol=1e-12,
    )


def test_reflect_extension_for_tiny_images():
    """Images smaller than the kernel: the documented np.pad('symmetric') extension."""
    rng = np.random.default_rng(2)
    x = rng.random((3, 7)) * 100
    g = gabor_kernel(0.1, 0.4)
    P = g.shape[0] // 2
    xp = np.pad(x, P, mode="symmetric")
    ref = convolve2d(xp, g.real, mode="valid") + 1j * convolve2d(xp, g.imag, mode="valid")
    np.testing.assert_allclose(gabor_response(x, 0.1, 0.4), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("k", [0, 2, 4, 6])
def test_rotated_stripes_peak_at_their_orientation(k):
    """A sinusoidal grating whose wave runs at angle phi responds most to theta = phi."""
    phi = k * math.pi / 8
    f0 = 0.125
    yy, xx = np.mgrid[0:96, 0:96].astype(np.float64)
    img = 100 + 50 * np.cos(2 * math.pi * f0 * (xx * math.cos(phi) + yy * math.sin(phi)))
    feats = gabor_features([img], frequencies=[f0], statistics=("mean",), device="cpu")[0]
    assert feats.shape == (8,)
    assert int(np.argmax(feats)) == k
    assert feats[k] > 3 * np.median(feats)
    # np.rot90 of vertical stripes (k=0) are horizontal stripes: peak at 90 degrees
    if k == 0:
        rot = gabor_features([np.rot90(img)], frequencies=[f0], statistics=("mean",), device="cpu")[0]
        assert int(np.argmax(rot)) == 4


def test_constant_image_has_documented_values():
    img = np.full((40, 40), 7.0)
    stats = ("mean", "var", "std", "skew", "kurtosis")
    feats = gabor_features([img], statistics=stats, device="cpu", dtype="float64")[0].reshape(32, 5)
    assert np.all(np.isfinite(feats))
    bank = gabor_bank()
    for row, (f, t, _, _) in zip(feats, bank):
        g = gabor_kernel(f, t)
        assert row[0] == pytest.approx(7.0 * abs(g.sum()), rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(feats[:, 1:], 0.0, atol=1e-12)


ALL_STATS = ("mean", "var", "std", "energy", "skew", "kurtosis")


def test_tiles_equal_the_whole_image():
    """Tiles (with the kernel margin, reflect at the image border) merged by their
    moments give the whole-image statistics: uneven tiles, a mask that leaves
    some tiles empty, every statistic, both responses; float64 to ~1e-12."""
    from featurekit.handcrafted.gabor import _gabor_chunk

    rng = np.random.default_rng(3)
    img = rng.random((700, 530)) * 200 + 20
    img[:, 300:] = np.linspace(0, 90, 230)  # a smooth part: near-constant responses too
    mask = np.zeros(img.shape, bool)
    mask[90:410, 40:290] = True  # leaves most tiles of 128 empty
    for response in ("magnitude", "real"):
        kw = dict(bank=tuple(gabor_bank([0.5, 0.1], [0, 45, 120])), offset=0.3, statistics=ALL_STATS,
                  response=response, device="cpu", dtype="float64")
        whole = _gabor_chunk([img, img], [None, mask], tile=10**6, **kw)
        tiled = _gabor_chunk([img, img], [None, mask], tile=128, **kw)
        np.testing.assert_allclose(tiled, whole, rtol=1e-9, atol=1e-9)
        # float32 tiles against the float64 whole image: float32 rounding only
        kw["dtype"] = "float32"
        f32 = _gabor_chunk([img, img], [None, mask], tile=128, **kw)
        np.testing.assert_allclose(f32, whole, rtol=2e-5, atol=1e-4)


def test_default_tiling_of_a_large_image_is_exact():
    """An image larger than one tile (1100 x 1030: 2 x 2 tiles of the default 1024)
    gives the whole-image statistics."""
    from featurekit.handcrafted.gabor import TILE

    assert TILE == 1024
    img = np.random.default_rng(4).random((1100, 1030)) * 255
    kw = dict(frequencies=[0.25, 0.1], orientations=3, statistics=ALL_STATS, device="cpu", dtype="float64")
    tiled = gabor_features([img], **kw)
    from featurekit.handcrafted import gabor

    old, gabor.TILE = gabor.TILE, 10**6
    try:
        whole = gabor_features([img], **kw)
    finally:
        gabor.TILE = old
    np.testing.assert_allclose(tiled, whole, rtol=1e-9, atol=1e-9)


def test_large_image_in_bounded_memory():
    """A 3000 x 3000 image is filtered tile by tile: the numpy allocations stay below
    1.5x the size of a float64 copy (the whole-image FFT path of before peaked above 10x);
    the 8-bit image itself is read tile by tile, never copied whole."""
    img = (np.random.default_rng(7).random((3000, 3000)) * 255).astype(np.uint8)
    est = GaborFeatures(frequencies=[0.25, 0.1], orientations=2, statistics=("mean", "var", "skew"))
    tracemalloc.start()
    try:
        out = est.transform([img])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * img.size * 8, f"peak {peak / 2**20:.0f} MiB for a {img.size * 8 / 2**20:.0f} MiB image"
    assert out.shape == (1, 12) and np.all(np.isfinite(out))


def test_feature_names_and_shape():
    names = gabor_feature_names()
    assert len(names) == 64 and len(set(names)) == 64
    assert names[:3] == ["gabor_f0.5_t0_mean", "gabor_f0.5_t0_var", "gabor_f0.5_t22.5_mean"]
    assert "gabor_f0.25_t45_mean" in names and "gabor_f0.1_t157.5_var" in names
    est = GaborFeatures(frequencies=[0.2], orientations=[0, 90], statistics=["std"], response="real")
    assert list(est.get_feature_names_out()) == ["gabor_f0.2_t0_real_std", "gabor_f0.2_t90_real_std"]
    X = np.random.default_rng(0).random((3, 20, 24))
    assert est.fit_transform(X).shape == (3, 2)
    assert est.fit_transform(X).dtype == np.float32


def test_bad_input_raises_clear_errors():
    img = np.random.default_rng(0).random((20, 20))
    bad = img.copy()
    bad[3, 4] = np.nan
    with pytest.raises(DataError, match="NaN"):
        gabor_features([bad], device="cpu")
    bad[3, 4] = np.inf
    with pytest.raises(DataError, match="inf"):
        gabor_features([bad], device="cpu")
    with pytest.raises(DataError, match="empty"):
        gabor_features([img], [np.zeros((20, 20), bool)], device="cpu")
    with pytest.raises(DataError, match="shape"):
        gabor_features([img], [np.ones((20, 21), bool)], device="cpu")
    with pytest.raises(DataError, match="frequencies"):
        gabor_features([img], frequencies=[0.7], device="cpu")
    with pytest.raises(DataError, match="statistics"):
        gabor_features([img], statistics=["median"], device="cpu")
    with pytest.raises(DataError, match="response"):
        gabor_features([img], response="phase", device="cpu")
    # empty_mask='whole' falls back to the whole image
    whole = gabor_features([img], [np.zeros((20, 20), bool)], empty_mask="whole", device="cpu")
    np.testing.assert_array_equal(whole, gabor_features([img], device="cpu"))


def test_torch_fft_path_equals_scipy_path(busi_crops):
    """The torch.fft code that runs on CUDA devices, exercised on the CPU."""
    from featurekit.handcrafted.gabor import _gabor_chunk

    images = [img.astype(np.float64) for img, _ in busi_crops]
    masks = [None, busi_crops[1][1]]
    kw = dict(bank=tuple(gabor_bank()), offset=0.0, statistics=("mean", "var", "skew"),
              response="magnitude", device="cpu")
    for dtype, rtol in (("float32", 1e-5), ("float64", 1e-11)):
        a = _gabor_chunk(images, masks, dtype=dtype, **kw)
        b = _gabor_chunk(images, masks, dtype=dtype, backend="torch", **kw)
        np.testing.assert_allclose(b, a, rtol=rtol, atol=1e-9)
    # tiles on the torch path too (2 x 2 tiles of 64 with their margins)
    c = _gabor_chunk(images, masks, dtype="float64", backend="torch", tile=64, **kw)
    np.testing.assert_allclose(c, a, rtol=1e-9, atol=1e-9)
