"""Preprocessing bound to weights: image array -> normalised model input.

The rule every image follows (see :mod:`featurekit.imageio`): intensities are
scaled to [0, 1] by their dtype (8-bit / 255, 16-bit / 65535), a gray image is
replicated to 3 channels (RGB kept), then -- as torchvision's
``ImageClassification`` transform of the weights does -- the shorter side is
resized to ``resize`` (bilinear, antialiased), the centre ``size`` x ``size``
square is cropped, and the channels are normalised with the weights' mean and
std. ``mode="squash"`` resizes straight to ``size`` x ``size`` instead (no crop,
aspect ratio not kept), which keeps a whole ROI in view.

With ``--size S`` the weights' resize/crop ratio is kept (``resize = S * 256/224``
for most ImageNet weights). An image already ``size`` x ``size`` passes unchanged in
both modes: resizing a 28-px image to 32 and cropping the centre 28 back would
only blur it and cut its border.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from featurekit.errors import LayerError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MODES = ("crop", "squash")


@dataclass(frozen=True)
class Preprocessing:
    """Parameters of the image -> tensor transform (recorded with every feature)."""

    size: int
    resize: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    mode: str = "crop"
    interpolation: str = "bilinear"
    channels: int = 3

    def __post_init__(self):
        if self.mode not in MODES:
            raise LayerError(f"unknown resize mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.size < 8:
            raise LayerError(f"input size {self.size} is too small (at least 8 pixels)")

    @classmethod
    def from_weights(cls, transforms=None, default_size: int = 224, size: int | None = None,
                     mode: str = "crop", channels: int = 3) -> "Preprocessing":
        """Build from a torchvision weights' ``transforms()`` object (or defaults)."""
        if transforms is not None:
            crop = int(transforms.crop_size[0])
            resize = int(transforms.resize_size[0])
            mean, std = tuple(transforms.mean), tuple(transforms.std)
            interpolation = transforms.interpolation.value
        else:
            crop, resize, mean, std, interpolation = default_size, round(default_size * 256 / 224), \
                IMAGENET_MEAN, IMAGENET_STD, "bilinear"
        if size is not None and int(size) != crop:
            resize, crop = round(int(size) * resize / crop), int(size)
        if channels == 1:
            mean, std = (float(np.mean(mean)),), (float(np.mean(std)),)
        return cls(crop, resize, mean, std, mode, interpolation, channels)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        d = dict(d)
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        """Transform one native image array to a ``(C, size, size)`` float tensor."""
        return self.finish(self.to_tensor(image))

    def to_tensor(self, image: np.ndarray) -> torch.Tensor:
        """The host half: a native image -> ``(c, H, W)`` float32 in [0, 1] (gray for ``channels=1``)."""
        from featurekit.imageio import to_gray, to_unit_float

        unit = to_unit_float(image)
        if self.channels == 1 and unit.ndim == 3:
            unit = to_gray(unit)
        arr = unit[None] if unit.ndim == 2 else np.moveaxis(unit, -1, 0)
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """The geometric and intensity half, on any device: ``(..., c, H, W)`` unit floats -> the model input.

        Resize (or not), centre-crop, replicate gray to ``channels``, normalise;
        a batch of same-sized images gives the rows each image gives alone.
        """
        interpolation = TF.InterpolationMode(self.interpolation)
        if tuple(x.shape[-2:]) == (self.size, self.size):
            pass  # already at the input size: no resampling, no crop (a 28-px image stays whole at size 28)
        elif self.mode == "squash":
            x = TF.resize(x, [self.size, self.size], interpolation=interpolation, antialias=True)
        else:
            x = TF.resize(x, [self.resize], interpolation=interpolation, antialias=True)
            x = TF.center_crop(x, [self.size, self.size])
        # Gray is replicated after resizing: the same values, a third of the work.
        x = x.expand(*x.shape[:-3], self.channels, -1, -1)
        return TF.normalize(x, list(self.mean), list(self.std))
