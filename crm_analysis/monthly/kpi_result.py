"""The month's KPIs as a result: ``kpis.json`` (:meth:`MonthlyKpis.to_json`) and the report's KPI page.

:class:`MonthlyKpis` is what :func:`crm_analysis.monthly.kpis.monthly_kpis`
returns and what the report notebook reads back from ``kpis.json``; its
``*_table(lang)`` methods give plain tables and its ``*_view(lang)`` methods
the same tables styled for the page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crm_analysis.cells import escaped_style
from crm_analysis.data_labels import campaign_kind_name, department_names
from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.i18n import check_lang, label, localise_columns
from crm_analysis.number_format import format_number
from crm_analysis.sufficiency import REQUIREMENTS, SHORT_OF_DATA

__all__ = ["MonthlyKpis", "SCHEMA_VERSION"]

#: Bumped when a key of kpis.json changes meaning or disappears.
SCHEMA_VERSION = 1


def _effect_text(estimate: float | None, low: float | None, high: float | None) -> str:
    """A difference of rates with its CI in percentage points, "-10.0%p (-11.8 ~ -8.2)"; "–" if hidden."""
    if estimate is None or low is None or high is None:
        return "–"
    return f"{estimate * 100:+.1f}%p ({low * 100:+.1f} ~ {high * 100:+.1f})"


@dataclass(frozen=True)
class MonthlyKpis:
    """The month's KPIs. ``to_dict()`` is ``kpis.json``; the other methods display it.

    Attributes
    ----------
    month : str
        ``YYYY-MM``.
    as_of : str
        The month's last day, ``YYYY-MM-DD``.
    min_count : int
        Suppression threshold used.
    sections : dict
        Section name -> JSON-ready dict (see ``docs/kpis.md``).
    """

    month: str
    as_of: str
    min_count: int
    sections: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The content of ``kpis.json``."""
        return {"schema_version": SCHEMA_VERSION, "month": self.month, "as_of": self.as_of,
                "min_count": self.min_count, "sections": self.sections}

    def to_json(self) -> str:
        """Deterministic JSON text: sorted keys, UTF-8, two-space indent, final newline."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> "MonthlyKpis":
        """Rebuild from :meth:`to_dict` output (for example a ``kpis.json`` read back)."""
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"kpis.json has schema_version {data.get('schema_version')!r}; "
                             f"this version of crm_analysis reads {SCHEMA_VERSION}")
        return cls(month=data["month"], as_of=data["as_of"], min_count=int(data["min_count"]),
                   sections=data["sections"])

    @classmethod
    def read(cls, path: str | Path) -> "MonthlyKpis":
        """Read a ``kpis.json`` file."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    # ------------------------------------------------------------------ display
    def _require(self, section: str) -> dict:
        """The section's figures, or the InsufficientDataError that kept it from being computed."""
        block = self.sections.get(section)
        if block is None:
            raise InsufficientDataError(section, f"{section}: not computed in this run.",
                                        f"{section}: 이번 실행에서 계산하지 않았습니다.")
        if not block.get("available", False):
            reason = block.get("reason") or f"{section}: not available."
            raise InsufficientDataError(section, reason, block.get("reason_ko") or reason)
        return block

    def skipped_table(self, lang: str = "ko") -> pd.DataFrame:
        """The sections the data could not support, with the reason (empty when none was skipped)."""
        check_lang(lang)
        rows = []
        for name, block in self.sections.items():
            if block.get("available", False):
                continue
            title = REQUIREMENTS[name].title(lang) if name in REQUIREMENTS else name
            reason = block.get("reason_ko" if lang == "ko" else "reason") or block.get("reason") or ""
            # the title stands beside the reason, and the column header says it was skipped
            rows.append({"section": title,
                         "reason": reason.removeprefix(f"{title}: ").removeprefix(SHORT_OF_DATA[lang])})
        return pd.DataFrame(rows, columns=["section", "reason"])

    def skipped_view(self, lang: str = "ko"):
        """:meth:`skipped_table` for display (None when nothing was skipped, so the report shows nothing)."""
        table = self.skipped_table(lang)
        if table.empty:
            return None
        names = {"section": label("kpi_col_section", lang), "reason": label("kpi_col_reason", lang)}
        return escaped_style(table.rename(columns=names), lang=lang).hide(axis="index").set_properties(
            **{"text-align": "left"})

    def _get(self, section: str, *keys: str) -> Any:
        value: Any = self.sections.get(section, {})
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def _show(self, section: str, value: Any, kind: str) -> str:
        """A value as text: "<5" for a hidden count, "–" for missing or unavailable."""
        if value is None:
            available = self.sections.get(section, {}).get("available", False)
            return f"<{self.min_count}" if available and kind == "count" else "–"
        if kind == "rate":
            return f"{value:.1%}"
        if kind == "won":
            return f"{value:,.0f}"
        if kind == "pp":
            return f"{value * 100:+.1f}%p"
        return f"{value:,}"

    def _effect(self, section: str, *path: str) -> str:
        """A difference of rates with its CI in percentage points: "-10.0%p (-11.8 ~ -8.2)"."""
        block = self._get(section, *path) if path else self.sections.get(section, {})
        block = block if isinstance(block, dict) else {}
        key = "risk_difference" if "risk_difference" in block else "lift"
        return _effect_text(block.get(key), block.get("ci_low"), block.get("ci_high"))

    def headline(self, lang: str = "ko") -> pd.DataFrame:
        """One row per headline KPI: label and formatted value ("<5" where suppressed, "–" if unavailable).

        Rates of change (the reminder effect, the campaign lift) are shown in percentage points with their
        95% CI; VIP moves as ``+entered / −left``.
        """
        check_lang(lang)
        rows = [("kpi_active_12m", "patients", ("active_12m",), "count"),
                ("kpi_visiting_month", "patients", ("visiting_month",), "count"),
                ("kpi_new_month", "patients", ("new_month",), "count"),
                ("kpi_returning_month", "patients", ("returning_month",), "count"),
                ("kpi_retention_rate", "retention", ("rate",), "rate"),
                ("kpi_no_show_month", "no_show", ("month", "rate"), "rate"),
                ("kpi_no_show_12m", "no_show", ("last_12m", "rate"), "rate"),
                ("kpi_reminder_effect", "reminder_effect", (), "effect"),
                ("kpi_vip_count", "vip", ("count",), "count"),
                ("kpi_vip_moves", "vip", (), "moves"),
                ("kpi_churned", "churn", ("churned",), "count"),
                ("kpi_recall_candidates", "churn", ("recall_candidates",), "count"),
                ("kpi_campaign_lift", "campaigns", ("last_12m", "overall"), "effect"),
                ("kpi_revenue_month", "revenue_by_department", ("total", "total"), "won")]
        shown = []
        for key, section, path, kind in rows:
            if kind == "effect":
                text = self._effect(section, *path)
            elif kind == "moves":
                text = "–" if not self._get(section, "available") else (
                    f"+{self._show(section, self._get(section, 'entered'), 'count')} / "
                    f"−{self._show(section, self._get(section, 'left'), 'count')}")
            else:
                text = self._show(section, self._get(section, *path), kind)
            shown.append({label("kpi_name", lang): label(key, lang), label("kpi_value", lang): text})
        return pd.DataFrame(shown)

    def vip_segment_table(self, lang: str = "ko") -> pd.DataFrame:
        """Patients per RFM segment at the previous month's end and now, and how many stayed (hidden: missing)."""
        from crm_analysis.value.segmentation import segment_names

        check_lang(lang)
        rows = self._require("vip").get("segments")
        if not rows:
            return pd.DataFrame()
        table = pd.DataFrame(rows)
        names = segment_names(None, lang)
        table["segment"] = table["segment"].map(lambda k: names.get(k, k))
        for col in ("patients_before", "patients_now", "stayed"):
            table[col] = table[col].astype("Int64")
        return localise_columns(table.rename(columns=lambda c: f"kpi_col_{c}"), lang)

    def campaign_table(self, lang: str = "ko", period: str = "last_12m") -> pd.DataFrame:
        """Campaign lifts of `period` (``last_12m`` by kind, ``last_month`` by run) with a pooled row.

        Rates and lifts in percentage points (lift with its 95% CI as text); hidden values are missing.
        """
        check_lang(lang)
        block = self._require("campaigns").get(period)
        if not isinstance(block, dict) or not block.get("rows"):
            return pd.DataFrame()
        name = "kind" if period == "last_12m" else "campaign_id"
        rows = [{**r, "campaign": campaign_kind_name(r[name], lang) if name == "kind" else r[name]}
                for r in block["rows"]]
        if block.get("overall"):
            rows.append({**block["overall"], "campaign": label("kpi_total", lang)})
        table = pd.DataFrame(rows)
        out = pd.DataFrame({"campaign": table["campaign"]})
        for col in ("n_sent", "n_holdout"):
            out[col] = table[col].astype("Int64")
        for col in ("rate_sent", "rate_holdout"):
            out[col] = (table[col].astype("Float64") * 100).round(1) if col in table else pd.NA
        out["lift"] = [_effect_text(r.get("lift"), r.get("ci_low"), r.get("ci_high")) for r in rows]
        return localise_columns(out.rename(columns=lambda c: f"kpi_col_{c}"), lang)

    def vip_segment_view(self, lang: str = "ko"):
        """:meth:`vip_segment_table` for display: thousands separators, hidden counts as ``<5``."""
        table = self.vip_segment_table(lang)
        if table.empty:
            return table
        counts = [label(f"kpi_col_{c}", lang) for c in ("patients_before", "patients_now", "stayed")]
        return escaped_style(table, lang=lang, counts=counts, min_count=self.min_count).hide(axis="index")

    def campaign_view(self, lang: str = "ko", period: str = "last_12m"):
        """:meth:`campaign_table` for display: hidden counts as ``<5``, hidden rates as "–"."""
        table = self.campaign_table(lang, period)
        if table.empty:
            return table
        counts = [label(f"kpi_col_{c}", lang) for c in ("n_sent", "n_holdout")]
        rates = [label(f"kpi_col_{c}", lang) for c in ("rate_sent", "rate_holdout")]
        return escaped_style(table, dict.fromkeys(rates, "{:.1f}%"), lang=lang, counts=counts,
                             min_count=self.min_count).hide(axis="index")

    def department_table(self, lang: str = "ko") -> pd.DataFrame:
        """Revenue by department this month, with a total row; suppressed cells are missing."""
        check_lang(lang)
        section = self._require("revenue_by_department")
        if not section.get("rows"):
            return pd.DataFrame()
        table = pd.DataFrame(section["rows"])
        total = {"department": label("kpi_total", lang), **section["total"]}
        columns = ["department", "visits", "patients", "insured", "self_pay", "total"]
        table = table.assign(department=department_names(table["department"], lang))
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)[columns]
        for col in columns[1:]:
            table[col] = table[col].astype("Int64")
        return localise_columns(table.rename(columns=lambda c: f"kpi_col_{c}"), lang)

    def page_one(self, lang: str = "ko"):
        """Page 1: KPI tiles with last month and last year, the patient base, the reminder effect and next
        month's actions (:mod:`crm_analysis.monthly.page_one`), as HTML to display."""
        from IPython.display import HTML

        from crm_analysis.monthly.page_one import page_one_html

        return HTML(page_one_html(self.sections, lang, self.min_count))

    def brief(self, name: str, lang: str = "ko"):
        """An analysis' management page text: one sentence from these figures and the next step
        (:mod:`crm_analysis.monthly.briefs`), as HTML to display."""
        from IPython.display import HTML

        from crm_analysis.monthly.briefs import brief_html

        return HTML(brief_html(self.sections, name, lang, self.min_count))

    def plot_segments(self, lang: str = "ko", ax=None):
        """Patients per RFM segment at last month's end and now (horizontal bars)."""
        import matplotlib.pyplot as plt

        check_lang(lang)
        table = self.vip_segment_table(lang)
        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 3.2), layout="constrained")
        if table.empty:
            ax.set_axis_off()
            return ax
        names = table[label("kpi_col_segment", lang)].astype(str).tolist()
        before, now = (table[label(f"kpi_col_{c}", lang)].astype("Float64").fillna(0).to_numpy(dtype=float)
                       for c in ("patients_before", "patients_now"))
        y = np.arange(len(names))
        ax.barh(y + 0.2, before, height=0.4, color="#9bb7d4", label=label("kpi_col_patients_before", lang))
        ax.barh(y - 0.2, now, height=0.4, color="#2f5d8a", label=label("kpi_col_patients_now", lang))
        ax.set_yticks(y, names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(label("kpi_axis_patients", lang))
        ax.set_title(label("kpi_segments_title", lang), fontsize=10)
        ax.legend(fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return ax

    def reply_table(self, lang: str = "ko") -> pd.DataFrame:
        """This month's appointments, no-shows and no-show rate by reply to the reminders (hidden: missing)."""
        check_lang(lang)
        rows = self._require("replies").get("rows") or []
        table = pd.DataFrame(rows, columns=["reply", "appointments", "no_shows", "no_show_rate"])
        table["reply"] = table["reply"].map(lambda r: label(f"daily_reply_{r}", lang))
        for col in ("appointments", "no_shows"):
            table[col] = table[col].astype("Int64")
        table["no_show_rate"] = table["no_show_rate"].astype("Float64")
        names = {"reply": "daily_reply", "appointments": "daily_reply_appointments",
                 "no_shows": "daily_reply_no_shows", "no_show_rate": "daily_reply_no_show_rate"}
        return table.rename(columns={c: label(k, lang) for c, k in names.items()})

    def reply_view(self, lang: str = "ko"):
        """:meth:`reply_table` for display, with the confirmation rate as its caption."""
        table = self.reply_table(lang)
        counts = [label(k, lang) for k in ("daily_reply_appointments", "daily_reply_no_shows")]
        rate = self.sections["replies"].get("confirmation_rate")
        caption = label("kpi_confirmation_rate", lang).format(rate=format_number(rate, "rate", lang))
        return escaped_style(table, {label("daily_reply_no_show_rate", lang): "{:.1%}"}, lang=lang, counts=counts,
                             min_count=self.min_count).hide(axis="index").set_caption(escape(caption))

    def headline_view(self, lang: str = "ko"):
        """:meth:`headline` as a display table (no index), for the report page."""
        return escaped_style(self.headline(lang), lang=lang).hide(axis="index")

    def department_view(self, lang: str = "ko"):
        """:meth:`department_table` for display: thousands separators, suppressed counts as ``<5``."""
        table = self.department_table(lang)
        if table.empty:
            return table
        counts = [label(f"kpi_col_{c}", lang) for c in ("visits", "patients")]
        return escaped_style(table, lang=lang, counts=counts, min_count=self.min_count).hide(axis="index")

    def trend_table(self) -> pd.DataFrame:
        """Visits, patients and new patients per month for the last 12 months (index: month)."""
        rows = self.sections.get("trend", {}).get("rows", [])
        return pd.DataFrame(rows).set_index("month").astype("Float64") if rows else pd.DataFrame()

    def plot_trend(self, lang: str = "ko", ax=None):
        """Bar chart of visits per month with new patients, the last 12 months."""
        import matplotlib.pyplot as plt

        check_lang(lang)
        table = self.trend_table()
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 2.6))
        if table.empty:
            ax.set_axis_off()
            return ax
        x = np.arange(len(table))
        ax.bar(x, table["visits"].fillna(0).to_numpy(dtype=float), color="#9bb7d4", label=label("kpi_col_visits", lang))
        ax.bar(x, table["new_patients"].fillna(0).to_numpy(dtype=float), color="#2f5d8a",
               label=label("kpi_col_new_patients", lang))
        ax.set_xticks(x, [m[2:] for m in table.index], fontsize=8)
        ax.set_title(label("kpi_trend_title", lang), fontsize=10)
        ax.set_xlabel(label("kpi_axis_month", lang), fontsize=8)
        ax.set_ylabel(label("kpi_axis_visits", lang), fontsize=8)
        ax.legend(fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return ax

    def summary(self) -> pd.DataFrame:
        """Headline KPIs in Korean (see :meth:`headline` for English)."""
        return self.headline("ko")

    def _repr_html_(self) -> str:
        return (f"<h4>{escape(self.month)} KPIs (as of {escape(self.as_of)})</h4>"
                + self.headline("ko").to_html(index=False))
