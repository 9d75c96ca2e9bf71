"""What the benchmark scripts share: timing by the best of several runs.

A script imports it as ``from _common import best_time`` (the scripts run as
``python benchmarks/bench_x.py``, so their folder is on ``sys.path``).
"""

from __future__ import annotations

import time
from typing import Callable


def best_time(fn: Callable[[], object], repeats: int = 1) -> float:
    """The shortest wall time of ``repeats`` calls of ``fn`` (seconds): the least disturbed by other load."""
    best = float("inf")
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
