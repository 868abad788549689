"""The network summary as a page for managers: HTML (self-contained) and PDF (Korean font embedded).

Renders the dict of :func:`crm_analysis.network.summary.network_summary`:
one table per topic (branches as rows, the network total last), each with a
short plain-words note (Korean with the English in italics; English only
with ``lang="en"``), and the list of missing branches with their reasons.
The look is the monthly report's (:data:`crm_analysis.report.html.REPORT_CSS`).

Hidden small counts show as ``<5`` (the threshold), anything else that is
hidden or not available as ``–``. Only what the summary holds is printed, and
the summary holds no hidden value.

The network's reminder effect and campaign lifts are labelled as a
fixed-effect pool (one common effect assumed across branches; standard errors
from symmetric 95% CIs), with I² (the share of the branches' disagreement
beyond chance) beside each pooled figure.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any, Callable

from crm_analysis.i18n import check_lang, label

__all__ = ["network_html", "write_network_pdf"]

DASH = "–"


# --------------------------------------------------------------------------- cell formats

def _count(value: Any, row: dict) -> str:
    if value is None:
        return f"<{row['hidden_below']}" if row.get("available") and not row.get("_total") else DASH
    return f"{value:,}"


def _rate(value: Any, row: dict) -> str:
    return DASH if value is None else f"{value:.1%}"


def _won(value: Any, row: dict) -> str:
    return DASH if value is None else f"{value:,.0f}"


def _effect(est: Any, low: Any, high: Any) -> str:
    """A difference of rates with its CI in percentage points: "-10.0%p (-11.8 ~ -8.2)"."""
    if None in (est, low, high):
        return DASH
    return f"{est * 100:+.1f}%p ({low * 100:+.1f} ~ {high * 100:+.1f})"


def _pooled(block: dict, est_key: str) -> str:
    """A network effect with its CI and, when two or more branches were pooled, I² beside it."""
    shown = _effect(block.get(est_key), block.get("ci_low"), block.get("ci_high"))
    i2 = block.get("i2")
    return shown if shown == DASH or i2 is None else f"{shown} · I² {i2:.0%}"


def _text(value: Any, row: dict) -> str:
    return DASH if value in (None, "") else str(value)


# --------------------------------------------------------------------------- building blocks

def _note(key: str, lang: str) -> str:
    """The plain-words note of a table: Korean with the English in italics, or English only."""
    if lang == "en":
        return f'<p class="note">{escape(label(key, "en"))}</p>'
    return f'<p class="note">{escape(label(key, "ko"))}<br><em>{escape(label(key, "en"))}</em></p>'


def _notes(keys: tuple[str, ...], lang: str) -> str:
    return "\n".join(_note(k, lang) for k in keys)


def _table(headers: list[str], rows: list[dict], total: dict | None,
           cells: list[Callable[[dict], str]], lang: str) -> str:
    """An HTML table: one row per branch (name first), then the network total."""
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in [label("net_col_branch", lang), *headers]) + "</tr>"
    body = [f"<tr><td>{escape(r['name'])}</td>" + "".join(f"<td>{escape(c(r))}</td>" for c in cells) + "</tr>"
            for r in rows]
    if total is not None:
        t = {**total, "_total": True}
        body.append(f"<tr><th>{escape(label('net_total', lang))}</th>"
                    + "".join(f"<th>{escape(c(t))}</th>" for c in cells) + "</tr>")
    return f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def _section(heading: str, table: str, note: str | tuple[str, ...], lang: str) -> str:
    notes = _notes((note,) if isinstance(note, str) else note, lang)
    return f"<section>\n<h2>{escape(label(heading, lang))}</h2>\n{table}\n{notes}\n</section>"


def _col(key: str, fmt: Callable[[Any, dict], str]) -> Callable[[dict], str]:
    return lambda row: fmt(row.get(key), row)


# --------------------------------------------------------------------------- the sections

def _glance(summary: dict, lang: str) -> str:
    keys = [("active_12m", "net_col_active", _count), ("new_month", "net_col_new", _count),
            ("returning_month", "net_col_returning", _count), ("retention_rate", "net_col_retention_rate", _rate),
            ("no_show_rate", "net_col_no_show_rate", _rate), ("vip_count", "net_col_vip_count", _count),
            ("revenue_total", "net_col_revenue", _won)]

    def cell(key, fmt):
        def show(row):
            shown = {**row, "available": row.get(f"{key}_available", True)}
            return fmt(row.get(key), shown)
        return show

    table = _table([label(h, lang) for _, h, _ in keys], summary["clinics"], summary["totals"],
                   [cell(k, f) for k, _, f in keys], lang)
    return _section("net_h_glance", table, "net_note_glance", lang)


def _no_show(section: dict, lang: str) -> str:
    cells = [_col("appointments", _count), _col("no_shows", _count), _col("rate", _rate),
             lambda r: _pooled(r, "risk_difference"), _col("regime", _text)]
    headers = [label(k, lang) for k in ("net_col_appointments", "net_col_no_shows", "net_col_no_show_rate",
                                        "net_col_reminder_effect", "net_col_regime")]
    return _section("net_h_no_show", _table(headers, section["rows"], section["total"], cells, lang),
                    ("net_note_no_show", "net_note_pool"), lang)


def _retention_count(value: Any, row: dict) -> str:
    """A retention count: "–" where the branch's data cannot support retention (under 24 months), not "<5"."""
    return DASH if value is None and not row.get("retention_available", True) else _count(value, row)


