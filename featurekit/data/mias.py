"""The (mini-)MIAS mammogram database [1]_: ``Info.txt`` plus one image per film.

``Info.txt`` rows read ``REFNUM BG CLASS SEVERITY X Y RADIUS``:

* ``BG`` background tissue (F fatty, G fatty-glandular, D dense-glandular);
* ``CLASS`` CALC, CIRC, SPIC, MISC, ARCH, ASYM or NORM;
* ``SEVERITY`` B or M (absent for NORM);
* ``X Y RADIUS`` the abnormality's centre and enclosing radius in the
  *original 1024 x 1024 grid with the origin at the bottom-left corner*;
  absent for NORM rows and for widely distributed calcifications (some rows
  say ``*NOTE 3*`` instead).

A film may have several rows (several abnormalities). Films come in pairs
(``mdb001``/``mdb002``: left and right breast of one patient), so the patient
of film ``n`` is ``(n + 1) // 2``.

Coordinates are converted to image pixels (top-left origin, see
:mod:`featurekit.data.roi`) with ``cx = x * scale``,
``cy = (1024 - y) * scale``, ``r = radius * scale`` where ``scale`` is the
image size / 1024 (0.5 for the 512 x 512 mini-MIAS PNGs).

References
----------
.. [1] Suckling J, et al. The Mammographic Image Analysis Society Digital
   Mammogram Database. Excerpta Medica, International Congress Series 1069
   (1994) 375-378.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from featurekit.data.dataset import ClassSpec, Dataset, apply_options
from featurekit.data.sources import CircleMasks, FileImages
from featurekit.errors import DataError
from featurekit.imageio import IMAGE_EXTENSIONS, image_shape

__all__ = ["load_mias", "parse_info", "MiasRow", "ORIGINAL_SIZE"]

#: Side of the original MIAS films, the grid ``Info.txt`` coordinates refer to.
ORIGINAL_SIZE = 1024

_ROW = re.compile(r"^(mdb\d{3})\s")
_CLASSES = {"CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM", "NORM"}
_SEVERITY = {"B": "benign", "M": "malignant"}


@dataclass(frozen=True)
class MiasRow:
    """One ``Info.txt`` row; ``x, y, radius`` in the original bottom-left grid, or None."""

    refnum: str
    tissue: str
    abnormality: str
    severity: Optional[str]  # 'B', 'M' or None
    x: Optional[float] = None
    y: Optional[float] = None
    radius: Optional[float] = None
    line: int = 0

    def __post_init__(self) -> None:
        coords = (self.x, self.y, self.radius)
        if None in coords and coords != (None, None, None):
            raise DataError(f"MIAS row {self.refnum}: x, y and radius come together or not at all, got {coords}")
        if self.x is not None and self.severity is None:
            raise DataError(f"MIAS row {self.refnum}: a located abnormality has a severity (B or M)")

    @property
    def label(self) -> str:
        """The row's class: ``benign`` or ``malignant`` by its severity, ``normal`` without one."""
        return "normal" if self.severity is None else _SEVERITY[self.severity]

    @property
    def film(self) -> int:
        return int(self.refnum[3:])

    @property
    def patient(self) -> str:
        return f"patient{(self.film + 1) // 2:03d}"

    def circle(self, scale: float) -> Optional[tuple[float, float, float]]:
        """``(cx, cy, r)`` in image pixels (top-left origin) or None."""
        if self.x is None or self.y is None or self.radius is None:  # all or none (__post_init__)
            return None
        return (self.x * scale, (ORIGINAL_SIZE - self.y) * scale, self.radius * scale)


def _parse_line(tokens: list[str], info: Path, line: int) -> MiasRow:
    def bad(problem: str) -> DataError:
        return DataError(f"{info}, line {line}: {problem}: {' '.join(tokens)!r}")

    if len(tokens) < 3 or tokens[2] not in _CLASSES:
        raise bad("expected 'REFNUM BG CLASS [SEVERITY X Y RADIUS]'")
    refnum, tissue, abnormality = tokens[:3]
    rest = list(tokens[3:])
    if abnormality == "NORM":
        if rest:
            raise bad("a NORM row has no severity or coordinates")
        return MiasRow(refnum, tissue, abnormality, None, line=line)
    if not rest or rest[0] not in _SEVERITY:
        raise bad("an abnormal row needs severity B or M")
    severity, coords = rest[0], rest[1:]
    if not coords or coords[0].startswith("*"):  # no coordinates, or '*NOTE 3*'
        return MiasRow(refnum, tissue, abnormality, severity, line=line)
    try:
        x, y, r = (float(t) for t in coords)
    except ValueError:
        raise bad("expected three numbers X Y RADIUS") from None
    if not all(math.isfinite(v) for v in (x, y, r)):
        raise bad("X Y RADIUS must be finite numbers (not nan or inf)")
    if r <= 0:
        raise bad("radius must be positive")
    return MiasRow(refnum, tissue, abnormality, severity, x, y, r, line)


def parse_info(info) -> list[MiasRow]:
    """Parse ``Info.txt``: every ``mdbNNN`` row in file order (prose lines ignored)."""
    info = Path(info)
    if not info.is_file():
        raise DataError(f"{info}: MIAS Info.txt not found")
    rows = []
    with open(info, encoding="latin-1") as f:
        for line, text in enumerate(f, start=1):
            if _ROW.match(text.strip()):
                rows.append(_parse_line(text.split(), info, line))
    if not rows:
        raise DataError(f"{info}: no 'mdbNNN ...' rows found")
    return rows


