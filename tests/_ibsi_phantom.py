"""The IBSI 1 digital phantom and its published reference values, for tests/test_ibsi_phantom.py.

Phantom: theibsi/data_sets, ``ibsi_1_digital_phantom`` (80 voxels, 74 in the ROI, grey levels 1, 3, 4
and 6 in the ROI), voxel values and mask as PolusAI/nyxus ``tests/test_data.h`` (commit 0101a53a)
transcribes the DICOM: its arrays ``ibsi_phantom_z1..z4_intensity`` / ``_mask``, one ``VOLUME[k]`` each,
rows its ``y``, columns its ``x``. IBSI's slices -- the planes its 2-D features are computed in -- are
``VOLUME[:, :, k]``: only slicing across the last axis reproduces IBSI's 2-D reference values (every one
below, to the 3 digits published); the other two axes give e.g. a joint average of 2.28 or 1.98 for
IBSI's 2.14.

Reference values: the benchmark tables, data set "dig. phantom", of the IBSI reference manual
(Zwanenburg et al., "The Image Biomarker Standardization Initiative", Radiology 295(2):328-338, 2020;
arXiv:1612.07003), as theibsi/ibsi-doc ``docs/03_Image_features.rst`` (commit 11f641c5) prints them.
The texture values are those of IBSI's 2-D aggregation: "2D, averaged" (GLCM, GLRLM: features of each
2-D directional matrix averaged over directions and slices) and "2D" (GLSZM, NGLDM, NGTDM: features
of each slice's matrix averaged over slices). That rst file lacks the table of the GLSZM's small zone
emphasis; its value, 0.363, is the manual's as PolusAI/nyxus ``tests/test_2d_glszm_ibsi.h`` (commit
1cc7aea8) quotes it. IBSI gives no tolerance for the phantom (its tolerance column is empty): the
values are rounded to three significant digits, so a value agrees when it is within half a unit of
the third digit (:func:`published_tolerance`).
"""

from __future__ import annotations

import math

import numpy as np

#: The phantom as nyxus transcribes it: VOLUME[k] is its array z(k+1), rows y, columns x.
VOLUME = np.array([
    [[4, 4, 1, 1], [4, 4, 1, 1], [6, 6, 6, 6], [4, 1, 1, 1], [1, 1, 1, 1]],
    [[4, 1, 1, 1], [1, 1, 1, 1], [6, 3, 9, 1], [4, 1, 1, 1], [1, 1, 1, 1]],
    [[1, 1, 1, 1], [4, 1, 1, 1], [6, 6, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]],
    [[1, 1, 1, 1], [4, 4, 4, 4], [4, 4, 4, 4], [1, 1, 1, 1], [1, 1, 1, 1]]], dtype=float)
#: Voxels of VOLUME outside the ROI (index triples), the mask's zeros in nyxus' transcription.
OUTSIDE = [(1, 0, 1), (1, 2, 2), (3, 3, 2), (3, 3, 3), (3, 4, 2), (3, 4, 3)]


def roi_mask() -> np.ndarray:
    """The ROI mask of :data:`VOLUME` (bool, same shape)."""
    mask = np.ones(VOLUME.shape, dtype=bool)
    for index in OUTSIDE:
        mask[index] = False
    return mask


def ibsi_slices():
    """``(images, masks)``: IBSI's four slices of the phantom, each a 2-D image with its mask."""
    mask = roi_mask()
    return ([VOLUME[:, :, k] for k in range(VOLUME.shape[2])],
            [mask[:, :, k] for k in range(VOLUME.shape[2])])


def published_tolerance(value: float) -> float:
    """Half a unit of the third significant digit of ``value``: the rounding of IBSI's phantom values."""
    return 0.5 * 10.0 ** (math.floor(math.log10(abs(value))) - 2)


#: Intensity-based statistics (IBSI section "intensity-based statistical features"): featurekit's
#: first-order name, IBSI's name, value. IBSI's kurtosis is the excess kurtosis (see the test).
STATISTICS = [
    ("Mean", "mean", 2.15), ("Variance", "variance", 3.05), ("Skewness", "skewness", 1.08),
    ("Kurtosis", "(excess) kurtosis", -0.355), ("Median", "median", 1), ("Minimum", "minimum", 1),
    ("10Percentile", "10th percentile", 1), ("90Percentile", "90th percentile", 4), ("Maximum", "maximum", 6),
    ("InterquartileRange", "interquartile range", 3), ("Range", "range", 5),
    ("MeanAbsoluteDeviation", "mean absolute deviation", 1.55),
    ("RobustMeanAbsoluteDeviation", "robust mean absolute deviation", 1.11), ("Energy", "energy", 567),
    ("RootMeanSquared", "root mean square", 2.77),
]
#: Intensity histogram features (IBSI section "intensity histogram features"), the phantom as it is.
HISTOGRAM = [("Entropy", "discretised intensity entropy", 1.27),
             ("Uniformity", "discretised intensity uniformity", 0.512)]

