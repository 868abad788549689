"""The monthly run: validate once, execute the notebooks, build the report, publish atomically.

:func:`run_month` runs one clinic's month in these steps (each timed in
``manifest.json`` and shown as one progress line on standard error):

1. **load** — load and validate the whole extract once, and write the
   validated clinic to a cache in a private temporary folder (0700, outside
   the reports folder, deleted after the run) that the notebooks load fast
   (:mod:`crm_analysis.io.cache`);
2. **kpis** — compute ``kpis.json`` (:mod:`crm_analysis.kpis`);
3. **each notebook** in ``notebooks/`` in name order, through papermill, with
   ``as_of`` = the month's last day and ``out_dir`` = the folder the month is
   being assembled in;
4. **report_html**, **report_pdf** — the management report (KPI page first);
5. **outreach** — the registered outreach lists (:mod:`crm_analysis.report.outreach`);
6. **privacy_scan** — every report artefact is searched for the patients'
   names, phone numbers and emails; a hit stops the run;
7. **publish** — the outreach lists to ``outreach/YYYY-MM/`` (0700), then the
   month to ``reports/YYYY-MM/``.

Work goes into hidden temporary folders beside the targets (``.YYYY-MM.partial-*``)
and is moved into place only when everything has succeeded: a failed or killed
run never leaves a partial month and never touches earlier months, and a
re-run replaces a month in one rename. A failed run keeps its work, with
papermill's error banner in the failed notebook, in ``reports/YYYY-MM.failed/``.
One run at a time writes into a reports folder (a lock on the folder); the
next run removes what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

import pandas as pd

from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.privacy import DEFAULT_MIN_COUNT

__all__ = ["ANALYSIS_HOOKS", "register_analysis_hooks", "month_end", "notebook_paths", "report_order", "notebook_parameters", "run_month", "plan_month",
           "RunResult", "RunFailed", "NotebookFailed", "PrivacyLeak", "PROJECT_ROOT", "NOTEBOOK_DIR", "LOCK_FILE"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
#: Notebooks numbered from this up open the report (the KPI page, ``90_monthly_report``).
FRONT_MATTER_FROM = 90

#: Set-up hooks of the analysis modules, ``"module:function"``: each registers KPI sections
#: (:func:`crm_analysis.kpis.register_section`) and/or outreach producers
#: (:func:`crm_analysis.report.outreach.register_producer`). Called with ``replace=True`` before
#: every run; a module that is not installed is skipped.
ANALYSIS_HOOKS = (
    "crm_analysis.churn.monthly:register_monthly",                     # KPI 'churn', list 'recall'
    "crm_analysis.campaigns.outreach:register_outreach_producers",     # lists 'campaign_*'
)


def register_analysis_hooks(lang: str = "ko") -> list[str]:
    """Call every :data:`ANALYSIS_HOOKS` entry; returns what they registered."""
    import importlib
    import inspect

    registered: list[str] = []
    for hook in ANALYSIS_HOOKS:
        module_name, func_name = hook.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and module_name.startswith(err.name):
                continue  # that analysis is not part of this installation
            raise
        func = getattr(module, func_name)
        kwargs = {"replace": True, **({"lang": lang} if "lang" in inspect.signature(func).parameters else {})}
        registered += list(func(**kwargs) or [])
    return registered


class RunFailed(CrmAnalysisError):
    """The monthly run failed; nothing was published. The message is one line."""


class NotebookFailed(RunFailed):
    """A notebook raised an error during the run."""


class PrivacyLeak(RunFailed):
    """A report artefact shows a patient's name, phone number or email; the month was not published."""


def month_end(month: str) -> pd.Timestamp:
    """The last day of `month` (``YYYY-MM``).

    Raises
    ------
    ValueError
        If `month` is not ``YYYY-MM``.
    """
    try:
        period = pd.Period(month, freq="M")
    except (ValueError, TypeError):
        raise ValueError(f"month must look like 2026-10, not {month!r}") from None
    if f"{period}" != month:
        raise ValueError(f"month must look like 2026-10, not {month!r}")
    return period.end_time.normalize()


