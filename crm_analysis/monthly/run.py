"""The monthly run: load once, fit each model once, run the notebooks, build the report, publish atomically.

:func:`run_month` runs one clinic's month (:class:`RunContext` holds its
settings) in these steps, each timed in ``manifest.json`` and shown as one
progress line on standard error:

1. **load** — load and validate the extract once, cut it at the month's last
   day (``as_of``) and write that snapshot to a cache in a private folder
   (0700, outside the reports folder, deleted after the run) that the
   notebooks read fast (:mod:`crm_analysis.io.cache`). The notebooks are
   told it is :data:`NOTEBOOK_SOURCE`: no executed notebook holds the source;
2. **models** — fit the month's models once (:class:`~crm_analysis.monthly.month.Month`:
   reminder evaluation, churn and its back-test, recall, lifetime value and
   its back-test, the campaign plan) in two forked worker processes, and save
   them in the private folder. Meanwhile the notebook kernels start and
   import the analysis stack, and the KPI sections that need no model run;
3. **kpis** — the rest of ``kpis.json`` (:mod:`crm_analysis.monthly.kpis`), from the saved models;
4. **each notebook** in ``notebooks/``, through papermill on two long-lived
   kernels (:class:`~crm_analysis.monthly.notebooks.KernelLanes`), with
   ``as_of``, ``out_dir``, ``rules`` and ``models`` (the saved models: no
   notebook fits a model again); the KPI page (``90_monthly_report``) once
   ``kpis.json`` is complete;
5. **outreach** — the staff lists from the same models (while the notebooks run);
6. **report_html**, **report_pdf** — the management report (KPI page first);
7. **privacy_scan** — every report artefact is searched for the patients'
   names, phone numbers and emails; a hit stops the run;
8. **publish** — the outreach lists to ``outreach/YYYY-MM/`` (0700; the
   outreach folder sits beside the reports folder unless told otherwise),
   then the month to ``reports/YYYY-MM/`` (:mod:`crm_analysis.monthly.publish`).

Work goes into hidden staging folders beside the targets and is moved into
place only when everything has succeeded: a failed or killed run never
leaves a partial month and never touches earlier months. A failed run keeps
its work, with papermill's error banner in the failed notebook, in
``reports/YYYY-MM.failed/``. One run at a time writes into a reports folder,
and one into an outreach folder. Everything else a run writes (the snapshot,
the models, the kernels' connection files and temporary files, WeasyPrint's
font files) stays in its private folder under ``$TMPDIR``; a killed run's
private folder is removed by the next run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from multiprocessing import current_process
from pathlib import Path
from typing import Callable, Iterator, Mapping

import pandas as pd

from crm_analysis.exceptions import (MAX_SHOWN_LINE, CrmAnalysisError, NotebookFailed, PrivacyLeak, RunFailed,
                                     shorten)
from crm_analysis.clinic import month_end
from crm_analysis.i18n import check_lang
from crm_analysis.io.forked_load import CACHE_NAME, NOTEBOOK_SOURCE, ForkedLoad, write_run_copy
from crm_analysis.monthly import publish as pub
from crm_analysis.monthly.assembly import ReportAssembly
from crm_analysis.monthly.kpis import CORE_SECTIONS, KPIS_FILE, MODEL_SECTIONS, SECTIONS, monthly_kpis
from crm_analysis.monthly.memory_gate import IDLE_PROCESS_BYTES, PAGE_CACHE_SHARE, MemoryGate, step_sizes
from crm_analysis.monthly.month import FIT_GROUPS, MODELS, Month, fit_and_save, fitting_into, inherited, model_workers
from crm_analysis.campaigns.staff_lists import RECONFIRMATION_LIST, STAFF_FILES
from crm_analysis.monthly.outreach import outreach_lists
from crm_analysis.monthly.notebooks import (NOTEBOOK_DIR, NOTEBOOK_JOBS, PROJECT_ROOT, WARM_UP, KernelLanes,
                                            execute_notebook, gate_step, notebook_parameters, notebook_paths,
                                            reads_kpis, report_order)
from crm_analysis.monthly.rules import RuleSet, load_rule_set
from crm_analysis.privacy import DEFAULT_MIN_COUNT, check_threshold

__all__ = ["RunContext", "RunResult", "run_month", "run", "plan_month", "month_end", "MODEL_JOBS",
           "NOTEBOOK_SOURCE", "default_outreach_dir"]

#: Worker processes that fit the month's models (the machines this targets have two cores).
MODEL_JOBS = 2
#: How much lower the CPU priority of the workers fitting every group but the first (the reminder evaluation,
#: the longest, which the KPIs and notebook 30 wait for): on two busy cores it then keeps nearly a core.
NICENESS = 5


def default_outreach_dir(out: str | Path) -> Path:
    """The outreach folder beside the reports folder `out`: ``X/reports`` gives ``X/outreach``, and a
    reports folder with another name, ``X/gangnam``, gives ``X/gangnam-outreach``.

    So two runs with different ``--out`` never share their lists, whatever the folders are called.
    """
    out = Path(out).resolve()
    return out.parent / ("outreach" if out.name == "reports" else f"{out.name}-outreach")


@dataclass(frozen=True)
class RunContext:
    """Everything one monthly run is told: plain values, so a run can be shipped to a worker as it is.

    Build it with :meth:`make` (which checks and resolves the values).

    Attributes
    ----------
    month : str
        ``YYYY-MM``.
    source : str
        Clinic data (a resolved path, or a database URL).
    mapping : str or None
    lang : str
    out : Path
        Reports folder; the month goes to ``out/YYYY-MM/``.
    outreach_dir : Path
        Outreach folder (default: ``outreach`` beside `out`, :func:`default_outreach_dir`); the lists go to
        ``outreach_dir/YYYY-MM/`` (0700).
    notebook_dir : Path
    rules : RuleSet
    min_count : int
    clinic_name : str or None
    pdf : bool
    progress : bool
    analyses : bool
        False: only the core KPI sections, no models, and only the `producers` given.
    producers : mapping, optional
        Extra outreach lists: name -> ``f(clinic, as_of) -> DataFrame``.
    """

    month: str
    source: str
    mapping: str | None
    lang: str
    out: Path
    outreach_dir: Path
    notebook_dir: Path
    rules: RuleSet
    min_count: int = DEFAULT_MIN_COUNT
    clinic_name: str | None = None
    pdf: bool = True
    progress: bool = True
    analyses: bool = True
    producers: Mapping[str, Callable] | None = None

    @classmethod
    def make(cls, month: str, source: str | Path, *, mapping: str | Path | None = None, lang: str = "ko",
             out: str | Path = "reports", outreach_dir: str | Path | None = None,
             notebook_dir: str | Path | None = None, rules: str | Path | RuleSet | None = None,
             min_count: int = DEFAULT_MIN_COUNT, clinic_name: str | None = None, pdf: bool = True,
             progress: bool = True, analyses: bool = True,
             producers: Mapping[str, Callable] | None = None) -> "RunContext":
        """Check and resolve the run's settings.

        Raises
        ------
        ValueError
            Bad month, language or threshold, or an outreach folder that is the reports folder.
        CrmAnalysisError
            A rule folder that does not exist or holds an unknown rule file.
        """
        month_end(month)
        text = str(source)
        out = Path(out).resolve()
        outreach = Path(outreach_dir).resolve() if outreach_dir else default_outreach_dir(out)
        if outreach == out:
            raise ValueError(f"the outreach folder {outreach} is the reports folder: the staff lists (personal data) "
                             "are kept apart from the reports; give another --outreach-dir (or --out)")
        return cls(month=month, source=text if "://" in text else str(Path(text).resolve()),
                   mapping=None if mapping is None or mapping == "" else str(Path(mapping).resolve()),
                   lang=check_lang(lang), out=out, outreach_dir=outreach,
                   notebook_dir=Path(notebook_dir or NOTEBOOK_DIR).resolve(), rules=load_rule_set(rules),
                   min_count=check_threshold(min_count), clinic_name=clinic_name, pdf=pdf, progress=progress,
                   analyses=analyses, producers=producers)

    @property
    def as_of(self) -> pd.Timestamp:
        """The month's last day."""
        return month_end(self.month)

    @property
    def shown_source(self) -> str:
        """The source as the manifest and messages show it (a database URL without any secret:
        :func:`crm_analysis.io.sources.redact_url`)."""
        from crm_analysis.io.sources import redact_url

        return redact_url(self.source)


