"""Haar-like features: coordinates and values equal skimage's, the default grid set and
the full set, subsets, the resize rule at any size, memory guards."""

import time
import tracemalloc

import numpy as np
import pytest
from skimage.feature import haar_like_feature, haar_like_feature_coord
from skimage.transform import integral_image, resize

from featurekit.errors import DataError
from featurekit.handcrafted import (
    FEATURE_TYPES,
    HaarFeatures,
    haar_feature_coords,
    haar_feature_count,
    haar_feature_names,
    haar_features,
    haar_window,
)
from featurekit.handcrafted._resize import resize as fk_resize
from featurekit.handcrafted.haar import _apply, _apply_torch, _integral, _operator
from featurekit.imageio import read_image, read_mask, to_gray


@pytest.fixture(scope="module")
def busi(busi_dir):
    out = []
    for rel in ("benign/benign (3).png", "malignant/malignant (7).png"):
        path = busi_dir / rel
        out.append((read_image(path), read_mask(str(path).replace(".png", "_mask.png"))))
    return out


@pytest.mark.parametrize("window,types", [((5, 4), None), ((6, 7), ["type-4", "type-2-x"]), ((3, 9), "type-3-x")])
def test_coordinates_equal_skimage(window, types):
    h, w = window
    ours = haar_feature_coords(window, types, feature_set="full")
    ref_coord, ref_type = haar_like_feature_coord(w, h, types)
    coord, ftype = ours.to_skimage()
    assert len(ours) == len(ref_coord) == haar_feature_count(window, types, feature_set="full")
    assert [list(c) for c in coord] == [list(c) for c in ref_coord]
    assert list(ftype) == list(ref_type)


def test_counts_for_the_default_window():
    assert haar_feature_count(24, feature_set="full") == 162_336
    counts = {t: haar_feature_count((24, 24), t, feature_set="full") for t in FEATURE_TYPES}
    assert counts == {"type-2-x": 43_200, "type-2-y": 43_200, "type-3-x": 27_600,
                      "type-3-y": 27_600, "type-4": 20_736}
    names = haar_feature_names(feature_set="full")
    assert len(names) == 162_336 and len(set(names)) == 162_336
    assert names[0] == "haar_type-2-x_y0_x0_h1_w2"
    assert names[-1] == "haar_type-4_y22_x22_h2_w2"


@pytest.mark.parametrize("use_mask", [False, True])
def test_values_equal_skimage_on_busi(busi, use_mask):
    imgs = [img for img, _ in busi]
    masks = [m for _, m in busi] if use_mask else None
    got = haar_features(imgs, masks, feature_set="full")
    assert got.shape == (2, 162_336)
    grid = haar_features(imgs, masks)
    coord, ftype = haar_feature_coords(24).to_skimage()
    for i, (img, m) in enumerate(busi):
        win = haar_window(img, m if use_mask else None)
        ref = haar_like_feature(integral_image(win), 0, 0, 24, 24)
        scale = np.abs(ref).max()
        np.testing.assert_allclose(got[i], ref, rtol=1e-9, atol=1e-12 * scale)
        ref = haar_like_feature(integral_image(win), 0, 0, 24, 24, feature_type=ftype, feature_coord=coord)
        np.testing.assert_allclose(grid[i], ref, rtol=1e-9, atol=1e-12 * scale)


