"""Faults of the machine: a full disk at any moment, a read-only cache folder, a cache path that is a folder."""

import builtins
import contextlib
import errno
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import _cache_worker
from _cache_helpers import folder, glcm, write_images
from featurekit.cache import CacheWriter, FeatureCache
from featurekit.cli import main
from featurekit.errors import CacheError, DiskFullError, ReadOnlyError
from featurekit.extraction.pipeline import extract
from featurekit.handcrafted import FAMILIES

GLCM = FAMILIES["glcm"]

WORKER = Path(__file__).resolve().parents[1] / "_cache_worker.py"


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fault_journal(m, folder_):
    def save(fh, arr, **kw):
        fh.write(b"\x93NUMPY partial")  # some bytes reach the disk, then it is full
        _enospc()

    m.setattr(np, "save", save)


def _fault_copy(m, folder_):
    def copyfile(src, dst, **kw):
        with open(src, "rb") as s, open(dst, "wb") as d:
            d.write(s.read(100))
        _enospc()

    m.setattr(shutil, "copyfile", copyfile)


def _fault_reserve(m, folder_):
    m.setattr(os, "posix_fallocate", _enospc)


def _fault_hdf5(m, folder_):
    def store(self, *args):  # what HDF5 raises when write(2) fails
        raise OSError("Can't synchronously write data (file write failed: errno = 28, "
                      "error message = 'No space left on device')")

    m.setattr(CacheWriter, "_store", store)


def _fault_new_file(m, folder_):
    original = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder_)):
            _enospc()
        return original(fd)

    m.setattr(os, "fsync", fsync)


FAULTS = {"journal": _fault_journal, "copy": _fault_copy, "reserve": _fault_reserve, "hdf5": _fault_hdf5,
          "new file": _fault_new_file}


def _second_entry(ds, path):
    return extract(ds, [], [FAMILIES["glcm"](distances=(2,), empty_mask="whole")], cache=path,
                   batch_size=4, progress=False)


def _debris(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp-" in p.name]


@pytest.mark.parametrize("fault", list(FAULTS))
def test_disk_full_at_any_moment(tmp_path, monkeypatch, fault):
    write_images(tmp_path / "data")
    ds = folder(tmp_path / "data")
    cache_dir = tmp_path / "cache"
    path = cache_dir / "c.h5"
    if fault != "new file":
        glcm(ds, path)  # an existing cache that must come out byte-identical
    before = path.read_bytes() if path.exists() else None
    with monkeypatch.context() as m:
        FAULTS[fault](m, cache_dir)
        with pytest.raises(DiskFullError) as info:
            _second_entry(ds, path)
    message = str(info.value)
    assert "no space left" in message and str(cache_dir) in message
    if fault in ("copy", "reserve", "hdf5"):
        assert "needed" in message  # roughly the space the commit needs
        assert sum(FeatureCache(path).pending().values()) == len(ds)  # finished work kept in the journal
    assert _debris(tmp_path) == []  # nothing left to keep the disk full
    assert (path.read_bytes() if path.exists() else None) == before
    # once there is space again, the same command completes
    result = _second_entry(ds, path)
    fresh = _second_entry(ds, tmp_path / "fresh" / "c.h5")
    np.testing.assert_array_equal(result.get("glcm"), fresh.get("glcm"))


@contextlib.contextmanager
def _small_filesystem(path: Path, size: str):
    """Mount a tmpfs of ``size`` at ``path`` (root only); yields whether it is mounted."""
    path.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True)
    except OSError:
        done = None
    mounted = done is not None and done.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_disk_full_on_a_real_small_file_system(tmp_path, monkeypatch):
    """162,336 features and their names on a 4 MB file system: a clean error, twice (no segfault).

    Where mounting is not allowed, the same guarantee is checked by a fault at the write call.
    """
    mnt = tmp_path / "mnt"
    with _small_filesystem(mnt, "4m") as mounted:
        path = mnt / "c.h5"

        def run(mode):  # a subprocess: a segmentation fault in HDF5 must show as one
            done = subprocess.run([sys.executable, str(WORKER), str(path), mode], capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]  # 139: HDF5 crashed
            return done.stdout.splitlines()

        run("small")
        before = path.read_bytes()
        if mounted:
            errors = run("haar")
        else:
            with monkeypatch.context() as m:
                _fault_reserve(m, mnt)
                errors = _cache_worker.fill(str(path))
        assert len(errors) == 2
        for out in errors:
            assert out.startswith("DiskFullError:") and str(mnt) in out and "needed" in out
        assert path.read_bytes() == before and _debris(mnt) == []
        assert FeatureCache(path).keys() == ["small"]