def _image_files(root: Path) -> dict[str, Path]:
    folder = root / "images" if (root / "images").is_dir() else root
    return {p.stem: p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and p.stem.startswith("mdb")}


def _detect_scale(paths: list[Path]) -> float:
    first = image_shape(paths[0])
    if first[0] != first[1]:
        raise DataError(f"{paths[0]}: MIAS films are square, got {first[0]}x{first[1]}")
    for p in paths[1:]:
        if image_shape(p) != first:
            raise DataError(f"{p}: size {image_shape(p)} differs from {paths[0]} {first}; "
                            "all films must share one size")
    return first[1] / ORIGINAL_SIZE


def _film_label(rows: list[MiasRow]) -> str:
    severities = {r.severity for r in rows}
    return "malignant" if "M" in severities else "benign" if "B" in severities else "normal"


def load_mias(
    root,
    scale: Optional[float] = None,
    unit: str = "film",
    classes: Optional[ClassSpec] = None,
    positive: Optional[str] = None,
    roi: str = "none",
    roi_margin: float = 0.1,
    *,
    name: str = "mini-mias",
) -> Dataset:
    """Load (mini-)MIAS [1]_ from ``root/Info.txt`` and ``root/images/mdbNNN.*``.

    Parameters
    ----------
    root : path
        Folder holding ``Info.txt`` and an ``images/`` folder (or the images
        directly), one file ``mdbNNN.<ext>`` per film.
    scale : float, optional
        Image size / 1024; detected from the first image's header when None
        (every film must then have that size).
    unit : {'film', 'lesion'}
        ``'film'``: one sample per film (id ``mdb001``), labelled malignant if
        any row is M, else benign if any row is B, else normal; its circles
        are all rows with coordinates (films whose abnormality has no
        coordinates get an empty mask, so ``roi='mias'`` keeps the whole
        film). ``'lesion'``: one sample per abnormal row *with* coordinates
        (ids ``mdb005_1``, ``mdb005_2`` in file order), labelled by that row,
        with that row's circle only.
    classes, positive, roi, roi_margin
        As in :func:`featurekit.data.load_folder`; without ``positive`` the
        positive class is ``'malignant'`` when two classes are kept, one of them
        malignant, and none when three are (the multi-class task). Class names:
        ``benign, malignant, normal`` (film) or ``benign, malignant`` (lesion).

    Returns
    -------
    Dataset
        Circle masks (``ds.mask(i)``), ``groups`` = patient
        (``patient{(n + 1) // 2:03d}``), ``meta['tissue']`` (F/G/D) and
        ``meta['abnormality']`` (e.g. ``CIRC``, ``CALC+CIRC``, ``NORM``).
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise DataError(f"{root_path}: MIAS folder not found")
    if unit not in ("film", "lesion"):
        raise DataError(f"{root_path}: unit must be 'film' or 'lesion', got {unit!r}")
    rows = parse_info(root_path / "Info.txt")
    files = _image_files(root_path)
    films: dict[str, list[MiasRow]] = {}
    for r in rows:
        films.setdefault(r.refnum, []).append(r)
    missing = [f for f in films if f not in files]
    if missing:
        raise DataError(f"{root_path}: no image file for film(s) {missing[:10]} listed in Info.txt")
    skipped = sorted(p.name for s, p in files.items() if s not in films)
    if scale is None:
        scale = _detect_scale([files[f] for f in films])
    elif not scale > 0:
        raise DataError(f"{root_path}: scale must be positive, got {scale!r}")

    # (id, label, path, circles, group, tissue, abnormality)
    samples: list[tuple[str, str, Path, list[tuple[float, float, float]], str, str, str]] = []
    for film, frows in films.items():
        first = frows[0]
        if unit == "film":
            film_circles = [c for c in (r.circle(scale) for r in frows) if c is not None]
            film_kinds = "+".join(sorted({r.abnormality for r in frows}))
            samples.append((film, _film_label(frows), files[film], film_circles, first.patient,
                            first.tissue, film_kinds))
        else:
            located = [(r, c) for r in frows if (c := r.circle(scale)) is not None]
            for k, (r, c) in enumerate(located, start=1):
                samples.append((f"{film}_{k}", r.label, files[film], [c], r.patient, r.tissue, r.abnormality))
    class_names = ["benign", "malignant", "normal"] if unit == "film" else ["benign", "malignant"]
    ids, labels, paths, circles, groups, tissue, kinds = zip(*samples)
    ds = Dataset(
        ids, [class_names.index(lab) for lab in labels], class_names, FileImages(paths),
        CircleMasks(circles), groups=groups, group_kind="patient", name=name, source=str(root_path),
        skipped=skipped, meta={"tissue": tissue, "abnormality": kinds},
    )
    ds = apply_options(ds, classes, positive, roi, roi_margin)
    # malignant is the default positive class of a two-class selection only: three classes without a
    # positive one named are the multi-class task (normal / benign / malignant)
    if ds.positive is None and len(ds.class_names) == 2 and "malignant" in ds.class_names:
        ds = ds.with_positive("malignant")
    return ds