@dataclass
class RunResult:
    """What a monthly run published."""

    month: str
    out_dir: Path
    notebooks: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    kpis: dict = field(default_factory=dict)
    outreach_dir: Path | None = None
    outreach_files: list[Path] = field(default_factory=list)
    report_html: Path | None = None
    report_pdf: Path | None = None
    manifest: Path | None = None
    #: Sections the data could not support: ``{"where", "analysis", "reason"}`` (also in manifest.json).
    skipped: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: How the heavy steps shared the memory (:mod:`crm_analysis.monthly.memory_gate`; also in manifest.json):
    #: ``limited`` (they did not all fit at once), ``most_at_once``, and the seconds each step waited.
    memory: dict = field(default_factory=dict)


class Progress:
    """One line per step on standard error: ``[3/9] 00_data_quality ... 2.1 s``."""

    def __init__(self, total: int, enabled: bool, timings: dict[str, float]) -> None:
        self.total, self.enabled, self.timings, self.i = total, enabled, timings, 0

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.i += 1
        if self.enabled:
            print(f"[{self.i}/{self.total}] {name} ...", end="", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            yield
        except BaseException:
            if self.enabled:
                print(" failed", file=sys.stderr, flush=True)
            raise
        self.timings[name] = round(time.perf_counter() - started, 2)
        if self.enabled:
            print(f" {self.timings[name]:.1f} s", file=sys.stderr, flush=True)

    def record(self, name: str, seconds: float | None) -> None:
        """Report a step that ran in the background (`seconds` None: it failed)."""
        self.i += 1
        if seconds is not None:
            self.timings[name] = seconds
        if self.enabled:
            shown = "failed" if seconds is None else f"{seconds:.1f} s"
            print(f"[{self.i}/{self.total}] {name} ... {shown}", file=sys.stderr, flush=True)


def run_month(month: str, source: str | Path, *, mapping: str | Path | None = None, lang: str = "ko",
              out: str | Path = "reports", outreach_dir: str | Path | None = None,
              notebook_dir: str | Path | None = None, rules: str | Path | None = None, progress: bool = True,
              min_count: int = DEFAULT_MIN_COUNT, clinic_name: str | None = None, pdf: bool = True,
              producers: Mapping[str, Callable] | None = None, analysis_hooks: bool = True,
              early: ForkedLoad | None = None) -> RunResult:
    """Run one clinic's month and publish it atomically.

    Every argument is a plain value (strings, paths, numbers), so a run can be
    shipped to a worker process as it is.

    Parameters
    ----------
    month : str
        ``YYYY-MM``; everything is computed as of the month's last day.
    source : str or Path
        Clinic data, as for :func:`crm_analysis.load_clinic`.
    mapping : str or Path, optional
        Mapping file for the source.
    lang : {"ko", "en"}
        Report language.
    out : str or Path
        Reports folder; the month goes to ``out/YYYY-MM/``.
    outreach_dir : str or Path, optional
        Outreach folder (default: ``outreach`` beside `out`, so ``X/reports`` gives ``X/outreach``); the lists
        go to ``outreach_dir/YYYY-MM/`` (0700). Locked while the run writes into it, as `out` is.
    notebook_dir : str or Path, optional
        Where the notebooks are (the project's ``notebooks/`` by default).
    rules : str or Path, optional
        The analyst's rule folder (:mod:`crm_analysis.monthly.rules`): applied to the KPIs, the
        notebooks and the lists alike, and recorded in the manifest.
    progress : bool
        Print one line per step to standard error.
    min_count : int
        Counts from 1 to ``min_count - 1`` are suppressed in ``kpis.json`` and the KPI page.
    clinic_name : str, optional
        Shown on the report's cover.
    pdf : bool
        Write ``report.pdf`` (WeasyPrint).
    producers : mapping, optional
        Extra outreach lists: name -> ``f(clinic, as_of) -> DataFrame`` (see
        :mod:`crm_analysis.report.outreach`; default: the registered ones).
    analysis_hooks : bool
        False: only the core KPI sections, no model fitted, and only the `producers` given.
    early : ForkedLoad, optional
        `source` already being loaded in a forked child (see :func:`run`); it must be the same source,
        mapping and month.

    Returns
    -------
    RunResult

    Raises
    ------
    ValueError
        Bad month, language or threshold, or `outreach_dir` is `out`.
    DataValidationError
        The source breaks the data contract (nothing is written).
    SourceError
        The month lies outside the data's recorded range, or no visit is recorded by its last day
        (nothing is written; see :meth:`crm_analysis.clinic.ClinicData.check_month`). A month the
        data covers only in part runs, with a warning in ``RunResult.warnings`` and the manifest.
    NotebookFailed, PrivacyLeak, RunFailed
        With a one-line reason; the work is kept in ``out/YYYY-MM.failed/``. RunFailed also when another run
        is writing to `out` or `outreach_dir` (before anything is done).
    """
    return run(RunContext.make(month, source, mapping=mapping, lang=lang, out=out, outreach_dir=outreach_dir,
                               notebook_dir=notebook_dir, rules=rules, min_count=min_count, clinic_name=clinic_name,
                               pdf=pdf, progress=progress, analyses=analysis_hooks, producers=producers), early)


def run(ctx: RunContext, early: ForkedLoad | None = None) -> RunResult:
    """Run the month described by `ctx` (see :func:`run_month`).

    `early`: the clinic already being loaded by a forked child (:class:`~crm_analysis.io.forked_load.ForkedLoad`,
    started by the command line before it imported the analysis stack) into its private folder, which the
    run then uses as its own.
    """
    try:
        return _run(ctx, early)
    finally:
        if early is not None:
            early.close()


def _run(ctx: RunContext, early: ForkedLoad | None) -> RunResult:
    from crm_analysis.io import load_clinic

    paths = notebook_paths(ctx.notebook_dir)
    if not paths:
        raise RunFailed(f"no notebooks found in {ctx.notebook_dir}")
    final, outreach_final = ctx.out / ctx.month, ctx.outreach_dir / ctx.month
    ctx.out.mkdir(parents=True, exist_ok=True)
    pub.ensure_private(ctx.outreach_dir)
    result = RunResult(month=ctx.month, out_dir=final, outreach_dir=outreach_final)
    steps = Progress(len(paths) + 8 - (not ctx.pdf) - (not ctx.analyses), ctx.progress, result.timings)
    # One run at a time writes into a reports folder and into an outreach folder (two clinics' runs with their
    # own --out but one --outreach-dir would otherwise clear each other's staging folders).
    with pub.folder_lock(ctx.out), pub.folder_lock(ctx.outreach_dir):
        pub.clean_partials(ctx.out, None)
        pub.clean_partials(ctx.outreach_dir, None)
        # also removes what killed runs left in $TMPDIR (their private folders)
        private = early.folder if early is not None else pub.private_workdir()
        work = pub.staging_folder(ctx.out, ctx.month)
        staging = pub.staging_folder(ctx.outreach_dir, ctx.month)
        kpis_ready = threading.Event()
        assembly = ReportAssembly(paths, work, month=ctx.month, as_of=f"{ctx.as_of:%Y-%m-%d}", lang=ctx.lang,
                                  clinic_name=ctx.clinic_name, pdf=ctx.pdf, temp_dir=private)
        lanes = _lanes(ctx, paths, private, work, kpis_ready, assembly)
        try:
            lanes.start()  # the kernels start and import while this process loads the data
            # ...and so do papermill and the report's converters, in a thread while Arrow parses the files (it
            # lets go of the GIL); done before the workers are forked, so they have them too
            importer = threading.Thread(target=_import_report_stack, name="import-report-stack", daemon=True)
            importer.start()
            try:
                with steps.step("load"):
                    if early is not None:  # loaded meanwhile; its errors are raised here, as loading raises them
                        snapshot, result.warnings = early.result()
                    else:
                        clinic = load_clinic(ctx.source, mapping=ctx.mapping)
                        result.warnings = clinic.check_month(ctx.month)  # SourceError (exit 2): not in the data
                        snapshot = clinic.snapshot(ctx.as_of)
                        del clinic
                        _write_cache(snapshot, private)
            finally:
                importer.join()
            for warning in result.warnings:
                print(f"warning: {warning}", file=sys.stderr, flush=True)
            try:
                scanned = _run_steps(ctx, steps, snapshot, paths, lanes, kpis_ready, private, work, staging, result,
                                     assembly)
            except NotebookFailed:
                raise
            except Exception as err:  # noqa: BLE001 - any failure after loading keeps the work for diagnosis
                failed = pub.keep_failed(work, ctx.out, ctx.month) if work.exists() else ctx.out / f"{ctx.month}.failed"
                if isinstance(err, RunFailed):
                    raise type(err)(f"{err} (work kept in {failed})") from None
                first = str(err).splitlines()[0] if str(err) else ""
                raise RunFailed(f"{type(err).__name__}: {first} (work kept in {failed})") from err
            manifest = _manifest(ctx, paths, result, work, scanned)
            result.manifest = final / "manifest.json"
            (work / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True)
                                                + "\n", encoding="utf-8")
            with steps.step("publish"):
                pub.publish(staging, outreach_final, mode=0o700)
                pub.publish(work, final)
        finally:
            lanes.cancel()
            lanes.join()
            shutil.rmtree(private, ignore_errors=True)
            for folder in (work, staging):
                if folder.exists():
                    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(ctx.out / f"{ctx.month}.failed", ignore_errors=True)
    return result