# ----------------------------------------------------------------------------- read-only folder
def _is_under(path, root: Path) -> bool:
    try:
        return Path(os.fsdecode(path)).resolve().is_relative_to(root)
    except (TypeError, ValueError):
        return False


def _simulate_read_only(m, root: Path) -> None:
    """Every way featurekit writes a file fails with EROFS under ``root`` (as on a read-only mount)."""
    root = root.resolve()

    def refuse(*_a, **_k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    def guard(fn, path_arg=0, writes=lambda *a, **k: True):
        def wrapper(*args, **kwargs):
            if len(args) > path_arg and _is_under(args[path_arg], root) and writes(*args, **kwargs):
                refuse()
            return fn(*args, **kwargs)
        return wrapper

    def opens_for_writing(file, mode="r", *a, **k):
        return any(c in str(mode) for c in "wax+")

    def os_open_writes(path, flags, *a, **k):
        return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))

    m.setattr(builtins, "open", guard(builtins.open, writes=opens_for_writing))
    m.setattr(io, "open", guard(io.open, writes=opens_for_writing))
    m.setattr(os, "open", guard(os.open, writes=os_open_writes))
    for name in ("mkdir", "unlink", "remove", "rmdir", "replace", "rename"):
        m.setattr(os, name, guard(getattr(os, name)))
    original_file = h5py.File

    class ReadOnlyFile(original_file):
        def __init__(self, name, mode="r", *a, **k):
            if mode != "r" and _is_under(name, root):
                refuse()
            super().__init__(name, mode, *a, **k)

    m.setattr(h5py, "File", ReadOnlyFile)


@pytest.fixture
def read_only_cache(tmp_path, monkeypatch):
    """A complete cache seen through a read-only bind mount (root), else through simulated EROFS."""
    write_images(tmp_path / "data")
    ds = folder(tmp_path / "data")
    glcm(ds, tmp_path / "cache" / "c.h5")
    view = tmp_path / "ro"
    view.mkdir()
    bound = mounted = False
    with contextlib.suppress(OSError):
        bound = subprocess.run(["mount", "--bind", str(tmp_path / "cache"), str(view)],
                               capture_output=True).returncode == 0
        mounted = bound and subprocess.run(["mount", "-o", "remount,bind,ro", str(view)],
                                           capture_output=True).returncode == 0
    if not mounted:
        if bound:
            subprocess.run(["umount", str(view)], capture_output=True)
        view.rmdir()
        shutil.copytree(tmp_path / "cache", view)
        _simulate_read_only(monkeypatch, view)
    listing = sorted(p.name for p in view.iterdir())
    yield ds, view / "c.h5", listing
    if mounted:
        subprocess.run(["umount", "-l", str(view)], capture_output=True)


def test_a_complete_cache_on_a_read_only_folder_is_read(read_only_cache):
    from featurekit.orchestration import evaluate_features

    ds, path, listing = read_only_cache
    with pytest.raises(OSError):  # the folder really refuses writes
        (path.parent / "probe").write_text("x")
    result = glcm(ds, path)
    assert result.computed == [] and [s.key for s in result.reused] == ["glcm"]
    ev = evaluate_features(ds, ["glcm"], ["logreg"], cv="3", cache=path, n_boot=50, positive="malignant")
    assert len(ev.results) == 1
    assert main(["cache", "verify", str(path)]) == 0
    assert sorted(p.name for p in path.parent.iterdir()) == listing  # nothing written, not even a lock
    # writing there is a clear error naming the folder
    with pytest.raises(ReadOnlyError, match=f"cannot write the feature cache {path}.*{path.parent}"):
        _second_entry(ds, path)


# ----------------------------------------------------------------------------- paths
def test_cache_path_naming_a_folder_and_missing_cache_folder(tmp_path, capsys):
    write_images(tmp_path / "data")
    ds = folder(tmp_path / "data")
    (tmp_path / "dir").mkdir()
    with pytest.raises(CacheError, match="is a folder; a feature cache is a file"):
        glcm(ds, tmp_path / "dir")
    with pytest.raises(CacheError, match="is a folder"):
        _ = FeatureCache(tmp_path / "dir").ids
    assert main(["extract", str(tmp_path / "data"), "--handcrafted", "glcm", "--cache", str(tmp_path / "dir"),
                 "--quiet"]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["cache", "ls", str(tmp_path / "nowhere")]) == 2
    assert f"no cache folder {tmp_path / 'nowhere'}" in capsys.readouterr().err
    assert list((tmp_path / "dir").iterdir()) == []


