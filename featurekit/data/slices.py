"""Which planes of a stack become samples: the :class:`SlicePolicy`, and :func:`read_planes`.

Policies (``--slices``), for every stack of a dataset (NIfTI volume, DICOM
series folder, multi-frame DICOM file; 2-D images are unaffected):

================  ==============================================================
``index:K``       plane ``K`` (a frame choice for a multi-frame file)
``middle``        plane ``n // 2``
``max-mask``      the plane where the mask volume is largest (the first such)
``all-masked``    every plane with a nonzero mask, each its own sample
``all``           every plane, each its own sample (e.g. the frames of a file)
================  ==============================================================

The one-plane policies keep the sample's id; the many-plane ones give ids
``<id>#<plane>``. Planes of one stack share a group -- the dataset's group
(patient) when it has one, else the stack's id -- so grouped cross-validation
never puts planes of one volume on both sides of a split. A stack without a
policy is an error that names it, as is a mask policy without a mask volume,
or an empty mask (nothing would be read from that volume).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from featurekit.data.dataset import Dataset
from featurekit.data.sources import FileImages, FileMasks
from featurekit.data.volumes import is_nifti, plane_areas, read_plane_mask, stack_size
from featurekit.data.window import Window
from featurekit.errors import DataError
from featurekit.imageio import DICOM_EXTENSIONS
from featurekit.specs import SLICE_POLICIES, SlicePolicy

__all__ = ["SlicePolicy", "SLICE_POLICIES", "read_planes"]

def _mask_areas(masks, i: int) -> Optional[np.ndarray]:
    paths = masks.paths[i] if isinstance(masks, FileMasks) else ()
    if not paths:
        return None
    if len(paths) == 1:
        return plane_areas(paths[0])
    sizes = {stack_size(p) for p in paths}
    n = sizes.pop() if len(sizes) == 1 else None
    if n is None:
        raise DataError(f"{'; '.join(paths)}: the mask volumes of one sample must have the same number of planes")
    return np.array([np.count_nonzero(np.logical_or.reduce([read_plane_mask(p, k) for p in paths]))
                     for k in range(n)])


def read_planes(ds: Dataset, window=None, slices=None) -> Dataset:
    """``ds`` read with ``window`` and with its stacks cut into planes by ``slices``.

    Parameters
    ----------
    ds : Dataset
        A file-based dataset (its images a :class:`FileImages`).
    window : Window or str, optional
        How DICOM and volume intensities map to [0, 1] (:mod:`featurekit.data.window`).
    slices : SlicePolicy or str, optional
        Required when the dataset holds a stack.

    Raises
    ------
    DataError
        A window or policy for a dataset with no DICOM file or stack, a stack
        without a policy, or a policy the stack cannot follow (see the module docstring).
    """
    window = Window.parse(window)
    policy = SlicePolicy.parse(slices)
    images = ds._images
    if not isinstance(images, FileImages):
        if window.kind != "auto" or policy is not None:
            raise DataError(f"{ds.source or ds.name}: --window and --slices apply to DICOM and volume files, "
                            "and this dataset is in-memory arrays")
        return ds
    sizes = [stack_size(p) for p in images.paths]
    if all(n is None for n in sizes):
        if policy is not None:
            raise DataError(f"{ds.source or ds.name}: --slices {slices} given, and no image is a volume, series "
                            "or multi-frame file")
        if window.kind == "auto":
            return ds
        if not any(Path(p).suffix.lower() in DICOM_EXTENSIONS or is_nifti(p) for p in images.paths):
            raise DataError(f"{ds.source or ds.name}: --window {window.name} given, and no image is a DICOM or "
                            "NIfTI file (a window applies to those only)")
    rows: list[int] = []
    planes: list[int | None] = []
    ids: list[str] = []
    groups: list[str] = []
    for i, n in enumerate(sizes):
        if n is None:
            rows.append(i)
            planes.append(None)
            ids.append(ds._ids[i])
            groups.append(ds.groups[i] if ds.groups is not None else ds._ids[i])
            continue
        where = images.paths[i]
        if policy is None:
            raise DataError(f"{where}: a stack of {n} planes (volume, series or multi-frame file): choose planes "
                            f"with --slices ({', '.join(SLICE_POLICIES)})")
        areas = _mask_areas(ds._masks, i) if policy.kind in ("max-mask", "all-masked") else None
        for k in policy.planes(n, where, areas):
            rows.append(i)
            planes.append(k)
            ids.append(f"{ds._ids[i]}#{k}" if policy.many else ds._ids[i])
            groups.append(ds.groups[i] if ds.groups is not None else ds._ids[i])
    idx = np.asarray(rows, dtype=np.int64)
    fields = {**ds._fields(), **ds._taken(idx)}
    fields.update(ids=ids, images=FileImages([images.paths[j] for j in idx], planes, window))
    if isinstance(ds._masks, FileMasks):
        fields["masks"] = FileMasks([ds._masks.paths[j] for j in idx], planes)
    if any(n is not None for n in sizes) or ds.groups is not None:
        fields["groups"] = groups
        fields["group_kind"] = ds.group_kind if ds.groups is not None else "volume or multi-frame file"
    return Dataset(**fields)
