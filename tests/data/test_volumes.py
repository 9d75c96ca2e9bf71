"""Volumes read as 2-D samples: NIfTI with mask volumes, DICOM series folders, slice policies, grouped CV."""

import sys

import nibabel as nib
import numpy as np
import pytest

from featurekit.data import load_dataset
from featurekit.data.slices import SlicePolicy
from featurekit.errors import DataError
from featurekit.evaluation.results.crossval import plan_folds
from featurekit.imageio import read_image, read_mask

RNG = np.random.default_rng(0)
SHAPE = (9, 8, 6)  # 6 slices along the third axis


def write_nifti(path, arr, cal=None):
    img = nib.Nifti1Image(arr, np.eye(4))
    if cal is not None:
        img.header["cal_min"], img.header["cal_max"] = cal
    nib.save(img, str(path))
    return path


def mask_volume(slices_and_sizes):
    """A mask volume with a square of side ``size`` in each listed slice."""
    m = np.zeros(SHAPE, dtype=np.uint8)
    for k, size in slices_and_sizes.items():
        m[1:1 + size, 1:1 + size, k] = 1
    return m


#: per class: (volume name, {slice: mask square side}); the largest mask is in the slice noted
CASES = {
    "benign": [("b1", {1: 2, 2: 4, 3: 3}), ("b2", {4: 5})],
    "malignant": [("m1", {0: 1, 5: 2}), ("m2", {2: 3, 3: 6}), ("m3", {1: 4, 2: 4})],
}


@pytest.fixture
def nifti_root(tmp_path):
    volumes = {}
    for cls, cases in CASES.items():
        (tmp_path / cls).mkdir()
        for name, masked in cases:
            vol = RNG.normal(100, 30, SHAPE).astype(np.float32)
            write_nifti(tmp_path / cls / f"{name}.nii.gz", vol)
            write_nifti(tmp_path / cls / f"{name}_mask.nii.gz", mask_volume(masked))
            volumes[f"{cls}/{name}"] = vol
    return tmp_path, volumes


def _minmax(vol, k):
    return (vol[:, :, k] - vol.min()) / (vol.max() - vol.min())


