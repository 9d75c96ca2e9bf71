"""The GPU path, measured side by side in one run: the forward-pass limit vs featurekit, decoding, handcrafted.

One command on a GPU machine (see benchmarks/README.md, "GPU")::

    FEATUREKIT_SHARED=/path/to/shared python benchmarks/bench_gpu.py

CNN rows, for each model x batch size x autocast precision (fp16, bf16):

* ``bare``    -- the limit: the forward pass up to the deepest requested layer
  on synthetic tensors already on the device (channels_last, same autocast),
  no decoding, no hooks on the other layers;
* ``host``    -- featurekit's extraction loop (``CNNFeaturizer.run``, what
  ``featurekit extract`` runs for each batch: DataLoader workers decode the PNGs
  and resize/normalise them, upload, hooked forward, pooling, copy back) with
  ``preprocess="host"``; the model is built once beforehand, as ``extract``
  does once per run, and the HDF5 journal/commit is left out
  (``bench_extract.py`` times the whole ``extract`` against the bare forward);
* ``device``  -- the same with ``preprocess="device"``: workers only decode,
  uint8 goes up (pinned), resize and normalisation run on the GPU;
* ratios: ``host/bare`` and ``device/bare`` are the fraction of the limit
  reached; ``dec/bare`` is the decoding capacity (PNG decode img/s of one
  worker x the workers busy) over the limit: below 1, decoding cannot keep the
  GPU fed whatever featurekit does; ``prep/bare`` the same with the host's
  resize/normalise added (what ``host`` asks of the workers). A worker decodes a
  whole batch: at most one worker per batch is busy (``busy``).

Handcrafted rows: Gabor, GLCM and Haar on the GPU vs one CPU process on the
same images, the speed-up, and whether the numbers agree (max relative
difference within the family's tolerance).

Peak GPU memory (``torch.cuda.max_memory_allocated``) of each CNN row.

The weights are random (``weights="none"``): ImageNet weights need not be on
the machine, and the cost of a forward pass does not depend on their values.
``--smoke`` runs every code path on the CPU with tiny models and 4 images
(what the tests run, so the script cannot rot); its figures say nothing about
speed.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_time  # noqa: E402
from bench_extract import images  # noqa: E402
from bench_handcrafted import load_busi, rel_diff, shared_root  # noqa: E402

from featurekit.extraction.activations import ActivationExtractor  # noqa: E402
from featurekit.extraction.decode import run_together  # noqa: E402
from featurekit.extraction.pipeline import build_featurizers  # noqa: E402

#: (layer spec, input size): the issue's three models
MODELS = [("vgg16:8-17", 224), ("resnet50:conv*_out", 224), ("inception_v3:mixed0-mixed10", 299)]
#: --smoke: a tiny model and input (CPU autocast to fp16/bf16 is slow without AVX-512 BF16/AMX: bf16 only)
SMOKE_MODELS = [("resnet18:conv3_block2_out,conv5_block2_out", 32)]
#: the GPU path agrees with the CPU path to: float32 FFTs of two libraries / integer counts / float64 sums
HAND_RTOL = {"gabor": 1e-4, "glcm": 1e-9, "haar": 1e-9}


class Cycled:
    """``n`` rows cycling over a dataset's images: enough batches to keep every worker busy."""

    def __init__(self, dataset, n: int):
        self.dataset, self.n = dataset, n

    def __len__(self):
        return self.n

    def image(self, i):
        return self.dataset.image(i % len(self.dataset))


def per_worker_rate(fn, dataset, k: int) -> float:
    """Images/s of ``fn(image)`` in this one process (one worker's worth)."""
    t0 = time.perf_counter()
    for i in range(k):
        fn(dataset.image(i % len(dataset)))
    return k / (time.perf_counter() - t0)


