r"""2-D shape of the ROI (pyradiomics' ``shape2D`` class): 10 features of the mask alone.

The ROI's outline is pyradiomics' marching-squares mesh: vertices halfway
along every edge between a pixel inside and a 4-neighbour outside (the mask
padded with one ring of outside pixels), joined by the lines of pyradiomics'
lookup table (two per saddle square, the inside pixels kept apart). With
``A`` the mesh's area (signed sum of the triangles the lines form with the
origin), ``P`` its perimeter (sum of the line lengths), ``N_p`` the ROI's
pixels and :math:`\lambda_{minor} \le \lambda_{major}` the eigenvalues of the
covariance of the pixel centres (population covariance, in mm):

=============================  ==============================================
``MeshSurface``                ``A``
``PixelSurface``               :math:`N_p` times the pixel area
``Perimeter``                  ``P``
``PerimeterSurfaceRatio``      ``P / A``
``Sphericity``                 :math:`2 \sqrt{\pi A} / P`
``SphericalDisproportion``     ``1 / Sphericity`` (deprecated in pyradiomics
                               and left out of ``'all'``, as there; ask for it
                               by name)
``MaximumDiameter``            largest distance between two mesh vertices
``MajorAxisLength``            :math:`4 \sqrt{\lambda_{major}}`
``MinorAxisLength``            :math:`4 \sqrt{\lambda_{minor}}`
``Elongation``                 :math:`\sqrt{\lambda_{minor} / \lambda_{major}}`
=============================  ==============================================

``spacing`` is the pixel size (rows, columns) in mm, pyradiomics'
``GetSpacing()[::-1]``. Without a mask the whole image is the ROI. A
one-pixel ROI has no axes (pyradiomics returns NaN for its ``Elongation``,
0/0); it is given ``Elongation`` 1 here (no direction is longer than
another), since a transformer never returns NaN.

IBSI (Zwanenburg et al., Radiology 2020) defines its morphological features
in 3-D only; these are pyradiomics' 2-D counterparts.

Only the masks are read: the images' values are neither converted nor
checked (NaN pixels are no error here), only their shapes count.

Speed: one compiled pass over each mask's bounding box
(:func:`featurekit.handcrafted._kernels.shape_counts`) counts what area and
perimeter are exact sums of -- the mesh's vertices (inside/outside pairs) and
the marching squares with one or three inside corners and the saddles, every
coordinate a multiple of 1/2 -- and the pixel moments (exact integer sums);
the diameter is the largest distance between the vertices of the convex hull
of the mesh's vertices (Andrew's monotone chain over the leftmost and
rightmost vertex at each height, in whole half-pixels), which is the largest
over all vertices. The features of a chunk are then computed at once.
Results equal pyradiomics' ``RadiomicsShape2D`` to ~1e-12 relative (tests).
"""

from __future__ import annotations

from typing import List

import numpy as np

from featurekit.handcrafted._base import Family, FamilyTransformer, batch_function, transformer_doc
from featurekit.handcrafted._input import mask_box
from featurekit.handcrafted._params import check_features, check_spacing, prefixed

__all__ = ["SHAPE2D_FEATURES", "SHAPE2D_ALL", "shape2d_features", "shape2d_feature_names", "Shape2DFeatures"]

#: pyradiomics' default 2-D shape features, in its order (v3 names).
SHAPE2D_FEATURES = (
    "MeshSurface", "PixelSurface", "Perimeter", "PerimeterSurfaceRatio", "Sphericity", "MaximumDiameter",
    "MajorAxisLength", "MinorAxisLength", "Elongation",
)
#: every feature that can be asked for by name (adds pyradiomics' deprecated one).
SHAPE2D_ALL = SHAPE2D_FEATURES + ("SphericalDisproportion",)

#: Pixels of the images of one chunk (their masks' boxes are read one at a time).
_PIXELS = 1 << 22


def shape2d_feature_names(features="all") -> List[str]:
    """Output names ``shape2D_<feature>`` (pyradiomics' ``original_shape2D_<feature>``)."""
    return prefixed("shape2D", _check_names(features))


def _check_names(features):
    """``features`` as names of :data:`SHAPE2D_ALL` (``'all'``: the default :data:`SHAPE2D_FEATURES`)."""
    if isinstance(features, str) and features == "all":
        return SHAPE2D_FEATURES
    return check_features(features, SHAPE2D_ALL, "shape2D")