def _import_report_stack() -> None:
    """Import what the lanes and the report use only after the data is loaded (Python modules only: nothing
    that starts threads of its own, since the model workers are forked afterwards). Errors show where these
    are used, not here."""
    import importlib

    for name in ("papermill", "nbconvert", "crm_analysis.report.html", "pypdf"):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - imported again where it is used, which reports the error
            pass


def _warm_pdf(pdf_temp_dir: Path) -> None:
    """Lay out a first page with WeasyPrint (Pango, fontconfig, the bundled fonts), so the report's PDF is laid
    out warm. Only once no process will be forked from this one: Pango starts threads of its own, and a child
    forked meanwhile can wait for ever on a lock one of them held (seen in g_slice_free1)."""
    try:
        from crm_analysis.report.pdf import warm_up

        warm_up(pdf_temp_dir)
    except Exception:  # noqa: BLE001 - the report's PDF reports it
        pass


def _cache_path(private: Path) -> Path:
    return private / CACHE_NAME


def _write_cache(snapshot, private: Path) -> Path:
    """The notebooks' copy of the snapshot; its ``source`` is :data:`NOTEBOOK_SOURCE`, not the run's source."""
    return write_run_copy(snapshot, private)


def _lanes(ctx: RunContext, paths: list[Path], private: Path, work: Path, kpis_ready: threading.Event,
           assembly: ReportAssembly) -> KernelLanes:
    """The notebook kernels of the run; those showing published figures wait for `kpis_ready` (kpis.json); each
    notebook goes
    into the report (`assembly`) as soon as it has run."""
    from crm_analysis.report.reproducible import make_reproducible

    cache, models_dir = _cache_path(private), private / "models"
    params = notebook_parameters(source=cache, as_of=ctx.as_of, out_dir=work, lang=ctx.lang, mapping=None,
                                 rules=None if ctx.rules.folder is None else str(ctx.rules.folder),
                                 models=str(models_dir) if ctx.analyses else None)
    # The notebooks show the published folder, not this run's private ones, and never the source itself (a
    # database URL, even without its secrets): the manifest names it.
    replacements = {str(cache): NOTEBOOK_SOURCE, str(work): str(ctx.out / ctx.month), str(models_dir): ""}
    index = {path: i for i, path in enumerate(paths, 1)}

    def run_one(path: Path, km) -> None:
        execute_notebook(path, work / path.name, params, km)
        make_reproducible(work / path.name, replacements, id_prefix=f"n{index[path]:02d}")
        assembly.add(path)

    return KernelLanes(paths, private, run_one, ready={p: kpis_ready for p in paths if reads_kpis(p)},
                       warm_up=WARM_UP if ctx.analyses else "", niceness=NICENESS if ctx.analyses else 0)


