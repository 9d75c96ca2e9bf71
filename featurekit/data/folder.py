"""Class-folder datasets: ``root/<class>/<image>`` with masks beside the images.

Layout (the BUSI layout [1]_)::

    root/
      benign/
        benign (1).png
        benign (1)_mask.png
        benign (100).png
        benign (100)_mask.png
        benign (100)_mask_1.png      # several lesions: the mask is the union
      malignant/ ...
      normal/ ...

References
----------
.. [1] Al-Dhabyani W, Gomaa M, Khaled H, Fahmy A. Dataset of breast ultrasound
   images. Data in Brief 28 (2020) 104863. doi:10.1016/j.dib.2019.104863
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Mapping, Optional

from featurekit.data.dataset import ClassSpec, Dataset, apply_options
from featurekit.data.dicom import is_dicom_series
from featurekit.data.sources import FileImages, FileMasks
from featurekit.errors import DataError
from featurekit.imageio import DICOM_EXTENSIONS, IMAGE_EXTENSIONS, image_stem, image_suffix

__all__ = ["load_folder", "natural_key", "MASK_PATTERN"]

#: A file stem ``<stem>_mask`` or ``<stem>_mask_<k>`` is a mask of image ``<stem>`` (use ``fullmatch``:
#: any character, a newline included, may be part of a file name).
MASK_PATTERN = re.compile(r"(?P<stem>.+)_mask(?:_(?P<k>\d+))?", re.DOTALL)


def text_name(name: str) -> str:
    """A file or folder name as id text: bytes that are not UTF-8 (which Python keeps as lone
    surrogates) become ``\\xNN``, so ids and class names can be written anywhere (HDF5, CSV, JSON)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def natural_key(name: str):
    """Sort key ordering ``a (2)`` before ``a (10)`` (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", name)
    return [int(p) if k % 2 else p.lower() for k, p in enumerate(parts)], name


def _class_folders(root: Path, classes: Optional[ClassSpec]) -> list[str]:
    present = sorted((p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=natural_key)
    if not present:
        raise DataError(f"{root}: no class subfolders (expected one folder of images per class)")
    if classes is None:
        return present
    if isinstance(classes, str):
        classes = [classes]
    wanted: Iterable[str]
    if isinstance(classes, Mapping):
        wanted = [o for olds in classes.values() for o in ([olds] if isinstance(olds, str) else olds)]
    else:
        wanted = list(classes)
    missing = [c for c in wanted if c not in present]
    if missing:
        raise DataError(f"{root}: no class folder for {missing}; folders are {present}")
    return [c for c in present if c in set(wanted)]


def _scan_class(folder: Path, cls: str, extensions: frozenset):
    """Images ``[(stem, path)]``, masks ``{stem: [path]}`` and skipped names of one class folder."""
    images: dict[str, Path] = {}
    masks: dict[str, list[tuple[int, Path]]] = {}
    skipped: list[str] = []
    for p in sorted(folder.iterdir(), key=lambda q: natural_key(q.name)):
        # a DICOM series folder is one image (a volume), named by the folder
        series = p.is_dir() and bool(extensions & DICOM_EXTENSIONS) and is_dicom_series(p)
        if p.name.startswith(".") or not (series or (p.is_file() and image_suffix(p) in extensions)):
            skipped.append(f"{cls}/{p.name}" + ("/" if p.is_dir() else ""))
            continue
        stem = p.name if series else image_stem(p)
        m = MASK_PATTERN.fullmatch(stem)
        if m:
            masks.setdefault(m.group("stem"), []).append((int(m.group("k") or 0), p))
        elif stem in images:
            raise DataError(
                f"{folder}: two images share the stem {stem!r} ({images[stem].name}, {p.name}); "
                "ids would collide"
            )
        else:
            images[stem] = p
    if not images:
        raise DataError(f"{folder}: no images in class folder (extensions {sorted(extensions)})")
    orphans = sorted((p.name for s, ps in masks.items() if s not in images for _, p in ps), key=natural_key)
    if orphans:
        raise DataError(f"{folder}: mask file(s) without an image: {orphans[:10]}")
    paired = {s: [p for _, p in sorted(ps)] for s, ps in masks.items()}
    ordered = sorted(images.items(), key=lambda kv: natural_key(kv[0]))
    return [(stem, path, paired.get(stem, [])) for stem, path in ordered], skipped


def _flat(root: Path, extensions: frozenset) -> bool:
    """A folder of images with no subfolder: one unlabelled set (e.g. new images to predict)."""
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    return (not any(p.is_dir() for p in entries)
            and any(p.is_file() and image_suffix(p) in extensions for p in entries))


def _unlabelled(root: Path, extensions: frozenset, name: Optional[str], roi: str, roi_margin: float) -> Dataset:
    entries, skipped = _scan_class(root, "", extensions)
    ds = Dataset(
        [text_name(stem) for stem, _, _ in entries], [-1] * len(entries), [],
        FileImages([path for _, path, _ in entries]),
        FileMasks([masks for _, _, masks in entries]) if any(masks for _, _, masks in entries) else None,
        name=name or root.resolve().name, source=str(root), skipped=[s.lstrip("/") for s in skipped],
    )
    return apply_options(ds, None, None, roi, roi_margin)


def load_folder(
    root,
    classes: Optional[ClassSpec] = None,
    positive: Optional[str] = None,
    roi: str = "none",
    roi_margin: float = 0.1,
    *,
    name: Optional[str] = None,
    extensions: Optional[Iterable[str]] = None,
) -> Dataset:
    """Load a class-folder dataset (e.g. BUSI [1]_) without decoding any image.

    Parameters
    ----------
    root : path
        Folder with one subfolder per class; class names are the subfolder
        names in natural sort order (hidden folders ignored).
    classes : sequence of str or mapping, optional
        Classes to keep (only their folders are scanned), in label order, or a
        ``{new: [old, ...]}`` merge; see :meth:`Dataset.select_classes`.
    positive : str, optional
        Positive class.
    roi, roi_margin
        Region of interest, see :class:`Dataset`.
    name : str, optional
        Dataset name (default: the folder name).
    extensions : iterable of str, optional
        Image extensions (default :data:`featurekit.imageio.IMAGE_EXTENSIONS`).

    Returns
    -------
    Dataset
        Ids ``<class>/<file stem>``, images sorted naturally within each class.
        A folder of images with no subfolder (and no ``classes``) is one
        unlabelled set: ids = file stems, every label -1 (new images for
        ``featurekit predict``, or features to extract).
        Masks are paired by stem: ``<stem>_mask.<ext>`` and
        ``<stem>_mask_<k>.<ext>`` belong to ``<stem>.<ext>`` and are never read
        as images; several masks are united. Images without a mask file have
        no mask (``ds.mask(i) is None``); when no image has one the dataset
        has no masks. Files that are not images (by extension), hidden files
        and nested folders are listed in ``ds.skipped`` as ``<class>/<name>``.
        A file with an image extension that does not decode raises
        :class:`DataError` when it is read.

    Raises
    ------
    DataError
        Missing root, no class folders, a class folder with no images, a mask
        with no image, two images with the same stem, unknown classes.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise DataError(f"{root_path}: dataset folder not found" if not root_path.exists()
                        else f"{root_path}: not a folder")
    exts = frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in (extensions or IMAGE_EXTENSIONS))
    if classes is None and _flat(root_path, exts):
        return _unlabelled(root_path, exts, name, roi, roi_margin)
    folders = _class_folders(root_path, classes)
    skipped = [p.name for p in sorted(root_path.iterdir()) if not p.is_dir()]
    ids, labels, image_paths, mask_paths = [], [], [], []
    for k, cls in enumerate(folders):
        entries, skipped_here = _scan_class(root_path / cls, cls, exts)
        skipped += skipped_here
        for stem, path, masks in entries:
            ids.append(f"{text_name(cls)}/{text_name(stem)}")
            labels.append(k)
            image_paths.append(path)
            mask_paths.append(masks)
    ds = Dataset(
        ids, labels, [text_name(f) for f in folders], FileImages(image_paths),
        FileMasks(mask_paths) if any(mask_paths) else None,
        name=name or root_path.resolve().name, source=str(root_path), skipped=skipped,
    )
    return apply_options(ds, classes, positive, roi, roi_margin)
