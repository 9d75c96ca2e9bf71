"""The three handcrafted transformers as scikit-learn estimators: Dataset / list /
stack input, masks, pandas output, featurize for the cache; the shared parameters
owned by the base class (one default, one validation per call); large images
(max_side). check_estimator runs in test_sklearn_contract.py, over every public
estimator."""

import inspect
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from featurekit.data.folder import load_folder
from featurekit.errors import DataError
from featurekit.handcrafted import (
    DownsizedWarning,
    GaborFeatures,
    GLCMFeatures,
    HaarFeatures,
    gabor_features,
    glcm_features,
    haar_features,
)
from featurekit.handcrafted._resize import resize

# light configurations for the data tests (the defaults go through check_estimator, test_sklearn_contract.py)
LIGHT = [
    (GaborFeatures(frequencies=[0.25, 0.1], orientations=4, device="cpu"), gabor_features,
     dict(frequencies=[0.25, 0.1], orientations=4, device="cpu")),
    (GLCMFeatures(distances=[1, 2]), glcm_features, dict(distances=[1, 2])),
    (HaarFeatures(window=12, n_features=300, random_state=3), haar_features,
     dict(window=12, n_features=300, random_state=3)),
]
IDS = ["gabor", "glcm", "haar"]


@pytest.fixture(scope="module")
def busi_ds(busi_dir):
    ds = load_folder(busi_dir, roi="mask")
    wanted = ["benign/benign (4)", "benign/benign (5)", "malignant/malignant (3)", "malignant/malignant (8)"]
    idx = [ds.ids.index(w) for w in wanted]
    return ds.subset(idx)


@pytest.fixture(scope="module")
def busi_normal(busi_dir):
    ds = load_folder(busi_dir)  # its mask is empty: roi="mask" refuses it (test_data)
    return ds.subset([ds.ids.index("normal/normal (1)")])


@pytest.mark.parametrize("est,fn,kw", LIGHT, ids=IDS)
def test_dataset_input_uses_rois_and_masks(busi_ds, est, fn, kw):
    images = [busi_ds.image(i) for i in range(len(busi_ds))]
    masks = [busi_ds.mask(i) for i in range(len(busi_ds))]
    assert all(m is not None and m.any() and not m.all() for m in masks)
    out = clone(est).fit(busi_ds).transform(busi_ds)
    names = est.get_feature_names_out()
    assert out.shape == (4, len(names)) and out.dtype == np.float32
    np.testing.assert_array_equal(out, est.featurize(images, masks))
    np.testing.assert_allclose(out, fn(images, masks, **kw), rtol=2e-6, atol=1e-6)
    assert not np.allclose(out, est.featurize(images))  # the masks change the features


@pytest.mark.parametrize("est", [e for e, _, _ in LIGHT], ids=IDS)
def test_empty_mask_is_an_error_unless_whole(busi_normal, est):
    assert busi_normal.mask(0) is not None and not busi_normal.mask(0).any()
    with pytest.raises(DataError, match="empty"):
        clone(est).transform(busi_normal)
    whole = clone(est).set_params(empty_mask="whole").transform(busi_normal)
    np.testing.assert_array_equal(whole, est.featurize([busi_normal.image(0)]))


@pytest.mark.parametrize("est", [e for e, _, _ in LIGHT], ids=IDS)
def test_input_forms(est):
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 256, (3, 30, 34)).astype(np.uint8)
    ref = est.transform(list(stack))
    np.testing.assert_array_equal(est.transform(stack), ref)
    s16 = stack.astype(np.uint16) * 4  # 16-bit input (0..1020)
    np.testing.assert_array_equal(est.transform(s16), est.transform(list(s16.astype(np.float64))))
    rgb = rng.integers(0, 256, (2, 30, 34, 3)).astype(np.uint8)
    gray = rgb.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721])
    np.testing.assert_allclose(est.transform(rgb), est.transform(gray), rtol=1e-6, atol=1e-5)
    # 2-D X: row i is sample i, a 1-pixel-high image
    X2 = rng.random((4, 40)) * 100
    np.testing.assert_array_equal(est.fit(X2).transform(X2), est.transform([row[None] for row in X2]))
    with pytest.raises(DataError, match="Reshape"):
        est.transform(X2[0])


@pytest.mark.parametrize("est", [e for e, _, _ in LIGHT], ids=IDS)
def test_pandas_output_clone_and_params(est):
    import pandas as pd
    X = np.random.default_rng(1).random((3, 25, 25)) * 255
    e = clone(est).set_output(transform="pandas")
    df = e.fit_transform(X)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(est.get_feature_names_out())
    assert df.shape[0] == 3
    c = clone(est)
    assert c.get_params() == est.get_params() and c is not est
    names = list(est.get_feature_names_out())
    assert names == list(clone(est).fit(X).feature_names_out_)
    assert len(set(names)) == len(names)


