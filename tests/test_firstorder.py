"""First-order statistics: pyradiomics' values on BUSI crops, hand-computed cases, the transformer contract."""

import logging

import numpy as np
import pytest
from _busi_crops import busi_crops

from featurekit.errors import DataError
from featurekit.handcrafted import FIRSTORDER_FEATURES, FirstOrderFeatures, firstorder_features


@pytest.fixture(scope="module")
def crops(busi_dir):
    return busi_crops(busi_dir)


def _pyradiomics(image, mask, **settings):
    import SimpleITK as sitk
    from radiomics import firstorder

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    cls = firstorder.RadiomicsFirstOrder(sitk.GetImageFromArray(image),
                                         sitk.GetImageFromArray(mask.astype(np.uint8)), **settings)
    cls.enableAllFeatures()
    res = cls.execute()
    return np.array([float(res[f]) for f in FIRSTORDER_FEATURES])


@pytest.mark.parametrize("settings, ours", [({"binWidth": 25}, {}), ({"binCount": 16}, {"bin_count": 16}),
                                            ({"binWidth": 7, "voxelArrayShift": 300},
                                             {"bin_width": 7, "voxel_array_shift": 300})])
def test_equals_pyradiomics_feature_by_feature(crops, settings, ours):
    pytest.importorskip("radiomics")
    images, masks = crops
    got = FirstOrderFeatures(**ours).fit_transform(images)  # no masks: the whole crop
    F = firstorder_features(images, masks, **ours)
    for i, (img, m) in enumerate(zip(images, masks)):
        ref = _pyradiomics(img, m, **settings)
        # sums of <= 16384 products of 8-bit values, each computed to float64 rounding
        np.testing.assert_allclose(F[i], ref, rtol=1e-12, atol=0, err_msg=f"crop {i}")
        whole = _pyradiomics(img, np.ones_like(m), **settings)
        np.testing.assert_allclose(got[i], whole, rtol=1e-6)  # float32 output


def test_float_images_and_16_bit_take_the_sorting_path_with_the_same_rules(crops):
    pytest.importorskip("radiomics")
    images, masks = crops
    rng = np.random.default_rng(0)
    for img, m in zip(images[:2], masks[:2]):
        for x in (img * 200.0 + 3.0, img + rng.random(img.shape)):  # 16-bit range, then non-integer
            np.testing.assert_allclose(firstorder_features([x], [m], bin_count=32)[0],
                                       _pyradiomics(x, m, binCount=32), rtol=1e-12, atol=0)


def test_small_cases_by_hand():
    img = np.array([[1.0, 2.0, 3.0, 4.0], [10.0, 10.0, 10.0, 10.0]])
    mask = np.array([[True, True, True, True], [False, False, False, False]])
    f = dict(zip(FIRSTORDER_FEATURES, firstorder_features([img], [mask], bin_width=2)[0]))
    assert f["Energy"] == 30 and f["Mean"] == 2.5 and f["Median"] == 2.5 and f["Range"] == 3
    assert f["10Percentile"] == pytest.approx(1.3) and f["90Percentile"] == pytest.approx(3.7)
    assert f["Variance"] == pytest.approx(1.25) and f["Skewness"] == pytest.approx(0.0, abs=1e-15)
    # bin width 2 from 0: levels {1}, {2, 3}, {4} -> p = 1/4, 1/2, 1/4
    assert f["Uniformity"] == pytest.approx(3 / 8) and f["Entropy"] == pytest.approx(1.5)
    flat = firstorder_features([np.full((3, 3), 7.0)])[0]
    flat = dict(zip(FIRSTORDER_FEATURES, flat))
    assert flat["Skewness"] == 0 and flat["Kurtosis"] == 0 and flat["Variance"] == 0  # pyradiomics' rule
    assert flat["Entropy"] == pytest.approx(0, abs=1e-12) and flat["Uniformity"] == 1
    # two values: none lies between the 10th and 90th percentiles (pyradiomics: NaN), documented 0
    two = dict(zip(FIRSTORDER_FEATURES, firstorder_features([np.array([[3.0, 8.0]])])[0]))
    assert two["RobustMeanAbsoluteDeviation"] == 0 and two["MeanAbsoluteDeviation"] == 2.5


def test_spacing_scales_total_energy_only():
    img = np.arange(12.0).reshape(3, 4)
    a = firstorder_features([img])[0]
    b = firstorder_features([img], spacing=(0.5, 3.0))[0]
    k = FIRSTORDER_FEATURES.index("TotalEnergy")
    assert b[k] == pytest.approx(1.5 * a[k])
    np.testing.assert_array_equal(np.delete(a, k), np.delete(b, k))


def test_names_selection_and_errors():
    t = FirstOrderFeatures(features=["Mean", "Entropy"])
    assert list(t.get_feature_names_out()) == ["firstorder_Mean", "firstorder_Entropy"]
    out = t.fit_transform([np.arange(16.0).reshape(4, 4)])
    assert out.shape == (1, 2) and out[0, 0] == 7.5
    with pytest.raises(DataError, match="StandardDev"):
        FirstOrderFeatures(features=["StandardDeviation"]).fit()
    with pytest.raises(DataError, match="spacing"):
        FirstOrderFeatures(spacing=(1, 0)).fit()
    with pytest.raises(DataError, match="bin_width or bin_count"):
        firstorder_features([np.ones((3, 3))], bin_width=2, bin_count=3)
    with pytest.raises(DataError, match="mask 0 is empty"):
        firstorder_features([np.ones((3, 3))], [np.zeros((3, 3), bool)])


def test_integer_images_are_read_as_they_are_with_the_same_values(crops):
    gray = [i for i, img in enumerate(crops[0]) if (img == np.round(img)).all()]  # not the RGB PNG's luma
    assert len(gray) >= 4
    images, masks = [crops[0][i] for i in gray], [crops[1][i] for i in gray]
    as_uint8 = [img.astype(np.uint8) for img in images]
    t = FirstOrderFeatures(bin_count=24)
    np.testing.assert_array_equal(t.featurize(as_uint8, masks), t.featurize(images, masks))
    big = [(img.astype(np.int64) * 70_000) for img in images[:2]]  # beyond 16 bits: sorted, in float64
    np.testing.assert_allclose(firstorder_features(big, masks[:2]),
                               firstorder_features([b.astype(float) for b in big], masks[:2]), rtol=1e-12)
    assert FirstOrderFeatures._keep_integers
