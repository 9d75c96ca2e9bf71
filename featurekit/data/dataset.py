"""The :class:`Dataset`: ids, labels, groups and lazily decoded images and masks.

One class: its validation, modifiers, decoding with ROI, and the content
hashes the cache and the study markers rely on.

A dataset is an immutable, cheap-to-copy, picklable description of samples:
the per-sample metadata lives in small arrays, the pixels in one image
*source* and an optional mask *source* (:mod:`featurekit.data.sources`).
Every "modifier" (:meth:`Dataset.subset`, :meth:`Dataset.select_classes`,
:meth:`Dataset.with_roi`, :meth:`Dataset.with_positive`) returns a new dataset
sharing the sources.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any, Iterator, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np

from featurekit.data.roi import ROI_MODES, circles_box, crop, expand_box, mask_box
from featurekit.data.sources import CHANGED, feed, load_hashed
from featurekit.errors import DataChangedError, DataError
from featurekit.imageio import check_image_size

__all__ = ["Sample", "Dataset", "SPLITS", "apply_options"]

#: Accepted values of ``Dataset.split``.
SPLITS = ("train", "val", "test")

ClassSpec = Union[Sequence[str], Mapping[str, Union[str, Sequence[str]]]]

_FINGERPRINT_VERSION = b"featurekit.Dataset.fingerprint/2"
_SAMPLE_HASH_VERSION = b"featurekit.Dataset.sample_hash/1"


class Sample(NamedTuple):
    """One sample: ``id``, native ``image`` after ROI crop, aligned ``mask`` (or None), ``label``."""

    id: str
    image: np.ndarray
    mask: Optional[np.ndarray]
    label: int


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr)  # own copy
    arr.flags.writeable = False
    return arr


class Dataset:
    """Labelled images with optional masks, groups, splits and a region of interest.

    Parameters
    ----------
    ids : sequence of str
        Unique sample ids.
    labels : array-like of int
        Index into ``class_names`` per sample; ``-1`` = unlabelled.
    class_names : sequence of str
        Unique class names.
    images : image source
        :class:`~featurekit.data.sources.FileImages` or
        :class:`~featurekit.data.sources.ArrayImages`.
    masks : mask source, optional
        :class:`~featurekit.data.sources.FileMasks`,
        :class:`~featurekit.data.sources.ArrayMasks` or
        :class:`~featurekit.data.sources.CircleMasks`; ``None`` = no masks.
    positive : str, optional
        The positive class (for binary metrics); must be in ``class_names``.
    groups : array-like of str, optional
        Group id per sample (a patient, a volume...), for grouped
        cross-validation: a group is never split between training and test.
    group_kind : str, optional
        What a group is, as reports word it ("patient", "volume",
        "near-duplicate images"...); None = not said ("grouped").
    split : array-like of str, optional
        ``'train'``, ``'val'`` or ``'test'`` per sample (predefined splits).
    name, source : str
        Human-readable name and where the data came from (a path).
    roi : {'none', 'mask', 'mias'}
        Region of interest returned by :meth:`image` and :meth:`mask`:

        * ``'none'``: the whole image;
        * ``'mask'``: the bounding box of the mask, enlarged by ``roi_margin``
          times the box height (top and bottom) and width (left and right),
          clipped to the image. An *empty* mask (e.g. a BUSI ``normal`` image)
          is a :class:`DataError` naming the image when it is read: there is
          no region to crop, and the whole image would pass for one;
        * ``'mias'``: the square bounding the circle (the box bounding the
          squares of several circles) of a circle-mask dataset, same margin
          rule; a sample without circles gives the whole image.
    roi_margin : float
        Relative margin, >= 0 (default 0.1).
    skipped : sequence of str
        Files a loader ignored (e.g. non-image files in a class folder).
    meta : mapping of str to array-like, optional
        Extra per-sample columns (e.g. MIAS background tissue); subset along.

    Notes
    -----
    Images are decoded by :func:`featurekit.imageio.read_image` in native units
    and dtype. Instances are immutable by convention (label/group arrays are
    read-only), picklable (for ``torch`` ``DataLoader`` workers) and cheap to
    copy: subsets share the sources.
    """

    def __init__(
        self,
        ids: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        class_names: Sequence[str],
        images,
        masks=None,
        *,
        positive: Optional[str] = None,
        groups: Optional[Sequence[str]] = None,
        split: Optional[Sequence[str]] = None,
        name: str = "dataset",
        source: str = "",
        roi: str = "none",
        roi_margin: float = 0.1,
        skipped: Sequence[str] = (),
        meta: Optional[Mapping[str, Sequence[Any]]] = None,
        group_kind: Optional[str] = None,
    ):
        self._ids = tuple(str(i) for i in ids)
        self.labels = _readonly(np.asarray(labels, dtype=np.int64).reshape(-1))
        self.class_names = [str(c) for c in class_names]
        self._images = images
        self._masks = masks
        self.positive = None if positive is None else str(positive)
        self.groups = None if groups is None else _readonly(np.asarray([str(g) for g in groups], dtype=str))
        self.group_kind = None if groups is None or group_kind is None else str(group_kind)
        self.split = None if split is None else _readonly(np.asarray([str(s) for s in split], dtype=str))
        self.name = str(name)
        self.source = str(source)
        self.roi = roi
        self.roi_margin = float(roi_margin)
        self.skipped = tuple(skipped)
        self.meta = {k: _readonly(np.asarray(v)) for k, v in (meta or {}).items()}
        self._fingerprint: Optional[str] = None
        self._hashes: list[Optional[str]] = [None] * len(self._ids)
        self._presence: Optional[np.ndarray] = None  # mask_presence(), once decoded
        self._validate()

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray,
        labels: Sequence[int] | np.ndarray,
        class_names: Optional[Sequence[str]] = None,
        masks: Optional[np.ndarray] = None,
        ids: Optional[Sequence[str]] = None,
        **kw,
    ) -> "Dataset":
        """In-memory dataset from stacked arrays.

        Parameters
        ----------
        images : ndarray
            ``(N, H, W)`` or ``(N, H, W, 3)``.
        labels : sequence of int
            Class index per image (-1 = unlabelled).
        class_names : sequence of str, optional
            Default ``'0', '1', ...`` up to the largest label.
        masks : ndarray, optional
            ``(N, H, W)``, nonzero = inside.
        ids : sequence of str, optional
            Default ``'0000', '0001', ...``.
        **kw
            Other :class:`Dataset` keywords (``positive``, ``groups``, ``roi``...).
        """
        from featurekit.data.sources import ArrayImages, ArrayMasks

        images = np.asarray(images)
        codes = np.asarray(labels, dtype=np.int64)
        if class_names is None:
            class_names = [str(k) for k in range(int(codes.max(initial=-1)) + 1)]
        if ids is None:
            width = max(4, len(str(len(images) - 1)))
            ids = [f"{k:0{width}d}" for k in range(len(images))]
        kw.setdefault("name", "arrays")
        kw.setdefault("source", "<arrays>")
        return cls(ids, codes, class_names, ArrayImages([images], names=["images"]),
                   None if masks is None else ArrayMasks([np.asarray(masks)], names=["masks"]), **kw)

    # ------------------------------------------------------------------ validation
    def _fail(self, problem: str) -> DataError:
        where = self.source or self.name
        return DataError(f"{where}: {problem}")

    def _validate(self) -> None:
        n = len(self._ids)
        if len(set(self._ids)) != n:
            dup = [k for k, c in Counter(self._ids).items() if c > 1][:5]
            raise self._fail(f"sample ids must be unique; duplicated: {dup}")
        if len(set(self.class_names)) != len(self.class_names):
            raise self._fail(f"class names must be unique, got {self.class_names}")
        for what, arr in (("labels", self.labels), ("images", self._images), ("masks", self._masks),
                          ("groups", self.groups), ("split", self.split), *self.meta.items()):
            if arr is not None and len(arr) != n:
                raise self._fail(f"{what} has {len(arr)} entries for {n} samples")
        if n and (self.labels.min() < -1 or self.labels.max() >= len(self.class_names)):
            raise self._fail(
                f"labels must be in -1..{len(self.class_names) - 1} for classes {self.class_names}, "
                f"got {self.labels.min()}..{self.labels.max()}"
            )
        if self.positive is not None and self.positive not in self.class_names:
            raise self._fail(f"positive class {self.positive!r} is not one of {self.class_names}")
        if self.split is not None:
            bad = sorted(set(self.split.tolist()) - set(SPLITS))
            if bad:
                raise self._fail(f"split values must be in {SPLITS}, got {bad}")
        self._validate_roi(self.roi, self.roi_margin)

    def _validate_roi(self, roi: str, margin: float) -> None:
        if roi not in ROI_MODES:
            raise self._fail(f"roi must be one of {ROI_MODES}, got {roi!r}")
        if not (np.isfinite(margin) and margin >= 0):
            raise self._fail(f"roi_margin must be a finite number >= 0, got {margin!r}")
        if roi == "mask":
            if self._masks is None:
                raise self._fail("roi='mask' needs masks, and this dataset has none")
            missing = [self._ids[i] for i in range(len(self)) if not self._masks.has(i)]
            if missing:
                raise self._fail(
                    f"roi='mask' but {len(missing)} sample(s) have no mask, e.g. {missing[:5]}"
                )
        if roi == "mias" and getattr(self._masks, "circles", None) is None:
            raise self._fail("roi='mias' needs circle annotations (load_mias), and this dataset has none")

    # ------------------------------------------------------------------ basics
    @property
    def ids(self) -> list[str]:
        """Sample ids (a fresh list)."""
        return list(self._ids)

    @property
    def positive_index(self) -> Optional[int]:
        """Index of :attr:`positive` in :attr:`class_names`, or ``None``."""
        return None if self.positive is None else self.class_names.index(self.positive)

    @property
    def has_masks(self) -> bool:
        return self._masks is not None

    def __len__(self) -> int:
        return len(self._ids)

    def _index(self, i) -> int:
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"sample index must be an int, got {type(i).__name__}")
        n = len(self)
        j = int(i) + n if i < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"sample index {i} out of range for {n} samples")
        return j

    def __getitem__(self, i) -> Sample:
        j = self._index(i)
        image, mask = self._load(j, want_mask=True)
        return Sample(self._ids[j], image, mask, int(self.labels[j]))

    def __iter__(self) -> Iterator[Sample]:
        for j in range(len(self)):
            yield self[j]

    def image(self, i) -> np.ndarray:
        """Native image of sample ``i`` after the ROI crop."""
        return self._load(self._index(i), want_mask=False)[0]

    def mask(self, i) -> Optional[np.ndarray]:
        """Bool mask of sample ``i`` after the ROI crop, aligned pixel-for-pixel with
        :meth:`image`; ``None`` when the dataset (or this sample) has no mask."""
        return self._load(self._index(i), want_mask=True)[1]

    def image_path(self, i) -> str:
        """The file (or ``array[row]``) sample ``i`` is read from, for messages and reports."""
        return self._images.describe(self._index(i))

    def rows(self, ids) -> np.ndarray:
        """Positions of sample ``ids`` (in the given order); unknown ids are a DataError naming them."""
        index = getattr(self, "_row_index", None)
        if index is None:
            index = {s: i for i, s in enumerate(self._ids)}
            object.__setattr__(self, "_row_index", index)
        ids = [str(v) for v in ids]
        missing = [v for v in ids if v not in index]
        if missing:
            raise self._fail(f"{len(missing)} id(s) are not in this dataset, e.g. {missing[:3]}")
        return np.fromiter((index[v] for v in ids), dtype=np.int64, count=len(ids))

    def __copy__(self) -> "Dataset":
        return self

    def __deepcopy__(self, memo) -> "Dataset":
        """A dataset is immutable: copies share it (scikit-learn's ``clone`` deep-copies parameters)."""
        return self

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, n={len(self)}, classes={self.class_names}, "
                f"positive={self.positive!r}, roi={self.roi!r})")

    # ------------------------------------------------------------------ pixels
    def _load(self, i: int, want_mask: bool):
        """Image and mask of sample ``i``, decoded from the very bytes its content hash is taken from.

        The hash of what was decoded must be the sample's hash as this dataset
        took it (the hash a feature cache keys its row with): a file changed
        since is a :class:`~featurekit.errors.DataChangedError`, so a row is
        never stored under the content of another version of its image.
        """
        h = self._hasher()
        image = load_hashed(self._images, h, i)
        shape = image.shape[:2]
        mask = None
        if self._masks is None:
            feed(h, b"nomask")
        elif want_mask or self.roi == "mask":
            mask = load_hashed(self._masks, h, i, shape, self._images.describe(i))
        else:
            self._masks.hash_into(i, h)
        digest = h.hexdigest()
        if self._hashes[i] is None:
            self._hashes[i] = digest
        elif digest != self._hashes[i]:
            raise DataChangedError(f"{self._images.describe(i)}: {CHANGED}")
        box = self._roi_box(i, shape, mask)
        if box is not None:
            image = check_image_size(crop(image, box), self._images.describe(i), f"the {self.roi} region of interest")
            mask = None if mask is None else crop(mask, box)
        return image, mask

    def _roi_box(self, i: int, shape, mask):
        if self.roi == "none":
            return None
        if self.roi == "mask":
            if mask is None:
                raise DataError(f"{self._images.describe(i)}: roi='mask' but this image has no mask")
            tight = mask_box(mask)
            if tight is None:  # the whole image in its place would pass for a region of interest
                raise DataError(f"{self._images.describe(i)}: roi='mask' but its mask is empty (no pixel set): "
                                "leave out the images without a lesion (--classes), or use --roi none")
        else:  # 'mias'
            tight = circles_box(self._masks.circles[i])
        if tight is None:
            return None  # no circle (MIAS images without an abnormality): the whole image
        box = expand_box(tight, self.roi_margin, shape)
        if box[0] >= box[1] or box[2] >= box[3]:
            raise DataError(
                f"{self._images.describe(i)}: region of interest {tight} lies outside the "
                f"{shape[0]}x{shape[1]} image"
            )
        return box

    # ------------------------------------------------------------------ derived datasets
    def _fields(self) -> dict:
        return dict(
            ids=self._ids, labels=self.labels, class_names=self.class_names, images=self._images,
            masks=self._masks, positive=self.positive, groups=self.groups, split=self.split,
            name=self.name, source=self.source, roi=self.roi, roi_margin=self.roi_margin,
            skipped=self.skipped, meta=self.meta, group_kind=self.group_kind,
        )

    def _evolve(self, rows: Optional[np.ndarray] = None, **changes) -> "Dataset":
        """A new dataset with ``changes``; ``rows`` = which samples it keeps (carries their content hashes)."""
        fields = self._fields()
        fields.update(changes)
        new = Dataset(**fields)
        if (new.roi, new.roi_margin) == (self.roi, self.roi_margin):  # content hashes depend on the ROI
            new._hashes = [self._hashes[j] for j in (range(len(self)) if rows is None else rows)]
        if self._presence is not None:  # the same mask files (whatever the ROI): their presence holds
            new._presence = self._presence if rows is None else self._presence[rows]
        return new

    def _taken(self, idx: np.ndarray) -> dict:
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return dict(
            ids=[self._ids[j] for j in idx], labels=self.labels[idx],
            images=self._images.take(idx),
            masks=None if self._masks is None else self._masks.take(idx),
            groups=pick(self.groups), split=pick(self.split),
            meta={k: v[idx] for k, v in self.meta.items()},
        )

    def subset(self, indices) -> "Dataset":
        """Dataset of the samples at ``indices`` (ints, in that order, or a bool mask)."""
        idx = np.asarray(indices)
        if idx.dtype == np.bool_:
            if idx.shape != (len(self),):
                raise ValueError(f"bool mask has shape {idx.shape}, expected ({len(self)},)")
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = idx.astype(np.int64)
        elif idx.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers or a bool mask, got dtype {idx.dtype}")
        idx = idx.astype(np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"subset indices out of range for {n} samples")
        idx = np.where(idx < 0, idx + n, idx)
        if len(np.unique(idx)) != len(idx):
            raise ValueError("subset indices must not repeat (ids must stay unique)")
        return self._evolve(rows=idx, **self._taken(idx))

    def select_classes(self, classes: ClassSpec, positive: Optional[str] = None) -> "Dataset":
        """Keep some classes, relabel them in the given order, optionally merge.

        Parameters
        ----------
        classes : sequence of str or mapping
            Class names to keep, in the new label order; or
            ``{new_name: [old names]}`` to merge classes (mapping order = new
            label order). Samples of other classes, and unlabelled samples,
            are dropped.
        positive : str, optional
            New positive class. When omitted the current one is kept if it is
            still a class name, else the result has none.

        Raises
        ------
        DataError
            Unknown or repeated class names, or an unknown ``positive``.
        """
        if isinstance(classes, str):
            classes = [classes]
        if isinstance(classes, Mapping):
            spec = [(str(new), [old] if isinstance(old, str) else list(old)) for new, old in classes.items()]
        else:
            spec = [(str(c), [str(c)]) for c in classes]
        if not spec:
            raise self._fail("select_classes needs at least one class")
        new_names = [new for new, _ in spec]
        if len(set(new_names)) != len(new_names):
            raise self._fail(f"class names repeat in {new_names}")
        mapping = np.full(len(self.class_names) + 1, -1, dtype=np.int64)  # last slot: label -1
        seen: set[str] = set()
        for k, (_new, olds) in enumerate(spec):
            for old in olds:
                if old not in self.class_names:
                    raise self._fail(f"unknown class {old!r}; classes are {self.class_names}")
                if old in seen:
                    raise self._fail(f"class {old!r} is listed twice in {classes!r}")
                seen.add(old)
                mapping[self.class_names.index(old)] = k
        new_labels = mapping[self.labels]
        keep = np.flatnonzero(new_labels >= 0)
        if positive is None and self.positive in new_names:
            positive = self.positive
        if positive is not None and positive not in new_names:
            raise self._fail(f"positive class {positive!r} is not one of {new_names}")
        fields = self._taken(keep)
        fields.update(labels=new_labels[keep], class_names=new_names, positive=positive)
        return self._evolve(rows=keep, **fields)

    def with_positive(self, positive: Optional[str]) -> "Dataset":
        """Same samples, another positive class (must be a class name, or None)."""
        return self._evolve(positive=positive)

    def with_groups(self, groups: Optional[Sequence[str]], kind: Optional[str] = None) -> "Dataset":
        """Same samples with other group ids (e.g. patients, or near-duplicate clusters); ``kind`` says what a
        group is (``group_kind``)."""
        return self._evolve(groups=groups, group_kind=kind)

    def without_masks(self) -> "Dataset":
        """Same samples without their masks (whole images for every feature); the ROI must not need them.

        The content hashes are recomputed: a sample's hash covers its mask, so
        rows computed with masks are never served for the maskless samples.
        """
        if self.roi in ("mask", "mias"):
            raise self._fail(f"roi={self.roi!r} (--roi {self.roi}) crops to the masks, which no masks "
                             "(--no-masks) leaves unread: choose one of them")
        fields = self._fields()
        fields["masks"] = None
        return Dataset(**fields)

    def reading(self) -> Optional[dict]:
        """What turned DICOM and volume files into [0, 1], for the provenance (None when the data hold none).

        ``{"window": the window choice, "samples": how many samples (planes of
        volumes, frames, single files) were read through it, "dicom": [each
        distinct reading rule of the DICOM samples (modality LUT, window or VOI
        LUT, inversion, bits) with its count "n"]}``. Reads DICOM
        headers only; the same reading is part of every sample's content hash.
        """
        from featurekit.imageio import DICOM_EXTENSIONS, image_suffix, reading_key

        paths = getattr(self._images, "paths", None)
        if paths is None:
            return None
        window, planes = self._images.window, self._images.planes
        special = [i for i, path in enumerate(paths) if reading_key(path, window, planes[i])]
        if not special:
            return None
        from featurekit.data.dicom import describe_reading
        from featurekit.data.window import Window

        rules: Counter = Counter()
        for i in special:
            if image_suffix(paths[i]) in DICOM_EXTENSIONS:
                rule = describe_reading(paths[i], window, planes[i])
                rule.pop("frame", None)
                rules[tuple(sorted(rule.items()))] += 1
        return {"window": Window.parse(window).name, "samples": len(special),
                "dicom": [{**dict(rule), "n": n} for rule, n in rules.most_common()]}

    def check_mask_regions(self) -> None:
        """Refuse, for handcrafted features, a dataset where some images have a lesion mask and others none.

        A handcrafted family describes the masked region of an image, or the
        whole image when its mask is empty. When whether an image has a lesion
        mask goes with its class (BUSI's normal images, MIAS's normal films),
        the features would describe the lesion in some classes and the whole
        image in others: a difference that tells the classes apart by itself.
        Such data are a :class:`DataError` that says what to choose: no masks
        (``--no-masks``, :meth:`without_masks`) or classes that all have masks.
        With ``roi='mask'`` every mask must be non-empty anyway (an error when
        decoded), so nothing is read here; otherwise the mask files are decoded
        (not the images).
        """
        if self.roi == "mask":
            return
        presence = self.mask_presence()
        if presence is None or presence.all() or not presence.any():
            return
        per_class = self.count_by_class(~presence)
        example = self.image_path(int(np.flatnonzero(~presence)[0]))
        counts = f"; without a mask, per class: {per_class}" if per_class else ""
        raise DataError(
            f"{self.source or self.name}: {int((~presence).sum())} of {len(presence)} images have no lesion mask "
            f"(e.g. {example}{counts}) and the others have one. Handcrafted features describe the masked region, "
            "or the whole image when there is no mask, so they would describe different regions in different "
            "images (and classes): a difference that can tell the classes apart by itself. Use --no-masks "
            "(Dataset.without_masks() in scripts: whole images for every image), or classes whose images all "
            "have masks.")

    def count_by_class(self, flags: np.ndarray) -> str:
        """``"benign: 1 of 63, malignant: 3 of 52"``: how many flagged samples each class has ('' unlabelled)."""
        labels = np.asarray(self.labels)
        return ", ".join(f"{self.class_names[c]}: {int(np.sum(flags & (labels == c)))} of {int(np.sum(labels == c))}"
                         for c in np.unique(labels[labels >= 0]))

    def mask_presence(self) -> Optional[np.ndarray]:
        """Per sample, whether it has a non-empty mask (None when the dataset has no masks).

        Decodes every mask file once, no image (a normal image of BUSI has an
        empty mask file; a normal MIAS film has no circle); subsets and other
        modifiers keep the answer, as they keep the content hashes.
        """
        if self._masks is None:
            return None
        if self._presence is None:
            self._presence = _readonly(np.array([self._masks.has(i) and self._masks.nonempty(i)
                                                 for i in range(len(self))], dtype=bool))
        return self._presence

    def with_roi(self, roi: str, margin: float = 0.1) -> "Dataset":
        """Same samples with another region of interest (see the class docstring)."""
        self._validate_roi(roi, float(margin))
        return self._evolve(roi=roi, roi_margin=float(margin))

    # ------------------------------------------------------------------ summaries
    def describe(self) -> dict:
        """Summary: ``name, n, classes, counts, unlabelled, positive, roi, roi_margin,
        masks, groups`` (number of distinct groups or None), ``splits`` (counts or
        None), ``source``, ``skipped`` (count)."""
        counts = np.bincount(self.labels[self.labels >= 0], minlength=len(self.class_names))
        return {
            "name": self.name,
            "n": len(self),
            "classes": list(self.class_names),
            "counts": {c: int(k) for c, k in zip(self.class_names, counts)},
            "unlabelled": int(np.sum(self.labels < 0)),
            "positive": self.positive,
            "roi": self.roi,
            "roi_margin": self.roi_margin,
            "masks": self.has_masks,
            "groups": None if self.groups is None else int(len(np.unique(self.groups))),
            "splits": None if self.split is None else {s: int(np.sum(self.split == s)) for s in SPLITS},
            "source": self.source,
            "skipped": len(self.skipped),
        }

    def sample_hash(self, i) -> str:
        """SHA-256 hex digest of what the features of sample ``i`` are computed from.

        Hashed, length-prefixed: a format version; ``roi`` and ``roi_margin``;
        the raw bytes of the image *file* (or the image array's dtype, shape and
        bytes); every mask file (or mask array, or circle coordinates), or a
        "no mask" marker. The id and label are not hashed: the feature cache
        keys its rows by (id, content hash), so a row is reused exactly when
        the same image, mask and ROI come back under the same id. Memoised per
        instance (each file is read once, shared with :meth:`fingerprint`);
        subsets and class selections keep the hashes they have.

        Raises
        ------
        DataError
            The image or a mask file cannot be read (the message names it).
        """
        j = self._index(i)
        digest = self._hashes[j]
        if digest is None:
            h = self._hasher()
            self._images.hash_into(j, h)
            if self._masks is None:
                feed(h, b"nomask")
            else:
                self._masks.hash_into(j, h)
            digest = self._hashes[j] = h.hexdigest()
        return digest

    def _hasher(self):
        """A sha256 fed with what every sample hash starts with: the format version, ``roi`` and ``roi_margin``."""
        h = hashlib.sha256()
        feed(h, _SAMPLE_HASH_VERSION)
        feed(h, f"{self.roi}|{self.roi_margin!r}".encode())
        return h

    def sample_hashes(self) -> list[str]:
        """:meth:`sample_hash` of every sample, in dataset order."""
        return [self.sample_hash(i) for i in range(len(self))]

    def fingerprint(self) -> str:
        """SHA-256 hex digest identifying exactly what features would be computed from.

        Hashed, in order and length-prefixed: a format version; the ids; the
        labels (int64); the class names; ``roi`` and ``roi_margin``; then the
        :meth:`sample_hash` of every sample (its image and mask bytes). Not
        hashed: ``name``, ``source`` (moving the data keeps the fingerprint),
        ``positive``, ``groups``, ``split`` and ``meta``. Re-encoding a file
        with identical pixels changes the fingerprint. Computed once (it reads
        every file, once, through the per-sample hashes) and memoised on this
        instance; derived datasets compute their own from the hashes they keep.
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            feed(h, _FINGERPRINT_VERSION)
            # surrogateescape: an id or class name made from a file name that is not UTF-8 hashes as its bytes
            feed(h, "\x00".join(self._ids).encode("utf-8", "surrogateescape"))
            feed(h, self.labels.astype("<i8").tobytes())
            feed(h, "\x00".join(self.class_names).encode("utf-8", "surrogateescape"))
            feed(h, f"{self.roi}|{self.roi_margin!r}".encode())
            feed(h, "".join(self.sample_hashes()).encode("ascii"))
            self._fingerprint = h.hexdigest()
        return self._fingerprint


def apply_options(ds: Dataset, classes: Optional[ClassSpec] = None, positive: Optional[str] = None,
                  roi: str = "none", roi_margin: float = 0.1) -> Dataset:
    """Apply the options every loader shares: class selection, positive class, ROI."""
    if classes is not None:
        ds = ds.select_classes(classes, positive=positive)
    elif positive is not None:
        ds = ds.with_positive(positive)
    if roi != ds.roi or float(roi_margin) != ds.roi_margin:
        ds = ds.with_roi(roi, roi_margin)
    return ds