def test_names_follow_the_documented_scheme():
    assert "gabor_f0.25_t45_mean" in GaborFeatures().get_feature_names_out()
    assert "glcm_Contrast_d1" in GLCMFeatures().get_feature_names_out()
    assert HaarFeatures().get_feature_names_out()[0] == "haar_type-2-x_y0_x0_h2_w4"
    assert HaarFeatures(feature_set="full").get_feature_names_out()[0] == "haar_type-2-x_y0_x0_h1_w2"


def test_init_does_no_work_and_fit_validates():
    for est in (GaborFeatures(frequencies=[2.0]), GLCMFeatures(bin_count=-3), HaarFeatures(window=0)):
        assert est.get_params()  # constructed without error
        with pytest.raises(DataError):
            est.fit(np.zeros((2, 8, 8)))


def test_n_jobs_gives_identical_results():
    rng = np.random.default_rng(2)
    imgs = list(rng.integers(0, 256, (6, 40, 40)).astype(float))
    a = GLCMFeatures().transform(imgs)
    b = GLCMFeatures(n_jobs=2).transform(imgs)
    np.testing.assert_array_equal(a, b)


def test_device_selection():
    import torch

    imgs = [np.random.default_rng(3).random((20, 20))]
    if torch.cuda.is_available():
        gpu = GaborFeatures(device="cuda").transform(imgs)
        np.testing.assert_allclose(gpu, GaborFeatures(device="cpu").transform(imgs), rtol=1e-4)
    else:
        with pytest.raises(DataError, match="CUDA"):
            GaborFeatures(device="cuda").transform(imgs)
        np.testing.assert_array_equal(GaborFeatures(device="auto").transform(imgs),
                                      GaborFeatures(device="cpu").transform(imgs))
    with pytest.raises(DataError, match="device"):
        GLCMFeatures(device="tpu").fit(imgs)


def test_in_a_pipeline():
    rng = np.random.default_rng(4)
    smooth = [rng.normal(100, 2, (24, 24)) for _ in range(6)]
    rough = [rng.normal(100, 40, (24, 24)) for _ in range(6)]
    X = np.stack(smooth + rough)
    y = np.array([0] * 6 + [1] * 6)
    model = make_pipeline(GLCMFeatures(features=["Contrast", "JointEntropy"], bin_width=5),
                          LogisticRegression(max_iter=1000))
    assert model.fit(X, y).score(X, y) == 1.0


# --------------------------------------------------------------------------- shared parameters
CLASSES = [GaborFeatures, GLCMFeatures, HaarFeatures]
SHARED = {"device": "cpu", "n_jobs": None, "empty_mask": "error"}
#: the documented per-family choice for large images (module docstrings)
MAX_SIDE = {GaborFeatures: None, GLCMFeatures: 2048, HaarFeatures: None}


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_shared_parameters_have_one_default(cls):
    params = cls().get_params()
    assert {k: params[k] for k in SHARED} == SHARED
    assert params["max_side"] == MAX_SIDE[cls]
    fn = {GaborFeatures: gabor_features, GLCMFeatures: glcm_features, HaarFeatures: haar_features}[cls]
    assert inspect.signature(fn).parameters["device"].default == "cpu"


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
@pytest.mark.parametrize("name,value", [("device", "banana"), ("n_jobs", 0), ("n_jobs", 1.5),
                                        ("max_side", 4), ("max_side", True), ("max_side", 512.0),
                                        ("empty_mask", "skip")])
def test_bad_shared_parameters_are_clear_errors(cls, name, value):
    est = cls(**{name: value})
    X = np.random.default_rng(0).random((2, 16, 16))
    for call in (est.fit, est.transform):
        with pytest.raises(DataError, match=name):
            call(X)


@pytest.mark.parametrize("est", [e for e, _, _ in LIGHT], ids=IDS)
def test_one_validation_per_call(est, monkeypatch):
    """Parameters are validated and each image is converted exactly once per call
    (before, the family function validated both again and copied every image)."""
    from featurekit.handcrafted import _base, _input

    calls = {"shared": 0, "family": 0, "image": 0}

    def counting(fn, key):
        def wrapper(*a, **k):
            calls[key] += 1
            return fn(*a, **k)
        return wrapper

    monkeypatch.setattr(_base, "check_shared", counting(_base.check_shared, "shared"))
    monkeypatch.setattr(type(est), "_check_family", counting(type(est)._check_family, "family"))
    monkeypatch.setattr(_input, "_one_image", counting(_input._one_image, "image"))
    X = list(np.random.default_rng(1).random((3, 20, 22)) * 255)
    est.transform(X)
    assert calls == {"shared": 1, "family": 1, "image": 3}
    est.featurize(X, [None] * 3)
    assert calls == {"shared": 2, "family": 2, "image": 6}