def notebook_paths(notebook_dir: Path | None = None) -> list[Path]:
    """The analysis notebooks in run order (their names start with a two-digit number)."""
    folder = Path(notebook_dir or NOTEBOOK_DIR)
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def report_order(paths: list[Path]) -> list[Path]:
    """Notebooks in report order: numbered 90 and up (the KPI page) first, then the rest in run order."""
    front = [p for p in paths if int(p.name[:2]) >= FRONT_MATTER_FROM]
    return front + [p for p in paths if p not in front]


def notebook_parameters(*, source: str, as_of: pd.Timestamp, out_dir: Path, lang: str,
                        mapping: str | None) -> dict[str, str]:
    """The parameters injected into every notebook (names match their ``parameters`` cell)."""
    return {
        "source": str(source),
        "mapping": "" if mapping is None else str(mapping),
        "as_of": f"{as_of:%Y-%m-%d}",
        "out_dir": str(out_dir),
        "lang": lang,
    }


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


def _resolve_source(source: str | Path) -> str:
    text = str(source)
    return text if "://" in text else str(Path(text).resolve())


def _shown_source(source: str) -> str:
    from crm_analysis.io.sources import redact_url

    return redact_url(source) if "://" in source else source


# --------------------------------------------------------------------------- folders, locks, clean-up

#: The file a run locks in its reports folder (hidden; left in place, it is empty).
LOCK_FILE = ".crm-analysis.lock"

@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (one run at a time writes into it).

    The lock is taken on a file in the folder, opened for writing: on NFS, ``flock`` is emulated with
    byte-range locks, which need a file open for writing (a folder opened read-only would fail there).
    """
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFailed(f"another crm-analysis run is writing to {folder}; wait for it to finish") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _clean_partials(folder: Path, month: str | None = None) -> None:
    """Remove what killed runs left in `folder` (call with the folder's lock held)."""
    if not folder.is_dir():
        return
    pattern = f".{month}.partial-*" if month else ".*.partial-*"
    for stale in folder.glob(pattern):
        shutil.rmtree(stale, ignore_errors=True)
    for retired in folder.glob(".*.old-*"):
        # A run killed between the two renames of _publish left the previous version here and no
        # month folder: put it back rather than lose it.
        name, _, pid = retired.name[1:].rpartition(".old-")
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue  # another run is publishing right now
        target = folder / name
        if not target.exists():
            os.replace(retired, target)
        else:
            shutil.rmtree(retired, ignore_errors=True)


def _private_root() -> Path:
    """``$TMPDIR/crm-analysis-<uid>``: 0700, owned by this user."""
    root = Path(tempfile.gettempdir()) / f"crm-analysis-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    info = root.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RunFailed(f"{root} is not private to this user (owner and mode 0700 required); remove it and run again")
    return root


def _private_workdir() -> Path:
    """A fresh private folder for this run; folders of runs that were killed are removed first."""
    root = _private_root()
    for stale in root.glob("run-*"):
        match = re.match(r"run-(\d+)-", stale.name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=root))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _publish(work: Path, final: Path, mode: int = 0o755) -> None:
    """Swap the finished folder into place; the old one survives until the swap."""
    os.chmod(work, mode)
    if final.exists():
        retired = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, retired)
        os.replace(work, final)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(work, final)


def _keep_failed(work: Path, out: Path, month: str) -> Path:
    failed = out / f"{month}.failed"
    shutil.rmtree(failed, ignore_errors=True)
    os.replace(work, failed)
    return failed


class _Progress:
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


# --------------------------------------------------------------------------- the run

#: How many notebook kernels run at once (the machines this targets have two cores).
NOTEBOOK_JOBS = 2


def _timed_execute(path: Path, target: Path, params: dict[str, str], private: Path, index: int,
                   replacements: Mapping[str, str]) -> float:
    """:func:`_execute`, then :func:`~crm_analysis.report.reproducible.make_reproducible`; returns the wall time."""
    from crm_analysis.report.reproducible import make_reproducible

    started = time.perf_counter()
    _execute(path, target, params, private, index)
    make_reproducible(target, replacements, id_prefix=f"n{index:02d}")  # distinct table ids in the one-page report
    return round(time.perf_counter() - started, 2)


