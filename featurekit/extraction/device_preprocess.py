"""Preprocessing on the model's device: decode on the host, resize and normalise where the model runs.

On a GPU the CNN forward pass outruns the host: an H100 runs VGG16 at
thousands of images/s while a PNG decode alone costs milliseconds of CPU, and
:class:`~featurekit.models.preprocessing.Preprocessing` on the host adds the
float conversion, the antialiased resize and the normalisation of every
full-sized image. With ``preprocess="device"`` the DataLoader workers only
decode: each image travels as its native ``uint8`` array (``(c, H, W)``,
4x fewer bytes than float32; a batch stays a list, pinned on CUDA, as the images
differ in size), and the device stacks the same-shaped images of a batch and
runs the second half of the transform (:meth:`Preprocessing.finish`) on each
group at once.

The values are those of the host path: the same float32 operations in the same
order (``uint8 / 255`` as a true division, the same antialiased resize, crop and
normalisation), only on another device. On the CPU the two paths agree to float32
rounding (a few ulp of inputs bounded by ~2.7 after normalisation: ``|diff| <
1e-5``); on CUDA the resize kernel is CUDA's, which rounds differently at the
same level -- far below what the forward pass on that device changes anyway
(TF32 / cuDNN / autocast). So ``preprocess`` is an execution choice like
``device`` or ``num_workers``: it is not part of an entry's parameters and both
paths fill, and reuse, the same cache entries.

Images that are not ``uint8`` (16-bit, float, bool), and RGB images for a
1-channel model (``to_gray`` runs on the host), take the host half
(:meth:`Preprocessing.to_tensor`) and travel as float32 unit tensors: the same
rule, a slower path.
"""

from __future__ import annotations

import numpy as np
import torch

from featurekit.models.preprocessing import Preprocessing

__all__ = ["DeviceFeed"]


class DeviceFeed:
    """The two halves of ``preprocessing`` around the upload: called on each decoded image in the
    DataLoader workers (:meth:`__call__`), :meth:`to_device` on a batch in the main process.

    Parameters
    ----------
    preprocessing : Preprocessing
        The weights' transform; its :meth:`~Preprocessing.finish` runs on ``device``.
    device : torch.device
    """

    def __init__(self, preprocessing: Preprocessing, device):
        self.preprocessing = preprocessing
        self.device = torch.device(device)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        """A native image -> ``(c, H, W)``: ``uint8`` as it is, anything else as the host's unit floats."""
        image = np.asarray(image)
        gray_for_rgb = self.preprocessing.channels == 1 and image.ndim == 3 and image.shape[-1] != 1
        if image.dtype != np.uint8 or gray_for_rgb or image.ndim not in (2, 3):
            return self.preprocessing.to_tensor(image)
        arr = image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)
        return torch.from_numpy(np.ascontiguousarray(arr))

    @staticmethod
    def stack(images: list) -> list:
        """A batch stays a list: its images differ in size (each is pinned and uploaded as it is)."""
        return list(images)

    def to_device(self, images) -> torch.Tensor:
        """Upload a batch's images, finish the transform there: the ``(N, C, size, size)`` batch, in order.

        Images of one shape and dtype are stacked on the device and resized
        together (a fixed-size data set: one group per batch).
        """
        cuda = self.device.type == "cuda"
        pre = self.preprocessing
        groups: dict[tuple, list[int]] = {}
        for pos, x in enumerate(images):
            groups.setdefault((tuple(x.shape), x.dtype), []).append(pos)
        out = None
        for positions in groups.values():
            x = torch.stack([images[p].to(self.device, non_blocking=cuda) for p in positions])
            if x.dtype == torch.uint8:
                # a true division by a device tensor, as numpy's astype(float32) / float32(255) on the host
                # (CUDA divides by a Python scalar as a multiplication by its reciprocal: one ulp off)
                x = torch.div(x.to(torch.float32), torch.full((), 255.0, device=self.device))
            y = pre.finish(x)
            if len(groups) == 1:
                return y
            if out is None:
                out = torch.empty((len(images), *y.shape[1:]), dtype=y.dtype, device=self.device)
            out[torch.tensor(positions, device=self.device)] = y
        if out is None:  # no group: the batch is empty
            raise ValueError("to_device needs a batch of at least one image")
        return out
