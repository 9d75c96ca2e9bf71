"""Volumes (NIfTI, DICOM series, multi-frame DICOM) read as 2-D planes, and their stack size.

A *stack* is a file or folder holding several 2-D planes: a NIfTI volume
(``.nii``, ``.nii.gz``; slices along its third voxel axis, as stored -- no
reorientation, so an image and its mask volume stay aligned), a DICOM series
folder (one file per slice, see :func:`featurekit.data.dicom.series_files`) or
a multi-frame DICOM file. :func:`stack_size` tells a stack from a 2-D file,
:func:`read_plane` / :func:`read_plane_mask` read one plane, with the
:class:`~featurekit.data.window.Window` rules of :mod:`featurekit.data.window`.
Which planes become samples is the slice policy (:mod:`featurekit.data.slices`).

NIfTI intensities: the scaled values (``scl_slope`` / ``scl_inter`` applied by
nibabel). Its "file" window is the header's display range ``cal_min..cal_max``;
``range`` is the range of an unscaled unsigned integer dtype (``uint8``,
``uint16``); ``auto`` takes the first of these that exists, else it is an error
asking for a window (MRI signal and Hounsfield units have no implied scale).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Optional

import numpy as np

from featurekit.data.dicom import dicom_frames, is_dicom_series, read_dicom, read_dicom_mask, series_files
from featurekit.data.window import Window, linear_window, minmax_to_unit
from featurekit.errors import DataError
from featurekit.imageio import DICOM_EXTENSIONS, VOLUME_EXTENSIONS, image_suffix

__all__ = ["is_nifti", "stack_size", "read_plane", "read_plane_mask", "plane_areas"]

_WINDOW_HELP = "set --window: a preset (soft-tissue, lung, bone, brain), CENTER,WIDTH or 'minmax' (the volume's range)"


def is_nifti(path) -> bool:
    return image_suffix(path) in VOLUME_EXTENSIONS


def _nifti(path: Path):
    try:
        import nibabel
    except ImportError:
        raise DataError(f"{path}: reading NIfTI needs nibabel; install featurekit[nifti] "
                        "(pip install 'featurekit[nifti]')") from None
    try:
        img = nibabel.load(str(path))
    except Exception as exc:  # nibabel raises several exception types for bad files
        raise DataError(f"{path}: not a readable NIfTI file ({exc})") from None
    if not isinstance(img, nibabel.spatialimages.SpatialImage):  # an image without a voxel grid
        raise DataError(f"{path}: nibabel reads it as a {type(img).__name__}, not a NIfTI image")
    if len(img.shape) not in (2, 3):
        raise DataError(f"{path}: NIfTI of shape {img.shape}: featurekit reads 2-D images and 3-D volumes")
    return img


@functools.lru_cache(maxsize=64)
def _series(folder: str, mtime_ns: int) -> tuple:
    return tuple(series_files(folder))


def _series_file(path: Path, plane: Optional[int]) -> Path:
    files = _series(str(path), os.stat(path).st_mtime_ns)
    if plane is None:
        raise DataError(f"{path}: a DICOM series of {len(files)} slices: choose slices with --slices "
                        "(index:K, middle, max-mask, all-masked, all)")
    if not 0 <= plane < len(files):
        raise DataError(f"{path}: slice {plane} does not exist (the series has {len(files)} slices)")
    return files[plane]


def stack_size(path) -> Optional[int]:
    """Planes of a stack (NIfTI volume, DICOM series folder, multi-frame DICOM), ``None`` for a 2-D image."""
    p = Path(path)
    if p.is_dir():
        if not is_dicom_series(p):
            raise DataError(f"{p}: a folder that is not a DICOM series (no .dcm files in it)")
        return len(_series(str(p), os.stat(p).st_mtime_ns))
    if is_nifti(p):
        shape = _nifti(p).shape
        return int(shape[2]) if len(shape) == 3 else None
    if p.suffix.lower() in DICOM_EXTENSIONS:
        return dicom_frames(p)
    return None


def _nifti_slice(img, path: Path, plane: Optional[int]) -> np.ndarray:
    shape = img.shape
    if len(shape) == 2:
        if plane not in (None, 0):
            raise DataError(f"{path}: slice {plane} does not exist (a 2-D NIfTI image)")
        return np.asanyarray(img.dataobj)
    if plane is None:
        raise DataError(f"{path}: a volume of {shape[2]} slices: choose slices with --slices "
                        "(index:K, middle, max-mask, all-masked, all)")
    if not 0 <= plane < shape[2]:
        raise DataError(f"{path}: slice {plane} does not exist (the volume has {shape[2]} slices, 0..{shape[2] - 1})")
    return np.asanyarray(img.dataobj[:, :, plane])


def _scaling(img) -> tuple[float, float]:
    """``(scl_slope, scl_inter)`` nibabel applies when it reads the values (``(1, 0)``: unscaled).

    nibabel moves a loaded file's scaling from its header to the data proxy
    (``img.dataobj.slope`` / ``.inter``), where the header then says ``None``.
    """
    proxy = img.dataobj
    if hasattr(proxy, "slope") and hasattr(proxy, "inter"):
        return float(proxy.slope), float(proxy.inter)
    slope, inter = img.header.get_slope_inter()
    return (1.0 if slope is None else float(slope)), (0.0 if inter is None else float(inter))


def _nifti_rule(img, window: Window, path: Path):
    """``('explicit' | 'minmax' | (lo, hi))``: how a NIfTI's values map to [0, 1]."""
    if window.kind in ("explicit", "minmax"):
        return window.kind
    lo, hi = float(img.header["cal_min"]), float(img.header["cal_max"])
    if window.kind in ("auto", "file") and hi > lo:
        return lo, hi
    if window.kind == "file":
        raise DataError(f"{path}: --window {window.name} asks for the file's display range, and its header has "
                        f"no cal_min < cal_max; {_WINDOW_HELP}")
    slope, inter = _scaling(img)
    dtype = img.get_data_dtype()
    if dtype.kind == "u" and dtype.itemsize <= 2 and slope == 1.0 and inter == 0.0:
        return 0.0, float(np.iinfo(dtype).max)
    raise DataError(f"{path}: NIfTI values of type {dtype} (scl_slope {slope}, scl_inter {inter}) declare no "
                    f"display range; {_WINDOW_HELP}")


