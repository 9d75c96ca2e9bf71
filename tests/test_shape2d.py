"""2-D shape: pyradiomics' shape2D on BUSI masks and synthetic shapes, exact small cases, the contract."""

import logging

import numpy as np
import pytest
from _busi_crops import busi_crops

from featurekit.errors import DataError
from featurekit.handcrafted import SHAPE2D_FEATURES, Shape2DFeatures, shape2d_features
from featurekit.handcrafted.shape2d import SHAPE2D_ALL


@pytest.fixture(scope="module")
def crops(busi_dir):
    return busi_crops(busi_dir)


def _pyradiomics(mask, spacing=(1.0, 1.0)):
    import SimpleITK as sitk
    from radiomics import shape2D

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    img = sitk.GetImageFromArray(mask.astype(np.float64))
    msk = sitk.GetImageFromArray(mask.astype(np.uint8))
    for x in (img, msk):
        x.SetSpacing(spacing[::-1])  # SimpleITK orders (x, y)
    cls = shape2D.RadiomicsShape2D(img, msk)
    for name in SHAPE2D_ALL:
        cls.enableFeatureByName(name)
    res = cls.execute()
    return np.array([float(res[f]) for f in SHAPE2D_ALL])


def _shapes():
    rng = np.random.default_rng(0)
    yield from (rng.random((30, 40)) > p for p in (0.3, 0.6, 0.8))  # holes, saddles, several parts
    yield np.eye(9, dtype=bool)  # a diagonal line: one eigenvalue 0
    ring = np.zeros((20, 20), bool)
    ring[3:17, 3:17] = True
    ring[7:13, 7:13] = False
    yield ring


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.7, 1.3)])
def test_equals_pyradiomics_feature_by_feature(crops, spacing):
    pytest.importorskip("radiomics")
    images, masks = crops
    shapes = list(_shapes())
    masks = masks + shapes
    images = images + [s.astype(float) for s in shapes]
    F = shape2d_features(images, masks, spacing=spacing, features=list(SHAPE2D_ALL))
    for i, m in enumerate(masks):
        ref = _pyradiomics(m, spacing)
        # pyradiomics' eigenvalues carry float rounding (~1e-16 of the larger one), ours come from exact
        # integer moments; a zero eigenvalue's square root turns that into ~1e-8 of the major axis
        root_eps = np.zeros(len(SHAPE2D_ALL))
        root_eps[SHAPE2D_ALL.index("MinorAxisLength")] = 2e-8 * ref[SHAPE2D_ALL.index("MajorAxisLength")]
        root_eps[SHAPE2D_ALL.index("Elongation")] = 2e-8
        assert np.all(np.abs(F[i] - ref) <= 1e-12 * np.abs(ref) + root_eps), (i, F[i], ref)


def test_exact_small_cases():
    square = np.zeros((6, 6), bool)
    square[1:5, 1:5] = True  # 4 x 4 pixels: mesh through the edge midpoints = 4x4 minus 4 corners of 1/8
    f = dict(zip(SHAPE2D_FEATURES, shape2d_features([square.astype(float)], [square])[0]))
    assert f["PixelSurface"] == 16 and f["MeshSurface"] == 16 - 4 / 8
    assert f["Perimeter"] == pytest.approx(4 * 3 + 4 * np.sqrt(0.5))
    assert f["MaximumDiameter"] == pytest.approx(np.hypot(4, 3))  # (0.5, 0) to (4, 3.5) corners of the mesh
    assert f["Elongation"] == 1 and f["MajorAxisLength"] == f["MinorAxisLength"]
    one = shape2d_features([np.ones((1, 1))])[0]
    assert dict(zip(SHAPE2D_FEATURES, one))["Elongation"] == 1  # documented value of a one-pixel ROI
    assert np.isfinite(one).all()


def test_whole_image_without_mask_and_integer_images_are_not_copied():
    t = Shape2DFeatures()
    img = np.zeros((5, 7), np.uint8)
    assert t.fit_transform([img])[0][1] == 35  # PixelSurface of the whole image
    assert Shape2DFeatures._keep_integers


