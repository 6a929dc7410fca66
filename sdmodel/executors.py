"""Executors: how an ensemble's members get run, serially, in local processes or on Dask.

What makes a millisecond Simlin run slow is the overhead around it, so:

- members go to workers in batches (one task = many members), so starting a
  task costs little against the runs in it;
- workers load the model themselves (PySD models cannot be pickled; the engine
  modules cache a loaded model per process), and a task carries only names,
  settings and a block of parameter values;
- a few batches are in flight per worker, so memory holds a few batches'
  results, not the ensemble;
- a member that fails (:class:`~sdmodel.errors.ModelRunError`) is recorded with
  its error in the batch's result and the others are kept.

:class:`Job` and :class:`Batch` are pickled to worker processes and Dask
workers, which import this module to run :func:`run_batch`; so they are plain
module-level dataclasses that never carry a model.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import TypeVar

import numpy as np

from sdmodel.errors import InputError, ModelRunError, first_line
from sdmodel.model import ModelInfo, Variable, file_sha256
from sdmodel.scenario import RunSpec, Setting

MAX_BATCH = 250  # members per task: ~0.75 s of Simlin runs, enough to hide a task's overhead
TASKS_PER_WORKER = 4  # enough tasks to balance the load and move a progress bar
SCHEDULER_TIMEOUT = 10.0  # seconds to check a --scheduler address, all told: a silent peer cannot hang a command

T = TypeVar("T")


# --- running members ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What a worker needs to run members of one scenario: picklable names and settings, never a model."""

    engine: str
    model: str
    model_sha256: str
    spec: RunSpec
    params: tuple[Setting, ...]
    outputs: tuple[str, ...]  # python names of the variables kept


@dataclass(frozen=True)
class Batch:
    """A block of members of one job: ``values`` is members x params; ``start`` the first member's index."""

    job: Job
    start: int
    values: np.ndarray


@dataclass(frozen=True)
class BatchResult:
    """A batch's outputs (members x series x time; NaN rows for failed members) and errors by member index."""

    start: int
    values: np.ndarray
    time: np.ndarray | None
    errors: dict[int, str]


_runners: list[tuple[Job, object]] = []  # per process: the last few jobs' runners, so a worker loads a model once


def run_batch(batch: Batch) -> BatchResult:
    """Run a batch of members in this process (a worker's task); a member's failure is recorded, not raised."""
    runner = runner_for(batch.job)
    results: list[np.ndarray | None] = []
    errors = {}
    for index, values in enumerate(batch.values):
        try:
            results.append(runner.run(values))
        except ModelRunError as error:
            results.append(None)
            errors[batch.start + index] = str(error)
    if runner.time is None:  # no member has succeeded in this process yet: nothing to write
        return BatchResult(batch.start, None, None, errors)
    rows = np.full((len(results), len(runner.slots), len(runner.time)), np.nan)
    for index, result in enumerate(results):
        if result is not None:
            rows[index] = result
    return BatchResult(batch.start, rows, runner.time, errors)


def runner_for(job: Job):
    """The job's runner, made once per process: workers load the model themselves."""
    for known, runner in _runners:
        if known == job:
            return runner
    if file_sha256(Path(job.model)) != job.model_sha256:
        raise InputError(
            source=job.model,
            key=None,
            problem="the model file changed (or differs on this worker) during the ensemble",
            fix="run the ensemble again",
        )
    from sdmodel.simulate import engine_module

    engine = engine_module(job.engine)
    if engine.member_runner is not None:
        runner = engine.member_runner(job.model, job.spec, job.params, job.outputs)
    else:
        runner = DatasetRunner(engine, job)
    _runners.insert(0, (job, runner))
    del _runners[4:]
    return runner


