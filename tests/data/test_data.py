"""featurekit.data on real BUSI / mini-MIAS files and on files the tests write."""

import math
import os
import pickle
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from featurekit.data import (
    Dataset,
    detect_format,
    load_csv,
    load_dataset,
    load_folder,
    load_mias,
    load_npz,
    make_phantom,
    parse_info,
    write_phantom,
)
from featurekit.data.roi import circles_to_mask, expand_box, mask_box
from featurekit.data.sources import ArrayImages
from featurekit.errors import DataError

BUSI_PICK = {
    "benign": ["benign (1)", "benign (100)", "benign (195)", "benign (234)"],
    "malignant": ["malignant (1)", "malignant (53)", "malignant (196)"],
    "normal": ["normal (1)", "normal (2)"],
}


def _png(path, arr):
    Image.fromarray(arr).save(path)
    return path


def _mask_union(folder, stem):
    files = sorted(folder.glob(f"{stem}_mask*.png"))
    assert files, stem
    return np.logical_or.reduce([np.asarray(Image.open(f)) != 0 for f in files]), len(files)


@pytest.fixture(scope="module")
def busi_dataset(busi_dir):
    return load_folder(busi_dir)


@pytest.fixture()
def busi_copy9(busi_dir, tmp_path):
    """A copy of 9 BUSI images with all their masks, plus a stray text file."""
    root = tmp_path / "busi_copy9"
    for cls, stems in BUSI_PICK.items():
        (root / cls).mkdir(parents=True)
        for stem in stems:
            for f in (busi_dir / cls).glob(f"{stem}*.png"):
                if f.stem == stem or f.stem.startswith(stem + "_mask"):
                    shutil.copy(f, root / cls / f.name)
    (root / "benign" / "README.txt").write_text("not an image")
    return root


# --------------------------------------------------------------------------- BUSI
def test_busi_index_is_fast_and_complete(busi_dir):
    t = time.perf_counter()
    ds = load_folder(busi_dir)
    assert time.perf_counter() - t < 3.0  # no decoding at load time
    assert ds.describe()["counts"] == {"benign": 437, "malignant": 210, "normal": 133}
    assert ds.class_names == ["benign", "malignant", "normal"]
    assert ds.ids[:3] == ["benign/benign (1)", "benign/benign (2)", "benign/benign (3)"]
    assert not any("_mask" in i for i in ds.ids)
    assert ds.has_masks and ds.skipped == ()


def test_busi_mask_pairing_and_union(busi_dataset, busi_dir):
    n_files = [len(busi_dataset._masks.paths[i]) for i in range(len(busi_dataset))]
    assert sum(n > 1 for n in n_files) == 17 and sum(n_files) == 780 + 18
    for sid in ["benign/benign (100)", "benign/benign (195)", "malignant/malignant (53)"]:
        cls, stem = sid.split("/")
        i = busi_dataset.ids.index(sid)
        expected, k = _mask_union(busi_dir / cls, stem)
        assert k >= 2
        np.testing.assert_array_equal(busi_dataset.mask(i), expected)
        single = np.asarray(Image.open(busi_dir / cls / f"{stem}_mask.png")) != 0
        assert busi_dataset.mask(i).sum() > single.sum()  # the extra masks add pixels
    assert len(busi_dataset._masks.paths[busi_dataset.ids.index("benign/benign (195)")]) == 3


def test_busi_rgb_outlier_kept_rgb(busi_dataset):
    s = busi_dataset[busi_dataset.ids.index("benign/benign (234)")]
    assert s.image.ndim == 3 and s.image.shape[2] == 3 and s.image.dtype == np.uint8
    assert s.mask.shape == s.image.shape[:2] and s.label == 0
    assert busi_dataset.image(busi_dataset.ids.index("malignant/malignant (196)")).ndim == 3
    assert busi_dataset.image(busi_dataset.ids.index("benign/benign (1)")).ndim == 2


def test_busi_select_classes_positive(busi_dataset):
    bm = busi_dataset.select_classes(["benign", "malignant"], positive="malignant")
    assert len(bm) == 647 and bm.class_names == ["benign", "malignant"]
    assert bm.positive == "malignant" and bm.positive_index == 1
    assert set(np.unique(bm.labels)) == {0, 1}
    assert not any(i.startswith("normal/") for i in bm.ids)
    mb = busi_dataset.select_classes(["malignant", "benign"])
    assert mb.labels[mb.ids.index("malignant/malignant (1)")] == 0 and mb.positive is None
    merged = busi_dataset.select_classes({"abnormal": ["benign", "malignant"], "normal": "normal"}, positive="abnormal")
    assert merged.describe()["counts"] == {"abnormal": 647, "normal": 133}
    assert merged.positive_index == 0
    with pytest.raises(DataError, match="unknown class 'cancer'"):
        busi_dataset.select_classes(["benign", "cancer"])
    with pytest.raises(DataError, match="positive class 'normal'"):
        busi_dataset.select_classes(["benign", "malignant"], positive="normal")


