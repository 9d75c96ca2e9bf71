"""Decoding rules of featurekit.imageio, on files the tests write and on real BUSI files."""


import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2gray

from featurekit.errors import DataError
from featurekit.imageio import (
    MIN_SIDE,
    check_image_size,
    image_shape,
    is_image_file,
    read_image,
    read_mask,
    to_gray,
    to_model_input,
    to_rgb,
    to_unit_float,
)

RNG = np.random.default_rng(0)
GRAY8 = RNG.integers(0, 256, (20, 30), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, (20, 30), dtype=np.uint16)


def _save(tmp_path, name, im, **kw):
    p = tmp_path / name
    im.save(p, **kw)
    return p


# --------------------------------------------------------------------------- decode rules
def test_gray8_png_native(tmp_path):
    img = read_image(_save(tmp_path, "g.png", Image.fromarray(GRAY8)))
    assert img.dtype == np.uint8 and img.shape == (20, 30)
    np.testing.assert_array_equal(img, GRAY8)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_png_tiff_is_uint16(tmp_path, ext):
    img = read_image(_save(tmp_path, f"g16.{ext}", Image.fromarray(GRAY16)))
    assert img.dtype == np.uint16 and img.shape == (20, 30)
    np.testing.assert_array_equal(img, GRAY16)
    assert img.max() > 255


def test_pgm_8_and_16_bit(tmp_path):
    p8 = _save(tmp_path, "g8.pgm", Image.fromarray(GRAY8))
    p16 = _save(tmp_path, "g16.pgm", Image.fromarray(GRAY16))
    assert Image.open(p16).mode == "I"  # Pillow's 32-bit mode: must come back as uint16
    a8, a16 = read_image(p8), read_image(p16)
    assert a8.dtype == np.uint8 and a16.dtype == np.uint16
    np.testing.assert_array_equal(a8, GRAY8)
    np.testing.assert_array_equal(a16, GRAY16)


def test_int32_out_of_range_is_error(tmp_path):
    p = _save(tmp_path, "i32.tif", Image.fromarray(np.full((4, 4), 70000, dtype=np.int32)))
    with pytest.raises(DataError, match="i32.tif.*0..65535"):
        read_image(p)


def test_float_tiff_is_float32(tmp_path):
    arr = RNG.random((8, 9)).astype(np.float32)
    img = read_image(_save(tmp_path, "f.tif", Image.fromarray(arr)))
    assert img.dtype == np.float32
    np.testing.assert_array_equal(img, arr)


def test_rgba_drops_alpha(tmp_path):
    rgba = np.dstack([RGB8, np.full((20, 30), 7, np.uint8)])
    img = read_image(_save(tmp_path, "a.png", Image.fromarray(rgba, "RGBA")))
    assert img.shape == (20, 30, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, RGB8)


def test_la_becomes_gray(tmp_path):
    la = np.dstack([GRAY8, np.full((20, 30), 99, np.uint8)])
    img = read_image(_save(tmp_path, "la.png", Image.fromarray(la, "LA")))
    assert img.shape == (20, 30)
    np.testing.assert_array_equal(img, GRAY8)


def test_palette_colour_and_gray(tmp_path):
    idx = RNG.integers(0, 4, (10, 12), dtype=np.uint8)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette(colours.ravel().tolist())
    img = read_image(_save(tmp_path, "pc.png", im))
    assert img.shape == (10, 12, 3)
    np.testing.assert_array_equal(img, colours[idx])

    grays = np.array([0, 80, 160, 240], np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette(np.repeat(grays, 3).tolist())
    img = read_image(_save(tmp_path, "pg.png", im))
    assert img.shape == (10, 12) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, grays[idx])


def test_bilevel_is_0_255(tmp_path):
    bits = RNG.random((10, 12)) > 0.5
    img = read_image(_save(tmp_path, "b.png", Image.fromarray(bits)))
    assert img.dtype == np.uint8
    assert set(np.unique(img)) <= {0, 255}
    np.testing.assert_array_equal(img == 255, bits)


def test_rgb_with_equal_channels_stays_rgb(tmp_path):
    rgb = np.repeat(GRAY8[..., None], 3, axis=2)
    img = read_image(_save(tmp_path, "eq.png", Image.fromarray(rgb)))
    assert img.shape == (20, 30, 3)