# --------------------------------------------------------------------------- large images
@pytest.mark.parametrize("est", [e for e, _, _ in LIGHT], ids=IDS)
def test_max_side_downsizes_with_a_warning(est, monkeypatch):
    """Every family's computation sees images of at most max_side pixels: larger ones
    (and their masks) are resized by the documented rule, with one warning; smaller
    ones are untouched."""
    rng = np.random.default_rng(2)
    big = rng.random((150, 90)) * 255
    small = rng.random((40, 64)) * 255
    mask = np.zeros(big.shape, bool)
    mask[20:130, 10:70] = True
    seen = []
    compute = type(est)._compute

    def spy(self, images, masks, params):
        seen.extend(img.shape for img in images)
        return compute(self, images, masks, params)

    monkeypatch.setattr(type(est), "_compute", spy)
    e = clone(est).set_params(max_side=64)
    with pytest.warns(DownsizedWarning, match=r"1 of 2 images .*max_side=64.*150x90 -> 64x38"):
        got = e.featurize([big, small], [mask, None])
    assert seen == [(64, 38), (40, 64)]
    m64 = resize(mask.view(np.uint8), (64, 38)) >= 0.5
    want = clone(est).set_params(max_side=None).featurize([resize(big, (64, 38)), small], [m64, None])
    np.testing.assert_array_equal(got, want)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing larger than max_side: no warning, same numbers
        np.testing.assert_array_equal(e.featurize([small]), clone(est).set_params(max_side=None).featurize([small]))


def test_a_thin_mask_survives_downsizing():
    from featurekit.handcrafted._input import limit_side

    img = np.random.default_rng(3).random((400, 300)) * 255
    mask = np.zeros(img.shape, bool)
    mask[200, 100:103] = True  # 3 pixels: averaged away by an 8x reduction
    with pytest.warns(DownsizedWarning):
        (small,), (m,) = limit_side([img], [mask], 50)
    assert small.shape == m.shape == (50, 38)
    (r, c), = np.argwhere(m)  # where the 3 pixels were: (200, 101) * 50 / 400
    assert m.sum() == 1 and abs(r - 25) <= 1 and abs(c - 101 * 38 / 300) <= 1
    with pytest.warns(DownsizedWarning):
        assert np.all(np.isfinite(GaborFeatures(max_side=50).featurize([img], [mask])))


def test_glcm_default_bounds_a_large_image_and_the_cache_records_max_side():
    """GLCM's default max_side=2048 applies to a 3000 x 2500 image; max_side is part
    of the cache entry's parameters, so a different limit is a different entry."""
    from featurekit.extraction.texture import HandcraftedFeaturizer

    img = (np.random.default_rng(5).random((3000, 2500)) * 255).astype(np.uint8)
    with pytest.warns(DownsizedWarning, match="3000x2500 -> 2048x1707"):
        got = GLCMFeatures().featurize([img])
    want = GLCMFeatures(max_side=None).featurize([resize(img, (2048, 1707))])
    np.testing.assert_array_equal(got, want)
    specs = [HandcraftedFeaturizer("glcm", GLCMFeatures(max_side=m)).specs[0] for m in (2048, None, 1024)]
    assert [s.params["max_side"] for s in specs] == [2048, None, 1024]
    assert len({s.entry_id for s in specs}) == 3


def test_large_rgb_is_converted_in_blocks_by_the_one_rule():
    from featurekit.handcrafted._input import prepare
    from featurekit.imageio import to_gray

    rgb = np.random.default_rng(6).integers(0, 256, (1500, 1100, 3)).astype(np.uint8)
    (gray,), _ = prepare([rgb])
    np.testing.assert_allclose(gray, to_gray(rgb), rtol=1e-15, atol=0)


def test_integer_images_are_not_copied_by_families_that_read_blocks():
    """Gabor, Haar-like and GLCM read integer gray images as they are: a batch costs its
    decoded size (no float64 copy, 8x an 8-bit image), with the float64 copy's results."""
    from featurekit.handcrafted._input import prepare

    u8 = np.random.default_rng(8).integers(0, 256, (60, 50)).astype(np.uint8)
    (kept,), _ = prepare([u8], keep_integers=True)
    assert kept is u8
    (conv,), _ = prepare([u8])
    assert conv.dtype == np.float64
    assert GaborFeatures._keep_integers and HaarFeatures._keep_integers and GLCMFeatures._keep_integers
    for est in (GaborFeatures(frequencies=[0.25], orientations=2), HaarFeatures(), GLCMFeatures()):
        np.testing.assert_array_equal(est.transform([u8]), est.transform([u8.astype(np.float64)]))
