"""Several clinics in one run: the network config and the network-level summary.

``crm-analysis run --source network.yaml`` runs every clinic listed in the
config into its own ``<out>/<clinic id>/YYYY-MM/`` (and
``<outreach>/<clinic id>/YYYY-MM/``), then writes a network summary built
from their ``kpis.json`` into ``<out>/network/YYYY-MM/``
(``network_kpis.json`` and ``network.html``). The config::

    version: 1
    network: 우리 의원 네트워크          # optional display name
    clinics:
      - id: gangnam                     # letters, digits, _ or -: a folder name
        name: 강남점                     # shown in the report
        source: ../exports/gangnam      # relative to this file, or a database URL
        mapping: ../mappings/emr.yaml   # optional
        lang: ko                        # optional (default: the run's --lang)

Each clinic's run is :func:`crm_analysis.pipeline.run_month` with plain
arguments, so it can be shipped to a worker process as is.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from html import escape
from pathlib import Path

from crm_analysis.exceptions import CrmAnalysisError, DataValidationError
from crm_analysis.i18n import check_lang, label
from crm_analysis.privacy import DEFAULT_MIN_COUNT

__all__ = ["ClinicSpec", "NetworkConfig", "is_network_config", "read_network_config", "network_summary",
           "network_html", "network_json", "run_network", "NETWORK_DIR"]

#: Folder (under the reports folder) that holds the network summary.
NETWORK_DIR = "network"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class ClinicSpec:
    """One clinic of a network config (paths already resolved)."""

    id: str
    name: str
    source: str
    mapping: str | None = None
    lang: str | None = None


@dataclass(frozen=True)
class NetworkConfig:
    """A parsed network config."""

    name: str
    clinics: tuple[ClinicSpec, ...]
    path: str


def is_network_config(source: object) -> bool:
    """Whether `source` names a network config (a ``.yaml``/``.yml`` file; data sources never are)."""
    return isinstance(source, (str, Path)) and "://" not in str(source) and \
        Path(source).suffix.lower() in (".yaml", ".yml")


def read_network_config(path: str | Path) -> NetworkConfig:
    """Read and check a network config.

    Raises
    ------
    ValueError
        With a message naming the problem and how to fix it: missing file,
        no ``clinics`` list, an entry without ``id`` or ``source``, a bad or
        repeated id, an unknown language.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"network config {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"network config {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    clinics = data.get("clinics") if isinstance(data, dict) else None
    if not isinstance(clinics, list) or not clinics:
        raise ValueError(f"network config {path} needs a non-empty 'clinics:' list (each with id, name, source)")
    specs, seen = [], set()
    for i, entry in enumerate(clinics, 1):
        if not isinstance(entry, dict) or not entry.get("id") or not entry.get("source"):
            raise ValueError(f"network config {path}: clinic #{i} needs at least 'id' and 'source'")
        cid = str(entry["id"])
        if not _ID.match(cid) or cid == NETWORK_DIR:
            raise ValueError(f"network config {path}: clinic id {cid!r} must be letters, digits, '_' or '-' "
                             f"(it becomes a folder name) and not {NETWORK_DIR!r}")
        if cid in seen:
            raise ValueError(f"network config {path}: clinic id {cid!r} appears twice; ids must be unique")
        seen.add(cid)
        lang = entry.get("lang")
        if lang is not None:
            check_lang(str(lang))
        specs.append(ClinicSpec(id=cid, name=str(entry.get("name") or cid), source=_resolve(entry["source"], path),
                                mapping=_resolve(entry["mapping"], path) if entry.get("mapping") else None,
                                lang=None if lang is None else str(lang)))
    return NetworkConfig(name=str(data.get("network") or path.stem), clinics=tuple(specs), path=str(path.resolve()))


def _resolve(value: object, config: Path) -> str:
    text = str(value)
    if "://" in text:
        return text
    candidate = Path(text).expanduser()
    return str(candidate if candidate.is_absolute() else (config.parent / candidate).resolve())


_COLUMNS = (("active_12m", ("patients", "active_12m")), ("new_month", ("patients", "new_month")),
            ("returning_month", ("patients", "returning_month")),
            ("retention_rate", ("retention", "rate")), ("no_show_rate", ("no_show", "month", "rate")),
            ("revenue_total", ("revenue_by_department", "total", "total")))


def _get(data: dict, path: tuple[str, ...]):
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def network_summary(month: str, kpis: dict[str, dict | None], names: dict[str, str], network: str = "") -> dict:
    """One row of headline KPIs per clinic, plus network totals.

    Parameters
    ----------
    month : str
    kpis : dict
        Clinic id -> that clinic's ``kpis.json`` content, or None if its run failed.
    names : dict
        Clinic id -> display name.
    network : str
        The network's name.

    Returns
    -------
    dict
        ``{"month", "network", "clinics": [...], "totals": {...}, "failed": [...]}``.
        A total is None when any clinic's value is suppressed or missing
        (a sum with a hidden part would reveal it).
    """
    rows, failed = [], []
    for cid in sorted(kpis):
        data = kpis[cid]
        if data is None:
            failed.append(cid)
            continue
        sections = data.get("sections", {})
        rows.append({"id": cid, "name": names.get(cid, cid),
                     **{key: _get(sections, path) for key, path in _COLUMNS}})
    totals: dict = {}
    for key in ("active_12m", "new_month", "returning_month", "revenue_total"):
        values = [r[key] for r in rows]
        totals[key] = sum(values) if values and all(v is not None for v in values) else None
    base = [_get(kpis[r["id"]]["sections"], ("retention", "base")) for r in rows]
    kept = [_get(kpis[r["id"]]["sections"], ("retention", "retained")) for r in rows]
    totals["retention_rate"] = round(sum(kept) / sum(base), 4) if rows and None not in base + kept and sum(base) else None
    return {"month": month, "network": network, "clinics": rows, "totals": totals, "failed": failed}


def network_html(summary: dict, lang: str = "ko") -> str:
    """The network summary as a small self-contained HTML page."""
    from crm_analysis.report.html import REPORT_CSS

    check_lang(lang)
    headers = [label("report_clinic", lang), label("kpi_active_12m", lang), label("kpi_new_month", lang),
               label("kpi_returning_month", lang), label("kpi_retention_rate", lang), label("kpi_no_show_month", lang),
               label("kpi_revenue_month", lang)]

    def cell(key: str, value) -> str:
        if value is None:
            return "–"
        return f"{value:.1%}" if key.endswith("_rate") else f"{value:,.0f}"

    keys = [k for k, _ in _COLUMNS]
    body = ["<tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>"]
    for row in summary["clinics"]:
        body.append(f"<tr><td>{escape(row['name'])}</td>" + "".join(f"<td>{cell(k, row[k])}</td>" for k in keys) + "</tr>")
    totals = summary["totals"]
    body.append(f"<tr><th>{escape(label('kpi_total', lang))}</th>"
                + "".join(f"<th>{cell(k, totals.get(k))}</th>" for k in keys) + "</tr>")
    failed = "".join(f"<p>{escape(cid)}: failed</p>" for cid in summary["failed"])
    title = f"{label('network_title', lang)} · {summary['network']} · {summary['month']}"
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{REPORT_CSS}</style></head><body><header class=\"cover\"><h1>{escape(title)}</h1>"
            f'<p class="note">{escape(label("report_suppressed_note", lang))}</p></header>'
            f"<table>{''.join(body)}</table>{failed}</body></html>\n")


