"""``featurekit evaluate``: which features separate the classes best, by how much, how sure.

Cross-validates every feature set (handcrafted families, each CNN layer of the
layer specs, cache keys) and every early / late fusion with each classifier,
on the same folds; everything that learns from data is fitted on training
folds only. Features missing from the cache are extracted first. Prints the
table and writes the run folder (results.csv/json, predictions.csv,
provenance.json, comparisons.csv); ``featurekit report RUN`` makes the report.
"""

from __future__ import annotations

import time
import warnings

from featurekit.cli.cluster import add_executor_arguments, executor_from_args
from featurekit.cli.common import EXAMPLES_FORMATTER, add_data_arguments, load_data
from featurekit.options import COMMANDS, EVALUATE, with_where
from featurekit.specs import Weights

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
    EVALUATE.add_arguments(p)
    add_executor_arguments(p)
    p.set_defaults(run=run)


def command_line(args) -> str:
    """The command as parsed, every option with a value spelled out (defaults too): reproducible provenance."""
    where = {k: getattr(args, k) for k in ("executor", "dask_scheduler", "shard_size")}
    return with_where(COMMANDS["evaluate"].command_line(COMMANDS["evaluate"].from_args(args), [args.data],
                                                        defaults=True), where)


def run(args) -> int:
    from pathlib import Path

    from featurekit.errors import DataError
    from featurekit.evaluation.stats.delong import NestedModelWarning
    from featurekit.orchestration import evaluate_features
    from featurekit.report.build import text_table
    from featurekit.report.wording import describe_task

    values = EVALUATE.from_args(args)
    if not values["features"] and not values["fuse"]:
        raise DataError("name feature sets with --features (e.g. --features gabor --features vgg16:8-17) "
                        "and/or --fuse A+B")
    if values["late_fusion"] and not values["fuse"]:
        raise DataError("--late-fusion fuses the --fuse combinations: give at least one --fuse A+B")
    if values["out"]:
        from featurekit.evaluation.results.runfolder import check_out

        check_out(values["out"], values["overwrite"])  # before the data are even read
    dataset = load_data(args)
    if not values["out"]:
        values["out"] = str(Path("runs") / f"{dataset.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    out = Path(values["out"])
    command = command_line(args)
    with executor_from_args(args) as executor, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NestedModelWarning)
        ev = evaluate_features(dataset, **values, positive=args.positive, command=command, executor=executor,
                               shard_size=args.shard_size)
    nested = [w for w in caught if issubclass(w.category, NestedModelWarning)]
    for w in caught:
        if not issubclass(w.category, (NestedModelWarning, FutureWarning, DeprecationWarning)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    prov = ev.provenance
    ds = prov.get("dataset", {})
    task = describe_task(prov, ev.results)
    print(f"dataset: {ds.get('name')} ({ds.get('n')} samples; "
          + ", ".join(f"{k}: {v}" for k, v in (ds.get("counts") or {}).items())
          + f"); {task.header}; protocol: {prov.get('protocol')}")
    print(text_table(ev.results, provenance=prov))
    random = sorted({f"{e['model']} ({e['weights']})" for e in prov.get("entries", [])
                     if e.get("weights") and not Weights.parse(str(e["weights"])).pretrained})
    if random:
        print(f"note: CNN features of {', '.join(random)} come from RANDOM weights, not pretrained ones")
    if nested:
        print(f"note: some {task.test} comparisons are nested (fusion vs its own part)"
              + ("" if task.multiclass else "; the test is conservative there")
              + " (see comparisons.csv, column 'nested')")
    from featurekit.evaluation.results.selection import describe_selection

    note = describe_selection(prov.get("selection"))
    if note:
        print(note)
    print(f"run folder: {out}  (featurekit report {out})")
    return 0
