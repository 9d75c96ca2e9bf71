"""``featurekit finetune``: fine-tune a CNN end to end (single run, cross-validated, or a pipeline)."""

from __future__ import annotations

import argparse
import shlex
import sys

from featurekit.cli.cluster import add_executor_arguments, executor_from_args
from featurekit.cli.common import EXAMPLES_FORMATTER, add_data_arguments, data_spec, non_negative_int, positive_int
from featurekit.finetune.config import (
    BALANCE,
    HEAD_POLICIES,
    HEADS,
    MONITORS,
    OPTIMIZERS,
    RECIPES,
    SCHEDULERS,
)

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
    """The options; those a recipe sets default to None (= the recipe's value)."""
    add_data_arguments(p)
    for action in p._actions:  # DATA is optional with --pipeline
        if action.dest == "data":
            action.nargs = "?"
            action.default = None
    m = p.add_argument_group("recipe and model")
    m.add_argument("--recipe", default=None, choices=list(RECIPES),
                   help="named training settings (list below); default: transfer for pretrained weights, "
                        "scratch for --weights none")
    m.add_argument("--model", default="resnet18", help="registry model (default: resnet18; see 'featurekit layers')")
    m.add_argument("--weights", default=None,
                   help="imagenet (default), none (random, seeded), or a PATH: torchvision state_dict or a "
                        "featurekit checkpoint of an earlier fine-tuning (two-stage transfer), or the run folder "
                        "of a --cv run saved with --save-fold-checkpoints (each fold goes on from its own model)")
    m.add_argument("--head", default=None, choices=list(HEADS),
                   help="new head: linear; mlp = Dense(--hidden) + BatchNorm + ReLU + Dropout + output; "
                        "dropout_linear = Dropout(--dropout) + output (default: the recipe's, linear)")
    m.add_argument("--hidden", type=positive_int, default=None, help="MLP head width (transfer: 512)")
    m.add_argument("--dropout", type=float, default=None, help="head dropout (transfer: 0.5)")
    m.add_argument("--small-input", action="store_true", default=None,
                   help="ResNet stem for 28-64 px images: 3x3 stride-1 first conv, no max-pool, 1 channel")
    m.add_argument("--in-chans", type=int, choices=[1, 3], default=None,
                   help="input channels with --small-input (default: 1)")
    m.add_argument("--head-policy", default="auto", choices=list(HEAD_POLICIES),
                   help="with a checkpoint PATH: keep its head when the class names match (auto), always "
                        "replace it (new), or keep it and fail on a class mismatch (keep)")
    m.add_argument("--size", type=int, default=None, help="input size (default: the recipe's, else the weights', "
                                                          "e.g. 224)")
    m.add_argument("--resize", default=None, choices=["crop", "squash"],
                   help="crop (shorter side + centre crop) or squash (default: squash with --small-input, else crop)")
    f = p.add_argument_group("freezing (layer names/indices as in 'featurekit layers MODEL')")
    f.add_argument("--freeze-until", default=None, metavar="LAYER",
                   help="freeze every parameter up to and including LAYER (e.g. block4_pool, conv3_block2_out, 7)")
    f.add_argument("--freeze", default=None, metavar="SELECTORS",
                   help="freeze the parameters of these layers, e.g. 'conv2_*,conv3_*', '1-6' or 'all' (the "
                        "whole backbone)")
    o = p.add_argument_group("optimisation (defaults: the recipe's; transfer values shown)")
    o.add_argument("--optimizer", default=None, choices=list(OPTIMIZERS), help="transfer: sgd (momentum)")
    o.add_argument("--lr", type=float, default=None, help="learning rate (transfer: 1e-3)")
    o.add_argument("--momentum", type=float, default=None, help="SGD momentum (transfer: 0.9)")
    o.add_argument("--weight-decay", type=float, default=None, help="transfer: 1e-4")
    o.add_argument("--scheduler", default=None, choices=list(SCHEDULERS), help="transfer: step")
    o.add_argument("--step-size", type=positive_int, default=None, help="StepLR period in epochs (transfer: 7)")
    o.add_argument("--gamma", type=float, default=None, help="StepLR factor (transfer: 0.1)")
    o.add_argument("--epochs", type=positive_int, default=None, help="maximum epochs (transfer: 25)")
    o.add_argument("--batch-size", type=positive_int, default=None, help="transfer: 16")
    o.add_argument("--monitor", default=None, choices=list(MONITORS),
                   help="early stopping / best checkpoint criterion; val_auc_acc = mean of validation AUC and "
                        "accuracy (transfer: val_loss)")
    o.add_argument("--patience", type=int, default=None,
                   help="epochs without improvement before stopping; 0 = never (transfer: 5)")
    o.add_argument("--min-delta", type=float, default=None, help="smallest change counted as an improvement")
    o.add_argument("--val-fraction", type=float, default=None,
                   help="stratified validation part of the training data for early stopping (transfer: 0.2; "
                        "0 = none)")
    a = p.add_argument_group("augmentation and imbalance (training images only)")
    a.add_argument("--augment", default=None,
                   help="comma list of flip, vflip, rotate, translate, brightness, contrast, crop; 'none'; "
                        "'default' = flip,rotate,translate,brightness,contrast (the transfer recipe's)")
    a.add_argument("--rotation", type=float, default=None, help="max rotation in degrees (transfer: 15)")
    a.add_argument("--translate", type=float, default=None, help="max translation, fraction of the size (0.1)")
    a.add_argument("--brightness", type=float, default=None, help="brightness jitter (transfer: 0.2)")
    a.add_argument("--contrast", type=float, default=None, help="contrast jitter (transfer: 0.2)")
    a.add_argument("--crop-scale", default=None, help="random resized crop area range (transfer: 0.8,1.0)")
    a.add_argument("--balance", default=None, choices=list(BALANCE),
                   help="class imbalance: none, weights (inverse-frequency loss weights), oversample")
    r = p.add_argument_group("runs and output")
    r.add_argument("--cv", default=None, metavar="SPEC",
                   help="cross-validate: K, KxR, holdout:FxR or predefined (as 'featurekit evaluate')")
    r.add_argument("--out", default=None, metavar="CKPT",
                   help="checkpoint of a single run (default: runs/NAME/model.pt)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out checkpoint or a non-empty --name run folder (as a whole); "
                        "otherwise refused before training")
    r.add_argument("--runs-dir", default="runs", help="folder of run folders (default: runs)")
    r.add_argument("--name", dest="run_name", default=None, help="run folder name (default: finetune-MODEL-DATASET)")
    r.add_argument("--run-name", dest="run_name", help=argparse.SUPPRESS)
    r.add_argument("--n-boot", type=positive_int, default=2000, help="bootstrap replicates of the CIs (default: 2000)")
    r.add_argument("--youden", default="val", choices=["val", "train"],
                   help="with --cv: choose each fold's Youden threshold on its validation part (default) or "
                        "on its whole training part")
    r.add_argument("--save-fold-checkpoints", action="store_true", help="with --cv: keep each fold's best model")
    e = p.add_argument_group("execution")
    e.add_argument("--seed", type=int, default=0, help="seed of splits, initialisation, order, augmentation")
    e.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    e.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    e.add_argument("--workers", type=non_negative_int, default=0, help="DataLoader workers (default: 0)")
    e.add_argument("--no-cache-images", action="store_true",
                   help="decode images every epoch instead of keeping them (resized) in memory")
    e.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    add_executor_arguments(p, shards=False)
    pl = p.add_argument_group("study files")
    pl.add_argument("--pipeline", default=None, metavar="FILE",
                    help="run a study file (TOML or JSON; a finetune pipeline JSON too): 'featurekit run FILE'")
    pl.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="with --pipeline: as 'featurekit run --set'")
    pl.add_argument("--dry-run", action="store_true", help="with --pipeline: print the plan without running it")


