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

Speed: no loop over pixels or images. The masks' bounding boxes of a chunk
are laid out one under the other in one flat canvas (a zero row between
boxes, zero columns on both sides), so that two passes over it find every
vertical and horizontal inside/outside pair, the mesh's vertices. The rest
is computed from those positions for all images at once: the number of
marching squares of each kind from the pairs on their sides (area and
perimeter are exact sums over those counts: every coordinate is a multiple
of 1/2); the pixel moments from the horizontal runs the pairs delimit (exact
integer sums); the diameter as the largest distance between the candidates
for the convex hull's vertices -- of the leftmost and rightmost vertex at
each height, the points left by dropping, in passes over all images, each
one on or inside the segment joining its neighbours -- which is the largest
over all vertices. Results equal pyradiomics' ``RadiomicsShape2D`` to
~1e-12 relative (tests).
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

#: Largest canvas (pixels) of the masks' boxes laid out together; more images go in further canvases.
_CANVAS = 1 << 22
#: Largest (images x points x points) table of the pairwise diameter step.
_PAIRS = 1 << 21


def shape2d_feature_names(features="all") -> List[str]:
    """Output names ``shape2D_<feature>`` (pyradiomics' ``original_shape2D_<feature>``)."""
    return prefixed("shape2D", _check_names(features))


def _check_names(features):
    """``features`` as names of :data:`SHAPE2D_ALL` (``'all'``: the default :data:`SHAPE2D_FEATURES`)."""
    if isinstance(features, str) and features == "all":
        return SHAPE2D_FEATURES
    return check_features(features, SHAPE2D_ALL, "shape2D")


