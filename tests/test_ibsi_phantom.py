"""The radiomics families against the IBSI 1 digital phantom's published reference values.

Settings as IBSI prescribes for the phantom: no re-discretisation (``bin_width=1`` on one range for the
whole ROI, ``quant_range=(1, 6)``, keeps grey levels 1..6 as they are), the ROI mask, distance 1
(Chebyshev), symmetric GLCM, NGLDM coarseness 0. Each of IBSI's four slices is one 2-D image; the
mean of its per-slice values is IBSI's 2-D aggregation ("2D, averaged" / "2D"): featurekit averages
each slice's GLCM/GLRLM features over the four directions, and every slice has pairs and runs in all
four, so the mean over slices equals IBSI's mean over (slice, direction). Data and sources:
``tests/_ibsi_phantom.py``.

Where pyradiomics' definitions, which featurekit follows, differ from IBSI's, the difference is listed
in :data:`DEVIATIONS` and checked below, so that neither side changes unnoticed.
"""

import numpy as np
import pytest
from _ibsi_phantom import (
    HISTOGRAM,
    NGLDM_NOT_IN_GLDM,
    STATISTICS,
    TEXTURE,
    VOLUME,
    ibsi_slices,
    published_tolerance,
    roi_mask,
)

from featurekit.handcrafted import (
    FIRSTORDER_FEATURES,
    GLDM_FEATURES,
    GLRLM_FEATURES,
    GLSZM_FEATURES,
    NGTDM_FEATURES,
    PYRADIOMICS_FEATURES,
    firstorder_features,
    glcm_features,
    gldm_features,
    glrlm_features,
    glszm_features,
    ngtdm_features,
    quantize,
)

#: Where pyradiomics (so featurekit) defines a quantity differently from IBSI; each is tested below.
DEVIATIONS = {
    "firstorder Kurtosis": "pyradiomics' kurtosis is m4 / m2^2; IBSI's is the excess kurtosis, m4 / m2^2 - 3",
    "bin_width discretisation": "pyradiomics puts the bin edges at multiples of the width "
                                "(floor(x / W) - floor(lo / W) + 1), IBSI starts them at the range minimum "
                                "(floor((x - lo) / W) + 1); the same when lo is a multiple of W (here W = 1)",
    "ngtdm, pixels without a neighbour in the mask": "pyradiomics' code counts them in n_i with a difference "
                                                     "of 0, IBSI leaves them out of n_i and N_v,c; the same "
                                                     "when every pixel has a neighbour in the mask (here)",
}
#: featurekit's features that IBSI does not define, so have no reference value.
NOT_IN_IBSI = {"glcm": {"MCC"}}
_FAMILIES = {"glcm": (glcm_features, PYRADIOMICS_FEATURES), "glrlm": (glrlm_features, GLRLM_FEATURES),
             "glszm": (glszm_features, GLSZM_FEATURES), "gldm": (gldm_features, GLDM_FEATURES),
             "ngtdm": (ngtdm_features, NGTDM_FEATURES)}
_PHANTOM = {"bin_width": 1, "quant_range": (1, 6)}


def _disagreements(got, reference):
    """The (featurekit name, IBSI name, ours, IBSI's) rows outside IBSI's published rounding."""
    return [(ours, ibsi, got[ours], value) for ours, ibsi, value in reference
            if abs(got[ours] - value) > published_tolerance(value)]


def test_phantom_is_ibsis():
    """The ROI and its grey levels as IBSI describes them: 74 voxels, levels 1, 3, 4, 6 (2 and 5 absent)."""
    mask = roi_mask()
    assert mask.sum() == 74 and set(VOLUME[mask]) == {1, 3, 4, 6}
    images, masks = ibsi_slices()
    assert len(images) == 4 and all(img.shape == (4, 5) for img in images)


