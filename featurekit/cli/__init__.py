"""The ``featurekit`` command line: a thin layer over the Python API.

Each sub-command lives in its own module with ``add_parser(subparsers)``
and ``run(args) -> int``; :data:`COMMANDS` lists them in help order.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from featurekit import __version__
from featurekit.errors import FeaturekitError

COMMANDS = ["demo", "run", "extract", "layers", "cache", "evaluate", "report", "explain", "finetune", "predict"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="featurekit",
        description="Which features separate benign from malignant best, and how sure can we be? "
                    "Extract handcrafted and per-layer CNN features into an HDF5 cache, compare them.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'featurekit COMMAND --help' for the options and examples of a command.",
    )
    parser.add_argument("--version", action="version", version=f"featurekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        # every command is part of featurekit: one that cannot be imported is a broken install, not an option
        importlib.import_module(f"featurekit.cli.{name}").add_parser(sub)
    return parser


def format_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as the command line shows it: its message only, no Python source line or file."""
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    # warnings are messages to the user, not Python diagnostics: no source line, no file name
    previous, warnings.formatwarning = warnings.formatwarning, format_warning
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        try:
            return int(args.run(args) or 0)
        except FeaturekitError as exc:
            print(f"featurekit {args.command}: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted: finished batches are kept; run the same command again to resume", file=sys.stderr)
            return 130
    finally:
        warnings.formatwarning = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