def _box(mask: np.ndarray):
    """Rows and columns ``(r0, r1, c0, c1)`` of the bounding box of a non-empty bool mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(mask[r0:r1].any(axis=0))
    return r0, r1, int(cols[0]), int(cols[-1]) + 1


def _groups(shapes) -> List[slice]:
    """Consecutive images whose boxes (``(h, w)`` each) fill canvases of at most :data:`_CANVAS`
    pixels (a single larger box gets a canvas of its own)."""
    out, start, rows, width = [], 0, 1, 0
    for k, (h, w) in enumerate(shapes):
        if k > start and (rows + h + 1) * (max(width, w) + 2) > _CANVAS:
            out.append(slice(start, k))
            start, rows, width = k, 1, 0
        rows, width = rows + h + 1, max(width, w)
    out.append(slice(start, len(shapes)))
    return out


def _segment_sums(values: np.ndarray, bounds: np.ndarray, dtype=None) -> np.ndarray:
    """Sums of each row of the 2-D ``values`` over the consecutive segments ``bounds[k]:bounds[k + 1]``
    of its columns (``bounds[-1]`` its last column + 1): ``(rows, len(bounds) - 1)``, in ``dtype``
    (default: ``values``' own)."""
    some = bounds[1:] > bounds[:-1]  # reduceat would give an empty segment its first element
    out = np.zeros((values.shape[0], len(some)), dtype=dtype or values.dtype)
    if some.any():
        out[:, some] = np.add.reduceat(values, bounds[:-1][some], axis=1, dtype=dtype)
    return out


def _left_hulls(y: np.ndarray, x: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Indices of the points of left sides of outlines (``x`` per strictly increasing ``y``
    within each ``group``, groups one after the other) that can be vertices of their convex hull.

    A point on or right of the segment joining its neighbours (of its own
    group) lies between that segment and the other side's point at its height,
    hence is no vertex of the hull; such points are dropped in passes until
    none is (dropping points that are no hull vertex keeps the hull, so all go
    at once). The first and last point of every group stay. A right side is a
    left side with ``x`` negated.
    """
    keep = np.arange(len(y))
    while len(y) >= 3:
        ya, xa = y[:-2], x[:-2]
        # (x_b - x_a)(y_c - y_a) - (x_c - x_a)(y_b - y_a): >= 0 when b lies on or right of a -> c
        cross = (x[1:-1] - xa) * (y[2:] - ya) - (x[2:] - xa) * (y[1:-1] - ya)
        drop = (cross >= 0) & (group[:-2] == group[2:])
        if not drop.any():
            break
        alive = np.ones(len(y), dtype=bool)
        alive[1:-1] = ~drop
        y, x, group, keep = y[alive], x[alive], group[alive], keep[alive]
    return keep


def _max_distances(img: np.ndarray, y: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """Per image, the largest distance between two of its points (``img`` sorted)."""
    count = np.bincount(img, minlength=n)
    start = np.concatenate([[0], np.cumsum(count)])
    out = np.zeros(n)
    big = count * count > _PAIRS
    for k in np.flatnonzero(big):  # bounded memory for very large outlines
        py, px = y[start[k] : start[k + 1]], x[start[k] : start[k + 1]]
        for s in range(0, len(py), 1024):
            d2 = (py[s : s + 1024, None] - py[None, :]) ** 2 + (px[s : s + 1024, None] - px[None, :]) ** 2
            out[k] = max(out[k], float(d2.max()))
    small = np.flatnonzero(~big & (count > 0))
    K = int(count[small].max(initial=1))
    step = max(1, _PAIRS // (K * K))
    for g in range(0, len(small), step):
        ks = small[g : g + step]
        # the points of each image in one row, padded with its first point (adds no new distance)
        idx = np.minimum(start[ks, None] + np.arange(K), start[ks + 1, None] - 1)
        py, px = y[idx], x[idx]
        d2 = py[:, :, None] - py[:, None, :]
        d2 *= d2
        dxx = px[:, :, None] - px[:, None, :]
        dxx *= dxx
        d2 += dxx
        out[ks] = d2.max(axis=(1, 2))
    return np.sqrt(out)


def _canvas_features(boxes: List[np.ndarray], dy: float, dx: float) -> np.ndarray:
    """The 10 features (:data:`SHAPE2D_ALL` order) of the masks' bounding boxes ``boxes``.

    The boxes are laid out one under the other in one flat bool canvas of
    width ``W`` (a zero row above each box and below the last, zero columns
    on both sides), so that vertical neighbours are ``W`` apart, horizontal
    ones 1 apart, and no pair or square straddles two images or a row's end
    with a pixel inside. Everything else is computed from the positions of
    the vertical and horizontal inside/outside pairs (the mesh's vertices).
    """
    n = len(boxes)
    W = max(b.shape[1] for b in boxes) + 2
    top = np.cumsum([1] + [b.shape[0] + 1 for b in boxes])  # first row of each box (and one past the last)
    canvas = np.zeros((int(top[-1]), W), dtype=bool)
    for b, t in zip(boxes, top[:-1]):
        canvas[t : t + b.shape[0], 1 : 1 + b.shape[1]] = b
    u = canvas.ravel()
    P = np.flatnonzero(u[:-W] ^ u[W:])  # vertical pairs (p, p + W) with one pixel inside: vertex (row + 1/2, col)
    Q = np.flatnonzero(u[:-1] ^ u[1:])  # horizontal pairs (q, q + 1): vertex (row, col + 1/2)
    seg = (top - 1) * W  # image k owns the rows from the zero row above its box to the next box's zero row
    bP, bQ = np.searchsorted(P, seg), np.searchsorted(Q, seg)
    V, H = np.diff(bP), np.diff(bQ)

    # marching squares (square q: pixels q, q + 1, q + W, q + W + 1) from the pairs on its sides:
    # one vertical side differing = an odd number of inside corners (one diagonal line); both
    # vertical sides and the top differ = a saddle (two diagonal lines); every vertical pair is a
    # side of two squares, every horizontal one too, which gives the squares with a horizontal
    # (two vertical sides differ) or a vertical line (two horizontal sides differ)
    nxt = np.zeros(len(P), dtype=bool)
    nxt[:-1] = P[1:] - P[:-1] == 1  # p and p + 1 both in P (the same row: columns 0 and W - 1 are outside)
    prv = np.zeros(len(P), dtype=bool)
    prv[1:] = nxt[:-1]
    right, left = u[P + 1], u[P - 1]
    # square p with p, p + 1 in P: a saddle when its top pair (p, p + 1) differs too; an odd square
    # has 3 inside corners when its two equal corners are inside, else 1: square p (no p + 1 in P)
    # has p + 1 and p + W + 1 equal, square p - 1 (no p - 1 in P) has p - 1 and p + W - 1 equal
    per_pair = np.stack([nxt, nxt & (u[P] != right), right & ~nxt, left & ~prv]).view(np.int8)
    adj, n_saddle, odd3_right, odd3_left = _segment_sums(per_pair, bP, np.int64)
    n3_minus_n1 = 2 * (odd3_right + odd3_left) - 2 * (V - adj)  # each odd square: +1 if 3 corners, -1 if 1
    n_odd = 2 * V - 2 * adj  # squares with 1 or 3 inside corners

    # the ROI's pixels as horizontal runs: the changes of each row alternate start, end
    s, e = Q[0::2] + 1, Q[1::2] + 1  # run = flat positions s .. e - 1
    bR = np.searchsorted(s, seg)
    y = s // W - np.repeat(top[:-1], np.diff(bR))  # rows and columns within the box
    c0 = s % W - 1
    length = e - s
    c1 = c0 + length - 1

    def s2(t):  # sum of x * x for x = 0 .. t
        return t * (t + 1) * (2 * t + 1) // 6

    sx_run = (c0 + c1) * length // 2
    moments = _segment_sums(np.stack([length, y * length, sx_run, y * y * length, s2(c1) - s2(c0 - 1),
                                      y * sx_run]), bR)
    Np = moments[0]
    ld = float(np.hypot(dy / 2, dx / 2))
    diag = n_odd + 2 * n_saddle  # diagonal lines
    perimeter = ld * diag + dx * (V - diag / 2) + dy * (H - diag / 2)
    # the mesh's signed area is the area it encloses: 1/4 of each square per inside corner, less
    # 1/8 per one-corner square, more 1/8 per three-corner one, less 1/4 per saddle
    surface = (Np + n3_minus_n1 / 8 - n_saddle / 4) * dy * dx

    # diameter: the farthest pair of vertices are vertices of their convex hull, which are among
    # the leftmost and rightmost vertex at each height (a row of P: y + 1/2, of Q: y)
    ends = []
    for pos, half in ((P, 1), (Q, 0)):
        row = pos // W
        later = np.flatnonzero(row[1:] != row[:-1]) + 1  # the first pair of each row but the first row's
        first, last = np.concatenate(([0], later)), np.concatenate((later - 1, [len(pos) - 1]))
        r = row[first]
        col0 = r * W - (0.0 if half else 0.5)  # column = position - col0
        ends.append((2 * r + half, pos[first] - col0, pos[last] - col0))
    key = np.concatenate([ends[0][0], ends[1][0]])
    order = np.argsort(key, kind="stable")
    key = key[order]
    left = np.concatenate([ends[0][1], ends[1][1]])[order] * dx
    right = np.concatenate([ends[0][2], ends[1][2]])[order] * dx
    img = np.searchsorted(top - 1, key // 2, side="right") - 1  # the rows of image k: top[k] - 1 .. top[k + 1] - 2
    yv = (key / 2 - top[img]) * dy
    # both sides at once, the right sides mirrored into left sides (groups n .. 2n - 1); a single
    # vertex at its height is in both and is no hull vertex only when dropped from both
    y2 = np.concatenate([yv, yv])
    keep = _left_hulls(y2, np.concatenate([left, -right]), np.concatenate([img, img + n]))
    m = len(yv)
    twice = np.zeros(m, dtype=bool)  # single vertices left in both: keep one copy
    twice[keep[keep < m]] = True
    twice &= left == right
    keep = keep[(keep < m) | ~twice[keep - m]]
    pimg = np.concatenate([img, img])[keep]
    order = np.argsort(pimg, kind="stable")
    diameter = _max_distances(pimg[order], y2[keep][order], np.concatenate([left, right])[keep][order], n)

    # second moments of the pixel centres from exact integer sums (Python ints: no overflow)
    cov = []
    for n_, sy, sx, syy, sxx, sxy in zip(*moments.tolist()):
        n2 = n_ * n_
        cov.append(((n_ * syy - sy * sy) / n2 * dy * dy, (n_ * sxx - sx * sx) / n2 * dx * dx,
                    (n_ * sxy - sx * sy) / n2 * dy * dx))
    cyy, cxx, cxy = np.array(cov).T
    half, root = (cyy + cxx) / 2, np.hypot((cyy - cxx) / 2, cxy)
    major, minor = half + root, np.maximum(half - root, 0.0)  # rounding can leave a zero eigenvalue at -1e-17
    sphericity = 2 * np.sqrt(np.pi * surface) / perimeter
    with np.errstate(divide="ignore", invalid="ignore"):
        elongation = np.where(major > 0, np.sqrt(minor / major), 1.0)
    return np.stack([surface, Np * dy * dx, perimeter, perimeter / surface, sphericity, diameter,
                     4 * np.sqrt(major), 4 * np.sqrt(minor), elongation, 1 / sphericity], axis=1)


def _chunk_size(images) -> int:
    """Images per chunk: at most 64, their pixels at most :data:`_CANVAS` (the masks' boxes, the
    chunk's canvas and its temporaries stay bounded)."""
    return max(1, min(64, _CANVAS // max(img.shape[0] * img.shape[1] for img in images)))


def _check(spacing=(1.0, 1.0), features="all") -> dict:
    """The family's parameters, validated, as the arguments of :func:`_shape_chunk`."""
    dy, dx = check_spacing(spacing)
    return {"dy": dy, "dx": dx, "features": _check_names(features)}


def _shape_chunk(images, masks, *, dy, dx, features, first=0) -> np.ndarray:
    columns = [SHAPE2D_ALL.index(f) for f in features]
    boxes = []
    for img, m in zip(images, masks):
        if m is None:
            boxes.append(np.ones(img.shape[:2], dtype=bool))
        else:
            r0, r1, c0, c1 = _box(m)
            boxes.append(m[r0:r1, c0:c1])
    parts = [_canvas_features(boxes[g], dy, dx) for g in _groups([b.shape for b in boxes])]
    return np.concatenate(parts)[:, columns]


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
