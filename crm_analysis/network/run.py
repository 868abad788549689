"""A network's month: every branch's monthly run, then the network summary.

:func:`run_network` runs each branch of a network config
(:mod:`crm_analysis.network.config`) into ``<out>/<branch id>/YYYY-MM/`` and
``<outreach>/<branch id>/YYYY-MM/`` through an executor
(:mod:`crm_analysis.network.executors`), then builds the network summary
from the branches' ``kpis.json`` into ``<out>/network/YYYY-MM/``:
``network_kpis.json``, ``network.html``, ``network.pdf`` and a
``manifest.json`` saying which worker ran each branch, for how long, and why
any branch failed. The summary folder is published atomically, like a
branch's month.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from crm_analysis.monthly.run import default_outreach_dir
from crm_analysis.network.config import NETWORK_DIR, NetworkConfig, read_network_config
from crm_analysis.network.executors import BranchJob, BranchOutcome, run_branches
from crm_analysis.privacy import DEFAULT_MIN_COUNT

__all__ = ["NetworkRun", "run_network", "network_jobs"]


@dataclass
class NetworkRun:
    """What a network run did.

    Attributes
    ----------
    month : str
    summary_dir : Path
        ``<out>/network/YYYY-MM/``.
    outcomes : list of BranchOutcome
        One per branch, in config order.
    seconds : float
        Wall time of the branches' runs.
    summary_error : str or None
        Why the network summary could not be published (the branches' own
        outputs are published regardless).
    """

    month: str
    summary_dir: Path
    outcomes: list[BranchOutcome] = field(default_factory=list)
    seconds: float = 0.0
    summary_error: str | None = None

    @property
    def failures(self) -> dict[str, str]:
        """Branch id -> one-line reason, for each failed branch."""
        return {o.clinic_id: o.reason or "failed" for o in self.outcomes if not o.ok}

    @property
    def ok(self) -> bool:
        """Whether every branch succeeded and the summary was published."""
        return not self.failures and self.summary_error is None


def network_jobs(month: str, config: NetworkConfig, *, out: Path, outreach_root: Path, lang: str, min_count: int,
                 pdf: bool, notebook_dir: str | Path | None, analysis_hooks: bool,
                 progress: bool) -> list[BranchJob]:
    """One :class:`BranchJob` per branch (absolute paths, so any worker can run it)."""
    return [BranchJob(clinic=clinic, month=month, out=str(out / clinic.id), outreach_dir=str(outreach_root / clinic.id),
                      lang=lang, min_count=min_count, pdf=pdf,
                      notebook_dir=None if notebook_dir is None else str(Path(notebook_dir).resolve()),
                      analysis_hooks=analysis_hooks, progress=progress)
            for clinic in config.clinics]


def run_network(month: str, config: NetworkConfig | str | Path, *, out: str | Path = "reports",
                outreach_dir: str | Path | None = None, lang: str = "ko", min_count: int = DEFAULT_MIN_COUNT,
                pdf: bool = True, progress: bool = True, notebook_dir: str | Path | None = None,
                analysis_hooks: bool = True, executor: str = "local", scheduler: str | None = None,
                workers: int = 2, retries: int = 2) -> NetworkRun:
    """Run every branch of a network, then publish the network summary.

    A branch that fails does not stop the others; its earlier outputs stay
    as they were, and the summary lists it as missing, with the reason.

    Parameters
    ----------
    month : str
        ``YYYY-MM``.
    config : NetworkConfig or str or Path
        The network config, or its path.
    out, outreach_dir, lang, min_count, pdf, notebook_dir, analysis_hooks
        As for :func:`crm_analysis.monthly.run.run_month` (a branch's own ``lang`` wins).
    progress : bool
        Status lines on standard error (and, with the local executor, each branch's steps).
    executor, scheduler, workers, retries
        Where the branches run: see :func:`crm_analysis.network.executors.run_branches`.

    Returns
    -------
    NetworkRun
        ``.ok`` is False when any branch failed.
    """
    from crm_analysis.i18n import check_lang
    from crm_analysis.monthly.run import month_end
    from crm_analysis.privacy import check_threshold

    month_end(month)
    check_lang(lang)
    min_count = check_threshold(min_count)
    if not isinstance(config, NetworkConfig):
        config = read_network_config(config)
    started = time.perf_counter()
    out = Path(out).resolve()
    outreach_root = Path(outreach_dir).resolve() if outreach_dir else default_outreach_dir(out)
    jobs = network_jobs(month, config, out=out, outreach_root=outreach_root, lang=lang, min_count=min_count,
                        pdf=pdf, notebook_dir=notebook_dir, analysis_hooks=analysis_hooks,
                        progress=progress and executor == "local")
    outcomes = run_branches(jobs, executor=executor, scheduler=scheduler, workers=workers, retries=retries,
                            progress=progress)
    read = [_read_branch_kpis(o, out, month) for o in outcomes]
    outcomes = [outcome for outcome, _ in read]
    kpis = {outcome.clinic_id: data for outcome, data in read}
    result = NetworkRun(month=month, summary_dir=out / NETWORK_DIR / month, outcomes=outcomes)
    result.seconds = round(time.perf_counter() - started, 2)
    run_info = {"executor": executor, "scheduler": scheduler or ("local cluster" if executor == "dask" else None),
                "workers": workers if executor == "dask" and not scheduler else None,
                # An existing cluster retries lost workers by its own scheduler's allowed-failures setting.
                "retries": retries if executor == "dask" and not scheduler else None,
                "wall_seconds": result.seconds}
    try:
        _publish_summary(month, config, out, outcomes, kpis, result.failures, lang=lang, min_count=min_count,
                         pdf=pdf, run_info=run_info)
    except Exception as err:  # noqa: BLE001 - the branches are published; report the summary's failure in one line
        from crm_analysis.network.executors import failure_reason

        result.summary_error = failure_reason(err)
    return result


def _read_branch_kpis(outcome: BranchOutcome, out: Path, month: str) -> tuple[BranchOutcome, dict | None]:
    """The branch's ``kpis.json`` of this run (None if it failed: an older month would pass stale figures off
    as current); a branch that succeeded on a worker whose files this machine cannot read counts as failed."""
    from crm_analysis.monthly.kpis import KPIS_FILE

    if not outcome.ok:
        return outcome, None
    path = out / outcome.clinic_id / month / KPIS_FILE
    try:
        return outcome, json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return replace(outcome, ok=False, reason=f"finished on {outcome.worker}, but {path} cannot be read here "
                                                 f"({type(err).__name__}); are --out and the workers' folders "
                                                 "the same shared path?"), None


def _publish_summary(month: str, config: NetworkConfig, out: Path, outcomes: list[BranchOutcome],
                     kpis: dict[str, dict | None], failures: dict[str, str], *, lang: str, min_count: int, pdf: bool,
                     run_info: dict) -> None:
    """Build the summary from the branches' ``kpis.json`` and swap it into ``out/network/YYYY-MM/``."""
    from crm_analysis.network.summary import network_html, network_json, network_summary, write_network_pdf
    from crm_analysis.monthly.publish import clean_partials, folder_lock, publish
    from crm_analysis.report.manifest import package_versions

    names = {c.id: c.name for c in config.clinics}
    summary = network_summary(month, kpis, names, failures, network=config.name, min_count=min_count)
    manifest = {"month": month, "network": config.name, "config": config.path, **run_info,
                "branches": [{**o.to_dict(), "name": names[o.clinic_id]} for o in outcomes],
                "versions": package_versions()}
    root = out / NETWORK_DIR
    root.mkdir(parents=True, exist_ok=True)
    with folder_lock(root):
        clean_partials(root, month)
        work = Path(tempfile.mkdtemp(prefix=f".{month}.partial-", dir=root))
        try:
            (work / "network_kpis.json").write_text(network_json(summary), encoding="utf-8")
            (work / "network.html").write_text(network_html(summary, lang), encoding="utf-8")
            if pdf:
                write_network_pdf(summary, work / "network.pdf", lang)
            (work / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True)
                                                + "\n", encoding="utf-8")
            publish(work, root / month)
        finally:
            shutil.rmtree(work, ignore_errors=True)

