"""Extraction, evaluation and fine-tuning on a real Dask cluster equal the local runs.

One ``LocalCluster`` of two single-threaded worker processes serves the whole
module (the real engine: scheduler, nannies, worker processes, pickling); a test
that kills workers starts a cluster of its own, so no test depends on what a kill
left behind (a restarted worker lacks what an earlier test installed in it).

CPU convolutions round differently with another number of torch threads
(oneDNN splits the work by thread: MobileNet-V2's last layer moves by ~1e-6
relative between 1 and 2 threads, in one process too), so the local references
of the torch results run with one thread, as each worker does.
"""

import contextlib
import dataclasses
import os
import shutil
import signal
import threading
import uuid

import numpy as np
import pandas as pd
import pytest
from _cluster_calls import die_at_one, held
from _eval_helpers import make_cache, separable
from conftest import copy_busi, random_dataset
from distributed import Client, LocalCluster

from featurekit.cache import CacheWriter, FeatureCache
from featurekit.cli import main
from featurekit.data import load_dataset
from featurekit.errors import ClusterError, DataError
from featurekit.executors import (
    GROUPS_PER_THREAD,
    SHARED_KEY_PREFIX,
    WORKER_ENVIRON,
    DaskExecutor,
    LocalExecutor,
    as_executor,
    connect,
)
from featurekit.extraction.distributed import plan_shards
from featurekit.extraction.pipeline import extract
from featurekit.finetune import FinetuneConfig
from featurekit.finetune.crossval import cross_validate as finetune_cv
from featurekit.finetune.errors import FinetuneError
from featurekit.orchestration import evaluate_features

LAYERS = ["mobilenet_v2:features.4,features.18"]
SMALL = dict(weights="none", size=64, batch_size=4, num_workers=0, progress=False)


def _import_featurekit():
    import featurekit.extraction.pipeline  # noqa: F401
    import featurekit.finetune.crossval  # noqa: F401


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        c.run(_import_featurekit)  # torch and featurekit once per worker, before the timed tests
        yield c


@pytest.fixture
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def busi_copy12(busi_dir, tmp_path_factory):
    """A copy of 6 benign + 6 malignant BUSI files with masks (the workers read them from disk)."""
    return copy_busi(busi_dir, tmp_path_factory.mktemp("busi"), {"benign": range(1, 7), "malignant": range(1, 7)})


def _load(root):
    return load_dataset(root, classes=["benign", "malignant"], positive="malignant", roi="mask")


def _entries(path):
    cache = FeatureCache(path)
    return {(e.key, e.entry_id): (cache.get(e.key, entry_id=e.entry_id), e.attrs.get("weights_sha256"))
            for e in cache.entries()}


def _assert_same_cache(a, b):
    ea, eb = _entries(a), _entries(b)
    assert sorted(ea) == sorted(eb)
    for k in ea:
        np.testing.assert_array_equal(ea[k][0], eb[k][0], err_msg=str(k))  # bit for bit
        assert ea[k][1] == eb[k][1]


@pytest.fixture(scope="module")
def local_cache(busi_copy12, tmp_path_factory):
    import torch

    path = tmp_path_factory.mktemp("local") / "busi.h5"
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker (module docstring)
    try:
        extract(_load(busi_copy12), LAYERS, ["glcm"], cache=path, **SMALL)
    finally:
        torch.set_num_threads(before)
    return path


def _count_model_builds(client):
    """Make every worker count its model builds (returns a function reading the counts)."""
    def install():
        from featurekit.models import weights

        if not hasattr(weights.ModelRef, "_builds"):
            original = weights.ModelRef.load

            def counted(self):
                weights.ModelRef._builds += 1
                return original(self)

            weights.ModelRef.load = counted
        weights.ModelRef._builds = 0

    def read():
        from featurekit.models import weights

        return weights.ModelRef._builds

    client.run(install)
    return lambda: client.run(read)


def _models_held():
    from featurekit.extraction import distributed

    return len(distributed._WORKER_MODELS)


