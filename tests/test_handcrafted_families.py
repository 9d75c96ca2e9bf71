"""The families built on one :class:`~featurekit.handcrafted._base.Family` (first-order,
shape, LBP, GLRLM, GLSZM, GLDM, NGTDM): the batch function and the transformer are
one piece of code, so they validate, name and compute alike."""

import numpy as np
import pytest

from featurekit.errors import DataError
from featurekit.handcrafted import (
    FirstOrderFeatures,
    GLDMFeatures,
    GLRLMFeatures,
    GLSZMFeatures,
    NGTDMFeatures,
    firstorder_features,
    gldm_features,
    glrlm_features,
    glszm_features,
    ngtdm_features,
)
from featurekit.handcrafted.lbp import LBPFeatures, lbp_features
from featurekit.handcrafted.shape2d import Shape2DFeatures, shape2d_features

FAMILIES = [
    (FirstOrderFeatures, firstorder_features, dict(bin_count=8, spacing=(0.5, 2.0))),
    (Shape2DFeatures, shape2d_features, dict(spacing=(0.5, 2.0))),
    (LBPFeatures, lbp_features, dict(radii=(1, 2))),
    (GLRLMFeatures, glrlm_features, dict(bin_width=40)),
    (GLSZMFeatures, glszm_features, dict(bin_count=6)),
    (GLDMFeatures, gldm_features, dict(distances=(1, 2), gldm_a=1, bin_count=8)),
    (NGTDMFeatures, ngtdm_features, dict(distances=(2,), bin_count=8)),
]
IDS = ["firstorder", "shape2d", "lbp", "glrlm", "glszm", "gldm", "ngtdm"]


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20 + 3 * k, 24), dtype=np.uint8) for k in range(3)]
    masks = []
    for img in images:
        m = np.zeros(img.shape, dtype=bool)
        m[3:-4, 5:-2] = True
        masks.append(m)
    return images, masks


@pytest.mark.parametrize("cls,fn,kw", FAMILIES, ids=IDS)
def test_function_and_transformer_compute_and_name_alike(batch, cls, fn, kw):
    images, masks = batch
    est = cls(**kw)
    expected = fn(images, masks, **kw)
    got = est.featurize(images, masks)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    assert len(est.fit(images).get_feature_names_out()) == expected.shape[1]


@pytest.mark.parametrize("cls,fn,kw", FAMILIES, ids=IDS)
@pytest.mark.parametrize("name,value", [("n_jobs", 0), ("n_jobs", 1.5), ("empty_mask", "maybe")])
def test_function_rejects_a_bad_shared_parameter_as_the_transformer(batch, cls, fn, kw, name, value):
    images, masks = batch
    with pytest.raises(DataError, match=name):
        cls(**kw, **{name: value}).featurize(images, masks)
    with pytest.raises(DataError, match=name):
        fn(images, masks, **kw, **{name: value})


@pytest.mark.parametrize("cls,fn,kw", FAMILIES, ids=IDS)
def test_every_parameter_is_documented_and_shared_with_the_function(cls, fn, kw):
    import inspect
    import re

    init = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert list(inspect.signature(fn).parameters) == ["images", "masks"] + [p for p in init if p != "max_side"]
    for obj, names in ((cls, init), (fn, ["images", "masks"] + init[:-1])):
        entries = re.findall(r"^(\w[\w, ]*?)(?: :|$)", inspect.getdoc(obj).split("Parameters\n----------\n")[1],
                             re.M)
        documented = {n.strip() for e in entries for n in e.split(",")}
        assert set(names) <= documented, (obj, set(names) - documented)
