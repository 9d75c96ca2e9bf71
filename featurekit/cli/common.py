"""Arguments shared by several commands, and how they become API calls."""

from __future__ import annotations

import argparse
import json

from featurekit.errors import DataError

EXAMPLES_FORMATTER = argparse.RawDescriptionHelpFormatter


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """DATA and the data options (:data:`featurekit.options.DATA`)."""
    from featurekit.options import DATA

    p.add_argument("data", metavar="DATA",
                   help="dataset: a class-folder tree (BUSI layout), a CSV manifest, a MedMNIST-style .npz, "
                        "a MIAS folder (Info.txt + images), or 'phantom' (the embedded synthetic demo set)")
    DATA.add_arguments(p)


def data_spec(args):
    """The :class:`~featurekit.data.spec.DataSpec` the data arguments name."""
    from featurekit.data.spec import DataSpec
    from featurekit.options import DATA

    return DataSpec(args.data, **DATA.from_args(args))


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
