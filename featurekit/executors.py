"""Where featurekit's independent tasks run: this process, or a Dask cluster.

An *executor* runs many independent calls of one function -- the shards of an
extraction, the fits of a cross-validation, the folds of a fine-tuning -- and
hands their results back to the process that owns the outputs (the cache
writer, the run folder). Two exist:

:class:`LocalExecutor`
    The calls run in this process, in order (``n_jobs != 1``:
    joblib's default backend on this machine's cores).
:class:`DaskExecutor`
    Wraps a user-supplied :class:`dask.distributed.Client`: each call is one
    Dask task (``client.submit``; many short calls, such as the fits of a
    cross-validation, are grouped a few tasks per worker thread), results come
    back as tasks finish (``as_completed``), the progress bar follows the cluster. Objects shared by
    every call (a dataset, a featurizer, the cross-validation's ``X``) are the
    output of one task that the others depend on, not pickled into each task:
    the scheduler can compute it again wherever the worker holding it died.
    A worker that dies takes its running tasks with it; the scheduler
    runs them again elsewhere (up to ``distributed.scheduler.allowed-failures``
    times), so a run completes with the same results; a task that cannot be
    computed any more (its workers died that many times, or it was cancelled)
    is a :class:`~featurekit.errors.ClusterError` naming what it held. An error raised by a task
    (say a :class:`~featurekit.errors.DataError` naming a corrupt image) reaches
    the caller as the same exception, and the tasks still pending are cancelled.

The Python API never starts a cluster: pass a ``Client`` you made
(``extract(..., executor=client)``). :func:`connect` is what the command line
uses for ``--scheduler``: an address (``tcp://host:8786``), a scheduler file
(as ``dask-scheduler --scheduler-file`` and dask-jobqueue write), or
``local:N`` -- a ``LocalCluster`` of N single-threaded worker processes that
:func:`connect` starts (:func:`local_cluster`) and closes.

Inside a worker, :func:`exclusive_worker` makes heavy tasks (a CNN shard, a
fine-tuning fold) take turns: one at a time per worker process, using all of
the worker's threads for torch -- the worker's model is shared by its threads
and its forward hooks must not interleave. Dask itself is imported only when a
Dask executor is used (``pip install featurekit[cluster]``).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from featurekit.errors import ClusterError
from featurekit.specs import local_scheduler_workers

__all__ = [
    "on_cluster",
    "Executor",
    "LocalExecutor",
    "DaskExecutor",
    "as_executor",
    "connect",
    "exclusive_worker",
    "in_dask_worker",
    "worker_address",
    "EXECUTORS",
    "GROUPS_PER_THREAD",
    "WORKER_ENVIRON",
    "SHARED_KEY_PREFIX",
    "local_cluster",
]

#: the ``--executor`` choices
EXECUTORS = ("local", "dask")
#: tasks per worker thread when many small calls are grouped (``stream(..., small=True)``)
GROUPS_PER_THREAD = 4
#: environment of the worker processes featurekit starts (:func:`local_cluster`), on top of Dask's own
#: ``distributed.nanny.pre-spawn-environ``. Dask sets ``MALLOC_TRIM_THRESHOLD_`` (freed memory goes back to the
#: system early), which also pins glibc's mmap threshold at 128 KiB: every larger array -- an FFT tile, a
#: batch of activations, a fold's matrix -- is then mapped and unmapped anew, page faults included (10-25 %
#: slower handcrafted features and fits, benchmarks/README.md). A 32 MiB threshold keeps such arrays in the
#: heap while the trimming stays. Give it to your own workers the same way (README, "On a cluster").
WORKER_ENVIRON = {"MALLOC_MMAP_THRESHOLD_": 32 * 2**20}

_INSTALL = 'pip install "featurekit[cluster]"  (or: pip install "dask[distributed]")'


def _progress(total: int, progress: bool, desc: str | None, unit: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not progress or total == 0, dynamic_ncols=True)


class Executor:
    """Runs independent calls ``fn(*args, **shared)`` (see the module docstring)."""

    #: whether the calls run in this process (the caller may then prepare data here, once)
    is_local = True

    def stream(self, fn: Callable, items: Sequence[tuple], *, shared: Mapping[str, Any] | None = None,
               name: str = "task", nested: bool | str = False, small: bool = False) -> Iterator[tuple[int, Any]]:
        """Yield ``(i, fn(*items[i], **shared))`` as the calls finish (any order).

        ``nested``: let joblib calls inside ``fn`` (a grid search's fits, an inner CV)
        fan out too -- on a cluster they become tasks of their own; ``"auto"``: only
        when the calls are too few to keep every worker thread busy twice over.
        ``small``: the calls are many and short (the fits of a cross-validation): on a
        cluster they are grouped, :data:`GROUPS_PER_THREAD` tasks per worker thread,
        so that a task's own cost (scheduling, messages: milliseconds) does not weigh
        on calls of a few milliseconds. Locally nothing changes.
        """
        raise NotImplementedError

    def map(self, fn: Callable, items: Sequence[tuple], *, shared: Mapping[str, Any] | None = None,
            progress: bool = False, desc: str | None = None, unit: str = "task",
            nested: bool | str = False, small: bool = False) -> list:
        """``[fn(*args, **shared) for args in items]``, in order, with a progress bar (see :meth:`stream`)."""
        items = list(items)
        out: list = [None] * len(items)
        with _progress(len(items), progress, desc, unit) as bar:
            for i, result in self.stream(fn, items, shared=shared, name=desc or unit, nested=nested, small=small):
                out[i] = result
                bar.update(1)
        return out

    @property
    def n_workers(self) -> int:
        """How many calls can run at the same time."""
        return 1

    def describe(self) -> str:
        return "local"


class LocalExecutor(Executor):
    """This process, in order; ``n_jobs != 1`` spreads :meth:`map` over joblib's default backend."""

    def __init__(self, n_jobs: int | None = 1):
        self.n_jobs = n_jobs

    def stream(self, fn, items, *, shared=None, name="task", nested=False, small=False):
        shared = dict(shared or {})
        for i, args in enumerate(items):
            yield i, fn(*args, **shared)

    def map(self, fn, items, *, shared=None, progress=False, desc=None, unit="task", nested=False, small=False):
        items = list(items)
        if self.n_jobs is not None and self.n_jobs != 1 and len(items) > 1:
            from joblib import Parallel, delayed

            shared = dict(shared or {})
            return Parallel(n_jobs=self.n_jobs)(delayed(fn)(*args, **shared) for args in items)
        return super().map(fn, items, shared=shared, progress=progress, desc=desc, unit=unit)

    @property
    def n_workers(self) -> int:
        from joblib import effective_n_jobs

        return 1 if self.n_jobs in (None, 1) else effective_n_jobs(self.n_jobs)

    def __repr__(self) -> str:
        return f"LocalExecutor(n_jobs={self.n_jobs})"


class DaskExecutor(Executor):
    """Tasks on the cluster of a :class:`dask.distributed.Client` (not created here).

    Parameters
    ----------
    client : dask.distributed.Client
    """

    is_local = False

    def __init__(self, client):
        self.client = client

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client!r})"

    @property
    def n_workers(self) -> int:
        """Worker threads of the cluster now (at least 1)."""
        client = self.client  # outside the try: a cluster that cannot start says so once, here
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # a cluster still starting its workers
            return 1

    @property
    def dashboard_link(self) -> str | None:
        try:
            return self.client.dashboard_link
        except Exception:
            return None

    def describe(self) -> str:
        info = self.client.scheduler_info()
        workers = info.get("workers", {})
        threads = sum(int(w.get("nthreads", 0)) for w in workers.values())
        dash = self.dashboard_link
        text = f"dask scheduler {info.get('address', '?')}: {len(workers)} workers, {threads} threads"
        return text + (f"; dashboard {dash}" if dash else "")

    def stream(self, fn, items, *, shared=None, name="task", nested=False, small=False):
        from distributed import KilledWorker, as_completed

        items = list(items)
        threads = self.n_workers
        if nested == "auto":
            nested = len(items) < 2 * threads
        n_tasks = min(len(items), GROUPS_PER_THREAD * threads) if small and not nested else len(items)
        # every n_tasks-th call in one task: neighbouring calls (one pipeline's folds) spread over the tasks
        groups = [list(range(k, len(items), n_tasks)) for k in range(n_tasks)]
        client = self.client
        token = uuid.uuid4().hex[:8]
        slug = "".join(c if c.isalnum() else "-" for c in name)
        label = f"featurekit-{slug}"
        common = _share(client, dict(shared or {}), f"{SHARED_KEY_PREFIX}-{slug}-{token}")
        futures, index = [], {}
        try:
            for k, group in enumerate(groups):
                fut = client.submit(_apply, fn, [tuple(items[i]) for i in group], common, bool(nested),
                                    key=f"{label}-{k}-{token}", pure=False)
                index[fut.key] = group
                futures.append(fut)
            # results gathered with the completions (no round trip per task); a task's exception is raised
            # here, as it was raised there
            for fut, results in as_completed(futures, with_results=True):
                if fut.status == "cancelled":  # ``results`` is the cancellation, not the task's results
                    reason = getattr(results, "reason", None) or results or "no reason given"
                    raise ClusterError(_lost(name, fut.key, index, common.key, f"cancelled on the cluster ({reason})"))
                fut.release()
                yield from zip(index[fut.key], results)
        except KilledWorker as exc:  # computed allowed-failures + 1 times, each time its worker died
            n = exc.allowed_failures + 1
            why = (f"not recomputed: the worker running it died, {n} time{'s' if n > 1 else ''} (the last: "
                   f"{exc.last_worker.address}; see its log; distributed.scheduler.allowed-failures)")
            raise ClusterError(_lost(name, exc.task, index, common.key, why)) from exc
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                client.cancel(pending)
            common.release()