#: The outreach's steps in the model workers, in order: the staff lists and the no-show scores of the coming
#: month (each 1-2 minutes at a million patients, side by side), then the caller-ID cards, which use both.
OUTREACH_STEPS = ("outreach:lists", "outreach:scores", "outreach:cards")
#: The no-show scores, saved in the models folder by one worker for the cards written by another.
SCORES_FILE = "month_scores.pkl"


def _fit_step(group: tuple[str, ...]) -> str:
    """A group of :data:`~crm_analysis.monthly.month.FIT_GROUPS` as a step of the run's memory gate."""
    return f"fit:{group[0]}"


def _memory_gate(ctx: RunContext, snapshot, paths: list[Path], *, pooled: bool) -> MemoryGate:
    """The run's :class:`~crm_analysis.monthly.memory_gate.MemoryGate`: its heavy steps in run order, sized for
    this snapshot, within the memory the machine (or its control group) has left, less what the run's idle
    processes and the page cache need."""
    from crm_analysis.memory import memory_available

    # Run order: a step comes after every step whose result it waits for. The cards wait for the scores to be
    # saved, and come after the notebooks, which then need not wait for the scores.
    readers = [p for p in paths if reads_kpis(p)]
    lists, scores, cards = OUTREACH_STEPS
    order = [_fit_step(group) for group in FIT_GROUPS] if pooled else []
    order += ["kpis", "kpis:late"] + ([lists, scores] if pooled else [])
    order += [gate_step(p) for p in paths if p not in readers] + ([cards] if pooled else [])
    order += [gate_step(p) for p in readers]
    rows = sum(len(snapshot.tables[name]) for name in ("visits", "appointments", "reminders")
               if name in snapshot.tables)
    available = memory_available()  # what this process and the kernels hold already is not available
    kernels = min(NOTEBOOK_JOBS, len(paths))
    workers = MODEL_JOBS if pooled else 0
    # the workers, not forked yet, and the kernels, which keep some memory between notebooks, when idle
    capacity = None if available is None else \
        int(available * (1 - PAGE_CACHE_SHARE)) - (workers + kernels) * IDLE_PROCESS_BYTES
    return MemoryGate(order, step_sizes(rows, order), capacity, at_once=1 + kernels + workers)


