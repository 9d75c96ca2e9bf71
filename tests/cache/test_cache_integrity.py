"""Nothing wrong is served: checksums on every read path, rows keyed by id, damage isolated per entry."""

import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from _cache_helpers import RowSpy, folder, write_images
from featurekit.cache import FeatureCache
from featurekit.cli import main
from featurekit.errors import CacheError
from featurekit.evaluation.estimators.features import load_entry
from featurekit.extraction.pipeline import extract
from featurekit.handcrafted import FAMILIES

GLCM = FAMILIES["glcm"]


def _two_entries(ds, path):
    """Two GLCM entries (distance 1 and 2) in one file."""
    return extract(ds, [], [GLCM(empty_mask="whole"), GLCM(distances=(2,), empty_mask="whole")],
                   cache=path, batch_size=4, progress=False)


@pytest.fixture
def made(tmp_path):
    write_images(tmp_path / "data")
    ds = folder(tmp_path / "data")
    path = tmp_path / "cache" / "c.h5"
    _two_entries(ds, path)
    cache = FeatureCache(path)
    first, second = cache.entries()
    values = {e.entry_id: cache.get("glcm", entry_id=e.entry_id) for e in (first, second)}
    shutil.copy(path, tmp_path / "pristine.h5")
    return ds, path, first, second, values


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def test_bytes_overwritten_inside_a_chunk_are_never_served(made, tmp_path, capsys):
    ds, path, first, second, values = made
    with h5py.File(path, "r") as f:
        chunk = f[f"features/glcm/{first.entry_id}"].id.get_chunk_info(0)
    _patch(path, chunk.byte_offset + chunk.size // 2, b"\x00\x00\x80\x7f")  # an inf/garbage float32
    cache = FeatureCache(path)
    for read in (lambda: cache.get("glcm", entry_id=first.entry_id),
                 lambda: cache.get("glcm", entry_id=first.entry_id, ids=ds.ids[:2]),
                 lambda: load_entry(cache, "glcm", first.entry_id)):  # evaluation's loader
        with pytest.raises(CacheError, match=rf"{path.name}: entry glcm \[{first.entry_id}\] is damaged"):
            read()
    np.testing.assert_array_equal(cache.get("glcm", entry_id=second.entry_id), values[second.entry_id])
    assert main(["cache", "verify", str(path)]) == 1
    assert f"{first.entry_id}] is damaged" in capsys.readouterr().out
    # extract recomputes it (not "reused"), the other entry is kept as it was
    with pytest.warns(UserWarning, match="recomputing"):
        result = _two_entries(ds, path)
    assert [s.entry_id for s in result.computed] == [first.entry_id]
    assert [s.entry_id for s in result.reused] == [second.entry_id]
    for e in (first, second):
        np.testing.assert_array_equal(FeatureCache(path).get("glcm", entry_id=e.entry_id), values[e.entry_id])
    assert main(["cache", "verify", str(path)]) == 0


def test_damaged_object_header_leaves_the_other_entries_readable(made, capsys):
    ds, path, first, second, values = made
    with h5py.File(path, "r") as f:
        header = h5py.h5o.get_info(f[f"features/glcm/{second.entry_id}"].id).addr
    _patch(path, header + 30, b"\xff\xfe")
    cache = FeatureCache(path)
    assert [e.entry_id for e in cache.entries()] == [first.entry_id]
    assert [d["path"] for d in cache.info()["damaged"]] == [f"features/glcm/{second.entry_id}"]
    np.testing.assert_array_equal(cache.get("glcm", entry_id=first.entry_id), values[first.entry_id])
    with pytest.raises(CacheError, match=f"{second.entry_id} of 'glcm' in .*c.h5 is damaged"):
        cache.get("glcm", entry_id=second.entry_id)
    assert main(["cache", "info", str(path)]) == 0
    assert f"DAMAGED features/glcm/{second.entry_id}" in capsys.readouterr().out
    assert main(["cache", "ls", str(path.parent)]) == 0
    with pytest.warns(UserWarning, match="damaged"):
        result = _two_entries(ds, path)
    assert [s.entry_id for s in result.computed] == [second.entry_id]
    cache = FeatureCache(path)
    assert cache.damaged() == []
    for e in (first, second):
        np.testing.assert_array_equal(cache.get("glcm", entry_id=e.entry_id), values[e.entry_id])


def test_damaged_attribute_text_is_detected(made):
    """String attributes live outside the checksummed object header: their seal catches a changed byte."""
    ds, path, first, second, values = made
    raw = path.read_bytes()
    at = raw.find(second.attrs["params"].encode())
    assert at > 0
    _patch(path, at + 3, bytes([raw[at + 3] ^ 0x01]))
    cache = FeatureCache(path)
    assert [e.entry_id for e in cache.entries()] == [first.entry_id]
    assert "attrs_sha256" in cache.damaged()[0][1]


def test_rows_are_keyed_by_id(made, tmp_path, monkeypatch):
    ds, path, first, second, values = made
    with h5py.File(path, "r+") as f:  # reverse /ids by hand
        ids = f["ids"][()]
        f["ids"][...] = ids[::-1]
    cache = FeatureCache(path)
    assert cache.ids == ds.ids[::-1]
    with pytest.raises(CacheError, match="written for other rows"):
        cache.get("glcm", entry_id=first.entry_id, ids=ds.ids[:3])
    with pytest.raises(CacheError, match="written for other rows"):
        load_entry(cache, "glcm", first.entry_id)
    # the writer sees that the file's rows are not this dataset's: rebuilt, by id
    with pytest.warns(UserWarning):
        _two_entries(ds, path)
    cache = FeatureCache(path)
    assert cache.ids == ds.ids
    for e in (first, second):
        np.testing.assert_array_equal(cache.get("glcm", entry_id=e.entry_id), values[e.entry_id])
    # the same images in another order: every row is reused, by id and content, and served by id
    spy = RowSpy(monkeypatch)
    order = np.arange(len(ds))[::-1]
    shuffled = ds.subset(order)
    with pytest.warns(UserWarning, match="another version"):
        result = _two_entries(shuffled, path)
    assert spy.rows == [] and result.reused_rows == 2 * len(ds)
    np.testing.assert_array_equal(FeatureCache(path).get("glcm", entry_id=first.entry_id, ids=ds.ids),
                                  values[first.entry_id])


def test_unreadable_files_are_listed_checked_and_removable(made, tmp_path, capsys):
    ds, path, first, second, values = made
    (path.parent / "garbage.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with h5py.File(path.parent / "foreign.h5", "w") as f:
        f["x"] = np.arange(3)
    assert main(["cache", "ls", str(path.parent)]) == 0
    out = capsys.readouterr().out
    assert "garbage.h5  UNREADABLE" in out and "foreign.h5  UNREADABLE" in out and f"{path}  " in out
    assert main(["cache", "verify", str(path.parent / "garbage.h5"), str(path)]) == 1
    out = capsys.readouterr().out
    assert "garbage.h5: DAMAGED" in out and f"{path}: ok (2 entries" in out
    assert main(["cache", "rm", str(path.parent / "garbage.h5")]) == 0
    assert not (path.parent / "garbage.h5").exists()
    with pytest.raises(CacheError, match="not a featurekit cache"):
        extract(ds, [], ["glcm"], cache=path.parent / "foreign.h5", progress=False)
    assert (path.parent / "foreign.h5").exists()  # never overwritten


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path(__file__).with_name("_evil_ran"),))


