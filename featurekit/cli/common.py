"""Arguments shared by several commands, and how they become API calls."""

from __future__ import annotations

import argparse
import json

from featurekit.data.duplicates import DEFAULT_MAX_DISTANCE
from featurekit.errors import DataError

EXAMPLES_FORMATTER = argparse.RawDescriptionHelpFormatter


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA",
                   help="dataset: a class-folder tree (BUSI layout), a CSV manifest, a MedMNIST-style .npz, "
                        "a MIAS folder (Info.txt + images), or 'phantom' (the embedded synthetic demo set)")
    p.add_argument("--format", default="auto", choices=["auto", "folder", "csv", "npz", "mias"],
                   help="dataset format (default: detected)")
    p.add_argument("--classes", default=None,
                   help="classes to keep, in label order, e.g. 'benign,malignant' (others dropped)")
    p.add_argument("--positive", default=None, help="the positive class, e.g. 'malignant'")
    p.add_argument("--roi", default="none", choices=["none", "mask", "mias"],
                   help="region of interest: whole image, mask bounding box, or MIAS circle (default: none)")
    p.add_argument("--roi-margin", type=float, default=0.1,
                   help="relative margin added around the ROI box (default: 0.1)")
    p.add_argument("--group-duplicates", type=int, nargs="?", const=DEFAULT_MAX_DISTANCE, default=None,
                   metavar="BITS",
                   help="put near-duplicate images (dHash distance <= BITS of 64, default "
                        f"{DEFAULT_MAX_DISTANCE}) in one group, so grouped CV never splits them "
                        "(BUSI has ~200 such pairs)")
    p.add_argument("--window", default=None, metavar="WINDOW",
                   help="how DICOM / NIfTI values become [0, 1]: auto (default: the file's window, else its "
                        "declared range), file (= mammo), range, minmax, soft-tissue, lung, bone, brain, "
                        "mediastinum, or CENTER,WIDTH")
    p.add_argument("--slices", default=None, metavar="POLICY",
                   help="planes of volumes (NIfTI, DICOM series folders) and multi-frame DICOM used as samples: "
                        "index:K, middle, max-mask, all-masked or all (one sample each, grouped by volume)")
    p.add_argument("--subsample", type=positive_int, default=None, metavar="N",
                   help="use a stratified random N of the labelled images, drawn with seed 0 (the same N for "
                        "every command, so their rows are paired; smoke tests, quick studies)")


def data_spec(args):
    """The :class:`~featurekit.data.spec.DataSpec` the data arguments name."""
    from featurekit.data.spec import DataSpec

    return DataSpec(args.data, format=args.format, classes=args.classes, positive=args.positive, roi=args.roi,
                    roi_margin=args.roi_margin, group_duplicates=getattr(args, "group_duplicates", None),
                    subsample=getattr(args, "subsample", None), window=getattr(args, "window", None),
                    slices=getattr(args, "slices", None))


def load_data(args):
    """The dataset the data arguments name."""
    return data_spec(args).load()


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=_jsonable))


def _jsonable(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def spec_type(parse):
    """An argparse ``type=`` that parses a spec once, keeping featurekit's message on bad input."""
    def convert(text: str):
        from featurekit.errors import FeaturekitError

        try:
            return parse(text)
        except FeaturekitError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "spec")
    return convert


def int_at_least(minimum: int, what: str):
    """An argparse type of integers >= ``minimum`` (``what`` names them in the error)."""
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    convert.__name__ = "int"
    return convert


#: argparse type of sizes and counts that must be at least 1
positive_int = int_at_least(1, "a positive integer")
#: argparse type of counts where 0 means none (``--workers``)
non_negative_int = int_at_least(0, "an integer >= 0")


def require(condition: bool, message: str) -> None:
    if not condition:
        raise DataError(message)
