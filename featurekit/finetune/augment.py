"""Training-time augmentation and the image tensors fed to training.

Images go through the model's :class:`~featurekit.models.preprocessing.Preprocessing`
*without* its final normalisation (intensities in [0, 1], resized and
cropped to ``size``), optionally once for all epochs and folds
(``cache_images``); the training view then applies the random augmentation
(torchvision.transforms.v2 on tensors) and normalises. Validation, test and
prediction views only normalise, so evaluation sees exactly what
``featurekit extract`` and ``featurekit predict`` see.

Augmentations (:data:`~featurekit.finetune.config.AUGMENTATIONS`):
``flip`` (horizontal, p=0.5), ``vflip`` (vertical, p=0.5; off by default --
ultrasound images have the probe at the top), ``rotate`` (±``rotation``
degrees), ``translate`` (±``translate`` of the size), ``brightness`` and
``contrast`` (factors in ``1 ± value``), ``crop`` (random resized crop of
``crop_scale`` of the area, aspect 3/4-4/3, back to ``size``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torchvision.transforms import v2

from featurekit.errors import DataError, FeaturekitError
from featurekit.models.preprocessing import Preprocessing


def unnormalised(pre: Preprocessing) -> Preprocessing:
    """The same resize/crop with identity normalisation (values stay in [0, 1])."""
    c = pre.channels
    return dataclasses.replace(pre, mean=(0.0,) * c, std=(1.0,) * c)


def build_augment(config, size: int) -> v2.Compose | None:
    """The random training transform of a :class:`~featurekit.finetune.config.FinetuneConfig` (or None)."""
    ops = []
    names = set(config.augment)
    if "crop" in names:
        ops.append(v2.RandomResizedCrop(size, scale=tuple(config.crop_scale), antialias=True))
    if "flip" in names:
        ops.append(v2.RandomHorizontalFlip())
    if "vflip" in names:
        ops.append(v2.RandomVerticalFlip())
    degrees = float(config.rotation) if "rotate" in names else 0.0
    translate = float(config.translate) if "translate" in names else 0.0
    if degrees or translate:
        ops.append(v2.RandomAffine(degrees=degrees, translate=(translate, translate) if translate else None,
                                   interpolation=v2.InterpolationMode.BILINEAR))
    bright = float(config.brightness) if "brightness" in names else 0.0
    contrast = float(config.contrast) if "contrast" in names else 0.0
    if bright or contrast:
        ops.append(v2.ColorJitter(brightness=bright or None, contrast=contrast or None))
    return v2.Compose(ops) if ops else None


class BaseImages:
    """Dataset rows -> un-normalised ``(C, size, size)`` tensors, optionally all decoded once.

    Parameters
    ----------
    dataset : featurekit.data.Dataset
    preprocessing : Preprocessing
        The model's preprocessing (its normalisation is applied later, by the views).
    cache : bool
        Decode every image once into memory (float16) on first use.
    progress : bool
        Progress bar while caching.
    """

    def __init__(self, dataset, preprocessing: Preprocessing, cache: bool = True, progress: bool = False):
        self.dataset = dataset
        self.preprocessing = preprocessing
        self.base = unnormalised(preprocessing)
        self.cache = bool(cache)
        self.progress = progress
        self._tensors: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def _decode(self, i: int) -> torch.Tensor:
        try:
            return self.base(self.dataset.image(int(i)))
        except FeaturekitError:
            raise
        except Exception as exc:  # a decoder error without a featurekit type
            raise DataError(f"{self.dataset.image_path(int(i))}: cannot be preprocessed ({exc})") from exc

    def materialise(self) -> "BaseImages":
        if self.cache:
            self._decoded()
        return self

    def _decoded(self) -> torch.Tensor:
        """Every image, decoded on the first call and kept (float16)."""
        if self._tensors is None:
            from tqdm.auto import tqdm

            n, c, s = len(self.dataset), self.preprocessing.channels, self.preprocessing.size
            out = torch.empty((n, c, s, s), dtype=torch.float16)
            for i in tqdm(range(n), desc="decoding images", unit="img", disable=not self.progress,
                          dynamic_ncols=True, leave=False):
                out[i] = self._decode(i).to(torch.float16)
            self._tensors = out
        return self._tensors

    def __getitem__(self, i: int) -> torch.Tensor:
        if self.cache:
            return self._decoded()[int(i)].float()
        return self._decode(i)


class View(torch.utils.data.Dataset):
    """Rows ``indices`` of a :class:`BaseImages`, with an optional random transform, normalised.

    Items are ``(x, label, row)``; ``row`` is the index into the base dataset.
    """

    def __init__(self, base: BaseImages, indices, labels, transform=None):
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform
        pre = base.preprocessing
        self.mean = torch.tensor(pre.mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(pre.std, dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        row = int(self.indices[k])
        x = self.base[row]
        if self.transform is not None:
            x = self.transform(x).clamp_(0.0, 1.0)
        return (x - self.mean) / self.std, int(self.labels[row]), row
