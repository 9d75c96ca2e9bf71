"""``featurekit run``: run a study -- a paper's experiment written as one file -- end to end.

A study file (TOML; JSON is read too) declares variables (data paths), steps
(extract, evaluate, finetune with chained stages, report) with the options of
those commands, the paper's reported numbers, and profiles (``quick``: minutes
on a CPU; ``paper``: the paper's settings). Everything is checked before
anything runs; finished steps are reused (their run folders record the hash of
the configuration that made them), so an interrupted study resumes.
"""

from __future__ import annotations

import sys

from featurekit.cli.common import EXAMPLES_FORMATTER

EXAMPLES = """examples:
  featurekit run --list                                   # the shipped studies (pipelines/)
  featurekit run two_stage_transfer --dry-run             # the resolved plan of its default profile
  featurekit run two_stage_transfer --profile quick       # run it (minutes on 2 CPU cores)
  featurekit run breastmnist_resnet18 --set breastmnist=data/breastmnist.npz
  featurekit run resnet_transfer_ultrasound --set busi=my_images/ --set epochs=5
  featurekit run pipelines/four_networks_mammography.toml --profile paper --set device=cuda

--set KEY=VALUE: KEY is a variable (busi, mias, out ...), an option of every step that has it
(epochs=5), STEP.OPTION, STAGE.OPTION or STEP.STAGE.OPTION; STEP.skip=true leaves a step out.
VALUE is a TOML literal (3, 0.5, true, [1, 2]) or plain text.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run a study file (a paper's experiment) end to end, resumable",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    p.add_argument("study", nargs="?", metavar="STUDY", help="a study file, or the name of a shipped study")
    p.add_argument("--profile", default=None, help="profile of the study (default: its default_profile)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a variable or option (repeatable; see below)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved plan and what is already done")
    p.add_argument("--list", action="store_true", help="list the shipped studies")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args) -> int:
    from featurekit.studies import StudyError, load_study, shipped_studies

    if args.list or not args.study:
        if not args.list:
            raise StudyError("name a study file or a shipped study (featurekit run --list)")
        for name, path in shipped_studies().items():
            study = load_study(path)
            print(f"{name:<32} {study.title}  [profiles: {', '.join(study.profiles)}]")
        return 0
    return run_study(args.study, profile=args.profile, overrides=args.overrides, dry_run=args.dry_run,
                     quiet=args.quiet)


def run_study(study, *, profile=None, overrides=(), dry_run: bool = False, quiet: bool = False) -> int:
    """Plan (and unless ``dry_run``, run) a study; returns the exit status."""
    from featurekit.studies import describe_plan, load_study, plan_status, plan_study, run_plan

    plan = plan_study(load_study(study), profile=profile, overrides=overrides)
    if dry_run:
        print(describe_plan(plan, plan_status(plan)))
        return 2 if plan.problems else 0
    print(describe_plan(plan, plan_status(plan)))
    records = run_plan(plan, progress=not quiet)
    print("summary:")
    for r in records:
        name = r["step"] + (f"/{r['stage']}" if "stage" in r and r["stage"] != r["step"] else "")
        print(f"  {name:<36} {r['kind']:<9} {r['status']:<8} {r['seconds']:>9.1f} s")
    sys.stdout.flush()
    return 0