def _ClientTrackingKernelManager(**kwargs):
    """A ``KernelManager`` that remembers the clients it hands out (nbclient does not stop the clients of a
    kernel manager it was given)."""
    from jupyter_client.manager import KernelManager

    class ClientTrackingKernelManager(KernelManager):
        def client(self, **client_kwargs):
            client = super().client(**client_kwargs)
            self.clients.append(client)
            return client

    km = ClientTrackingKernelManager(**kwargs)
    km.clients = []
    return km


def _execute(path: Path, target: Path, params: dict[str, str], private: Path, index: int) -> None:
    """Run one notebook through papermill on a kernel reached over a private Unix socket (no TCP)."""
    import papermill as pm

    km = _ClientTrackingKernelManager(kernel_name="python3", transport="ipc", ip=str(private / f"kernel{index}"))
    try:
        # The kernel starts in the notebook's folder through nbclient's resources, not papermill's `cwd`:
        # papermill's `cwd` does os.chdir in this process, which two notebook threads would race on (and
        # could leave the whole process in notebooks/ afterwards).
        pm.execute_notebook(str(path), str(target), parameters=params, progress_bar=False,
                            resources={"metadata": {"path": str(path.parent)}}, kernel_name="python3", km=km)
    finally:
        if km.has_kernel:  # a kernel manager we pass in is ours to stop (nbclient stops only its own)
            km.shutdown_kernel(now=True)
        km.cleanup_resources()
        for client in km.clients:  # ... and so are its clients' sockets: left to the garbage collector, a
            client.stop_channels()  # context can be finalized before them and hang the process in zmq_ctx_term


