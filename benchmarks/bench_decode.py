"""One decoding pass for all featurizers of a run vs one run per featurizer, in one run.

On BUSI images ($FEATUREKIT_SHARED/data/busi, or ../shared; by default the
tumour's box, ``roi="mask"``, where the features cost less than decoding),
each ``extract`` into a fresh cache in its own folder (no row reuse between
them):

* (a) ``gabor,glcm,haar`` in one run vs the sum of three runs of one family;
* (b) ``mobilenet_v2:1-18`` + ``resnet18:1-11`` + the three families in one run
  vs the sum of the five runs of one featurizer;
* (c) decoding alone: ``dataset[i]`` (image and mask) of every image, here.

The ideal of a run together is one decode plus the compute parts:
``sum(alone) - (k - 1) * decode`` for ``k`` featurizers. Target: together <=
1.1x that ideal. Runs alone over-count the CNN decoding a little less than a
full decode each (their DataLoader workers decode beside the forward pass).

Both models are randomly initialised (``weights="none"``; one ``weights``
choice holds for every model of a call, and only MobileNet-V2's ImageNet file
is available offline -- a file under resnet18's ImageNet name is refused unless
its sha256 is torchvision's): a forward pass costs the same whatever the
values. Interleaved repeats, best of each: a shared 2-core VM drifts.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from featurekit.data import load_dataset
from featurekit.extraction.pipeline import extract

LAYERS = ["mobilenet_v2:1-18", "resnet18:1-11"]
FAMILIES = ["gabor", "glcm", "haar"]


def busi(n: int, roi: str):
    shared = Path(os.environ.get("FEATUREKIT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    root = shared / "data" / "busi"
    ds = load_dataset(root, classes=["benign", "malignant"], positive="malignant", roi=roi)
    step = max(1, len(ds) // n)
    return ds.subset(list(range(0, step * n, step))[:n]), str(root)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-images", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats (best of)")
    p.add_argument("--roi", default="mask", choices=["mask", "none"],
                   help="the tumour's box (default; features cheap next to decoding) or whole images")
    p.add_argument("--skip-cnn", action="store_true", help="only (a) and (c)")
    p.add_argument("--smoke", action="store_true",
                   help="the smallest run of every code path, in seconds (what CI runs); its figures mean nothing")
    args = p.parse_args(argv)
    if args.smoke:
        args.n_images, args.batch_size, args.repeats = 2, 2, 1
    ds, source = busi(args.n_images, args.roi)
    n = len(ds)
    tmp = tempfile.mkdtemp()
    counter = iter(range(10**6))

    def run(layers, hand):
        folder = Path(tmp) / f"run{next(counter)}"  # a folder of its own: no rows reused from siblings
        folder.mkdir()
        t0 = time.perf_counter()
        extract(ds, layers, hand, cache=folder / "c.h5", weights="none", batch_size=args.batch_size,
                progress=False)
        return time.perf_counter() - t0

    def decode():
        t0 = time.perf_counter()
        for i in range(n):
            ds[i]
        return time.perf_counter() - t0

    cases = {"decode": decode}
    cases.update({f"alone {f}": (lambda f=f: run([], [f])) for f in FAMILIES})
    cases["together 3 families"] = lambda: run([], FAMILIES)
    if not args.skip_cnn:
        cases.update({f"alone {spec.split(':')[0]}": (lambda s=spec: run([s], [])) for spec in LAYERS})
        cases["together 2 models + 3 families"] = lambda: run(LAYERS, FAMILIES)
    for fn in cases.values() if not args.smoke else ():  # warm-up: page cache, weights hashes, imports
        fn()
    best = {name: float("inf") for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            best[name] = min(best[name], fn())

    import torch

    load = os.getloadavg()
    print(f"# decode-once benchmark: {n} BUSI images ({source}, roi={args.roi}), batch {args.batch_size}, "
          f"best of {args.repeats} interleaved")
    print(f"# machine: {platform.machine()} {os.cpu_count()} cores, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), python {platform.python_version()}")
    for name, secs in best.items():
        print(f"{name:<32} {secs:8.3f} s  {1000 * secs / n:8.1f} ms/image")
    dec = best["decode"]
    groups = [("(a) 3 families", [f"alone {f}" for f in FAMILIES], "together 3 families")]
    if not args.skip_cnn:
        groups.append(("(b) 2 models + 3 families",
                       [f"alone {s.split(':')[0]}" for s in LAYERS] + [f"alone {f}" for f in FAMILIES],
                       "together 2 models + 3 families"))
    print()
    for title, parts, whole in groups:
        total = sum(best[p] for p in parts)
        ideal = total - (len(parts) - 1) * dec
        print(f"{title}: together {best[whole]:.3f} s, sum alone {total:.3f} s, one decode + compute {ideal:.3f} s")
        print(f"    together / sum alone            = {best[whole] / total:.3f}")
        print(f"    together / (one decode+compute) = {best[whole] / ideal:.3f}  (target <= 1.1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