def test_jpeg_and_bmp(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 30).astype(np.uint8), (20, 1))
    jpg = read_image(_save(tmp_path, "s.jpg", Image.fromarray(smooth), quality=95))
    assert jpg.dtype == np.uint8 and jpg.shape == (20, 30)
    assert np.abs(jpg.astype(int) - smooth).max() < 12
    bmp = read_image(_save(tmp_path, "c.bmp", Image.fromarray(RGB8)))
    np.testing.assert_array_equal(bmp, RGB8)


# --------------------------------------------------------------------------- real BUSI files
def test_busi_gray_rgb_and_masks(busi_dir):
    gray = read_image(busi_dir / "benign" / "benign (1).png")
    assert gray.dtype == np.uint8 and gray.ndim == 2
    rgb = read_image(busi_dir / "benign" / "benign (234).png")
    assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
    assert not np.array_equal(rgb[..., 0], rgb[..., 1])  # colour overlay really there
    mask = read_mask(busi_dir / "benign" / "benign (1)_mask.png")
    assert mask.dtype == bool and mask.shape == gray.shape
    assert 0 < mask.mean() < 0.5
    assert image_shape(busi_dir / "benign" / "benign (234).png") == rgb.shape[:2]


def test_read_mask_colour_any_channel(tmp_path):
    m = np.zeros((6, 6, 3), np.uint8)
    m[1, 1, 2] = 1
    m[4, 4, 0] = 200
    got = read_mask(_save(tmp_path, "m.png", Image.fromarray(m)))
    assert got.dtype == bool and got.shape == (6, 6)
    assert got.sum() == 2 and got[1, 1] and got[4, 4]


# --------------------------------------------------------------------------- conversions
def test_to_unit_float_rule():
    assert to_unit_float(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]
    u16 = to_unit_float(np.array([0, 65535, 257], np.uint16))
    assert u16.dtype == np.float32
    np.testing.assert_allclose(u16, [0, 1, 257 / 65535])
    assert to_unit_float(np.array([True, False])).tolist() == [1.0, 0.0]
    f = np.array([0.25, 2.0], np.float64)
    np.testing.assert_array_equal(to_unit_float(f), f.astype(np.float32))  # kept as is
    with pytest.raises(DataError, match="int32"):
        to_unit_float(np.array([1, 2], np.int32))


def test_to_gray_native_units_and_bt709():
    g = to_gray(GRAY8)
    assert g.dtype == np.float64 and g.max() > 1  # stays on the 0..255 scale
    np.testing.assert_array_equal(g, GRAY8)
    lum = to_gray(RGB8)
    assert lum.shape == (20, 30)
    np.testing.assert_allclose(lum, rgb2gray(RGB8) * 255, rtol=1e-6)
    np.testing.assert_allclose(to_gray(GRAY16), GRAY16.astype(float))


def test_to_gray_rejects_nan_and_bad_shape():
    bad = np.ones((4, 4), np.float32)
    bad[1, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        to_gray(bad)
    with pytest.raises(DataError, match="shape"):
        to_gray(np.zeros((4, 4, 4)))


def test_to_rgb_and_model_input():
    rgb = to_rgb(GRAY8)
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8
    assert all(np.array_equal(rgb[..., c], GRAY8) for c in range(3))
    assert to_rgb(RGB8) is RGB8
    x = to_model_input(GRAY16)
    assert x.dtype == np.float32 and x.shape == (20, 30, 3)
    np.testing.assert_allclose(x[..., 1], GRAY16 / 65535, rtol=1e-6)
    np.testing.assert_allclose(to_model_input(RGB8), RGB8 / 255, rtol=1e-6)


# --------------------------------------------------------------------------- bad files
def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.png.*not found"):
        read_image(tmp_path / "nope.png")


def test_truncated_png(tmp_path, busi_dir):
    data = (busi_dir / "benign" / "benign (1).png").read_bytes()
    p = tmp_path / "trunc.png"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="trunc.png"):
        read_image(p)


def test_corrupt_png_body(tmp_path):
    p = _save(tmp_path, "c.png", Image.fromarray(GRAY8))
    data = bytearray(p.read_bytes())
    data[60:80] = b"\xff" * 20  # inside the IDAT stream
    p.write_bytes(bytes(data))
    with pytest.raises(DataError, match="c.png"):
        read_image(p)


