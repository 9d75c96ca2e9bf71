"""CSV manifests: one row per image, paths relative to the CSV's folder.

Format::

    path,label,mask,group,split
    images/a.png,benign,masks/a.png,patient01,train
    images/b.png,malignant,masks/b1.png;masks/b2.png,patient02,test

``path`` and ``label`` are required; ``mask`` (several paths separated by
``;``, united), ``group`` (patient id), ``split`` (``train``/``val``/``test``)
and ``id`` are optional; other columns are ignored.

Rules:

* Paths are relative to the CSV's folder; absolute paths are kept. A path that
  resolves *outside* that folder (``../other/a.png``, ``/data/a.png``) is
  allowed -- manifests often point into a shared image store -- and all such
  paths are counted in one warning with an example, so a stray ``..`` is seen.
* One image file listed in two rows under two spellings (``a.png`` and
  ``./a.png``, or through a symlink; the file is identified by device and
  inode) with the same masks is one sample listed twice: an error naming both
  rows (with different labels the labels contradict; with the same label the
  copy would sit in training and test folds at once). The same image with
  *different* masks is two regions of interest, which is allowed.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import Optional, Sequence

from featurekit.data.dataset import SPLITS, ClassSpec, Dataset, apply_options
from featurekit.data.folder import natural_key
from featurekit.data.sources import FileImages, FileMasks
from featurekit.errors import DataError

__all__ = ["load_csv", "REQUIRED_COLUMNS", "OPTIONAL_COLUMNS"]

REQUIRED_COLUMNS = ("path", "label")
OPTIONAL_COLUMNS = ("mask", "group", "split", "id")


class _Row:
    """Error helper: every message names the CSV, the data row and its line."""

    def __init__(self, csv_path: Path, number: int, line: int):
        self.csv_path, self.number, self.line = csv_path, number, line

    def error(self, problem: str) -> DataError:
        return DataError(f"{self.csv_path}, row {self.number} (line {self.line}): {problem}")


def _read_rows(path: Path):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise DataError(f"{path}, header row (line 1): missing column(s) {missing}; "
                                f"found {header}")
            reader.fieldnames = header
            rows = []
            for number, row in enumerate(reader, start=1):
                if None in row:
                    raise _Row(path, number, reader.line_num).error(
                        f"{len(header) + len(row[None])} fields for {len(header)} columns")
                rows.append((_Row(path, number, reader.line_num),
                             {k: (v or "").strip() for k, v in row.items()}))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
    if not rows:
        raise DataError(f"{path}: manifest has a header but no rows")
    return header, rows


def _existing_file(base: Path, rel: str, row: _Row, what: str) -> Path:
    if not rel:
        raise row.error(f"empty {what} path")
    p = base / rel
    if not p.is_file():
        raise row.error(f"{what} file {rel!r} not found (looked for {p})")
    return p


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def _outside(base: Path, path: Path) -> bool:
    root = os.path.realpath(base)
    return os.path.commonpath([root, os.path.realpath(path)]) != root


def load_csv(
    path,
    classes: Optional[ClassSpec] = None,
    positive: Optional[str] = None,
    roi: str = "none",
    roi_margin: float = 0.1,
    *,
    class_names: Optional[Sequence[str]] = None,
    name: Optional[str] = None,
) -> Dataset:
    """Load a dataset from a CSV manifest.

    Parameters
    ----------
    path : path
        The CSV file (UTF-8, header row). Image and mask paths are relative to
        its folder (absolute paths are kept).
    classes, positive, roi, roi_margin
        As in :func:`featurekit.data.load_folder`.
    class_names : sequence of str, optional
        Label order; default: the distinct ``label`` values in natural sort
        order. With ``class_names`` given, an unknown label is an error.
    name : str, optional
        Dataset name (default: the CSV's stem).

    Returns
    -------
    Dataset
        Ids from the ``id`` column, else the ``path`` value as written. An
        empty ``label`` cell means unlabelled (label -1). ``groups`` and
        ``split`` are filled when their columns exist. Masks exist when the
        ``mask`` column exists; a row with an empty ``mask`` cell has none.

    Raises
    ------
    DataError
        Missing file or required column, an image or mask file that does not
        exist, an empty ``group`` cell, an unknown split or label, duplicate
        ids, one image file (with the same masks) listed in two rows -- naming
        the CSV, the row number(s) and the problem.

    Warns
    -----
    UserWarning
        Once, counting the paths that resolve outside the CSV's folder.
    """
    csv_path = Path(path)
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: manifest not found")
    header, rows = _read_rows(csv_path)
    base = csv_path.parent
    has = {c: c in header for c in OPTIONAL_COLUMNS}

    labels_raw = [r["label"] for _, r in rows]
    names = list(class_names) if class_names is not None else sorted(
        {v for v in labels_raw if v}, key=natural_key)
    index = {c: k for k, c in enumerate(names)}
    ids, labels, images, masks, groups, splits = [], [], [], [], [], []
    first_row: dict[str, int] = {}
    samples: dict[tuple, tuple[_Row, dict]] = {}  # (image file, mask files) -> first row listing it
    outside: list[tuple[_Row, str, Path]] = []
    for row, r in rows:
        images.append(_existing_file(base, r["path"], row, "image"))
        label = r["label"]
        if label and label not in index:
            raise row.error(f"label {label!r} is not one of the classes {names}")
        labels.append(index[label] if label else -1)
        mask_rels = [m.strip() for m in r["mask"].split(";") if m.strip()] if has["mask"] else []
        row_masks = [_existing_file(base, m, row, "mask") for m in mask_rels]
        if has["mask"]:
            masks.append(row_masks)
        outside += [(row, rel, p) for rel, p in zip([r["path"], *mask_rels], [images[-1], *row_masks])
                    if _outside(base, p)]
        if has["group"]:
            if not r["group"]:
                raise row.error("empty group (patient id)")
            groups.append(r["group"])
        if has["split"]:
            if r["split"] not in SPLITS:
                raise row.error(f"split {r['split']!r} is not one of {SPLITS}")
            splits.append(r["split"])
        sid = r["id"] if has["id"] and r["id"] else r["path"]
        if sid in first_row:
            raise row.error(f"duplicate id {sid!r} (first in row {first_row[sid]})")
        first_row[sid] = row.number
        ids.append(sid)
        key = (_identity(images[-1]), frozenset(_identity(m) for m in row_masks))
        if key in samples:
            other, first = samples[key]
            where = (f"{r['path']!r} is the same image file{' with the same masks' if row_masks else ''} as "
                     f"{first['path']!r} in row {other.number} (line {other.line})")
            if first["label"] != label:
                raise row.error(f"{where}, labelled {first['label']!r} there and {label!r} here: one image "
                                "cannot have two labels; remove the wrong row")
            raise row.error(f"{where}, listed again with the same label: the copy would sit in training and "
                            "test folds at once; remove one of the two rows")
        samples[key] = (row, r)
    if outside:
        row, rel, p = outside[0]
        warnings.warn(f"{csv_path}: {len(outside)} path(s) resolve outside the manifest's folder {base}, e.g. "
                      f"row {row.number} {rel!r} -> {os.path.realpath(p)}; they are used as listed",
                      UserWarning, stacklevel=2)
    ds = Dataset(
        ids, labels, names, FileImages(images), FileMasks(masks) if has["mask"] else None,
        groups=groups if has["group"] else None, split=splits if has["split"] else None,
        name=name or csv_path.stem, source=str(csv_path), group_kind="the manifest's group column",
    )
    return apply_options(ds, classes, positive, roi, roi_margin)
