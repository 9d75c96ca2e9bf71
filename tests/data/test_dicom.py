"""DICOM read as the modality wrote it: files the tests write, and pydicom's own test files.

Every expected array is computed with pydicom's transforms (apply_modality_lut,
apply_voi_lut) and the DICOM-declared output ranges, never with featurekit's code.
"""

import pathlib
import sys

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from featurekit.data import load_dataset
from featurekit.data.dicom import describe_reading
from featurekit.data.window import Window
from featurekit.errors import DataError
from featurekit.imageio import image_shape, read_image, read_mask, to_model_input

RNG = np.random.default_rng(0)
PYDICOM_FILES = pathlib.Path(pydicom.__file__).parent / "data" / "test_files"


def write_dicom(path, arr, photometric="MONOCHROME2", bits_stored=None, slope=None, intercept=None,
                center=None, width=None, voi_function=None):
    """A DICOM file holding ``arr`` (``(H, W)`` or ``(frames, H, W)``) with the given attributes."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = arr.shape[-2:]
    if arr.ndim == 3:
        ds.NumberOfFrames = arr.shape[0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    bits = arr.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if arr.dtype.kind == "i" else 0
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
    if center is not None:
        ds.WindowCenter, ds.WindowWidth = center, width
    if voi_function is not None:
        ds.VOILUTFunction = voi_function
    ds.PixelData = arr.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def output_range(ds):
    """The modality LUT's output range (PS3.3 C.11.2.1.2): windowing maps onto it."""
    bits = int(ds.BitsStored)
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if ds.PixelRepresentation else (0, 2**bits - 1)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    return lo * slope + intercept, hi * slope + intercept


def pydicom_windowed(path, center=None, width=None):
    """pydicom's reading of ``path`` (with the window set on it when given), scaled to [0, 1]."""
    ds = pydicom.dcmread(str(path))
    if center is not None:
        ds.WindowCenter, ds.WindowWidth = center, width
    out = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    lo, hi = output_range(ds)
    unit = (np.asarray(out, dtype=np.float64) - lo) / (hi - lo)
    return 1 - unit if ds.PhotometricInterpretation == "MONOCHROME1" else unit


# --------------------------------------------------------------------------- stored range
def test_12_bit_is_scaled_by_its_bits_stored_not_by_65535(tmp_path):
    arr = RNG.integers(0, 4096, (16, 18), dtype=np.uint16)
    arr[0, 0] = 4095
    img = read_image(write_dicom(tmp_path / "m2.dcm", arr, bits_stored=12))
    assert img.dtype == np.float32 and img.shape == (16, 18)
    np.testing.assert_allclose(img, arr / 4095.0, rtol=1e-6)
    assert to_model_input(img).max() == pytest.approx(1.0)  # the CNN input spans [0, 1], not [0, 0.0625]
    assert image_shape(tmp_path / "m2.dcm") == (16, 18)


def test_8_bit_and_signed_stored_ranges(tmp_path):
    u8 = RNG.integers(0, 256, (8, 9), dtype=np.uint8)
    np.testing.assert_allclose(read_image(write_dicom(tmp_path / "u8.dcm", u8)), u8 / 255.0, rtol=1e-6)
    s16 = RNG.integers(-2048, 2048, (8, 9), dtype=np.int16)
    img = read_image(write_dicom(tmp_path / "s12.dcm", s16, bits_stored=12))
    np.testing.assert_allclose(img, (s16 + 2048) / 4095.0, rtol=1e-6)


def test_bits_above_bits_stored_are_read_as_pydicom_reads_them(tmp_path):
    arr = np.full((4, 4), 100, dtype=np.uint16)
    arr[1, 1] = 5000  # does not fit in 12 bits: pydicom keeps the 12 stored bits
    p = write_dicom(tmp_path / "high.dcm", arr, bits_stored=12)
    np.testing.assert_allclose(read_image(p), pydicom.dcmread(str(p)).pixel_array / 4095.0, rtol=1e-6)


# --------------------------------------------------------------------------- modality LUT and windows
def test_rescaled_hounsfield_units_without_window_are_an_error_saying_what_to_set(tmp_path):
    arr = RNG.integers(0, 4096, (8, 8), dtype=np.uint16)
    p = write_dicom(tmp_path / "ct.dcm", arr, slope="1", intercept="-1024")
    with pytest.raises(DataError, match=r"ct\.dcm.*RescaleIntercept -1024.*--window"):
        read_image(p)


@pytest.mark.parametrize("window, center, width", [("soft-tissue", 40, 400), ("lung", -600, 1500),
                                                   ("-100,350", -100, 350)])
