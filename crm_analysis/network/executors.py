"""Where a network's branches run: one after another in this process, or on a Dask cluster.

Each branch is one call of :func:`run_branch`: the monthly run of one clinic
(:func:`crm_analysis.monthly.run.run_month`) with plain arguments, which returns
a :class:`BranchOutcome` instead of raising, so one branch's bad data or crash
never stops the others. :func:`run_branches` runs them all:

- ``executor="local"`` (the default): one after another, in this process;
- ``executor="dask"``: on Dask distributed, either a local cluster of
  ``workers`` processes started for the run, or an existing cluster at
  ``scheduler`` (``tcp://host:8786``) whose workers have the package installed
  and reach the sources and output folders at the same paths.

A worker that dies (killed, out of memory) takes its branch with it; Dask's
scheduler then runs the branch again on another worker, at most ``retries``
times (``distributed.scheduler.allowed-failures``), before the branch is
reported as failed. Both executors write the same files: each branch's run is
deterministic and does not depend on where it ran.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from crm_analysis.network.config import ClinicSpec

__all__ = ["EXECUTORS", "BranchJob", "BranchOutcome", "run_branch", "run_branches", "failure_reason"]

#: The executors ``crm-analysis run --executor`` accepts.
EXECUTORS = ("local", "dask")
#: How often (seconds) a Dask run prints its status while no branch finishes.
STATUS_EVERY = 30.0
#: How long to wait for an existing scheduler to answer, and for it to have a worker.
CONNECT_TIMEOUT = "30s"


@dataclass(frozen=True)
class BranchJob:
    """Everything one branch's monthly run needs; plain values, so it pickles to any worker.

    Attributes
    ----------
    clinic : ClinicSpec
        The branch (id, name, source, mapping, language).
    month : str
        ``YYYY-MM``.
    out, outreach_dir : str
        The branch's own reports and outreach folders (absolute: ``<out>/<id>``).
    lang : str
        Report language when the branch sets none.
    min_count, pdf, notebook_dir, analysis_hooks, progress
        As for :func:`crm_analysis.monthly.run.run_month`.
    """

    clinic: ClinicSpec
    month: str
    out: str
    outreach_dir: str
    lang: str
    min_count: int
    pdf: bool = True
    notebook_dir: str | None = None
    analysis_hooks: bool = True
    progress: bool = False


@dataclass(frozen=True)
class BranchOutcome:
    """How one branch's run ended.

    Attributes
    ----------
    clinic_id : str
    ok : bool
    reason : str or None
        One line saying why the branch failed (None when it succeeded).
    seconds : float
        Wall time of the branch's run on its worker (0 when it never ran to an end there).
    worker : str
        The Dask worker's address, or ``"local"`` for the serial executor.
    host, pid
        Machine and process that ran the branch (empty / 0 when unknown).
    """

    clinic_id: str
    ok: bool
    reason: str | None
    seconds: float
    worker: str
    host: str = ""
    pid: int = 0

    def to_dict(self) -> dict:
        """The outcome as a plain dict (for ``manifest.json``)."""
        return asdict(self)


def failure_reason(err: BaseException) -> str:
    """One line for a branch's failure, naming the kind of problem.

    Parameters
    ----------
    err : BaseException

    Returns
    -------
    str
        For bad data: how many contract problems, and the first one's table,
        column and rule, without the offending values. For the project's own
        errors and ``ValueError``: their first line. Otherwise the exception's
        type and first line.
    """
    from crm_analysis.exceptions import DataValidationError

    if isinstance(err, DataValidationError):
        # Table, column and rule only: the offending values can be a patient's phone number or name, and
        # this line goes into the network summary and manifest (validate shows the values to the clinic).
        problem = err.problems[0] if err.problems else None
        first = "" if problem is None else \
            f"[{problem.table}{'.' + problem.column if problem.column else ''}] {problem.message.strip().splitlines()[0]}"
        return (f"the data does not meet the contract ({len(err.problems)} problem(s); first: {first}); "
                "check it with crm-analysis validate")
    text = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    from crm_analysis.exceptions import CrmAnalysisError

    if isinstance(err, (CrmAnalysisError, ValueError)):
        return text or type(err).__name__
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _where() -> tuple[str, str, int]:
    """(Dask worker address or ``"local"``, host name, process id) of the calling process."""
    worker = "local"
    distributed = sys.modules.get("distributed")  # a Dask worker has it; the serial executor need not import it
    if distributed is not None:
        try:
            worker = distributed.get_worker().address
        except ValueError:  # not running inside a worker
            pass
    return worker, socket.gethostname(), os.getpid()


def run_branch(job: BranchJob) -> BranchOutcome:
    """Run one branch's month; a failure is returned as an outcome, never raised.

    Parameters
    ----------
    job : BranchJob

    Returns
    -------
    BranchOutcome
        Where it ran, how long it took, and why it failed if it did.

    Notes
    -----
    Only ``Exception`` is caught: an interrupt still stops the run, and a
    worker killed mid-branch is Dask's to retry.
    """
    from crm_analysis.monthly.run import run_month

    worker, host, pid = _where()
    started = time.perf_counter()
    try:
        run_month(job.month, job.clinic.source, mapping=job.clinic.mapping, lang=job.clinic.lang or job.lang,
                  out=job.out, outreach_dir=job.outreach_dir, progress=job.progress, min_count=job.min_count,
                  clinic_name=job.clinic.name, pdf=job.pdf, notebook_dir=job.notebook_dir,
                  analysis_hooks=job.analysis_hooks)
    except Exception as err:  # noqa: BLE001 - isolation: any failure of this branch is reported, the others go on
        return BranchOutcome(job.clinic.id, False, failure_reason(err), round(time.perf_counter() - started, 2),
                             worker, host, pid)
    return BranchOutcome(job.clinic.id, True, None, round(time.perf_counter() - started, 2), worker, host, pid)


class _Status:
    """``[network] 3/8 done, 2 running, 1 failed, 2 waiting`` lines on standard error."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.done = self.failed = 0

    def finished(self, outcome: BranchOutcome, running: int) -> None:
        self.done += outcome.ok
        self.failed += not outcome.ok
        ended = f"ok in {outcome.seconds:.1f} s" if outcome.ok else f"FAILED: {outcome.reason}"
        self.show(running, f"{outcome.clinic_id} {ended} ({outcome.worker})")

    def show(self, running: int, event: str = "") -> None:
        if not self.enabled:
            return
        waiting = self.total - self.done - self.failed - running
        print(f"[network] {self.done}/{self.total} done, {running} running, {self.failed} failed, "
              f"{waiting} waiting" + (f" - {event}" if event else ""), file=sys.stderr, flush=True)


