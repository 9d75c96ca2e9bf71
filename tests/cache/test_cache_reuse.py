"""Finished work is never thrown away: rows reused per image; unreadable images skipped and listed."""

import numpy as np
import pytest

import featurekit.data.sources as sources
import featurekit.imageio
from _cache_helpers import RowSpy, change_image, folder, glcm, write_images
from featurekit.cache import FeatureCache, default_cache_path
from featurekit.cli import main
from featurekit.errors import CacheError, DataError


def test_sample_hashes_follow_content_and_each_file_is_read_once(tmp_path, monkeypatch):
    paths = write_images(tmp_path / "data")
    reads = []
    original = sources._feed_file
    monkeypatch.setattr(sources, "_feed_file", lambda h, path: (reads.append(path), original(h, path)))
    ds = folder(tmp_path / "data")
    hashes = ds.sample_hashes()
    fingerprint = ds.fingerprint()
    sub = ds.subset([3, 1, 7])
    assert sub.sample_hashes() == [hashes[3], hashes[1], hashes[7]] and sub.fingerprint() != fingerprint
    malignant = ds.select_classes(["malignant"])
    assert malignant.sample_hashes() == [hashes[ds.ids.index(i)] for i in malignant.ids]
    assert sorted(reads) == sorted(str(p) for p in paths)  # fingerprint, hashes and subsets: one read per file
    change_image(paths[4], seed=7)
    again = folder(tmp_path / "data")
    changed = [i for i, (a, b) in enumerate(zip(hashes, again.sample_hashes())) if a != b]
    assert changed == [ds.ids.index("benign/img 04")] and again.fingerprint() != fingerprint


def test_sample_hash_depends_on_roi(tmp_path):
    import featurekit.data.dataset as dataset_mod
    from featurekit.data.sources import ArrayImages, ArrayMasks

    images = np.random.default_rng(0).integers(0, 255, (3, 20, 20), dtype=np.uint8)
    masks = np.zeros((3, 20, 20), dtype=np.uint8)
    masks[:, 5:10, 5:10] = 1
    ds = dataset_mod.Dataset(["a", "b", "c"], [0, 1, 0], ["x", "y"], ArrayImages([images]), ArrayMasks([masks]))
    assert ds.with_roi("mask").sample_hashes() != ds.sample_hashes()
    assert ds.with_roi("mask", 0.3).sample_hashes() != ds.with_roi("mask").sample_hashes()


def test_gained_lost_and_changed_images_reuse_every_unchanged_row(tmp_path, monkeypatch):
    monkeypatch.setenv("FEATUREKIT_CACHE", str(tmp_path / "cache"))
    paths = write_images(tmp_path / "data", n=12)
    first = glcm(folder(tmp_path / "data"))
    old_values = dict(zip(first.cache.ids, first.cache.get("glcm")))
    paths[2].unlink()
    paths[7].unlink()  # lost two
    change_image(paths[5], seed=5)  # changed one
    extra = write_images(tmp_path / "extra", n=3, seed=9)
    for k, p in enumerate(extra):  # gained three
        p.rename(tmp_path / "data" / p.parent.name / f"new {k}.png")
    ds = folder(tmp_path / "data")
    assert len(ds) == 13 and default_cache_path(ds) != first.cache.path
    spy = RowSpy(monkeypatch)
    result = glcm(ds)
    computed = sorted(ds.ids[i] for i in spy.rows)
    assert computed == sorted(["benign/new 0", "malignant/new 1", "benign/new 2", "malignant/img 05"])
    assert result.reused_rows == 9
    X = result.cache.get("glcm", ids=ds.ids)
    clean = glcm(ds, tmp_path / "clean" / "c.h5").cache.get("glcm", ids=ds.ids)
    np.testing.assert_array_equal(X, clean)
    for i, row in zip(ds.ids, X):
        if i in old_values and not i.endswith("img 05"):
            np.testing.assert_array_equal(row, old_values[i])
    # the earlier version's file is kept as it was (nothing thrown away); both are listed
    assert FeatureCache(first.cache.path).get("glcm").shape == (12, 34)