def test_default_is_the_documented_grid():
    """The default descriptor: square rectangles of side 2, 4, 8 on a grid of step s/2,
    every type at every scale -- 2,763 features, a subset of the full set in its order,
    with the full set's names and values."""
    coords = haar_feature_coords()
    assert len(coords) == haar_feature_count() == 2_763
    assert HaarFeatures().fit(np.zeros((1, 30, 30))).n_features_out_ == 2_763
    assert {t: haar_feature_count(24, t) for t in FEATURE_TYPES} == {
        "type-2-x": 597, "type-2-y": 597, "type-3-x": 519, "type-3-y": 519, "type-4": 531}
    assert np.array_equal(coords.dy, coords.dx) and set(coords.dy.tolist()) == {2, 4, 8}
    for s in (2, 4, 8):
        sel = coords.dy == s
        assert np.all(coords.y[sel] % (s // 2) == 0) and np.all(coords.x[sel] % (s // 2) == 0)
    # every position of the step-s/2 grid where the feature fits is there
    for t, name in enumerate(FEATURE_TYPES):
        ky, kx = {"type-2-x": (1, 2), "type-2-y": (2, 1), "type-3-x": (1, 3),
                  "type-3-y": (3, 1), "type-4": (2, 2)}[name]
        n = sum(len(range(0, 24 - ky * s + 1, s // 2)) * len(range(0, 24 - kx * s + 1, s // 2))
                for s in (2, 4, 8))
        assert int(np.sum(coords.type_index == t)) == n
    full = {n: i for i, n in enumerate(haar_feature_names(feature_set="full"))}
    pos = [full[n] for n in coords.names()]
    assert pos == sorted(pos) and len(set(pos)) == len(pos)
    rng = np.random.default_rng(1)
    imgs = [rng.random((40, 33)) * 255, rng.random((24, 24)) * 255]
    np.testing.assert_array_equal(haar_features(imgs), haar_features(imgs, feature_set="full")[:, pos])
    assert list(HaarFeatures(feature_set="full").get_feature_names_out()) == list(full)
    with pytest.raises(DataError, match="feature_set"):
        HaarFeatures(feature_set="all").fit(imgs)


@pytest.mark.parametrize("seed", range(4))
def test_resize_equals_skimage_for_any_shape(seed):
    """The sparse resize operator is skimage's resize (anti-aliased bilinear, 'reflect')
    for shrinking, enlarging, mixed and 1-pixel axes, and non-float input."""
    rng = np.random.default_rng(seed)
    for _ in range(25):
        H, W = rng.integers(1, 160, 2)
        h, w = (24, 24) if rng.random() < 0.3 else rng.integers(1, 50, 2)
        img = rng.random((H, W)) * 255
        ref = resize(img, (h, w), order=1, mode="reflect", anti_aliasing=True, preserve_range=True)
        np.testing.assert_allclose(fk_resize(img, (h, w)), ref, rtol=1e-12, atol=1e-12 * 255)
    u8 = rng.integers(0, 256, (97, 203)).astype(np.uint8)
    ref = resize(u8.astype(float), (24, 24), order=1, mode="reflect", anti_aliasing=True, preserve_range=True)
    np.testing.assert_allclose(fk_resize(u8, (24, 24)), ref, rtol=1e-12, atol=1e-12 * 255)


def test_large_roi_in_bounded_memory():
    """A 3000 x 3000 image is resized without filtering it whole: beyond the float64
    copy every input gets, the call allocates less than half the image (skimage's
    resize, used before, allocates full-size float64 images: more than the image)."""
    rng = np.random.default_rng(7)
    img = rng.random((3000, 3000)) * 255
    tracemalloc.start()
    try:
        got = haar_features([img])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * img.nbytes, f"peak {peak / 2**20:.0f} MiB for a {img.nbytes / 2**20:.0f} MiB image"
    np.testing.assert_allclose(got[0], haar_features([fk_resize(img, (24, 24))])[0], rtol=1e-12, atol=1e-9)
    # the operator is skimage's rule on a large input too
    crop = img[:1200, :900]
    ref = resize(crop, (24, 24), order=1, mode="reflect", anti_aliasing=True, preserve_range=True)
    np.testing.assert_allclose(fk_resize(crop, (24, 24)), ref, rtol=1e-12)


def test_resize_rule(busi):
    img, m = busi[0]
    rows, cols = np.nonzero(m)
    crop = to_gray(img)[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    ref = resize(crop, (24, 24), order=1, mode="reflect", anti_aliasing=True, preserve_range=True)
    np.testing.assert_allclose(haar_window(img, m), ref, rtol=1e-12)
    # the window is already the right size: used as it is
    w = np.arange(24 * 20, dtype=float).reshape(24, 20)
    np.testing.assert_array_equal(haar_window(w, window=(24, 20)), w)


def test_seeded_subset_equals_skimage_and_is_deterministic(busi):
    img, m = busi[1]
    a = haar_feature_coords(24, n_features=700, random_state=5, feature_set="full")
    b = haar_feature_coords(24, n_features=700, random_state=5, feature_set="full")
    c = haar_feature_coords(24, n_features=700, random_state=6, feature_set="full")
    assert a.names() == b.names() and a.names() != c.names()
    full = haar_feature_names(feature_set="full")
    pos = [full.index(n) for n in a.names()]
    assert pos == sorted(pos)  # enumeration order kept
    got = haar_features([img], [m], n_features=700, random_state=5, feature_set="full")[0]
    coord, ftype = a.to_skimage()
    ref = haar_like_feature(integral_image(haar_window(img, m)), 0, 0, 24, 24,
                            feature_type=ftype, feature_coord=coord)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())
    est = HaarFeatures(feature_types=["type-4"], n_features=50, random_state=1)
    assert all(n.startswith("haar_type-4_") for n in est.get_feature_names_out())
    # a subset of the default grid: drawn from the grid, in its order
    sub = haar_feature_names(n_features=100, random_state=2)
    grid = haar_feature_names()
    assert len(sub) == 100 and [grid.index(n) for n in sub] == sorted(grid.index(n) for n in sub)
    with pytest.raises(DataError, match="exceeds"):
        haar_feature_names(n_features=3_000)


def test_huge_window_is_rejected_or_sampled_without_blowing_memory():
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="n_features"):
        haar_features([np.zeros((50, 50))], window=200, feature_set="full")
    with pytest.raises(DataError, match="n_features"):
        HaarFeatures(window=200, feature_set="full").fit(np.zeros((1, 50, 50)))
    assert time.perf_counter() - t0 < 2.0  # nothing was enumerated
    assert haar_feature_count(200, feature_set="full") == 768_646_600  # ~5.7 GiB per image in float64
    rng = np.random.default_rng(0)
    img = rng.random((300, 260)) * 255
    got = haar_features([img], window=200, n_features=300, random_state=2, feature_set="full")[0]
    coords = haar_feature_coords(200, n_features=300, random_state=2, feature_set="full")
    coord, ftype = coords.to_skimage()
    ref = haar_like_feature(integral_image(haar_window(img, window=200)), 0, 0, 200, 200,
                            feature_type=ftype, feature_coord=coord)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())
    with pytest.raises(DataError, match="exceeds"):
        haar_feature_coords(4, n_features=10_000, feature_set="full")


def test_constant_image():
    """Two- and four-rectangle features vanish on a constant image; three-rectangle
    ones are R1 - R0 - R2 = -c * dy * dx (skimage's definition)."""
    c = 117.0
    feats = haar_features([np.full((37, 53), c)], feature_set="full")[0]
    assert feats.shape == (162_336,)
    coords = haar_feature_coords(24, feature_set="full")
    three = np.isin(np.asarray(coords.types)[coords.type_index], ["type-3-x", "type-3-y"])
    np.testing.assert_allclose(feats[~three], 0.0, atol=1e-8)
    np.testing.assert_allclose(feats[three], -c * coords.dy[three] * coords.dx[three], rtol=1e-12)
    ref = haar_like_feature(integral_image(np.full((24, 24), c)), 0, 0, 24, 24)
    np.testing.assert_allclose(feats, ref, atol=1e-8)


def test_torch_sparse_path_equals_scipy():
    rng = np.random.default_rng(4)
    wins = rng.random((3, 12, 10)) * 100
    S = _operator((12, 10), FEATURE_TYPES, None, 0, "full")
    II = _integral(wins)
    np.testing.assert_allclose(_apply_torch(S, II, "cpu"), _apply(S, II, "cpu"), rtol=1e-12, atol=1e-9)


def test_bad_input_raises_clear_errors():
    img = np.ones((30, 30))
    bad = img.copy()
    bad[1, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        haar_features([bad])
    with pytest.raises(DataError, match="empty"):
        haar_features([img], [np.zeros((30, 30), bool)])
    with pytest.raises(DataError, match="feature_types"):
        haar_features([img], feature_types=["type-5"])
    with pytest.raises(DataError, match="window"):
        haar_features([img], window=1)
    with pytest.raises(DataError, match="random_state"):
        haar_features([img], n_features=5, random_state=np.random.default_rng(0))