def test_rescaled_with_a_window_reads_as_pydicom_windows(tmp_path, window, center, width):
    arr = RNG.integers(0, 4096, (12, 12), dtype=np.uint16)
    p = write_dicom(tmp_path / "ct.dcm", arr, slope="2", intercept="-1024")
    img = read_image(p, window=window)
    np.testing.assert_allclose(img, pydicom_windowed(p, center, width), atol=1e-6)
    assert 0 < img.mean() < 1


def test_range_window_maps_the_declared_range_through_the_modality_lut(tmp_path):
    arr = RNG.integers(0, 4096, (8, 8), dtype=np.uint16)
    p = write_dicom(tmp_path / "ct.dcm", arr, bits_stored=12, slope="1", intercept="-1024")
    ds = pydicom.dcmread(str(p))
    hu = apply_modality_lut(ds.pixel_array, ds)
    np.testing.assert_allclose(read_image(p, window="range"), (hu + 1024) / 4095.0, atol=1e-6)


def test_file_window_is_the_default(tmp_path):
    arr = RNG.integers(0, 4096, (10, 10), dtype=np.uint16)
    p = write_dicom(tmp_path / "mr.dcm", arr, bits_stored=12, center="1000", width="1500")
    img = read_image(p)
    np.testing.assert_allclose(img, pydicom_windowed(p), atol=1e-6)
    assert np.any(img == 0) and np.any(img == 1)  # the window clips: it is not the stored range
    np.testing.assert_array_equal(read_image(p, window="mammo"), img)


def test_sigmoid_voi_function_is_pydicoms(tmp_path):
    arr = RNG.integers(0, 4096, (10, 10), dtype=np.uint16)
    p = write_dicom(tmp_path / "s.dcm", arr, bits_stored=12, center="2000", width="800", voi_function="SIGMOID")
    np.testing.assert_allclose(read_image(p), pydicom_windowed(p), atol=1e-6)


def test_file_window_required_but_missing(tmp_path):
    p = write_dicom(tmp_path / "plain.dcm", RNG.integers(0, 4096, (4, 4), dtype=np.uint16), bits_stored=12)
    with pytest.raises(DataError, match=r"plain\.dcm.*no VOI LUT"):
        read_image(p, window="file")


def test_monochrome1_is_inverted_after_the_window(tmp_path):
    arr = RNG.integers(0, 4096, (10, 10), dtype=np.uint16)
    plain = read_image(write_dicom(tmp_path / "m1.dcm", arr, "MONOCHROME1", bits_stored=12))
    np.testing.assert_allclose(plain, 1 - arr / 4095.0, atol=1e-6)
    p = write_dicom(tmp_path / "m1w.dcm", arr, "MONOCHROME1", bits_stored=12, center="1500", width="2000")
    np.testing.assert_allclose(read_image(p), pydicom_windowed(p), atol=1e-6)


def test_pydicom_ct_and_mr_test_files():
    ct, mr = PYDICOM_FILES / "CT_small.dcm", PYDICOM_FILES / "MR_small.dcm"
    with pytest.raises(DataError, match="CT_small.dcm.*--window"):
        read_image(ct)  # Hounsfield units, no window in the file
    np.testing.assert_allclose(read_image(ct, window="soft-tissue"), pydicom_windowed(ct, 40, 400), atol=1e-6)
    np.testing.assert_allclose(read_image(mr), pydicom_windowed(mr), atol=1e-6)  # its own 600/1600 window
    assert describe_reading(ct, "soft-tissue")["intercept"] == -1024.0


def test_window_parse_rejects_nonsense():
    assert Window.parse("40,400") == Window("explicit", 40.0, 400.0, "40,400")
    assert Window.parse("mammo").kind == "file"
    for bad in ("wide", "40", "40,0", "40,nan", "a,b"):
        with pytest.raises(DataError, match="CENTER,WIDTH"):
            Window.parse(bad)


# --------------------------------------------------------------------------- frames
def test_multi_frame_needs_a_frame_and_reads_each(tmp_path):
    frames = RNG.integers(0, 4096, (3, 6, 7), dtype=np.uint16)
    p = write_dicom(tmp_path / "mf.dcm", frames, bits_stored=12)
    with pytest.raises(DataError, match=r"mf\.dcm.*3 frames.*--slices"):
        read_image(p)
    for k in range(3):
        np.testing.assert_allclose(read_image(p, plane=k), frames[k] / 4095.0, rtol=1e-6)
    with pytest.raises(DataError, match="frame 3 does not exist"):
        read_image(p, plane=3)