class DatasetRunner:
    """Runs members through an engine's whole-Dataset ``run``, for an engine without a member runner (PySD).

    A PySD run takes seconds, so building its Dataset costs nothing by comparison.
    """

    def __init__(self, engine, job: Job):
        self.engine, self.job = engine, job
        info = engine.model_info(job.model)
        self.slots = tuple(f"{name}{index}" for name in job.outputs for index in np.ndindex(*_shape(info.variables[name], info)))
        self.time: np.ndarray | None = None

    def run(self, values: Sequence[float]) -> np.ndarray:
        """One member as ``(len(slots), time)``; the varied values apply after the scenario's own settings."""
        varied = (replace(setting, value=float(value)) for setting, value in zip(self.job.params, values))
        results = self.engine.run(self.job.model, replace(self.job.spec, settings=(*self.job.spec.settings, *varied)))
        time = results["time"].values
        rows = []
        for name in self.job.outputs:
            array = results[name]
            if "time" not in array.dims:
                array = array.expand_dims(time=results["time"])
            rows.append(array.transpose("time", ...).values.reshape(len(time), -1).T)
        self.time = time
        return np.concatenate(rows)


def _shape(variable: Variable, info: ModelInfo) -> tuple[int, ...]:
    return tuple(len(info.subscripts.get(dim, ())) for dim in variable.dims)


# --- executors ---------------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1  # Linux's prctl option: a signal the kernel sends this process when its parent ends


def die_with_parent(parent: int) -> None:
    """A worker process's initializer: end with ``parent`` (the process that started the pool), however it ends.

    Killed outright (SIGKILL), a parent runs no cleanup, and its pool's workers waited for
    work for ever (some in futex after more than a minute). On Linux the kernel kills the
    worker when its parent ends (``prctl(PR_SET_PDEATHSIG, SIGKILL)``); elsewhere a thread
    checks once a second. A parent gone before the worker got here is checked at once.
    """
    prctl = _prctl()
    armed = prctl is not None and prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    if os.getppid() != parent:
        os._exit(1)
    if not armed:
        import threading
        import time

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="sdmodel-parent-watch", daemon=True).start()


def child_dies_with_us() -> Callable[[], None] | None:
    """A ``preexec_fn`` for :mod:`subprocess`: the tool it starts (npm, node, a C compiler) is killed when this
    process ends, however it ends, as :func:`die_with_parent` does for workers; None where the kernel cannot
    (not Linux). prctl is looked up here, before the fork: the child only calls it, before it runs the tool."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # this process ended before the child could ask
            os._exit(1)

    return arm


def _prctl() -> Callable[[int, int], int] | None:
    """Linux's ``prctl`` from its C library; None elsewhere, or with no C library to ask (a static or unusual build)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Local worker processes that die with this one: forked where the platform allows, so they inherit what
    is imported and loaded here (an engine, a model compiled or translated once)."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),))


#: An executor runs :func:`run_batch` over batches and yields the results as they complete, in any order.
Executor = Callable[[Iterable[Batch]], Iterator[BatchResult]]


def serial_executor() -> Executor:
    """Every batch in this process: no start-up cost, and the reference for the others' results."""

    def execute(batches: Iterable[Batch]) -> Iterator[BatchResult]:
        for batch in batches:
            yield run_batch(batch)

    return execute


def process_executor(workers: int) -> Executor:
    """Batches in local worker processes, a few in flight per worker so memory stays bounded.

    Workers are forked where the platform allows: they inherit the imported
    engine and the model already loaded and compiled here, instead of spending
    a second importing and compiling them again.
    """

    def execute(batches: Iterable[Batch]) -> Iterator[BatchResult]:
        with worker_pool(workers) as pool:
            yield from _bounded(lambda batch: pool.submit(run_batch, batch), batches, 2 * workers, _first_done)

    return execute


def dask_executor(scheduler: str | None = None, local_workers: int | None = None) -> Executor:
    """Batches on a Dask cluster: an existing one at ``scheduler``, or a LocalCluster of ``local_workers``.

    Dask workers import sdmodel and load the model file themselves (a loaded
    model cannot be pickled), so a remote cluster needs sdmodel installed and the
    model file at the same path. A ``scheduler`` address is checked here, so a
    wrong one fails before any member runs.
    """
    if scheduler:
        check_scheduler(scheduler)

    def execute(batches: Iterable[Batch]) -> Iterator[BatchResult]:
        with _dask_client(scheduler, local_workers) as client:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            yield from _bounded(lambda batch: client.submit(run_batch, batch, pure=False), batches, 2 * workers, _first_done_dask)

    return execute


