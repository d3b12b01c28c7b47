"""Sweep runner: design points evaluated in chunks, results stored as they arrive.

``run_points`` evaluates design points (full configurations) with a picklable top-level
``evaluate(point) -> flat dict of results`` and writes finished points to a
:class:`~studies.store.ResultStore` from the calling process only, in batches the store
asks for (``commit_points``/``commit_seconds``: every point at once for the per-point JSON
store, a transaction per second for :class:`~studies.sqlite_store.SqliteStore`): a sweep
killed at any moment loses at most the points in flight and the uncommitted batch, and a
rerun skips what is stored. Backends:

- in-process loop (``jobs=1``, the default);
- local processes through joblib's loky backend (``jobs=N``), results streamed unordered,
  a few points per task (``chunk_points``, on Dask too) so that task overhead stays small
  beside millisecond points; with ``group`` the points are ordered so that each chunk
  shares the worker's caches (masks, workload) as far as it can;
- Dask distributed: an existing scheduler (``scheduler=ADDRESS``) or a ``LocalCluster`` of
  ``dask_workers`` single-threaded worker processes. An existing scheduler is asked for its
  identity first, with a ``connect_timeout`` (5 s): an address where nothing listens, or a
  socket that accepts but never answers, ends in one :class:`SchedulerError` line instead of
  Dask's 30 s timeout or an endless wait.

Workers run single-threaded numerics (``NUMBA_NUM_THREADS=1``, ``OMP_NUM_THREADS=1``):
parallelism belongs to the sweep, not to the kernels.

An exception raised by ``evaluate`` fails that point only: it is recorded in
``RunSummary.failed`` as one line and not stored, so a rerun tries it again. A worker
process that dies (crash, out-of-memory kill, SIGKILL) is not the point's fault: its
points are run again, up to ``retries`` more times each.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from safeio.limits import shorten
from studies.store import ResultStore, StoreError, point_key

# Set in every worker before it imports numerical libraries.
THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

# Seconds to reach a Dask scheduler and hear its identity.
CONNECT_TIMEOUT_S = 5.0
# Memory growth after which loky restarts a worker (``_raise_leak_threshold``).
WORKER_GROWTH_BYTES = 4 << 30
# At most this many points per loky task; fewer when that would leave a worker idle (each
# worker gets at least CHUNKS_PER_JOB tasks, so the last ones finish close together).
MAX_CHUNK_POINTS = 16
CHUNKS_PER_JOB = 4

Evaluate = Callable[[Mapping[str, Any]], Mapping[str, Any]]
# What a worker sends back for one point: (key, succeeded, result row or one-line error).
Outcome = tuple[str, bool, Any]


@dataclass(frozen=True)
class RunSummary:
    """What one ``run_points`` call did; ``total == done + skipped + len(failed)``."""

    total: int  # distinct points asked for
    done: int  # evaluated and stored by this call
    skipped: int  # already in the store
    failed: tuple[tuple[str, str], ...]  # (key, "ExceptionType: message")
    keys: tuple[str, ...] = ()  # every distinct point's key, in input order
    # wall times in the store (finding the stored points; checking and writing finished
    # ones): measurements of the machine, left out of comparisons between summaries
    store_read_s: float = field(default=0.0, compare=False)
    store_write_s: float = field(default=0.0, compare=False)

    @property
    def ok(self) -> bool:
        return not self.failed


class SchedulerError(RuntimeError):
    """A Dask scheduler address that is malformed, unreachable or does not answer."""


def _one_line(error: BaseException) -> str:
    message = shorten(" ".join(str(error).split()))
    name = type(error).__name__
    return f"{name}: {message}" if message else name


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Ask the scheduler at ``address`` for its identity within ``timeout`` seconds, or raise
    :class:`SchedulerError` saying what went wrong (bad address, nothing listening, no
    answer). Dask's own client waits 30 s on a closed port and forever on a silent one."""
    from distributed.comm import connect

    async def identity() -> Any:
        # Connecting gets half the time, so a refused port ends as "cannot reach" (an
        # OSError from connect's retries) before the overall wait ends as "did not answer".
        comm = await connect(address, timeout=timeout / 2)
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            comm.abort()

    try:
        asyncio.run(asyncio.wait_for(identity(), timeout))
    except TimeoutError:  # accepted (or still connecting) but no answer in time
        raise SchedulerError(
            f"the Dask scheduler at {address} did not answer within {timeout:g} s: expected "
            "a running scheduler at tcp://host:port"
        ) from None
    except OSError as error:
        raise SchedulerError(
            f"cannot reach a Dask scheduler at {address} within {timeout:g} s "
            f"({_one_line(error)}): is one running there?"
        ) from None
    except ValueError as error:
        raise SchedulerError(
            f"{address!r} is not a Dask scheduler address ({_one_line(error)}): expected "
            "tcp://host:port"
        ) from None


