"""Commands with nothing to compute: whole-process wall time, side by side with importing torch.

Rows (each a fresh ``python`` process, best of ``--repeats``):

* ``extract (cached)``   -- ``featurekit extract`` of a phantom folder whose CNN and
  handcrafted features are all in the cache already (answered from the cache and
  its resolution memo, no torch import);
* ``cache ls``           -- ``featurekit cache ls`` of the folder;
* ``report``             -- ``featurekit report`` of a small run folder;
* reference: ``import torch, torchvision`` alone, the floor each of these commands
  pays if it imports torch (a cached extract that imported it was measured at 3.7 s,
  3.0 s of it that import).

Target (issue 9): the cached extract of 80 images in <= 1 s.

    python benchmarks/bench_light.py --n-per-class 40
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall(argv: list[str], repeats: int) -> float:
    """Best wall time of ``repeats`` fresh processes running ``argv`` (must succeed)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-per-class", type=int, default=40, help="phantom images per class (default 40: 80 images)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--smoke", action="store_true",
                   help="the smallest run of every code path, in seconds (what CI runs); its figures mean nothing")
    args = p.parse_args(argv)
    if args.smoke:
        args.n_per_class, args.repeats = 6, 1
    py = sys.executable
    fk = [py, "-c", "import sys; from featurekit.cli import main; sys.exit(main(sys.argv[1:]))"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        from featurekit.data import write_phantom

        data = write_phantom(tmp / "data", n_per_class=args.n_per_class, size=64)
        extract = [*fk, "extract", str(data), "--positive", "malignant", "--layers",
                   "mobilenet_v2:features.14,features.18", "--weights", "none", "--size", "64",
                   "--handcrafted", "gabor,glcm", "--cache", str(tmp / "c.h5"), "--quiet"]
        subprocess.run(extract, check=True, stdout=subprocess.DEVNULL)  # fill the cache once
        run = tmp / "run"
        subprocess.run([*fk, "evaluate", str(data), "--positive", "malignant", "--features", "gabor",
                        "--classifier", "logreg", "--cv", "3", "--n-boot", "50", "--cache", str(tmp / "c.h5"),
                        "--out", str(run), "--quiet"], check=True, stdout=subprocess.DEVNULL)
        rows = [
            ("extract (cached)", wall(extract, args.repeats)),
            ("cache ls", wall([*fk, "cache", "ls", str(tmp)], args.repeats)),
            ("report", wall([*fk, "report", str(run)], args.repeats)),
        ]
        ref = wall([py, "-c", "import torch, torchvision"], args.repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"featurekit light commands: {2 * args.n_per_class} phantom images, best of {args.repeats} fresh "
          f"processes; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.1f}")
    print(f"{'command':<20} {'wall s':>8} {'import torch, torchvision (s)':>30} {'ratio':>7}")
    for name, t in rows:
        print(f"{name:<20} {t:8.2f} {ref:30.2f} {t / ref:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
