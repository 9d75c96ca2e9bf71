"""DICOM read as the modality wrote it: pydicom's own transforms, then [0, 1].

One rule for every DICOM image (:func:`read_dicom`):

1. decode the stored values (``pydicom``; compressed transfer syntaxes need
   pydicom's decoder plugins);
2. the modality LUT (``RescaleSlope`` / ``RescaleIntercept`` or a Modality LUT
   Sequence) by ``pydicom.pixels.apply_modality_lut``;
3. the :class:`~featurekit.data.window.Window`: the file's VOI LUT or window
   (``pydicom.pixels.apply_voi_lut``, scaled by its declared output range), an
   explicit window (DICOM LINEAR), the declared stored range (``BitsStored``
   through the modality LUT, never the container's 16 bits) or the file's
   min..max -- see :mod:`featurekit.data.window` for when each applies;
4. ``MONOCHROME1`` is inverted (``1 - v``) so that bright always means dense.

The result is ``float32`` in [0, 1], ``(H, W)``, or ``(H, W, 3)`` for colour
(scaled by its ``BitsStored`` range; a window is an error there). Values that
the chosen rule cannot place in [0, 1] (stored values outside the declared
range, rescaled data without a window) are a :class:`DataError` naming the
file and what to set. A multi-frame file is read one frame at a time
(``plane``); a DICOM series is a folder of single-frame files, one slice each,
ordered by their position along the slice normal (``ImagePositionPatient`` and
``ImageOrientationPatient``), else ``InstanceNumber``, else file name.
:func:`describe_reading` says what was applied to a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from featurekit.data.window import Window, linear_window, minmax_to_unit
from featurekit.errors import DataError
from featurekit.imageio import DICOM_EXTENSIONS, readable

__all__ = ["read_dicom", "read_dicom_mask", "dicom_frames", "dicom_shape", "describe_reading", "series_files",
           "is_dicom_series"]

_WINDOW_HELP = ("set --window: a preset (soft-tissue, lung, bone, brain, mediastinum), CENTER,WIDTH, "
                "'range' (the declared stored range) or 'minmax' (the file's own range)")


def _pydicom(path):
    try:
        import pydicom
    except ImportError:
        raise DataError(f"{path}: reading DICOM needs pydicom; install featurekit[dicom] "
                        "(pip install 'featurekit[dicom]')") from None
    return pydicom


def _transforms():
    """pydicom's ``(apply_modality_lut, apply_voi_lut)``: from ``pydicom.pixels`` (3.0+) or ``pixel_data_handlers``."""
    try:
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError:
        from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut
    return apply_modality_lut, apply_voi_lut


def _header(path: Path, pixels: bool = True):
    pydicom = _pydicom(path)
    try:
        ds = pydicom.dcmread(readable(path), stop_before_pixels=not pixels)
    except Exception as exc:  # pydicom raises a zoo of exception types
        raise DataError(f"{path}: not a readable DICOM file ({exc})") from None
    if pixels and "PixelData" not in ds:
        raise DataError(f"{path}: DICOM file has no pixel data")
    return ds


def _stored(ds, path: Path) -> np.ndarray:
    try:
        return ds.pixel_array
    except Exception as exc:
        raise DataError(f"{path}: cannot decode DICOM pixel data ({exc}); compressed transfer syntaxes "
                        "need pydicom's decoder plugins (e.g. pip install pylibjpeg pylibjpeg-openjpeg)") from None


def dicom_frames(path) -> Optional[int]:
    """Frames of a multi-frame DICOM file, or ``None`` for a single-frame (2-D) file (header only)."""
    ds = _header(Path(path), pixels=False)
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return n if n > 1 else None


def dicom_shape(path) -> tuple[int, int]:
    """``(H, W)`` of a DICOM file, from its header."""
    ds = _header(Path(path), pixels=False)
    try:
        return int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: DICOM header without Rows/Columns ({exc})") from None


