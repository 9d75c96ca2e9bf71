"""``featurekit finetune``: fine-tune a CNN end to end (single run, cross-validated, or a pipeline)."""

from __future__ import annotations

import argparse
import datetime as _dt
import shlex
import sys
from pathlib import Path

from featurekit.cli.cluster import add_executor_arguments, executor_from_args
from featurekit.cli.common import EXAMPLES_FORMATTER, add_data_arguments, load_data, non_negative_int, positive_int

EXAMPLES = """modes:
  without --cv   train on DATA (a stratified --val-fraction held out for early stopping; a dataset
                 with a train/val/test split column uses it) and write the best checkpoint (--out)
  with --cv      fine-tune in every fold of a protocol of 'featurekit evaluate' (5, 5x3, holdout:0.3x10,
                 predefined) and write a run folder runs/NAME/ comparable with the feature-based rows
  --pipeline F   run the stages of a pipeline file (see pipelines/two_stage_transfer.json)

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

  # BreastMNIST-style ResNet-18 from scratch, 28 px, 1 channel, predefined train/val/test split
  featurekit finetune breastmnist.npz --classes 0,1 --positive 1 --model resnet18 --weights none \\
      --small-input --size 28 --optimizer adam --lr 1e-3 --cv predefined

  # two-stage transfer: ImageNet -> mini-MIAS (checkpoint) -> BUSI (from that checkpoint)
  featurekit finetune ../shared/data/mini_mias --model resnet18 --out runs/stage1_mias.pt
  featurekit finetune ../shared/data/busi --classes benign,malignant --positive malignant \\
      --model resnet18 --weights runs/stage1_mias.pt --cv 5
  featurekit finetune --pipeline pipelines/two_stage_transfer.json --set epochs=3 --dry-run
"""


