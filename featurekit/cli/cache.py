"""``featurekit cache ls|info|rm``: look into and prune feature caches."""

from __future__ import annotations

from pathlib import Path

from featurekit.cli.common import EXAMPLES_FORMATTER, print_json

EXAMPLES = """examples:
  featurekit cache ls                       # caches under ./cache (or $FEATUREKIT_CACHE)
  featurekit cache info cache/busi-0123456789ab.h5
  featurekit cache info cache/busi-0123456789ab.h5 --json
  featurekit cache rm cache/busi-0123456789ab.h5 --key vgg16/block5_pool
  featurekit cache rm cache/busi-0123456789ab.h5      # the whole file and its journal
"""


def add_parser(sub) -> None:
    p = sub.add_parser("cache", help="list, inspect and remove feature caches",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    csub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = csub.add_parser("ls", help="list cache files in a folder")
    ls.add_argument("folder", nargs="?", default=None)
    info = csub.add_parser("info", help="entries of one cache file")
    info.add_argument("file")
    info.add_argument("--json", action="store_true")
    rm = csub.add_parser("rm", help="remove entries (--key) or the whole cache")
    rm.add_argument("file")
    rm.add_argument("--key", default=None, help="feature key, e.g. vgg16/block5_pool (default: everything)")
    rm.add_argument("--entry", default=None, help="one entry id of the key")
    p.set_defaults(run=run)


def run(args) -> int:
    from featurekit.cache import FeatureCache, default_cache_dir

    if args.action == "ls":
        folder = Path(args.folder) if args.folder else default_cache_dir()
        files = sorted(folder.glob("*.h5")) if folder.is_dir() else []
        if not files:
            print(f"no caches in {folder}")
        for path in files:
            cache = FeatureCache(path)
            meta = cache.meta
            print(f"{path}  {meta.get('dataset')}  n={meta.get('n')}  "
                  f"{len(cache.keys())} keys  {path.stat().st_size / 1e6:.1f} MB")
        return 0
    cache = FeatureCache(args.file)
    if args.action == "info":
        info = cache.info()
        if args.json:
            print_json(info)
            return 0
        print(f"{info['path']}: dataset {info['dataset']} ({info['n']} samples, classes {info['class_names']})")
        print(f"fingerprint {info['fingerprint']}  created {info['created']}  {info['size_bytes'] / 1e6:.1f} MB")
        for e in cache.entries():
            print(f"  {e.describe()}")
        for entry_id, rows in info["pending_rows"].items():
            print(f"  pending (unfinished run): {entry_id} {rows}/{info['n']} rows journaled")
        return 0
    n = cache.remove(key=args.key, entry_id=args.entry)
    print(f"removed {n} entr{'y' if n == 1 else 'ies'} from {cache.path}" if args.key or args.entry
          else f"removed {cache.path} ({n} entries)")
    return 0
