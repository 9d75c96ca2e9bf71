"""Calls that tests run on Dask workers: a module of their own, so that a worker imports nothing else (no torch)."""

import os
import signal


def held(started, release, i, *, table):
    """Says it started (its worker then holds the shared objects), waits for ``release``, returns ``2 * table[i]``."""
    from distributed import Event

    Event(started).set()
    assert Event(release).wait(timeout=300), "the test never released its calls"
    return table[i] * 2


def die_at_one(i):
    """Call 1 kills its worker process; the others return ``i``."""
    if i == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return i