def test_on_error_skip_lists_and_records_unreadable_images(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FEATUREKIT_CACHE", str(tmp_path / "cache"))
    paths = write_images(tmp_path / "data")
    paths[5].write_bytes(b"this is not a png")  # undecodable
    ds = folder(tmp_path / "data")
    with pytest.raises(DataError, match="img 05.png"):
        glcm(ds)
    result = glcm(ds, on_error="skip")
    bad = "malignant/img 05"
    assert list(result.skipped) == [bad] and "img 05.png" in result.skipped[bad]
    cache = result.cache
    assert bad not in cache.ids and len(cache.ids) == 11 and cache.get("glcm").shape == (11, 34)
    assert cache.skipped == result.skipped  # recorded in the cache
    with pytest.raises(CacheError, match=r"1 ids are not in .*'malignant/img 05'.*skipped as unreadable"):
        cache.get("glcm", ids=ds.ids)
    good = [i for i in ds.ids if i != bad]
    clean = glcm(ds.subset([k for k, i in enumerate(ds.ids) if i != bad]), tmp_path / "clean" / "c.h5")
    np.testing.assert_array_equal(cache.get("glcm", ids=good), clean.cache.get("glcm", ids=good))
    # a rerun neither recomputes nor decodes anything; the skipped image is listed again
    decoded = []
    original = featurekit.imageio.read_image
    monkeypatch.setattr(sources, "read_image", lambda p: (decoded.append(p), original(p))[1])
    again = glcm(ds, on_error="skip")
    assert again.computed == [] and decoded == [] and again.skipped == result.skipped
    # without --on-error skip, a clear error lists it
    with pytest.raises(DataError, match="img 05.*--on-error skip"):
        glcm(ds)
    # the command line lists it by name, even with --quiet
    assert main(["extract", str(tmp_path / "data"), "--handcrafted", "glcm", "--on-error", "skip", "--quiet"]) == 0
    assert "skipped 1 unreadable image(s)" in capsys.readouterr().out
    # another image changes: a new file, seeded from this one; the unreadable image is skipped again undecoded
    change_image(paths[0], seed=1)
    third = glcm(folder(tmp_path / "data"), on_error="skip")
    assert list(third.skipped) == [bad] and "recorded in" in third.skipped[bad]
    assert {p.rpartition("/")[2] for p in decoded} == {"img 00.png"} and third.reused_rows == 10


def test_on_error_skip_with_a_missing_file_and_a_later_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("FEATUREKIT_CACHE", str(tmp_path / "cache"))
    paths = write_images(tmp_path / "data")
    ds = folder(tmp_path / "data")
    good = {k: paths[k].read_bytes() for k in (3, 8)}
    paths[3].unlink()  # listed by the loader, gone before extraction
    paths[8].write_bytes(b"broken")
    result = glcm(ds, on_error="skip")
    assert sorted(result.skipped) == ["benign/img 08", "malignant/img 03"]
    assert "file not found" in result.skipped["malignant/img 03"]
    assert FeatureCache(result.cache.path).skipped == result.skipped
    # both fixed: only those two images are computed
    paths[3].write_bytes(good[3])
    paths[8].write_bytes(good[8])
    spy = RowSpy(monkeypatch)
    ds = folder(tmp_path / "data")  # a Dataset memoises its hashes: load the changed files anew
    fixed = glcm(ds)
    assert sorted(ds.ids[i] for i in spy.rows) == ["benign/img 08", "malignant/img 03"]
    assert fixed.skipped == {} and fixed.reused_rows == 10


def test_on_error_rejects_other_values(tmp_path):
    write_images(tmp_path / "data", n=2)
    from featurekit.options import OptionError

    with pytest.raises(OptionError, match="on_error must be one of raise, skip, got 'ignore'"):
        glcm(folder(tmp_path / "data"), tmp_path / "c.h5", on_error="ignore")


def _two(ds, path, both=True):
    from featurekit.extraction.pipeline import extract
    from featurekit.handcrafted import FAMILIES

    glcm_ = FAMILIES["glcm"]
    hand = [glcm_(empty_mask="whole")] + ([glcm_(distances=(2,), empty_mask="whole")] if both else [])
    return extract(ds, [], hand, cache=path, batch_size=4, progress=False)


def test_a_named_cache_of_an_earlier_version_keeps_the_entries_not_asked_for(tmp_path):
    """--cache FILE of the same dataset, one image removed: rebuilt; the other entry is carried over by id."""
    paths = write_images(tmp_path / "data")
    path = tmp_path / "c.h5"
    first = _two(folder(tmp_path / "data"), path)
    d2 = first.specs[1].entry_id
    old = dict(zip(first.cache.ids, FeatureCache(path).get("glcm", entry_id=d2)))
    paths[4].unlink()
    ds = folder(tmp_path / "data")
    with pytest.warns(UserWarning, match="another version"):
        result = _two(ds, path, both=False)
    assert result.reused_rows == 11 + 11  # the entry asked for, and the one carried over
    cache = FeatureCache(path)
    assert cache.ids == ds.ids and len(cache.entries("glcm")) == 2
    np.testing.assert_array_equal(cache.get("glcm", entry_id=d2), np.stack([old[i] for i in ds.ids]))


def test_entries_of_a_journal_of_other_data_not_asked_for_stay_pending(tmp_path, monkeypatch):
    from featurekit.cache import CacheWriter

    paths = write_images(tmp_path / "data")
    path = tmp_path / "c.h5"
    ds = folder(tmp_path / "data")
    with monkeypatch.context() as m:  # killed before its commit: both entries only journaled
        m.setattr(CacheWriter, "commit", lambda self, specs=None: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            _two(ds, path)
    path.unlink()
    change_image(paths[0], seed=3)
    with pytest.warns(UserWarning, match="written for other data"):
        result = _two(folder(tmp_path / "data"), path, both=False)
    assert result.reused_rows == 11 + 11  # the entry asked for, and the other one, kept pending
    pending = FeatureCache(path).pending()
    assert list(pending.values()) == [11]  # the other entry's unchanged rows, bound to the new data
    assert not list(tmp_path.glob(".c.h5.partial-stale-*"))
    spy = RowSpy(monkeypatch)
    final = _two(folder(tmp_path / "data"), path)
    assert spy.rows == [0] and [s.entry_id for s in final.computed] == list(pending)