def test_each_slice_policy_picks_its_slices(nifti_root):
    root, volumes = nifti_root
    expected = {
        "index:2": {vid: [2] for vid in volumes},
        "middle": {vid: [SHAPE[2] // 2] for vid in volumes},
        "max-mask": {"benign/b1": [2], "benign/b2": [4], "malignant/m1": [5], "malignant/m2": [3],
                     "malignant/m3": [1]},  # m3: a tie, the first slice
        "all-masked": {f"{cls}/{name}": sorted(masked) for cls, cases in CASES.items() for name, masked in cases},
    }
    for policy, planes in expected.items():
        ds = load_dataset(root, slices=policy, window="minmax")
        many = SlicePolicy.parse(policy).many
        want = [(vid, k) for vid, ks in planes.items() for k in ks]
        assert ds.ids == [f"{vid}#{k}" if many else vid for vid, k in want], policy
        for i, (vid, k) in enumerate(want):
            sample = ds[i]
            np.testing.assert_allclose(sample.image, _minmax(volumes[vid], k), atol=1e-6)
            cls, name = vid.split("/")
            masked = dict(dict(CASES[cls])[name])
            assert sample.mask.sum() == masked.get(k, 0) ** 2
            assert ds.class_names[sample.label] == cls


def test_grouped_cv_never_splits_a_volume(nifti_root):
    root, _ = nifti_root
    ds = load_dataset(root, slices="all-masked", window="minmax", positive="malignant")
    volume = [i.split("#")[0] for i in ds.ids]
    np.testing.assert_array_equal(ds.groups, volume)
    plan = plan_folds("2", ds.labels, ds.groups)
    assert plan.grouped
    for fold in plan.folds:
        train = {volume[j] for j in fold.train_idx}
        assert not train & {volume[j] for j in fold.test_idx}


def test_a_volume_needs_a_policy_and_a_window(nifti_root):
    root, _ = nifti_root
    with pytest.raises(DataError, match=r"b1\.nii\.gz.*--slices"):
        load_dataset(root)
    ds = load_dataset(root, slices="middle")  # float MRI signal: nothing says what is black
    with pytest.raises(DataError, match=r"b1\.nii\.gz.*declare no display range.*--window"):
        ds.image(0)
    with pytest.raises(DataError, match="index:7.*6 planes"):
        load_dataset(root, slices="index:7")
    with pytest.raises(DataError, match="slice policy 'top'"):
        load_dataset(root, slices="top")


def test_mask_policy_needs_a_mask_with_something_in_it(tmp_path):
    (tmp_path / "c").mkdir()
    write_nifti(tmp_path / "c" / "v.nii.gz", RNG.normal(size=SHAPE).astype(np.float32))
    with pytest.raises(DataError, match=r"v\.nii\.gz.*needs a mask volume"):
        load_dataset(tmp_path, slices="max-mask")
    write_nifti(tmp_path / "c" / "v_mask.nii.gz", np.zeros(SHAPE, np.uint8))
    with pytest.raises(DataError, match="mask is empty in every plane"):
        load_dataset(tmp_path, slices="all-masked")


def test_nifti_windows(tmp_path):
    ct = RNG.integers(-1024, 2000, SHAPE).astype(np.int16)
    p = write_nifti(tmp_path / "ct.nii.gz", ct)
    expected = np.clip((ct[:, :, 3] - (40 - 0.5)) / (400 - 1) + 0.5, 0, 1)  # DICOM LINEAR, 40/400
    np.testing.assert_allclose(read_image(p, window="soft-tissue", plane=3), expected, atol=1e-6)
    shown = write_nifti(tmp_path / "cal.nii.gz", ct, cal=(-100.0, 300.0))
    np.testing.assert_allclose(read_image(shown, plane=1), np.clip((ct[:, :, 1] + 100) / 400.0, 0, 1), atol=1e-6)
    u8 = write_nifti(tmp_path / "u8.nii.gz", RNG.integers(0, 256, SHAPE).astype(np.uint8))
    np.testing.assert_allclose(read_image(u8, plane=0), np.asanyarray(nib.load(str(u8)).dataobj)[:, :, 0] / 255.0,
                               atol=1e-6)
    np.testing.assert_array_equal(read_mask(write_nifti(tmp_path / "m.nii.gz", mask_volume({2: 3})), plane=2),
                                  mask_volume({2: 3})[:, :, 2] != 0)


def test_two_slices_of_one_volume_have_different_content_hashes(nifti_root):
    root, _ = nifti_root
    ds = load_dataset(root, slices="all", window="minmax")
    assert len(set(ds.sample_hashes())) == len(ds)
    assert load_dataset(root, slices="all", window="0,100").sample_hash(0) != ds.sample_hash(0)


def test_nifti_without_nibabel_says_install(tmp_path, monkeypatch):
    p = write_nifti(tmp_path / "v.nii", RNG.normal(size=SHAPE).astype(np.float32))
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(DataError, match=r"v\.nii.*featurekit\[nifti\]"):
        read_image(p, window="minmax", plane=0)


# --------------------------------------------------------------------------- DICOM series
def _write_series(folder, volume, order):
    """One DICOM file per slice; file names in ``order`` so that name order is not slice order."""
    import pydicom
    from test_dicom import write_dicom

    folder.mkdir(parents=True)
    for name_index, k in enumerate(order):
        p = write_dicom(folder / f"img{name_index:02d}.dcm", volume[k], bits_stored=12)
        ds = pydicom.dcmread(str(p))
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, -20 + 2.5 * k]  # position along the normal: slice k
        ds.save_as(str(p))


def test_dicom_series_folder_is_a_volume_in_slice_order(tmp_path):
    vol = RNG.integers(0, 4096, (5, 6, 7), dtype=np.uint16)  # (slices, H, W)
    mask = np.zeros((5, 6, 7), dtype=np.uint16)
    mask[3, 1:4, 1:4] = 1
    _write_series(tmp_path / "c" / "case1", vol, [3, 0, 4, 1, 2])
    _write_series(tmp_path / "c" / "case1_mask", mask, [0, 1, 2, 3, 4])
    ds = load_dataset(tmp_path, slices="all")
    assert ds.ids == [f"c/case1#{k}" for k in range(5)]
    for k in range(5):
        np.testing.assert_allclose(ds.image(k), vol[k] / 4095.0, rtol=1e-6)
    best = load_dataset(tmp_path, slices="max-mask")
    assert best.ids == ["c/case1"]
    np.testing.assert_allclose(best.image(0), vol[3] / 4095.0, rtol=1e-6)
    assert best.mask(0).sum() == 9


def test_csv_manifest_of_volumes_keeps_its_patient_groups(nifti_root):
    root, volumes = nifti_root
    rows = ["path,label,mask,group"]
    for vid in volumes:
        cls, name = vid.split("/")
        rows.append(f"{vid}.nii.gz,{cls},{vid}_mask.nii.gz,patient-{name[0]}")  # b* and m* are two patients
    (root / "list.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(root / "list.csv", slices="all-masked", window="minmax")
    assert len(ds) == sum(len(masked) for cases in CASES.values() for _, masked in cases)
    assert sorted(set(ds.groups)) == ["patient-b", "patient-m"]
    assert all(g == f"patient-{i.split('/')[1][0]}" for i, g in zip(ds.ids, ds.groups, strict=True))


def test_a_scaled_nifti_declares_no_range_and_names_its_scaling(tmp_path):
    """nibabel moves scl_slope / scl_inter from the header to the data proxy when it loads a file; a
    scaled uint16 volume's values are not 0..65535 any more, so 'auto' must not divide them by 65535."""
    raw = np.full(SHAPE, 40000, dtype=np.uint16)
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(2.0, -100.0)
    nib.save(img, str(tmp_path / "s.nii.gz"))
    with pytest.raises(DataError, match=r"s\.nii\.gz.*uint16 \(scl_slope 2\.0, scl_inter -100\.0\).*--window"):
        read_image(tmp_path / "s.nii.gz", plane=3)
    explicit = read_image(tmp_path / "s.nii.gz", window="80000,40000", plane=3)  # centre, width of the scaled
    np.testing.assert_allclose(explicit, np.clip((79900 - (80000 - 0.5)) / (40000 - 1) + 0.5, 0, 1), atol=1e-6)
    plain = write_nifti(tmp_path / "p.nii.gz", raw)  # unscaled: the dtype's range
    np.testing.assert_allclose(read_image(plain, plane=3), 40000 / 65535, atol=1e-6)
