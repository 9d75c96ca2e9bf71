"""LBP: codes equal skimage's local_binary_pattern('uniform'), histograms over the ROI, the contract."""

import warnings

import numpy as np
import pytest
from _busi_crops import busi_crops
from skimage.feature import local_binary_pattern

from featurekit.errors import DataError
from featurekit.handcrafted import LBPFeatures, lbp_features
from featurekit.handcrafted.lbp import lbp_codes, lbp_feature_names


@pytest.fixture(scope="module")
def crops(busi_dir):
    return busi_crops(busi_dir, size=96)


def _skimage(img, P, R):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # skimage's note on float images
        return local_binary_pattern(img, P, R, method="uniform")


@pytest.mark.parametrize("P, R", [(8, 1), (16, 2), (24, 3), (12, 1.5), (6, 2.7)])
def test_codes_equal_skimage(P, R):
    rng = np.random.default_rng(P)
    for img in (rng.integers(0, 4, (23, 31)).astype(float),  # many ties: the >= rule
                rng.random((17, 20)) * 1000.0):
        np.testing.assert_array_equal(lbp_codes(img, P, R), _skimage(img, P, R))


def test_histograms_equal_skimage_on_busi_crops_with_masks(crops):
    images, masks = crops
    F = lbp_features(images, masks)
    W = LBPFeatures(radii=(1, 2), points=(8, 12)).fit_transform(images)  # no masks: the whole crop
    for i, (img, m) in enumerate(zip(images, masks)):
        ref = np.concatenate([np.bincount(_skimage(img, P, R)[m].astype(int), minlength=P + 2) / m.sum()
                              for R, P in ((1, 8), (2, 16), (3, 24))])
        np.testing.assert_array_equal(F[i], ref)  # the same counts divided by the same number
        ref_w = np.concatenate([np.bincount(_skimage(img, P, R).ravel().astype(int), minlength=P + 2) / img.size
                                for R, P in ((1, 8), (2, 12))])
        np.testing.assert_allclose(W[i], ref_w, rtol=1e-7)  # float32 output


def test_a_window_codes_like_the_whole_image():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (40, 50)).astype(float)
    whole = lbp_codes(img, 16, 2)
    window = lbp_codes(img[5:30, 7:44], 16, 2, origin=(5, 7))
    np.testing.assert_array_equal(window[3:-3, 3:-3], whole[8:27, 10:41])


def test_names_and_errors():
    assert lbp_feature_names((1,)) == [f"lbp_r1_p8_{k}" for k in range(10)]
    assert len(LBPFeatures().get_feature_names_out()) == 10 + 18 + 26
    rows = LBPFeatures(radii=(1,)).fit_transform([np.arange(25.0).reshape(5, 5)])
    assert rows.sum() == pytest.approx(1.0)  # fractions of the ROI
    with pytest.raises(DataError, match="radii"):
        LBPFeatures(radii=(1, -2)).fit()
    with pytest.raises(DataError, match="points"):
        LBPFeatures(radii=(1, 2), points=(8,)).fit()


def test_integer_images_give_the_same_histograms(crops):
    gray = [i for i, img in enumerate(crops[0]) if (img == np.round(img)).all()]  # not the RGB PNG's luma
    images, masks = [crops[0][i] for i in gray], [crops[1][i] for i in gray]
    t = LBPFeatures(radii=(1, 2))
    assert t._keep_integers
    np.testing.assert_array_equal(t.featurize([i.astype(np.uint16) for i in images], masks),
                                  t.featurize(images, masks))