def _outreach_in_worker(step: str, models_dir: str, staging: str) -> tuple[float, float, list[str], dict[str, str]]:
    """One of the :data:`OUTREACH_STEPS` in a model worker (:func:`~crm_analysis.monthly.month.model_workers`),
    from the models as they are saved; returns when it started and ended (:func:`time.time`), the files written
    and the lists left out.

    Each step is its own job, so that its memory goes back between them, and the lists and the scores are
    made side by side where memory allows."""
    from crm_analysis.monthly.cards import month_scores, write_month_cards

    started = time.time()
    ctx, fitting = inherited("ctx"), inherited()
    month = Month(fitting.clinic, fitting.as_of, rules=fitting.rules, lang=fitting.lang, saved=models_dir)
    scores_path = Path(models_dir) / SCORES_FILE
    written: list[str] = []
    skipped: dict[str, str] = {}
    if step == "outreach:lists":
        written, skipped = _outreach(ctx, month, Path(staging), cards=False)
    elif step == "outreach:scores":
        scores = month_scores(month.clinic, month.as_of, month.rules.reminders) \
            if "appointments" in month.clinic.tables else None
        partial = scores_path.with_suffix(".tmp")
        pd.to_pickle(scores, partial)
        os.replace(partial, scores_path)  # whole, or not there: the cards' step reads it after this job
    else:
        staging = Path(staging)
        index, notes = write_month_cards(month, staging, source=ctx.source, scores=pd.read_pickle(scores_path))
        written = [index.relative_to(staging).as_posix()]
        skipped = {f"cards: {name}": why for name, why in notes.items()}
    month.forget()  # the worker may wait idle while the notebooks finish
    return started, time.time(), written, skipped