def test_extraction_on_a_cluster_equals_local_bit_for_bit(client, busi_copy12, local_cache, tmp_path):
    builds = _count_model_builds(client)
    path = tmp_path / "dask.h5"
    result = extract(_load(busi_copy12), LAYERS, ["glcm"], cache=path, executor=client, shard_size=4, **SMALL)
    assert len(result.computed) == 3
    _assert_same_cache(local_cache, path)
    # 3 shards of the CNN on 2 workers: each worker built the model at most once
    assert all(n <= 1 for n in builds().values()) and sum(builds().values()) >= 1
    assert not FeatureCache(path).journal_dir.exists()
    # and freed it when the run ended
    assert set(client.run(_models_held).values()) == {0}


@pytest.fixture
def own_cluster():
    """A cluster of two single-threaded workers for a test that kills workers: the module's stays whole."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        yield c


def _kill_holders_of_shared(client):
    """SIGKILL every worker holding the objects a stream shares (returns their pids): no copy is left."""
    pids = client.run(os.getpid)
    holders = {w for key, workers in client.who_has().items() if str(key).startswith(SHARED_KEY_PREFIX)
               for w in workers}
    for w in holders:
        os.kill(pids[w], signal.SIGKILL)
    return [pids[w] for w in holders]


@contextlib.contextmanager
def _while_held(client, action):
    """Yields ``(started, release, outcome)``: once a call started, ``action()`` runs, then the calls go on.

    ``action`` runs in a thread of its own, as the test's thread is iterating the stream.
    """
    from distributed import Event

    run = uuid.uuid4().hex
    started, release, outcome = Event(f"started-{run}", client), Event(f"release-{run}", client), []

    def act():
        try:
            started.wait()
            outcome.append(action())
        finally:
            release.set()

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    try:
        yield started.name, release.name, outcome
    finally:
        started.set()  # whatever happened in the stream, the thread ends and no call waits on
        thread.join()
        release.set()


def test_killing_every_worker_holding_the_shared_objects_loses_nothing(own_cluster):
    ex, table = DaskExecutor(own_cluster), np.arange(6) * 10
    with _while_held(own_cluster, lambda: _kill_holders_of_shared(own_cluster)) as (started, release, killed):
        results = dict(ex.stream(held, [(started, release, i) for i in range(6)], shared={"table": table},
                                 name="held"))
    assert killed[0]  # the shared objects were held by a worker, and every copy died before a call returned
    assert results == {i: table[i] * 2 for i in range(6)}  # computed again from the scheduler's spec


def test_a_worker_killed_mid_extraction_changes_nothing(own_cluster, busi_copy12, tmp_path, monkeypatch):
    kw = dict(progress=False, batch_size=4)  # handcrafted: fresh workers need no torch (CNNs: the tests above)
    here = extract(_load(busi_copy12), [], ["glcm"], cache=tmp_path / "here" / "c.h5", **kw)  # no rows to reuse
    killed = []
    write = CacheWriter.write

    def write_then_kill(self, start, stop, arrays):
        write(self, start, stop, arrays)
        if not killed:  # the first shard is back: kill every worker holding the dataset and featurizers
            killed.extend(_kill_holders_of_shared(own_cluster))

    monkeypatch.setattr(CacheWriter, "write", write_then_kill)
    path = tmp_path / "killed" / "c.h5"
    extract(_load(busi_copy12), [], ["glcm"], cache=path, executor=own_cluster, shard_size=4, **kw)
    monkeypatch.undo()
    assert killed
    _assert_same_cache(here.cache.path, path)


def test_a_cancelled_task_is_a_clear_error(client):
    from distributed import Future

    def cancel():
        client.cancel([Future(k, client) for k in list(client.futures) if str(k).startswith("featurekit-held-")],
                      reason="cancelled by the test")

    with _while_held(client, cancel) as (started, release, _):
        stream = DaskExecutor(client).stream(held, [(started, release, i) for i in range(3)],
                                             shared={"table": [1, 2, 3]}, name="held")
        with pytest.raises(ClusterError, match=r"featurekit-held-\d-\w+ \(held call \d\) was lost: cancelled on "
                                               r"the cluster \(cancelled by the test\)"):
            list(stream)


def test_a_task_that_kills_its_workers_is_a_clear_error():
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        # every call assigned to the worker when it died is lost with call 1
        with pytest.raises(ClusterError, match=r"featurekit-dying-\d-\w+ \(dying call \d\) was lost: not "
                                               r"recomputed: the worker running it died, 1 time \(the last: tcp"):
            list(DaskExecutor(c).stream(die_at_one, [(0,), (1,), (2,)], name="dying"))


def _count_decodes(client):
    """Make every worker count its image decodes per file (returns a function reading the counts)."""
    def install():
        from collections import Counter

        from featurekit.data import sources

        if not hasattr(sources, "_decodes"):
            original = sources.read_image

            def counted(path):
                sources._decodes.update([str(path)])
                return original(path)

            sources.read_image = counted
        sources._decodes = Counter()

    def read():
        from featurekit.data import sources

        return dict(sources._decodes)

    client.run(install)

    def total():
        counts = {}
        for per_worker in client.run(read).values():
            for path, n in per_worker.items():
                counts[path] = counts.get(path, 0) + n
        return counts

    return total


def test_a_cluster_decodes_each_image_once_for_every_featurizer(client, busi_copy12, local_cache, tmp_path):
    decodes = _count_decodes(client)
    ds = _load(busi_copy12)
    path = tmp_path / "once.h5"
    extract(ds, LAYERS, ["glcm", "gabor"], cache=path, executor=client, shard_size=4, **SMALL)
    counts = decodes()
    # the CNN, GLCM and Gabor all computed every row, from one decoding of each image on the workers
    assert len(counts) == len(ds) and set(counts.values()) == {1}
    cache = FeatureCache(path)
    assert {"glcm", "gabor"} <= set(cache.keys())
    here = FeatureCache(local_cache)
    for e in here.entries():  # the entries the local reference also holds: bit for bit
        np.testing.assert_array_equal(here.get(e.key, entry_id=e.entry_id), cache.get(e.key, entry_id=e.entry_id))


def test_skipping_a_bad_image_on_a_cluster_equals_local(client, busi_copy12, tmp_path, one_torch_thread):
    root = tmp_path / "busi"
    shutil.copytree(busi_copy12, root)
    bad = root / "malignant" / "malignant (2).png"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated: the file hashes, its decoding fails mid-shard
    kw = dict(SMALL, on_error="skip")
    here = extract(_load(root), LAYERS, ["glcm"], cache=tmp_path / "here" / "c.h5", **kw)
    there = extract(_load(root), LAYERS, ["glcm"], cache=tmp_path / "there" / "c.h5", executor=client,
                    shard_size=4, **kw)
    assert list(here.skipped) == ["malignant/malignant (2)"] and here.skipped == there.skipped
    _assert_same_cache(here.cache.path, there.cache.path)
    assert len(there.cache.ids) == len(here.cache.ids)


def test_a_bad_image_on_a_worker_is_the_local_error(client, busi_copy12, tmp_path, capsys):
    root = tmp_path / "busi"
    shutil.copytree(busi_copy12, root)
    bad = root / "malignant" / "malignant (2).png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    with pytest.raises(DataError) as here:
        extract(_load(root), LAYERS, [], cache=tmp_path / "a.h5", **SMALL)
    with pytest.raises(DataError) as there:
        extract(_load(root), LAYERS, [], cache=tmp_path / "b.h5", executor=client, shard_size=4, **SMALL)
    assert "malignant (2).png" in str(here.value)
    assert str(there.value) == str(here.value)
    # the command line prints it without a traceback, through the same cluster
    args = ["extract", str(root), "--classes", "benign,malignant", "--positive", "malignant", "--roi", "mask",
            "--handcrafted", "glcm", "--cache", str(tmp_path / "c.h5"), "--quiet",
            "--executor", "dask", "--scheduler", client.scheduler.address, "--shard-size", "4"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "malignant (2).png" in err and "Traceback" not in err


def test_a_relative_data_path_is_read_by_workers_elsewhere(client, busi_copy12, tmp_path, monkeypatch):
    here = tmp_path / "elsewhere"
    here.mkdir()
    monkeypatch.chdir(here)
    assert str(here) not in client.run(os.getcwd).values()  # the workers resolve nothing from here
    rel = os.path.relpath(busi_copy12)
    assert rel.startswith("..")
    kw = dict(progress=False, batch_size=4)
    local = extract(_load(rel), [], ["glcm"], cache=tmp_path / "here.h5", **kw)
    there = extract(_load(rel), [], ["glcm"], cache=tmp_path / "there.h5", executor=client, shard_size=4, **kw)
    assert len(there.computed) == 1
    _assert_same_cache(local.cache.path, there.cache.path)


def test_a_file_a_worker_cannot_read_names_the_worker_and_the_path(client, busi_copy12, tmp_path):
    import re

    root = tmp_path / "busi"
    shutil.copytree(busi_copy12, root)
    ds = _load(root)
    ds.fingerprint()  # every file read here
    path = ds.image_path(0)
    os.remove(path)  # ... and gone before a worker reads it
    with pytest.raises(DataError, match=re.escape(path) + r": file not found on Dask worker (tcp://\S+)") as err:
        client.submit(ds.image, 0, pure=False).result()
    worker = re.search(r"on Dask worker (tcp://\S+)", str(err.value)).group(1)
    assert worker in client.scheduler_info()["workers"]


def test_full_maps_are_refused_on_a_cluster(client):
    with pytest.raises(ClusterError, match="pool='none'"):
        extract(random_dataset(4, 32), ["mobilenet_v2:features.1"], cache=None, pool="none",
                executor=client, weights="none", size=32, progress=False)


@pytest.mark.filterwarnings("ignore::featurekit.evaluation.stats.delong.NestedModelWarning")
def test_evaluate_on_a_cluster_equals_local(client, tmp_path):
    n = 60
    y = np.arange(n) % 2
    cache = make_cache(tmp_path / "c.h5", {"gabor": separable(n, 6, 1.0, 0), "net/layer3": separable(n, 8, 0.7, 1)},
                       labels=y)
    # the 3 rows only (no selected row): the test counts their fits
    common = dict(classifiers=["logreg"], cv="3x2", fuse=["net/layer3+gabor"], n_boot=300, select=False)
    here = evaluate_features(cache.path, ["gabor", "net/layer3"], **common)
    from distributed import get_task_stream

    with get_task_stream(client) as stream:
        there = evaluate_features(cache.path, ["gabor", "net/layer3"], executor=client, **common)
    assert len(here.results) == 3 and len(here.predictions) == 3 * 2 * n
    # 3 rows x 6 folds = 18 short fits, grouped into GROUPS_PER_THREAD tasks per worker thread
    outer = {str(t["key"]) for t in stream.data if str(t["key"]).startswith("featurekit-cross-validation")}
    assert len(outer) == GROUPS_PER_THREAD * 2
    cols = [c for c in here.results.columns if c != "seconds"]
    pd.testing.assert_frame_equal(here.results[cols], there.results[cols])
    pd.testing.assert_frame_equal(here.predictions, there.predictions)
    pd.testing.assert_frame_equal(here.comparisons, there.comparisons)


def test_few_outer_fits_fan_their_inner_fits_out(client, tmp_path):
    from distributed import get_task_stream

    n = 40
    cache = make_cache(tmp_path / "c.h5", {"gabor": separable(n, 5, 0.8, 3)})
    common = dict(classifiers=["logreg"], cv="2", search=True, n_boot=200)
    here = evaluate_features(cache.path, ["gabor"], **common)
    with get_task_stream(client) as stream:
        there = evaluate_features(cache.path, ["gabor"], executor=client, **common)
    # 2 outer fits < 2 x 2 worker threads: the grid search and Youden fits became tasks of their own
    keys = [str(t["key"]) for t in stream.data]
    outer = [k for k in keys if k.startswith("featurekit-cross-validation")]
    assert len(outer) == 2 and len(keys) > len(outer) + 2
    assert any("fit_and_score" in k for k in keys) and any("_fit_scores" in k for k in keys)
    pd.testing.assert_frame_equal(here.predictions, there.predictions)
    cols = [c for c in here.results.columns if c != "seconds"]
    pd.testing.assert_frame_equal(here.results[cols], there.results[cols])


def test_finetuning_cv_on_a_cluster_equals_local(client, one_torch_thread):
    ds = random_dataset(16, 28)
    cfg = FinetuneConfig(model="resnet18", weights="none", small_input=True, size=28, epochs=2, batch_size=4,
                         optimizer="adam", lr=1e-3, scheduler="none", augment=["flip"], val_fraction=0.25,
                         patience=0, device="cpu")
    here = finetune_cv(ds, cfg, "2", n_boot=50, progress=False)
    there = finetune_cv(ds, cfg, "2", n_boot=50, progress=False, executor=client)
    assert len(there.predictions) == 16
    pd.testing.assert_frame_equal(here.predictions, there.predictions)
    cols = [c for c in here.rows.columns if c != "seconds"]
    pd.testing.assert_frame_equal(here.rows[cols], there.rows[cols])
    assert [f["best_epoch"] for f in here.folds] == [f["best_epoch"] for f in there.folds]
    with pytest.raises(FinetuneError, match="--workers 0"):  # DataLoader processes: local runs only
        finetune_cv(ds, dataclasses.replace(cfg, num_workers=1), "2", n_boot=50, progress=False, executor=client)


# ---------------------------------------------------------------------------- without a cluster


def test_shards_are_whole_batches():
    batches = [(0, 4), (4, 8), (8, 12), (12, 16), (16, 18)]
    assert plan_shards(batches, 8) == [[(0, 4), (4, 8)], [(8, 12), (12, 16)], [(16, 18)]]
    # the nearest whole batches: 4 rows are nearer 5 than 8 are; 4 + 2 is nearer than 4
    assert plan_shards(batches, 5) == [[(0, 4)], [(4, 8)], [(8, 12)], [(12, 16), (16, 18)]]
    assert plan_shards(batches, 6) == [[(0, 4), (4, 8)], [(8, 12), (12, 16)], [(16, 18)]]
    assert plan_shards(batches, 1) == [[b] for b in batches]
    # default: about 4 shards per worker thread
    assert len(plan_shards([(i, i + 1) for i in range(80)], None, n_workers=2)) == 8
    # 160 rows in batches of 16 on 2 workers: 20 rows asked, one batch each (not two: 32 is further from 20)
    assert plan_shards([(a, a + 16) for a in range(0, 160, 16)], None, n_workers=2) == \
        [[(a, a + 16)] for a in range(0, 160, 16)]
    assert plan_shards([], 8) == []
    with pytest.raises(ClusterError):
        plan_shards(batches, 0)


def test_a_dataset_holds_absolute_paths(busi_copy12, tmp_path, monkeypatch):
    """Relative paths are joined to the working directory where the dataset is built, not where it is read."""
    monkeypatch.chdir(tmp_path)
    ds = _load(os.path.relpath(busi_copy12))
    assert all(os.path.isabs(ds.image_path(i)) for i in range(len(ds)))
    monkeypatch.chdir("/")  # as a worker started elsewhere
    np.testing.assert_array_equal(ds.image(3), _load(busi_copy12).image(3))
    assert ds.fingerprint() == _load(busi_copy12).fingerprint()


def test_choosing_an_executor():
    assert isinstance(as_executor(None), LocalExecutor) and isinstance(as_executor("local", 2), LocalExecutor)
    assert as_executor("local", 2).n_jobs == 2
    ex = LocalExecutor()
    assert as_executor(ex) is ex
    with pytest.raises(ClusterError, match="Client"):
        as_executor("dask")
    with pytest.raises(ClusterError, match="unknown executor"):
        as_executor("slurm")
    with pytest.raises(ClusterError, match="no such scheduler file"), connect("/nonexistent/scheduler.json"):
        pass
    with pytest.raises(ClusterError, match="positive number"), connect("local:0"):
        pass


def test_local_n_starts_and_closes_a_cluster():
    lines = []
    with connect("local:1", echo=lines.append) as ex:
        assert not ex.started and not lines  # started by the first work that needs it
        assert ex.n_workers == 1 and ex.map(abs, [(-3,), (4,)]) == [3, 4]
        assert ex.started
        # its workers get featurekit's allocator setting on top of Dask's own
        environ = list(ex.client.run(lambda: dict(os.environ)).values())[0]
        assert all(environ.get(k) == str(v) for k, v in WORKER_ENVIRON.items())
        assert "MALLOC_TRIM_THRESHOLD_" in environ
        cluster = ex.client.cluster
    assert "1 workers, 1 threads; dashboard http" in lines[0]
    assert cluster.status.name == "closed"


def test_a_cached_extract_starts_no_cluster(busi_copy12, local_cache, tmp_path, monkeypatch, capsys):
    from featurekit import executors

    path = tmp_path / "c.h5"
    shutil.copy(local_cache, path)
    started = []
    monkeypatch.setattr(executors, "local_cluster", lambda *a, **k: started.append(a) or 1 / 0)
    args = ["extract", str(busi_copy12), "--classes", "benign,malignant", "--positive", "malignant", "--roi", "mask",
            "--layers", LAYERS[0], "--handcrafted", "glcm", "--weights", "none", "--size", "64", "--batch-size",
            "4", "--cache", str(path), "--scheduler", "local:2"]
    assert main(args) == 0
    assert not started and "reused" in capsys.readouterr().out


def test_client_is_wrapped(client):
    ex = as_executor(client)
    assert isinstance(ex, DaskExecutor) and ex.n_workers == 2 and "2 workers" in ex.describe()
    assert ex.map(divmod, [(7, 2), (9, 4)], progress=False) == [(3, 1), (2, 1)]
    assert ex.map(pow, [(2,), (3,)], shared={"exp": 3}) == [8, 27]


def test_a_worker_leaves_the_shared_featurizers_as_sent(busi_copy12, monkeypatch):
    """Dask may copy shared data between workers at any time: a worker keeps its model beside them."""
    import cloudpickle as pickle  # as Dask sends them

    from featurekit.extraction.decode import plan_cells
    from featurekit.extraction.distributed import _run_shard
    from featurekit.extraction.pipeline import build_featurizers
    from featurekit.models import weights

    builds = []
    load = weights.ModelRef.load
    monkeypatch.setattr(weights.ModelRef, "load", lambda self: (builds.append(1), load(self))[1])
    ds = _load(busi_copy12)
    featurizers, _ = build_featurizers(LAYERS, ["glcm"], weights="none", size=64, num_workers=0)
    sent = pickle.dumps(featurizers)
    specs = [f.specs for f in featurizers]
    cells = plan_cells([[(0, 4), (4, 8)]] * 2, 4, [False, True])
    outs = []
    for cell in cells:  # two shards of one run on this "worker"
        batches = [list(cell.batches[0]), list(cell.batches[1])]
        outs.append(_run_shard(batches, specs, 4, "auto", "raise", "run1", featurizers, ds))
    assert len(builds) == 1  # the model built on the first shard serves the second
    assert pickle.dumps(featurizers) == sent  # no model, no hooks, no recorded hash in what was shared
    assert featurizers[0].loaded is None and "weights_sha256" not in featurizers[0].specs[0].attrs
    cnn_id = featurizers[0].specs[0].entry_id
    assert all(attrs[cnn_id]["weights_sha256"] for _, attrs in outs)  # the hash comes back with each shard
    _run_shard([[(8, 12)], []], specs, 4, "auto", "raise", "run2", featurizers, ds)
    assert len(builds) == 2  # another run: its own model


def test_a_local_cluster_that_cannot_start_is_one_clear_error(monkeypatch):
    from featurekit import executors

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("no free port")

    monkeypatch.setattr(executors, "local_cluster", refuse)
    with connect("local:2") as ex, pytest.raises(ClusterError, match="cannot start a local Dask cluster.*no free port"):
        ex.map(abs, [(-1,), (2,)])
    assert len(attempts) == 1  # tried once, not again behind n_workers' guard