def network_json(summary: dict) -> str:
    """Deterministic JSON text of the summary."""
    return json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def run_network(month: str, config, *, out: str | Path = "reports", outreach_dir: str | Path | None = None,
                lang: str = "ko", min_count: int = DEFAULT_MIN_COUNT, pdf: bool = True, progress: bool = True,
                notebook_dir: str | Path | None = None, analysis_hooks: bool = True) -> tuple[Path, dict[str, str]]:
    """Run every clinic of a network config, then publish the network summary.

    Each clinic runs with :func:`crm_analysis.pipeline.run_month` into ``out/<id>/YYYY-MM/`` and
    ``outreach_dir/<id>/YYYY-MM/``; a clinic that fails does not stop the
    others. The summary (``network_kpis.json``, ``network.html``) goes to
    ``out/network/YYYY-MM/``, atomically, and lists failed clinics.

    Parameters
    ----------
    month : str
    config : NetworkConfig or str or Path
        A config from :func:`crm_analysis.report.network.read_network_config`, or its path.
    out, outreach_dir, lang, min_count, pdf, progress, notebook_dir, analysis_hooks
        As for :func:`run_month` (a clinic's own ``lang`` wins).

    Returns
    -------
    (Path, dict)
        The summary folder, and clinic id -> one-line reason for each failed clinic.
    """
    from crm_analysis.pipeline import _clean_partials, _folder_lock, _publish, run_month

    if not isinstance(config, NetworkConfig):
        config = read_network_config(config)
    out = Path(out).resolve()
    outreach_root = Path(outreach_dir).resolve() if outreach_dir else Path("outreach").resolve()
    kpis, failures = {}, {}
    for clinic in config.clinics:
        if progress:
            print(f"== {clinic.id} ({clinic.name})", file=sys.stderr, flush=True)
        try:
            result = run_month(month, clinic.source, mapping=clinic.mapping, lang=clinic.lang or lang,
                               out=out / clinic.id, outreach_dir=outreach_root / clinic.id, progress=progress,
                               min_count=min_count, clinic_name=clinic.name, pdf=pdf, notebook_dir=notebook_dir,
                               analysis_hooks=analysis_hooks)
            kpis[clinic.id] = result.kpis
        except (CrmAnalysisError, ValueError) as err:
            kpis[clinic.id] = None
            failures[clinic.id] = str(err).splitlines()[0] if not isinstance(err, DataValidationError) else \
                f"the data does not meet the contract ({len(err.problems)} problem(s)); run validate on it"
    summary = network_summary(month, kpis, {c.id: c.name for c in config.clinics}, network=config.name)
    root = out / NETWORK_DIR
    root.mkdir(parents=True, exist_ok=True)
    with _folder_lock(root):
        _clean_partials(root, month)
        work = Path(tempfile.mkdtemp(prefix=f".{month}.partial-", dir=root))
        try:
            (work / "network_kpis.json").write_text(network_json(summary), encoding="utf-8")
            (work / "network.html").write_text(network_html(summary, lang), encoding="utf-8")
            _publish(work, root / month)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return root / month, failures
