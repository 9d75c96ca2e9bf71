"""Helpers of the cache reliability tests: small image folders, a fast extraction, a spy on computed rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featurekit.data import load_dataset
from featurekit.extraction import texture
from featurekit.extraction.pipeline import extract


def write_images(root: Path, n: int = 12, seed: int = 0, size: int = 40) -> list[Path]:
    """A class-folder tree ``root/{benign,malignant}/img NN.png`` of random 8-bit images (alternating classes)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        cls = ("benign", "malignant")[i % 2]
        path = root / cls / f"img {i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((size, size + 8)) * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def change_image(path: Path, seed: int) -> None:
    """Overwrite an image with other random pixels (same size)."""
    from PIL import Image

    h, w = np.asarray(Image.open(path)).shape
    Image.fromarray((np.random.default_rng(seed).random((h, w)) * 255).astype(np.uint8)).save(path)


def folder(root: Path):
    return load_dataset(root)


def glcm(ds, cache=None, **kw):
    """GLCM features (fast, deterministic per image) into ``cache``."""
    kw = {"batch_size": 4, "progress": False, **kw}
    return extract(ds, [], ["glcm"], cache=cache, **kw)


class RowSpy:
    """Counts the rows handcrafted featurizers are asked to compute (install with ``monkeypatch``).

    It records the batches each featurizer's session is opened for: every planned row, whether it is
    computed or fails (the one decoding pass and a featurizer's own ``run`` both open one).
    """

    def __init__(self, monkeypatch):
        self.rows: list[int] = []
        original = texture.HandcraftedFeaturizer.session

        def session(featurizer, dataset, batches, specs):
            for start, stop in batches:
                self.rows += list(range(start, stop))
            return original(featurizer, dataset, batches, specs)

        monkeypatch.setattr(texture.HandcraftedFeaturizer, "session", session)

    def reset(self) -> None:
        self.rows = []