def test_load_folder_classes_argument(busi_dir):
    ds = load_folder(busi_dir, classes=["benign", "malignant"], positive="malignant", roi="mask")
    assert len(ds) == 647 and ds.roi == "mask" and ds.positive == "malignant"
    with pytest.raises(DataError, match="no class folder for \\['tumour'\\]"):
        load_folder(busi_dir, classes=["tumour"])


def test_busi_roi_mask_geometry(busi_dataset):
    i = busi_dataset.ids.index("benign/benign (100)")
    full, mask = busi_dataset.image(i), busi_dataset.mask(i)
    r0, r1, c0, c1 = mask_box(mask)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    assert (r0, r1 - 1, c0, c1 - 1) == (rows[0], rows[-1], cols[0], cols[-1])
    h, w = r1 - r0, c1 - c0
    H, W = mask.shape
    box = (max(0, math.floor(r0 - 0.2 * h)), min(H, math.ceil(r1 + 0.2 * h)),
           max(0, math.floor(c0 - 0.2 * w)), min(W, math.ceil(c1 + 0.2 * w)))
    roi = busi_dataset.with_roi("mask", margin=0.2)
    s = roi[i]
    np.testing.assert_array_equal(s.image, full[box[0]:box[1], box[2]:box[3]])
    np.testing.assert_array_equal(s.mask, mask[box[0]:box[1], box[2]:box[3]])
    assert s.mask.sum() == mask.sum()  # whole lesion inside the crop
    np.testing.assert_array_equal(roi.image(i), s.image)
    tight = busi_dataset.with_roi("mask", margin=0.0)[i]
    m = tight.mask  # margin 0: the lesion touches all four sides
    assert m[0].any() and m[-1].any() and m[:, 0].any() and m[:, -1].any()
    assert tight.image.shape[:2] == (h, w)


def test_busi_roi_mask_empty_is_an_error_naming_the_image(busi_dataset):
    roi = busi_dataset.with_roi("mask")
    i = busi_dataset.ids.index("normal/normal (1)")
    assert not busi_dataset.mask(i).any()
    with pytest.raises(DataError, match=r"normal \(1\)\.png: roi='mask' but its mask is empty"):
        roi.image(i)


def test_busi_rgb_roi_crop_keeps_channels(busi_dataset):
    i = busi_dataset.ids.index("benign/benign (234)")
    s = busi_dataset.with_roi("mask")[i]
    assert s.image.ndim == 3 and s.image.shape[:2] == s.mask.shape


def test_skipped_and_subset(busi_copy9):
    ds = load_folder(busi_copy9)
    assert len(ds) == 9 and ds.skipped == ("benign/README.txt",)
    assert ds.ids == [f"{c}/{s}" for c, stems in BUSI_PICK.items() for s in stems]
    sub = ds.subset([5, 0])
    assert sub.ids == [ds.ids[5], ds.ids[0]]
    np.testing.assert_array_equal(sub.image(0), ds.image(5))
    assert ds.subset(ds.labels == 2).ids == ["normal/normal (1)", "normal/normal (2)"]
    with pytest.raises(ValueError, match="repeat"):
        ds.subset([1, 1])


def test_fingerprint_stable_and_sensitive(busi_copy9, tmp_path):
    a, b = load_folder(busi_copy9), load_folder(busi_copy9)
    fp = a.fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert b.fingerprint() == fp and a.fingerprint() is fp  # stable, memoised
    moved = tmp_path / "moved"
    shutil.copytree(busi_copy9, moved)
    assert load_folder(moved).fingerprint() == fp  # the folder's location is not hashed
    assert a.with_roi("mask").fingerprint() != fp
    assert a.with_roi("mask", 0.2).fingerprint() != a.with_roi("mask").fingerprint()
    assert a.subset(range(8)).fingerprint() != fp
    assert a.select_classes(["malignant", "benign", "normal"]).fingerprint() != fp

    img = moved / "malignant" / "malignant (53).png"
    data = bytearray(img.read_bytes())
    data[-20] ^= 0x01
    img.write_bytes(bytes(data))
    assert load_folder(moved).fingerprint() != fp
    mask = busi_copy9 / "benign" / "benign (100)_mask_1.png"
    mask.write_bytes(mask.read_bytes() + b"\x00")
    assert load_folder(busi_copy9).fingerprint() != fp


def test_pickle_roundtrip(busi_copy9):
    ds = load_folder(busi_copy9, roi="mask")
    fp = ds.fingerprint()
    back = pickle.loads(pickle.dumps(ds))
    assert back.ids == ds.ids and back.fingerprint() == fp and back.roi == "mask"
    np.testing.assert_array_equal(back.image(3), ds.image(3))
    np.testing.assert_array_equal(back.mask(3), ds.mask(3))
    assert len(pickle.dumps(ds)) < 20_000  # paths only, no pixels


