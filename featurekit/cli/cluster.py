"""``--executor`` / ``--scheduler`` / ``--shard-size``: where a command's work runs.

``featurekit finetune`` already has ``--scheduler`` (the learning-rate schedule):
there the cluster is ``--dask-scheduler``, a spelling every command accepts.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from featurekit.executors import EXECUTORS


def add_executor_arguments(p: argparse.ArgumentParser, *, shards: bool = True) -> None:
    """The options; without ``shards`` (fine-tuning) there is no --shard-size and no short --scheduler."""
    g = p.add_argument_group("where it runs (a Dask cluster: pip install featurekit[cluster])")
    flags = ["--scheduler", "--dask-scheduler"] if shards else ["--dask-scheduler"]
    g.add_argument("--executor", default="local", choices=EXECUTORS,
                   help=f"local: this process (default); dask: the tasks run on a Dask cluster "
                        f"({flags[0]} implies it)")
    g.add_argument(*flags, dest="dask_scheduler", default=None, metavar="ADDRESS",
                   help="the cluster: tcp://HOST:8786, a scheduler file (dask-scheduler --scheduler-file, "
                        "dask-jobqueue), or local:N to start a local cluster of N worker processes; "
                        "default: $DASK_SCHEDULER_ADDRESS")
    if shards:
        g.add_argument("--shard-size", type=int, default=None, metavar="N",
                       help="images per extraction task on a cluster, to the nearest whole batches "
                            "(default: about 4 tasks per worker thread, at most 1024 images)")


@contextlib.contextmanager
def executor_from_args(args):
    """``None`` (local) or a DaskExecutor on the cluster the arguments name (closed on exit)."""
    from featurekit.errors import DataError

    if getattr(args, "shard_size", None) is not None and args.shard_size < 1:
        raise DataError(f"--shard-size takes a positive number of images, got {args.shard_size}")
    if args.executor == "local" and args.dask_scheduler is None:
        yield None
        return
    from featurekit.executors import connect

    quiet = getattr(args, "quiet", False) or not getattr(args, "progress", True)
    with connect(args.dask_scheduler, echo=None if quiet else (lambda line: print(line, file=sys.stderr))) as ex:
        yield ex