def _features(counts: np.ndarray, d2: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """The 10 features (:data:`SHAPE2D_ALL` order) from each mask's
    :func:`~featurekit.handcrafted._kernels.shape_counts` (``counts`` stacked, ``d2`` the squared
    diameters)."""
    Np, V, H, n1, n3, n_saddle = (counts[:, k].astype(np.float64) for k in (0, 6, 7, 8, 9, 10))
    ld = float(np.hypot(dy / 2, dx / 2))
    diag = n1 + n3 + 2 * n_saddle  # diagonal lines: one per odd square, two per saddle
    perimeter = ld * diag + dx * (V - diag / 2) + dy * (H - diag / 2)
    # the mesh's signed area is the area it encloses: 1/4 of each square per inside corner, less
    # 1/8 per one-corner square, more 1/8 per three-corner one, less 1/4 per saddle
    surface = (Np + (n3 - n1) / 8 - n_saddle / 4) * dy * dx
    # second moments of the pixel centres from exact integer sums (Python ints: no overflow)
    cov = []
    for n_, sy, sx, syy, sxx, sxy in counts[:, :6].tolist():
        n2 = n_ * n_
        cov.append(((n_ * syy - sy * sy) / n2 * dy * dy, (n_ * sxx - sx * sx) / n2 * dx * dx,
                    (n_ * sxy - sx * sy) / n2 * dy * dx))
    cyy, cxx, cxy = np.array(cov).T
    half, root = (cyy + cxx) / 2, np.hypot((cyy - cxx) / 2, cxy)
    major, minor = half + root, np.maximum(half - root, 0.0)  # rounding can leave a zero eigenvalue at -1e-17
    sphericity = 2 * np.sqrt(np.pi * surface) / perimeter
    with np.errstate(divide="ignore", invalid="ignore"):
        elongation = np.where(major > 0, np.sqrt(minor / major), 1.0)
    return np.stack([surface, Np * dy * dx, perimeter, perimeter / surface, sphericity, np.sqrt(d2),
                     4 * np.sqrt(major), 4 * np.sqrt(minor), elongation, 1 / sphericity], axis=1)


def _chunk_size(images) -> int:
    """Images per chunk: at most 64, their pixels at most :data:`_PIXELS`."""
    return max(1, min(64, _PIXELS // max(img.shape[0] * img.shape[1] for img in images)))


def _check(spacing=(1.0, 1.0), features="all") -> dict:
    """The family's parameters, validated, as the arguments of :func:`_shape_chunk`."""
    dy, dx = check_spacing(spacing)
    return {"dy": dy, "dx": dx, "features": _check_names(features)}


def _shape_chunk(images, masks, *, dy, dx, features, first=0) -> np.ndarray:
    from featurekit.handcrafted._kernels import shape_counts

    columns = [SHAPE2D_ALL.index(f) for f in features]
    counts, d2 = np.empty((len(images), 11), dtype=np.int64), np.empty(len(images))
    for k, (img, m) in enumerate(zip(images, masks)):
        if m is None:
            (r0, r1, c0, c1), m = (0, img.shape[0], 0, img.shape[1]), np.ones(img.shape[:2], dtype=bool)
        else:
            r0, r1, c0, c1 = mask_box(m)
        u = np.zeros((r1 - r0 + 2, c1 - c0 + 2), dtype=np.uint8)  # the box with a border of zeros
        u[1:-1, 1:-1] = m[r0:r1, c0:c1]
        counts[k], d2[k] = shape_counts(u, dy, dx)
    return _features(counts, d2, dy, dx)[:, columns]


# the masks alone: the images' values are never read (nor converted or checked), only their shapes
_FAMILY = Family(_check, lambda p: prefixed("shape2D", p["features"]), _shape_chunk, chunk_size=_chunk_size,
                 reads_pixels=False)


#: numpydoc entries of the family's own parameters (its batch function's and transformer's docstrings).
_PARAMS_DOC = """\
spacing : (float, float), default (1, 1)
    Pixel size (rows, columns) in mm.
features : 'all' (the 9 default ones) or list of names of :data:`SHAPE2D_ALL`
"""


class Shape2DFeatures(FamilyTransformer):
    __doc__ = transformer_doc(
        "2-D shape of the ROI (pyradiomics' ``shape2D``) as a scikit-learn transformer "
        "(:func:`shape2d_features`; formulas in the module docstring).",
        "``shape2D_<feature>`` (e.g. ``shape2D_Perimeter``)",
        _PARAMS_DOC,
    )

    _family = _FAMILY

    def __init__(self, spacing=(1.0, 1.0), features="all", device="cpu", n_jobs=None, empty_mask="error",
                 max_side=None):
        self.spacing = spacing
        self.features = features
        super().__init__(device=device, n_jobs=n_jobs, empty_mask=empty_mask, max_side=max_side)


shape2d_features = batch_function(
    Shape2DFeatures, "shape2d_features",
    "2-D shape features of the ROIs of a batch of images (module docstring for the formulas).",
    params=_PARAMS_DOC,
    masks="``None``: the whole image. Only the masks (a Dataset's own) and the images' shapes are read.",
    names="shape2d_feature_names",
)