# --------------------------------------------------------------------------- bad folders
def test_mask_size_mismatch_names_both(busi_copy9):
    folder = busi_copy9 / "benign"
    _png(folder / "benign (1)_mask.png", np.zeros((5, 7), np.uint8))
    ds = load_folder(busi_copy9)
    i = ds.ids.index("benign/benign (1)")
    with pytest.raises(DataError, match=r"benign \(1\)_mask\.png.*benign \(1\)\.png"):
        ds.mask(i)
    with pytest.raises(DataError, match=r"benign \(1\)_mask\.png"):
        ds.with_roi("mask").image(i)
    ds.image(i)  # roi 'none' never needs the mask


def test_mask_without_image(busi_copy9):
    os.remove(busi_copy9 / "malignant" / "malignant (53).png")
    with pytest.raises(DataError, match=r"malignant.*malignant \(53\)_mask"):
        load_folder(busi_copy9)


def test_empty_class_folder_and_root(tmp_path, busi_copy9):
    (busi_copy9 / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images"):
        load_folder(busi_copy9)
    assert len(load_folder(busi_copy9, classes=["benign", "normal"])) == 6  # not scanned
    one_class = load_folder(busi_copy9 / "normal")  # images, no subfolder: one unlabelled set
    assert len(one_class) == len(list((busi_copy9 / "normal").glob("normal (?).png"))) == 2
    assert (one_class.labels == -1).all()
    (tmp_path / "bare").mkdir()
    with pytest.raises(DataError, match="no class subfolders"):
        load_folder(tmp_path / "bare")
    with pytest.raises(DataError, match="not found"):
        load_folder(tmp_path / "nowhere")


def test_bad_image_file_is_error_at_read_time(busi_copy9):
    (busi_copy9 / "normal" / "normal (3).png").write_text("not a png")
    _png(busi_copy9 / "normal" / "normal (4).png", np.zeros((4, 4), np.uint8))
    p = busi_copy9 / "normal" / "normal (4).png"
    p.write_bytes(p.read_bytes()[:30])  # truncated
    ds = load_folder(busi_copy9)
    assert len(ds) == 11  # indexed; not decoded yet
    for stem in ["normal (3)", "normal (4)"]:
        with pytest.raises(DataError, match=rf"normal \({stem[-2]}\)\.png"):
            ds.image(ds.ids.index(f"normal/{stem}"))


def test_images_without_masks(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        _png(tmp_path / cls / "x.png", np.zeros((4, 4), np.uint8))
    ds = load_folder(tmp_path)
    assert not ds.has_masks and ds.mask(0) is None and ds[0].mask is None
    with pytest.raises(DataError, match="needs masks"):
        ds.with_roi("mask")
    _png(tmp_path / "a" / "x_mask.png", np.ones((4, 4), np.uint8))
    part = load_folder(tmp_path)
    assert part.mask(0).all() and part.mask(1) is None
    with pytest.raises(DataError, match=r"have no mask.*b/x"):
        part.with_roi("mask")


# --------------------------------------------------------------------------- MIAS
@pytest.fixture(scope="module")
def mias(mias_dir):
    return load_mias(mias_dir)


def test_mias_info_counts(mias_dir):
    rows = parse_info(mias_dir / "Info.txt")
    assert len(rows) == 330 and len({r.refnum for r in rows}) == 322
    sev = [r.severity for r in rows if r.abnormality != "NORM"]
    assert sev.count("B") == 69 and sev.count("M") == 54
    assert sum(r.abnormality == "NORM" for r in rows) == 207
    no_xy = sorted(r.refnum for r in rows if r.abnormality != "NORM" and r.x is None)
    assert no_xy == ["mdb059", "mdb216", "mdb233", "mdb245"]


def test_mias_films(mias):
    assert len(mias) == 322 and mias.ids[0] == "mdb001" and mias.ids[-1] == "mdb322"
    assert mias.describe()["counts"] == {"benign": 63, "malignant": 52, "normal": 207}
    assert mias.positive is None  # three classes, none named positive: the multi-class task
    c = mias._masks.circles
    assert len(c[mias.ids.index("mdb005")]) == 2 and len(c[mias.ids.index("mdb226")]) == 3
    assert mias.labels[mias.ids.index("mdb144")] == 1  # one B row + one M row -> malignant
    assert mias.meta["abnormality"][mias.ids.index("mdb144")] == "MISC"
    assert mias.meta["tissue"][mias.ids.index("mdb001")] == "G"


def test_mias_default_positive_is_for_two_classes_only(mias_dir):
    assert load_mias(mias_dir, classes=["benign", "malignant"]).positive == "malignant"
    assert load_mias(mias_dir, unit="lesion").positive == "malignant"
    assert load_mias(mias_dir, classes=["normal", "benign", "malignant"]).positive is None
    assert load_mias(mias_dir, classes=["normal", "benign"]).positive is None  # no malignant class to default to
    assert load_mias(mias_dir, positive="malignant").positive == "malignant"  # named: the one-vs-rest view


def test_mias_circle_geometry(mias):
    i = mias.ids.index("mdb005")
    img, mask = mias.image(i), mias.mask(i)
    assert img.shape == mask.shape == (512, 512)
    # row "mdb005 F CIRC B 477 133 30": cx = 238.5, cy = (1024 - 133) / 2 = 445.5, r = 15
    assert mias._masks.circles[i][0] == (238.5, 445.5, 15.0)
    assert mask[445, 238] and mask[445, 238 + 14] and not mask[445, 238 + 16]
    assert not mask[66, 238]  # where it would be without the y flip
    single = circles_to_mask([(238.5, 445.5, 15.0)], (512, 512))
    assert abs(single.sum() - math.pi * 15**2) < 0.03 * math.pi * 15**2
    assert mask.sum() > single.sum()  # second circle of the film
    assert not mias.mask(mias.ids.index("mdb003")).any()  # normal film: empty mask


def test_mias_lesions_are_where_the_circles_are(mias_dir):
    """Masses are denser than their surroundings: true at the flipped positions, not otherwise."""
    les = load_mias(mias_dir, unit="lesion")
    good, wrong = [], []
    for i in range(len(les)):
        img = les.image(i).astype(float)
        (cx, cy, r), = les._masks.circles[i]
        for out, y in ((good, cy), (wrong, 512 - cy)):
            core = circles_to_mask([(cx, y, r / 2)], img.shape)
            ring = circles_to_mask([(cx, y, 1.5 * r)], img.shape) & ~circles_to_mask([(cx, y, r)], img.shape)
            out.append(img[core].mean() - img[ring].mean())
    assert np.mean(np.array(good) > 0) > 0.85 and np.median(good) > 10
    assert np.median(wrong) < np.median(good) / 2


def test_mias_scale_detection(mias_dir, mias):
    explicit = load_mias(mias_dir, scale=0.5)
    assert explicit._masks.circles == mias._masks.circles
    doubled = load_mias(mias_dir, scale=1.0)
    assert doubled._masks.circles[0] == ((535.0, 599.0, 197.0),)  # mdb001 535 425 197


def test_mias_lesion_unit_and_groups(mias_dir, mias):
    les = load_mias(mias_dir, unit="lesion")
    assert len(les) == 119 and les.class_names == ["benign", "malignant"]
    assert les.describe()["counts"] == {"benign": 68, "malignant": 51}
    assert {"mdb005_1", "mdb005_2", "mdb226_3"} <= set(les.ids)
    assert les.labels[les.ids.index("mdb144_1")] == 0 and les.labels[les.ids.index("mdb144_2")] == 1
    assert "mdb216_1" not in les.ids  # calcification without coordinates
    g = dict(zip(les.ids, les.groups))
    assert g["mdb005_1"] == g["mdb005_2"] and g["mdb001_1"] == g["mdb002_1"] != g["mdb005_1"]
    fg = dict(zip(mias.ids, mias.groups))
    assert fg["mdb001"] == fg["mdb002"] != fg["mdb003"] == fg["mdb004"]
    assert len(set(mias.groups)) == 161 and g["mdb001_1"] == fg["mdb001"]


def test_mias_roi_square(mias_dir, mias):
    roi = mias.with_roi("mias")
    i = mias.ids.index("mdb010")  # "mdb010 F CIRC B 525 425 33": cx 262.5, cy 299.5, r 16.5
    s = roi[i]
    lo, hi = 262.5 - 16.5 - 3.3, 262.5 + 16.5 + 3.3
    side = math.ceil(hi - 1e-9) - math.floor(lo + 1e-9)
    assert s.image.shape == (side, side) == (41, 41)
    np.testing.assert_array_equal(s.image, mias.image(i)[279:320, 242:283])
    assert s.mask[20, 20] and not s.mask[0, 0]
    assert roi.image(mias.ids.index("mdb216")).shape == (512, 512)  # no coordinates: whole film
    les = load_dataset(mias_dir, unit="lesion", roi="mias", roi_margin=0.0)
    j = les.ids.index("mdb005_1")
    assert les.image(j).shape == (31, 31)  # [223.5, 253.5] rounded outwards
    with pytest.raises(DataError, match="circle"):
        load_folder(mias_dir.parent / "busi", roi="mias")


# --------------------------------------------------------------------------- npz
def _medmnist(path, rgb=False, class_names=True, sizes=(6, 3, 4)):
    rng = np.random.default_rng(1)
    arrays = {}
    for s, n in zip(("train", "val", "test"), sizes):
        shape = (n, 8, 9, 3) if rgb else (n, 8, 9)
        arrays[f"{s}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{s}_labels"] = rng.integers(0, 2, (n, 1), dtype=np.int64)
    if class_names:
        arrays["class_names"] = np.array(["benign", "malignant"])
    np.savez(path, **arrays)
    return arrays


def test_npz_all_splits(tmp_path):
    arrays = _medmnist(tmp_path / "m.npz")
    ds = load_dataset(tmp_path / "m.npz")
    assert len(ds) == 13 and ds.class_names == ["benign", "malignant"]
    assert ds.ids[:2] == ["train/0000", "train/0001"] and ds.ids[6] == "val/0000"
    assert ds.describe()["splits"] == {"train": 6, "val": 3, "test": 4}
    np.testing.assert_array_equal(ds.image(7), arrays["val_images"][1])
    np.testing.assert_array_equal(ds.labels, np.concatenate(
        [arrays[f"{s}_labels"][:, 0] for s in ("train", "val", "test")]))
    assert ds.mask(0) is None
    test = load_npz(tmp_path / "m.npz", split="test", positive="malignant")
    assert test.ids == ["test/0000", "test/0001", "test/0002", "test/0003"]
    assert set(test.split) == {"test"} and test.positive_index == 1
    img = ds.image(0)
    img[:] = 0  # a copy: the dataset is not modified
    assert ds.image(0).any()


def test_npz_rgb_default_names_and_fingerprint(tmp_path):
    arrays = _medmnist(tmp_path / "rgb.npz", rgb=True, class_names=False)
    ds = load_npz(tmp_path / "rgb.npz")
    assert ds.class_names == ["0", "1"] and ds.image(0).shape == (8, 9, 3)
    fp = ds.fingerprint()
    assert load_npz(tmp_path / "rgb.npz").fingerprint() == fp
    arrays["test_images"][3, 0, 0, 0] ^= 1
    np.savez(tmp_path / "rgb.npz", **arrays)
    assert load_npz(tmp_path / "rgb.npz").fingerprint() != fp


def test_npz_errors(tmp_path):
    _medmnist(tmp_path / "m.npz")
    with pytest.raises(DataError, match="m.npz.*'extra'"):
        load_npz(tmp_path / "m.npz", split="extra")
    np.savez(tmp_path / "partial.npz", train_images=np.zeros((2, 4, 4), np.uint8),
             train_labels=np.zeros(2, np.int64))
    with pytest.raises(DataError, match=r"partial.npz: split\(s\) \['test'\] not in file"):
        load_npz(tmp_path / "partial.npz", split="test")
    np.savez(tmp_path / "multi.npz", train_images=np.zeros((2, 4, 4), np.uint8),
             train_labels=np.zeros((2, 3), np.int64))
    with pytest.raises(DataError, match="multi.npz.*multi-label"):
        load_npz(tmp_path / "multi.npz")
    np.savez(tmp_path / "float.npz", train_images=np.zeros((2, 4, 4), np.float32),
             train_labels=np.zeros(2, np.int64))
    with pytest.raises(DataError, match="float.npz.*uint8"):
        load_npz(tmp_path / "float.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.npz"):
        load_npz(tmp_path / "junk.npz")


# --------------------------------------------------------------------------- CSV
@pytest.fixture()
def csv_dir(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    rng = np.random.default_rng(2)
    for k in range(4):
        _png(tmp_path / "img" / f"i{k}.png", rng.integers(0, 256, (10, 12), dtype=np.uint8))
    a = np.zeros((10, 12), np.uint8)
    a[1:3, 1:3] = 255
    b = np.zeros((10, 12), np.uint8)
    b[6:9, 8:11] = 255
    _png(tmp_path / "msk" / "a.png", a)
    _png(tmp_path / "msk" / "b.png", b)
    return tmp_path


def _write_csv(folder, text, name="m.csv"):
    p = folder / name
    p.write_text(text)
    return p


def test_csv_full(csv_dir):
    p = _write_csv(csv_dir, (
        "path,label,mask,group,split,notes\n"
        "img/i0.png,malignant,msk/a.png;msk/b.png,p1,train,x\n"
        "img/i1.png,benign,,p1,val,\n"
        "img/i2.png,benign,msk/b.png,p2,test,\n"
        "img/i3.png,,msk/a.png,p3,train,\n"
    ))
    ds = load_dataset(p)
    assert detect_format(p) == "csv"
    assert ds.ids == ["img/i0.png", "img/i1.png", "img/i2.png", "img/i3.png"]
    assert ds.class_names == ["benign", "malignant"] and ds.labels.tolist() == [1, 0, 0, -1]
    assert ds.groups.tolist() == ["p1", "p1", "p2", "p3"]
    assert ds.split.tolist() == ["train", "val", "test", "train"]
    union = ds.mask(0)
    assert union.sum() == 4 + 9 and union[1, 1] and union[7, 9]
    assert ds.mask(1) is None
    np.testing.assert_array_equal(ds.image(2), np.asarray(Image.open(csv_dir / "img" / "i2.png")))
    with pytest.raises(DataError, match=r"have no mask.*img/i1\.png"):
        load_csv(p, roi="mask")
    sel = load_csv(p, classes=["malignant"], positive="malignant", roi="mask", roi_margin=0.0)
    assert sel.ids == ["img/i0.png"] and sel.positive_index == 0
    s = sel[0]  # the union's box spans both squares: rows 1..8, cols 1..10
    assert s.image.shape == (8, 10) and s.mask[0, 0] and s.mask[-1, -1] and s.mask.sum() == 13
    two = load_csv(p).subset([2, 3]).with_roi("mask", 0.0)
    assert two.image(0).shape == (3, 3) and two.mask(1).all()


def test_csv_errors(csv_dir):
    p = _write_csv(csv_dir, "file,label\nimg/i0.png,a\n", "nocol.csv")
    with pytest.raises(DataError, match=r"nocol\.csv.*missing column.*'path'"):
        load_csv(p)
    p = _write_csv(csv_dir, "path,label\nimg/i0.png,a\nimg/nope.png,b\n", "nofile.csv")
    with pytest.raises(DataError, match=r"nofile\.csv, row 2 \(line 3\).*nope\.png.*not found"):
        load_csv(p)
    p = _write_csv(csv_dir, "path,label,split\nimg/i0.png,a,train\nimg/i1.png,b,holdout\n", "split.csv")
    with pytest.raises(DataError, match=r"split\.csv, row 2.*'holdout'"):
        load_csv(p)
    p = _write_csv(csv_dir, "path,label,mask\nimg/i0.png,a,msk/a.png;msk/zz.png\n", "mask.csv")
    with pytest.raises(DataError, match=r"mask\.csv, row 1.*zz\.png"):
        load_csv(p)
    p = _write_csv(csv_dir, "path,label\nimg/i0.png,a\nimg/i0.png,b\n", "dup.csv")
    with pytest.raises(DataError, match=r"dup\.csv, row 2.*duplicate id"):
        load_csv(p)
    p = _write_csv(csv_dir, "path,label\n", "empty.csv")
    with pytest.raises(DataError, match=r"empty\.csv.*no rows"):
        load_csv(p)
    p = _write_csv(csv_dir, "path,label\nimg/i0.png,c\n", "unknown.csv")
    with pytest.raises(DataError, match=r"unknown\.csv, row 1.*'c'"):
        load_csv(p, class_names=["a", "b"])


# --------------------------------------------------------------------------- Dataset validation
def _arrays_ds(**kw):
    imgs = np.zeros((3, 4, 4), np.uint8)
    base = dict(ids=["a", "b", "c"], labels=[0, 1, 0], class_names=["x", "y"], images=ArrayImages([imgs]))
    base.update(kw)
    return Dataset(**base)


def test_dataset_validation():
    ds = _arrays_ds(groups=[1, 1, 2], split=["train", "val", "test"])
    assert ds.groups.tolist() == ["1", "1", "2"] and ds.positive_index is None
    assert ds.describe()["groups"] == 2
    with pytest.raises(DataError, match="unique"):
        _arrays_ds(ids=["a", "a", "c"])
    with pytest.raises(DataError, match="labels must be in -1..1"):
        _arrays_ds(labels=[0, 2, 0])
    with pytest.raises(DataError, match="positive class 'z'"):
        _arrays_ds(positive="z")
    with pytest.raises(DataError, match="split values"):
        _arrays_ds(split=["train", "dev", "test"])
    with pytest.raises(DataError, match="3 samples"):
        _arrays_ds(groups=["g"])
    with pytest.raises(DataError, match="roi must be one of"):
        _arrays_ds(roi="box")
    with pytest.raises(DataError, match="roi_margin"):
        _arrays_ds().with_roi("none", -0.1)
    with pytest.raises(IndexError):
        _arrays_ds().image(3)
    assert _arrays_ds(labels=[0, -1, 1]).select_classes(["y", "x"]).ids == ["a", "c"]
    with pytest.raises(ValueError, match="read-only"):
        _arrays_ds().labels[0] = 1


def test_from_arrays():
    imgs = np.arange(2 * 5 * 6, dtype=np.uint8).reshape(2, 5, 6)
    masks = np.zeros((2, 5, 6), bool)
    masks[1, 2:4, 1:3] = True
    ds = Dataset.from_arrays(imgs, [0, 1], ["neg", "pos"], masks=masks, positive="pos", roi="mask", roi_margin=0)
    assert ds.ids == ["0000", "0001"] and ds.positive_index == 1
    with pytest.raises(DataError, match=r"\[0\]: roi='mask' but its mask is empty"):
        ds.image(0)  # an empty mask has no region of interest
    np.testing.assert_array_equal(ds.image(1), imgs[1, 2:4, 1:3])
    with pytest.raises(DataError, match=r"masks\[0\] is 3x3.*images\[0\] is 5x6"):
        Dataset.from_arrays(imgs, [0, 1], masks=np.zeros((2, 3, 3))).mask(0)


def test_expand_box_rule():
    assert expand_box((10, 20, 10, 40), 0.1, (100, 100)) == (9, 21, 7, 43)
    assert expand_box((0, 30, 5, 15), 0.5, (25, 17)) == (0, 25, 0, 17)


def test_load_dataset_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="x.json: cannot tell"):
        load_dataset(tmp_path / "x.json")
    with pytest.raises(DataError, match="unknown dataset format 'hdf5'"):
        load_dataset(tmp_path, format="hdf5")


# --------------------------------------------------------------------------- phantom
def test_phantom_deterministic_and_prefix():
    a, b = make_phantom(6, 64, seed=3), make_phantom(6, 64, seed=3)
    assert a.fingerprint() == b.fingerprint()
    small = make_phantom(2, 64, seed=3)
    np.testing.assert_array_equal(small.image(1), a.image(1))
    np.testing.assert_array_equal(small.image(2), a.image(6))  # first malignant
    assert not np.array_equal(make_phantom(6, 64, seed=4).image(0), a.image(0))
    assert a.ids[0] == "benign/benign (1)" and a.ids[6] == "malignant/malignant (1)"
    assert a.positive == "malignant" and a.describe()["counts"] == {"benign": 6, "malignant": 6}
    for i in range(len(a)):
        s = a[i]
        assert s.image.dtype == np.uint8 and s.image.shape == (64, 64)
        assert 0.02 < s.mask.mean() < 0.4
        assert s.image[s.mask].mean() < s.image[~s.mask].mean()  # hypoechoic lesion


def test_phantom_separable_but_not_trivially():
    from skimage.feature import graycomatrix, graycoprops, local_binary_pattern
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = make_phantom(40, 128, seed=0)

    def feats(img):
        g = graycomatrix(img // 8, [1, 2, 4], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=32,
                         symmetric=True, normed=True)
        glcm = [graycoprops(g, p).ravel() for p in ("contrast", "homogeneity", "energy", "correlation")]
        lbp = np.histogram(local_binary_pattern(img, 8, 1, "uniform"), bins=10, range=(0, 10), density=True)[0]
        return np.concatenate(glcm + [lbp, [img.mean(), img.std()]])

    X = np.array([feats(ds.image(i)) for i in range(len(ds))])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    p = cross_val_predict(model, X, ds.labels, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                          method="predict_proba")[:, 1]
    auc = roc_auc_score(ds.labels, p)
    assert 0.7 < auc < 0.97, auc


def test_write_phantom_roundtrip_and_idempotent(tmp_path):
    root = write_phantom(tmp_path / "ph", n_per_class=3, size=48, seed=1)
    files = sorted(p for p in root.rglob("*.png"))
    assert len(files) == 12 and (root / "benign" / "benign (1)_mask.png").is_file()
    assert Image.open(root / "benign" / "benign (1)_mask.png").mode == "1"
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    data = {p: p.read_bytes() for p in files}
    write_phantom(tmp_path / "ph", n_per_class=3, size=48, seed=1)
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes
    assert {p: p.read_bytes() for p in files} == data
    disk, mem = load_folder(root), make_phantom(3, 48, seed=1)
    assert disk.ids == mem.ids and disk.labels.tolist() == mem.labels.tolist()
    assert disk.skipped == ("phantom.json",)
    for i in range(len(mem)):
        np.testing.assert_array_equal(disk.image(i), mem.image(i))
        np.testing.assert_array_equal(disk.mask(i), mem.mask(i))
    with pytest.raises(DataError, match="other parameters"):
        write_phantom(tmp_path / "ph", n_per_class=4, size=48, seed=1)


# --------------------------------------------------------------------------- bad input: one rule per class
def test_mias_coordinates_must_be_finite(tmp_path):
    for bad in ("nan 100 20", "500 inf 20", "500 100 nan", "500 100 -inf"):
        info = tmp_path / "Info.txt"
        info.write_text(f"mdb001 G CIRC B {bad}\n")
        with pytest.raises(DataError, match=r"Info\.txt, line 1: X Y RADIUS must be finite"):
            parse_info(info)


def test_npz_that_is_not_a_zip_gets_no_pickle_advice(tmp_path):
    np.save(tmp_path / "single.npy", np.zeros((2, 4, 4), np.uint8))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with open(tmp_path / "pickled.npz", "wb") as fh:
        pickle.dump({"train_images": np.zeros((2, 4, 4), np.uint8)}, fh)
    for name, what in (("single.npz", "a single .npy array"), ("pickled.npz", "not a zip archive")):
        with pytest.raises(DataError, match=rf"{name}: not a \.npz file \({what}\)") as err:
            load_npz(tmp_path / name)
        assert "allow_pickle" not in str(err.value)
    np.savez(tmp_path / "objects.npz", train_images=np.zeros((2, 4, 4), np.uint8),
             train_labels=np.array([0, [1]], dtype=object))
    with pytest.raises(DataError, match="objects.npz: array 'train_labels' holds Python objects") as err:
        load_npz(tmp_path / "objects.npz")
    assert "allow_pickle" not in str(err.value)


def test_images_too_small_to_describe_are_refused(tmp_path, csv_dir):
    # a file: named when read
    _png(csv_dir / "img" / "dot.png", np.zeros((1, 1), np.uint8))
    _png(csv_dir / "img" / "line.png", np.zeros((1, 7), np.uint8))
    ds = load_csv(_write_csv(csv_dir, "path,label\nimg/i0.png,a\nimg/dot.png,b\nimg/line.png,b\n"))
    assert ds.image(0).shape == (10, 12)
    for i, shape in ((1, "1x1"), (2, "1x7")):
        with pytest.raises(DataError, match=rf"{ds.image_path(i)}: image is {shape} pixels.*at least 2x2"):
            ds.image(i)
    # arrays: named when loaded
    np.savez(tmp_path / "tiny.npz", train_images=np.zeros((3, 1, 1), np.uint8), train_labels=np.arange(3) % 2)
    with pytest.raises(DataError, match=r"tiny\.npz:train_images: every image is 1x1"):
        load_npz(tmp_path / "tiny.npz")
    # a region of interest cropped to one pixel
    masks = np.zeros((2, 5, 6), bool)
    masks[:, 2, 3] = True
    roi = Dataset.from_arrays(np.zeros((2, 5, 6), np.uint8), [0, 1], masks=masks, roi="mask", roi_margin=0)
    with pytest.raises(DataError, match=r"images\[0\]: the mask region of interest is 1x1"):
        roi.image(0)
    assert Dataset.from_arrays(np.zeros((2, 5, 6), np.uint8), [0, 1], masks=masks, roi="mask").image(0).shape == (3, 3)


def test_csv_one_file_under_two_spellings(csv_dir):
    p = _write_csv(csv_dir, "path,label\nimg/i0.png,a\nimg/i1.png,b\n./img/i0.png,b\n", "two.csv")
    with pytest.raises(DataError, match=r"two\.csv, row 3 \(line 4\): './img/i0.png' is the same image file as "
                                        r"'img/i0.png' in row 1 \(line 2\), labelled 'a' there and 'b' here"):
        load_csv(p)
    p = _write_csv(csv_dir, "path,label\nimg/i0.png,a\nimg/../img/i0.png,a\n", "same.csv")
    with pytest.raises(DataError, match=r"same\.csv, row 2.*'img/i0.png' in row 1.*same label"):
        load_csv(p)
    os.symlink(csv_dir / "img" / "i1.png", csv_dir / "img" / "link.png")
    p = _write_csv(csv_dir, "path,label\nimg/i1.png,a\nimg/link.png,a\n", "link.csv")
    with pytest.raises(DataError, match=r"link\.csv, row 2.*same image file"):
        load_csv(p)
    # the same image with other masks is another region of interest: allowed
    p = _write_csv(csv_dir, "path,label,mask\nimg/i0.png,a,msk/a.png\n./img/i0.png,b,msk/b.png\n", "rois.csv")
    assert load_csv(p).labels.tolist() == [0, 1]


def test_csv_paths_outside_its_folder_are_allowed_with_one_warning(csv_dir, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere")
    for k in range(3):
        _png(other / f"o{k}.png", np.full((4, 4), k, np.uint8))
    sub = csv_dir / "lists"
    sub.mkdir()
    rel = os.path.relpath(other, sub)
    p = _write_csv(sub, f"path,label\n../img/i0.png,a\n{rel}/o0.png,a\n{rel}/o1.png,b\n{other}/o2.png,b\n")
    with pytest.warns(UserWarning) as caught:
        ds = load_csv(p)
    outside = [w for w in caught if "outside the manifest's folder" in str(w.message)]
    assert len(outside) == 1
    message = str(outside[0].message)
    assert "4 path(s)" in message and "row 1 '../img/i0.png'" in message and str(csv_dir / "img") in message
    assert len(ds) == 4 and ds.image(3).shape == (4, 4)
