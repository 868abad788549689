"""Where a network's branches run: one after another in this process, or on a Dask cluster.

Each branch is one call of :func:`run_branch`: the monthly run of one clinic
(:func:`crm_analysis.pipeline.run_month`) with plain arguments, which returns
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
from typing import Callable, Iterable, Sequence

from crm_analysis.network.config import ClinicSpec

__all__ = ["EXECUTORS", "BranchJob", "BranchOutcome", "run_branch", "run_branches", "failure_reason"]

#: The executors ``crm-analysis run --executor`` accepts.
EXECUTORS = ("local", "dask")
#: How often (seconds) a Dask run prints its status while no branch finishes.
STATUS_EVERY = 30.0


@dataclass(frozen=True)
class BranchJob:
    """Everything one branch's monthly run needs; plain values, so it pickles to any worker."""

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
        return asdict(self)


def failure_reason(err: BaseException) -> str:
    """One line for a branch's failure, naming the kind of problem."""
    from crm_analysis.exceptions import DataValidationError

    if isinstance(err, DataValidationError):
        first = str(err.problems[0]).strip().splitlines()[0] if err.problems else ""
        return (f"the data does not meet the contract ({len(err.problems)} problem(s); first: {first}); "
                "check it with crm-analysis validate")
    text = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    from crm_analysis.exceptions import CrmAnalysisError

    if isinstance(err, (CrmAnalysisError, ValueError)):
        return text or type(err).__name__
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _where() -> tuple[str, str, int]:
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = "local"
    return worker, socket.gethostname(), os.getpid()


def run_branch(job: BranchJob) -> BranchOutcome:
    """Run one branch's month; a failure is returned as an outcome, never raised.

    Only ``Exception`` is caught: an interrupt still stops the run, and a
    worker killed mid-branch is Dask's to retry.
    """
    from crm_analysis.pipeline import run_month

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
            outcome = task(job)
            outcomes.append(outcome)
            status.finished(outcome, 0)
        return outcomes
    return _run_on_dask(jobs, task, scheduler, int(workers), int(retries), status)


def _run_on_dask(jobs: Sequence[BranchJob], task: Callable, scheduler: str | None, workers: int, retries: int,
                 status: _Status) -> list[BranchOutcome]:
    from crm_analysis.pipeline import RunFailed

    try:
        import dask
        from distributed import Client, KilledWorker, LocalCluster, wait
    except ImportError:
        raise RunFailed("--executor dask needs Dask distributed: pip install 'distributed'") from None

    # worker-saturation 1.0: a worker holds only the branch it runs, so a worker's death counts against that
    # branch alone, not against one queued behind it (Dask blames every task "processing" on a lost worker).
    settings = {"distributed.scheduler.allowed-failures": retries, "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(settings), _quiet_dask():
        cluster = None
        try:
            if scheduler:
                client = Client(scheduler, timeout="20s", set_as_default=False)
            else:
                # One thread per worker: a branch already runs its notebooks two at a time.
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
                client = Client(cluster, set_as_default=False)
        except (OSError, TimeoutError) as err:
            if cluster is not None:
                cluster.close()
            raise RunFailed(f"could not reach the Dask scheduler at {scheduler}: {failure_reason(err)}") from None
        try:
            futures = {client.submit(task, job, key=f"branch-{job.month}-{job.clinic.id}-{i}", pure=False): job
                       for i, job in enumerate(jobs)}
            outcomes: dict[str, BranchOutcome] = {}
            pending = set(futures)
            while pending:
                try:
                    with client.as_current():  # `wait` looks for the current client; this one is not the default
                        finished, pending = wait(pending, timeout=STATUS_EVERY, return_when="FIRST_COMPLETED")
                except TimeoutError:  # nothing finished for a while (Dask's wait raises rather than return)
                    status.show(_running(client, pending))
                    continue
                for future in finished:
                    job = futures[future]
                    try:
                        outcome = future.result()
                    except KilledWorker:
                        outcome = BranchOutcome(job.clinic.id, False,
                                                f"its worker died {retries + 1} time(s) running it (KilledWorker); "
                                                "not retried further", 0.0, "lost")
                    except Exception as err:  # noqa: BLE001 - e.g. the task could not be sent or unpickled
                        outcome = BranchOutcome(job.clinic.id, False, failure_reason(err), 0.0, "unknown")
                    outcomes[job.clinic.id] = outcome
                    status.finished(outcome, _running(client, pending))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return [outcomes[job.clinic.id] for job in jobs]


def _running(client, pending: Iterable) -> int:
    """Branches a worker is processing right now (the rest of `pending` wait for a free worker)."""
    try:
        processing = {key for keys in client.processing().values() for key in keys}
        slots = sum(client.nthreads().values())
    except Exception:  # noqa: BLE001 - status display only
        return 0
    # A worker may hold a queued branch beside the one it runs; count at most one per thread.
    return min(slots, sum(future.key in processing for future in pending))


class _quiet_dask:
    """Keep Dask's own log lines (worker start/stop, retries) out of the run's output."""

    def __enter__(self):
        self.levels = {}
        for name in ("distributed", "distributed.scheduler", "distributed.worker", "distributed.nanny"):
            logger = logging.getLogger(name)
            self.levels[name] = logger.level
            logger.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc) -> None:
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
