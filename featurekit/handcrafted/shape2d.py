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

Speed: no loop over pixels. Each 2 x 2 square of the mask's bounding box
gets its pyradiomics square index at once; the area and perimeter are sums
over the 16 indices of per-index line tables (exact: every coordinate is a
multiple of 1/2); the diameter is the largest distance between the vertices
of the convex hull of the outermost vertices of each row, which is the
largest over all vertices; the axes come from the pixel moments. Results
equal pyradiomics' ``RadiomicsShape2D`` to ~1e-12 relative (tests).
"""

from __future__ import annotations

from typing import List

import numpy as np

from featurekit.handcrafted._base import Family, FamilyTransformer, batch_function, transformer_doc
from featurekit.handcrafted._params import check_features, check_spacing, prefixed

__all__ = ["SHAPE2D_FEATURES", "SHAPE2D_ALL", "shape2d_features", "shape2d_feature_names", "Shape2DFeatures"]

#: pyradiomics' default 2-D shape features, in its order (v3 names).
SHAPE2D_FEATURES = (
    "MeshSurface", "PixelSurface", "Perimeter", "PerimeterSurfaceRatio", "Sphericity", "MaximumDiameter",
    "MajorAxisLength", "MinorAxisLength", "Elongation",
)
#: every feature that can be asked for by name (adds pyradiomics' deprecated one).
SHAPE2D_ALL = SHAPE2D_FEATURES + ("SphericalDisproportion",)

# pyradiomics' marching-squares tables. Corners of the square at (y, x):
# p0 (y, x) = bit 0, p1 (y, x+1) = bit 1, p2 (y+1, x+1) = bit 2, p3 (y+1, x) = bit 3.
# Edge midpoints (dy, dx): e0 top, e1 right, e2 bottom, e3 left.
_EDGE = np.array([[0.0, 0.5], [0.5, 1.0], [1.0, 0.5], [0.5, 0.0]])
_LINES = {1: ((3, 0),), 2: ((0, 1),), 3: ((3, 1),), 4: ((1, 2),), 5: ((1, 2), (3, 0)), 6: ((0, 2),),
          7: ((3, 2),), 8: ((2, 3),), 9: ((2, 0),), 10: ((0, 1), (2, 3)), 11: ((2, 1),), 12: ((1, 3),),
          13: ((1, 0),), 14: ((0, 3),)}


def _square_tables(dy: float, dx: float):
    """Per square index: the summed length of its lines (mm) and the area of the
    ROI's part of the square (in pixels: 1/8 per cut corner, 1/2 per half)."""
    length, area = np.zeros(16), np.zeros(16)
    for idx, lines in _LINES.items():
        for ea, eb in lines:
            (ay, ax), (by, bx) = _EDGE[ea], _EDGE[eb]
            length[idx] += np.hypot((ay - by) * dy, (ax - bx) * dx)
        corners = bin(idx).count("1")
        area[idx] = {1: 1 / 8, 2: 1 / 4 if idx in (5, 10) else 1 / 2, 3: 7 / 8}[corners]
    area[15] = 1.0
    return length, area


def shape2d_feature_names(features="all") -> List[str]:
    """Output names ``shape2D_<feature>`` (pyradiomics' ``original_shape2D_<feature>``)."""
    return prefixed("shape2D", _check_names(features))


def _check_names(features):
    """``features`` as names of :data:`SHAPE2D_ALL` (``'all'``: the default :data:`SHAPE2D_FEATURES`)."""
    if isinstance(features, str) and features == "all":
        return SHAPE2D_FEATURES
    return check_features(features, SHAPE2D_ALL, "shape2D")


def _first_last(a: np.ndarray):
    """Rows of the 2-D bool ``a`` that have a True, and the first and last True column of each."""
    rows = np.flatnonzero(a.any(axis=1))
    sub = a[rows]
    return rows, sub.argmax(axis=1), a.shape[1] - 1 - sub[:, ::-1].argmax(axis=1)


def _convex_side(y: np.ndarray, x: np.ndarray, side: float) -> np.ndarray:
    """Which points of one side of an outline (``x`` per strictly increasing ``y``) can be
    vertices of the convex hull; ``side`` -1 for the left side, +1 for the right.

    A point on or inside the segment joining its neighbours lies between that
    segment and the other side's point at its height, hence is no vertex of
    the hull; such points are dropped in passes until none is (dropping points
    that are no hull vertex keeps the hull, so all go at once).
    """
    alive = np.ones(len(y), dtype=bool)
    while True:
        i = np.flatnonzero(alive)
        if len(i) < 3:
            return alive
        a, b, c = i[:-2], i[1:-1], i[2:]
        # (x_b - x_a)(y_c - y_a) - (x_c - x_a)(y_b - y_a): > 0 when b lies right of a -> c
        cross = (x[b] - x[a]) * (y[c] - y[a]) - (x[c] - x[a]) * (y[b] - y[a])
        drop = b[side * cross <= 0]
        if not len(drop):
            return alive
        alive[drop] = False


