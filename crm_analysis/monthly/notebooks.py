"""The monthly run's notebooks: which ones, in what order, with which parameters, on which kernels.

Every notebook in ``notebooks/`` whose name starts with two digits is run by
papermill with the parameters of :func:`notebook_parameters` (the names of
each notebook's ``parameters`` cell). Notebooks numbered 90 and up open the
report (the KPI page, ``90_monthly_report``).

:class:`KernelLanes` runs them on a few long-lived kernels ("lanes"), each
running its notebooks one after another: a notebook's kernel then starts and
imports the analysis stack once per lane rather than once per notebook, and
between two notebooks the kernel's namespace is reset (:data:`RESET`), so no
variable passes from one notebook to the next and the memory they held goes
back to the system. Which lane runs which notebook is fixed (round robin in
run order), and
:func:`~crm_analysis.report.reproducible.make_reproducible` numbers each
notebook's cells from 1, so the executed notebooks are the same bytes
however the lanes were scheduled.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd

from crm_analysis.monthly.kernels import PRELOADED, KernelZygote, can_fork_kernels, kernel_manager, stop_kernel

__all__ = ["PROJECT_ROOT", "NOTEBOOK_DIR", "FRONT_MATTER_FROM", "NOTEBOOK_JOBS", "notebook_paths", "report_order",
           "notebook_parameters", "KernelLanes", "execute_notebook", "WARM_UP", "RESET", "is_front_matter",
           "reads_kpis", "KPI_READERS_FROM", "gate_step"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
#: Notebooks numbered from this up open the report (the KPI page, ``90_monthly_report``).
FRONT_MATTER_FROM = 90
#: How many kernels run notebooks at once (the machines this targets have two cores).
NOTEBOOK_JOBS = 2
#: What a lane's kernel runs as it starts, while the run loads the data and fits the month's models: the
#: analysis notebooks' imports and pandas' table template. It binds no name (the notebooks start clean).
#: It also makes pyplot pick its (inline) backend, then disconnects pyplot's own post-cell hook: that hook
#: draws every open figure after each cell, just before the inline backend draws it again as a PNG, so each
#: chart would be drawn once for nothing. The inline backend still shows and closes every figure. A kernel
#: forked from a process whose pyplot had already drawn (a test's) inherits that backend: when the first figure
#: has not set up the inline backend's display hook, it is switched to inline.
WARM_UP = ("[__import__(m) for m in ('pandas', 'matplotlib.pyplot', 'IPython.display', 'crm_analysis.monthly.kpis', "
           "'crm_analysis.monthly.month', 'crm_analysis.campaigns.evaluation', 'crm_analysis.noshow', "
           "'crm_analysis.plotting', 'crm_analysis.quality', 'crm_analysis.report.sections', 'crm_analysis.value.clv')]; "
           "__import__('pandas').DataFrame({'a': [1]}).style.to_html(); "
           "__import__('matplotlib.pyplot').pyplot.figure(); __import__('matplotlib.pyplot').pyplot.close('all'); "
           "(__import__('matplotlib_inline.backend_inline').backend_inline.flush_figures "
           "in get_ipython().events.callbacks['post_execute']) or get_ipython().run_line_magic('matplotlib', 'inline'); "
           "__import__('matplotlib.pyplot').pyplot.uninstall_repl_displayhook();")

#: What a lane's kernel runs between two notebooks: it forgets the last one's variables, and hands the memory they
#: held back to the system (:func:`~crm_analysis.memory.free_unused_memory`), which another process of the run may
#: need while this kernel waits for its next notebook's models.
RESET = ("get_ipython().run_line_magic('reset', '-f'); "
         "__import__('crm_analysis.memory').memory.free_unused_memory()")


def notebook_paths(notebook_dir: str | Path | None = None) -> list[Path]:
    """The analysis notebooks in run order (their names start with a two-digit number)."""
    folder = Path(notebook_dir or NOTEBOOK_DIR)
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


#: Notebooks numbered this or more open with figures from ``kpis.json`` (the data-quality check does not).
KPI_READERS_FROM = 10


def is_front_matter(path: Path) -> bool:
    """Whether the notebook opens the report (numbered :data:`FRONT_MATTER_FROM` or more)."""
    return int(path.name[:2]) >= FRONT_MATTER_FROM


def reads_kpis(path: Path) -> bool:
    """Whether the notebook shows the published ``kpis.json`` (page 1 and each analysis' management page:
    numbered :data:`KPI_READERS_FROM` or more), so the run starts it once the KPIs are written."""
    return int(path.name[:2]) >= KPI_READERS_FROM


def report_order(paths: Sequence[Path]) -> list[Path]:
    """Notebooks in report order: numbered 90 and up (the KPI page) first, then the rest in run order."""
    front = [p for p in paths if is_front_matter(p)]
    return front + [p for p in paths if p not in front]


def notebook_parameters(*, source: str, as_of: pd.Timestamp, out_dir: str | Path, lang: str,
                        mapping: str | None, rules: str | None = None, models: str | None = None) -> dict[str, str]:
    """The parameters injected into every notebook (the names of their ``parameters`` cell).

    Parameters
    ----------
    source : str
        The clinic's data (the run passes its private validated snapshot).
    as_of : Timestamp
        The month's last day.
    out_dir : str or Path
        The folder the month is assembled in (``kpis.json`` is read from there).
    lang : {"ko", "en"}
    mapping : str, optional
        Mapping file of `source`.
    rules : str, optional
        The analyst's rule folder (``--rules``); empty for the shipped rules.
    models : str, optional
        The run's folder of fitted models (:class:`~crm_analysis.monthly.month.Month`); empty: a notebook
        fits what it needs itself.
    """
    return {
        "source": str(source),
        "mapping": "" if mapping is None else str(mapping),
        "as_of": f"{pd.Timestamp(as_of):%Y-%m-%d}",
        "out_dir": str(out_dir),
        "lang": lang,
        "rules": "" if rules is None else str(rules),
        "models": "" if models is None else str(models),
    }


def _run_code(km, code: str, timeout: float = 120) -> None:
    """Run `code` on the kernel of `km` and wait for it (a lane's warm-up and its resets)."""
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=timeout)
        reply = client.execute_interactive(code, timeout=timeout, store_history=False, output_hook=lambda msg: None)
    finally:  # an open channel would hold this process's exit for ZeroMQ's linger (a second)
        client.stop_channels()
    if reply["content"].get("status") != "ok":
        raise RuntimeError(f"notebook kernel could not run {code!r}: {reply['content'].get('ename')}")


