#!/usr/bin/env python
"""Peak memory of feature extraction on one large image, per feature family.

Each measurement runs ``featurekit.extraction.pipeline.extract`` on a
one-image dataset (a CSV manifest naming one ``--size`` x ``--size`` PNG) in
a fresh Python process, and reports that process's peak resident set size
(``ru_maxrss`` of the child, from ``os.wait4``):

=========  =================================================================
row        what runs
=========  =================================================================
decode     import featurekit, decode the PNG
floor      also import the extraction pipeline (torch, torchvision, h5py):
           what every row below includes before computing anything
gabor      ``--handcrafted gabor`` (the default transformer of the cache)
glcm       ``--handcrafted glcm``
haar       ``--handcrafted haar``
cnn        ``mobilenet_v2:features.18`` at 224 px, ``weights="none"``,
           ``num_workers=0`` (decoding in the measured process)
=========  =================================================================

The image is a BUSI image (``benign (1).png``) upscaled to the size (gray,
8-bit), written once into a temporary folder. With ``--reference DIR`` (a
checkout of another featurekit version, e.g. ``git worktree add /tmp/old
main~20``) every row is also measured with that code on its ``PYTHONPATH``,
printed side by side. A child whose resident memory passes ``--limit-gb`` is
killed (a watchdog polls ``/proc``) and reported as "> limit", so that the old
code's 17.6 GB Gabor peak cannot take a shared machine down.

Example::

    .venv/bin/python benchmarks/bench_memory.py --size 8000 --reference /tmp/old
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROWS = ("decode", "floor", "gabor", "glcm", "haar", "cnn")

CHILD = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
import featurekit
from featurekit.data import load_dataset
row, manifest, cache = sys.argv[1:4]
ds = load_dataset(manifest)
if row in ("decode", "floor"):
    if row == "floor":
        import featurekit.extraction.pipeline
    img = ds.image(0)
    shape = img.shape
else:
    from featurekit.extraction.pipeline import extract
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if row == "cnn":
            extract(ds, ["mobilenet_v2:features.18"], cache=cache, weights="none", size=224,
                    device="cpu", num_workers=0, progress=False)
        else:
            extract(ds, handcrafted=[row], cache=cache, device="cpu", progress=False)
    shape = [str(w.message)[:200] for w in caught]
print(json.dumps({"seconds": time.perf_counter() - t0, "info": shape, "featurekit": featurekit.__file__}))
"""