#: key prefix of the task whose output is what every task of a :meth:`DaskExecutor.stream` shares
SHARED_KEY_PREFIX = "featurekit-shared"


def _shared(objects: dict) -> dict:
    """Worker side: the objects shared by every task of a stream (a task of their own: see :func:`_share`)."""
    return objects


def _share(client, objects: dict, key: str):
    """A future of ``objects`` that survives any worker's death.

    Scattered data exist only as copies on workers: Dask's active memory manager may drop all
    copies but one, and the worker holding that one may die -- the data are then lost, and every
    task needing them is cancelled. The output of a task is recomputed from its spec, which the
    scheduler keeps: the objects travel once to the scheduler, to the worker that runs this task,
    and from it (or any peer holding a copy) to the workers that need them.
    """
    import dask

    # the spec holds the objects on purpose: Dask's warning about a large graph would advise against it
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1 PiB"}):
        return client.submit(_shared, objects, key=key, pure=False)


def _lost(name: str, key, index: Mapping, shared_key, why: str) -> str:
    """The message of a task the cluster could not compute: which calls (or shared objects) it held, and why."""
    key = str(key)
    if key == str(shared_key):
        what = f"the objects shared by every {name} task"
    elif key in index:
        calls = index[key]
        what = f"{name} call{'s' if len(calls) > 1 else ''} {', '.join(map(str, calls))}"
    else:
        what = f"a task {name} depends on"
    return f"Dask task {key} ({what}) was lost: {why}; the results already returned are kept"


