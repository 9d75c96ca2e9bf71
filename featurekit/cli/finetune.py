"""``featurekit finetune``: fine-tune a CNN end to end (single run, cross-validated, or a pipeline)."""

from __future__ import annotations

import argparse
import shlex
import sys

from featurekit.cli.cluster import add_executor_arguments, executor_from_args
from featurekit.cli.common import EXAMPLES_FORMATTER, add_data_arguments, data_spec
from featurekit.finetune.config import RECIPES
from featurekit.options import FINETUNE

EXAMPLES = """modes:
  without --cv   train on DATA (a stratified --val-fraction held out for early stopping; a dataset
                 with a train/val/test split column uses it) and write the best checkpoint (--out)
  with --cv      fine-tune in every fold of a protocol of 'featurekit evaluate' (5, 5x3, holdout:0.3x10,
                 predefined) and write a run folder runs/NAME/ comparable with the feature-based rows
  --pipeline F   run a study file's steps (the same as 'featurekit run F'; see pipelines/)

recipes (--recipe; every option not given takes the recipe's value; default: transfer for pretrained
weights, scratch for --weights none):
RECIPE_LINES

examples:
  # ImageNet MobileNet-V2 on BUSI benign vs malignant, 5-fold CV, early layers frozen
  featurekit finetune ../shared/data/busi --classes benign,malignant --positive malignant \\
      --model mobilenet_v2 --freeze-until features.6 --cv 5 --epochs 20 --name busi_mnv2

  # the same, one fold per task on a Dask cluster (one GPU per worker with dask-cuda)
  featurekit finetune ../shared/data/busi --classes benign,malignant --positive malignant \\
      --model mobilenet_v2 --freeze-until features.6 --cv 5 --epochs 20 \\
      --dask-scheduler scheduler.json

  # ResNet-18 MLP head, StepLR(7, 0.1), class weights, early stopping on validation AUC
  featurekit finetune busi/ --classes benign,malignant --positive malignant --model resnet18 \\
      --head mlp --dropout 0.5 --scheduler step --step-size 7 --gamma 0.1 --balance weights \\
      --monitor val_auc --patience 5 --cv 5x3

  # BreastMNIST ResNet-18 from scratch (28 px, 1 channel, Dropout+Linear head), predefined split
  featurekit finetune breastmnist.npz --classes 0,1 --positive 1 --model resnet18 --recipe breastmnist \\
      --cv predefined

  # two-stage transfer: ImageNet -> mini-MIAS (checkpoint) -> BUSI (from that checkpoint)
  featurekit finetune ../shared/data/mini_mias --model resnet18 --out runs/stage1_mias.pt
  featurekit finetune ../shared/data/busi --classes benign,malignant --positive malignant \\
      --model resnet18 --weights runs/stage1_mias.pt --cv 5
  featurekit run two_stage_transfer --profile quick --dry-run
"""
EXAMPLES = EXAMPLES.replace("RECIPE_LINES", "\n".join(
    f"  {r.name:<19}{r.description}" for r in RECIPES.values()))


def add_parser(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a CNN (recipes, new head, freezing, early stopping, CV, "
                                        "two-stage transfer)",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    add_arguments(p)
    p.set_defaults(run=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options (:data:`featurekit.options.FINETUNE`); those a recipe sets default to None (= the recipe's)."""
    add_data_arguments(p)
    for action in p._actions:  # DATA is optional with --pipeline
        if action.dest == "data":
            action.nargs = "?"
            action.default = None
    FINETUNE.add_arguments(p)
    add_executor_arguments(p, shards=False)
    pl = p.add_argument_group("study files")
    pl.add_argument("--pipeline", default=None, metavar="FILE",
                    help="run a study file (TOML or JSON; a finetune pipeline JSON too): 'featurekit run FILE'")
    pl.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="with --pipeline: as 'featurekit run --set'")
    pl.add_argument("--dry-run", action="store_true", help="with --pipeline: print the plan without running it")


def run(args) -> int:
    from featurekit.finetune.errors import FinetuneError

    values = FINETUNE.from_args(args)
    if args.pipeline:
        if args.data:
            raise FinetuneError("give either DATA or --pipeline FILE, not both")
        from featurekit.cli.run import run_study

        return run_study(args.pipeline, overrides=args.overrides, dry_run=args.dry_run, quiet=not values["progress"])
    if not args.data:
        raise FinetuneError("DATA is required (or --pipeline FILE)")
    if args.overrides or args.dry_run:
        raise FinetuneError("--set and --dry-run belong to --pipeline")
    from featurekit.finetune.pipeline import run_stage
    from featurekit.studies.plan import stage_command
    from featurekit.studies.steps import stage_of

    stage = stage_of(data_spec(args), values)
    with executor_from_args(args) as executor:
        run_stage(stage, command=command_line() or stage_command(stage), progress=values["progress"],
                  executor=executor)
    return 0


def command_line() -> str | None:
    """The command as typed (console script); None when called as a function (then the stage's equivalent
    command line is recorded)."""
    if len(sys.argv) > 1 and sys.argv[1] == "finetune":
        return "featurekit " + shlex.join(sys.argv[1:])
    return None