def cnn_rows(spec: str, size: int, args, device, ds) -> list[dict]:
    featurizers, _ = build_featurizers([spec], weights="none", size=size, device=str(device), amp="none",
                                       num_workers=args.workers)
    base = featurizers[0]
    loaded = base.load()  # built once, shared by every row of this model
    model = loaded.model.to(device, memory_format=torch.channels_last)
    deepest = base.layers[-1]
    decode = per_worker_rate(lambda im: None, ds, args.rate_images)
    prep = per_worker_rate(loaded.preprocessing, ds, args.rate_images)
    prep = 1 / (1 / decode + 1 / prep)  # a host worker decodes, then preprocesses
    rows = []
    for batch in args.batch_sizes:
        n = max(args.n_images, batch)
        data = Cycled(ds, n)
        grid = [(a, min(a + batch, n)) for a in range(0, n, batch)]
        x = torch.randn(batch, loaded.preprocessing.channels, size, size, device=device)
        x = x.contiguous(memory_format=torch.channels_last)
        for amp in args.amp:
            dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "none": None}[amp]
            runs = {}
            for where in ("host", "device"):
                f = build_featurizers([spec], weights="none", size=size, device=str(device), amp=amp,
                                      num_workers=args.workers, preprocess=where)[0][0]
                f.loaded = loaded
                runs[where] = f

            def bare(dtype=dtype, grid=grid, x=x):  # this iteration's values, bound
                with ActivationExtractor(model, [deepest], "gap") as ex, \
                        torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    for _ in grid:
                        ex(x)
                sync(device)

            def loop(f, data=data, grid=grid, batch=batch):
                return lambda: [None for _ in run_together(data, [(f, grid, f.specs)], batch)]

            row = {"model": spec.split(":")[0], "size": size, "batch": batch, "amp": amp, "n": n,
                   "workers": runs["host"].num_workers, "busy": min(runs["host"].num_workers, len(grid)) or 1,
                   "decode": decode, "prep": prep, "precision": runs["host"].precision}
            bare()  # warm-up: cuDNN autotuning, allocator
            for name, fn in (("bare", bare), ("host", loop(runs["host"])), ("device", loop(runs["device"]))):
                reset_peak(device)
                row[name] = len(grid) * batch / best_time(fn, args.repeats) if name == "bare" else \
                    n / best_time(fn, args.repeats)
                row[f"{name}_mem"] = peak_mib(device)
            rows.append(row)
    return rows


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else math.nan


def hand_images(n: int, size: int, ds):
    """Lesion-centred BUSI crops with their masks (as bench_handcrafted), else the dataset's gray images."""
    if (shared_root() / "data" / "busi").is_dir():
        return load_busi(n, size)
    from featurekit.imageio import to_gray

    return [to_gray(ds.image(i % len(ds))) for i in range(n)], None


def hand_rows(args, device, ds) -> list[dict]:
    from featurekit.handcrafted.gabor import gabor_features
    from featurekit.handcrafted.glcm import glcm_features
    from featurekit.handcrafted.haar import haar_features

    imgs, masks = hand_images(args.hand_images, args.hand_size, ds)
    rows = []
    for family, fn in (("gabor", gabor_features), ("glcm", glcm_features), ("haar", haar_features)):
        fn(imgs[:1], None if masks is None else masks[:1], device=str(device))  # warm-up (plans, kernels)
        got = {}

        def run(dev, fn=fn, got=got):  # this iteration's values, bound
            got[dev] = fn(imgs, masks, device=dev, n_jobs=1)

        t_dev = best_time(lambda: run(str(device)), args.repeats)
        t_cpu = best_time(lambda: run("cpu"), args.repeats)
        diff = rel_diff(got[str(device)], got["cpu"])
        same = np.allclose(got[str(device)], got["cpu"], rtol=HAND_RTOL[family], atol=1e-9)
        rows.append({"family": family, "n": len(imgs), "cpu": t_cpu / len(imgs), "dev": t_dev / len(imgs),
                     "diff": diff, "same": same, "rtol": HAND_RTOL[family]})
    return rows


def describe(device) -> str:
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return f"{device} ({p.name}, {p.total_memory / 2 ** 30:.0f} GiB, bf16 {torch.cuda.is_bf16_supported()})"
    return f"{device} ({platform.processor() or platform.machine()})"