def _run_steps(ctx: RunContext, steps: Progress, snapshot, paths: list[Path], lanes: KernelLanes,
               kpis_ready: threading.Event, private: Path, work: Path, staging: Path, result: RunResult,
               assembly: ReportAssembly) -> int:
    """Steps 2-7 of :func:`run`; returns how many artefacts the privacy scan read."""
    from crm_analysis.report.sections import skipped_sections

    as_of = ctx.as_of
    models_dir = private / "models"
    models_dir.mkdir(mode=0o700)
    month = Month(snapshot, as_of, rules=ctx.rules, lang=ctx.lang)
    names = list(SECTIONS) if ctx.analyses else list(CORE_SECTIONS)
    needs_models = [n for n in names if n in MODEL_SECTIONS]
    pooled = ctx.analyses and not current_process().daemon  # a Dask worker may not start processes
    gate = _memory_gate(ctx, snapshot, paths, pooled=pooled)
    if gate.limited and ctx.progress:
        print(gate.describe(), file=sys.stderr, flush=True)
    lanes.gate = gate
    result.memory = {"limited": gate.limited, "most_at_once": gate.most_at_once(), "waited_seconds": gate.waited}
    outreach_jobs = []
    try:
        with contextlib.ExitStack() as workers:
            if ctx.analyses:
                with steps.step("models"), fitting_into(models_dir):
                    # The notebooks start now, on the loaded snapshot: one that needs a model waits for it to be
                    # saved (see fitting_into), so none is fitted twice and the notebooks that need none (data
                    # quality) run while the models are fitted.
                    early_names = [n for n in names if n not in needs_models]
                    if not pooled:  # fitted here, in turn
                        lanes.go()
                        with gate.hold("kpis"):
                            early = monthly_kpis(month, sections=early_names, min_count=ctx.min_count)
                        for group in FIT_GROUPS:
                            fit_and_save(group, models_dir, month)
                    else:
                        pool = workers.enter_context(model_workers(month, MODEL_JOBS, ctx=ctx))
                        # on the way out (a failure too): nothing more queued
                        workers.callback(pool.shutdown, wait=False, cancel_futures=True)
                        # The first submit forks every worker, before the lanes' threads start (a child holds
                        # only this thread; the gate submits a step it admits at once in this thread). The
                        # children never touch the kernels' sockets; they end with os._exit. The outreach goes
                        # last: its steps wait for the models they need.
                        fits = [gate.submit(pool, _fit_step(group), fit_and_save, group, models_dir,
                                            niceness=NICENESS if i else 0) for i, group in enumerate(FIT_GROUPS)]
                        lists, scores, cards = OUTREACH_STEPS
                        outreach_jobs = [gate.submit(pool, step, _outreach_in_worker, step, str(models_dir),
                                                     str(staging)) for step in (lists, scores)]
                        # the cards use the scores: they wait for them
                        outreach_jobs.append(gate.submit(pool, cards, _outreach_in_worker, cards, str(models_dir),
                                                         str(staging), after=outreach_jobs[1:]))
                        lanes.go()
                        # the early sections load the pieces a worker computes and saves (the features), rather
                        # than compute them a second time beside it
                        month.saved = models_dir
                        with gate.hold("kpis"):
                            early = monthly_kpis(month, sections=early_names, min_count=ctx.min_count)
                            # the workers have their own copy of what the early sections computed (forked
                            # above): this process no longer needs it while it waits for them
                            month.forget()
                        for fit in fits:
                            fit.result()
                month = Month(snapshot, as_of, rules=ctx.rules, lang=ctx.lang, saved=models_dir)
            else:
                lanes.go()
                with gate.hold("kpis"):
                    early = monthly_kpis(month, sections=names, min_count=ctx.min_count)
                needs_models = []
            with steps.step("kpis"), gate.hold("kpis:late"):
                late = monthly_kpis(month, sections=needs_models, min_count=ctx.min_count)
                kpis = replace(early, sections={n: {**early.sections, **late.sections}[n] for n in names})
                partial = work / f".{KPIS_FILE}.tmp"
                partial.write_text(kpis.to_json(), encoding="utf-8")
                os.replace(partial, work / KPIS_FILE)
                result.kpis = kpis.to_dict()
                result.skipped += [{"where": KPIS_FILE, "analysis": name, "reason": block.get("reason", "")}
                                   for name, block in kpis.sections.items() if not block.get("available", False)]
                month.forget()  # the models the late sections loaded: the notebooks load their own
            kpis_ready.set()
            # every process this run forks exists by now (the model workers; kernels are started by exec)
            pdf_warm = threading.Thread(target=_warm_pdf, args=(private,), name="warm-pdf", daemon=True) \
                if ctx.pdf else None
            if pdf_warm is not None:
                pdf_warm.start()
            if not outreach_jobs:
                with steps.step("outreach"):
                    written, skipped = _outreach(ctx, month, staging)
            else:
                done = [job.result() for job in outreach_jobs]
                written = [name for *_, names_written, _ in done for name in names_written]
                skipped = {name: why for *_, notes in done for name, why in notes.items()}
                # from the first step's start to the last one's end (the steps may overlap)
                span = max(end for _, end, *_ in done) - min(start for start, *_ in done)
                steps.record("outreach", round(span, 2))
            result.outreach_files = [result.outreach_dir / name for name in written]
            result.skipped += [{"where": "outreach", "analysis": name, "reason": reason}
                               for name, reason in skipped.items()]
            for path in paths:  # reported in run order, whatever order they finish in
                try:
                    seconds = lanes.futures[path].result()
                except Exception as err:  # noqa: BLE001
                    steps.record(path.stem, None)
                    gate.close()
                    lanes.cancel()
                    lanes.join()
                    failed = pub.keep_failed(work, ctx.out, ctx.month)
                    raise NotebookFailed(_notebook_failure(path, err, failed)) from None
                steps.record(path.stem, seconds)
                result.notebooks.append(result.out_dir / path.name)
                result.skipped += [{"where": s["notebook"], "analysis": s["analysis"], "reason": s["reason"]}
                                   for s in skipped_sections(work / path.name)]
            if pdf_warm is not None:
                pdf_warm.join()
            _write_report(ctx, steps, assembly, result)
    finally:
        gate.close()  # nothing waits for memory once the run stops
        lanes.cancel()
        lanes.join()
    return _privacy_scan(steps, snapshot, paths, work)


