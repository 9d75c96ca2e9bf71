"""``featurekit cache ls|info|verify|rm``: look into, check and prune feature caches."""

from __future__ import annotations

from pathlib import Path

from featurekit.cli.common import EXAMPLES_FORMATTER, print_json

EXAMPLES = """examples:
  featurekit cache ls                       # caches under ./cache (or $FEATUREKIT_CACHE)
  featurekit cache info cache/busi-0123456789ab.h5
  featurekit cache info cache/busi-0123456789ab.h5 --json
  featurekit cache verify                   # every checksum of every cache under ./cache; exit 1 on damage
  featurekit cache verify cache/busi-0123456789ab.h5
  featurekit cache rm cache/busi-0123456789ab.h5 --key vgg16/block5_pool
  featurekit cache rm cache/busi-0123456789ab.h5      # the whole file and its journal, readable or not
"""


def add_parser(sub) -> None:
    p = sub.add_parser("cache", help="list, inspect, verify and remove feature caches",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    csub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = csub.add_parser("ls", help="list cache files in a folder (unreadable ones included, marked)")
    ls.add_argument("folder", nargs="?", default=None)
    info = csub.add_parser("info", help="entries of one cache file (damaged ones listed)")
    info.add_argument("file")
    info.add_argument("--json", action="store_true")
    verify = csub.add_parser("verify", help="check every checksum; exit status 1 when anything is damaged")
    verify.add_argument("files", nargs="*", metavar="FILE",
                        help="cache files (default: every .h5 under ./cache or $FEATUREKIT_CACHE)")
    rm = csub.add_parser("rm", help="remove entries (--key) or the whole cache")
    rm.add_argument("file")
    rm.add_argument("--key", default=None, help="feature key, e.g. vgg16/block5_pool (default: everything)")
    rm.add_argument("--entry", default=None, help="one entry id of the key")
    p.set_defaults(run=run)


def _folder_files(folder: Path) -> list[Path]:
    from featurekit.errors import CacheError

    if not folder.exists():
        raise CacheError(f"no cache folder {folder}")
    if not folder.is_dir():
        raise CacheError(f"{folder} is not a folder (give a folder of caches, or use `featurekit cache info FILE`)")
    return sorted(folder.glob("*.h5"))


def run(args) -> int:
    from featurekit.cache import FeatureCache, default_cache_dir
    from featurekit.errors import CacheError

    if args.action == "ls":
        folder = Path(args.folder) if args.folder else default_cache_dir()
        files = _folder_files(folder)
        if not files:
            print(f"no caches in {folder}")
        for path in files:
            cache = FeatureCache(path)
            size = f"{path.stat().st_size / 1e6:.1f} MB"
            try:
                meta = cache.meta
                damaged = f"  {len(cache.damaged())} damaged" if cache.damaged() else ""
                print(f"{path}  {meta.get('dataset')}  n={len(cache.ids)}  {len(cache.keys())} keys  {size}{damaged}")
            except CacheError as exc:
                print(f"{path}  UNREADABLE  {size}: {exc}")
        for journal in sorted(folder.glob("*.h5.partial")):
            owner = journal.with_name(journal.name[:-len(".partial")])
            if not owner.exists():
                rows = sum(FeatureCache(owner).pending().values())
                print(f"{owner}  (no file: an unfinished run journaled {rows} rows in {journal.name})")
        return 0
    if args.action == "verify":
        files = ([Path(f) for f in args.files] if args.files else _folder_files(default_cache_dir()))
        bad = 0
        for path in files:
            cache = FeatureCache(path)
            problems = cache.verify()
            if problems:
                bad += 1
                print(f"{path}: DAMAGED")
                for p in problems:
                    print(f"  {p}")
            else:
                print(f"{path}: ok ({len(cache.entries())} entries, every checksum verified)")
        return 1 if bad else 0
    cache = FeatureCache(args.file)
    if args.action == "info":
        info = cache.info()
        if args.json:
            print_json(info)
            return 0
        print(f"{info['path']}: dataset {info['dataset']} ({info['n']} samples, classes {info['class_names']})")
        print(f"fingerprint {info['fingerprint']}  created {info['created']}  {info['size_bytes'] / 1e6:.1f} MB")
        reading = info.get("reading")
        if reading:  # DICOM / volume data: how their values became [0, 1]
            print(f"reading: window {reading.get('window')}, {reading.get('samples')} samples")
            for rule in reading.get("dicom") or []:
                text = ", ".join(f"{k} {v}" for k, v in rule.items() if k != "n")
                print(f"  DICOM ({rule.get('n')}): {text}")
        for e in cache.entries():
            print(f"  {e.describe()}")
        for d in info["damaged"]:
            print(f"  DAMAGED {d['path']}: {d['reason']}")
        for s in info["skipped"]:
            print(f"  skipped (no rows): {s['id']}: {s['reason']}")
        for entry_id, rows in info["pending_rows"].items():
            print(f"  pending (unfinished run): {entry_id} {rows}/{info['n']} rows journaled")
        return 0
    n = cache.remove(key=args.key, entry_id=args.entry)
    print(f"removed {n} entr{'y' if n == 1 else 'ies'} from {cache.path}" if args.key or args.entry
          else f"removed {cache.path} ({n} entries)")
    return 0