@pytest.mark.parametrize("content", [b"", b"this is text, not an image\n"])
def test_non_image_with_png_extension(tmp_path, content):
    p = tmp_path / "notes.png"
    p.write_bytes(content)
    with pytest.raises(DataError, match="notes.png"):
        read_image(p)
    with pytest.raises(DataError, match="notes.png"):
        image_shape(p)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(DataError, match="not a regular file"):
        read_image(tmp_path)


def test_is_image_file():
    assert is_image_file("a/B (1).PNG") and is_image_file("x.dcm") and is_image_file("y.tiff")
    assert not is_image_file("notes.txt") and not is_image_file("noext")


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1)])
def test_images_under_two_pixels_a_side_are_refused(tmp_path, shape):
    p = _save(tmp_path, "small.png", Image.fromarray(np.zeros(shape, np.uint8)))
    with pytest.raises(DataError, match=rf"small\.png: image is {shape[0]}x{shape[1]} pixels"):
        read_image(p)
    rgb = _save(tmp_path, "small_rgb.png", Image.fromarray(np.zeros((*shape, 3), np.uint8)))
    with pytest.raises(DataError, match="small_rgb.png"):
        read_image(rgb)


def test_two_pixels_a_side_is_enough(tmp_path):
    assert MIN_SIDE == 2
    p = _save(tmp_path, "two.png", Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)))
    assert read_image(p).shape == (2, 2)
    assert check_image_size(np.zeros((2, 5, 3)), "x").shape == (2, 5, 3)


def test_preloaded_content_is_what_pillow_pydicom_and_the_hash_read(tmp_path):
    """imageio.preloaded: the decoders and the content hash read the bytes held in memory, not the file."""
    import hashlib

    from PIL import Image

    from featurekit.data.sources import FileImages
    from featurekit.imageio import preloaded, read_image

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(np.full((4, 5), 10, np.uint8)).save(a)
    Image.fromarray(np.full((4, 5), 200, np.uint8)).save(b)
    src = FileImages([str(a)], [None], None)
    h_b = hashlib.sha256()
    FileImages([str(b)], [None], None).hash_into(0, h_b)
    with preloaded({str(a): b.read_bytes()}):
        assert read_image(a).max() == 200
        h = hashlib.sha256()
        src.hash_into(0, h)
    h_a = hashlib.sha256()
    src.hash_into(0, h_a)
    assert h.hexdigest() == h_b.hexdigest() != h_a.hexdigest()
    assert read_image(a).max() == 10  # outside the block: the file


def test_load_hashed_reads_each_file_once_without_a_temporary_copy(tmp_path, monkeypatch):
    import hashlib
    import tempfile

    from PIL import Image

    from featurekit.data import sources

    path = tmp_path / "a.png"
    Image.fromarray(np.arange(30, dtype=np.uint8).reshape(5, 6)).save(path)
    reads = []
    real = sources.Path.read_bytes

    def counted(self):
        reads.append(str(self))
        return real(self)

    def no_copy(*args, **kwargs):
        raise AssertionError("a plain image file needs no temporary copy")

    monkeypatch.setattr(sources.Path, "read_bytes", counted)
    monkeypatch.setattr(tempfile, "TemporaryDirectory", no_copy)
    img = sources.load_hashed(sources.FileImages([str(path)], [None], None), hashlib.sha256(), 0)
    np.testing.assert_array_equal(img, np.arange(30, dtype=np.uint8).reshape(5, 6))
    assert reads == [str(path)]


def test_a_float_tiff_outside_the_unit_range_is_an_error_naming_the_file(tmp_path):
    from PIL import Image

    from featurekit.errors import DataError
    from featurekit.imageio import read_image

    raw = tmp_path / "raw.tif"
    Image.fromarray(np.linspace(0, 4095, 64, dtype=np.float32).reshape(8, 8), mode="F").save(raw)
    with pytest.raises(DataError, match=r"raw\.tif: 32-bit float image with values 0\.\.4095 outside \[0, 1\]"):
        read_image(raw)
    unit = tmp_path / "unit.tif"
    Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), mode="F").save(unit)
    assert read_image(unit).max() == pytest.approx(1.0)