def run_month(month: str, source: str | Path, *, mapping: str | Path | None = None, lang: str = "ko",
              out: str | Path = "reports", outreach_dir: str | Path | None = None,
              notebook_dir: str | Path | None = None, progress: bool = True, min_count: int = DEFAULT_MIN_COUNT,
              clinic_name: str | None = None, pdf: bool = True,
              producers: Mapping[str, Callable] | None = None, analysis_hooks: bool = True) -> RunResult:
    """Run one clinic's month and publish it atomically.

    Every argument is a plain value (strings, paths, numbers), so a run can be
    shipped to a worker process as it is.

    Parameters
    ----------
    month : str
        ``YYYY-MM``; notebooks run with ``as_of`` = the month's last day.
    source : str or Path
        Clinic data, as for :func:`crm_analysis.load_clinic`.
    mapping : str or Path, optional
        Mapping file for the source.
    lang : {"ko", "en"}
        Report language.
    out : str or Path
        Reports folder; the month goes to ``out/YYYY-MM/``.
    outreach_dir : str or Path, optional
        Outreach folder (default ``outreach`` beside the current directory's
        ``reports``); the lists go to ``outreach_dir/YYYY-MM/`` (0700).
    notebook_dir : str or Path, optional
        Where the notebooks are (the project's ``notebooks/`` by default).
    progress : bool
        Print one line per step to standard error.
    min_count : int
        Counts from 1 to ``min_count - 1`` are suppressed in ``kpis.json`` and the KPI page.
    clinic_name : str, optional
        Shown on the report's cover.
    pdf : bool
        Write ``report.pdf`` (WeasyPrint).
    producers : mapping, optional
        Outreach producers (default: the registered ones).
    analysis_hooks : bool
        Call :data:`ANALYSIS_HOOKS` first, so the analysis modules add their
        KPI sections (churn) and outreach lists (recall, campaigns). False:
        only the core KPI sections, and only the `producers` given.

    Returns
    -------
    RunResult

    Raises
    ------
    ValueError
        Bad month, language or threshold.
    DataValidationError
        The source breaks the data contract (nothing is written).
    SourceError
        The month lies outside the data's recorded range, or no visit is recorded by its last day
        (nothing is written; see :meth:`crm_analysis.clinic.ClinicData.check_month`). A month the
        data covers only in part runs, with a warning in ``RunResult.warnings`` and the manifest.
    NotebookFailed, PrivacyLeak, RunFailed
        With a one-line reason; the work is kept in ``out/YYYY-MM.failed/``.
    """
    from crm_analysis import load_clinic
    from crm_analysis.i18n import check_lang
    from crm_analysis.privacy import _check_threshold

    as_of = month_end(month)
    check_lang(lang)
    min_count = _check_threshold(min_count)
    paths = notebook_paths(notebook_dir)
    if not paths:
        raise RunFailed(f"no notebooks found in {notebook_dir or NOTEBOOK_DIR}")
    out = Path(out).resolve()
    outreach_root = Path(outreach_dir).resolve() if outreach_dir else Path("outreach").resolve()
    final, outreach_final = out / month, outreach_root / month
    source_text = _resolve_source(source)
    mapping_text = None if mapping is None or mapping == "" else str(Path(mapping).resolve())
    out.mkdir(parents=True, exist_ok=True)
    result = RunResult(month=month, out_dir=final, outreach_dir=outreach_final)
    steps = _Progress(len(paths) + 7 - (not pdf), progress, result.timings)
    with _folder_lock(out):
        _clean_partials(out, None)
        _clean_partials(outreach_root, month)
        private = _private_workdir()
        work = Path(tempfile.mkdtemp(prefix=f".{month}.partial-", dir=out))
        staging = Path(tempfile.mkdtemp(prefix=f".{month}.partial-", dir=_ensure(outreach_root)))
        try:
            with steps.step("load"):
                clinic = load_clinic(source_text, mapping=mapping_text)
                result.warnings = clinic.check_month(month)  # SourceError (exit 2) when the data cannot show the month
                params = _notebook_source(clinic, private, source_text, mapping_text, as_of, work, lang)
            for warning in result.warnings:
                print(f"warning: {warning}", file=sys.stderr, flush=True)
            if analysis_hooks:
                register_analysis_hooks(lang)
                sections = None
            else:
                from crm_analysis.kpis import CORE_SECTIONS

                sections, producers = list(CORE_SECTIONS), producers or {}
            try:
                # The notebooks show the clinic's source and the published folder, not this run's temporary ones.
                replacements = {params["source"]: _shown_source(source_text), str(work): str(final)}
                scanned = _run_steps(steps, clinic, paths, params, private, work, staging, as_of, month,
                                     lang, min_count, clinic_name, pdf, producers, sections, result, replacements)
            except NotebookFailed:
                raise
            except Exception as err:  # noqa: BLE001 - any failure after loading keeps the work for diagnosis
                failed = _keep_failed(work, out, month)
                if isinstance(err, RunFailed):
                    raise type(err)(f"{err} (work kept in {failed})") from None
                first = str(err).splitlines()[0] if str(err) else ""
                raise RunFailed(f"{type(err).__name__}: {first} (work kept in {failed})") from err
            manifest = _manifest(month, params, source_text, mapping_text, paths, result, work, min_count, scanned)
            result.manifest = final / "manifest.json"
            (work / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True)
                                                + "\n", encoding="utf-8")
            with steps.step("publish"):
                _publish(staging, outreach_final, mode=0o700)
                _publish(work, final)
        finally:
            shutil.rmtree(private, ignore_errors=True)
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(out / f"{month}.failed", ignore_errors=True)
    return result


def _notebook_source(clinic, private: Path, source: str, mapping: str | None, as_of: pd.Timestamp, work: Path,
                     lang: str) -> dict[str, str]:
    """Notebook parameters: the private validated cache, which ``load_clinic`` reads without validating again."""
    from crm_analysis.io.cache import write_snapshot_cache

    cache = write_snapshot_cache(clinic, private / "clinic.cache")
    return notebook_parameters(source=str(cache), as_of=as_of, out_dir=work, lang=lang, mapping=None)


