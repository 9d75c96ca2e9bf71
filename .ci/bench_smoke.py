"""Every benchmark script's smoke run, so that none can rot: ``benchmarks/bench_*.py --smoke``.

The convention: each script takes ``--smoke``, the smallest run of all its code paths (seconds;
its figures mean nothing), and exits non-zero when something fails. The scripts run one after
another in this one process (torch, scikit-learn and featurekit are imported once); a summary
line per script follows (wall and CPU seconds, child processes included: on a shared machine the
CPU time is the steadier figure), and the exit status is 1 if any failed.

    .venv/bin/python .ci/bench_smoke.py [bench_extract.py ...]
"""

from __future__ import annotations

import resource
import runpy
import sys
import time
import traceback
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(script: Path) -> str | None:
    """Run ``script --smoke`` as ``__main__``; None when it succeeded, else why not."""
    saved, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script), "--smoke"]
    sys.path.insert(0, str(script.parent))  # as `python benchmarks/bench_x.py` has it: benchmarks/_common.py
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (0, None):
            return f"exit status {exc.code}" if isinstance(exc.code, int) else str(exc.code)
    except Exception:  # any error of a benchmark is reported, and the next one runs
        traceback.print_exc()
        return "raised (traceback above)"
    finally:
        sys.argv, sys.path[:] = saved, saved_path
    return None


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(names: list[str]) -> int:
    scripts = [BENCHMARKS / n for n in names] or sorted(BENCHMARKS.glob("bench_*.py"))
    summary, failed = [], []
    for script in scripts:
        print(f"==> {script.name} --smoke", flush=True)
        t0, c0 = time.perf_counter(), cpu_seconds()
        error = run_script(script)
        line = (f"{script.name} --smoke: {'FAILED: ' + error if error else 'ok'} "
                f"({time.perf_counter() - t0:.1f} s, CPU {cpu_seconds() - c0:.1f} s)")
        summary.append(line)
        if error:
            failed.append(script.name)
    print("\n".join(["", "benchmark smoke runs:", *summary]), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
