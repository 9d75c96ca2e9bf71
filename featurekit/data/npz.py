"""In-memory datasets from ``.npz`` files in the MedMNIST layout.

Keys: ``train_images``, ``train_labels``, ``val_images``, ``val_labels``,
``test_images``, ``test_labels`` (any subset of the three splits), optional
``<split>_masks`` ``(N, H, W)`` and an optional ``class_names`` string array.
Images are ``(N, H, W)`` or ``(N, H, W, 3)`` ``uint8`` (``uint16`` accepted);
labels ``(N,)`` or ``(N, 1)`` integers.

References
----------
.. [1] Yang J, Shi R, Wei D, et al. MedMNIST v2 -- A large-scale lightweight
   benchmark for 2D and 3D biomedical image classification. Scientific Data
   10 (2023) 41. doi:10.1038/s41597-022-01721-8
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from featurekit.data.dataset import SPLITS, ClassSpec, Dataset, apply_options
from featurekit.data.sources import ArrayImages, ArrayMasks
from featurekit.errors import DataError

__all__ = ["load_npz"]


def _open(path: Path):
    """The archive, read with ``allow_pickle=False`` (never anything else: a pickle can run code)."""
    if not path.is_file():
        raise DataError(f"{path}: npz file not found")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            head = fh.read(6)
        what = "a single .npy array" if head == b"\x93NUMPY" else "not a zip archive"
        raise DataError(f"{path}: not a .npz file ({what}); a .npz is a zip archive of .npy arrays, as "
                        "written by numpy.savez / savez_compressed")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None


def _get(npz, path: Path, key: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as exc:
        if "pickle" in str(exc):  # an object array: numpy's hint (allow_pickle=True) is the wrong advice
            raise DataError(f"{path}: array {key!r} holds Python objects, which featurekit never unpickles "
                            "(unpickling can run code); store images, masks and labels as numeric arrays "
                            "and class names as a string array") from None
        raise DataError(f"{path}: cannot read array {key!r} ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: cannot read array {key!r} ({exc})") from None


def _split_arrays(npz, path: Path, s: str):
    images, labels = _get(npz, path, f"{s}_images"), _get(npz, path, f"{s}_labels")
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise DataError(f"{path}: {s}_images must be (N, H, W) or (N, H, W, 3), got {images.shape}")
    if images.dtype not in (np.uint8, np.uint16):
        raise DataError(f"{path}: {s}_images must be uint8 (or uint16), got {images.dtype}")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"{path}: {s}_labels must be (N,) or (N, 1) (multi-label is not supported), "
                        f"got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{path}: {s}_labels must be integers, got {labels.dtype}")
    if len(labels) != len(images):
        raise DataError(f"{path}: {len(images)} {s}_images but {len(labels)} {s}_labels")
    masks = None
    if f"{s}_masks" in npz.files:
        masks = _get(npz, path, f"{s}_masks")
        if masks.shape != images.shape[:3]:
            raise DataError(f"{path}: {s}_masks shape {masks.shape} does not match "
                            f"{s}_images {images.shape[:3]}")
    return images, labels.astype(np.int64), masks


def load_npz(
    path,
    split: Union[None, str, Sequence[str]] = None,
    classes: Optional[ClassSpec] = None,
    positive: Optional[str] = None,
    roi: str = "none",
    roi_margin: float = 0.1,
    *,
    class_names: Optional[Sequence[str]] = None,
    name: Optional[str] = None,
) -> Dataset:
    """Load a MedMNIST-style ``.npz`` into memory (e.g. MedMNIST [1]_ BreastMNIST).

    Parameters
    ----------
    path : path
        The ``.npz`` file.
    split : {'train', 'val', 'test'} or a sequence of them, optional
        Splits to load; ``None`` loads every split present (``ds.split`` is
        always filled).
    classes, positive, roi, roi_margin
        As in :func:`featurekit.data.load_folder`.
    class_names : sequence of str, optional
        Overrides the file's ``class_names`` array; default ``'0', '1', ...``
        up to the largest label.
    name : str, optional
        Dataset name (default: the file stem).

    Returns
    -------
    Dataset
        Ids ``<split>/<row>`` zero-padded to at least 4 digits
        (``train/0000``), in split order train, val, test.

    Raises
    ------
    DataError
        Unreadable file, no split, a requested split missing, bad shapes or
        dtypes, labels outside the class names.
    """
    npz_path = Path(path)
    npz = _open(npz_path)
    with npz:
        present = [s for s in SPLITS if f"{s}_images" in npz.files or f"{s}_labels" in npz.files]
        if split is None:
            wanted = present
        else:
            wanted = [split] if isinstance(split, str) else list(split)
            bad = [s for s in wanted if s not in SPLITS]
            if bad:
                raise DataError(f"{npz_path}: unknown split(s) {bad}; expected {SPLITS}")
            missing = [s for s in wanted if s not in present]
            if missing:
                raise DataError(f"{npz_path}: split(s) {missing} not in file (has {present})")
        if not wanted:
            raise DataError(f"{npz_path}: no <split>_images arrays (keys: {sorted(npz.files)})")
        for s in wanted:
            for key in (f"{s}_images", f"{s}_labels"):
                if key not in npz.files:
                    raise DataError(f"{npz_path}: missing array {key!r}")
        parts = [_split_arrays(npz, npz_path, s) for s in wanted]
        file_names = _get(npz, npz_path, "class_names") if "class_names" in npz.files else None

    labels = np.concatenate([lab for _, lab, _ in parts])
    if class_names is None:
        if file_names is not None:
            class_names = [str(c) for c in np.asarray(file_names).reshape(-1)]
        else:
            class_names = [str(k) for k in range(int(labels.max(initial=-1)) + 1)]
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise DataError(f"{npz_path}: labels {labels.min()}..{labels.max()} outside the "
                        f"{len(class_names)} class names {list(class_names)}")
    ids, splits = [], []
    for s, (images, _, _) in zip(wanted, parts):
        width = max(4, len(str(len(images) - 1)))
        ids += [f"{s}/{r:0{width}d}" for r in range(len(images))]
        splits += [s] * len(images)
    names = [f"{npz_path.name}:{s}_images" for s in wanted]
    has_masks = [m is not None for _, _, m in parts]
    if any(has_masks) and not all(has_masks):
        raise DataError(f"{npz_path}: masks exist for some splits only "
                        f"({[s for s, h in zip(wanted, has_masks) if h]})")
    masks = ArrayMasks([m for _, _, m in parts], names=[f"{npz_path.name}:{s}_masks" for s in wanted]) \
        if all(has_masks) else None
    ds = Dataset(
        ids, labels, class_names, ArrayImages([im for im, _, _ in parts], names=names), masks,
        split=splits, name=name or npz_path.stem, source=str(npz_path),
    )
    return apply_options(ds, classes, positive, roi, roi_margin)