def report(cnn: list[dict], hand: list[dict], args, device, source: str) -> None:
    smoke = " (SMOKE RUN: CPU, tiny models -- the figures say nothing about speed)" if args.smoke else ""
    print(f"# GPU benchmark{smoke}")
    print(f"# device {describe(device)}; {os.cpu_count()} cores; torch {torch.__version__}; "
          f"python {platform.python_version()}")
    print(f"# images: {source}; weights none (random init: a forward pass costs the same whatever the weights)")
    print("# img/s; ratios: host/bare, device/bare = fraction of the limit; dec/bare, prep/bare = decoding "
          "capacity (img/s per worker x workers busy) over the limit (< 1: decoding cannot keep up)")
    head = (f"{'model':<13} {'size':>4} {'batch':>5} {'amp':>4} {'bare':>8} {'host':>8} {'device':>8} "
            f"{'host/bare':>9} {'dev/bare':>8} {'dec/w':>6} {'prep/w':>6} {'wrk':>3} {'busy':>4} "
            f"{'dec/bare':>8} {'prep/bare':>9} {'peak MiB bare/host/dev':>22}")
    print(head)
    for r in cnn:
        mem = "/".join("-" if math.isnan(r[f"{k}_mem"]) else f"{r[f'{k}_mem']:.0f}" for k in ("bare", "host", "device"))
        print(f"{r['model']:<13} {r['size']:>4} {r['batch']:>5} {r['amp']:>4} {r['bare']:8.4g} {r['host']:8.4g} "
              f"{r['device']:8.4g} {r['host'] / r['bare']:9.3f} {r['device'] / r['bare']:8.3f} {r['decode']:6.4g} "
              f"{r['prep']:6.4g} {r['workers']:>3} {r['busy']:>4} {r['decode'] * r['busy'] / r['bare']:8.2f} "
              f"{r['prep'] * r['busy'] / r['bare']:9.2f} {mem:>22}")
    print()
    print(f"{'family':<7} {'images':>6} {'cpu ms/img':>10} {'dev ms/img':>10} {'speed-up':>8} "
          f"{'max rel diff':>12} {'equal':>5}")
    for r in hand:
        print(f"{r['family']:<7} {r['n']:>6} {r['cpu'] * 1e3:10.2f} {r['dev'] * 1e3:10.2f} "
              f"{r['cpu'] / r['dev']:8.2f} {r['diff']:12.2e} {'yes' if r['same'] else 'NO':>5}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true",
                   help="every code path on the CPU, tiny models, 4 images, batch 2, one repeat (what CI runs); "
                        "its figures mean nothing")
    p.add_argument("--device", default="auto", help="auto (CUDA; without one, stop unless --smoke), cuda:N, cpu")
    p.add_argument("--n-images", type=int, default=4096,
                   help="rows per timed run (256 real images, cycled; enough batches for every worker)")
    p.add_argument("--batch-sizes", default="64,128,256")
    p.add_argument("--amp", default="fp16,bf16", help="autocast precisions: fp16, bf16, none")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: featurekit's)")
    p.add_argument("--repeats", type=int, default=2, help="best of")
    p.add_argument("--rate-images", type=int, default=32, help="images timed for the per-worker rates")
    p.add_argument("--hand-images", type=int, default=32)
    p.add_argument("--hand-size", type=int, default=256)
    p.add_argument("--models", default=None, help="';'-separated SPEC@SIZE (default: the issue's three)")
    args = p.parse_args(argv)
    models = MODELS
    if args.smoke:
        args.device, args.n_images, args.batch_sizes, args.repeats, args.amp = "cpu", 4, "2", 1, "none,bf16"
        args.rate_images, args.hand_images, args.hand_size, args.workers = 2, 2, 64, 1
        models = SMOKE_MODELS
        torch.set_num_threads(1)  # a shared CI machine: no thread oversubscription (the speed is not the point)
    if args.models:
        models = [(m.rsplit("@", 1)[0], int(m.rsplit("@", 1)[1])) for m in args.models.split(";")]
    args.batch_sizes = [int(b) for b in str(args.batch_sizes).split(",")]
    args.amp = [a.strip() for a in args.amp.split(",")]
    if args.device == "auto" and not torch.cuda.is_available():
        print("no CUDA device here: this benchmark measures a GPU. Run it with --smoke to check the code paths "
              "on the CPU, or --device cpu to time the CPU anyway.", file=sys.stderr)
        return 2
    device = torch.device("cuda" if args.device == "auto" else args.device)
    if device.type == "cuda" and "bf16" in args.amp and not torch.cuda.is_bf16_supported(including_emulation=False):
        print(f"# {torch.cuda.get_device_name(device)} has no bfloat16: bf16 rows left out")
        args.amp = [a for a in args.amp if a != "bf16"]
    ds, source = images(max(8, min(args.n_images, 256)), png=True)
    cnn = [row for spec, size in models for row in cnn_rows(spec, size, args, device, ds)]
    hand = hand_rows(args, device, ds)
    report(cnn, hand, args, device, source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