def execute_notebook(path: Path, target: Path, params: Mapping[str, str], km) -> None:
    """Run one notebook through papermill on the (started) kernel of `km`; the result goes to `target`."""
    import papermill as pm

    # The kernel was started in the notebook's folder; papermill's `cwd` would os.chdir this process,
    # which two lanes would race on. Papermill writes the whole notebook (images and all) before and after
    # every cell unless told not to: that was most of this process's time per notebook. It still writes
    # the notebook once at the end, with its error banner when a cell fails.
    pm.execute_notebook(str(path), str(target), parameters=dict(params), progress_bar=False,
                        kernel_name="python3", km=km, request_save_on_cell_execute=False)


class KernelLanes:
    """Run notebooks on `jobs` long-lived kernels, each lane running its notebooks in turn.

    Parameters
    ----------
    paths : sequence of Path
        The notebooks, in run order; lane ``i`` runs ``paths[i::jobs]``.
    private : Path
        A private folder for the kernels' sockets, connection files and temporary files (their ``$TMPDIR``
        is ``private/tmp``).
    run_one : callable
        ``run_one(path, km) -> None``: execute one notebook on the lane's kernel manager
        (usually :func:`execute_notebook` followed by making the result reproducible).
    ready : mapping of Path to threading.Event, optional
        A notebook waits for its event before it starts (e.g. the KPI page waits for ``kpis.json``).
    jobs : int
        How many kernels.
    warm_up : str, optional
        Code each kernel runs as soon as it has started (e.g. :data:`WARM_UP`, the imports of the
        analysis notebooks); none by default.
    fork : bool
        Fork the kernels from this process where that is safe (see :meth:`start`); False: start them
        as new interpreters, as Jupyter does.
    niceness : int
        The kernels lower their CPU priority to this niceness as they start (0: they do not), so that work
        the notebooks wait for (the run's longest model fit) gets the larger share of the cores.
    gate : MemoryGate, optional
        Each notebook starts only once the gate admits it, as step ``notebook:<name>``
        (:mod:`crm_analysis.monthly.memory_gate`); a notebook a lane will not run is skipped there.

    Notes
    -----
    :meth:`start` starts the kernels and has them import the analysis stack
    right away, so the imports overlap with the run's own work; the notebooks
    themselves start when :meth:`go` is called. Each notebook's result is a
    :class:`~concurrent.futures.Future` in :attr:`futures` (its wall time in
    seconds, or the notebook's exception). After a failure, a lane runs none
    of its remaining notebooks (they fail with :class:`RuntimeError`).
    """

    def __init__(self, paths: Sequence[Path], private: Path, run_one: Callable[[Path, object], None], *,
                 ready: Mapping[Path, threading.Event] | None = None, jobs: int = NOTEBOOK_JOBS,
                 warm_up: str = "", fork: bool = True, niceness: int = 0, gate=None) -> None:
        self.paths = list(paths)
        self.jobs = max(1, min(jobs, len(self.paths)))
        self.private = Path(private)
        self.run_one = run_one
        self.ready = dict(ready or {})
        self.warm_up = warm_up
        self.fork = fork
        self.niceness = niceness
        self.gate = gate
        self.futures: dict[Path, Future] = {p: Future() for p in self.paths}
        self._go = threading.Event()
        self._cancelled = threading.Event()
        self._threads: list[threading.Thread] = []
        self._kms: list = []
        self._start_errors: dict[int, BaseException] = {}

    def lane(self, index: int) -> list[Path]:
        """The notebooks lane `index` runs, in order."""
        return self.paths[index::self.jobs]

    def start(self) -> "KernelLanes":
        """Start the lanes' kernels, which import the analysis stack (`warm_up`) as they start up.

        Only the kernel processes are launched here, from the calling thread: no thread is started
        until :meth:`go`, so the caller may still fork worker processes safely in between. Where it is
        safe (:func:`~crm_analysis.monthly.kernels.can_fork_kernels`) and `fork` was not turned off, the
        kernels are forked from this process after it has imported the analysis stack
        (:data:`~crm_analysis.monthly.kernels.PRELOADED`), so they start with it imported.
        """
        zygotes = []
        if self.fork and can_fork_kernels():
            for name in PRELOADED:
                importlib.import_module(name)
            zygotes = [KernelZygote() for _ in range(self.jobs)]
        lines = [f"__import__('crm_analysis.monthly.month').monthly.month.lower_priority({self.niceness})"] \
            if self.niceness > 0 else []
        lines += [self.warm_up] if self.warm_up else []
        scratch = self.private / "tmp"
        scratch.mkdir(mode=0o700, exist_ok=True)
        for i in range(self.jobs):
            km = kernel_manager(self.private, i, zygotes[i] if zygotes else None)
            self._kms.append(km)
            try:
                # One BLAS thread per kernel: two kernels and two model workers share two cores. The
                # warm-up runs as IPython's start-up code, so it needs no client (and binds no name).
                km.start_kernel(cwd=str(self.lane(i)[0].parent),
                                env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                                     "MKL_NUM_THREADS": "1", "TMPDIR": str(scratch)},
                                extra_arguments=[f"--IPKernelApp.exec_lines={lines!r}"] if lines else [])
            except Exception as err:  # noqa: BLE001 - reported as each of the lane's notebooks' failure
                self._start_errors[i] = err
        return self

    def go(self) -> None:
        """Let the lanes run their notebooks (starts the kernels first if :meth:`start` was not called)."""
        if not self._kms:
            self.start()
        for i in range(self.jobs):
            thread = threading.Thread(target=self._run_lane, args=(i,), name=f"notebook-lane-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._go.set()

    def cancel(self) -> None:
        """Stop after the notebooks now running; the others are not run."""
        self._cancelled.set()
        self._go.set()
        for event in self.ready.values():
            event.set()

    def join(self) -> None:
        """Wait for the lanes, and stop their kernels."""
        for thread in self._threads:
            thread.join()
        for i, km in enumerate(self._kms):
            if i >= len(self._threads):  # a lane that never ran: its kernel is stopped here
                stop_kernel(km)
        self._kms = self._kms[:len(self._threads)]

    def _run_lane(self, index: int) -> None:
        lane = self.lane(index)
        km = self._kms[index]
        failed: BaseException | None = self._start_errors.get(index)
        try:
            self._go.wait()
            for n, path in enumerate(lane):
                future = self.futures[path]
                if failed is not None or self._cancelled.is_set():
                    self._skip(path)
                    future.set_exception(failed or RuntimeError("cancelled: an earlier step failed"))
                    continue
                if path in self.ready:
                    self.ready[path].wait()
                    if self._cancelled.is_set():
                        self._skip(path)
                        future.set_exception(RuntimeError("cancelled: an earlier step failed"))
                        continue
                step = gate_step(path)
                if self.gate is not None:
                    self.gate.admit(step)
                started = time.perf_counter()
                try:
                    self.run_one(path, km)
                    if n + 1 < len(lane):  # the next notebook starts clean, and the kernel waits for it small
                        _run_code(km, RESET)
                except BaseException as err:  # noqa: BLE001 - the caller reports it
                    failed = err
                    future.set_exception(err)
                    continue
                finally:
                    if self.gate is not None:
                        self.gate.release(step)
                future.set_result(round(time.perf_counter() - started, 2))
        finally:
            stop_kernel(km)

    def _skip(self, path: Path) -> None:
        if self.gate is not None:
            self.gate.skip(gate_step(path))


def gate_step(path: Path) -> str:
    """The notebook's step in the run's :class:`~crm_analysis.monthly.memory_gate.MemoryGate`."""
    return f"notebook:{Path(path).stem}"
