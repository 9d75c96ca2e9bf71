"""``featurekit evaluate``: which features separate the classes best, by how much, how sure.

Cross-validates every feature set (handcrafted families, each CNN layer of the
layer specs, cache keys) and every early / late fusion with each classifier,
on the same folds; everything that learns from data is fitted on training
folds only. Features missing from the cache are extracted first. Prints the
table and writes the run folder (results.csv/json, predictions.csv,
provenance.json, comparisons.csv); ``featurekit report RUN`` makes the report.
"""

from __future__ import annotations

import shlex
import time
import warnings

from featurekit.cli.cluster import add_executor_arguments, executor_from_args
from featurekit.cli.common import EXAMPLES_FORMATTER, add_data_arguments, load_data, positive_int, spec_type
from featurekit.specs import POOLS, RESIZE_MODES, Weights

EXAMPLES = """feature sets (--features, repeatable or comma-separated):
  gabor, glcm, haar               handcrafted families
  vgg16:8-17                      one set per layer (layer spec grammar: 'featurekit layers vgg16')
  mobilenet_v2/features.14        a cache key
  all                             every key already in the cache

examples:
  featurekit evaluate ../shared/data/busi --classes benign,malignant --positive malignant --roi mask \\
      --features mobilenet_v2:features.4-features.18 --features gabor,glcm \\
      --fuse mobilenet_v2:features.14+gabor --classifier svm --cv 5x3 --out runs/busi-mnv2
  featurekit evaluate busi/ --positive malignant --features vgg16:8-17 --features gabor \\
      --fuse vgg16:block5_conv3+gabor --late-fusion stack --classifier svm,logreg --search --out runs/vgg
  featurekit evaluate data.csv --positive malignant --features resnet50:conv5_* --cv holdout:0.3x30 \\
      --class-weight balanced --out runs/holdout
  featurekit evaluate phantom --positive malignant --features gabor,glcm --classifier logreg,rf,knn --out runs/ph
  featurekit evaluate busi/ --positive malignant --features gabor,glcm --cv 5x20 --search --scheduler local:2
"""


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="cross-validate feature sets and fusions; write a run folder",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    add_data_arguments(p)
    p.add_argument("--features", action="append", default=[], metavar="SETS",
                   help="feature sets (repeatable, comma-separated): gabor, glcm, haar, MODEL:LAYERS, a cache key, all")
    p.add_argument("--fuse", action="append", default=[], metavar="A+B",
                   help="early fusion of feature sets, e.g. vgg16:block5_conv3+gabor (repeatable)")
    p.add_argument("--late-fusion", choices=["vote", "stack"], default=None,
                   help="also fuse each --fuse combination late: soft voting or stacking of per-set classifiers")
    p.add_argument("--classifier", action="append", default=[], metavar="NAMES",
                   help="logreg, linear_svm, svm (RBF), rf, xgboost, knn, mlp (repeatable, comma-separated; "
                        "default: svm)")
    p.add_argument("--cv", default="5",
                   help="'5' (stratified 5-fold), '5x3' (repeated 3 times), 'holdout:0.3x30', 'predefined' "
                        "(the manifest's split column); grouped automatically when the data have groups "
                        "(default: 5)")
    p.add_argument("--out", default=None, metavar="DIR", help="run folder (default: runs/<dataset>-<time>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a non-empty --out folder as a whole (otherwise refused before any work)")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits, classifiers and bootstrap (default: 0)")
    p.add_argument("--class-weight", choices=["balanced"], default=None,
                   help="class weights computed on each training fold")
    p.add_argument("--oversample", action="store_true", help="random oversampling of each training fold")
    p.add_argument("--search", action="store_true",
                   help="grid search of the classifier's hyper-parameters nested inside each outer fold")
    p.add_argument("--inner-cv", type=positive_int, default=3, help="inner folds of --search (default: 3)")
    p.add_argument("--reduce", choices=["pca", "select"], default=None,
                   help="per-block PCA (95%% variance) or SelectKBest in early fusions")
    p.add_argument("--block-weight", choices=["equal"], default=None,
                   help="equal: each fused block divided by sqrt(its dimension)")
    p.add_argument("--youden", choices=["inner", "train"], default="inner",
                   help="Youden threshold of each fold from an inner CV of its training part (inner, default) "
                        "or from the fold model's training scores (train)")
    p.add_argument("--no-select", action="store_true",
                   help="no 'selected' row (by default, with two or more candidate rows, a row chooses the best "
                        "candidate inside each outer fold's training part and scores only it on the test part)")
    p.add_argument("--select-by", default="roc_auc", metavar="CRITERION",
                   help="what the selected row maximises on training-side held-out predictions: roc_auc, pr_auc, "
                        "neg_log_loss, neg_brier (default: roc_auc)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates of the CIs (default: 2000)")
    p.add_argument("--jobs", type=spec_type(jobs_option), default=1,
                   help="parallel fold fits (default: 1; -1 = every core; capped at the cores there are)")
    g = p.add_argument_group("extraction of missing features")
    g.add_argument("--weights", default="imagenet", type=spec_type(Weights.parse),
                   help="imagenet, none (random init, seed 0), none:seed=N, or a weights PATH; "
                        "--seed seeds the splits, not the weights")
    g.add_argument("--size", type=int, default=None, help="input size (default: the weights')")
    g.add_argument("--resize", default="crop", choices=RESIZE_MODES)
    g.add_argument("--pool", default="gap", choices=POOLS)
    g.add_argument("--batch-size", type=positive_int, default=16)
    g.add_argument("--device", default="auto")
    g.add_argument("--cache", default=None, metavar="FILE",
                   help="cache file (default: cache/<dataset>-<fingerprint>.h5)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_executor_arguments(p)
    p.set_defaults(run=run)


def jobs_option(text: str) -> int:
    from featurekit.devices import resolve_jobs

    return resolve_jobs(text, "--jobs")


def _split(values) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def split_feature_sets(values) -> list[str]:
    """Comma-separated feature sets; commas inside a layer spec stay in it.

    ``["gabor,glcm", "vgg16:block4_pool,block5_pool,gabor"]`` ->
    ``["gabor", "glcm", "vgg16:block4_pool,block5_pool", "gabor"]``: a piece without
    ``:`` or ``/`` that follows a layer spec continues its selector, unless it
    is a handcrafted family or ``all``.
    """
    from featurekit.specs import HANDCRAFTED

    out: list[str] = []
    for item in values:
        for piece in (p.strip() for p in item.split(",")):
            if not piece:
                continue
            if (out and ":" in out[-1] and ":" not in piece and "/" not in piece
                    and piece not in HANDCRAFTED and piece != "all"):
                out[-1] = f"{out[-1]},{piece}"
            else:
                out.append(piece)
    return out


def command_line(args) -> str:
    """The command as parsed, every option spelled out (defaults included): reproducible provenance."""
    parts = ["featurekit", "evaluate", shlex.quote(str(args.data))]
    for dest, value in vars(args).items():
        if dest in ("data", "run", "command") or value is None or value is False or value == []:
            continue
        flag = "--" + dest.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif isinstance(value, list):
            parts += [f"{flag} {shlex.quote(str(v))}" for v in value]
        else:
            parts.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(parts)


def run(args) -> int:
    from pathlib import Path

    from featurekit.errors import DataError
    from featurekit.evaluation.delong import NestedModelWarning
    from featurekit.evaluation.report import text_table
    from featurekit.orchestration import evaluate_features

    features = split_feature_sets(args.features)
    classifiers = _split(args.classifier) or ["svm"]
    if not features and not args.fuse:
        raise DataError("name feature sets with --features (e.g. --features gabor --features vgg16:8-17) "
                        "and/or --fuse A+B")
    if args.late_fusion and not args.fuse:
        raise DataError("--late-fusion fuses the --fuse combinations: give at least one --fuse A+B")
    if args.out:
        from featurekit.evaluation.runfolder import check_out

        check_out(args.out, args.overwrite)  # before the data are even read
    dataset = load_data(args)
    out = Path(args.out) if args.out else Path("runs") / f"{dataset.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    command = command_line(args)
    with executor_from_args(args) as executor, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NestedModelWarning)
        ev = evaluate_features(
            dataset, features, classifiers, args.cv, fuse=args.fuse, late_fusion=args.late_fusion,
            positive=args.positive, cache=args.cache, weights=args.weights, size=args.size, pool=args.pool,
            mode=args.resize, batch_size=args.batch_size, device=args.device, seed=args.seed,
            class_weight=args.class_weight, oversample=args.oversample, search=args.search,
            inner_cv=args.inner_cv, reduce=args.reduce, block_weight=args.block_weight, youden=args.youden,
            select=False if args.no_select else None, select_by=args.select_by,
            n_boot=args.n_boot, n_jobs=args.jobs, out=out, command=command, progress=not args.quiet,
            overwrite=args.overwrite, executor=executor, shard_size=args.shard_size)
    nested = [w for w in caught if issubclass(w.category, NestedModelWarning)]
    for w in caught:
        if not issubclass(w.category, (NestedModelWarning, FutureWarning, DeprecationWarning)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    prov = ev.provenance
    ds = prov.get("dataset", {})
    print(f"dataset: {ds.get('name')} ({ds.get('n')} samples; "
          + ", ".join(f"{k}: {v}" for k, v in (ds.get("counts") or {}).items())
          + f"); positive: {prov.get('positive')}; protocol: {prov.get('protocol')}")
    print(text_table(ev.results, provenance=prov))
    random = sorted({f"{e['model']} ({e['weights']})" for e in prov.get("entries", [])
                     if e.get("weights") and not Weights.parse(str(e["weights"])).pretrained})
    if random:
        print(f"note: CNN features of {', '.join(random)} come from RANDOM weights, not pretrained ones")
    if nested:
        print("note: some DeLong comparisons are nested (fusion vs its own part); the test is conservative "
              "there (see comparisons.csv, column 'nested')")
    from featurekit.evaluation.selection import describe_selection

    note = describe_selection(prov.get("selection"))
    if note:
        print(note)
    print(f"run folder: {out}  (featurekit report {out})")
    return 0
