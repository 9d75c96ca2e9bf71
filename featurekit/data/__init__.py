"""Datasets: labelled images with masks, groups and regions of interest.

Loaders (all lazy for file-based data; pixels are decoded on access):

* :func:`load_folder` -- one subfolder per class, masks beside images (BUSI);
* :func:`load_csv` -- a CSV manifest ``path,label[,mask][,group][,split]``;
* :func:`load_npz` -- MedMNIST-style ``.npz`` (in memory);
* :func:`load_mias` -- (mini-)MIAS ``Info.txt`` + images, circle annotations;
* :func:`make_phantom` / :func:`write_phantom` -- the synthetic demo set;
* :func:`load_dataset` -- detects the format and applies the common options.

:func:`group_near_duplicates` puts near-duplicate images in one group so grouped
cross-validation never splits them (BUSI has about 200 such pairs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import lazy_loader

from featurekit.data.dataset import SPLITS, ClassSpec, Dataset, Sample
from featurekit.data.duplicates import group_near_duplicates, near_duplicate_groups
from featurekit.data.folder import load_folder
from featurekit.data.manifest import load_csv
from featurekit.data.mias import load_mias, parse_info
from featurekit.data.npz import load_npz
from featurekit.data.phantom import make_phantom, write_phantom
from featurekit.data.roi import ROI_MODES
from featurekit.data.slices import SlicePolicy, read_planes
from featurekit.data.sources import ArrayImages, ArrayMasks, CircleMasks, FileImages, FileMasks
from featurekit.data.window import Window
from featurekit.errors import DataError

__all__ = [
    "Dataset",
    "Sample",
    "SPLITS",
    "ROI_MODES",
    "FORMATS",
    "detect_format",
    "load_dataset",
    "load_folder",
    "load_csv",
    "load_npz",
    "load_mias",
    "parse_info",
    "make_phantom",
    "write_phantom",
    "group_near_duplicates",
    "near_duplicate_groups",
    "FileImages",
    "ArrayImages",
    "FileMasks",
    "ArrayMasks",
    "CircleMasks",
    "Window",
    "SlicePolicy",
    "read_planes",
]


# scikit-learn is imported only by who uses the transformer
__getattr__, _, _lazy_names = lazy_loader.attach(__name__, submod_attrs={
    "images_of": ["ImagesOf"],
})
__all__ += _lazy_names

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "folder": load_folder, "csv": load_csv, "npz": load_npz, "mias": load_mias,
}

#: Formats :func:`load_dataset` accepts besides ``'auto'``.
FORMATS = tuple(_LOADERS)


def detect_format(path) -> str:
    """``'mias'`` (folder with ``Info.txt``), ``'folder'``, ``'csv'`` or ``'npz'``."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: dataset path not found")
    if p.is_dir():
        return "mias" if (p / "Info.txt").is_file() else "folder"
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".npz":
        return "npz"
    raise DataError(f"{p}: cannot tell the dataset format (expected a folder, a .csv or a .npz file)")


def load_dataset(
    path,
    format: str = "auto",
    classes: Optional[ClassSpec] = None,
    positive: Optional[str] = None,
    roi: str = "none",
    roi_margin: float = 0.1,
    window=None,
    slices=None,
    **kw,
) -> Dataset:
    """Load a dataset of any supported format.

    Parameters
    ----------
    path : path
        Folder (class folders, or MIAS when it holds ``Info.txt``), ``.csv``
        manifest or ``.npz`` file.
    format : {'auto', 'folder', 'csv', 'npz', 'mias'}
        ``'auto'`` detects it with :func:`detect_format`.
    classes, positive, roi, roi_margin
        Class selection / merge, positive class and region of interest, see
        :meth:`Dataset.select_classes` and :class:`Dataset`.
    window : str or Window, optional
        How DICOM and NIfTI values map to [0, 1]: ``auto`` (default), ``file``
        / ``mammo``, ``range``, ``minmax``, a preset or ``"C,W"``
        (:mod:`featurekit.data.window`).
    slices : str or SlicePolicy, optional
        Which planes of volumes, DICOM series and multi-frame files become
        samples: ``index:K``, ``middle``, ``max-mask``, ``all-masked``, ``all``
        (:mod:`featurekit.data.slices`); required when the data hold such stacks.
    **kw
        Loader-specific options (``split`` for npz, ``scale`` and ``unit`` for
        MIAS, ``name``...).

    Raises
    ------
    DataError
        Missing path, unknown format, or any loader error.
    """
    if format == "auto":
        format = detect_format(path)
    elif format not in _LOADERS:
        raise DataError(f"{path}: unknown dataset format {format!r}; expected 'auto' or one of {FORMATS}")
    elif not Path(path).exists():
        raise DataError(f"{path}: dataset path not found")
    ds = _LOADERS[format](path, classes=classes, positive=positive, roi=roi, roi_margin=roi_margin, **kw)
    return read_planes(ds, window, slices)