def _frame(arr: np.ndarray, ds, path: Path, plane: Optional[int]) -> np.ndarray:
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        if plane is None:
            raise DataError(f"{path}: multi-frame DICOM ({frames} frames): choose a frame with --slices index:K, "
                            "or one sample per frame with --slices all")
        if not 0 <= plane < frames:
            raise DataError(f"{path}: frame {plane} does not exist (the file has {frames} frames, 0..{frames - 1})")
        return arr[plane]
    if plane not in (None, 0):
        raise DataError(f"{path}: frame {plane} does not exist (a single-frame DICOM file)")
    return arr


def _stored_range(ds) -> tuple[int, int]:
    bits = int(ds.BitsStored)
    if int(getattr(ds, "PixelRepresentation", 0)) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _has_modality_lut(ds) -> bool:
    return bool(ds.get("ModalityLUTSequence")) or (
        float(ds.get("RescaleSlope", 1) or 1) != 1.0 or float(ds.get("RescaleIntercept", 0) or 0) != 0.0)


def _has_voi(ds) -> bool:
    lut = ds.get("VOILUTSequence")
    has_lut = bool(lut) and None not in (lut[0].get("LUTDescriptor"), lut[0].get("LUTData"))
    return has_lut or None not in (ds.get("WindowCenter"), ds.get("WindowWidth"))


def _rule(ds, window: Window, path: Path) -> str:
    """Which window rule applies: 'voi', 'range', 'minmax' or 'explicit'."""
    if window.kind == "explicit":
        return "explicit"
    if window.kind in ("range", "minmax"):
        return window.kind
    if _has_voi(ds):
        return "voi"
    if window.kind == "file":
        raise DataError(f"{path}: --window {window.name} asks for the file's own window, and the file has no "
                        f"VOI LUT or WindowCenter/WindowWidth; {_WINDOW_HELP}")
    if _has_modality_lut(ds):
        slope, intercept = ds.get("RescaleSlope", 1), ds.get("RescaleIntercept", 0)
        raise DataError(f"{path}: rescaled values (RescaleSlope {slope}, RescaleIntercept {intercept}, e.g. CT "
                        f"Hounsfield units) and no window in the file: nothing says which values are black and "
                        f"white; {_WINDOW_HELP}")
    return "range"


def _voi_to_unit(values: np.ndarray, ds) -> np.ndarray:
    apply_voi_lut = _transforms()[1]
    out = apply_voi_lut(values, ds)
    lut = ds.get("VOILUTSequence")
    if lut and None not in (lut[0].get("LUTDescriptor"), lut[0].get("LUTData")):
        top = 2 ** int(lut[0].LUTDescriptor[2]) - 1
        return (np.asarray(out, dtype=np.float64) / top).astype(np.float32)
    # windowing maps onto the modality's output range; probing its two ends gives that range exactly
    with np.errstate(over="ignore"):  # a SIGMOID function overflows to its limits there
        lo, hi = apply_voi_lut(np.array([-1e300, 1e300]), ds)
    return ((np.asarray(out, dtype=np.float64) - lo) / (hi - lo)).astype(np.float32)


def _gray_to_unit(stored: np.ndarray, ds, window: Window, path: Path) -> np.ndarray:
    apply_modality_lut = _transforms()[0]
    rule = _rule(ds, window, path)
    values = apply_modality_lut(stored, ds)
    if rule == "voi":
        unit = _voi_to_unit(values, ds)
    elif rule == "explicit":
        unit = linear_window(values, *window.center_width)
    elif rule == "minmax":
        unit = minmax_to_unit(values, str(path))
    else:
        ends = np.asarray(apply_modality_lut(np.array(_stored_range(ds)), ds), dtype=np.float64)
        lo, hi = float(ends.min()), float(ends.max())
        unit = ((np.asarray(values, dtype=np.float64) - lo) / (hi - lo)).astype(np.float32)
        if unit.size and (unit.min() < 0 or unit.max() > 1):
            raise DataError(f"{path}: stored values {int(stored.min())}..{int(stored.max())} lie outside the "
                            f"declared range {_stored_range(ds)} (BitsStored {ds.BitsStored}); {_WINDOW_HELP}")
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper() == "MONOCHROME1":
        unit = 1.0 - unit
    return unit.astype(np.float32, copy=False)


