"""Subprocess body for the cache crash and concurrency tests.

usage: python _cache_worker.py CACHE MODE [LOCK_TIMEOUT]
MODE slow:    extract with a pause after each journaled batch (to be killed)
MODE crash:   extract, then die (os._exit) after building the new file, right before the atomic replace
MODE hold:    take the write lock, print "locked", wait for CACHE.release, then extract
MODE normal:  extract
MODE workers: extract with 2 DataLoader workers that, once started, write CACHE.worker-<pid> and block (to be killed)
MODE small:   write a small entry (3 features, 4 rows) with the writer API
MODE haar:    then try twice to add 162,336 features and their names (as many as the Haar family),
              printing "DiskFullError: ..." for each clean failure (a full disk must not crash HDF5)
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from conftest import random_dataset  # noqa: E402

import featurekit.cache as cache_mod  # noqa: E402
import featurekit.cache.writer as writer_mod  # noqa: E402
from featurekit.cache import DatasetMeta, EntrySpec, FeatureCache  # noqa: E402
from featurekit.errors import DiskFullError  # noqa: E402

SPEC = ["resnet18:conv2_block2_out,conv4_block1_out,avg_pool"]
N = 4
META = DatasetMeta([f"s{i}" for i in range(N)], np.arange(N) % 2, ["a", "b"], "f" * 64, "disk", "memory", "b",
                   None, [f"{i:064x}" for i in range(N)])
SMALL = EntrySpec("small", {"family": "small"}, 3)
HAAR = EntrySpec("haar", {"family": "haar"}, 162336,
                 feature_names=[f"haar_type{i % 5}_x{i % 24}_y{i % 23}_w{i}" for i in range(162336)])


def write_entry(cache_path: str, spec: EntrySpec) -> None:
    """Journal and commit one entry of ones for META."""
    with FeatureCache(cache_path).writer(META) as w:
        if w.missing([spec]):
            w.plan([spec], N)
            w.write(0, N, {spec.entry_id: np.ones((N, spec.dim), np.float32)})
            w.commit([spec])


def fill(cache_path: str) -> list[str]:
    """Try twice to add HAAR; the messages of the DiskFullErrors."""
    errors = []
    for _ in range(2):
        try:
            write_entry(cache_path, HAAR)
        except DiskFullError as exc:
            errors.append(f"DiskFullError: {exc}")
    return errors


def run(cache_path: str, mode: str, lock_timeout: float = 600.0):
    if mode in ("small", "haar"):
        if mode == "small":
            write_entry(cache_path, SMALL)
        else:
            print("\n".join(fill(cache_path)), flush=True)
        return
    from featurekit.extraction.pipeline import extract

    if mode == "slow":
        original = cache_mod.CacheWriter.write

        def slow_write(self, *args, **kwargs):
            original(self, *args, **kwargs)
            print("batch", flush=True)
            time.sleep(0.3)

        cache_mod.CacheWriter.write = slow_write
    if mode == "crash":
        def die(path, write, nbytes=None):
            tmp = Path(path).with_name(f".{Path(path).name}.tmp-{os.getpid()}-crash")
            write(tmp)  # the new file is complete beside the old one ...
            os._exit(17)  # ... and the process dies before os.replace

        writer_mod.atomic_call = die
    if mode == "hold":
        from featurekit.cache import DatasetMeta, FeatureCache

        release = Path(cache_path + ".release")
        with FeatureCache(cache_path).writer(DatasetMeta.from_dataset(random_dataset(n=24, size=40))):
            print("locked", flush=True)
            while not release.exists():
                time.sleep(0.05)
    workers = 0
    if mode == "workers":
        from featurekit.extraction import decode

        def blocked(self, cell):
            Path(f"{cache_path}.worker-{os.getpid()}").touch()
            while True:
                time.sleep(1)

        decode.CellDecoder.__call__ = blocked
        workers = 2
    result = extract(random_dataset(n=24, size=40), SPEC, cache=cache_path, weights="none", size=40,
                     batch_size=4, num_workers=workers, progress=False, lock_timeout=lock_timeout)
    print(f"computed={len(result.computed)} reused={len(result.reused)}", flush=True)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 600.0)