def make_image(folder: Path, size: int) -> Path:
    import numpy as np
    from PIL import Image

    shared = Path(os.environ.get("FEATUREKIT_SHARED", REPO.parent / "shared"))
    src = shared / "data" / "busi" / "benign" / "benign (1).png"
    if src.exists():
        im = Image.open(src).convert("L").resize((size, size), Image.BICUBIC)
    else:  # seeded texture when BUSI is not there
        rng = np.random.default_rng(0)
        im = Image.fromarray((rng.random((size // 16, size // 16)) * 255).astype(np.uint8))
        im = im.resize((size, size), Image.BICUBIC)
    png = folder / f"large_{size}.png"
    im.save(png)
    manifest = folder / "manifest.csv"
    manifest.write_text(f"path,label\n{png.name},a\n")
    return manifest


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(row: str, manifest: Path, cache: Path, pythonpath: str, limit: float) -> dict:
    """Run one row in a fresh process; peak RSS (bytes) from wait4, or killed above ``limit``."""
    env = dict(os.environ, PYTHONPATH=pythonpath, OMP_NUM_THREADS="1")
    out_path, err_path = cache.with_suffix(".out"), cache.with_suffix(".err")
    t0 = time.perf_counter()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        # cwd: the temporary folder, so that sys.path[0] ('' with -c) cannot shadow PYTHONPATH
        proc = subprocess.Popen([sys.executable, "-c", CHILD, row, str(manifest), str(cache)], env=env,
                                cwd=str(manifest.parent), stdout=out, stderr=err)
    killed, done = [], threading.Event()

    def watchdog():  # reads /proc only: never reaps the child, wait4 below does
        while not done.is_set():
            if _rss_bytes(proc.pid) > limit:
                killed.append(True)
                os.kill(proc.pid, 9)
                return
            time.sleep(0.02)

    threading.Thread(target=watchdog, daemon=True).start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = {"row": row, "peak_bytes": usage.ru_maxrss * 1024, "wall_s": time.perf_counter() - t0,
              "killed": bool(killed), "rc": proc.returncode}
    out, err = out_path.read_text(), err_path.read_text()
    if proc.returncode == 0 and out.strip():
        result.update(json.loads(out.strip().splitlines()[-1]))
        if not Path(result["featurekit"]).resolve().is_relative_to(Path(pythonpath).resolve()):
            raise SystemExit(f"the child imported {result['featurekit']}, not the code under {pythonpath}")
    elif not killed:
        result["error"] = (err.strip().splitlines() or ["?"])[-1][:300]
    return result


def fmt(r: dict | None, limit: float) -> str:
    if r is None:
        return "—"
    if r["killed"]:
        return f"> {limit / 2**30:.1f} GiB (killed)"
    if r["rc"] != 0:
        return f"failed: {r.get('error', '?')}"
    return f"{r['peak_bytes'] / 2**30:.2f} GiB, {r['wall_s']:.1f} s"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=8000, help="side of the square test image (default 8000)")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows (default {','.join(ROWS)})")
    p.add_argument("--reference", default=None, metavar="DIR",
                   help="another featurekit checkout to measure side by side (its root goes on PYTHONPATH)")
    p.add_argument("--limit-gb", type=float, default=8.0,
                   help="kill a child above this resident memory (GiB, default 8)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--smoke", action="store_true",
                   help="the smallest run of every code path, in seconds (what CI runs); its figures mean nothing")
    args = p.parse_args(argv)
    if args.smoke:
        args.size = 256
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    bad = [r for r in rows if r not in ROWS]
    if bad:
        p.error(f"unknown rows {bad}; choose from {ROWS}")
    limit = args.limit_gb * 2**30
    sides = [("featurekit", str(REPO))]
    if args.reference:
        sides.append(("reference", str(Path(args.reference).resolve())))
    print(f"# bench_memory: one {args.size}x{args.size} gray 8-bit PNG; {platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="fk-bench-memory-") as tmp:
        tmp = Path(tmp)
        manifest = make_image(tmp, args.size)
        print(f"# image: {manifest.parent / f'large_{args.size}.png'} "
              f"({(tmp / f'large_{args.size}.png').stat().st_size / 2**20:.1f} MiB PNG)")
        for row in rows:
            for side, path in sides:
                cache = tmp / f"cache-{side}-{row}.h5"
                results[(row, side)] = r = measure(row, manifest, cache, path, limit)
                print(f"  {row:7s} {side:10s} {fmt(r, limit)}", flush=True)
    print()
    head = "| row | featurekit peak RSS | " + ("reference peak RSS | ratio |" if args.reference else "")
    print(head)
    print("| --- | ---: | " + ("---: | ---: |" if args.reference else ""))
    for row in rows:
        new = results[(row, "featurekit")]
        line = f"| {row} | {fmt(new, limit)} |"
        if args.reference:
            old = results[(row, "reference")]
            ratio = "—"
            if old["rc"] == 0 and new["rc"] == 0:
                ratio = f"{old['peak_bytes'] / new['peak_bytes']:.1f}x less"
            elif old["killed"] and new["rc"] == 0:
                ratio = f"> {limit / new['peak_bytes']:.1f}x less"
            line += f" {fmt(old, limit)} | {ratio} |"
        print(line)
    for (row, side), r in results.items():
        for w in r.get("info") or []:
            if row not in ("decode", "floor") and isinstance(w, str):
                print(f"# warning ({row}, {side}): {w}")
    if args.json:
        Path(args.json).write_text(json.dumps({f"{k[0]}/{k[1]}": v for k, v in results.items()}, indent=1))
    # a reference may fail (an old checkout); featurekit itself must measure every row
    failed = [row for (row, side), r in results.items() if side == "featurekit" and r["rc"] != 0]
    if failed:
        raise SystemExit(f"featurekit did not finish the rows {failed}")


if __name__ == "__main__":
    main()
