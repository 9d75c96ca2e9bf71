"""``featurekit predict``: per-image class probabilities from a fine-tuned checkpoint."""

from __future__ import annotations

import sys

from featurekit.cli.common import EXAMPLES_FORMATTER, add_data_arguments, load_data, non_negative_int, positive_int

EXAMPLES = """output columns:
  id, true_label (empty when unlabelled), p_<class> for every class of the checkpoint, predicted,
  and y_true (1 = the checkpoint's positive class) when it has one

examples:
  featurekit predict runs/busi_mnv2/model.pt ../shared/data/busi --classes benign,malignant --out busi_pred.csv
  featurekit predict stage1_mias.pt ../shared/data/mini_mias
"""


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="class probabilities of every image from a fine-tuned checkpoint",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint written by 'featurekit finetune'")
    add_data_arguments(p)
    p.add_argument("--out", default=None, metavar="FILE.csv", help="write the table here (default: stdout)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file (otherwise refused before anything is computed)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda ...")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--workers", type=non_negative_int, default=0, help="DataLoader workers (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no summary")
    p.set_defaults(run=run)


def run(args) -> int:
    from featurekit.devices import resolve_device
    from featurekit.finetune.predict import Predictor

    resolve_device(args.device)  # a bad device or file fails before the data are read
    if args.out:
        from featurekit.io import refuse_existing

        refuse_existing(args.out, args.overwrite, what="prediction table", kind="file")
    predictor = Predictor.load(args.checkpoint)
    dataset = load_data(args)
    table = predictor.predict(dataset, batch_size=args.batch_size, device=args.device, amp=not args.no_amp,
                              num_workers=args.workers, progress=not args.quiet)
    if args.out:
        from featurekit.io import atomic_write_text

        atomic_write_text(args.out, table.to_csv(index=False))
        if not args.quiet:
            labelled = table["true_label"] != ""
            acc = (table.loc[labelled, "true_label"] == table.loc[labelled, "predicted"]).mean() \
                if labelled.any() else float("nan")
            print(f"{len(table)} images -> {args.out}" + (f" (accuracy {acc:.3f})" if labelled.any() else ""))
    else:
        table.to_csv(sys.stdout, index=False)
    return 0