def run_branches(jobs: Sequence[BranchJob], *, executor: str = "local", scheduler: str | None = None,
                 workers: int = 2, retries: int = 2, progress: bool = True,
                 task: Callable[[BranchJob], BranchOutcome] = run_branch) -> list[BranchOutcome]:
    """Run every branch and return their outcomes in the order of `jobs`.

    Parameters
    ----------
    jobs : sequence of BranchJob
    executor : {"local", "dask"}
        ``"local"`` runs the branches one after another in this process.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``); with
        ``executor="dask"`` and no scheduler, a local cluster of `workers`
        processes is started for the run and stopped after it.
    workers : int
        Worker processes of the local cluster (one branch at a time each).
    retries : int
        How many times a branch whose worker died is run again (local cluster
        only; an existing cluster uses its scheduler's own
        ``distributed.scheduler.allowed-failures``).
    progress : bool
        Print a status line to standard error as branches finish.
    task : callable
        What runs one branch (:func:`run_branch`; tests pass their own).

    Returns
    -------
    list of BranchOutcome

    Raises
    ------
    ValueError
        Unknown executor, a scheduler without ``executor="dask"``, or fewer than one worker.
    RunFailed
        Dask is not installed, or the scheduler cannot be reached.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
    if scheduler and executor != "dask":
        raise ValueError("--scheduler needs --executor dask")
    if int(workers) < 1 or int(retries) < 0:
        raise ValueError(f"workers must be at least 1 and retries at least 0 (got {workers} and {retries})")
    status = _Status(len(jobs), progress)
    if executor == "local":
        outcomes = []
        for job in jobs:
            status.show(1, f"{job.clinic.id} started")
            started = time.perf_counter()
            try:
                outcome = task(job)
            except Exception as err:  # noqa: BLE001 - as on Dask: a task that raises fails its branch only
                outcome = BranchOutcome(job.clinic.id, False, failure_reason(err),
                                        round(time.perf_counter() - started, 2), "local", *_where()[1:])
            outcomes.append(outcome)
            status.finished(outcome, 0)
        return outcomes
    return _run_on_dask(jobs, task, scheduler, int(workers), int(retries), status)


def _run_on_dask(jobs: Sequence[BranchJob], task: Callable, scheduler: str | None, workers: int, retries: int,
                 status: _Status) -> list[BranchOutcome]:
    from crm_analysis.exceptions import RunFailed

    try:
        import dask
        from distributed import KilledWorker, wait
    except ImportError:
        raise RunFailed("--executor dask needs Dask distributed: pip install 'distributed'") from None

    with dask.config.set({"distributed.scheduler.allowed-failures": retries}), _quiet_dask():
        client, cluster = _connect(scheduler, workers)
        try:
            outcomes: dict[str, BranchOutcome] = {}
            futures: dict = {}
            todo = list(enumerate(jobs))[::-1]
            pending: set = set()

            def submit_while_free() -> None:
                # At most one branch per worker thread is handed to the scheduler: Dask blames every task
                # assigned to a worker that dies, so a branch queued behind one that runs out of memory
                # would otherwise be charged with deaths it never caused. (Branches Dask moves off a dead
                # worker onto a busy one are still charged if that one dies too.)
                slots = max(1, sum(client.nthreads().values()))
                while todo and len(pending) < slots:
                    i, job = todo.pop()
                    future = client.submit(task, job, key=f"branch-{job.month}-{job.clinic.id}-{i}", pure=False)
                    futures[future] = job
                    pending.add(future)

            submit_while_free()
            while pending:
                try:
                    with client.as_current():  # `wait` looks for the current client; this one is not the default
                        finished, pending = wait(pending, timeout=STATUS_EVERY, return_when="FIRST_COMPLETED")
                except TimeoutError:  # nothing finished for a while (Dask's wait raises rather than return)
                    status.show(len(pending))
                    continue
                for future in finished:
                    job = futures[future]
                    try:
                        outcome = future.result()
                    except KilledWorker as err:
                        deaths = getattr(err, "allowed_failures", retries) + 1
                        outcome = BranchOutcome(job.clinic.id, False,
                                                f"its worker died {deaths} time(s) running it (KilledWorker); "
                                                "not retried further", 0.0, "lost")
                    except Exception as err:  # noqa: BLE001 - the task raised, or could not be sent or unpickled
                        outcome = BranchOutcome(job.clinic.id, False, failure_reason(err), 0.0, "unknown")
                    outcomes[job.clinic.id] = outcome
                    submit_while_free()
                    status.finished(outcome, len(pending))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return [outcomes[job.clinic.id] for job in jobs]


def _connect(scheduler: str | None, workers: int):
    """A client of the cluster at `scheduler`, or of a local cluster started for the run (then also returned)."""
    from distributed import Client, LocalCluster

    from crm_analysis.exceptions import RunFailed

    if not scheduler:
        try:
            # One thread per worker: a branch already runs its notebooks two at a time. No memory limit: a
            # branch that fits when run serially must not be killed by Dask's share-of-RAM default.
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0,
                                   dashboard_address=None, silence_logs=logging.CRITICAL)
        except Exception as err:  # noqa: BLE001 - one line for the user
            raise RunFailed(f"could not start a local Dask cluster of {workers} worker(s): "
                            f"{failure_reason(err)}") from None
        return Client(cluster, set_as_default=False), cluster
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except TypeError as err:  # e.g. tls:// without certificates in the Dask config
        raise RunFailed(f"could not connect to {scheduler}: {failure_reason(err)}; for tls:// set "
                        "distributed.comm.tls.ca-file, .client.cert and .client.key in the Dask config") from None
    except (OSError, TimeoutError) as err:
        raise RunFailed(f"could not reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT}: "
                        f"{failure_reason(err)}") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        client.close()
        raise RunFailed(f"the Dask scheduler at {scheduler} has no workers; start some with "
                        f"`dask worker {scheduler} --nthreads 1`") from None
    return client, None


class _quiet_dask:
    """Keep Dask's own log lines (worker start/stop, retries) out of the run's output."""

    def __enter__(self):
        self.levels = {}
        for name in ("distributed", "distributed.scheduler", "distributed.worker", "distributed.nanny",
                     "distributed.client", "distributed.core"):
            logger = logging.getLogger(name)
            self.levels[name] = logger.level
            logger.setLevel(logging.CRITICAL)  # failures reach the user as the branch's one-line reason
        return self

    def __exit__(self, *exc) -> None:
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
