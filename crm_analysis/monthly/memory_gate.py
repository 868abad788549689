"""Keeping a monthly run's processes within the machine's memory: its heavy steps admitted in turn.

A monthly run works in several processes at once (two model workers, two
notebook kernels, the run itself), which is what makes a month take minutes on
two cores. At a million patients each heavy step needs 1.5–3 GiB of working
memory of its own, so all of them at once need more than a 6 GB machine (or a
container limited to 6 GB) has, and the kernel would kill one.

:class:`MemoryGate` admits the steps one after another in the run's order,
each as soon as its estimated working memory (:func:`step_sizes`) fits beside
the steps already running. A small clinic's steps all fit at once, and the gate
then changes nothing. Admitting in a fixed order cannot deadlock: a step waits
only for steps before it, and a step waits for the results only of steps
before it (the notebooks for the models, the lists for the campaign plan).
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Future
from typing import Callable, Iterable, Iterator, Mapping, Sequence

__all__ = ["MemoryGate", "step_sizes", "IDLE_PROCESS_BYTES", "PAGE_CACHE_SHARE", "STEP_BYTES_PER_ROW"]

_MiB = 2 ** 20

#: A process of the run that has imported the analysis stack but is not working (a waiting kernel or model
#: worker, the run between its steps): 150–500 MiB each at a million patients.
IDLE_PROCESS_BYTES = 400 * _MiB
#: Share of the memory left for the page cache: the processes read the clinic's run copy through it.
PAGE_CACHE_SHARE = 0.10
#: Each heavy step's working memory beyond an idle process, per row of the snapshot (visits, appointments and
#: reminders together), measured at a million patients (59.5 million rows: the step's peak less the process's
#: idle memory; docs/scale.md), rounded up.
STEP_BYTES_PER_ROW = {
    "fit:reminders": 46,  # 2.55 GiB: the reminder evaluation's GLM on its sample
    "fit:features": 44,  # 2.4 GiB: the features, the gaps between visits, churn, recall, the campaign plan
    "fit:migration": 42,  # 2.3 GiB: the segment migration, lifetime value and the back-tests
    "kpis": 33,  # 1.8 GiB: the KPI sections that need no model
    "kpis:late": 10,  # 0.55 GiB: the KPI sections from the saved models
    "outreach:lists": 22,  # 1.2 GiB: the staff lists, written as CSV and XLSX
    "outreach:scores": 50,  # 2.8 GiB: the no-show model of the coming month and its scores
    "outreach:cards": 54,  # 3.0 GiB: the caller-ID cards
    "notebook": 62,  # 3.4 GiB: the largest analysis notebook (20_churn), for a notebook not measured here
    "notebook:00_data_quality": 30,  # 1.6 GiB
    "notebook:10_segmentation": 38,  # 2.1 GiB
    "notebook:20_churn": 62,  # 3.4 GiB
    "notebook:30_reminders": 46,  # 2.5 GiB
    "notebook:40_campaigns": 42,  # 2.3 GiB
}
#: Working memory of any step, whatever the clinic's size.
STEP_FLOOR = 64 * _MiB
#: Notebooks that show tables computed elsewhere (small whatever the clinic's size).
LIGHT_NOTEBOOKS = ("90_monthly_report",)


def step_sizes(rows: int, steps: Iterable[str]) -> dict[str, int]:
    """Estimated working memory (bytes) of each of `steps` on a snapshot of `rows` rows.

    A step is a key of :data:`STEP_BYTES_PER_ROW`, ``fit:<first model of the group>`` or
    ``notebook:<name>`` (a notebook not measured in :data:`STEP_BYTES_PER_ROW`, and not one of the
    :data:`LIGHT_NOTEBOOKS`, as large as the largest).
    """
    sizes = {}
    for step in steps:
        kind, _, name = step.partition(":")
        if kind == "notebook":
            per_row = 0 if name in LIGHT_NOTEBOOKS else STEP_BYTES_PER_ROW.get(step, STEP_BYTES_PER_ROW["notebook"])
        else:
            per_row = STEP_BYTES_PER_ROW.get(step, max(STEP_BYTES_PER_ROW.values()))
        sizes[step] = STEP_FLOOR + per_row * int(rows)
    return sizes


class MemoryGate:
    """Admits steps in a fixed order, each once its working memory fits beside the steps running.

    Parameters
    ----------
    order : sequence of str
        Every step the run will ask for, in run order. A step that depends on another's result must come after
        it.
    sizes : mapping of str to int
        Each step's working memory, bytes (:func:`step_sizes`).
    capacity : int or None
        Bytes the steps may hold together; None: no limit. A step larger than `capacity` runs alone.
    at_once : int, optional
        The most steps that can run at once anyway (the run's processes); default: all of them.

    Notes
    -----
    When the steps fit at once (the `at_once` largest of them together within `capacity`) the gate is *open*
    (:attr:`limited` is False): a step is admitted as soon as it asks, in any order. Otherwise step ``k`` is
    admitted once steps ``0 .. k-1`` have been admitted (or :meth:`skip`-ped) and its size fits beside the steps
    being held. :meth:`close` admits everything (a failing run must not leave threads waiting). :attr:`waited`
    holds the seconds each step waited to be admitted.
    """

    def __init__(self, order: Sequence[str], sizes: Mapping[str, int], capacity: int | None,
                 at_once: int | None = None) -> None:
        if len(set(order)) != len(order):
            raise ValueError(f"a step is named twice in {list(order)}")
        self.order = list(order)
        self.sizes = {step: int(sizes[step]) for step in self.order}
        total = sum(sorted(self.sizes.values(), reverse=True)[:at_once])
        self.capacity = None if capacity is None or total <= capacity else max(int(capacity), 1)
        self.waited: dict[str, float] = {}
        self._next = 0  # the first step in order not admitted or skipped yet
        self._done: set[str] = set()  # admitted or skipped
        self._held: dict[str, int] = {}
        self._closed = False
        self._cond = threading.Condition()

    @property
    def limited(self) -> bool:
        """True when the steps do not all fit at once, so some wait for others."""
        return self.capacity is not None

    def most_at_once(self) -> int:
        """How many steps at most run at once here: in order, how many consecutive steps fit together."""
        if self.capacity is None:
            return len(self.order)
        best = 0
        for start in range(len(self.order)):
            used = count = 0
            for step in self.order[start:]:
                size = min(self.sizes[step], self.capacity)
                if count and used + size > self.capacity:
                    break
                used, count = used + size, count + 1
            best = max(best, count)
        return best

    def _admissible(self, step: str) -> bool:
        if self._closed or self.capacity is None:
            return True
        if self.order[self._next] != step:
            return False
        size = min(self.sizes[step], self.capacity)
        return not self._held or sum(self._held.values()) + size <= self.capacity

    def _advance(self) -> None:
        while self._next < len(self.order) and self.order[self._next] in self._done:
            self._next += 1

    def admit(self, step: str) -> None:
        """Wait until `step` may start, and count it as running (pair with :meth:`release`)."""
        if step not in self.sizes:
            raise KeyError(f"{step!r} is not one of the gate's steps: {self.order}")
        started = time.perf_counter()
        with self._cond:
            self._cond.wait_for(lambda: self._admissible(step))
            self._take(step)
        self.waited[step] = round(time.perf_counter() - started, 2)

    def _take(self, step: str) -> None:
        """Count `step` as running (the caller holds the lock and found it admissible)."""
        self._held[step] = min(self.sizes[step], self.capacity or self.sizes[step])
        self._done.add(step)
        self._advance()
        self._cond.notify_all()

    def release(self, step: str) -> None:
        """`step` has ended: its memory is free for the next."""
        with self._cond:
            self._held.pop(step, None)
            self._cond.notify_all()

    def skip(self, *steps: str) -> None:
        """These steps will not run (cancelled, or not needed): the steps after them need not wait for them."""
        with self._cond:
            self._done.update(step for step in steps if step in self.sizes)
            self._advance()
            self._cond.notify_all()

    def close(self) -> None:
        """Admit every step that waits, and every later one at once (the run is stopping)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @contextlib.contextmanager
    def hold(self, step: str) -> Iterator[None]:
        """:meth:`admit` on entry, :meth:`release` on exit."""
        self.admit(step)
        try:
            yield
        finally:
            self.release(step)

    def submit(self, pool, step: str, fn: Callable, *args, after: Sequence[Future] = (), **kwargs) -> Future:
        """``pool.submit(fn, *args, **kwargs)`` once the jobs `after` have ended and `step` is admitted; released
        when the job ends.

        Returns at once. A step admitted at once is submitted in the calling thread (a pool forks its workers at
        its first submit); otherwise a thread waits for the admission. The future returned holds the job's
        result or exception (a pool that was shut down meanwhile: its error; a job of `after` that failed: its
        error, and `step` is skipped).
        """
        outer: Future = Future()
        outer.set_running_or_notify_cancel()

        def relay(inner: Future) -> None:
            self.release(step)
            if inner.cancelled():
                outer.cancel()
            elif inner.exception() is not None:
                outer.set_exception(inner.exception())
            else:
                outer.set_result(inner.result())

        def start() -> None:  # `step` is admitted
            try:
                inner = pool.submit(fn, *args, **kwargs)
            except BaseException as err:  # noqa: BLE001 - the pool is shut down: the caller sees why
                self.release(step)
                outer.set_exception(err)
                return
            inner.add_done_callback(relay)

        def wait_and_start() -> None:
            for earlier in after:
                error = earlier.exception()
                if error is not None:
                    self.skip(step)
                    outer.set_exception(error)
                    return
            self.admit(step)
            start()

        if not after and self._try_admit(step):
            start()
        else:
            threading.Thread(target=wait_and_start, name=f"gate-{step}", daemon=True).start()
        return outer

    def _try_admit(self, step: str) -> bool:
        with self._cond:
            if not self._admissible(step):
                return False
            self._take(step)
        self.waited[step] = 0.0
        return True

    def describe(self) -> str:
        """One line for the run's progress output."""
        largest = max(self.sizes.values(), default=0)
        if self.capacity is None:
            return f"memory: the heavy steps fit at once (largest {largest / 2 ** 30:.1f} GiB)"
        return (f"memory: {self.capacity / 2 ** 30:.1f} GiB for the heavy steps (largest {largest / 2 ** 30:.1f} "
                f"GiB): at most {self.most_at_once()} at once")

