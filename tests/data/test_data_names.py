"""File names a folder dataset must take as they are, and masks that cannot give a region of interest."""

import json
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from featurekit.cli import main
from featurekit.data import load_folder
from featurekit.errors import DataError

#: a file name whose bytes are not UTF-8 (Latin-1 'é'), as Python sees it: a lone surrogate
LATIN1 = os.fsdecode(b"caf\xe9")


def _png(path, size=32, box=None, value=200, seed=0):
    """A grey image, or (with ``box``) a mask whose ``box`` (r0, r1, c0, c1) is set."""
    if box is None:
        arr = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    else:
        arr = np.zeros((size, size), np.uint8)
        r0, r1, c0, c1 = box
        arr[r0:r1, c0:c1] = value
    Image.fromarray(arr).save(path, format="PNG")


@pytest.fixture
def odd_names(tmp_path):
    root = tmp_path / "odd"
    for cls, stems in (("a", ["x\ny", LATIN1]), ("b", ["plain", "two\nlines\n"])):
        (root / cls).mkdir(parents=True)
        for k, stem in enumerate(stems):
            _png(root / cls / f"{stem}.png", seed=k)
            _png(root / cls / f"{stem}_mask.png", box=(4 + k, 20, 6, 18 + k))
    return root


def test_masks_pair_with_images_whatever_the_file_names(odd_names):
    ds = load_folder(odd_names)
    assert sorted(ds.ids) == sorted(["a/x\ny", "a/caf\\xe9", "b/plain", "b/two\nlines\n"])
    for i in range(len(ds)):  # every image has its own mask, and no mask was taken for an image
        mask = ds.mask(i)
        assert mask is not None and mask.any() and not mask.all(), ds.ids[i]
    json.dumps(ds.ids).encode("utf-8")  # ids are text anywhere (JSON, CSV, HDF5)
    fp = ds.fingerprint()
    assert len(fp) == 64 and load_folder(odd_names).fingerprint() == fp
    cropped = load_folder(odd_names, roi="mask", roi_margin=0.0)
    i = cropped.ids.index("a/caf\\xe9")
    assert cropped.image(i).shape == (15, 13)  # the box of its own mask (rows 5-19, columns 6-18)


def test_extract_of_oddly_named_files_runs(odd_names, tmp_path, capsys):
    cache = tmp_path / "odd.h5"
    assert main(["extract", str(odd_names), "--roi", "mask", "--handcrafted", "glcm", "--cache", str(cache),
                 "--quiet"]) == 0
    assert cache.is_file()


def test_an_empty_mask_with_roi_mask_is_an_error_naming_the_image(tmp_path, capsys):
    root = tmp_path / "data"
    for cls in ("benign", "normal"):
        (root / cls).mkdir(parents=True)
    _png(root / "benign" / "b1.png")
    _png(root / "benign" / "b1_mask.png", box=(2, 10, 2, 10))
    _png(root / "normal" / "n1.png")
    _png(root / "normal" / "n1_mask.png", box=(0, 0, 0, 0))  # nothing set: no lesion
    ds = load_folder(root, roi="mask")
    assert ds.image(ds.ids.index("benign/b1")).shape == (10, 10)
    with pytest.raises(DataError, match=r"n1\.png: roi='mask' but its mask is empty"):
        ds.image(ds.ids.index("normal/n1"))
    assert main(["extract", str(root), "--roi", "mask", "--handcrafted", "glcm",
                 "--cache", str(tmp_path / "c.h5"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "n1.png: roi='mask' but its mask is empty" in err and "Traceback" not in err
    assert load_folder(root, classes=["benign"], roi="mask").image(0).shape == (10, 10)


def test_roi_mias_says_which_films_stay_whole(mias_dir):
    from featurekit.data.spec import DataSpec

    kept = r"roi='mias' keeps 4 of 115 films whole .*benign: 1 of 63, malignant: 3 of 52"
    with pytest.warns(UserWarning, match=kept):
        ds = DataSpec(str(mias_dir), classes="benign,malignant", positive="malignant", roi="mias").load()
    assert len(ds) == 115
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the whole films without a roi: nothing to say
        DataSpec(str(mias_dir), classes="benign,malignant", positive="malignant").load()


def test_a_folder_of_images_without_class_folders_is_one_unlabelled_set(tmp_path, capsys):
    for name in ("b.png", "a (2).png", "a (10).png"):
        Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / name)
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / "a (2)_mask.png")
    ds = load_folder(tmp_path)
    assert ds.ids == ["a (2)", "a (10)", "b"] and (ds.labels == -1).all() and ds.class_names == []
    assert ds.has_masks and ds.mask(0) is not None and ds.mask(2) is None
    with pytest.raises(DataError, match="no class subfolders"):
        load_folder(tmp_path, classes=["a"])
    assert main(["evaluate", str(tmp_path), "--features", "glcm", "--quiet", "--no-masks"]) == 2
    assert "no labelled image to evaluate" in capsys.readouterr().err
