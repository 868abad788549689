"""The memory gate: a run's heavy steps admitted in run order, each once it fits beside the steps running."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from crm_analysis.monthly.memory_gate import STEP_FLOOR, MemoryGate, step_sizes

ORDER = ["fit:a", "fit:b", "kpis", "notebook:10", "notebook:20"]


def _admitted_in_thread(gate: MemoryGate, step: str, seen: list[str]) -> threading.Thread:
    thread = threading.Thread(target=lambda: (gate.admit(step), seen.append(step)), daemon=True)
    thread.start()
    return thread


def test_a_gate_where_everything_fits_admits_at_once_in_any_order():
    gate = MemoryGate(ORDER, dict.fromkeys(ORDER, 10), capacity=50)
    assert not gate.limited and gate.most_at_once() == len(ORDER)
    for step in reversed(ORDER):
        gate.admit(step)  # nothing waits: the last step first
    assert set(gate.waited) == set(ORDER) and max(gate.waited.values()) < 0.5


def test_a_step_waits_for_the_memory_the_steps_before_it_hold():
    gate = MemoryGate(ORDER, dict.fromkeys(ORDER, 10), capacity=15)  # one at a time
    assert gate.limited and gate.most_at_once() == 1
    gate.admit("fit:a")
    seen: list[str] = []
    waiting = _admitted_in_thread(gate, "fit:b", seen)
    time.sleep(0.2)
    assert seen == []  # fit:a still holds its memory
    gate.release("fit:a")
    waiting.join(2)
    assert seen == ["fit:b"]


def test_steps_are_admitted_in_run_order_even_when_a_later_one_asks_first():
    gate = MemoryGate(ORDER, dict.fromkeys(ORDER, 10), capacity=25)  # two at a time
    assert gate.most_at_once() == 2
    seen: list[str] = []
    later = _admitted_in_thread(gate, "kpis", seen)
    time.sleep(0.2)
    assert seen == []  # kpis comes after fit:a and fit:b, which have not started
    gate.admit("fit:a")
    gate.admit("fit:b")  # two fit: the third waits for memory
    time.sleep(0.2)
    assert seen == []
    gate.release("fit:b")
    later.join(2)
    assert seen == ["kpis"] and gate.waited["kpis"] >= 0.3


def test_a_step_larger_than_the_memory_runs_alone():
    gate = MemoryGate(["small", "huge", "after"], {"small": 10, "huge": 1000, "after": 10}, capacity=100)
    gate.admit("small")
    seen: list[str] = []
    huge = _admitted_in_thread(gate, "huge", seen)
    time.sleep(0.2)
    assert seen == []
    gate.release("small")
    huge.join(2)
    assert seen == ["huge"]  # it runs (alone), rather than never
    after = _admitted_in_thread(gate, "after", seen)
    time.sleep(0.2)
    assert seen == ["huge"]
    gate.release("huge")
    after.join(2)
    assert seen == ["huge", "after"]


def test_skipped_steps_do_not_hold_up_the_later_ones_and_closing_lets_everyone_go():
    gate = MemoryGate(ORDER, dict.fromkeys(ORDER, 10), capacity=15)
    seen: list[str] = []
    kpis = _admitted_in_thread(gate, "kpis", seen)
    gate.skip("fit:a", "fit:b")  # e.g. a cancelled lane's notebooks
    kpis.join(2)
    assert seen == ["kpis"]
    last = _admitted_in_thread(gate, "notebook:20", seen)
    time.sleep(0.2)
    assert seen == ["kpis"]  # notebook:10 first, and kpis still holds the memory
    gate.close()  # the run is stopping
    last.join(2)
    assert seen == ["kpis", "notebook:20"]


def test_jobs_submitted_through_the_gate_never_exceed_its_memory():
    order = [f"job{i}" for i in range(8)]
    gate = MemoryGate(order, dict.fromkeys(order, 10), capacity=20)  # two at a time, in a pool of four
    running, most = [0], [0]
    lock = threading.Lock()

    def job(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return i * i

    with ThreadPoolExecutor(4) as pool:
        futures = [gate.submit(pool, step, job, i) for i, step in enumerate(order)]
        results = [f.result(timeout=10) for f in futures]
    print(f"most jobs at once: {most[0]} (the gate allows 2, the pool 4)")
    assert results == [i * i for i in range(8)] and most[0] == 2


def test_a_job_after_a_failed_one_fails_with_its_error_and_frees_its_place():
    gate = MemoryGate(["a", "b", "c"], dict.fromkeys("abc", 10), capacity=15)

    def fail():
        raise RuntimeError("the scores could not be saved")

    with ThreadPoolExecutor(2) as pool:
        first = gate.submit(pool, "a", fail)
        second = gate.submit(pool, "b", lambda: "cards", after=[first])
        third = gate.submit(pool, "c", lambda: "next")
        with pytest.raises(RuntimeError, match="scores"):
            second.result(timeout=5)
        assert third.result(timeout=5) == "next"


def test_step_sizes_grow_with_the_clinic_and_the_kpi_page_stays_small():
    small, large = step_sizes(10_000, ORDER + ["notebook:90_monthly_report"]), step_sizes(
        60_000_000, ORDER + ["notebook:90_monthly_report"])
    assert all(large[s] - STEP_FLOOR == 6000 * (small[s] - STEP_FLOOR) > 0 for s in ORDER)  # in proportion
    assert 1.5 * 2 ** 30 < large["notebook:20"] < 4 * 2 ** 30  # an unmeasured notebook: as the largest
    assert large["notebook:90_monthly_report"] == small["notebook:90_monthly_report"] == STEP_FLOOR


def test_a_step_named_twice_or_unknown_is_refused():
    with pytest.raises(ValueError, match="twice"):
        MemoryGate(["a", "a"], {"a": 1}, None)
    with pytest.raises(KeyError, match="not one of"):
        MemoryGate(["a"], {"a": 1}, None).admit("b")


def test_a_gate_is_open_when_the_steps_that_can_run_at_once_fit():
    sizes = dict(zip(ORDER, [40, 30, 10, 10, 10]))
    assert MemoryGate(ORDER, sizes, capacity=75, at_once=2).limited is False  # 40 + 30: any two fit
    assert MemoryGate(ORDER, sizes, capacity=65, at_once=2).limited is True
    assert MemoryGate(ORDER, sizes, capacity=75).limited is True  # all five need 100