def _run_steps(steps: _Progress, clinic, paths: list[Path], params: dict[str, str], private: Path, work: Path,
               staging: Path, as_of: pd.Timestamp, month: str, lang: str, min_count: int,
               clinic_name: str | None, pdf: bool, producers, sections, result: RunResult,
               replacements: Mapping[str, str]) -> int:
    """Steps 2-6 of :func:`run_month`; returns how many artefacts the privacy scan read."""
    import papermill as pm

    from crm_analysis.kpis import KPIS_FILE, monthly_kpis
    from crm_analysis.privacy import fixed_report_text, personal_values, scan_artefacts
    from crm_analysis.report.html import report_html
    from crm_analysis.report.outreach import produce_outreach, write_outreach_lists
    from crm_analysis.report.sections import skipped_sections

    # The notebooks are independent (each reads the same private cache), so their kernels run in the
    # background, NOTEBOOK_JOBS at a time, while this process computes the KPIs. The front matter (the KPI
    # page) reads the run's kpis.json, so it is queued only once that file is complete.
    index = {path: i for i, path in enumerate(paths, 1)}
    front = [p for p in paths if int(p.name[:2]) >= FRONT_MATTER_FROM]
    with ThreadPoolExecutor(max_workers=NOTEBOOK_JOBS, thread_name_prefix="notebook") as pool:
        running = {path: pool.submit(_timed_execute, path, work / path.name, params, private, index[path],
                                   replacements)
                   for path in paths if path not in front}
        try:
            with steps.step("kpis"):
                snapshot = clinic.snapshot(as_of)  # once, for the KPIs and the outreach lists
                kpis = monthly_kpis(snapshot, as_of, min_count=min_count, sections=sections)
                partial = work / f".{KPIS_FILE}.tmp"
                partial.write_text(kpis.to_json(), encoding="utf-8")
                os.replace(partial, work / KPIS_FILE)
                result.kpis = kpis.to_dict()
                result.skipped += [{"where": KPIS_FILE, "analysis": name, "reason": block.get("reason", "")}
                                   for name, block in kpis.sections.items() if not block.get("available", False)]
            running.update({path: pool.submit(_timed_execute, path, work / path.name, params, private, index[path],
                                   replacements)
                            for path in front})
            running = {path: running[path] for path in paths}  # run order
            for path, future in running.items():  # reported in run order, whatever order they finish in
                try:
                    seconds = future.result()
                except pm.PapermillExecutionError as err:
                    steps.record(path.stem, None)
                    for other in running.values():
                        other.cancel()
                    pool.shutdown(wait=True)
                    failed = _keep_failed(work, result.out_dir.parent, month)
                    raise NotebookFailed(f"{path.name} failed in cell {err.exec_count}: {err.ename}: "
                                         f"{str(err.evalue).splitlines()[0] if err.evalue else ''} "
                                         f"(executed notebooks kept in {failed})") from None
                steps.record(path.stem, seconds)
                result.notebooks.append(result.out_dir / path.name)
                result.skipped += [{"where": s["notebook"], "analysis": s["analysis"], "reason": s["reason"]}
                                   for s in skipped_sections(work / path.name)]
        except BaseException:
            for other in running.values():
                other.cancel()
            raise
    ordered = [work / p.name for p in report_order(paths)]
    with steps.step("report_html"):
        html = report_html(ordered, month=month, as_of=f"{as_of:%Y-%m-%d}", lang=lang, clinic_name=clinic_name)
        (work / "report.html").write_text(html, encoding="utf-8")
        result.report_html = result.out_dir / "report.html"
    if pdf:
        with steps.step("report_pdf"):
            from crm_analysis.report.pdf import font_face_css, write_pdf

            printable = report_html(ordered, month=month, as_of=f"{as_of:%Y-%m-%d}", lang=lang,
                                    clinic_name=clinic_name, extra_css=font_face_css())
            write_pdf(printable, work / "report.pdf")
            result.report_pdf = result.out_dir / "report.pdf"
    with steps.step("outreach"):
        lists = produce_outreach(snapshot, as_of, producers)
        result.skipped += [{"where": "outreach", "analysis": name, "reason": reason}
                           for name, reason in lists.skipped.items()]
        written = write_outreach_lists(lists, staging, as_of=as_of)
        result.outreach_files = [result.outreach_dir / p.name for p in written]
    with steps.step("privacy_scan"):
        artefacts = sorted(p for p in work.iterdir() if p.suffix in (".html", ".ipynb", ".json", ".pdf")
                           and (p.suffix != ".pdf" or _can_read_pdf()))
        fixed = fixed_report_text(paths)
        hits = scan_artefacts(artefacts, personal_values(clinic.patients, fixed_text=fixed))
        if hits:
            where = sorted({h.artefact for h in hits})
            raise PrivacyLeak(f"privacy scan: {', '.join(where)} show(s) personal data ({len(hits)} value(s), "
                              f"e.g. a {hits[0].kind} {hits[0].masked()}); the month was not published")
    return len(artefacts)