def add_parser(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a CNN (new head, freezing, early stopping, CV, two-stage transfer)",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    add_arguments(p)
    p.set_defaults(run=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    for action in p._actions:  # DATA is optional with --pipeline
        if action.dest == "data":
            action.nargs = "?"
            action.default = None
    m = p.add_argument_group("model")
    m.add_argument("--model", default="resnet18", help="registry model (default: resnet18; see 'featurekit layers')")
    m.add_argument("--weights", default="imagenet",
                   help="imagenet, none (random, seeded), or a PATH: torchvision state_dict or a featurekit "
                        "checkpoint of an earlier fine-tuning (two-stage transfer)")
    m.add_argument("--head", default="linear", choices=["linear", "mlp"],
                   help="new head: linear, or mlp = Dense(--hidden) + BatchNorm + ReLU + Dropout + output")
    m.add_argument("--hidden", type=positive_int, default=512, help="MLP head width (default: 512)")
    m.add_argument("--dropout", type=float, default=0.5, help="MLP head dropout (default: 0.5)")
    m.add_argument("--small-input", action="store_true",
                   help="ResNet stem for 28-64 px images: 3x3 stride-1 first conv, no max-pool, 1 channel")
    m.add_argument("--in-chans", type=int, choices=[1, 3], default=None,
                   help="input channels with --small-input (default: 1)")
    m.add_argument("--head-policy", default="auto", choices=["auto", "new", "keep"],
                   help="with a checkpoint PATH: keep its head when the class names match (auto), always "
                        "replace it (new), or keep it and fail on a class mismatch (keep)")
    m.add_argument("--size", type=int, default=None, help="input size (default: the weights', e.g. 224)")
    m.add_argument("--resize", default=None, choices=["crop", "squash"],
                   help="crop (shorter side + centre crop) or squash (default: squash with --small-input, else crop)")
    f = p.add_argument_group("freezing (layer names/indices as in 'featurekit layers MODEL')")
    f.add_argument("--freeze-until", default=None, metavar="LAYER",
                   help="freeze every parameter up to and including LAYER (e.g. block4_pool, conv3_block2_out, 7)")
    f.add_argument("--freeze", default=None, metavar="SELECTORS",
                   help="freeze the parameters of these layers, e.g. 'conv2_*,conv3_*' or '1-6'")
    o = p.add_argument_group("optimisation")
    o.add_argument("--optimizer", default="sgd", choices=["sgd", "adam", "adamw"], help="default: sgd (momentum)")
    o.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: 1e-3)")
    o.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    o.add_argument("--weight-decay", type=float, default=1e-4, help="default: 1e-4")
    o.add_argument("--scheduler", default="step", choices=["none", "step", "cosine"], help="default: step")
    o.add_argument("--step-size", type=positive_int, default=7, help="StepLR period in epochs (default: 7)")
    o.add_argument("--gamma", type=float, default=0.1, help="StepLR factor (default: 0.1)")
    o.add_argument("--epochs", type=positive_int, default=25, help="maximum epochs (default: 25)")
    o.add_argument("--batch-size", type=positive_int, default=16, help="default: 16")
    o.add_argument("--monitor", default="val_loss", choices=["val_loss", "val_auc"],
                   help="early stopping / best checkpoint criterion (default: val_loss)")
    o.add_argument("--patience", type=int, default=5, help="epochs without improvement before stopping; 0 = never")
    o.add_argument("--min-delta", type=float, default=0.0, help="smallest change counted as an improvement")
    o.add_argument("--val-fraction", type=float, default=0.2,
                   help="stratified validation part of the training data for early stopping (default: 0.2; 0 = none)")
    a = p.add_argument_group("augmentation and imbalance (training images only)")
    a.add_argument("--augment", default="default",
                   help="comma list of flip, vflip, rotate, translate, brightness, contrast, crop; 'none'; "
                        "'default' = flip,rotate,translate,brightness,contrast")
    a.add_argument("--rotation", type=float, default=15.0, help="max rotation in degrees (default: 15)")
    a.add_argument("--translate", type=float, default=0.1, help="max translation, fraction of the size (default: 0.1)")
    a.add_argument("--brightness", type=float, default=0.2, help="brightness jitter (default: 0.2)")
    a.add_argument("--contrast", type=float, default=0.2, help="contrast jitter (default: 0.2)")
    a.add_argument("--crop-scale", default="0.8,1.0", help="random resized crop area range (default: 0.8,1.0)")
    a.add_argument("--balance", default="none", choices=["none", "weights", "oversample"],
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
    r.add_argument("--subsample", type=positive_int, default=None, metavar="N",
                   help="use a stratified random N images of DATA (smoke tests on a CPU)")
    e = p.add_argument_group("execution")
    e.add_argument("--seed", type=int, default=0, help="seed of splits, initialisation, order, augmentation")
    e.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    e.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    e.add_argument("--workers", type=non_negative_int, default=0, help="DataLoader workers (default: 0)")
    e.add_argument("--no-cache-images", action="store_true",
                   help="decode images every epoch instead of keeping them (resized) in memory")
    e.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    add_executor_arguments(p, shards=False)
    pl = p.add_argument_group("pipelines")
    pl.add_argument("--pipeline", default=None, metavar="FILE", help="run the stages of a pipeline JSON file")
    pl.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="pipeline override: a variable, an option of every stage, or STAGE.option")
    pl.add_argument("--dry-run", action="store_true", help="print the pipeline's commands without running them")


def config_from_args(args):
    from featurekit.finetune.config import FinetuneConfig, parse_augment
    from featurekit.finetune.errors import FinetuneError

    try:
        crop_scale = [float(v) for v in str(args.crop_scale).split(",")]
    except ValueError:
        raise FinetuneError(f"--crop-scale expects LO,HI, got {args.crop_scale!r}") from None
    if len(crop_scale) != 2:
        raise FinetuneError(f"--crop-scale expects LO,HI, got {args.crop_scale!r}")
    return FinetuneConfig(
        model=args.model, weights=args.weights, head=args.head, hidden=args.hidden, dropout=args.dropout,
        small_input=args.small_input, in_chans=args.in_chans, head_policy=args.head_policy, size=args.size,
        resize=args.resize, freeze_until=args.freeze_until, freeze=args.freeze, optimizer=args.optimizer,
        lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, scheduler=args.scheduler,
        step_size=args.step_size, gamma=args.gamma, epochs=args.epochs, batch_size=args.batch_size,
        monitor=args.monitor, patience=args.patience, min_delta=args.min_delta, val_fraction=args.val_fraction,
        augment=parse_augment(args.augment), rotation=args.rotation, translate=args.translate,
        brightness=args.brightness, contrast=args.contrast, crop_scale=crop_scale, balance=args.balance,
        seed=args.seed, device=args.device, amp=not args.no_amp, num_workers=args.workers,
        cache_images=not args.no_cache_images,
    )


def _run_folder(args, dataset, model: str) -> Path:
    runs = Path(args.runs_dir)
    if args.run_name:
        return runs / args.run_name
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"finetune-{model}-{dataset.name}")
    folder = runs / safe
    if folder.exists() and any(folder.iterdir()):
        folder = runs / f"{safe}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    return folder


def run(args) -> int:
    from featurekit.finetune.errors import FinetuneError

    if args.pipeline:
        if args.data:
            raise FinetuneError("give either DATA or --pipeline FILE, not both")
        from featurekit.finetune.pipeline import run_pipeline

        run_pipeline(args.pipeline, args.overrides, runner=run_argv, dry_run=args.dry_run,
                     echo=(lambda s: None) if args.quiet else print)
        return 0
    if not args.data:
        raise FinetuneError("DATA is required (or --pipeline FILE)")
    if args.overrides or args.dry_run:
        raise FinetuneError("--set and --dry-run belong to --pipeline")
    return run_stage(args, command=command_line(args))