def test_multi_frame_samples_share_a_group(tmp_path):
    for cls, n in (("a", 2), ("b", 3)):
        (tmp_path / cls).mkdir()
        for j in range(n):
            write_dicom(tmp_path / cls / f"{cls}{j}.dcm",
                        RNG.integers(0, 4096, (n + 1, 5, 5), dtype=np.uint16), bits_stored=12)
    write_dicom(tmp_path / "a" / "single.dcm", RNG.integers(0, 4096, (5, 5), dtype=np.uint16), bits_stored=12)
    with pytest.raises(DataError, match="--slices"):
        load_dataset(tmp_path)
    ds = load_dataset(tmp_path, slices="all")
    assert len(ds) == 2 * 3 + 3 * 4 + 1
    assert ds.ids[:4] == ["a/a0#0", "a/a0#1", "a/a0#2", "a/a1#0"]
    assert "a/single" in ds.ids
    groups = dict(zip(ds.ids, ds.groups, strict=True))
    assert groups["a/a0#0"] == groups["a/a0#2"] == "a/a0" and groups["b/b2#3"] == "b/b2"
    np.testing.assert_array_equal(ds.image(1), read_image(tmp_path / "a" / "a0.dcm", plane=1))
    one = load_dataset(tmp_path, slices="index:1")
    assert "a/a0" in one.ids and len(one) == 6


# --------------------------------------------------------------------------- cache identity
def test_two_readings_never_share_content_hashes(tmp_path):
    (tmp_path / "c").mkdir()
    arr = RNG.integers(0, 4096, (6, 6), dtype=np.uint16)
    write_dicom(tmp_path / "c" / "x.dcm", arr, slope="1", intercept="-1024")
    lung = load_dataset(tmp_path, window="lung")
    bone = load_dataset(tmp_path, window="bone")
    assert lung.sample_hash(0) != bone.sample_hash(0)
    assert lung.fingerprint() != bone.fingerprint()
    assert load_dataset(tmp_path, window="-600,1500").sample_hash(0) == lung.sample_hash(0)  # same numbers
    assert not np.allclose(lung.image(0), bone.image(0))


def test_the_reading_is_recorded_in_the_evaluation_provenance(tmp_path, capsys):
    from featurekit.orchestration import evaluate_features

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(6):
            write_dicom(tmp_path / cls / f"{k}.dcm", RNG.integers(0, 4096, (16, 16), dtype=np.uint16),
                        slope="1", intercept="-1024")
    ds = load_dataset(tmp_path, window="lung", positive="b")
    reading = ds.reading()
    assert reading["samples"] == 12 and sum(r["n"] for r in reading["dicom"]) == 12
    assert {r["intercept"] for r in reading["dicom"]} == {-1024.0}
    ev = evaluate_features(ds, ["glcm"], cv="3", n_boot=0, cache=tmp_path / "c.h5", progress=False)
    assert ev.provenance["dataset"]["reading"] == reading
    # the cache records it too: an evaluation of the cache file alone says how its pixels were read
    from featurekit.cache import FeatureCache

    assert FeatureCache(tmp_path / "c.h5").meta["reading"] == reading
    assert FeatureCache(tmp_path / "c.h5").info()["reading"] == reading
    from featurekit.cli import main

    assert main(["cache", "info", str(tmp_path / "c.h5")]) == 0
    shown = capsys.readouterr().out
    assert "reading: window lung, 12 samples" in shown and "intercept -1024.0" in shown
    again = evaluate_features(tmp_path / "c.h5", ["glcm"], cv="3", n_boot=0, progress=False)
    assert again.provenance["dataset"]["reading"] == reading
    # another window: another fingerprint, and the cache file records the reading of its current data
    bone = load_dataset(tmp_path, window="bone", positive="b")
    with pytest.warns(UserWarning, match="another version of dataset"):
        evaluate_features(bone, ["glcm"], cv="3", n_boot=0, cache=tmp_path / "c.h5", progress=False)
    assert FeatureCache(tmp_path / "c.h5").meta["reading"] == bone.reading() != reading
    from PIL import Image

    (tmp_path / "png" / "a").mkdir(parents=True)
    Image.fromarray(RNG.integers(0, 256, (6, 6), dtype=np.uint8)).save(tmp_path / "png" / "a" / "x.png")
    assert load_dataset(tmp_path / "png").reading() is None


