"""What the cache's guarantees cost: checked reads, and one commit per run instead of one per featurizer.

Usage: python benchmarks/bench_cache.py [--rows 780] [--dim 65536] [--smoke]

1. Reading one entry of rows x dim float32 (default 780 x 65,536 = 204 MB, a
   BUSI-sized Haar-like entry): a plain h5py read of the array (chunked, no
   checksum: what featurekit stores; the reference), the same array with HDF5's
   Fletcher-32 filter (the checksum featurekit tried and left for its cost),
   ``FeatureCache.get`` the first time in a process (read + sha256 of the array)
   and again (sha256 memoised per file version: a plain read).
2. Committing three small entries into a file that already holds the big one:
   one commit per entry (what featurekit did, one copy of the file per
   featurizer) against one commit for the run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from featurekit.cache import DatasetMeta, EntrySpec, FeatureCache, reader


def _meta(n: int) -> DatasetMeta:
    ids = [f"s{i:05d}" for i in range(n)]
    return DatasetMeta(ids, np.arange(n) % 2, ["a", "b"], "f" * 64, "bench", "memory", "b", None,
                       [f"{i:064x}" for i in range(n)])


def _write(cache: FeatureCache, meta: DatasetMeta, specs, per_entry_commit: bool, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    n = len(meta.ids)
    with cache.writer(meta) as w:
        t0 = time.perf_counter()
        for spec in specs:
            w.plan([spec], n)
            w.write(0, n, {spec.entry_id: rng.random((n, spec.dim), dtype=np.float32)})
            if per_entry_commit:
                w.commit([spec])
        w.commit(specs)
        return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=780)
    ap.add_argument("--dim", type=int, default=65536)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke", action="store_true",
                    help="the smallest run of every code path, in seconds (what CI runs); its figures mean nothing")
    args = ap.parse_args(argv)
    if args.smoke:
        args.rows, args.dim, args.repeats = 16, 256, 1
    n = args.rows
    meta = _meta(n)
    big = EntrySpec("haar", {"family": "haar"}, args.dim)
    small = [EntrySpec(f"layer{k}", {"family": "cnn", "k": k}, 1280) for k in range(3)]
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        path = Path(tmp) / "c.h5"
        _write(FeatureCache(path), meta, [big], False)
        size = path.stat().st_size
        entry = FeatureCache(path).entry("haar")
        fletcher = Path(tmp) / "f32.h5"
        with h5py.File(path, "r") as f, h5py.File(fletcher, "w") as g:
            src = f[f"features/haar/{entry.entry_id}"]
            g.create_dataset("x", data=src[()], chunks=src.chunks, fletcher32=True)

        def h5read(file, h5path):
            with h5py.File(file, "r") as g:
                return np.asarray(g[h5path][()])

        def first():
            reader._VERIFIED.clear()  # as in a new process
            return FeatureCache(path).get("haar")

        runs = {"plain": lambda: h5read(path, f"features/haar/{entry.entry_id}"),
                "fletcher": lambda: h5read(fletcher, "x"), "first": first,
                "again": lambda: FeatureCache(path).get("haar")}
        timed = {name: float("inf") for name in runs}
        for _ in range(args.repeats):  # interleaved, best of each: the VM is shared
            for name, fn in runs.items():
                t0 = time.perf_counter()
                out = fn()
                timed[name] = min(timed[name], time.perf_counter() - t0)
        ref = runs["plain"]()
        assert np.array_equal(out, ref)
        plain, checked, memo = timed["plain"], timed["first"], timed["again"]
        print(f"read {n} x {args.dim} float32 ({size / 1e6:.0f} MB file)")
        print(f"  plain h5py read, no checksum (ref.)   {plain:7.3f} s")
        print(f"  h5py read, HDF5 Fletcher-32 filter    {timed['fletcher']:7.3f} s   ratio "
              f"{timed['fletcher'] / plain:5.2f}")
        print(f"  get, first in process (read + sha256) {checked:7.3f} s   ratio {checked / plain:5.2f}")
        print(f"  get, again (sha256 memoised)          {memo:7.3f} s   ratio {memo / plain:5.2f}")
        per_entry = [float("inf"), float("inf")]
        for rep in range(3):
            for k, per in enumerate((True, False)):
                target = Path(tmp) / f"c-{per}-{rep}.h5"
                target.write_bytes(path.read_bytes())
                per_entry[k] = min(per_entry[k], _write(FeatureCache(target), meta, small, per, seed=1))
                target.unlink()
        print(f"commit 3 entries of {n} x 1280 beside it")
        print(f"  one commit per entry (reference)      {per_entry[0]:7.3f} s")
        print(f"  one commit per run                    {per_entry[1]:7.3f} s   ratio "
              f"{per_entry[1] / per_entry[0]:5.2f}")


if __name__ == "__main__":
    main()
