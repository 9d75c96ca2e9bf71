"""Families that only read their images take float64 gray images as they are: no copy, never written."""

import warnings

import numpy as np
import pytest

from featurekit.errors import DataError
from featurekit.handcrafted import FAMILIES
from featurekit.handcrafted._input import prepare


def _images():
    rng = np.random.default_rng(3)
    imgs = [rng.integers(0, 256, (30, 36)).astype(np.float64) for _ in range(3)]
    masks = [np.zeros((30, 36), dtype=bool) for _ in range(3)]
    for k, m in enumerate(masks):
        m[4 + k : 25, 5 : 30 - k] = True
    return imgs, masks


def test_float64_gray_images_are_kept_and_nan_still_rejected():
    imgs, masks = _images()
    kept, _ = prepare(imgs, masks, keep_integers=True)
    assert all(a is b for a, b in zip(kept, imgs))
    (col,), _ = prepare([imgs[0][..., None]], keep_integers=True)  # (H, W, 1): a view, no copy
    assert np.shares_memory(col, imgs[0])
    (conv,), _ = prepare([imgs[0]])  # a family that writes gets its own copy
    assert conv is not imgs[0]
    # every position and kind of non-finite value, also in a (H, W, 1) image's strided view
    for where in ((0, 0), (3, 4), (29, 35)):
        for value in (np.nan, np.inf, -np.inf):
            bad = imgs[0].copy()
            bad[where] = value
            with pytest.raises(DataError, match="image 1.*(NaN|inf)"):
                prepare([imgs[0], bad], keep_integers=True)
            with pytest.raises(DataError, match="image 0.*(NaN|inf)"):
                prepare([bad[..., None]], keep_integers=True)
    huge = np.full((4, 5), 1e308)  # finite, though their sum is not
    assert prepare([huge], keep_integers=True)[0][0] is huge


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_reads_read_only_images_and_leaves_them_unchanged(name):
    imgs, masks = _images()
    expected = [a.copy() for a in imgs]
    for a in imgs:
        a.setflags(write=False)  # a write into the caller's array raises
    est = FAMILIES[name]()
    assert est._keep_integers  # every family only reads its images
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = est.featurize(imgs, masks)
        ref = est.featurize(expected, masks)
    np.testing.assert_array_equal(got, ref)
    for a, b in zip(imgs, expected):
        np.testing.assert_array_equal(a, b)
