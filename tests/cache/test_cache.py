"""The HDF5 feature cache: reuse, invalidation, crash safety, concurrent writers."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import random_dataset
from featurekit.cache import DatasetMeta, EntrySpec, FeatureCache, default_cache_path
from featurekit.errors import CacheError, CacheLockedError
from featurekit.extraction.pipeline import extract

WORKER = Path(__file__).resolve().parents[1] / "_cache_worker.py"
SPEC = ["resnet18:conv2_block2_out,conv4_block1_out,avg_pool"]
KEYS = ["resnet18/conv2_block2_out", "resnet18/conv4_block1_out", "resnet18/avg_pool"]


def _extract(ds, cache, **kw):
    kw = {"weights": "none", "size": 40, "batch_size": 4, "num_workers": 0, "progress": False, **kw}
    return extract(ds, SPEC, cache=cache, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run, for comparison."""
    path = tmp_path_factory.mktemp("ref") / "ref.h5"
    _extract(random_dataset(n=24, size=40), path)
    return FeatureCache(path)


def test_layout_readable_with_plain_h5py(reference):
    ds = random_dataset(n=24, size=40)
    with h5py.File(reference.path, "r") as f:
        assert [s.decode() for s in f["ids"][()]] == ds.ids
        np.testing.assert_array_equal(f["labels"][()], ds.labels)
        assert f.attrs["fingerprint"] == ds.fingerprint()
        group = f["features/resnet18/avg_pool"]
        (entry,) = group.values()
        assert entry.shape == (24, 512) and entry.dtype == np.float32
        for attr in ("model", "layer", "pool", "weights", "input_size", "preprocessing", "featurekit_version",
                     "torch_version", "created"):
            assert attr in entry.attrs, attr
        assert entry.attrs["layer"] == "avg_pool" and entry.attrs["weights"] == "none:seed=0"


def test_reuse_when_every_parameter_matches(tmp_path, reference):
    ds = random_dataset(n=24, size=40)
    first = _extract(ds, tmp_path / "c.h5")
    assert len(first.computed) == 3
    second = _extract(ds, tmp_path / "c.h5")
    assert second.computed == [] and len(second.reused) == 3
    for key in KEYS:
        np.testing.assert_array_equal(first.cache.get(key), reference.get(key))


@pytest.mark.parametrize("change", [{"pool": "gmp"}, {"size": 48}, {"seed": 1}, {"resize": "squash"}])
def test_any_parameter_change_recomputes(tmp_path, change):
    ds = random_dataset(n=8, size=40)
    _extract(ds, tmp_path / "c.h5")
    changed = _extract(ds, tmp_path / "c.h5", **change)
    assert len(changed.computed) == 3
    cache = FeatureCache(tmp_path / "c.h5")
    assert len(cache.entries("resnet18/avg_pool")) == 2
    with pytest.raises(CacheError, match="2 entries"):
        cache.get("resnet18/avg_pool")
    if "pool" in change:
        assert cache.get("resnet18/avg_pool", pool="gmp").shape == (8, 512)


def test_other_data_never_reuses_a_cache(tmp_path):
    a, b = random_dataset(n=8, size=40, seed=0), random_dataset(n=8, size=40, seed=1)
    assert default_cache_path(a) != default_cache_path(b)
    _extract(a, tmp_path / "c.h5")
    other = random_dataset(n=8, size=40, seed=1, name="other")
    with pytest.raises(CacheError, match="belongs to another dataset"):
        _extract(other, tmp_path / "c.h5")
    assert FeatureCache(tmp_path / "c.h5").fingerprint == a.fingerprint()  # not overwritten
    # another version of the same dataset (same name, same ids, every image different): rebuilt, nothing reused
    with pytest.warns(UserWarning, match="another version of dataset 'random'"):
        rebuilt = _extract(b, tmp_path / "c.h5")
    assert len(rebuilt.computed) == 3 and rebuilt.reused_rows == 0
    cache = FeatureCache(tmp_path / "c.h5")
    assert cache.fingerprint == b.fingerprint() and cache.row_hashes == b.sample_hashes()
    fresh = _extract(b, tmp_path / "fresh" / "c.h5")  # another folder: nothing to reuse there
    for key in KEYS:
        np.testing.assert_array_equal(cache.get(key), fresh.cache.get(key))


def test_get_rows_follow_ids(reference):
    ids = reference.ids
    X = reference.get("resnet18/avg_pool")
    picked = reference.get("resnet18/avg_pool", ids=[ids[5], ids[2], ids[5]])
    np.testing.assert_array_equal(picked, X[[5, 2, 5]])
    with pytest.raises(CacheError, match="not in"):
        reference.get("resnet18/avg_pool", ids=["nope"])
    with pytest.raises(CacheError, match="keys present"):
        reference.get("vgg16/block4_pool")


def _wait_for_batches(proc, n):
    seen = 0
    deadline = time.monotonic() + 120
    while seen < n and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line.startswith("batch")
    return seen


