"""The one numba decorator of the kernels: compiled without the GIL, the machine code cached on disk
where a folder is writable."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from numba import njit

__all__ = ["CACHE", "jit"]


def _probe():  # pragma: no cover - compiled only to find out whether caching is possible
    return 0


try:  # numba caches beside the kernels, else in the user's cache folder
    njit(cache=True)(_probe)
    CACHE = True
except RuntimeError:  # neither is writable (a read-only install without a home): compile in each process
    CACHE = False

#: ``numba.njit`` with the kernels' options (``@jit`` or ``@jit(fastmath=...)``).
jit: Callable[..., Any] = partial(njit, cache=CACHE, nogil=True)
