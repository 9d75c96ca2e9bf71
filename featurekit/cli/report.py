"""``featurekit report``: run folders -> report.md and a standalone report.html.

Merges the rows of one or several run folders (``featurekit evaluate`` and
``featurekit finetune`` write the same format): best of each kind, layer-wise
curves with confidence bands, per-layer and full tables, ROC curves, confusion
matrices, DeLong p-values, training curves, provenance.
"""

from __future__ import annotations

from featurekit.cli.common import EXAMPLES_FORMATTER
from featurekit.options import REPORT

EXAMPLES = """examples:
  featurekit report runs/busi-mnv2                       # runs/busi-mnv2/report.{md,html}
  featurekit report runs/busi-mnv2 runs/busi-finetune --out reports/busi.html
  featurekit report runs/a runs/b --out reports/        # reports/report.{md,html}
"""


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write report.md and report.html for run folders",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (results.csv, predictions.csv ...)")
    REPORT.add_arguments(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from featurekit.report.build import build_report, report_paths

    html_path = build_report(args.runs, **REPORT.from_args(args))
    md_path, _ = report_paths(args.runs, args.out)
    print(f"report: {html_path}")
    print(f"        {md_path}")
    return 0
