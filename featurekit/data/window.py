"""How stored intensities become [0, 1]: the :class:`Window` a DICOM file or a volume is read with.

A CNN input is ``float32`` in [0, 1] (see :mod:`featurekit.imageio`). A PNG's
dtype says what 0 and 1 are; a DICOM file or a NIfTI volume says it only
through its headers (BitsStored, the modality LUT, a VOI LUT or window), and
sometimes not at all (Hounsfield units, MRI signal). The window names the rule:

==================  =========================================================
``auto``            the default: the file's own VOI LUT / window when it has
                    one, else the declared stored range when that range is
                    the display range (unsigned or signed integers without a
                    rescale); anything else is an error asking for a window
``file``, ``mammo`` the file's own VOI LUT / window, required (mammography
                    windows are set per detector: there is no universal one)
``range``           the declared stored range (``0..2**BitsStored-1``, or the
                    signed range) through the modality LUT; NIfTI: the range
                    of its integer dtype
``minmax``          the file's own minimum..maximum (a DICOM file with all its
                    frames, a whole NIfTI volume, one file of a DICOM series)
a preset            ``soft-tissue`` (40, 400), ``lung`` (-600, 1500), ``bone``
                    (400, 1800), ``brain`` (40, 80), ``mediastinum`` (50, 350)
                    as centre, width in the modality's units (HU for CT)
``C,W``             an explicit centre and width, e.g. ``-600,1500``
==================  =========================================================

Explicit windows (presets, ``C,W``) follow the DICOM LINEAR function (PS3.3
C.11.2.1.2.1), as pydicom's ``apply_windowing`` computes it, scaled to [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from featurekit.errors import DataError

__all__ = ["Window", "WINDOW_PRESETS", "WINDOW_KINDS", "linear_window", "minmax_to_unit"]

#: Named windows as (centre, width) in the modality's units (Hounsfield units for CT).
WINDOW_PRESETS = {
    "soft-tissue": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "mediastinum": (50.0, 350.0),
}

#: Windows that are rules rather than numbers; ``mammo`` is an alias of ``file``.
WINDOW_KINDS = ("auto", "file", "range", "minmax")
_ALIASES = {"mammo": "file"}


@dataclass(frozen=True)
class Window:
    """A window: one of :data:`WINDOW_KINDS`, or ``explicit`` with ``center`` and ``width``.

    Build it with :meth:`parse`; ``name`` is the text it was parsed from.
    """

    kind: str = "auto"
    center: Optional[float] = None
    width: Optional[float] = None
    name: str = "auto"

    def __post_init__(self) -> None:
        # a centre and a width exactly for "explicit", so linear_window never meets a missing one
        explicit = self.kind == "explicit"
        if self.kind not in WINDOW_KINDS and not explicit:
            raise DataError(f"window kind {self.kind!r}: expected one of {list(WINDOW_KINDS)} or 'explicit'")
        c, w = self.center, self.width
        if explicit and (c is None or w is None or not (math.isfinite(c) and math.isfinite(w) and w > 0)):
            raise DataError(f"an explicit window needs a finite centre and a width > 0, got {(c, w)}")
        if not explicit and (c, w) != (None, None):
            raise DataError(f"window {self.kind!r} is a rule: it takes no centre and width, got {(c, w)}")

    @classmethod
    def parse(cls, text: Union[None, str, "Window"]) -> "Window":
        """``None`` -> ``auto``; a kind, ``mammo``, a preset name or ``"C,W"`` (width > 0).

        Raises
        ------
        DataError
            Anything else, listing what is accepted.
        """
        if isinstance(text, Window):
            return text
        if text is None:
            return cls()
        name = str(text).strip().lower()
        kind = _ALIASES.get(name, name)
        if kind in WINDOW_KINDS:
            return cls(kind, name=name)
        if name in WINDOW_PRESETS:
            c, w = WINDOW_PRESETS[name]
            return cls("explicit", c, w, name)
        parts = name.split(",")
        try:
            c, w = (float(v) for v in parts) if len(parts) == 2 else (math.nan, math.nan)
        except ValueError:
            c, w = math.nan, math.nan
        if not (math.isfinite(c) and math.isfinite(w) and w > 0):
            raise DataError(
                f"window {text!r}: expected one of {list(WINDOW_KINDS) + list(_ALIASES)}, a preset "
                f"{sorted(WINDOW_PRESETS)}, or CENTER,WIDTH with a width > 0 (e.g. -600,1500)"
            )
        return cls("explicit", c, w, f"{c:g},{w:g}")

    @property
    def center_width(self) -> tuple[float, float]:
        """The centre and width of an explicit window (a DataError for the rules, which have none)."""
        if self.center is None or self.width is None:
            raise DataError(f"window {self.name!r} is a rule ({self.kind}), not a centre and width")
        return self.center, self.width

    @property
    def key(self) -> str:
        """What identifies the reading (the cache's content hash includes it)."""
        if self.kind == "explicit":
            return f"explicit:{self.center!r},{self.width!r}"
        return self.kind


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM LINEAR windowing (PS3.3 C.11.2.1.2.1) to ``float32`` in [0, 1].

    ``x <= c - 0.5 - (w - 1) / 2`` -> 0, ``x > c - 0.5 + (w - 1) / 2`` -> 1,
    linear between; a width below 1 is a :class:`DataError` (as in the standard).
    """
    if width < 1:
        raise DataError(f"window width {width:g} is below 1, which the DICOM LINEAR function does not allow")
    x = np.asarray(values, dtype=np.float64)
    c, w = center - 0.5, width - 1.0
    if w == 0:  # width 1: a threshold at the centre
        return (x > c).astype(np.float32)
    return np.clip((x - c) / w + 0.5, 0.0, 1.0).astype(np.float32)


def minmax_to_unit(values: np.ndarray, where: str, whole: Optional[np.ndarray] = None) -> np.ndarray:
    """``(v - min) / (max - min)`` as ``float32``, min and max of ``whole`` (default: ``values``).

    A constant image is a :class:`DataError` naming ``where``.
    """
    x = np.asarray(values, dtype=np.float64)
    ref = x if whole is None else np.asarray(whole)
    lo, hi = float(np.min(ref)), float(np.max(ref))
    if not hi > lo:
        raise DataError(f"{where}: every value is {lo:g}, so --window minmax has no range to map; "
                        "set an explicit window (CENTER,WIDTH)")
    return ((x - lo) / (hi - lo)).astype(np.float32)