def _evaluate_one(evaluate: Evaluate, key: str, point: Mapping[str, Any]) -> Outcome:
    """Run in a worker: evaluate one point, turning its exception into a one-line error."""
    try:
        row = evaluate(point)
    except Exception as error:
        return key, False, _one_line(error)
    if not isinstance(row, Mapping):
        return key, False, f"TypeError: evaluate returned {type(row).__name__}, not a mapping"
    return key, True, dict(row)


def _evaluate_chunk(evaluate: Evaluate, chunk: list[tuple[str, Mapping]]) -> list[Outcome]:
    """Run in a worker: one task's points, in order."""
    return [_evaluate_one(evaluate, key, point) for key, point in chunk]


def chunk_points(n_points: int, jobs: int) -> int:
    """Points per task: up to ``MAX_CHUNK_POINTS``, but at least ``CHUNKS_PER_JOB`` tasks per
    worker."""
    return max(1, min(MAX_CHUNK_POINTS, n_points // (jobs * CHUNKS_PER_JOB)))


def _raise_leak_threshold() -> None:
    """A loky worker's initializer: raise loky's memory-leak threshold to
    ``WORKER_GROWTH_BYTES``. Loky restarts a worker whose memory grew more than 300 MB since
    its first task; a sweep's worker grows past that as its bounded caches fill (the
    model's weights while it computes mask sets, then two mask sets and their workloads:
    about 1 GB on BERT-base), so the restart printed a 'memory leak' warning mid-sweep and
    paid the worker's imports again. The threshold is a private module constant: where a
    loky version lacks it, nothing is changed."""
    from joblib.externals.loky import process_executor

    if hasattr(process_executor, "_MAX_MEMORY_LEAK_SIZE"):
        process_executor._MAX_MEMORY_LEAK_SIZE = WORKER_GROWTH_BYTES


def loky_pool() -> Any:
    """joblib's ``parallel_config`` for the sweep's loky workers: single-threaded numerics
    (``inner_max_num_threads=1`` puts NUMBA/OMP/MKL/..._NUM_THREADS=1 in their environment)
    and ``_raise_leak_threshold``. Mask preparation and the sweep use this same config, so
    the sweep reuses the workers (joblib reuses a pool only for equal arguments)."""
    from joblib import parallel_config

    return parallel_config(
        backend="loky", inner_max_num_threads=1, initializer=_raise_leak_threshold
    )


def _run_inline(evaluate: Evaluate, todo: list[tuple[str, Mapping]]) -> Iterator[Outcome]:
    for key, point in todo:
        yield _evaluate_one(evaluate, key, point)


def _run_loky(
    evaluate: Evaluate, todo: list[tuple[str, Mapping]], jobs: int, retries: int
) -> Iterator[Outcome]:
    """joblib/loky processes, ``chunk_points`` points per task; a pool broken by a dead worker
    is restarted for what is left.

    Which point killed the worker is unknown, so every unfinished point is re-run; a pass that
    breaks without finishing any point counts against ``retries``, after which the points
    left are reported failed.
    """
    from joblib import Parallel, delayed
    from joblib.externals.loky.process_executor import BrokenProcessPool

    remaining = dict(todo)
    barren_passes = 0
    while remaining:
        finished_this_pass = 0
        try:
            with loky_pool():
                items = list(remaining.items())
                size = chunk_points(len(items), jobs)
                chunks = Parallel(n_jobs=jobs, return_as="generator_unordered")(
                    delayed(_evaluate_chunk)(evaluate, items[start : start + size])
                    for start in range(0, len(items), size)
                )
                for chunk in chunks:
                    for outcome in chunk:
                        remaining.pop(outcome[0], None)
                        finished_this_pass += 1
                        yield outcome
        except BrokenProcessPool as error:  # TerminatedWorkerError is a subclass
            barren_passes = 0 if finished_this_pass else barren_passes + 1
            if barren_passes > retries:
                reason = f"worker died {retries + 1} times: {_one_line(error)}"
                for key in remaining:
                    yield key, False, reason
                return


def _set_thread_env() -> None:
    os.environ.update(THREAD_ENV)
    if "numba" in sys.modules:  # imported before the variables were set: cap it at run time
        from accel_sim.kernels._jit import single_threaded

        single_threaded()


def _thread_plugin() -> Any:
    """A Dask worker plugin setting ``THREAD_ENV`` on every worker, present and future.

    Built on demand so that importing this module does not import distributed; the local
    class travels to the workers by value (cloudpickle).
    """
    from distributed import WorkerPlugin

    class SingleThreadedNumerics(WorkerPlugin):
        idempotent = True

        def setup(self, worker: Any) -> None:
            _set_thread_env()

    return SingleThreadedNumerics()


@contextlib.contextmanager
def local_cluster(n_workers: int, *, retries: int = 2) -> Iterator[Any]:
    """A ``LocalCluster`` of single-threaded worker processes with ``THREAD_ENV`` set.

    The variables reach the workers twice over: Dask's pre-spawn environment (set before the
    worker process starts, before anything imports numba) and the nanny's ``env``. A task
    survives ``retries`` deaths of the worker running it (``allowed-failures``).
    """
    import dask
    from distributed import LocalCluster

    if n_workers < 1:
        raise ValueError(f"dask_workers must be at least 1, got {n_workers}")
    pre_spawn = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    pre_spawn.update(THREAD_ENV)
    settings = {
        "distributed.nanny.pre-spawn-environ": pre_spawn,
        "distributed.scheduler.allowed-failures": retries,
    }
    with (
        dask.config.set(settings),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port for the scheduler's HTTP endpoints
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.ERROR,
            env=dict(THREAD_ENV),
        ) as cluster,
    ):
        yield cluster


def _run_dask(
    evaluate: Evaluate, todo: list[tuple[str, Mapping]], address: str, retries: int
) -> Iterator[Outcome]:
    """One Dask task per ``chunk_points`` points; a task whose worker dies is rescheduled by
    the scheduler (up to its ``allowed-failures``, set by ``local_cluster``; Dask's default
    is 3), and a task that fails outside ``evaluate`` fails each of its points."""
    from distributed import Client, as_completed

    with Client(address, set_as_default=False, timeout=CONNECT_TIMEOUT_S) as client:
        client.register_plugin(_thread_plugin(), name="sparse-bert-cosim-threads")
        size = chunk_points(len(todo), max(1, sum(client.nthreads().values())))
        chunks = [todo[start : start + size] for start in range(0, len(todo), size)]
        futures = client.map(
            functools.partial(_evaluate_chunk, evaluate), chunks, pure=False, retries=retries
        )
        pending = {future.key: future for future in futures}
        owner = {future.key: chunk for future, chunk in zip(futures, chunks, strict=True)}
        completed = as_completed(futures, loop=client.loop)
        del futures
        try:
            for future in completed:
                outcomes = _chunk_outcomes(future, owner[future.key])
                del pending[future.key]
                future.release()
                yield from outcomes
        finally:
            if pending:
                client.cancel(list(pending.values()))


def _chunk_outcomes(future: Any, chunk: list[tuple[str, Mapping]]) -> list[Outcome]:
    """The outcomes of a completed chunk's future. Its status is not trusted: a finished
    chunk whose result sat on a worker that another chunk's crash killed is "lost" when it
    is read, and Dask recomputes it, so the result is waited for. Only an exception (raised
    outside ``evaluate``, e.g. unpicklable, or its workers kept dying, or cancelled) fails
    the chunk's points."""
    try:
        return future.result()
    except Exception as error:
        return [(key, False, _one_line(error)) for key, _ in chunk]


def run_points(
    points: Sequence[Mapping[str, Any]],
    evaluate: Evaluate,
    store: ResultStore,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    dask_workers: int | None = None,
    progress: bool = True,
    retries: int = 2,
    description: str = "sweep",
    connect_timeout: float = CONNECT_TIMEOUT_S,
    group: Callable[[Mapping[str, Any]], Hashable] | None = None,
    keys: Sequence[str] | None = None,
) -> RunSummary:
    """Evaluate every point not yet in ``store`` and store the results as they arrive, in the
    store's batches.

    Duplicate points run once. With ``group`` (point -> hashable) the points to run are
    ordered by the first appearance of their group, so points that share worker caches
    (``studies.evaluate.mask_group``) run one after another. ``keys``: the points'
    ``point_key`` values when the caller has them already (a key that is not its point's
    fails that point when it is stored). ``evaluate`` must be a picklable
    top-level function for the parallel backends. Returns counts, the one-line errors of
    failed points and the time spent in the store; the table itself is
    ``store.frame(summary.keys)``, the same whatever backend produced it. A ``scheduler``
    that does not answer within ``connect_timeout`` seconds raises :class:`SchedulerError`
    before any point runs.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if retries < 0:
        raise ValueError(f"retries must be at least 0, got {retries}")
    if scheduler is not None and dask_workers is not None:
        raise ValueError("give either scheduler (an address) or dask_workers, not both")
    if dask_workers is not None and dask_workers < 1:
        raise ValueError(f"dask_workers must be at least 1, got {dask_workers}")

    if keys is not None and len(keys) != len(points):
        raise ValueError(f"keys: expected one per point ({len(points)}), got {len(keys)}")
    unique: dict[str, Mapping[str, Any]] = {}
    for index, point in enumerate(points):
        unique.setdefault(point_key(point) if keys is None else keys[index], point)
    started = time.perf_counter()
    stored = store.keys()
    store_read_s = time.perf_counter() - started
    todo = [(key, point) for key, point in unique.items() if key not in stored]
    skipped = len(unique) - len(todo)
    if group is not None:
        first: dict[Hashable, int] = {}
        todo.sort(key=lambda item: first.setdefault(group(item[1]), len(first)))

    done = 0
    failed: list[tuple[str, str]] = []
    pending: list[dict[str, Any]] = []
    store_write_s = 0.0
    commit_points = max(1, int(getattr(store, "commit_points", 1)))
    commit_seconds = float(getattr(store, "commit_seconds", 0.0))
    last_commit = last_arrival = time.monotonic()

    def commit() -> None:
        nonlocal done, store_write_s, last_commit
        if pending:
            begun = time.perf_counter()
            store.write(pending)
            store_write_s += time.perf_counter() - begun
            done += len(pending)
            pending.clear()
        last_commit = time.monotonic()

    with contextlib.ExitStack() as stack:
        if not todo:
            outcomes: Iterator[Outcome] = iter(())
        elif dask_workers is not None:
            cluster = stack.enter_context(local_cluster(dask_workers, retries=retries))
            outcomes = _run_dask(evaluate, todo, cluster.scheduler_address, retries)
        elif scheduler is not None:
            check_scheduler(scheduler, connect_timeout)
            outcomes = _run_dask(evaluate, todo, scheduler, retries)
        elif jobs > 1:
            outcomes = _run_loky(evaluate, todo, jobs, retries)
        else:
            outcomes = _run_inline(evaluate, todo)
        bar = stack.enter_context(
            # disable=None: a bar on a terminal only, never in a redirected log
            tqdm(total=len(todo), desc=description, unit="pt", disable=None if progress else True)
        )
        stack.callback(getattr(outcomes, "close", lambda: None))
        try:
            for key, succeeded, payload in outcomes:
                if succeeded:
                    begun = time.perf_counter()
                    try:
                        pending.append(store.document(key, unique[key], payload))
                    except StoreError as error:
                        failed.append((key, _one_line(error)))
                    store_write_s += time.perf_counter() - begun
                    # a batch is full, or a second has passed, or points come slowly (then
                    # each is committed at once rather than wait for the next one)
                    now = time.monotonic()
                    if (
                        len(pending) >= commit_points
                        or now - last_commit >= commit_seconds
                        or now - last_arrival >= commit_seconds
                    ):
                        commit()
                    last_arrival = now
                else:
                    failed.append((key, str(payload)))
                bar.update(1)
                if failed:
                    bar.set_postfix(failed=len(failed), refresh=False)
        finally:  # finished points are kept even when the sweep is interrupted
            commit()

    position = {key: index for index, key in enumerate(unique)}
    failed.sort(key=lambda item: position[item[0]])  # input order, not completion order
    return RunSummary(
        total=len(unique),
        done=done,
        skipped=skipped,
        failed=tuple(failed),
        keys=tuple(unique),
        store_read_s=store_read_s,
        store_write_s=store_write_s,
    )