def read_dicom(path, window=None, plane: Optional[int] = None) -> np.ndarray:
    """One DICOM image (frame ``plane`` of a multi-frame file) as ``float32`` in [0, 1].

    Parameters
    ----------
    path : path
        A DICOM file.
    window : Window or str, optional
        See :mod:`featurekit.data.window` (default ``auto``).
    plane : int, optional
        The frame of a multi-frame file (required there).

    Raises
    ------
    DataError
        Unreadable file, no pixel data, undecodable pixels, a frame that does
        not exist, values the window rule cannot map (the message says what to set).
    """
    p = Path(path)
    window = Window.parse(window)
    ds = _header(p)
    stored = _stored(ds, p)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if samples == 3:
        if window.kind not in ("auto", "range"):
            raise DataError(f"{p}: --window {window.name} applies to MONOCHROME images; this file is "
                            f"{ds.get('PhotometricInterpretation')} colour")
        rgb = _frame(stored, ds, p, plane)
        return (rgb.astype(np.float64) / (2 ** int(ds.BitsStored) - 1)).clip(0, 1).astype(np.float32)
    if samples != 1:
        raise DataError(f"{p}: unsupported DICOM SamplesPerPixel {samples}")
    if window.kind == "minmax":  # the file's range: every frame of it
        return _frame(_gray_to_unit(stored, ds, window, p), ds, p, plane)
    return _gray_to_unit(_frame(stored, ds, p, plane), ds, window, p)


def read_dicom_mask(path, plane: Optional[int] = None) -> np.ndarray:
    """A DICOM mask (frame ``plane``): nonzero stored value = inside; no transform applies to labels."""
    p = Path(path)
    ds = _header(p)
    arr = _frame(_stored(ds, p), ds, p, plane)
    return np.any(arr != 0, axis=-1) if arr.ndim == 3 else arr != 0


def describe_reading(path, window=None, plane: Optional[int] = None) -> dict:
    """What :func:`read_dicom` applies to ``path``: modality LUT, window, inversion, bits, frame."""
    p = Path(path)
    window = Window.parse(window)
    ds = _header(p, pixels=False)
    out = {"bits_stored": int(ds.BitsStored), "signed": int(ds.get("PixelRepresentation", 0)) == 1,
           "slope": float(ds.get("RescaleSlope", 1) or 1), "intercept": float(ds.get("RescaleIntercept", 0) or 0),
           "modality_lut_sequence": bool(ds.get("ModalityLUTSequence")),
           "photometric": str(ds.get("PhotometricInterpretation", "")),
           "inverted": str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1",
           "frame": plane, "window": window.name}
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) == 1:
        rule = _rule(ds, window, p)
        out["rule"] = rule
        if rule == "voi":
            out["voi"] = ("VOI LUT sequence" if ds.get("VOILUTSequence") else
                          f"window {ds.get('WindowCenter')},{ds.get('WindowWidth')} "
                          f"{ds.get('VOILUTFunction', 'LINEAR')}")
        elif rule == "explicit":
            out["voi"] = f"window {window.center:g},{window.width:g} LINEAR"
    else:
        out["rule"] = "range"
    return out


# --------------------------------------------------------------------------- series
def is_dicom_series(path) -> bool:
    """True for a folder holding DICOM files (a series: one slice per file)."""
    p = Path(path)
    return p.is_dir() and any(q.suffix.lower() in DICOM_EXTENSIONS and q.is_file() for q in p.iterdir())


def _slice_key(ds, name: str):
    pos, orient = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
    if pos is not None and orient is not None and len(orient) == 6:
        normal = np.cross(np.asarray(orient[:3], float), np.asarray(orient[3:], float))
        return (0, float(np.dot(normal, np.asarray(pos, float))), name)
    if ds.get("InstanceNumber") is not None:
        return (1, float(ds.InstanceNumber), name)
    return (2, 0.0, name)


def series_files(folder) -> list[Path]:
    """The DICOM files of a series folder in slice order (see the module docstring)."""
    p = Path(folder)
    files = sorted(q for q in p.iterdir() if q.suffix.lower() in DICOM_EXTENSIONS and q.is_file())
    if not files:
        raise DataError(f"{p}: no DICOM files in the series folder")
    keys = [_slice_key(_header(q, pixels=False), q.name) for q in files]
    return [q for _, q in sorted(zip(keys, files, strict=True), key=lambda kq: kq[0])]