def command_line(args) -> str:
    """The command as typed (console script) or rebuilt from the parsed options (API calls)."""
    if len(sys.argv) > 1 and sys.argv[1] == "finetune":
        return "featurekit " + shlex.join(sys.argv[1:])
    parser = argparse.ArgumentParser(prog="featurekit finetune")
    add_arguments(parser)
    argv = [args.data] if args.data else []
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "data") or action.help == argparse.SUPPRESS:
            continue
        value = getattr(args, action.dest, None)
        if value == action.default:
            continue
        flag = action.option_strings[0]
        if isinstance(value, bool):
            argv.append(flag)
        elif isinstance(value, list):
            for v in value:
                argv += [flag, str(v)]
        else:
            argv += [flag, str(value)]
    return "featurekit finetune " + shlex.join(argv)


def run_argv(argv: list[str]) -> int:
    """Run ``featurekit finetune ARGV`` (one pipeline stage) in this process."""
    parser = argparse.ArgumentParser(prog="featurekit finetune")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.pipeline:
        from featurekit.finetune.errors import FinetuneError

        raise FinetuneError("a pipeline stage cannot run another pipeline")
    return run_stage(args, command="featurekit finetune " + shlex.join(argv))


def run_stage(args, command: str) -> int:
    import numpy as np

    from featurekit.finetune.crossval import cross_validate
    from featurekit.finetune.training import finetune, stratified_subsample
    from featurekit.io import StagedFolder, atomic_write_text, refuse_existing, write_json

    from featurekit.devices import resolve_device
    from featurekit.models.memory import check_memory
    from featurekit.models.registry import get_spec

    config = config_from_args(args)
    resolve_device(config.device)  # a bad --device fails before any work
    overwrite = bool(getattr(args, "overwrite", False))
    if args.out and not args.cv:
        refuse_existing(args.out, overwrite, what="checkpoint")  # before the data are even read
    elif args.run_name:
        refuse_existing(Path(args.runs_dir) / args.run_name, overwrite, what="run folder")
    dataset = load_data(args)
    if args.subsample:
        dataset = stratified_subsample(dataset, args.subsample, seed=args.seed)
    progress = not args.quiet
    size = config.size or get_spec(config.model).default_size
    check_memory(config.model, size, config.batch_size, config.device, channels=config.channels, training=True,
                 small_input=config.small_input,
                 extra=len(dataset) * config.channels * size * size * 2 if config.cache_images else 0)
    folder = _run_folder(args, dataset, config.model)
    if args.cv:
        if args.out:
            print("note: --out is ignored with --cv (use --save-fold-checkpoints for the fold models)",
                  file=sys.stderr)
        with executor_from_args(args) as executor:
            result = cross_validate(dataset, config, args.cv, run_dir=folder, n_boot=args.n_boot,
                                    youden=args.youden, save_checkpoints=args.save_fold_checkpoints,
                                    progress=progress, command=command, overwrite=overwrite, executor=executor)
        if progress:
            row = result.rows.iloc[0]
            print(f"dataset: {dataset.name} ({len(dataset)} images; positive {dataset.positive})")
            print(f"model: {config.model} weights={result.provenance['weights']} "
                  f"sha256={result.provenance['weights_sha256'][:12]}")
            print(f"{row['feature_set']}  {row['protocol']}: AUC {row['roc_auc']:.3f} "
                  f"[{row['roc_auc_ci_lo']:.3f}, {row['roc_auc_ci_hi']:.3f}]  "
                  f"balanced accuracy (Youden) {row['balanced_accuracy_youden']:.3f}")
            print(f"run folder: {result.run_dir}")
        return 0
    from featurekit.finetune.results import curves_frame, plot_curves

    stage = None
    if args.out:  # a checkpoint file (replaced atomically) and its curves beside it
        out = Path(args.out)
        where = out.with_name(f"{out.stem}_training_curves.csv")
    else:  # a run folder, written beside and swapped in whole
        stage = StagedFolder(folder, overwrite=overwrite, what="run folder")
        out, where = stage.path / "model.pt", stage.path / "training_curves.csv"
    result = finetune(dataset, config, out=out, progress=progress, overwrite=overwrite)
    curves = curves_frame([(0, 0, result.train.history)])
    atomic_write_text(where, curves.to_csv(index=False))
    plot_curves(curves, where.with_suffix(".png"), title=f"{config.model} on {dataset.name}")
    if stage is not None:
        write_json(stage.path / "provenance.json",
                   {"command": command, **{k: v for k, v in result.meta.items() if k not in ("layer_table", "history")}})
        stage.commit()
        result.checkpoint = folder / "model.pt"
    if progress:
        best = result.train.best
        print(f"dataset: {dataset.name} ({len(dataset)} images; classes {dataset.class_names})")
        print(f"start: {result.start.weights} (head {result.start.head}); "
              f"stage {len(result.meta['lineage'])} of its lineage")
        print(f"best epoch {result.train.best_epoch}/{len(result.train.history)}: "
              + ", ".join(f"{k} {best[k]:.4f}" for k in ("train_loss", "val_loss", "val_auc")
                          if k in best and np.isfinite(best[k])))
        if "test" in result.meta["metrics"]:
            t = result.meta["metrics"]["test"]
            print(f"test: accuracy {t['accuracy']:.3f}, AUC {t['auc']:.3f}")
        print(f"checkpoint: {result.checkpoint}")
    return 0