def _bounded(submit: Callable, batches: Iterable[Batch], window: int, first_done: Callable) -> Iterator[BatchResult]:
    """Submit batches keeping at most ``window`` in flight; yield each result as it completes."""
    queue = iter(batches)
    pending = {submit(batch) for batch in islice(queue, window)}
    while pending:
        done, pending = first_done(pending)
        for future in done:
            result = future.result()  # a worker's exception (bad input, a crash) stops the ensemble here
            pending |= {submit(batch) for batch in islice(queue, 1)}
            yield result


def _first_done(pending: set) -> tuple[set, set]:
    done, not_done = wait(pending, return_when=FIRST_COMPLETED)
    return done, not_done


def _first_done_dask(pending: set) -> tuple[set, set]:
    from distributed import wait as dask_wait

    result = dask_wait(list(pending), return_when="FIRST_COMPLETED")
    return set(result.done), set(result.not_done)


@contextmanager
def _dask_client(scheduler: str | None, local_workers: int | None):
    """A client of an existing cluster, or of a LocalCluster that lives as long as the client."""
    import logging

    _require_distributed()
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if local_workers:
            cluster = LocalCluster(
                n_workers=local_workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
            )
        client = Client(cluster or scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as error:
        if cluster is not None:
            cluster.close()
        where = scheduler or "LocalCluster"
        problem = f"cannot reach the Dask scheduler ({first_line(error, named=False)})"
        raise InputError(
            source="--scheduler", key=where, problem=problem, fix="check the address, e.g. tcp://host:8786"
        ) from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _require_distributed() -> None:
    """Dask is a dependency, but an environment can lack it: then --scheduler and --dask-local say how to install it."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError(
            source="--scheduler", key=None, problem="Dask is not installed", fix='install it: pip install "dask[distributed]"'
        ) from None


_NOT_A_SCHEDULER = "is not a Dask scheduler"
_START_A_SCHEDULER = "start one with `dask scheduler` and give its tcp:// address"


def check_scheduler(address: str) -> None:
    """Raise an InputError unless a Dask scheduler answers at ``address`` within :data:`SCHEDULER_TIMEOUT`.

    A Dask ``Client`` bounds only the TCP connection: it then waits without limit
    for the peer's handshake (a plain HTTP server on the port hung the command),
    and reads the first 8 bytes of any answer as a frame length (an HTTP reply
    asked numpy for 3.07 EiB). So before a Client is made, the peer is asked who
    it is, the way a Client asks a scheduler, under one deadline.
    """
    _require_distributed()
    import logging

    from distributed.utils import silence_logging_cmgr

    try:
        _parse_address(address)
    except ValueError as error:
        problem = f"is not a Dask address ({first_line(error, named=False)})"
        raise InputError(source="--scheduler", key=address, problem=problem, fix="give it as tcp://HOST:PORT") from None
    try:
        # distributed logs a peer's undecodable answer at CRITICAL, with a traceback, on Dask's stderr handler
        with silence_logging_cmgr(logging.CRITICAL + 1):
            identity = _in_own_event_loop(_peer_identity(address, SCHEDULER_TIMEOUT))
    except Exception as error:  # noqa: BLE001 - every failure here is the peer's or the address's: one line, not a traceback
        problem, fix = _why_not_a_scheduler(error)
        raise InputError(source="--scheduler", key=address, problem=problem, fix=fix) from None
    kind = identity.get("type") if isinstance(identity, dict) else None
    if not isinstance(kind, str):
        raise InputError(
            source="--scheduler",
            key=address,
            problem=f"{_NOT_A_SCHEDULER} (it answered in another protocol)",
            fix=_START_A_SCHEDULER,
        )
    if "Scheduler" not in kind:  # a worker or a nanny answers Dask's identity request too, as "Worker" or "Nanny"
        raise InputError(
            source="--scheduler", key=address, problem=f"{_NOT_A_SCHEDULER} (it is a Dask {kind})", fix=_START_A_SCHEDULER
        )


def _why_not_a_scheduler(error: Exception) -> tuple[str, str]:
    """The problem and the fix for a failed check of a scheduler address, from what the check raised."""
    from distributed.comm import CommClosedError
    from distributed.comm.core import FatalCommClosedError

    if isinstance(error, TimeoutError):  # the deadline (connecting alone times out sooner, as an OSError): the peer stayed silent
        silent = f"it took the connection but gave no Dask answer within {SCHEDULER_TIMEOUT:g} s"
        return f"{_NOT_A_SCHEDULER} ({silent})", _START_A_SCHEDULER
    if isinstance(error, CommClosedError) and not isinstance(error, FatalCommClosedError):
        # connect() turns a failed TCP connection into a plain OSError, so this one came later: the peer hung up on the handshake
        return f"{_NOT_A_SCHEDULER} (it closed the connection at Dask's handshake)", _START_A_SCHEDULER
    if isinstance(error, OSError):  # refused, unresolvable, or TLS refused, until distributed's retries ran out
        return f"cannot connect ({_root_cause(error)})", "check the address and that `dask scheduler` runs there"
    # decoding a stranger's bytes as Dask frames fails in open-ended ways: numpy's MemoryError for a length read from
    # text, msgpack's errors (ValueErrors) for a body that is not msgpack, a TypeError for msgpack that is not Dask's
    return f"{_NOT_A_SCHEDULER} (it answered in another protocol)", _START_A_SCHEDULER


def _parse_address(address: str) -> None:
    """Raise distributed's own ValueError for an address it cannot connect to (an unknown scheme, no port).

    Checked before connecting because, once connected, a ValueError means
    something else: the peer's answer did not decode.
    """
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    scheme, location = parse_address(address)
    get_backend(scheme)
    if scheme in ("tcp", "tls"):
        parse_host_port(location)


async def _peer_identity(address: str, timeout: float) -> object:
    """The peer's answer to Dask's ``identity`` request; connecting may take half of ``timeout``, all of it never more."""
    from distributed.comm import connect
    from distributed.core import send_recv
    from distributed.security import Security

    async def ask() -> object:
        # the connection arguments a Client would use, so a tls:// scheduler configured for Dask is checked the same way
        comm = await connect(address, timeout=timeout / 2, **Security().get_connection_args("client"))
        try:
            return await send_recv(comm, op="identity")
        finally:
            comm.abort()

    # half for connecting, so a refused or unresolvable address reports its cause before the deadline ends it
    return await asyncio.wait_for(ask(), timeout)


def _in_own_event_loop(coroutine: Coroutine[object, object, T]) -> T:
    """Run ``coroutine`` to its end in a fresh event loop on another thread: a notebook's caller runs a loop on this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _root_cause(error: BaseException) -> str:
    """The system's reason under distributed's "Timed out trying to connect" ("Connection refused"), where there is one.

    distributed retries until its connect timeout, so its error chains the last
    attempt's: a refusal or a failed name lookup, or a timeout with no reason.
    """
    reason, cause = None, error.__cause__
    while cause is not None:
        reason = getattr(cause, "strerror", None) or reason
        cause = cause.__cause__
    return reason or first_line(error, named=False)


def make_executor(
    jobs: int | None = None, scheduler: str | None = None, dask_local: int | None = None
) -> tuple[Executor, int, str]:
    """The executor the options ask for, as ``(executor, workers, description)``.

    ``jobs=1`` runs in this process; by default one process per core; a scheduler
    address or a LocalCluster size chooses Dask (workers 0: the cluster decides).
    """
    if scheduler and dask_local:
        raise InputError(
            source="--scheduler", key=scheduler, problem="--scheduler and --dask-local are both given", fix="give one of them"
        )
    if scheduler:
        return dask_executor(scheduler=scheduler), 0, f"dask {scheduler}"
    if dask_local:
        return dask_executor(local_workers=dask_local), dask_local, f"dask LocalCluster of {dask_local}"
    workers = jobs or os.cpu_count() or 1
    if workers <= 1:
        return serial_executor(), 1, "serial"
    return process_executor(workers), workers, f"{workers} processes"


def batch_size(members: int, workers: int, engine: str) -> int:
    """Members per task: enough to hide a task's overhead, few enough to keep every worker busy.

    A PySD run takes seconds, so there one member is one task.
    """
    if engine == "pysd":
        return 1
    return max(1, min(MAX_BATCH, math.ceil(members / (max(workers, 2) * TASKS_PER_WORKER))))