#: Texture features of IBSI's 2-D aggregation, per family: featurekit's (pyradiomics') name, IBSI's name
#: (IBSI's NGLDM is pyradiomics' GLDM), value. A featurekit name may appear twice where IBSI defines two
#: features that are the same quantity (dissimilarity = difference average, sum variance = cluster tendency).
TEXTURE = {
    "glcm": [
        ("MaximumProbability", "joint maximum", 0.519), ("JointAverage", "joint average", 2.14),
        ("SumSquares", "joint variance", 2.69), ("JointEntropy", "joint entropy", 2.05),
        ("DifferenceAverage", "difference average", 1.42), ("DifferenceVariance", "difference variance", 2.9),
        ("DifferenceEntropy", "difference entropy", 1.4), ("SumAverage", "sum average", 4.28),
        ("ClusterTendency", "sum variance", 5.47), ("SumEntropy", "sum entropy", 1.6),
        ("JointEnergy", "angular second moment", 0.368), ("Contrast", "contrast", 5.28),
        ("DifferenceAverage", "dissimilarity", 1.42), ("Id", "inverse difference", 0.678),
        ("Idn", "normalised inverse difference", 0.851), ("Idm", "inverse difference moment", 0.619),
        ("Idmn", "normalised inverse difference moment", 0.899), ("InverseVariance", "inverse variance", 0.0567),
        ("Correlation", "correlation", -0.0121), ("Autocorrelation", "autocorrelation", 5.09),
        ("ClusterTendency", "cluster tendency", 5.47), ("ClusterShade", "cluster shade", 7),
        ("ClusterProminence", "cluster prominence", 79.1), ("Imc1", "information correlation 1", -0.155),
        ("Imc2", "information correlation 2", 0.487),
    ],
    "glrlm": [
        ("ShortRunEmphasis", "short runs emphasis", 0.641), ("LongRunEmphasis", "long runs emphasis", 3.78),
        ("LowGrayLevelRunEmphasis", "low grey level run emphasis", 0.604),
        ("HighGrayLevelRunEmphasis", "high grey level run emphasis", 9.82),
        ("ShortRunLowGrayLevelEmphasis", "short run low grey level emphasis", 0.294),
        ("ShortRunHighGrayLevelEmphasis", "short run high grey level emphasis", 8.57),
        ("LongRunLowGrayLevelEmphasis", "long run low grey level emphasis", 3.14),
        ("LongRunHighGrayLevelEmphasis", "long run high grey level emphasis", 17.4),
        ("GrayLevelNonUniformity", "grey level non-uniformity", 5.2),
        ("GrayLevelNonUniformityNormalized", "normalised grey level non-uniformity", 0.46),
        ("RunLengthNonUniformity", "run length non-uniformity", 6.12),
        ("RunLengthNonUniformityNormalized", "normalised run length non-uniformity", 0.492),
        ("RunPercentage", "run percentage", 0.627), ("GrayLevelVariance", "grey level variance", 3.35),
        ("RunVariance", "run length variance", 0.761), ("RunEntropy", "run entropy", 2.17),
    ],
    "glszm": [
        ("SmallAreaEmphasis", "small zone emphasis", 0.363), ("LargeAreaEmphasis", "large zone emphasis", 43.9),
        ("LowGrayLevelZoneEmphasis", "low grey level zone emphasis", 0.371),
        ("HighGrayLevelZoneEmphasis", "high grey level zone emphasis", 16.4),
        ("SmallAreaLowGrayLevelEmphasis", "small zone low grey level emphasis", 0.0259),
        ("SmallAreaHighGrayLevelEmphasis", "small zone high grey level emphasis", 10.3),
        ("LargeAreaLowGrayLevelEmphasis", "large zone low grey level emphasis", 40.4),
        ("LargeAreaHighGrayLevelEmphasis", "large zone high grey level emphasis", 113),
        ("GrayLevelNonUniformity", "grey level non-uniformity", 1.41),
        ("GrayLevelNonUniformityNormalized", "normalised grey level non-uniformity", 0.323),
        ("SizeZoneNonUniformity", "zone size non-uniformity", 1.49),
        ("SizeZoneNonUniformityNormalized", "normalised zone size non-uniformity", 0.333),
        ("ZonePercentage", "zone percentage", 0.24), ("GrayLevelVariance", "grey level variance", 3.97),
        ("ZoneVariance", "zone size variance", 21), ("ZoneEntropy", "zone size entropy", 1.93),
    ],
    "gldm": [
        ("SmallDependenceEmphasis", "low dependence emphasis", 0.158),
        ("LargeDependenceEmphasis", "high dependence emphasis", 19.2),
        ("LowGrayLevelEmphasis", "low grey level count emphasis", 0.702),
        ("HighGrayLevelEmphasis", "high grey level count emphasis", 7.49),
        ("SmallDependenceLowGrayLevelEmphasis", "low dependence low grey level emphasis", 0.0473),
        ("SmallDependenceHighGrayLevelEmphasis", "low dependence high grey level emphasis", 3.06),
        ("LargeDependenceLowGrayLevelEmphasis", "high dependence low grey level emphasis", 17.6),
        ("LargeDependenceHighGrayLevelEmphasis", "high dependence high grey level emphasis", 49.5),
        ("GrayLevelNonUniformity", "grey level non-uniformity", 10.2),
        ("DependenceNonUniformity", "dependence count non-uniformity", 3.96),
        ("DependenceNonUniformityNormalized", "normalised dependence count non-uniformity", 0.212),
        ("GrayLevelVariance", "grey level variance", 2.7), ("DependenceVariance", "dependence count variance", 2.73),
        ("DependenceEntropy", "dependence count entropy", 2.71),
    ],
    "ngtdm": [
        ("Coarseness", "coarseness", 0.121), ("Contrast", "contrast", 0.925), ("Busyness", "busyness", 2.99),
        ("Complexity", "complexity", 10.4), ("Strength", "strength", 2.88),
    ],
}

#: NGLDM features IBSI defines that pyradiomics' GLDM (and so featurekit's) leaves out, with their 2-D
#: values; the test says where each one is, if anywhere.
NGLDM_NOT_IN_GLDM = {"normalised grey level non-uniformity": 0.562, "dependence count percentage": 1,
                     "dependence count energy": 0.17}