@pytest.mark.parametrize("where,value", [
    ("root", np.void(pickle.dumps(_Evil()))),
    ("root:class_names", "{not json"),
    ("entry:params", "[1, 2"),
])
def test_attributes_not_written_by_featurekit(made, where, value):
    ds, path, first, second, values = made
    with h5py.File(path, "r+") as f:
        target = f if where.startswith("root") else f[f"features/glcm/{second.entry_id}"]
        target.attrs[where.partition(":")[2] or "payload"] = value
    cache = FeatureCache(path)
    if where.startswith("root"):
        with pytest.raises(CacheError, match=str(path)):
            _ = cache.ids
    else:
        assert [e.entry_id for e in cache.entries()] == [first.entry_id]
        np.testing.assert_array_equal(cache.get("glcm", entry_id=first.entry_id), values[first.entry_id])
    assert not Path(__file__).with_name("_evil_ran").exists()


def test_damaged_feature_names_make_extract_rebuild_the_entry(made, capsys):
    """One check decides for `cache verify`, for extract's reuse and for reads: a flipped byte in an
    entry's feature names is damage everywhere, and extract rebuilds the entry (no verify/extract loop)."""
    ds, path, first, second, values = made
    names = FeatureCache(path).feature_names("glcm", entry_id=first.entry_id)
    with h5py.File(path, "r") as f:
        chunk = f[f"feature_names/glcm/{first.entry_id}"].id.get_chunk_info(0)
    raw = path.read_bytes()
    at = chunk.byte_offset + chunk.size // 2
    _patch(path, at, bytes([raw[at] ^ 0x01]))
    assert main(["cache", "verify", str(path)]) == 1
    assert f"{first.entry_id}] is damaged" in capsys.readouterr().out
    with pytest.raises(CacheError, match="feature names"):
        FeatureCache(path).get("glcm", entry_id=first.entry_id)  # a whole read checks the names too
    with pytest.warns(UserWarning, match="recomputing"):
        result = _two_entries(ds, path)
    assert [s.entry_id for s in result.computed] == [first.entry_id]
    assert [s.entry_id for s in result.reused] == [second.entry_id]
    cache = FeatureCache(path)
    assert cache.feature_names("glcm", entry_id=first.entry_id) == names
    np.testing.assert_array_equal(cache.get("glcm", entry_id=first.entry_id), values[first.entry_id])
    assert main(["cache", "verify", str(path)]) == 0
