"""Local vs Dask: the same extraction and cross-validation, side by side in one run.

Three ways to run the same work, each from a fresh cache file in a folder of its own
(a cache reuses the finished rows of its sibling caches):

* ``local``   -- the local executor (calls in this process);
* ``dask 1w`` -- a ``LocalCluster`` of 1 worker process with as many threads as
  the machine has cores (the resources ``local`` has);
* ``dask 2w`` -- a ``LocalCluster`` of 2 worker processes x 1 thread;

the clusters as ``--scheduler local:N`` starts them (``featurekit.executors.local_cluster``:
Dask's worker environment plus ``WORKER_ENVIRON``), and the same two with Dask's worker
environment alone (``1w dask-env``, ``2w dask-env``: ``MALLOC_TRIM_THRESHOLD_`` without the
mmap threshold), to show what that setting is worth.

Work (BUSI benign + malignant from $FEATUREKIT_SHARED, every k-th image, mask ROI):

* ``cnn``        -- ``vgg16:8-17`` (10 layers, GAP), ``--weights none`` (a forward pass
  costs the same with any weights), ``--size`` px, batch 16;
* ``handcrafted`` -- gabor, glcm, haar (default parameters);
* ``cv fits``    -- the fan-out (``cross_validate``): every (feature set x
  classifier x outer fold) fit with its Youden inner CV (the 13 cached feature
  sets x ``--classifiers`` x ``--cv``), ``n_boot=0``, no DeLong. The bootstrap
  intervals and DeLong tests run in the calling process in every mode: their
  cost per row is printed apart.

One mode at a time: a cluster is started and warmed (featurekit and torch
imported in every worker) before its timings, its start-up printed apart, and
closed before the next mode (idle clusters take CPU on a 2-core machine). Each
work runs ``--repeats`` times per mode and the best is kept; ``local`` runs
first and again last (its best of both), so a drift of the VM shows; the load
average is printed with the figures (the VM is shared). Then per-image costs for the "at scale" estimate of
benchmarks/README.md: decode + preprocess, the CPU forward pass, the single
writer's journal and commit.

Targets (2-core VM): ``dask 1w`` <= 1.10x the local time; ``dask 2w`` >= 1.6x
faster than local on ``cv fits`` and ``handcrafted``.

    python benchmarks/bench_cluster.py            # the recorded run (see benchmarks/README.md)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def busi(n: int, shared: Path):
    from featurekit.data import load_dataset

    ds = load_dataset(shared / "data" / "busi", classes=["benign", "malignant"], positive="malignant", roi="mask")
    step = max(1, len(ds) // n)
    rows = list(range(0, step * n, step))[:n]
    return ds.subset(rows), f"BUSI benign+malignant, every {step}th of {len(ds)} images ({len(rows)}), mask ROI"


def warm(client) -> None:
    def imports():
        import torch  # noqa: F401

        import featurekit.evaluation.results.crossval  # noqa: F401
        import featurekit.extraction.pipeline  # noqa: F401
        import featurekit.handcrafted  # noqa: F401

    client.run(imports)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-images", type=int, default=96, help="images of the CNN extraction and the CV")
    p.add_argument("--n-handcrafted", type=int, default=320, help="images of the handcrafted extraction")
    p.add_argument("--size", type=int, default=128, help="vgg16 input size (default 128)")
    p.add_argument("--cv", default="5x2")
    p.add_argument("--classifiers", default="logreg", help="classifiers of the CV (default: logreg)")
    p.add_argument("--repeats", type=int, default=2, help="runs of each work per mode (best of)")
    p.add_argument("--only", default="cnn,handcrafted,cv,costs", help="parts to run")
    p.add_argument("--smoke", action="store_true",
                   help="the smallest run of every code path, in seconds (what CI runs; local and 'dask 1w' only); "
                        "its figures mean nothing")
    args = p.parse_args(argv)
    cnn = "vgg16:8-17"
    if args.smoke:  # 32 images: enough of each class for the 2 outer folds' 3-fold Youden inner CV
        args.n_images, args.n_handcrafted, args.size, args.cv, args.repeats = 32, 4, 32, "2", 1
        cnn = "resnet18:conv2_block1_out,conv3_block1_out"  # the same code path as vgg16's, a fraction of its cost
    parts = set(args.only.split(","))

    import dask
    import torch
    from distributed import Client, LocalCluster

    from featurekit.cache import FeatureCache
    from featurekit.evaluation.estimators.classifiers import make_classifier, make_pipeline_for
    from featurekit.evaluation.estimators.features import CachedFeatures
    from featurekit.evaluation.results.crossval import cross_validate
    from featurekit.executors import local_cluster
    from featurekit.extraction.pipeline import extract

    shared = Path(os.environ.get("FEATUREKIT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    ds, what = busi(args.n_images, shared)
    ds_hand, what_hand = busi(args.n_handcrafted, shared)
    cores = os.cpu_count() or 1
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}, torch "
          f"{torch.__version__}, dask {dask.__version__}; torch threads here {torch.get_num_threads()}")
    print(f"data: CNN and CV: {what}; handcrafted: {what_hand}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_cluster_"))

    cluster_kinds = {"dask 1w": (1, cores, local_cluster), "dask 2w": (2, 1, local_cluster),
                     "1w dask-env": (1, cores, LocalCluster), "2w dask-env": (2, 1, LocalCluster)}
    modes = ["local", *cluster_kinds] if not args.smoke else ["local", "dask 1w"]

    @contextlib.contextmanager
    def executor_of(name):
        """Nothing for local; else a cluster started and warmed for this mode only (an idle cluster's
        heartbeats and event loops take CPU from the one measured, on 2 cores)."""
        if name == "local":
            yield None
            return
        n, threads, make = cluster_kinds[name]
        t0 = time.perf_counter()
        with make(n_workers=n, threads_per_worker=threads, processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            warm(client)
            print(f"{name}: {n} worker(s) x {threads} thread(s), started and warmed in "
                  f"{time.perf_counter() - t0:.1f} s; dashboard {client.dashboard_link}", flush=True)
            yield client

    counter = iter(range(10**6))

    def run_extract(executor, layers, hand, data=ds):
        # a folder of its own: a cache reuses finished rows of its sibling caches (featurekit.cache.reuse)
        path = tmp / f"run{next(counter)}" / "c.h5"
        t0 = time.perf_counter()
        extract(data, layers, hand, cache=path, weights="none", size=args.size, batch_size=16, progress=False,
                executor=executor)
        return time.perf_counter() - t0, path

    work = []
    if "cnn" in parts:
        work.append((f"cnn: {cnn}", lambda ex: run_extract(ex, [cnn], [])[0]))
    if "handcrafted" in parts:
        work.append(("handcrafted: gabor,glcm,haar",
                     lambda ex: run_extract(ex, [], ["gabor", "glcm", "haar"], ds_hand)[0]))
    if "cv" in parts:
        _, path = run_extract(None, [cnn], ["gabor", "glcm", "haar"])
        cache = FeatureCache(path.absolute())
        ids = np.asarray(cache.ids, dtype=object)
        y = np.asarray(cache.labels)
        pipes, meta = {}, {}
        keys = cache.keys()
        for key in keys:
            for clf in args.classifiers.split(","):
                pipes[f"{key} | {clf}"] = make_pipeline_for(CachedFeatures(key, cache=cache.path), make_classifier(clf))
                meta[f"{key} | {clf}"] = {"feature_set": key, "classifier": clf}

        def cv(executor):
            t0 = time.perf_counter()
            ev = cross_validate(pipes, ids, y, cv=args.cv, positive=1, seed=0, n_boot=0, compare=False,
                                meta=meta, executor=executor)
            return time.perf_counter() - t0, ev

        t_fits, ev = cv(None)
        n_folds = int(ev.results["n_folds"].iloc[0])
        print(f"cv {args.cv}: {len(pipes)} pipelines x {n_folds} outer folds = {len(pipes) * n_folds} outer fits, "
              f"each with a 3-fold Youden inner CV ({4 * len(pipes) * n_folds} fits); first local run {t_fits:.1f} s")
        work.append(("cv fits", lambda ex: cv(ex)[0]))
        stats_cost(ev, len(pipes))

    best = {(w, m): float("inf") for w, _ in work for m in modes}
    loads = []
    # one mode at a time, each work --repeats times (best kept); local again at the end to show the drift
    for mname in [*modes, "local"] if not args.smoke else modes:
        with executor_of(mname) as ex:
            for r in range(args.repeats):
                for wname, fn in work:
                    loads.append(os.getloadavg()[0])
                    t = fn(ex)
                    best[(wname, mname)] = min(best[(wname, mname)], t)
                    print(f"  {mname:<11} repeat {r + 1} {wname:<34} {t:7.2f} s; load {load_average()}", flush=True)

    print(f"\nload average (1 min) during the runs: min {min(loads):.1f}, max {max(loads):.1f}")
    print("| work | local s | dask 1w s | dask 2w s | 1w / local time | local / 2w (speed-up) "
          "| dask-env: 1w / local | dask-env: local / 2w |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for wname, _ in work:
        t = [best.get((wname, m), float("nan")) for m in ("local", "dask 1w", "dask 2w", "1w dask-env", "2w dask-env")]
        print(f"| {wname} | {t[0]:.2f} | {t[1]:.2f} | {t[2]:.2f} | {t[1] / t[0]:.2f} | {t[0] / t[2]:.2f}x "
              f"| {t[3] / t[0]:.2f} | {t[0] / t[4]:.2f}x |")

    if "costs" in parts:
        per_image_costs(ds, cnn, args.size, smoke=args.smoke)
    return 0


def stats_cost(ev, n_rows: int) -> None:
    """What the calling process adds to the fits: bootstrap CIs (2000 replicates) and DeLong tests."""
    from featurekit.evaluation.results.comparison import compare_aucs
    from featurekit.evaluation.results.summary import summarise_predictions

    t0 = time.perf_counter()
    summarise_predictions(ev.predictions, n_boot=2000, seed=0)
    boot = time.perf_counter() - t0
    t0 = time.perf_counter()
    compare_aucs(ev.predictions)
    delong = time.perf_counter() - t0
    print(f"statistics in the calling process: bootstrap 2000 x {n_rows} rows {boot:.2f} s "
          f"({boot / n_rows * 1e3:.0f} ms per row), DeLong all {n_rows * (n_rows - 1) // 2} pairs {delong:.2f} s",
          flush=True)


def per_image_costs(ds, cnn: str, size: int, smoke: bool = False) -> None:
    """Decode + preprocess, forward, journal write and commit per image (the at-scale inputs)."""
    import torch

    from featurekit.cache import DatasetMeta, FeatureCache
    from featurekit.extraction.pipeline import build_featurizers

    n = min(32, len(ds))
    sub = ds.subset(list(range(n)))
    for px in sorted({size, 224} if not smoke else {size}):
        (f,), _ = build_featurizers([cnn], weights="none", size=px, num_workers=0)
        pre = f.ref.preprocessing
        t0 = time.perf_counter()
        x = torch.stack([pre(sub.image(i)) for i in range(n)])
        decode = (time.perf_counter() - t0) / n
        loaded = f.load()
        model = loaded.model.to(memory_format=torch.channels_last)
        from featurekit.extraction.activations import ActivationExtractor

        with torch.inference_mode(), ActivationExtractor(model, f.layers, "gap") as ext:
            ext(x[:4].contiguous(memory_format=torch.channels_last))
            t0 = time.perf_counter()
            for a in range(0, n, 16):
                ext(x[a:a + 16].contiguous(memory_format=torch.channels_last))
            forward = (time.perf_counter() - t0) / n
        dims = sum(s.dim for s in f.specs)
        print(f"\nper image at {px} px: decode+preprocess {decode * 1e3:.1f} ms (one core), CPU forward "
              f"{forward * 1e3:.1f} ms ({torch.get_num_threads()} threads); result {dims * 4 / 1024:.1f} KB "
              f"({dims} float32 over {len(f.specs)} layers)")
    # the single writer: journal every batch of 16 for the 10 entries, then commit
    tmp = Path(tempfile.mkdtemp(prefix="bench_writer_"))
    N = 4096 if not smoke else 64
    meta = DatasetMeta([f"s{i}" for i in range(N)], np.zeros(N, dtype=np.int64), ["a", "b"], "f" * 64)
    cache = FeatureCache(tmp / "w.h5")
    rng = np.random.default_rng(0)
    with cache.writer(meta) as w:
        batches = w.plan(f.specs, 16)
        arrays = {s.entry_id: rng.random((16, s.dim), dtype=np.float32) for s in f.specs}
        t0 = time.perf_counter()
        for a, b in batches:
            w.write(a, b, {k: v[: b - a] for k, v in arrays.items()})
        journal = (time.perf_counter() - t0) / N
        t0 = time.perf_counter()
        w.commit(f.specs)
        commit = (time.perf_counter() - t0) / N
    print(f"single writer, {N} images x {len(f.specs)} entries: journal {journal * 1e3:.2f} ms/image "
          f"({1 / journal:.0f} images/s), commit {commit * 1e3:.3f} ms/image")


if __name__ == "__main__":
    raise SystemExit(main())