@pytest.mark.parametrize("family", sorted(TEXTURE))
def test_texture_equals_ibsi_2d_reference_values(family):
    function, names = _FAMILIES[family]
    images, masks = ibsi_slices()
    per_slice = function(images, masks, features=names, **_PHANTOM)
    got = dict(zip(names, per_slice.mean(axis=0)))
    assert _disagreements(got, TEXTURE[family]) == []
    # every featurekit feature IBSI defines is compared
    assert set(names) - {ours for ours, _, _ in TEXTURE[family]} == NOT_IN_IBSI.get(family, set())


def test_texture_comparison_can_fail():
    """A wrong setting (bin width 2 merges levels 3 and 4) is caught by the same comparison."""
    images, masks = ibsi_slices()
    per_slice = glcm_features(images, masks, features=PYRADIOMICS_FEATURES, bin_width=2, quant_range=(1, 6))
    assert len(_disagreements(dict(zip(PYRADIOMICS_FEATURES, per_slice.mean(axis=0))), TEXTURE["glcm"])) > 10


def test_intensity_statistics_and_histogram_equal_ibsi():
    """First-order statistics ignore where the voxels are: the four slices side by side are the ROI."""
    images, masks = ibsi_slices()
    image, roi = np.concatenate(images, axis=1), np.concatenate(masks, axis=1)
    got = dict(zip(FIRSTORDER_FEATURES, firstorder_features([image], [roi], **_PHANTOM)[0]))
    got["Kurtosis"] -= 3  # DEVIATIONS["firstorder Kurtosis"]: IBSI's is the excess kurtosis
    assert _disagreements(got, STATISTICS + HISTOGRAM) == []


def test_ngldm_features_gldm_leaves_out():
    """IBSI's normalised grey level non-uniformity of the 2-D NGLDM is each slice's first-order Uniformity
    (every pixel is one NGLDM entry); dependence count percentage is 1 by IBSI's definition; dependence
    count energy has no counterpart in pyradiomics or featurekit."""
    images, masks = ibsi_slices()
    uniformity = firstorder_features(images, masks, features=["Uniformity"], **_PHANTOM)[:, 0].mean()
    expected = NGLDM_NOT_IN_GLDM["normalised grey level non-uniformity"]
    assert abs(uniformity - expected) <= published_tolerance(expected)
    assert NGLDM_NOT_IN_GLDM["dependence count percentage"] == 1
    assert not any("Energy" in name for name in GLDM_FEATURES)


def test_bin_width_edges_follow_pyradiomics_not_ibsi():
    """DEVIATIONS["bin_width discretisation"]: range minimum 13, width 25."""
    x = np.array([[13.0, 30.0, 40.0, 63.0]])
    ibsi = np.floor((x - 13) / 25) + 1
    assert ibsi.tolist() == [[1, 1, 2, 3]]
    assert quantize(x, bin_width=25).tolist() == [[1, 2, 2, 3]]  # edges at 0, 25, 50, 75


def test_ngtdm_pixel_without_neighbour_follows_pyradiomics_not_ibsi():
    """DEVIATIONS["ngtdm, ..."]: levels 1 and 2 side by side, a lone 3 two pixels away.

    pyradiomics: n = (1, 1, 1), s = (1, 1, 0), p = 1/3 each, coarseness 1 / (2/3) = 1.5.
    IBSI: the 3 has no valid neighbourhood, n = (1, 1), s = (1, 1), p = 1/2 each, coarseness 1.
    The phantom has no such pixel: each of its ROI voxels has a neighbour in the ROI in its slice.
    """
    image = np.array([[1.0, 2.0, 0.0, 0.0, 3.0]])
    mask = image > 0
    coarseness = ngtdm_features([image], [mask], features=["Coarseness"], bin_width=1)[0, 0]
    assert coarseness == pytest.approx(1.5, rel=1e-12)
    for m in ibsi_slices()[1]:
        padded = np.pad(m, 1).astype(int)
        neighbours = sum(np.roll(np.roll(padded, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) - padded
        assert (neighbours[1:-1, 1:-1][m] > 0).all()
