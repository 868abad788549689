"""The monthly run: execute the analysis notebooks for one month through papermill.

Work goes into a temporary folder beside the target and is moved into place
only when every notebook has succeeded, so a failed or killed run never
leaves a partial month and never touches earlier months. A failed run keeps
its executed notebooks (with papermill's error banner) in
``<out>/<month>.failed/`` for diagnosis.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm_analysis._version import __version__
from crm_analysis.exceptions import CrmAnalysisError

__all__ = ["month_end", "notebook_paths", "notebook_parameters", "run_month", "RunResult", "NotebookFailed",
           "PROJECT_ROOT", "NOTEBOOK_DIR"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"


class NotebookFailed(CrmAnalysisError):
    """A notebook raised an error during the run."""


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
    """The analysis notebooks in run order (their names start with a number)."""
    folder = Path(notebook_dir or NOTEBOOK_DIR)
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


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
    """What a monthly run produced."""

    month: str
    out_dir: Path
    notebooks: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _resolve_source(source: str | Path) -> str:
    text = str(source)
    return text if "://" in text else str(Path(text).resolve())


def run_month(month: str, source: str | Path, *, mapping: str | Path | None = None, lang: str = "ko",
              out: str | Path = "reports", notebook_dir: Path | None = None, progress: bool = True) -> RunResult:
    """Execute every analysis notebook for `month` and publish the results atomically.

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
    notebook_dir : Path, optional
        Where the notebooks are (the project's ``notebooks/`` by default).
    progress : bool
        Print one line per notebook to standard error.

    Returns
    -------
    RunResult

    Raises
    ------
    NotebookFailed
        With a one-line reason; the failed notebooks are kept in ``out/YYYY-MM.failed/``.
    """
    import papermill as pm

    if lang not in ("ko", "en"):
        raise ValueError(f"lang must be 'ko' or 'en', not {lang!r}")
    as_of = month_end(month)
    out = Path(out).resolve()
    final = out / month
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{month}.partial-", dir=out))
    paths = notebook_paths(notebook_dir)
    if not paths:
        raise CrmAnalysisError(f"no notebooks found in {notebook_dir or NOTEBOOK_DIR}")
    params = notebook_parameters(source=_resolve_source(source), as_of=as_of, out_dir=final, lang=lang,
                                 mapping=None if mapping is None else str(Path(mapping).resolve()))
    result = RunResult(month=month, out_dir=final)
    try:
        for i, path in enumerate(paths, 1):
            target = work / path.name
            started = time.perf_counter()
            if progress:
                print(f"[{i}/{len(paths)}] {path.stem} ...", end="", file=sys.stderr, flush=True)
            try:
                pm.execute_notebook(str(path), str(target), parameters=params, progress_bar=False,
                                    cwd=str(path.parent), kernel_name="python3")
            except pm.PapermillExecutionError as err:
                if progress:
                    print(" failed", file=sys.stderr)
                failed = out / f"{month}.failed"
                shutil.rmtree(failed, ignore_errors=True)
                os.replace(work, failed)
                raise NotebookFailed(f"{path.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue} "
                                     f"(executed notebooks kept in {failed})") from None
            result.timings[path.stem] = round(time.perf_counter() - started, 2)
            result.notebooks.append(final / path.name)
            if progress:
                print(f" {result.timings[path.stem]:.1f} s", file=sys.stderr)
        from crm_analysis.io.sources import redact_url

        shown = {**params, "source": redact_url(params["source"]) if "://" in params["source"] else params["source"]}
        manifest = {"month": month, "parameters": shown, "crm_analysis_version": __version__,
                    "notebooks": [p.name for p in paths], "timings_seconds": result.timings}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _publish(work, final)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(out / f"{month}.failed", ignore_errors=True)
    return result


def _publish(work: Path, final: Path) -> None:
    """Swap the finished month into place; the old month survives until the swap."""
    os.chmod(work, 0o755)
    if final.exists():
        retired = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, retired)
        os.replace(work, final)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(work, final)
