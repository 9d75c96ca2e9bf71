"""Lesion-centred BUSI crops with their masks, as benchmarks/bench_handcrafted.py makes them.

A few images (benign and malignant, one of them RGB on disk) cropped to
``size`` x ``size`` around the lesion's centre: the radiomics families are
compared with their references on these.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featurekit.imageio import read_image, read_mask, to_gray

#: benign (2), malignant (5) and benign (234) (an RGB PNG) plus three more, both classes
NAMES = ("benign/benign (2).png", "malignant/malignant (5).png", "benign/benign (234).png",
         "malignant/malignant (12).png", "benign/benign (17).png", "malignant/malignant (40).png")


def busi_crops(busi_dir: Path, size: int = 128, names=NAMES):
    """``(images, masks)``: float64 gray crops in native units and their bool masks."""
    images, masks = [], []
    for rel in names:
        path = busi_dir / rel
        img = to_gray(read_image(path))
        mask = read_mask(str(path).replace(".png", "_mask.png"))
        rows, cols = np.nonzero(mask)
        cy, cx = int(rows.mean()), int(cols.mean())
        y0 = min(max(0, cy - size // 2), max(0, img.shape[0] - size))
        x0 = min(max(0, cx - size // 2), max(0, img.shape[1] - size))
        images.append(np.ascontiguousarray(img[y0 : y0 + size, x0 : x0 + size]))
        masks.append(np.ascontiguousarray(mask[y0 : y0 + size, x0 : x0 + size]))
    assert all(m.any() for m in masks)
    return images, masks