def _retention(section: dict, lang: str) -> str:
    keys = [("base", "net_col_base", _retention_count), ("retained", "net_col_retained", _retention_count),
            ("rate", "net_col_retention_rate", _rate), ("active_12m", "net_col_active", _count),
            ("new_month", "net_col_new", _count), ("returning_month", "net_col_returning", _count)]
    table = _table([label(h, lang) for _, h, _ in keys], section["rows"], section["total"],
                   [_col(k, f) for k, _, f in keys], lang)
    return _section("net_h_retention", table, "net_note_retention", lang)


def _vip(section: dict, lang: str) -> str:
    keys = [("count", "net_col_vip_count"), ("entered", "net_col_vip_entered"), ("left", "net_col_vip_left")]
    table = _table([label(h, lang) for _, h in keys], section["rows"], section["total"],
                   [_col(k, _count) for k, _ in keys], lang)
    return _section("net_h_vip", table, "net_note_vip", lang)


def _campaigns(section: dict, lang: str) -> str:
    kinds = [*section["kinds"], "overall"]

    def lift(kind):
        def show(row):
            block = section["total"][kind] if row.get("_total") else (
                row.get("overall") if kind == "overall" else row.get("kinds", {}).get(kind))
            return _pooled(block or {}, "lift")
        return show

    headers = [k if k != "overall" else label("net_col_campaign_overall", lang) for k in kinds]
    table = _table(headers, section["rows"], {}, [lift(k) for k in kinds], lang)
    return _section("net_h_campaigns", table, ("net_note_campaigns", "net_note_pool"), lang)


def _revenue(section: dict, lang: str) -> str:
    keys = [("insured", "kpi_col_insured"), ("self_pay", "kpi_col_self_pay"), ("total", "kpi_col_total")]
    out = _section("net_h_revenue", _table([label(h, lang) for _, h in keys], section["rows"], section["total"],
                                           [_col(k, _won) for k, _ in keys], lang), "net_note_revenue", lang)
    departments = section["departments"]
    if departments:
        def dept(name):
            return lambda row: _won(row["departments"].get(name, 0 if row.get("available") else None), row)
        table = _table(departments, section["rows"], section["total"], [dept(d) for d in departments], lang)
        out += "\n" + _section("net_h_departments", table, "net_note_departments", lang)
    return out