def test_window_for_data_without_dicom_is_an_error(tmp_path):
    from PIL import Image

    (tmp_path / "c").mkdir()
    Image.fromarray(RNG.integers(0, 256, (6, 6), dtype=np.uint8)).save(tmp_path / "c" / "x.png")
    with pytest.raises(DataError, match="no image is a DICOM"):
        load_dataset(tmp_path, window="lung")
    with pytest.raises(DataError, match="no image is a volume"):
        load_dataset(tmp_path, slices="middle")


# --------------------------------------------------------------------------- masks and errors
def test_dicom_mask_uses_stored_values(tmp_path):
    m = np.zeros((6, 6), dtype=np.uint8)
    m[2:4, 1:5] = 1  # a label 1: any window would call it dark
    np.testing.assert_array_equal(read_mask(write_dicom(tmp_path / "m.dcm", m)), m != 0)


def test_dicom_without_pydicom_says_install(tmp_path, monkeypatch):
    p = write_dicom(tmp_path / "x.dcm", RNG.integers(0, 256, (4, 4), dtype=np.uint8))
    monkeypatch.setitem(sys.modules, "pydicom", None)  # import now raises ImportError
    with pytest.raises(DataError, match=r"x\.dcm.*featurekit\[dicom\]"):
        read_image(p)


def test_not_a_dicom(tmp_path):
    p = tmp_path / "fake.dcm"
    p.write_bytes(b"hello, not dicom at all")
    with pytest.raises(DataError, match="fake.dcm"):
        read_image(p)


# --------------------------------------------------------------------------- command line
def test_extract_window_and_slices_reach_the_reading(tmp_path, monkeypatch, capsys):
    from featurekit.cache import FeatureCache
    from featurekit.cli import main

    data = tmp_path / "ct"
    for cls in ("a", "b"):
        (data / cls).mkdir(parents=True)
        for j in range(2):
            frames = RNG.integers(0, 4096, (2, 12, 12), dtype=np.uint16)
            write_dicom(data / cls / f"{cls}{j}.dcm", frames, slope="1", intercept="-1024")
    monkeypatch.chdir(tmp_path)
    args = ["extract", str(data), "--handcrafted", "glcm:bin_count=16", "--quiet"]  # [0, 1] values: bins by count
    assert main(args) == 2
    assert "--slices" in capsys.readouterr().err
    assert main(args + ["--slices", "all"]) == 2
    err = capsys.readouterr().err
    assert "a0.dcm" in err and "--window" in err and "Traceback" not in err
    assert main(args + ["--slices", "all", "--window", "wide"]) == 2
    assert "CENTER,WIDTH" in capsys.readouterr().err
    rows = []
    for window in ("lung", "bone"):
        before = set((tmp_path / "cache").glob("*.h5"))
        assert main(args + ["--slices", "all", "--window", window]) == 0
        (path,) = set((tmp_path / "cache").glob("*.h5")) - before  # two readings, two datasets, two files
        cache = FeatureCache(path)
        assert len(cache.ids) == 8 and cache.ids[0] == "a/a0#0"
        rows.append(cache.get(cache.keys()[0]))
    assert not np.allclose(rows[0], rows[1])


def test_voi_lut_sequence_is_scaled_by_its_entry_bits(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    arr = RNG.integers(0, 4096, (8, 8), dtype=np.uint16)
    p = write_dicom(tmp_path / "lut.dcm", arr, bits_stored=12)
    ds = pydicom.dcmread(str(p))
    item = Dataset()
    item.add_new(0x00283002, "US", [4096, 0, 10])  # LUTDescriptor: 4096 entries from 0, 10-bit output
    item.add_new(0x00283006, "US", np.round(np.sqrt(np.arange(4096) / 4095) * 1023).astype(int).tolist())
    ds.VOILUTSequence = Sequence([item])
    ds.save_as(str(p))
    expected = apply_voi_lut(ds.pixel_array, ds) / 1023.0  # the output range the descriptor declares
    np.testing.assert_allclose(read_image(p), expected, atol=1e-6)
    assert describe_reading(p)["voi"] == "VOI LUT sequence"


def test_data_spec_records_the_reading_and_keeps_the_hashes_of_specs_without_one():
    from featurekit.data.spec import DataSpec

    assert set(DataSpec("x").to_dict()).isdisjoint({"window", "slices"})  # study step hashes as before
    spec = DataSpec("x", window="lung", slices="all")
    assert spec.to_dict()["window"] == "lung" and spec.to_dict()["slices"] == "all"
    assert DataSpec.from_options(spec.to_dict()) == spec
    with pytest.raises(DataError, match="slice policy 'top'"):
        DataSpec("x", slices="top")