def _diameter(m: np.ndarray, dy: float, dx: float) -> float:
    """Largest distance (mm) between two vertices of the mesh of the padded mask ``m``.

    The vertices are the midpoints of the edges between an inside and an
    outside 4-neighbour. The farthest pair are vertices of their convex hull,
    which are among the leftmost and rightmost vertex at each height;
    :func:`_convex_side` drops most of those (heights with a single vertex
    stay), and every pair of the points left is compared.
    """
    r0, f0, l0 = _first_last(m[:-1] != m[1:])  # vertical neighbours: vertices at (y + 1/2, x)
    r1, f1, l1 = _first_last(m.view(bool))  # horizontal: first inside - 1/2, last inside + 1/2
    order = np.argsort(np.concatenate([2 * r0 + 1, 2 * r1]), kind="stable")
    y = np.concatenate([r0 + 0.5, r1.astype(np.float64)])[order] * dy
    left = np.concatenate([f0.astype(np.float64), f1 - 0.5])[order] * dx
    right = np.concatenate([l0.astype(np.float64), l1 + 0.5])[order] * dx
    one = left == right  # a single vertex at its height: no other side to lie between, kept
    two = ~one
    y2, l2, r2 = y[two], left[two], right[two]
    keep_l, keep_r = _convex_side(y2, l2, -1.0), _convex_side(y2, r2, 1.0)
    py = np.concatenate([y2[keep_l], y2[keep_r], y[one]])
    px = np.concatenate([l2[keep_l], r2[keep_r], left[one]])
    best = 0.0
    for start in range(0, len(py), 1024):  # bounded memory for very large outlines
        d2 = (py[start : start + 1024, None] - py[None, :]) ** 2 + (px[start : start + 1024, None] - px[None, :]) ** 2
        best = max(best, float(d2.max()))
    return float(np.sqrt(best))


def _one(mask: np.ndarray, dy: float, dx: float, tables) -> np.ndarray:
    """The 10 features of one mask, in :data:`SHAPE2D_ALL` order."""
    length, area = tables
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = box.shape
    m = np.zeros((h + 2, w + 2), dtype=np.uint8)  # one ring of outside pixels, as pyradiomics pads
    m[1:-1, 1:-1] = box
    idx = m[:-1, :-1] | (m[:-1, 1:] << 1) | (m[1:, 1:] << 2) | (m[1:, :-1] << 3)  # square index, (h+1, w+1)
    per_index = np.bincount(idx.ravel(), minlength=16)
    perimeter = float(per_index @ length)
    # the mesh's signed area is the area it encloses: the ROI's part of every square
    surface = float(per_index @ area) * dy * dx
    diameter = _diameter(m, dy, dx)
    # second moments of the pixel centres from exact integer sums (Python ints: no overflow)
    rows_n = np.count_nonzero(box, axis=1)
    cols_n = np.count_nonzero(box, axis=0)
    yr, xr = np.arange(h), np.arange(w)
    n = int(rows_n.sum())
    sy, sx = int(rows_n @ yr), int(cols_n @ xr)
    syy, sxx = int(rows_n @ (yr * yr)), int(cols_n @ (xr * xr))
    sxy = int(np.where(box, xr, 0).sum(axis=1) @ yr)
    n2 = n * n
    cyy = (n * syy - sy * sy) / n2 * dy * dy
    cxx = (n * sxx - sx * sx) / n2 * dx * dx
    cxy = (n * sxy - sx * sy) / n2 * dy * dx
    half, root = (cyy + cxx) / 2, float(np.hypot((cyy - cxx) / 2, cxy))
    major, minor = half + root, max(half - root, 0.0)  # rounding can leave a zero eigenvalue at -1e-17
    sphericity = 2 * np.sqrt(np.pi * surface) / perimeter
    return np.array([
        surface, n * dy * dx, perimeter, perimeter / surface, sphericity, diameter, 4 * np.sqrt(major),
        4 * np.sqrt(minor), np.sqrt(minor / major) if major > 0 else 1.0, 1 / sphericity,
    ])


def _check(spacing=(1.0, 1.0), features="all") -> dict:
    """The family's parameters, validated, as the arguments of :func:`_shape_chunk`."""
    dy, dx = check_spacing(spacing)
    return {"dy": dy, "dx": dx, "features": _check_names(features)}


def _shape_chunk(images, masks, *, dy, dx, features, first=0) -> np.ndarray:
    columns = np.array([SHAPE2D_ALL.index(f) for f in features])
    tables = _square_tables(dy, dx)
    out = np.empty((len(images), len(columns)))
    for i, (img, m) in enumerate(zip(images, masks)):
        out[i] = _one(np.ones(img.shape, dtype=bool) if m is None else m, dy, dx, tables)[columns]
    return out


_FAMILY = Family(_check, lambda p: prefixed("shape2D", p["features"]), _shape_chunk)


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
