r"""The 24 pyradiomics GLCM features and skimage's graycoprops, vectorised over a stack of matrices.

Features (:math:`N_g` = highest grey level present in the ROI, :math:`i, j`
grey level values ``1..N_g``, :math:`p_x, p_y` marginals, :math:`\mu_x =
\sum i\,p(i,j)`, :math:`\sigma_x^2 = \sum (i-\mu_x)^2 p(i,j)`,
:math:`p_{x+y}(k) = \sum_{i+j=k} p`, :math:`p_{x-y}(k) = \sum_{|i-j|=k} p`,
:math:`\epsilon` = ``numpy.spacing(1)``, :math:`\log = \log_2`), with
pyradiomics' names and formulas (GLCM feature class, v3):

==================  =========================================================
Autocorrelation     :math:`\sum p(i,j)\,ij`
JointAverage        :math:`\mu_x`
ClusterProminence   :math:`\sum (i+j-\mu_x-\mu_y)^4 p(i,j)`
ClusterShade        :math:`\sum (i+j-\mu_x-\mu_y)^3 p(i,j)`
ClusterTendency     :math:`\sum (i+j-\mu_x-\mu_y)^2 p(i,j)`
Contrast            :math:`\sum (i-j)^2 p(i,j)`
Correlation         :math:`\frac{\sum p(i,j)(i-\mu_x)(j-\mu_y)}{\sigma_x\sigma_y+\epsilon}`,
                    1 when :math:`\sigma_x\sigma_y = 0` (flat region)
DifferenceAverage   :math:`\sum_k k\,p_{x-y}(k)`
DifferenceEntropy   :math:`-\sum_k p_{x-y}(k)\log(p_{x-y}(k)+\epsilon)`
DifferenceVariance  :math:`\sum_k (k-DA)^2 p_{x-y}(k)`
JointEnergy         :math:`\sum p(i,j)^2`
JointEntropy        :math:`HXY = -\sum p(i,j)\log(p(i,j)+\epsilon)`
Imc1                :math:`\frac{HXY - HXY1}{\max(HX, HY)}` (0 when the max is 0),
                    :math:`HXY1 = -\sum p(i,j)\log(p_x(i)p_y(j)+\epsilon)`
Imc2                :math:`\sqrt{1 - e^{-2(HXY2 - HXY)}}` (0 when equal),
                    :math:`HXY2 = -\sum p_x(i)p_y(j)\log(p_x(i)p_y(j)+\epsilon)`
Idm                 :math:`\sum_k p_{x-y}(k)/(1+k^2)`
MCC                 square root of the second largest eigenvalue of
                    :math:`Q(i,j) = \sum_k \frac{p(i,k)p(j,k)}{p_x(i)p_y(k)}`;
                    1 when the ROI has a single grey level
Idmn                :math:`\sum_k p_{x-y}(k)/(1+k^2/N_g^2)`
Id                  :math:`\sum_k p_{x-y}(k)/(1+k)`
Idn                 :math:`\sum_k p_{x-y}(k)/(1+k/N_g)`
InverseVariance     :math:`\sum_{k\ge1} p_{x-y}(k)/k^2`
MaximumProbability  :math:`\max p(i,j)`
SumAverage          :math:`\sum_k k\,p_{x+y}(k)`
SumEntropy          :math:`-\sum_k p_{x+y}(k)\log(p_{x+y}(k)+\epsilon)`
SumSquares          :math:`\sum (i-\mu_x)^2 p(i,j)`
==================  =========================================================

plus :func:`skimage.feature.graycoprops`' set, named ``sk-<prop>``, computed
exactly as skimage does on the levels shifted to ``0..N-1`` (the
``graycomatrix`` input ``level - 1``): ``sk-contrast``, ``sk-dissimilarity``
(:math:`\sum p|i-j|`), ``sk-homogeneity`` (:math:`\sum p/(1+(i-j)^2)`),
``sk-ASM``, ``sk-energy`` (:math:`\sqrt{ASM}`), ``sk-correlation`` (1 when a
standard deviation is below 1e-15), ``sk-mean`` (:math:`\sum i'p`, 0-based),
``sk-variance``, ``sk-std``, ``sk-entropy`` (natural log, :math:`0\log 0=0`).

Constant image (or ROI): one grey level, :math:`p = [1]`: Contrast,
DifferenceAverage/Entropy/Variance, ClusterX, Imc1, Imc2, SumSquares,
JointEntropy, SumEntropy, InverseVariance = 0; JointEnergy, Idm, Idmn, Id,
Idn, MaximumProbability, Correlation, MCC = 1; Autocorrelation = L²,
JointAverage = L, SumAverage = 2L for that level L; no NaN.

Computation: :func:`haralick_features` takes a stack of normalised matrices
``(B, G, G)`` (every image x offset of a batch, zero-padded to a common ``G``:
empty levels add exact zeros) and computes every wanted feature for all of
them at once, each intermediate quantity (marginals :math:`p_x, p_y`, means,
:math:`p_{x+y}`, :math:`p_{x-y}`, entropies) once and only when a wanted
feature needs it. :math:`p_{x+y}` and :math:`p_{x-y}` are one weighted
``numpy.bincount`` each over the whole stack; MCC's eigenvalues come from
``numpy.linalg.eigvalsh`` on the symmetric form
:math:`D_x^{-1/2} P D_y^{-1} P^T D_x^{-1/2}` of Q.

References
----------
R. M. Haralick, K. Shanmugam and I. Dinstein, "Textural features for image
classification", IEEE Trans. Syst. Man Cybern. SMC-3(6):610-621, 1973.

pyradiomics documentation, "Gray Level Co-occurrence Matrix (GLCM) Features",
https://pyradiomics.readthedocs.io/en/latest/features.html

scikit-image, ``skimage.feature.graycoprops``,
https://scikit-image.org/docs/stable/api/skimage.feature.html#skimage.feature.graycoprops
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence, Tuple

import numpy as np

from featurekit.errors import DataError

__all__ = ["PYRADIOMICS_FEATURES", "SKIMAGE_FEATURES", "GLCM_FEATURES", "check_features", "haralick_features"]

#: pyradiomics' 24 GLCM features (v3 names), in output order.
PYRADIOMICS_FEATURES = (
    "Autocorrelation", "JointAverage", "ClusterProminence", "ClusterShade", "ClusterTendency",
    "Contrast", "Correlation", "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance",
    "JointEnergy", "JointEntropy", "Imc1", "Imc2", "Idm", "MCC", "Idmn", "Id", "Idn",
    "InverseVariance", "MaximumProbability", "SumAverage", "SumEntropy", "SumSquares",
)
#: skimage.feature.graycoprops' properties, output as ``sk-<name>``.
SKIMAGE_FEATURES = (
    "contrast", "dissimilarity", "homogeneity", "ASM", "energy", "correlation",
    "mean", "variance", "std", "entropy",
)
#: Every feature name accepted in ``features``.
GLCM_FEATURES = PYRADIOMICS_FEATURES + tuple(f"sk-{f}" for f in SKIMAGE_FEATURES)
_EPS = float(np.spacing(1))


def check_features(features) -> Tuple[str, ...]:
    """Feature names of ``'all'``, ``'pyradiomics'``, ``'skimage'`` or a list (raises :class:`DataError`)."""
    if isinstance(features, str):
        if features == "all":
            return GLCM_FEATURES
        if features == "pyradiomics":
            return PYRADIOMICS_FEATURES
        if features == "skimage":
            return tuple(f"sk-{f}" for f in SKIMAGE_FEATURES)
        features = (features,)
    features = tuple(features)
    bad = [f for f in features if f not in GLCM_FEATURES]
    if bad or not features or len(set(features)) != len(features):
        raise DataError(
            f"features must be 'all', 'pyradiomics', 'skimage' or distinct names from {GLCM_FEATURES}; "
            f"got {features!r}"
        )
    return features


class _Levels:
    """Constants of ``G`` grey levels shared by every stack of that size (cached)."""

    def __init__(self, G: int):
        self.lv = np.arange(1, G + 1, dtype=np.float64)  # grey level values i, j
        self.kS = np.arange(2, 2 * G + 1, dtype=np.float64)  # i + j
        self.kD = kD = np.arange(0, G, dtype=np.float64)  # |i - j|
        ii, jj = np.meshgrid(np.arange(G), np.arange(G), indexing="ij")
        self.add_index, self.sub_index = (ii + jj).ravel(), np.abs(ii - jj).ravel()
        inv_k2 = np.zeros(G)
        inv_k2[1:] = 1 / kD[1:] ** 2
        #: weights of p_{x-y}: DifferenceAverage, Contrast, Idm, Id, InverseVariance
        self.sub_weights = np.stack([kD, kD**2, 1 / (1 + kD**2), 1 / (1 + kD), inv_k2], axis=1)
        self.ij = np.outer(self.lv, self.lv).ravel()  # Autocorrelation


@lru_cache(maxsize=16)
def _levels(G: int) -> _Levels:
    return _Levels(G)


def _diag_sums(flatP: np.ndarray, index: np.ndarray, K: int) -> np.ndarray:
    """``out[b, k] = sum(flatP[b, index == k])`` for a stack ``(B, G*G)``: one weighted bincount."""
    B = flatP.shape[0]
    codes = (np.arange(B)[:, None] * K + index).ravel()
    return np.bincount(codes, weights=flatP.ravel(), minlength=B * K).reshape(B, K)


def haralick_features(P: np.ndarray, Ng: np.ndarray, n_levels_present: np.ndarray,
                      wanted: Sequence[str]) -> np.ndarray:
    """GLCM features of a stack of normalised matrices.

    Parameters
    ----------
    P : numpy.ndarray
        ``(B, G, G)`` float64, each matrix summing to 1 (index ``k`` = level
        ``k + 1``; rows and columns beyond an image's own :math:`N_g` are 0).
    Ng : numpy.ndarray
        ``(B,)`` highest grey level :math:`N_g` of each matrix's ROI.
    n_levels_present : numpy.ndarray
        ``(B,)``; only ``< 2`` (a single grey level: MCC = 1) matters.
    wanted : sequence of str
        Names from :data:`GLCM_FEATURES` (validated by :func:`check_features`).

    Returns
    -------
    numpy.ndarray
        ``(B, len(wanted))`` float64, formulas of the module docstring.
    """
    B, G, _ = P.shape
    eps = _EPS
    k = _levels(G)
    lv, kS, kD = k.lv, k.kS, k.kD
    flatP = P.reshape(B, G * G)
    Ngf = Ng.astype(np.float64)[:, None]
    memo = {}

    def get(name):
        if name not in memo:
            memo[name] = _COEF[name](get)
        return memo[name]

    def entropy(q, axis=1):  # -sum q log2(q + eps)
        return -(q * np.log2(q + eps)).sum(axis)

    _COEF = {
        "px": lambda g: P.sum(2),
        "py": lambda g: P.sum(1),
        "ux": lambda g: g("px") @ lv,
        "uy": lambda g: g("py") @ lv,
        "dx": lambda g: lv - g("ux")[:, None],
        "dy": lambda g: lv - g("uy")[:, None],
        "varx": lambda g: (g("px") * g("dx") ** 2).sum(1),
        "sigx": lambda g: np.sqrt(g("varx")),
        "sigy": lambda g: np.sqrt((g("py") * g("dy") ** 2).sum(1)),
        "corm": lambda g: np.einsum("bij,bi,bj->b", P, g("dx"), g("dy")),
        "pxAddy": lambda g: _diag_sums(flatP, k.add_index, 2 * G - 1),
        "pxSuby": lambda g: _diag_sums(flatP, k.sub_index, G),
        "sub": lambda g: g("pxSuby") @ k.sub_weights,  # DA, Contrast, Idm, Id, InverseVariance
        "c": lambda g: kS - (g("ux") + g("uy"))[:, None],
        "c2": lambda g: g("c") ** 2,
        "HXY": lambda g: entropy(flatP),
        "pxy": lambda g: g("px")[:, :, None] * g("py")[:, None, :],
        "lpxy": lambda g: np.log2(g("pxy") + eps),
        "HXY1": lambda g: -(P * g("lpxy")).sum((1, 2)),
        "HXY2": lambda g: -(g("pxy") * g("lpxy")).sum((1, 2)),
        "JointEnergy": lambda g: (flatP * flatP).sum(1),
        "sk-mean": lambda g: g("ux") - 1,  # sum (i - 1) p(i, j)
        "sk-variance": lambda g: g("varx"),  # the same spread, 0-based
    }

    def corr(g):
        prod = g("sigx") * g("sigy")
        return np.where(prod == 0, 1.0, g("corm") / (prod + eps))

    def sk_corr(g):
        flat = (g("sigx") < 1e-15) | (g("sigy") < 1e-15)
        return np.where(flat, 1.0, g("corm") / np.where(flat, 1.0, g("sigx") * g("sigy")))

    def imc1(g):
        div = np.fmax(entropy(g("px")), entropy(g("py")))
        return np.where(div != 0, (g("HXY") - g("HXY1")) / np.where(div != 0, div, 1.0), 0.0)

    def imc2(g):
        arg = np.maximum(g("HXY2") - g("HXY"), 0.0)
        return np.where(g("HXY2") == g("HXY"), 0.0, np.sqrt(1 - np.exp(-2 * arg)))

    def sk_entropy(g):
        return -(flatP * np.log(np.where(flatP > 0, flatP, 1.0))).sum(1)

    feats = {
        "Autocorrelation": lambda g: flatP @ k.ij,
        "JointAverage": lambda g: g("ux"),
        "ClusterProminence": lambda g: (g("pxAddy") * g("c2") ** 2).sum(1),
        "ClusterShade": lambda g: (g("pxAddy") * g("c2") * g("c")).sum(1),
        "ClusterTendency": lambda g: (g("pxAddy") * g("c2")).sum(1),
        "Contrast": lambda g: g("sub")[:, 1],
        "Correlation": corr,
        "DifferenceAverage": lambda g: g("sub")[:, 0],
        "DifferenceEntropy": lambda g: entropy(g("pxSuby")),
        "DifferenceVariance": lambda g: (g("pxSuby") * (kD - g("sub")[:, :1]) ** 2).sum(1),
        "JointEnergy": lambda g: g("JointEnergy"),
        "JointEntropy": lambda g: g("HXY"),
        "Imc1": imc1,
        "Imc2": imc2,
        "Idm": lambda g: g("sub")[:, 2],
        "MCC": lambda g: _mcc(P, g("px"), g("py"), n_levels_present),
        "Idmn": lambda g: (g("pxSuby") / (1 + kD**2 / Ngf**2)).sum(1),
        "Id": lambda g: g("sub")[:, 3],
        "Idn": lambda g: (g("pxSuby") / (1 + kD / Ngf)).sum(1),
        "InverseVariance": lambda g: g("sub")[:, 4],
        "MaximumProbability": lambda g: flatP.max(1),
        "SumAverage": lambda g: g("pxAddy") @ kS,
        "SumEntropy": lambda g: entropy(g("pxAddy")),
        "SumSquares": lambda g: g("varx"),
        # skimage's graycoprops on 0-based levels
        "sk-contrast": lambda g: g("sub")[:, 1],
        "sk-dissimilarity": lambda g: g("sub")[:, 0],
        "sk-homogeneity": lambda g: g("sub")[:, 2],
        "sk-ASM": lambda g: g("JointEnergy"),
        "sk-energy": lambda g: np.sqrt(g("JointEnergy")),
        "sk-correlation": sk_corr,
        "sk-mean": lambda g: g("sk-mean"),
        "sk-variance": lambda g: g("sk-variance"),
        "sk-std": lambda g: np.sqrt(g("sk-variance")),
        "sk-entropy": sk_entropy,
    }
    out = np.empty((B, len(wanted)))
    for col, name in enumerate(wanted):
        out[:, col] = feats[name](get)
    return out


def _mcc(P, px, py, n_levels_present) -> np.ndarray:
    """Maximal correlation coefficient: sqrt of the 2nd largest eigenvalue of Q.

    :math:`Q = D_x^{-1} P D_y^{-1} P^T` is similar to the symmetric PSD matrix
    :math:`M = A A^T`, :math:`A = D_x^{-1/2} P D_y^{-1/2}` (rows/columns of
    empty levels are 0 in both), so ``eigvalsh(M)`` gives Q's eigenvalues.
    """
    with np.errstate(divide="ignore"):
        rx = np.where(px > 0, 1.0 / np.sqrt(np.where(px > 0, px, 1.0)), 0.0)
        ry = np.where(py > 0, 1.0 / np.sqrt(np.where(py > 0, py, 1.0)), 0.0)
    A = P * rx[:, :, None] * ry[:, None, :]
    M = A @ A.transpose(0, 2, 1)
    G = P.shape[1]
    if G < 2:
        return np.ones(P.shape[0])
    ev = np.linalg.eigvalsh(M)  # ascending
    mcc = np.sqrt(np.maximum(ev[:, -2], 0.0))
    return np.where(n_levels_present < 2, 1.0, mcc)