def _ensure(folder: Path) -> Path:
    """Create `folder` (owner-only if new: it holds personal data)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _can_read_pdf() -> bool:
    try:
        import pypdf  # noqa: F401
    except ImportError:
        return False
    return True


def _manifest(month: str, params: dict[str, str], source: str, mapping: str | None, paths: list[Path],
              result: RunResult, work: Path, min_count: int, scanned: int) -> dict:
    from crm_analysis.report.manifest import build_manifest

    shown = {"month": month, "as_of": params["as_of"], "lang": params["lang"], "source": _shown_source(source),
             "mapping": mapping or "", "out_dir": str(result.out_dir), "outreach_dir": str(result.outreach_dir),
             "min_count": min_count}
    outputs = [p.name for p in work.iterdir()] + ["manifest.json"]
    return build_manifest(month=month, parameters=shown, source=source, mapping=mapping,
                          notebooks=[p.name for p in paths], timings=dict(result.timings), outputs=outputs,
                          project_root=PROJECT_ROOT,
                          extra={"privacy_scan": {"files_scanned": scanned, "hits": 0},
                                 "outreach_lists": sorted(p.name for p in result.outreach_files),
                                 "warnings": list(result.warnings),
                                 "skipped_sections": result.skipped})


def plan_month(month: str, source: str | Path, *, mapping: str | Path | None = None, lang: str = "ko",
               out: str | Path = "reports", outreach_dir: str | Path | None = None,
               notebook_dir: str | Path | None = None, pdf: bool = True,
               producers: Mapping[str, Callable] | None = None) -> list[str]:
    """What :func:`run_month` would do, as lines of text (for ``--dry-run``). Reads no data."""
    from crm_analysis.report.outreach import PRODUCERS

    as_of = month_end(month)
    paths = notebook_paths(notebook_dir)
    if producers is None:
        register_analysis_hooks(lang)
        producers = PRODUCERS
    outreach_root = Path(outreach_dir) if outreach_dir else Path("outreach")
    lines = [f"would run {month} (as_of {as_of:%Y-%m-%d}) into {Path(out) / month}:",
             f"  load + validate {_shown_source(str(source))}" + (f" with mapping {mapping}" if mapping else ""),
             "  kpis -> kpis.json"]
    lines += [f"  {p.name}" for p in paths] or ["  (no notebooks found)"]
    lines += ["  report_html -> report.html (KPI page first: "
              + ", ".join(p.stem for p in report_order(paths)) + ")"]
    if pdf:
        lines.append("  report_pdf -> report.pdf (A4)")
    lines.append(f"  outreach -> {outreach_root / month}/ (owner-only): "
                 + (", ".join(f"{n}.csv/.xlsx" for n in producers) or "no producers registered"))
    lines += ["  privacy_scan of report.html, report.pdf, notebooks, kpis.json", "  publish"]
    params = notebook_parameters(source=_shown_source(str(source)), as_of=as_of, out_dir=Path(out) / month,
                                 lang=lang, mapping=None if mapping is None else str(mapping))
    lines.append("  parameters: " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
    return lines