class _StartedOnUse(DaskExecutor):
    """A :class:`DaskExecutor` whose cluster is started by ``start()`` when a task first needs it."""

    def __init__(self, start: Callable[[], Any]):
        self._start, self._client = start, None

    @property
    def client(self):
        if self._client is None:
            self._client = self._start()
        return self._client

    @property
    def started(self) -> bool:
        """Whether the cluster was started (some work needed it)."""
        return self._client is not None

    def __repr__(self) -> str:
        return f"DaskExecutor({self._client!r})" if self.started else "DaskExecutor(<local cluster, not started>)"


def _apply(fn, calls, shared, nested=False):
    """Worker side of a task: ``fn`` on each call's arguments; ``nested``: joblib inside ``fn`` submits to the
    same cluster."""
    if not nested:
        return [fn(*args, **shared) for args in calls]
    from joblib import parallel_config

    with parallel_config(backend="dask", n_jobs=-1):  # the worker's client; joblib secedes while it waits
        return [fn(*args, **shared) for args in calls]


def as_executor(executor: Any = None, n_jobs: int | None = 1) -> Executor:
    """An :class:`Executor` from what a caller passed.

    ``None`` or ``"local"``: :class:`LocalExecutor` (with ``n_jobs``); an
    Executor: itself; a :class:`dask.distributed.Client`: a
    :class:`DaskExecutor` on it. ``"dask"`` alone is refused: the API does not
    start clusters (make a ``Client``; the command line has ``--scheduler``).
    """
    if executor is None or (isinstance(executor, str) and executor == "local"):
        return LocalExecutor(n_jobs)
    if isinstance(executor, Executor):
        return executor
    if isinstance(executor, str):
        if executor == "dask":
            raise ClusterError("executor='dask' needs a cluster: pass a dask.distributed.Client "
                               "(executor=Client(...)); the command line takes --scheduler ADDRESS")
        raise ClusterError(f"unknown executor {executor!r}: choose one of {', '.join(EXECUTORS)} "
                           "or pass a dask.distributed.Client")
    distributed = sys.modules.get("distributed")  # a Client exists only once dask.distributed is imported
    if distributed is not None and isinstance(executor, distributed.Client):
        return DaskExecutor(executor)
    raise ClusterError(f"executor must be 'local', an Executor or a dask.distributed.Client, "
                       f"got {type(executor).__name__}")


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"the Dask executor needs dask.distributed: {_INSTALL}") from None
    return distributed