def _churn(section: dict, lang: str) -> str:
    keys = [("patients", "net_col_churn_patients", _count), ("churned", "net_col_churned", _count),
            ("rate", "net_col_churn_rate", _rate), ("recall_candidates", "net_col_recall", _count)]
    table = _table([label(h, lang) for _, h, _ in keys], section["rows"], section["total"],
                   [_col(k, f) for k, _, f in keys], lang)
    return _section("net_h_churn", table, "net_note_churn", lang)


def _missing(summary: dict, lang: str) -> str:
    if not summary["missing"]:
        return (f"<section>\n<h2>{escape(label('net_h_missing', lang))}</h2>\n"
                f"<p>{escape(label('net_none_missing', lang))}</p>\n</section>")
    head = (f"<tr><th>{escape(label('net_col_branch', lang))}</th><th>ID</th>"
            f"<th>{escape(label('net_col_reason', lang))}</th></tr>")
    body = "\n".join(f"<tr><td>{escape(m['name'])}</td><td>{escape(m['id'])}</td><td>{escape(m['reason'])}</td></tr>"
                     for m in summary["missing"])
    table = f'<table class="missing">\n<thead>{head}</thead>\n<tbody>\n{body}\n</tbody>\n</table>'
    return _section("net_h_missing", table, "net_note_missing", lang)


_EXTRA_CSS = """
section { margin-top: 1.2rem; }
table.missing td { text-align: left; }
p.note em { font-style: italic; }
@media print { section { page-break-inside: avoid; } }
"""


def network_html(summary: dict, lang: str = "ko", *, extra_css: str = "") -> str:
    """The network summary as one self-contained HTML page (no external links or images).

    Parameters
    ----------
    summary : dict
        From :func:`crm_analysis.network.summary.network_summary`.
    lang : {"ko", "en"}
        Korean (default; notes carry the English in italics) or English.
    extra_css : str
        Appended to the styles (the PDF adds its ``@font-face`` rules here).

    Returns
    -------
    str
    """
    from crm_analysis.report.html import CSP_META, REPORT_CSS

    check_lang(lang)
    title = label("network_title", lang) + (f" · {summary['network']}" if summary.get("network") else "")
    facts = [f"{label('net_month', lang)}: {summary['month']}",
             f"{label('net_reported', lang)}: {len(summary['reported'])} / {summary['n_branches']}"]
    s = summary["sections"]
    parts = [_glance(summary, lang), _no_show(s["no_show"], lang), _retention(s["retention"], lang),
             _vip(s["vip"], lang), _campaigns(s["campaigns"], lang), _revenue(s["revenue"], lang)]
    if "churn" in s:
        parts.append(_churn(s["churn"], lang))
    parts.append(_missing(summary, lang))
    return ("<!DOCTYPE html>\n"
            f'<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n{CSP_META}\n'
            f"<title>{escape(title)} {escape(summary['month'])}</title>\n"
            f"<style>{REPORT_CSS}{_EXTRA_CSS}{extra_css}</style>\n</head>\n<body>\n"
            f'<header class="cover">\n<h1>{escape(title)}</h1>\n<p>{escape(" · ".join(facts))}</p>\n'
            f'<p class="note">{escape(label("report_suppressed_note", lang))}</p>\n</header>\n'
            + "\n".join(parts) + "\n</body>\n</html>\n")


def write_network_pdf(summary: dict, path: Path, lang: str = "ko") -> Path:
    """Write the network summary as an A4 PDF, the Korean font (NanumGothic) embedded.

    Parameters
    ----------
    summary : dict
        From :func:`crm_analysis.network.summary.network_summary`.
    path : Path
        The PDF to write (its folder must exist).
    lang : {"ko", "en"}

    Returns
    -------
    Path
    """
    from crm_analysis.report.pdf import font_face_css, write_pdf

    return write_pdf(network_html(summary, lang, extra_css=font_face_css()), Path(path))