def _notebook_failure(path: Path, err: BaseException, failed: Path) -> str:
    import papermill as pm

    if isinstance(err, pm.PapermillExecutionError):
        first = str(err.evalue).splitlines()[0] if err.evalue else ""
        return (f"{path.name} failed in cell {err.exec_count}: {err.ename}: {shorten(first, MAX_SHOWN_LINE)} "
                f"(executed notebooks kept in {failed})")
    first = shorten(str(err).splitlines()[0], MAX_SHOWN_LINE) if str(err) else ""
    return f"{path.name} could not run: {type(err).__name__}: {first} (executed notebooks kept in {failed})"


def _outreach(ctx: RunContext, month: Month, staging: Path, cards: bool = True) -> tuple[list[str], dict[str, str]]:
    """Write the staff lists (and with `cards` the caller-ID cards) into `staging`; returns the files written
    and the lists left out (with why)."""
    from crm_analysis.report.outreach import write_outreach_lists

    lists = outreach_lists(month, analyses=ctx.analyses, producers=ctx.producers)
    written = write_outreach_lists(lists, staging, as_of=month.as_of)
    skipped = dict(lists.skipped)
    del lists
    if ctx.analyses and cards:  # the caller-ID cards, from the same models and lists
        from crm_analysis.monthly.cards import write_month_cards

        index, notes = write_month_cards(month, staging, source=ctx.source)
        written.append(index)
        skipped.update({f"cards: {name}": why for name, why in notes.items()})
    return [p.relative_to(staging).as_posix() for p in written], skipped


def _write_report(ctx: RunContext, steps: Progress, assembly: ReportAssembly, result: RunResult) -> None:
    with steps.step("report_html"):
        assembly.write_html()  # the notebooks were converted as they finished
        result.report_html = result.out_dir / "report.html"
    if ctx.pdf:
        with steps.step("report_pdf"):
            assembly.write_pdf()
            result.report_pdf = result.out_dir / "report.pdf"


