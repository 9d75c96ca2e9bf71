"""The selected row's cost: flat evaluation of every candidate vs the same with the selected row, local and on Dask.

Rows, one run, the same candidates and folds (wall time, best of ``--repeats``):

* ``flat``                 -- every candidate row, no selected row (``select=False``): each
  fold fit plus its inner-CV Youden threshold (the default);
* ``flat + selected``      -- the same plus the selected row (the default with two or more
  candidates): the choice reuses the inner CV the thresholds already run;
* ``flat (youden=train) + selected`` vs ``flat (youden=train)`` -- where the thresholds need
  no inner CV, the selection runs one per candidate and fold: its worst case;
* ``textbook nested CV``   -- :class:`~featurekit.evaluation.results.selection.SelectBestCandidate`
  as one estimator in the outer CV (inner CV of every candidate, then a refit), the
  reference the selected row reproduces.

Target (issue 18): the nested selection costs at most (inner folds + 1) x the flat evaluation
of the same candidates, locally and on a 2-worker LocalCluster.

The candidates read cached features (:class:`~featurekit.evaluation.estimators.features.CachedFeatures`
over an HDF5 cache of ``--sets`` synthetic feature sets) with ``--classifiers``.

    python benchmarks/bench_selection.py --n 300 --sets 10 --classifiers logreg,linear_svm,knn
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
from _common import best_time


def make_cache(path: Path, n: int, n_sets: int, width: int, seed: int = 0):
    """An HDF5 feature cache of ``n_sets`` entries of ``width`` features, a weak signal growing with the set."""
    from featurekit.cache import DatasetMeta, EntrySpec, FeatureCache

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    ids = [f"img{i:05d}" for i in range(n)]
    meta = DatasetMeta(ids, y.astype(np.int64), ["benign", "malignant"], "b" * 64, "bench", "memory:bench",
                       "malignant", None)
    specs, arrays = [], {}
    for s in range(n_sets):
        X = rng.normal(size=(n, width)).astype(np.float32)
        X[:, 0] += (0.15 * s) * y
        spec = EntrySpec(key=f"set{s:02d}", params={"family": f"set{s:02d}", "estimator": "Bench"}, dim=width)
        specs.append(spec)
        arrays[spec.entry_id] = X
    cache = FeatureCache(path)
    with cache.writer(meta) as w:
        todo = w.missing(specs)
        w.plan(todo, n)
        w.write(0, n, {s.entry_id: arrays[s.entry_id] for s in todo})
        w.commit(todo)
    return cache, np.asarray(ids, dtype=object), y


def candidates(cache, n_sets: int, classifiers: list[str]) -> dict:
    from featurekit.evaluation.estimators.classifiers import make_classifier, make_pipeline_for
    from featurekit.evaluation.estimators.features import CachedFeatures

    return {f"set{s:02d} | {c}": make_pipeline_for(CachedFeatures(f"set{s:02d}", cache=cache.path), make_classifier(c))
            for s in range(n_sets) for c in classifiers}


def measure(cands, ids, y, cv: str, k: int, executor, repeats: int) -> dict[str, float]:
    from featurekit.evaluation.results.crossval import cross_validate
    from featurekit.evaluation.results.selection import SelectBestCandidate

    common = dict(cv=cv, n_boot=0, compare=False, youden_cv=k, executor=executor)
    rows = {
        "flat": lambda: cross_validate(cands, ids, y, select=False, **common),
        "flat + selected": lambda: cross_validate(cands, ids, y, **common),
        "flat (youden=train)": lambda: cross_validate(cands, ids, y, select=False, youden="train", **common),
        "flat (youden=train) + selected": lambda: cross_validate(cands, ids, y, youden="train", **common),
        "textbook nested CV": lambda: cross_validate(
            {"nested": SelectBestCandidate(list(cands.items()), cv=k)}, ids, y, youden="train", **common),
    }
    rows["flat"]()  # warm-up: imports, and on a cluster the workers' first tasks
    return {name: best_time(fn, repeats) for name, fn in rows.items()}


def report(where: str, t: dict[str, float], k: int) -> None:
    print(f"\n{where}")
    for name, s in t.items():
        print(f"  {name:34s} {s:8.2f} s")
    bound = k + 1
    r1 = t["flat + selected"] / t["flat"]
    r2 = t["flat (youden=train) + selected"] / t["flat (youden=train)"]
    print(f"  selected / flat (youden=inner):  {r1:5.2f}x  (target <= {bound}x: {'met' if r1 <= bound else 'NOT met'})")
    print(f"  selected / flat (youden=train):  {r2:5.2f}x  (target <= {bound}x: {'met' if r2 <= bound else 'NOT met'})")
    print(f"  textbook nested / flat (youden=train): {t['textbook nested CV'] / t['flat (youden=train)']:5.2f}x")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300, help="samples (default 300)")
    p.add_argument("--sets", type=int, default=10, help="cached feature sets (default 10)")
    p.add_argument("--width", type=int, default=64, help="features per set (default 64)")
    p.add_argument("--classifiers", default="logreg,linear_svm,knn")
    p.add_argument("--cv", default="5")
    p.add_argument("--inner", type=int, default=3, help="inner folds (default 3)")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster workers (0: local only)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--smoke", action="store_true",
                   help="the smallest run of every code path, in seconds (what CI runs); its figures mean nothing")
    args = p.parse_args(argv)
    if args.smoke:
        args.n, args.sets, args.width, args.classifiers, args.cv, args.workers, args.repeats = \
            40, 2, 4, "logreg", "3", 1, 1
    classifiers = [c.strip() for c in args.classifiers.split(",") if c.strip()]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}; "
          f"{args.n} samples, {args.sets} sets x {len(classifiers)} classifiers = "
          f"{args.sets * len(classifiers)} candidates, cv {args.cv}, inner {args.inner}")
    with tempfile.TemporaryDirectory() as tmp:
        cache, ids, y = make_cache(Path(tmp) / "c.h5", args.n, args.sets, args.width)
        cands = candidates(cache, args.sets, classifiers)
        report("local (1 process)", measure(cands, ids, y, args.cv, args.inner, None, args.repeats), args.inner)
        if args.workers:
            from distributed import Client, LocalCluster

            with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                              dashboard_address=":0") as cluster, Client(cluster) as client:
                report(f"LocalCluster ({args.workers} workers x 1 thread)",
                       measure(cands, ids, y, args.cv, args.inner, client, args.repeats), args.inner)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