def local_cluster(n_workers: int, threads_per_worker: int = 1, **kwargs):
    """A ``dask.distributed.LocalCluster`` of ``n_workers`` processes with :data:`WORKER_ENVIRON` set in them.

    What ``--scheduler local:N`` starts (single-threaded workers); ``kwargs`` go to ``LocalCluster``
    (default ``dashboard_address=":0"``: any free port; ``processes=True``). The caller closes it.
    """
    distributed = _import_distributed()
    import dask

    kwargs.setdefault("dashboard_address", ":0")
    kwargs.setdefault("processes", True)
    environ = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_ENVIRON.items()}
    with dask.config.set(environ):  # read by each nanny when it is made (restarts included)
        return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, **kwargs)


@contextlib.contextmanager
def connect(scheduler: str | None = None, *, timeout: float = 30.0,
            echo: Callable[[str], None] | None = None) -> Iterator[DaskExecutor]:
    """A :class:`DaskExecutor` on the cluster ``scheduler`` names (the command line's ``--scheduler``).

    Parameters
    ----------
    scheduler : str, optional
        ``tcp://host:8786`` (any Dask address), the path of a scheduler file,
        or ``local:N`` (a ``LocalCluster`` of N worker processes with one
        thread each, started when a task first needs it -- a command with
        nothing to compute starts none -- and closed on exit). ``None``: Dask's
        configured ``scheduler-address`` (``$DASK_SCHEDULER_ADDRESS``).
    timeout : float
        Seconds to wait for the scheduler.
    echo : callable, optional
        Receives one line describing the cluster and its dashboard (``local:N``: once started).
    """
    if not scheduler:
        _import_distributed()
        import dask

        scheduler = dask.config.get("scheduler-address", None)
    if not scheduler:
        raise ClusterError("--executor dask needs a cluster: --scheduler (finetune: --dask-scheduler) "
                           "tcp://HOST:8786, a SCHEDULER_FILE.json or local:N (or set DASK_SCHEDULER_ADDRESS)")
    with contextlib.ExitStack() as stack:
        n = local_scheduler_workers(scheduler)
        if n is not None:

            def start():
                distributed = _import_distributed()  # not even imported by a command with nothing to compute
                try:
                    cluster = stack.enter_context(local_cluster(n))
                    client = stack.enter_context(distributed.Client(cluster, timeout=timeout))
                except (OSError, TimeoutError) as exc:
                    raise ClusterError(f"cannot start a local Dask cluster of {n} workers: {exc}") from exc
                if echo is not None:
                    echo(DaskExecutor(client).describe())
                return client

            yield _StartedOnUse(start)  # a command with nothing to compute starts no cluster
            return
        distributed = _import_distributed()
        try:
            if "://" in scheduler:
                client = stack.enter_context(distributed.Client(scheduler, timeout=timeout))
            else:
                path = Path(scheduler)
                if not path.is_file():
                    raise ClusterError(f"scheduler {scheduler}: no such scheduler file (expected "
                                       "tcp://HOST:PORT, a scheduler file written by dask-scheduler "
                                       "--scheduler-file, or local:N)")
                client = stack.enter_context(distributed.Client(scheduler_file=str(path), timeout=timeout))
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from exc
        executor = DaskExecutor(client)
        if echo is not None:
            echo(executor.describe())
        yield executor


# ---------------------------------------------------------------------------
# worker side
# ---------------------------------------------------------------------------

_WORKER_LOCK = threading.Lock()


def in_dask_worker():
    """The Dask worker running this code, or None (a plain process)."""
    try:
        from distributed import get_worker
    except ImportError:
        return None
    try:
        return get_worker()
    except ValueError:
        return None


def worker_address() -> str | None:
    """The address of the Dask worker running this code, or None (a plain process: Dask is not even imported)."""
    if "distributed" not in sys.modules:
        return None
    worker = in_dask_worker()
    return None if worker is None else str(worker.address)


@contextlib.contextmanager
def exclusive_worker():
    """In a Dask worker: one heavy task at a time, with all the worker's threads for torch.

    Outside a worker this does nothing (the caller's process keeps its settings);
    torch's thread count is set only where torch is already imported.
    """
    worker = in_dask_worker()
    if worker is None:
        yield
        return
    with _WORKER_LOCK:
        torch = sys.modules.get("torch")
        if torch is None:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(int(getattr(getattr(worker, "state", worker), "nthreads", 1) or 1))
        try:
            yield
        finally:
            torch.set_num_threads(before)


@contextlib.contextmanager
def on_cluster(scheduler: str | None, *, echo: Callable[[str], None] | None = None) -> Iterator[DaskExecutor | None]:
    """``None`` (run here) when ``scheduler`` is None, else :func:`connect` to it (``""``: Dask's configured one)."""
    if scheduler is None:
        yield None
        return
    with connect(scheduler or None, echo=echo) as ex:
        yield ex