def test_names_and_errors():
    assert list(Shape2DFeatures().get_feature_names_out())[:2] == ["shape2D_MeshSurface", "shape2D_PixelSurface"]
    assert len(SHAPE2D_FEATURES) == 9 and "SphericalDisproportion" not in SHAPE2D_FEATURES
    out = Shape2DFeatures(features=["SphericalDisproportion"]).fit_transform([np.ones((4, 4))])
    assert out.shape == (1, 1) and out[0, 0] > 1
    with pytest.raises(DataError, match="shape2D features"):
        Shape2DFeatures(features=["Volume"]).fit()
    with pytest.raises(DataError, match="spacing"):
        shape2d_features([np.ones((3, 3))], spacing=(1, -1))


def _random_masks():
    rng = np.random.default_rng(5)
    masks = [rng.random((h, w)) > p for h, w in ((13, 17), (40, 32), (7, 9), (25, 64))
             for p in (0.2, 0.6)]
    masks.append(np.ones((6, 10), bool))  # the whole image, every edge touched
    masks.append((rng.random((30, 22)) > 0.5)[:, ::-1])  # a non-contiguous view
    masks.append(np.eye(9, dtype=bool))  # collinear vertices
    one = np.zeros((5, 5), bool)
    one[2, 2] = True
    masks.append(one)
    return [m if m.any() else np.eye(*m.shape, dtype=bool) for m in masks]


def test_batch_equals_one_image_per_call_whatever_the_chunks(monkeypatch):
    """Every image's features are the same alone, in one chunk with others, or in chunks of one
    (bounded by _PIXELS); masks touching the image's edges, widths that are no multiple of 8 and
    non-contiguous masks included."""
    from featurekit.handcrafted import shape2d

    masks = _random_masks()
    images = [np.zeros(m.shape) for m in masks]
    one = np.concatenate([shape2d_features([i], [m], features=list(SHAPE2D_ALL)) for i, m in zip(images, masks)])
    batch = shape2d_features(images, masks, features=list(SHAPE2D_ALL))
    np.testing.assert_array_equal(batch, one)
    monkeypatch.setattr(shape2d, "_PIXELS", 1)  # one image per chunk
    np.testing.assert_array_equal(shape2d_features(images, masks, features=list(SHAPE2D_ALL)), one)


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.7, 1.9)])
def test_maximum_diameter_equals_all_vertex_pairs(spacing):
    """The diameter found among the convex hull's vertices equals the largest distance over all
    pairs of mesh vertices (the midpoints of the inside/outside pairs), with unequal spacing too."""
    dy, dx = spacing
    for m in _random_masks():
        u = np.pad(m, 1)
        r, c = np.nonzero(u[:-1] != u[1:])  # vertical pairs: vertex (r + 1/2, c)
        ys, xs = [r + 0.5], [c.astype(float)]
        r, c = np.nonzero(u[:, :-1] != u[:, 1:])  # horizontal pairs: vertex (r, c + 1/2)
        ys.append(r.astype(float))
        xs.append(c + 0.5)
        y, x = np.concatenate(ys) * dy, np.concatenate(xs) * dx
        want = np.sqrt(((y[:, None] - y[None]) ** 2 + (x[:, None] - x[None]) ** 2).max())
        got = shape2d_features([np.zeros(m.shape)], [m], spacing=spacing, features=["MaximumDiameter"])[0, 0]
        assert got == pytest.approx(want, rel=1e-12)


def test_pixel_values_are_not_read():
    """Shape is a function of the mask alone: NaN pixels change nothing and are no error (the
    input layer neither converts nor checks the images of a family of the masks alone)."""
    mask = np.zeros((12, 15), bool)
    mask[2:9, 3:12] = True
    clean = np.zeros((12, 15))
    dirty = np.full((12, 15), np.nan)
    dirty[0, 0] = np.inf
    t = Shape2DFeatures()
    np.testing.assert_array_equal(t.fit([dirty]).transform([dirty]), t.transform([clean]))
    np.testing.assert_array_equal(shape2d_features([dirty], [mask]), shape2d_features([clean], [mask]))
    assert t.__sklearn_tags__().input_tags.allow_nan
