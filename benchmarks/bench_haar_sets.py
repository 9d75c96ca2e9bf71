#!/usr/bin/env python
"""What the default Haar-like descriptor costs and scores against the full set, on BUSI.

Both sets of :class:`featurekit.handcrafted.HaarFeatures` -- the default
``feature_set='grid'`` (2,763 features on the 24 x 24 window) and
``feature_set='full'`` (skimage's 162,336) -- are extracted into one fresh
cache and cross-validated the same way, as ``featurekit evaluate ... --classes
benign,malignant --positive malignant --roi mask --group-duplicates
--features haar --classifier logreg --cv 5`` does (standardise, logistic
regression, 5-fold stratified grouped CV, Youden threshold on the training
folds, 2000 bootstrap resamples for the 95 % CI, seed 0). Printed per set:
extraction time, the size of the entry's feature matrix and how much the
cache file grew (matrix + feature names), evaluation time, the pooled ROC AUC
with its CI, and the paired DeLong test of the two.

The subset: BUSI benign + malignant with mask ROIs, near-duplicates grouped
over all 647 images first, then every ``--every``-th image in dataset order
(``--every 1`` = all 647).

Example::

    .venv/bin/python benchmarks/bench_haar_sets.py --every 3
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--every", type=int, default=3, help="keep every k-th image (default 3; 1 = all 647)")
    p.add_argument("--classifier", default="logreg")
    p.add_argument("--cv", default="5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-eval", action="store_true", help="measure extraction and cache size only")
    p.add_argument("--smoke", action="store_true",
                   help="the smallest run of every code path, in seconds (what CI runs); its figures mean nothing")
    args = p.parse_args(argv)

    import h5py
    import numpy as np
    import sklearn

    from featurekit import __version__
    from featurekit.cache import FeatureCache
    from featurekit.data import load_dataset
    from featurekit.data.duplicates import group_near_duplicates
    from featurekit.evaluation.stats.delong import delong_roc_test
    from featurekit.extraction.pipeline import extract
    from featurekit.handcrafted import HaarFeatures
    from featurekit.orchestration import evaluate_features

    root = Path(os.environ.get("FEATUREKIT_SHARED", REPO.parent / "shared")) / "data" / "busi"
    if not root.is_dir():
        sys.exit(f"BUSI not found at {root}; set FEATUREKIT_SHARED")
    ds = load_dataset(root, classes=["benign", "malignant"], positive="malignant", roi="mask")
    if args.smoke:  # 16 benign + 16 malignant images, grouped among themselves; a classifier fast on 162k features
        ds = ds.subset(np.r_[0:16, len(ds) - 16:len(ds)])
        args.every, args.cv, args.classifier = 1, "2", "knn"
    ds = group_near_duplicates(ds)
    ds = ds.subset(np.arange(0, len(ds), args.every))
    counts = {c: int(np.sum(ds.labels == i)) for i, c in enumerate(ds.class_names)}
    print(f"# BUSI subset: every {args.every}th of {647 if not args.smoke else 32} -> {len(ds)} images {counts}, "
          f"{len(set(ds.groups))} groups; featurekit {__version__}, scikit-learn {sklearn.__version__}, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    sets = {"grid (default)": HaarFeatures(empty_mask="whole"),
            "full": HaarFeatures(feature_set="full", empty_mask="whole")}
    rows, scores = [], {}
    with tempfile.TemporaryDirectory(prefix="fk-haar-sets-") as tmp:
        path = Path(tmp) / "busi.h5"
        for name, est in sets.items():
            before = path.stat().st_size if path.exists() else 0
            t0 = time.perf_counter()
            res = extract(ds, [], [est], cache=path, progress=False, batch_size=16)
            t_extract = time.perf_counter() - t0
            grown = path.stat().st_size - before
            (spec,) = [s for s in res.specs if s.key == "haar"]
            with h5py.File(path, "r") as f:
                size = f[f"features/haar/{spec.entry_id}"].id.get_storage_size()
            if args.skip_eval:
                print(f"  {name}: {spec.dim} features, extract {t_extract:.1f} s, feature matrix "
                      f"{size / 2**20:.1f} MiB, cache file grew by {grown / 2**20:.1f} MiB", flush=True)
                continue
            t0 = time.perf_counter()
            ev = evaluate_features(FeatureCache(path), ["haar"], [args.classifier], args.cv,
                                   entries={"haar": spec.entry_id}, seed=args.seed, n_jobs=1)
            t_eval = time.perf_counter() - t0
            r = ev.results.iloc[0]
            scores[name] = ev.predictions.set_index("id")[["y_true", "score"]]
            rows.append((name, spec.dim, t_extract, size, grown, t_eval, r))
            print(f"  {name}: {spec.dim} features, extract {t_extract:.1f} s, feature matrix {size / 2**20:.1f} "
                  f"MiB, cache file +{grown / 2**20:.1f} MiB, evaluate {t_eval:.1f} s, "
                  f"AUC {r['roc_auc_pooled']:.3f} [{r['roc_auc_ci_lo']:.3f}, {r['roc_auc_ci_hi']:.3f}]", flush=True)
    if args.skip_eval:
        return
    print()
    print("| Haar set | features | extraction | feature matrix / cache file growth | evaluate | ROC AUC [95 % CI] |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, dim, te, size, grown, tv, r in rows:
        print(f"| {name} | {dim:,} | {te:.1f} s | {size / 2**20:.1f} / {grown / 2**20:.1f} MiB | {tv:.1f} s | "
              f"{r['roc_auc_pooled']:.3f} [{r['roc_auc_ci_lo']:.3f}, {r['roc_auc_ci_hi']:.3f}] |")
    both = scores["grid (default)"].join(scores["full"].add_suffix("_full"), how="inner")
    test = delong_roc_test(both["y_true"].to_numpy(), both["score"].to_numpy(), both["score_full"].to_numpy())
    print(f"\nDeLong, default - full (pooled out-of-fold scores of the {len(both)} images): {test}")


if __name__ == "__main__":
    main()