def test_sigkill_mid_run_then_resume_is_identical(tmp_path, reference):
    path = tmp_path / "c.h5"
    proc = subprocess.Popen([sys.executable, str(WORKER), str(path), "slow"], stdout=subprocess.PIPE, text=True)
    assert _wait_for_batches(proc, 2) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cache = FeatureCache(path)
    info = cache.info()  # opens fine
    assert info["entries"] == [] and info["n"] == 24
    assert info["pending_rows"] and all(0 < rows < 24 for rows in info["pending_rows"].values())
    done_before = max(info["pending_rows"].values())
    resumed = _extract(random_dataset(n=24, size=40), path, )
    assert len(resumed.computed) == 3
    assert cache.pending() == {}
    for key in KEYS:
        np.testing.assert_array_equal(cache.get(key), reference.get(key))
    assert done_before >= 8


def test_crash_during_commit_keeps_old_file(tmp_path, reference):
    path = tmp_path / "c.h5"
    ds = random_dataset(n=24, size=40)
    extract(ds, ["resnet18:conv5_block1_out"], cache=path, weights="none", size=40, batch_size=4,
            num_workers=0, progress=False)
    proc = subprocess.run([sys.executable, str(WORKER), str(path), "crash"], capture_output=True, text=True)
    assert proc.returncode == 17, proc.stderr
    cache = FeatureCache(path)
    assert cache.keys() == ["resnet18/conv5_block1_out"]  # old content intact, file opens
    assert sum(cache.pending().values()) == 3 * 24  # everything journaled
    resumed = _extract(ds, path)
    assert len(resumed.computed) == 3
    for key in KEYS:
        np.testing.assert_array_equal(cache.get(key), reference.get(key))
    assert not list(tmp_path.glob(".c.h5.tmp-*"))


def test_concurrent_writers_fail_clearly_or_wait(tmp_path, reference):
    path = tmp_path / "c.h5"
    holder = subprocess.Popen([sys.executable, str(WORKER), str(path), "hold"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        impatient = subprocess.run([sys.executable, str(WORKER), str(path), "normal", "0"],
                                   capture_output=True, text=True)
        assert impatient.returncode != 0
        assert "CacheLockedError" in impatient.stderr and "being written by another process" in impatient.stderr
        patient = subprocess.Popen([sys.executable, str(WORKER), str(path), "normal", "120"],
                                   stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        Path(str(path) + ".release").touch()
        out_patient, _ = patient.communicate(timeout=180)
        out_holder, _ = holder.communicate(timeout=180)
    finally:
        holder.kill()
    assert patient.returncode == 0 and holder.returncode == 0
    # one computed, the other waited for the lock and reused its work: nothing done twice or corrupted
    summary = sorted(line for line in (out_patient + out_holder).splitlines() if line.startswith("computed"))
    assert summary == ["computed=0 reused=3", "computed=3 reused=0"]
    for key in KEYS:
        np.testing.assert_array_equal(FeatureCache(path).get(key), reference.get(key))


def test_lock_timeout_in_process(tmp_path):
    ds = random_dataset(n=4, size=40)
    cache = FeatureCache(tmp_path / "c.h5")
    with cache.writer(DatasetMeta.from_dataset(ds)):
        with pytest.raises(CacheLockedError, match="gave up after 0.2 s"):
            with cache.writer(DatasetMeta.from_dataset(ds), lock_timeout=0.2):
                pass


def test_writer_rejects_bad_batches(tmp_path):
    ds = random_dataset(n=4, size=40)
    spec = EntrySpec("toy", {"a": 1}, dim=3)
    with FeatureCache(tmp_path / "c.h5").writer(DatasetMeta.from_dataset(ds)) as w:
        w.plan([spec], 2)
        with pytest.raises(CacheError, match="expected"):
            w.write(0, 2, {spec.entry_id: np.zeros((2, 4))})
        with pytest.raises(CacheError, match="non-finite"):
            w.write(0, 2, {spec.entry_id: np.full((2, 3), np.nan)})
        assert w.commit([spec]) == []  # incomplete: nothing committed


def test_remove_entries_and_file(tmp_path):
    ds = random_dataset(n=8, size=40)
    path = tmp_path / "c.h5"
    _extract(ds, path)
    cache = FeatureCache(path)
    assert cache.remove("resnet18/avg_pool") == 1
    assert cache.keys() == KEYS[:2]
    np.testing.assert_array_equal(cache.get(KEYS[0]).shape, (8, 64))
    memo = path.with_name(path.name + ".resolved.json")  # the extraction's memo goes with its cache
    assert memo.is_file()
    assert cache.remove() == 2 and not path.exists() and not memo.exists()


def test_float16_storage(tmp_path):
    ds = random_dataset(n=4, size=40)
    result = _extract(ds, tmp_path / "c.h5", dtype="float16")
    assert result.get("resnet18/avg_pool").dtype == np.float16
