"""The write lock of a cache file: an exclusive ``flock`` on ``<file>.lock`` with a timeout.

Only writers lock; readers never do (they see the last committed file), so a
cache on a read-only file system can be read. Taking the lock where nothing
can be written is a :class:`~featurekit.errors.ReadOnlyError` naming the folder.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from featurekit.errors import CacheLockedError
from featurekit.io import storage_error


class FileLock:
    """Exclusive advisory lock (``flock``) with a timeout; records the holder's pid."""

    def __init__(self, path: Path, timeout: float | None, target: Path):
        self.path, self.timeout, self.target = Path(path), timeout, Path(target)
        self._fh = None

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

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
