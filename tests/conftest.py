"""Shared test fixtures.

Real data lives in ``shared/`` beside the repository (``../shared`` from the
repo root); ``FEATUREKIT_SHARED`` points elsewhere when it is mounted
somewhere else. A missing folder fails the test rather than skipping it: a
skipped test is not coverage.
"""

import os
from pathlib import Path

# One BLAS / OpenMP thread per test process: the suite runs as two xdist workers on two
# cores, often beside other work. More threads than free cores make every small BLAS
# call spin and wait (a 4-feature logistic regression took 70 ms instead of 3 ms on a
# busy machine). Set before numpy or torch load their thread pools; subprocesses inherit it.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    return Path(os.environ.get("FEATUREKIT_SHARED", REPO_ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    root = shared_root()
    if not (root / "data").is_dir():
        pytest.fail(f"shared data folder not found at {root}; set FEATUREKIT_SHARED")
    return root


@pytest.fixture(scope="session")
def busi_dir(shared) -> Path:
    return shared / "data" / "busi"


@pytest.fixture(scope="session")
def mias_dir(shared) -> Path:
    return shared / "data" / "mini_mias"


@pytest.fixture(scope="session")
def torch_home(shared) -> Path:
    return shared / "torch"


def random_dataset(n: int = 12, size: int = 48, seed: int = 0, name: str = "random"):
    """A small in-memory dataset of random uint8 images (two classes, alternating)."""
    import numpy as np

    from featurekit.data.dataset import Dataset
    from featurekit.data.sources import ArrayImages

    rng = np.random.default_rng(seed)
    images = [(rng.random((size, size + 8)) * 255).astype(np.uint8) for _ in range(n)]
    return Dataset([f"img{i:03d}" for i in range(n)], np.arange(n) % 2, ["benign", "malignant"],
                   ArrayImages([np.stack(images)]), positive="malignant", name=name, source=f"memory:{name}")


@pytest.fixture
def tiny_dataset():
    return random_dataset()


def copy_busi(busi_dir: Path, dest: Path, per_class: dict) -> Path:
    """A BUSI-layout folder with the given image numbers per class (masks included, names kept)."""
    import shutil

    for cls, numbers in per_class.items():
        (dest / cls).mkdir(parents=True, exist_ok=True)
        for k in numbers:
            for f in busi_dir.joinpath(cls).glob(f"{cls} ({k})*.png"):
                shutil.copy(f, dest / cls / f.name)
    return dest


@pytest.fixture(scope="module")
def busi_copy20(busi_dir, tmp_path_factory) -> Path:
    """10 benign + 10 malignant BUSI images with masks (a module-wide copy)."""
    return copy_busi(busi_dir, tmp_path_factory.mktemp("busi_copy20"),
                     {"benign": range(1, 11), "malignant": range(1, 11)})


def write_medmnist(path, n=(24, 8, 8), size=28, seed=0, classes=2):
    """A MedMNIST-layout npz (``train/val/test_images`` (N, size, size) uint8, ``_labels`` (N, 1)):
    class k has a disc of brightness ~k in noise. ``n=(546, 78, 156)`` is BreastMNIST's shape."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    arrays = {}
    for split, m in zip(("train", "val", "test"), n):
        labels = np.arange(m) % classes
        images = []
        for lab in labels:
            img = rng.normal(80, 25, (size, size))
            cx, cy = rng.uniform(size * 0.35, size * 0.65, 2)
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < (size / 5) ** 2] += 70 * lab
            images.append(np.clip(img, 0, 255).astype(np.uint8))
        arrays[f"{split}_images"] = np.stack(images)
        arrays[f"{split}_labels"] = labels[:, None].astype(np.uint8)
    np.savez(path, **arrays)
    return path
