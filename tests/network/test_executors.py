"""Executors: a branch's failure is an outcome, and a lost Dask worker is retried a bounded number of times."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cloudpickle
import pytest

from crm_analysis.exceptions import DataValidationError, Problem
from crm_analysis.network.config import ClinicSpec
from crm_analysis.network.executors import (BranchJob, BranchOutcome, _where, failure_reason, run_branch,
                                            run_branches)

# The tasks below run in Dask worker processes, which cannot import this test module by name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _job(cid: str, source: str = "unused") -> BranchJob:
    return BranchJob(clinic=ClinicSpec(id=cid, name=cid, source=source), month="2026-10", out="unused",
                     outreach_dir="unused", lang="ko", min_count=5)


def _dies_until_marked(job: BranchJob) -> BranchOutcome:
    """Kill the worker process the first `attempts` times (counted in marker files), then succeed."""
    folder = Path(job.clinic.source)
    tries = len(list(folder.glob(f"{job.clinic.id}-*")))
    (folder / f"{job.clinic.id}-{tries}").touch()
    if tries < int(job.clinic.name):
        os._exit(1)  # what a worker lost to the OOM killer looks like to the scheduler
    worker, host, pid = _where()
    return BranchOutcome(job.clinic.id, True, None, 0.01, worker, host, pid)


def test_a_failing_branch_is_an_outcome_not_an_exception(tmp_path):
    job = BranchJob(clinic=ClinicSpec(id="nowhere", name="nowhere", source=str(tmp_path / "no such folder")),
                    month="2026-10", out=str(tmp_path / "r"), outreach_dir=str(tmp_path / "o"), lang="ko", min_count=5)
    outcome = run_branch(job)
    assert not outcome.ok and outcome.worker == "local" and outcome.pid == os.getpid()
    assert outcome.reason.startswith("the data does not meet the contract") and "no such folder" in outcome.reason


def test_failure_reasons_are_one_line():
    assert failure_reason(ValueError("month must look like 2026-10\nmore")) == "month must look like 2026-10"
    assert failure_reason(ZeroDivisionError("division by zero")) == "ZeroDivisionError: division by zero"
    err = DataValidationError(problems=[Problem(table="visits", column="visit_date", message="not a date",
                                                rows=(3,), examples=("2026-13-45",), n_rows=1),
                                        Problem(table="patients", column="phone", message="not a phone")])
    reason = failure_reason(err)
    print(reason)
    # Where and what, never the offending values: they can be a patient's phone or name, and the reason
    # goes into the network summary.
    assert "\n" not in reason and "2 problem(s)" in reason and "[visits.visit_date] not a date" in reason
    assert "2026-13-45" not in reason


def test_serial_executor_keeps_going_after_a_failure():
    def task(job):
        if job.clinic.id == "b":
            raise ZeroDivisionError("run_branch never raises, but an executor must survive a task that does")
        return BranchOutcome(job.clinic.id, True, None, 0.0, "local")

    outcomes = run_branches([_job("a"), _job("b"), _job("c")], task=task, progress=False)
    assert [(o.clinic_id, o.ok) for o in outcomes] == [("a", True), ("b", False), ("c", True)]
    assert outcomes[1].reason.startswith("ZeroDivisionError: run_branch never raises")


def test_lost_workers_are_retried_a_bounded_number_of_times(tmp_path, capsys):
    # name = how many times the branch kills its worker before it succeeds; retries=1 allows one loss.
    jobs = [BranchJob(clinic=ClinicSpec(id=cid, name=str(deaths), source=str(tmp_path)), month="2026-10",
                      out="unused", outreach_dir="unused", lang="ko", min_count=5)
            for cid, deaths in (("steady", 0), ("flaky", 1), ("doomed", 5))]
    # One worker: Dask charges a worker's death to every branch on it, including one it moved there after another
    # worker died; with a single worker only the running branch is ever on it, so each count is its own.
    outcomes = {o.clinic_id: o for o in run_branches(jobs, executor="dask", workers=1, retries=1,
                                                     task=_dies_until_marked)}
    attempts = {cid: len(list(tmp_path.glob(f"{cid}-*"))) for cid in outcomes}
    print("attempts per branch:", attempts, "| outcomes:", {k: (o.ok, o.reason) for k, o in outcomes.items()})
    # A finished branch whose result was still held by a worker that then died is run again (Dask recomputes
    # lost results): harmless, since a branch's run is deterministic and published atomically.
    assert outcomes["steady"].ok and attempts["steady"] >= 1
    assert outcomes["flaky"].ok and attempts["flaky"] >= 2 and outcomes["flaky"].worker.startswith("tcp://")
    assert not outcomes["doomed"].ok and "worker died 2 time(s)" in outcomes["doomed"].reason
    assert attempts["doomed"] == 2  # bounded: the first run and one retry
    err = capsys.readouterr().err
    assert "[network] 2/3 done, 0 running, 1 failed, 0 waiting" in err


def test_unknown_executor_is_a_clear_error():
    with pytest.raises(ValueError, match="executor must be one of local, dask"):
        run_branches([_job("a")], executor="ray")


def _slow(job: BranchJob) -> BranchOutcome:
    import time

    time.sleep(2.0)
    worker, host, pid = _where()
    return BranchOutcome(job.clinic.id, True, None, 2.0, worker, host, pid)


def test_a_long_dask_run_keeps_showing_its_status(monkeypatch, capsys):
    import crm_analysis.network.executors as executors

    monkeypatch.setattr(executors, "STATUS_EVERY", 0.5)
    outcomes = run_branches([_job("slow")], executor="dask", workers=1, task=_slow)
    assert outcomes[0].ok
    err = capsys.readouterr().err
    print(err)
    assert "[network] 0/1 done, 1 running, 0 failed, 0 waiting\n" in err  # a status line while nothing finished
    assert err.rstrip().endswith("slow ok in 2.0 s (" + outcomes[0].worker + ")")


def _double(job: BranchJob) -> BranchOutcome:
    worker, host, pid = _where()
    return BranchOutcome(job.clinic.id, True, None, 0.0, worker, host, pid)


def test_an_existing_scheduler_is_used_as_given():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        outcomes = run_branches([_job("a"), _job("b")], executor="dask", scheduler=cluster.scheduler_address,
                                task=_double, progress=False)
        assert [o.clinic_id for o in outcomes] == ["a", "b"] and all(o.ok for o in outcomes)
        assert {o.worker for o in outcomes} == set(cluster.scheduler_info["workers"])


def test_an_unreachable_scheduler_is_one_clear_line(monkeypatch, tmp_path, capsys):
    import crm_analysis.network.executors as executors
    from crm_analysis.cli import main

    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", "1s")
    config = tmp_path / "n.yaml"
    config.write_text(f"clinics:\n  - {{id: a, source: {tmp_path}}}\n")
    code = main(["run", "--month", "2026-10", "--clinics", str(config), "--out", str(tmp_path / "r"),
                 "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.startswith("error: could not reach the Dask scheduler at tcp://127.0.0.1:9 within 1s")
    assert not (tmp_path / "r" / "a").exists()
