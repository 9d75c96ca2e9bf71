"""The write lock of a cache file: an exclusive ``flock`` on ``<file>.lock`` with a timeout.

Only writers lock; readers never do (they see the last committed file), so a
cache on a read-only file system can be read. Taking the lock where nothing
can be written is a :class:`~featurekit.errors.ReadOnlyError` naming the folder.

A lock is held only by the process that took it. A ``flock`` belongs to the
open file, which a forked child (a DataLoader worker) would share and keep
locked after the holder died; so a forked child's copy of every held lock's
descriptor is pointed at ``/dev/null`` as the child starts
(``os.register_at_fork``): the parent keeps its lock, the child holds none.
(Python opens files non-inheritable, so an exec'd child never has them.)
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
import weakref
from pathlib import Path
from typing import TextIO

from featurekit.errors import CacheLockedError
from featurekit.io import storage_error


#: Locks held by this process (their descriptors are dropped in forked children).
_HELD: "weakref.WeakSet[FileLock]" = weakref.WeakSet()


def _drop_in_child() -> None:
    """In a forked child: the held locks' descriptors point at /dev/null (the parent's lock is untouched)."""
    held = [(lock, lock._fh) for lock in list(_HELD) if lock._fh is not None]
    if not held:
        return
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for lock, fh in held:
            os.dup2(null, fh.fileno())  # closes the child's reference to the locked file, atomically
            lock._fh = None  # never unlock from here: LOCK_UN would release the parent's lock
    finally:
        os.close(null)
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_in_child)


class FileLock:
    """Exclusive advisory lock (``flock``) with a timeout; records the holder's pid."""

    def __init__(self, path: Path, timeout: float | None, target: Path):
        self.path, self.timeout, self.target = Path(path), timeout, Path(target)
        self._fh: TextIO | None = None  # the open lock file while the lock is held

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+")
        except OSError as exc:
            err = storage_error(exc, self.path.parent)
            if err is not None:
                raise type(err)(f"cannot write the feature cache {self.target}: {err}") from None
            raise
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    fh.close()
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "unknown"
                    fh.close()
                    raise CacheLockedError(
                        f"cache {self.target} is being written by another process (pid {holder}); "
                        f"gave up after {self.timeout:g} s: wait for it to finish or raise --lock-timeout"
                    ) from None
                time.sleep(0.1)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
        except OSError:
            pass  # the pid is only informative; the lock is held
        self._fh = fh
        _HELD.add(self)

    def release(self) -> None:
        _HELD.discard(self)
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
