"""The journal of an unfinished run is bound to its data and parameters; damaged batch files are recomputed."""

import numpy as np
import pytest

from _cache_helpers import RowSpy, change_image, folder, glcm, write_images
from featurekit.cache import CacheWriter, FeatureCache
from featurekit.cli import main
from featurekit.errors import DataError


class Killed(BaseException):
    """Stands for a SIGKILL right before the commit (the journal holds every batch)."""


def _killed_run(ds, path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(CacheWriter, "commit", lambda self, specs=None: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            glcm(ds, path)
    assert sum(FeatureCache(path).pending().values()) == len(ds)


def _clean(ds, tmp_path):
    return glcm(ds, tmp_path / "clean" / "c.h5").cache.get("glcm")


def test_journal_of_other_data_is_not_merged(tmp_path, monkeypatch):
    """The issue's repro: kill a run, delete the .h5, change one image, rerun with the same --cache."""
    paths = write_images(tmp_path / "data")
    path = tmp_path / "cache" / "c.h5"
    _killed_run(folder(tmp_path / "data"), path, monkeypatch)
    path.unlink()
    change_image(paths[0], seed=99)
    ds = folder(tmp_path / "data")
    spy = RowSpy(monkeypatch)
    with pytest.warns(UserWarning, match="written for other data"):
        result = glcm(ds, path)
    # the 11 unchanged images are reused by content; only the changed one is computed
    assert result.reused_rows == 11 and spy.rows == [0]
    np.testing.assert_array_equal(result.cache.get("glcm"), _clean(ds, tmp_path))
    assert not list((tmp_path / "cache").glob("*stale*")) and FeatureCache(path).pending() == {}


def test_journal_of_other_parameters_is_discarded(tmp_path, monkeypatch):
    write_images(tmp_path / "data")
    ds = folder(tmp_path / "data")
    path = tmp_path / "c.h5"
    _killed_run(ds, path, monkeypatch)
    (entry_dir,) = [d for d in path.with_name("c.h5.partial").iterdir() if d.is_dir()]
    # rows computed with other parameters, under this entry's folder: valid files, wrong numbers
    spec_json = entry_dir / "spec.json"
    spec_json.write_text(spec_json.read_text().replace('"distances":[1]', '"distances":[2]'))
    from featurekit.cache.journal import Journal

    for batch in entry_dir.glob("*.npy"):
        rows = np.load(batch)
        batch.unlink()
        Journal(entry_dir.parent).write(entry_dir.name, int(batch.name[:10]), rows * 0 + 7)
    with pytest.warns(UserWarning, match="other parameters"):
        result = glcm(ds, path)
    np.testing.assert_array_equal(result.cache.get("glcm"), _clean(ds, tmp_path))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "pickle", "swap"])
def test_damaged_journal_file_is_recomputed(tmp_path, monkeypatch, damage):
    write_images(tmp_path / "data")
    ds = folder(tmp_path / "data")
    path = tmp_path / "c.h5"
    _killed_run(ds, path, monkeypatch)
    batches = sorted(path.with_name("c.h5.partial").glob("*/*.npy"))
    victim = batches[1]
    if damage == "truncate":  # killed mid-write by something that is not featurekit, or bytes cut
        victim.write_bytes(victim.read_bytes()[:-50])
    elif damage == "garbage":
        victim.write_bytes(b"\x93NUMPY garbage")
    elif damage == "pickle":  # an object array: loading it would unpickle
        with open(victim, "wb") as fh:
            np.save(fh, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:  # another batch's (valid) rows under this name
        victim.write_bytes(batches[0].read_bytes())
    spy = RowSpy(monkeypatch)
    with pytest.warns(UserWarning, match="discarded and recomputed"):
        result = glcm(ds, path)
    assert spy.rows == list(range(4, 8))  # only the damaged batch
    np.testing.assert_array_equal(result.cache.get("glcm"), _clean(ds, tmp_path))


@pytest.mark.parametrize("fix", ["fixed", "removed"])
def test_run_stopped_by_an_unreadable_image_resumes_after_the_fix(tmp_path, monkeypatch, capsys, fix):
    """rc 2 with the file named; after fixing or removing the image, finished rows are not recomputed."""
    monkeypatch.setenv("FEATUREKIT_CACHE", str(tmp_path / "cache"))
    paths = write_images(tmp_path / "data")
    good = paths[9].read_bytes()
    paths[9].write_bytes(b"not an image")
    spy = RowSpy(monkeypatch)
    rc = main(["extract", str(tmp_path / "data"), "--handcrafted", "glcm", "--batch-size", "4", "--quiet"])
    assert rc == 2 and "img 09.png" in capsys.readouterr().err
    assert sorted(set(spy.rows)) == list(range(12))  # batches 0-3, 4-7 finished, 8-11 failed
    if fix == "fixed":
        paths[9].write_bytes(good)
    else:
        paths[9].unlink()
    spy.reset()
    ds = folder(tmp_path / "data")
    result = glcm(ds)
    # the 8 finished rows are reused; only the failed batch's images are computed
    assert result.reused_rows == 8 and len(spy.rows) == len(ds) - 8
    np.testing.assert_array_equal(result.cache.get("glcm"), _clean(ds, tmp_path))
    # the orphaned journal and empty file of the failed run are gone: one cache file left
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.endswith((".h5", ".partial"))] \
        == [result.cache.path.name]


def test_unbound_journal_is_discarded(tmp_path, monkeypatch):
    """A journal without binding (older featurekit, damaged journal.json) is not used."""
    write_images(tmp_path / "data")
    ds = folder(tmp_path / "data")
    path = tmp_path / "c.h5"
    _killed_run(ds, path, monkeypatch)
    path.with_name("c.h5.partial").joinpath("journal.json").write_text("{not json")
    spy = RowSpy(monkeypatch)
    with pytest.warns(UserWarning, match="not bound to any data"):
        result = glcm(ds, path)
    assert result.reused_rows == 0 and spy.rows == list(range(len(ds)))
    np.testing.assert_array_equal(result.cache.get("glcm"), _clean(ds, tmp_path))


def test_skipped_images_of_a_killed_skip_run_stop_a_raise_run(tmp_path, monkeypatch):
    paths = write_images(tmp_path / "data")
    paths[5].write_bytes(b"broken")
    ds = folder(tmp_path / "data")
    path = tmp_path / "c.h5"
    with monkeypatch.context() as m:
        m.setattr(CacheWriter, "commit", lambda self, specs=None: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            glcm(ds, path, on_error="skip")
    with pytest.raises(DataError, match="img 05"):
        glcm(ds, path)