def test_a_cache_path_that_is_a_link_is_written_through(tmp_path):
    write_images(tmp_path / "data")
    ds = folder(tmp_path / "data")
    (tmp_path / "store").mkdir()
    target, link = tmp_path / "store" / "real.h5", tmp_path / "link.h5"
    link.symlink_to(target)  # dangling: the first run creates the target
    glcm(ds, link)
    assert link.is_symlink() and target.is_file() and FeatureCache(target).keys() == ["glcm"]
    extract(ds, [], [GLCM(distances=(2,), empty_mask="whole")], cache=link, batch_size=4, progress=False)
    assert link.is_symlink() and len(FeatureCache(target).entries()) == 2
    assert [p.name for p in tmp_path.glob("link.h5*")] == ["link.h5"]  # lock and journal live by the target


def test_a_subsample_run_against_a_bigger_cache_loses_no_rows(tmp_path, monkeypatch):
    from _cache_helpers import RowSpy

    write_images(tmp_path / "data", n=24)
    ds = folder(tmp_path / "data")
    path = tmp_path / "cache" / "c.h5"
    other = GLCM(distances=(2,), empty_mask="whole")
    extract(ds, [], ["glcm", other], cache=path, batch_size=4, progress=False)
    before = {e.entry_id: FeatureCache(path).get(e.key, entry_id=e.entry_id) for e in FeatureCache(path).entries()}
    small = ds.subset(range(4))
    with pytest.warns(UserWarning, match=r"the 20 image\(s\) it held that this data lacks \(by id .*keep their rows"):
        glcm(small, path)  # asks for one entry, over 4 of the 24 images
    (kept,) = [p for p in path.parent.glob("c-*.h5")]
    for entry_id, values in before.items():  # every entry, all 24 rows, intact
        np.testing.assert_array_equal(FeatureCache(kept).get("glcm", entry_id=entry_id), values)
    assert FeatureCache(kept).verify() == []
    spy = RowSpy(monkeypatch)
    extract(ds, [], ["glcm", other], cache=path, batch_size=4, progress=False)  # the whole data again
    assert spy.rows == []  # every row reused, none recomputed
    for entry_id, values in before.items():
        np.testing.assert_array_equal(FeatureCache(path).get("glcm", entry_id=entry_id), values)


def test_a_rebuild_leaves_no_unfinished_run_of_an_entry_it_was_not_asked_for(tmp_path):
    """Every image changed, one of two entries asked for: the other's rows stay in the kept old file, and
    no journal of it is left behind to be listed as an unfinished run."""
    write_images(tmp_path / "data", n=8)
    path = tmp_path / "c.h5"
    other = GLCM(distances=(2,), empty_mask="whole")
    extract(folder(tmp_path / "data"), [], ["glcm", other], cache=path, batch_size=4, progress=False)
    write_images(tmp_path / "data", n=8, seed=1)  # new content for every image, same ids
    with pytest.warns(UserWarning, match=r"by id and content: images left out, changed, or read otherwise"):
        glcm(folder(tmp_path / "data"), path)
    cache = FeatureCache(path)
    assert cache.keys() == ["glcm"] and len(cache.entries()) == 1
    assert cache.info()["pending_rows"] == {} and not cache.journal_dir.exists()
    (kept,) = tmp_path.glob("c-*.h5")
    assert len(FeatureCache(kept).entries()) == 2


@pytest.mark.parametrize("where", ["under a file", "under /proc"])
def test_outputs_where_nothing_can_be_written_are_clear_errors_before_the_work(tmp_path, capsys, where):
    from featurekit.errors import StorageError

    write_images(tmp_path / "data")
    (tmp_path / "afile").write_text("x")
    base = tmp_path / "afile" if where == "under a file" else Path("/proc")
    why = "afile is a file, not a folder" if where == "under a file" else "no file can be created there"
    with pytest.raises(StorageError, match=why):
        glcm(folder(tmp_path / "data"), base / "c.h5")
    assert main(["extract", str(tmp_path / "data"), "--handcrafted", "glcm", "--quiet",
                 "--cache", str(base / "sub" / "c.h5")]) == 2
    err = capsys.readouterr().err
    assert why in err and "Traceback" not in err
    glcm(folder(tmp_path / "data"), tmp_path / "c.h5")
    assert main(["evaluate", str(tmp_path / "data"), "--features", "glcm", "--cache", str(tmp_path / "c.h5"),
                 "--positive", "malignant", "--cv", "2", "--out", str(base / "run")]) == 2
    err = capsys.readouterr().err
    assert why in err and "Traceback" not in err and "cross-validation" not in err  # refused before the work
