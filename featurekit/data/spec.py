"""Which images a command works on, as one typed object: :class:`DataSpec`.

The data options shared by ``featurekit extract``, ``evaluate``, ``finetune``
and ``predict`` (``DATA --format --classes --positive --roi --roi-margin
--group-duplicates --subsample``) and the study steps of ``featurekit run``
(the same names) become a :class:`DataSpec`; :meth:`DataSpec.load` is the one
place they turn into a :class:`~featurekit.data.dataset.Dataset`.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional

import numpy as np

from featurekit.data.slices import SlicePolicy
from featurekit.data.window import Window
from featurekit.errors import DataError

__all__ = ["DataSpec", "stratified_subsample", "SUBSAMPLE_SEED"]

#: Seed of ``--subsample``: every command draws the same N images, so the rows of
#: ``evaluate`` and ``finetune`` on a subsample are paired (same ids, same folds).
SUBSAMPLE_SEED = 0


@dataclass(frozen=True)
class DataSpec:
    """A dataset and the options that select what of it is used.

    Parameters
    ----------
    data : str
        A class-folder tree, a CSV manifest, a MedMNIST-style ``.npz``, a MIAS
        folder, or ``"phantom"`` (the embedded synthetic set).
    format : {"auto", "folder", "csv", "npz", "mias"}
    classes : str or list of str, optional
        Classes to keep, in label order (``"benign,malignant"``).
    positive : str, optional
        The positive class.
    roi : {"none", "mask", "mias"}; roi_margin : float
    group_duplicates : int, optional
        Put near-duplicate images (dHash distance <= this many bits) in one group.
    window : str, optional
        How DICOM and NIfTI values map to [0, 1] (:mod:`featurekit.data.window`).
    slices : str, optional
        Slice policy of volumes, series and multi-frame files (:mod:`featurekit.data.slices`).
    subsample : int, optional
        A stratified random ``subsample`` images, always drawn with
        :data:`SUBSAMPLE_SEED` (labelled images only).
    masks : bool, default True
        Read the masks; False gives whole images to every feature (e.g. when
        some classes have no lesion to outline).
    """

    data: str
    format: str = "auto"
    classes: Optional[tuple] = None
    positive: Optional[str] = None
    roi: str = "none"
    roi_margin: float = 0.1
    group_duplicates: Optional[int] = None
    subsample: Optional[int] = None
    window: Optional[str] = None
    slices: Optional[str] = None
    masks: bool = True

    def __post_init__(self):
        if not str(self.data).strip():
            raise DataError("no dataset given (DATA is empty)")
        classes = self.classes
        if isinstance(classes, str):
            classes = tuple(c.strip() for c in classes.split(",") if c.strip()) or None
        elif classes is not None:
            classes = tuple(str(c) for c in classes) or None
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "data", str(self.data))
        if self.positive is not None:
            object.__setattr__(self, "positive", str(self.positive))
        if self.subsample is not None and int(self.subsample) < 2:
            raise DataError(f"subsample must be at least 2 images, got {self.subsample}")
        Window.parse(self.window)  # bad text fails here, at the edge
        policy = SlicePolicy.parse(self.slices)
        if not self.masks and policy is not None and policy.kind in ("max-mask", "all-masked"):
            raise DataError(f"--slices {policy.kind} chooses planes by the mask volumes, which --no-masks leaves "
                            "unread: choose index:K, middle or all, or read the masks")
        if not self.masks and self.roi in ("mask", "mias"):
            raise DataError(f"--roi {self.roi} crops to the masks, which --no-masks leaves unread: choose one "
                            "of them")

    @classmethod
    def field_names(cls) -> tuple:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_options(cls, options: dict) -> "DataSpec":
        """From a dict holding (at least) the data options; other keys are ignored."""
        names = cls.field_names()
        return cls(**{k: v for k, v in options.items() if k in names and v is not None})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes) if self.classes else None
        for key in ("window", "slices"):  # listed only when set: specs without them keep their study hashes
            if d[key] is None:
                del d[key]
        if d["masks"]:
            del d["masks"]
        return d

    @property
    def is_phantom(self) -> bool:
        return self.data == "phantom"

    def missing(self) -> bool:
        """True when DATA names no existing file or folder (``phantom`` always exists)."""
        return not self.is_phantom and not Path(self.data).exists()

    def load(self):
        """The :class:`~featurekit.data.dataset.Dataset` these options describe."""
        from featurekit.data import load_dataset
        from featurekit.data.duplicates import group_near_duplicates
        from featurekit.data.phantom import make_phantom
        from featurekit.data.slices import read_planes

        classes = list(self.classes) if self.classes else None
        if self.is_phantom:
            ds = make_phantom()
            if classes or self.positive:
                ds = ds.select_classes(classes or ds.class_names, positive=self.positive)
            ds = ds.with_roi(self.roi, self.roi_margin) if self.roi != "none" else ds
            ds = read_planes(ds, self.window, self.slices)  # in-memory: an error when either is given
        else:
            ds = load_dataset(self.data, format=self.format, classes=classes, positive=self.positive,
                              roi=self.roi, roi_margin=self.roi_margin, window=self.window, slices=self.slices)
        if not self.masks:
            ds = ds.without_masks()
        if ds.roi == "mias":
            warn_uncropped(ds)
        if self.subsample is not None:
            ds = stratified_subsample(ds, int(self.subsample), seed=SUBSAMPLE_SEED)
        if self.group_duplicates is not None:
            ds = group_near_duplicates(ds, int(self.group_duplicates))
        return ds


def warn_uncropped(dataset) -> None:
    """Warn when ``roi='mias'`` crops some labelled films to their recorded circles and keeps others whole.

    A film without a recorded circle keeps the whole film: its CNN input (and
    texture) then describes another region than the crops, and when that goes
    with the class the difference can tell the classes apart by itself.
    """
    presence = dataset.mask_presence()
    labels = np.asarray(dataset.labels)
    labelled = labels >= 0
    if presence is None or not presence[labelled].any() or presence[labelled].all():
        return
    whole = ~presence & labelled
    per_class = dataset.count_by_class(whole)
    example = dataset.ids[int(np.flatnonzero(whole)[0])]
    warnings.warn(f"{dataset.source or dataset.name}: roi='mias' keeps {int(whole.sum())} of {int(labelled.sum())} "
                  f"films whole (no recorded circle, e.g. {example}; per class: {per_class}) while the others are "
                  "cropped to their circles: their inputs describe another region, which can tell the classes "
                  "apart by itself when it goes with the class", UserWarning, stacklevel=3)


def stratified_subsample(dataset, n: int, seed: int = SUBSAMPLE_SEED):
    """A seeded stratified random subset of ``n`` labelled images (all of them when ``n >= len``).

    Unlabelled rows (label -1) are dropped first. With fewer than two images of
    some class, or ``n`` below the number of classes, the draw is plain random.
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    keep = np.flatnonzero(np.asarray(dataset.labels) >= 0)
    if len(keep) == 0:
        raise DataError(f"{dataset.source or dataset.name}: no labelled images")
    if len(keep) < len(dataset):
        dataset = dataset.subset(keep)
    if n >= len(dataset):
        return dataset
    y = np.asarray(dataset.labels)
    counts = np.unique(y, return_counts=True)[1]
    if n < len(counts) or counts.min() < 2:
        rng = np.random.default_rng(seed)
        return dataset.subset(np.sort(rng.choice(len(dataset), size=n, replace=False)))
    split = StratifiedShuffleSplit(1, train_size=int(n), random_state=int(seed))
    idx, _ = next(split.split(np.zeros((len(y), 1)), y))
    return dataset.subset(np.sort(idx))