#: FinetuneConfig fields whose CLI option has another name or sense
_CONFIG_FROM_ARGS = {"num_workers": "workers"}


def config_from_args(args):
    """The :class:`~featurekit.finetune.config.FinetuneConfig` of the parsed options (unset ones: the recipe's)."""
    from dataclasses import fields

    from featurekit.finetune.config import FinetuneConfig, parse_augment
    from featurekit.finetune.errors import FinetuneError

    values = {}
    for f in fields(FinetuneConfig):
        if f.name in ("amp", "cache_images"):
            continue
        values[f.name] = getattr(args, _CONFIG_FROM_ARGS.get(f.name, f.name))
    if values["augment"] is not None:
        values["augment"] = parse_augment(values["augment"])
    if values["crop_scale"] is not None:
        try:
            values["crop_scale"] = [float(v) for v in str(values["crop_scale"]).split(",")]
        except ValueError:
            raise FinetuneError(f"--crop-scale expects LO,HI, got {args.crop_scale!r}") from None
        if len(values["crop_scale"]) != 2:
            raise FinetuneError(f"--crop-scale expects LO,HI, got {args.crop_scale!r}")
    return FinetuneConfig(**values, amp=not args.no_amp, cache_images=not args.no_cache_images)


def stage_from_args(args):
    """The typed :class:`~featurekit.finetune.pipeline.FinetuneStage` of the parsed options."""
    from featurekit.finetune.pipeline import FinetuneStage, RunOptions

    run = RunOptions(cv=args.cv, out=args.out, runs_dir=args.runs_dir, run_name=args.run_name, n_boot=args.n_boot,
                     youden=args.youden, save_fold_checkpoints=args.save_fold_checkpoints,
                     overwrite=args.overwrite)
    return FinetuneStage(data_spec(args), config_from_args(args), run)


def run(args) -> int:
    from featurekit.finetune.errors import FinetuneError

    if args.pipeline:
        if args.data:
            raise FinetuneError("give either DATA or --pipeline FILE, not both")
        from featurekit.cli.run import run_study

        return run_study(args.pipeline, overrides=args.overrides, dry_run=args.dry_run, quiet=args.quiet)
    if not args.data:
        raise FinetuneError("DATA is required (or --pipeline FILE)")
    if args.overrides or args.dry_run:
        raise FinetuneError("--set and --dry-run belong to --pipeline")
    from featurekit.finetune.pipeline import run_stage

    stage = stage_from_args(args)
    with executor_from_args(args) as executor:
        from featurekit.studies.plan import stage_command

        command = command_line() or stage_command(stage)
        run_stage(stage, command=command, progress=not args.quiet, executor=executor)
    return 0


def command_line() -> str | None:
    """The command as typed (console script); None when called as a function (then the stage's equivalent
    command line is recorded)."""
    if len(sys.argv) > 1 and sys.argv[1] == "finetune":
        return "featurekit " + shlex.join(sys.argv[1:])
    return None
