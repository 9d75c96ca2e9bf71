"""A kill at any moment leaves nothing that blocks: no lock held by a dead run's DataLoader workers, no worker left."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import random_dataset
from featurekit.cache import FeatureCache
from featurekit.cache.lock import FileLock
from featurekit.extraction.pipeline import extract

WORKER = Path(__file__).resolve().parents[1] / "_cache_worker.py"
SPEC = ["resnet18:conv2_block2_out,conv4_block1_out,avg_pool"]


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie holds no file and runs nothing


def _until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_sigkill_with_dataloader_workers_alive_leaves_no_lock_and_no_worker(tmp_path):
    path = tmp_path / "c.h5"
    proc = subprocess.Popen([sys.executable, str(WORKER), str(path), "workers"], stdout=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        def started():
            assert proc.poll() is None, "the extraction ended before its workers started"
            return len(list(tmp_path.glob("c.h5.worker-*"))) == 2

        _until(started, 300, "two DataLoader workers decoding")
        workers = [int(p.name.rsplit("-", 1)[1]) for p in tmp_path.glob("c.h5.worker-*")]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the lock was the killed process's alone: free as soon as it is gone, whatever its workers do
        lock = FileLock(FeatureCache(path).lock_path, 0, path)
        lock.acquire()
        lock.release()
        _until(lambda: not any(_alive(pid) for pid in workers), 60, "the orphaned workers to exit")
        result = extract(random_dataset(n=24, size=40), SPEC, cache=path, weights="none", size=40, batch_size=4,
                         num_workers=0, progress=False, lock_timeout=30)
        assert len(result.computed) == 3 and FeatureCache(path).verify() == []
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