def read_plane(path, window=None, plane: Optional[int] = None) -> np.ndarray:
    """Plane ``plane`` of a NIfTI volume or DICOM series (or a DICOM file's frame) as ``float32`` in [0, 1]."""
    p = Path(path)
    window = Window.parse(window)
    if p.is_dir():
        return read_dicom(_series_file(p, plane), window)
    if not is_nifti(p):
        return read_dicom(p, window, plane)
    img = _nifti(p)
    values = _nifti_slice(img, p, plane).astype(np.float64)
    rule = _nifti_rule(img, window, p)
    if rule == "explicit":
        return linear_window(values, *window.center_width)
    if rule == "minmax":  # the whole volume's range: every slice of it on one scale
        return minmax_to_unit(values, str(p), whole=np.asanyarray(img.dataobj))
    lo, hi = rule
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def read_plane_mask(path, plane: Optional[int] = None) -> np.ndarray:
    """Plane ``plane`` of a mask volume, series or multi-frame DICOM: nonzero = inside."""
    p = Path(path)
    if p.is_dir():
        return read_dicom_mask(_series_file(p, plane))
    if not is_nifti(p):
        return read_dicom_mask(p, plane)
    return _nifti_slice(_nifti(p), p, plane) != 0


def plane_areas(path) -> np.ndarray:
    """Inside pixels per plane of a mask stack (for the ``max-mask`` and ``all-masked`` policies)."""
    p = Path(path)
    if is_nifti(p):
        img = _nifti(p)
        if len(img.shape) == 3:
            return np.count_nonzero(np.asanyarray(img.dataobj), axis=(0, 1))
    n = stack_size(p)
    if n is None:
        raise DataError(f"{p}: a 2-D mask cannot say which slice of a volume is masked; give a mask volume")
    return np.array([np.count_nonzero(read_plane_mask(p, k)) for k in range(n)])