def _privacy_scan(steps: Progress, snapshot, paths: list[Path], work: Path) -> int:
    from crm_analysis.privacy import fixed_report_text, personal_values, scan_artefacts

    with steps.step("privacy_scan"):
        artefacts = sorted(p for p in work.iterdir() if p.suffix in (".html", ".ipynb", ".json", ".pdf"))
        hits = scan_artefacts(artefacts, personal_values(snapshot.patients, fixed_text=fixed_report_text(paths)))
        if hits:
            where = sorted({h.artefact for h in hits})
            raise PrivacyLeak(f"privacy scan: {', '.join(where)} show(s) personal data ({len(hits)} value(s), "
                              f"e.g. a {hits[0].kind} {hits[0].masked()}); the month was not published")
    return len(artefacts)


def _manifest(ctx: RunContext, paths: list[Path], result: RunResult, work: Path, scanned: int) -> dict:
    from crm_analysis.report.manifest import build_manifest

    shown = {"month": ctx.month, "as_of": f"{ctx.as_of:%Y-%m-%d}", "lang": ctx.lang, "source": ctx.shown_source,
             "mapping": ctx.mapping or "", "out_dir": str(result.out_dir), "outreach_dir": str(result.outreach_dir),
             "min_count": ctx.min_count, "rules": "" if ctx.rules.folder is None else str(ctx.rules.folder)}
    outputs = [p.name for p in work.iterdir()] + ["manifest.json"]
    return build_manifest(month=ctx.month, parameters=shown, source=ctx.source, mapping=ctx.mapping,
                          notebooks=[p.name for p in paths], timings=dict(result.timings), outputs=outputs,
                          project_root=PROJECT_ROOT,
                          extra={"privacy_scan": {"files_scanned": scanned, "hits": 0},
                                 "outreach_lists": sorted(p.name for p in result.outreach_files),
                                 "warnings": list(result.warnings),
                                 "skipped_sections": result.skipped,
                                 "rules": ctx.rules.describe(),
                                 "memory": result.memory,
                                 "models": list(MODELS) if ctx.analyses else []})


def plan_month(month: str, source: str | Path, *, mapping: str | Path | None = None, lang: str = "ko",
               out: str | Path = "reports", outreach_dir: str | Path | None = None,
               notebook_dir: str | Path | None = None, pdf: bool = True, rules: str | Path | None = None,
               producers: Mapping[str, Callable] | None = None) -> list[str]:
    """What :func:`run_month` would do, as lines of text (for ``--dry-run``). Reads no data."""
    from crm_analysis.io.sources import redact_url

    as_of = month_end(month)
    rule_set = load_rule_set(rules)
    paths = notebook_paths(notebook_dir)
    shown = redact_url(str(source))
    outreach_root = Path(outreach_dir) if outreach_dir else default_outreach_dir(out)
    planned = (as_of + pd.Timedelta(days=1)).strftime("%Y-%m")
    lists = [*(f"{stem}_{planned}" for stem, _, _ in STAFF_FILES.values()), f"{RECONFIRMATION_LIST}_{planned}",
             "system/campaign_holdout", "system/campaign_suppression", *(producers or {})]
    lines = [f"would run {month} (as_of {as_of:%Y-%m-%d}) into {Path(out) / month}:",
             f"  load + validate {shown}" + (f" with mapping {mapping}" if mapping else ""),
             "  models (fitted once): " + ", ".join(MODELS),
             "  kpis -> kpis.json"]
    lines += [f"  {p.name}" for p in paths] or ["  (no notebooks found)"]
    lines.append(f"  outreach -> {outreach_root / month}/ (owner-only): " + ", ".join(f"{n}.csv/.xlsx" for n in lists)
                 + ", 안내.txt")
    lines += ["  report_html -> report.html (KPI page first: " + ", ".join(p.stem for p in report_order(paths)) + ")"]
    if pdf:
        lines.append("  report_pdf -> report.pdf (A4)")
    lines += ["  privacy_scan of report.html, report.pdf, notebooks, kpis.json", "  publish"]
    lines.append("  rules: " + ("the shipped rules" if rule_set.folder is None else
                                f"{rule_set.folder} ({', '.join(rule_set.files) or 'no rule files: shipped rules'})"))
    params = notebook_parameters(source=NOTEBOOK_SOURCE, as_of=as_of, out_dir=Path(out) / month, lang=lang,
                                 mapping=None if mapping is None else str(mapping),
                                 rules=None if rule_set.folder is None else str(rule_set.folder))
    lines.append("  parameters: " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
    return lines
