"""Page 1 of the report: the month at a glance, for a director who has one minute.

Built from ``kpis.json`` alone (:class:`~crm_analysis.monthly.kpi_result.MonthlyKpis`),
so it shows exactly the published figures:

1. **Tiles** (:func:`tiles_html`): about eight KPIs, each with this month,
   last month and the same month last year, an arrow coloured by whether the
   change is good, and a 13-month sparkline (inline SVG: sharp in the PDF,
   no image to describe).
2. **The patient base** (:func:`base_sentence`): registered patients, the
   patients at risk of not returning with the churned among them, and the
   recall list: nested figures on one base, so none adds up past the whole.
3. **Effects** (:func:`effect_sentence`): the reminder effect, the
   randomised pilot beside the adjusted estimate when a pilot exists, with one
   sentence on why they differ.
4. **Next month's actions** (:func:`actions_html`): up to five, each with
   its count and the staff file that carries it.

Every figure goes through :func:`crm_analysis.number_format.format_number`;
every text from labels or data is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any, Sequence

from crm_analysis.i18n import LABELS, check_lang, label
from crm_analysis.number_format import format_number

__all__ = ["page_one_html", "tiles_html", "actions_html", "base_sentence", "effect_sentence", "sparkline_svg",
           "PAGE_ONE_CSS"]

#: Styles of page 1 (shipped inside the page's HTML, so the notebook shows it too).
PAGE_ONE_CSS = """
.glance { margin: .3rem 0 .6rem 0; }
.glance .tile { display: inline-block; vertical-align: top; width: 23.2%; box-sizing: border-box; margin: 0 .6% .5rem 0;
  padding: .35rem .45rem; border: 1px solid #d5dbe1; border-radius: 4px; page-break-inside: avoid; }
.glance .tile-name { font-size: 8pt; color: #5a6572; min-height: 2.2em; }
.glance .tile-value { font-size: 15pt; font-weight: bold; color: #1d2733; }
.glance .tile-compare { font-size: 7.5pt; color: #5a6572; }
.glance .good { color: #2e7d32; } .glance .bad { color: #c62828; } .glance .flat { color: #5a6572; }
.glance svg { display: block; margin: .15rem 0; }
.todo { font-size: 10pt; margin: .2rem 0 .5rem 1.2rem; padding: 0; }
.todo li { margin: .15rem 0; } .todo .file { color: #2f5d8a; font-family: "DejaVu Sans Mono", monospace; font-size: 8.5pt; }
p.base, p.effect, p.brief, p.next-step { margin: .3rem 0; }
"""


def _value(tile: dict, value: Any, lang: str, min_count: int) -> str:
    kind = {"count": "count", "rate": "rate", "krw": "krw_compact"}[tile["kind"]]
    return format_number(value, kind, lang, hidden_below=min_count if tile["kind"] == "count" else None)


def _change(tile: dict, now: Any, before: Any, lang: str) -> tuple[str, str]:
    """The change as text and its class (good / bad / flat); empty when either value is missing."""
    if now is None or before is None:
        return "", "flat"
    if tile["kind"] == "rate":
        delta = now - before
        text = format_number(delta, "pp", lang)
    else:
        if before == 0:
            return "", "flat"
        delta = now / before - 1
        text = f"{delta * 100:+.1f}%"
    if abs(delta) < 5e-4:
        return label("tile_flat", lang), "flat"
    up = delta > 0
    good = up == (tile["better"] == "up")
    return ("▲ " if up else "▼ ") + text, "good" if good else "bad"


def sparkline_svg(series: Sequence[Any], *, width: int = 120, height: int = 22, description: str = "") -> str:
    """A sparkline of `series` (None: a gap) as inline SVG, the last point marked."""
    points = [(i, float(v)) for i, v in enumerate(series) if v is not None]
    title = f"<title>{escape(description)}</title>" if description else ""
    if len(points) < 2:
        return f'<svg width="{width}" height="{height}" role="img" aria-label="{escape(description)}">{title}</svg>'
    low, high = min(v for _, v in points), max(v for _, v in points)
    span = (high - low) or 1.0
    step = (width - 4) / max(len(series) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return 2 + i * step, height - 3 - (v - low) / span * (height - 6)

    runs, run, last = [], [], None
    for i, v in points:  # a gap (a hidden month) breaks the line
        if last is not None and i != last + 1:
            runs.append(run)
            run = []
        run.append(xy(i, v))
        last = i
    runs.append(run)
    lines = "".join(f'<polyline fill="none" stroke="#2f5d8a" stroke-width="1.3" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in r) + '"/>' for r in runs if len(r) > 1)
    x, y = xy(*points[-1])
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(description)}">{title}{lines}<circle cx="{x:.1f}" cy="{y:.1f}" r="2" '
            f'fill="#2f5d8a"/></svg>')


def tiles_html(glance: dict, lang: str = "ko", min_count: int = 5) -> str:
    """The KPI tiles of the ``glance`` section."""
    check_lang(lang)
    months = glance.get("months") or []
    start = glance.get("covered_from")
    uncovered = {i for i, m in enumerate(months) if start is None or m < start}  # before the data: not hidden
    out = []
    for tile in glance.get("tiles", []):
        name = label(f"tile_{tile['key']}", lang)
        now = _value(tile, tile["this"], lang, min_count)
        vs_month, cls_month = _change(tile, tile["this"], tile["last_month"], lang)
        vs_year, cls_year = _change(tile, tile["this"], tile["last_year"], lang)

        def then(value, i):
            return "–" if i in uncovered else _value(tile, value, lang, min_count)

        desc = label("tile_sparkline", lang).format(name=name, first=months[0] if months else "",
                                                    last=months[-1] if months else "")
        out.append(
            '<div class="tile">'
            f'<div class="tile-name">{escape(name)}</div>'
            f'<div class="tile-value">{escape(now)}</div>'
            + sparkline_svg(tile["series"], description=desc)
            + f'<div class="tile-compare">{escape(label("tile_last_month", lang))} '
              f'{escape(then(tile["last_month"], len(months) - 2))} '
              f'<span class="{cls_month}">{escape(vs_month)}</span></div>'
            + f'<div class="tile-compare">{escape(label("tile_last_year", lang))} '
              f'{escape(then(tile["last_year"], 0))} '
              f'<span class="{cls_year}">{escape(vs_year)}</span></div>'
            "</div>")
    return f'<div class="glance">{"".join(out)}</div>' if out else ""


def base_sentence(sections: dict, lang: str = "ko", min_count: int = 5) -> str:
    """Registered patients, those at risk (the churned among them) and the recall list, on one base."""
    patients, churn = sections.get("patients", {}), sections.get("churn", {})
    registered = patients.get("registered")
    if not churn.get("available"):
        if registered is None:
            return ""
        return label("page1_base_no_churn", lang).format(registered=format_number(registered, "count", lang))

    def count(v):
        return format_number(v, "count", lang, hidden_below=min_count)

    return label("page1_base", lang).format(
        registered=count(churn.get("patients")), at_risk=count(churn.get("at_risk")),
        below=format_number(churn.get("at_risk_below"), "rate", lang).replace(".0%", "%"),
        churned=count(churn.get("churned")), recall=count(churn.get("recall_candidates")))


def effect_sentence(sections: dict, lang: str = "ko") -> str:
    """The reminder effect: the randomised pilot beside the adjusted estimate when there was a pilot."""
    block = sections.get("reminder_effect", {})
    if not block.get("available") or block.get("risk_difference") is None:
        return ""

    def pp(v):
        return format_number(v, "pp", lang)

    regime = block.get("regime", "")
    regime = label("page1_regime_as_received", lang) if regime == "as received" else regime
    adjusted = label("page1_effect_adjusted", lang).format(rd=pp(block["risk_difference"]), lo=pp(block["ci_low"]),
                                                          hi=pp(block["ci_high"]), regime=regime)
    if block.get("sample"):
        adjusted += " " + label("page1_effect_sample", lang).format(patients=block["sample"]["patients"])
    pilot = block.get("pilot")
    if not pilot:
        return adjusted
    return label("page1_effect_pilot", lang).format(rd=pp(pilot["risk_difference"]), lo=pp(pilot["ci_low"]),
                                                   hi=pp(pilot["ci_high"]), month=pilot["month"]) + " " + adjusted \
        + " " + label("page1_effect_why", lang)


def actions_html(actions: dict, lang: str = "ko", min_count: int = 5) -> str:
    """Next month's actions: what, how many, and the staff file."""
    check_lang(lang)
    rows = actions.get("rows") if actions.get("available", True) else None
    if not rows:
        return f'<p class="note">{escape(label("page1_no_actions", lang))}</p>'
    items = []
    for row in rows:
        key = f"action_{row['audience']}"
        what = label(key, lang) if key in LABELS else row["audience"]
        n = row.get("recipients") if row.get("recipients") is not None else row.get("rows")
        count = format_number(n, "count", lang, hidden_below=min_count)
        unit = label("page1_people", lang)
        items.append(f'<li><b>{escape(what)}</b> {escape(count)}{escape(unit)} — '
                     f'<span class="file">{escape(row["file"])}</span></li>')
    return f'<ol class="todo">{"".join(items)}</ol>'


def page_one_html(sections: dict, lang: str = "ko", min_count: int = 5) -> str:
    """Page 1 after its title: the tiles, the patient base, the effects and next month's actions."""
    check_lang(lang)
    parts = [f"<style>{PAGE_ONE_CSS}</style>"]
    glance = sections.get("glance", {})
    if glance.get("available", True) and glance.get("tiles"):
        parts.append(tiles_html(glance, lang, min_count))
    for text, cls in ((base_sentence(sections, lang, min_count), "base"), (effect_sentence(sections, lang), "effect")):
        if text:
            parts.append(f'<p class="{cls}">{escape(text)}</p>')
    actions = sections.get("actions", {})
    month = actions.get("planned_month") or ""
    parts.append(f'<h2 id="todo">{escape(label("page1_todo", lang).format(month=month))}</h2>')
    parts.append(actions_html(actions, lang, min_count))
    return "\n".join(parts)
