"""Monthly KPIs: the one-page summary that opens the management report, and ``kpis.json``.

:func:`monthly_kpis` runs every registered *section* on the clinic as known at
the month's end (``clinic.snapshot(as_of)``: no look-ahead) and returns a
:class:`MonthlyKpis` result: ``to_dict()`` / ``to_json()`` give ``kpis.json``
(documented key by key in ``docs/kpis.md``), ``headline(lang)`` and the table
methods give the report page.

Sections are small functions in a registry, so analyses that land later (VIP
count and migration, churn-risk counts, reminder effect, campaign lifts) add
theirs with :func:`register_section` without touching this module::

    @register_section("vip")
    def _vip(clinic, as_of, min_count):
        ...
        return {"count": ..., "moved_in": ...}

A section receives the snapshot, the month-end ``as_of`` and the suppression
threshold, and returns a JSON-ready dict (ints, floats rounded, strings,
lists, dicts, None). A section that needs a table the clinic lacks raises
:class:`~crm_analysis.exceptions.MissingTableError`; it then appears as
``{"available": false, "reason": ...}`` instead of failing the month.

Counts from 1 to ``min_count - 1`` are suppressed (``null``); a rate whose
numerator is suppressed is suppressed too; tables get secondary suppression
(:func:`crm_analysis.privacy.suppress_small_counts`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import MissingTableError
from crm_analysis.i18n import check_lang, label, localise_columns
from crm_analysis.privacy import DEFAULT_MIN_COUNT, suppress_small_counts

__all__ = ["SCHEMA_VERSION", "SECTIONS", "CORE_SECTIONS", "register_section", "monthly_kpis", "MonthlyKpis", "kpis_for_report",
           "KPIS_FILE"]

#: Bumped when a key of kpis.json changes meaning or disappears.
SCHEMA_VERSION = 1
#: The file name the monthly run writes.
KPIS_FILE = "kpis.json"

Section = Callable[[ClinicData, pd.Timestamp, int], dict]

#: The sections defined in this module (the others are registered by analysis modules).
CORE_SECTIONS = ("patients", "retention", "no_show", "revenue_by_department", "trend")

#: Registered sections, in report order: name -> function(clinic, as_of, min_count) -> dict.
SECTIONS: dict[str, Section] = {}


def register_section(name: str, func: Section | None = None, *, replace: bool = False):
    """Add a KPI section (usable as a decorator).

    Parameters
    ----------
    name : str
        Key of the section in ``kpis.json`` (document it in ``docs/kpis.md``).
    func : callable, optional
        ``func(clinic, as_of, min_count) -> dict``; omit to use as a decorator.
    replace : bool
        Allow replacing a section of the same name.

    Raises
    ------
    ValueError
        If `name` is taken and `replace` is False.
    """
    def add(f: Section) -> Section:
        if name in SECTIONS and not replace:
            raise ValueError(f"a KPI section named {name!r} is already registered; pass replace=True to replace it")
        SECTIONS[name] = f
        return f

    return add if func is None else add(func)


# --------------------------------------------------------------------------- helpers

def _month_start(as_of: pd.Timestamp, months_back: int = 0) -> pd.Timestamp:
    return (as_of.to_period("M") - months_back).start_time


def _count(n: int | np.integer, min_count: int) -> int | None:
    """A count, or None when it is small enough to single someone out (1 .. min_count - 1)."""
    n = int(n)
    return None if 0 < n < min_count else n


def _rate(numerator: int, denominator: int, min_count: int) -> float | None:
    if denominator == 0 or _count(numerator, min_count) is None or _count(denominator, min_count) is None:
        return None
    return round(numerator / denominator, 4)


def _first_visits(clinic: ClinicData) -> pd.Series:
    """Each patient's first visit day: ``patients.first_visit_date``, else their earliest visit."""
    earliest = clinic.visits.groupby("patient_id", observed=True)["visit_date"].min()
    patients = clinic.patients.set_index("patient_id")["first_visit_date"]
    return patients.fillna(earliest.reindex(patients.index)).dropna()


def _between(df: pd.DataFrame, column: str, start: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    end = as_of + pd.Timedelta(days=1)
    values = df[column]
    return df.loc[((values >= start) & (values < end)).fillna(False).to_numpy()]


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (missing -> None, numpy -> Python)."""
    out = []
    for row in table.to_dict(orient="records"):
        out.append({k: (None if v is pd.NA or (isinstance(v, float) and np.isnan(v)) else
                        v.item() if hasattr(v, "item") else v) for k, v in row.items()})
    return out


# --------------------------------------------------------------------------- the sections

@register_section("patients")
def _patients(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """Active (seen in the last 12 months), visiting, new and returning patients this month."""
    visits = clinic.visits
    month_start, year_start = _month_start(as_of), _month_start(as_of, 11)
    first = _first_visits(clinic)
    active = _between(visits, "visit_date", year_start, as_of)["patient_id"].nunique()
    this_month = pd.Index(_between(visits, "visit_date", month_start, as_of)["patient_id"].unique())
    first_of_visitors = first.reindex(this_month)
    new = int(((first >= month_start) & (first <= as_of)).sum())
    returning = int((first_of_visitors < month_start).sum())
    return {"active_12m": _count(active, min_count), "visiting_month": _count(len(this_month), min_count),
            "new_month": _count(new, min_count), "returning_month": _count(returning, min_count),
            "registered": _count(int((first <= as_of).sum()), min_count)}


@register_section("retention")
def _retention(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """Share of the patients seen in the previous 12 months who came back in the last 12 months."""
    visits = clinic.visits
    year_start, prior_start = _month_start(as_of, 11), _month_start(as_of, 23)
    prior = pd.Index(_between(visits, "visit_date", prior_start, year_start - pd.Timedelta(days=1))["patient_id"].unique())
    recent = pd.Index(_between(visits, "visit_date", year_start, as_of)["patient_id"].unique())
    retained = int(prior.isin(recent).sum())
    earliest = visits["visit_date"].min()
    return {"base": _count(len(prior), min_count), "retained": _count(retained, min_count),
            "rate": _rate(retained, len(prior), min_count), "window_months": 12,
            "base_from": f"{prior_start:%Y-%m-%d}", "base_to": f"{year_start - pd.Timedelta(days=1):%Y-%m-%d}",
            "history_complete": bool(pd.notna(earliest) and earliest <= prior_start)}


@register_section("no_show")
def _no_show(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """No-show rate of appointments due this month and in the last 12 months (attended + no-show)."""
    appts = clinic.require("appointments", "the no-show KPI")
    out = {}
    for key, start in (("month", _month_start(as_of)), ("last_12m", _month_start(as_of, 11))):
        due = _between(appts, "scheduled_at", start, as_of)
        status = due["status"].astype("object")
        no_shows, attended = int((status == "no_show").sum()), int((status == "attended").sum())
        out[key] = {"appointments": _count(no_shows + attended, min_count), "no_shows": _count(no_shows, min_count),
                    "rate": _rate(no_shows, no_shows + attended, min_count)}
    return out


@register_section("revenue_by_department")
def _revenue(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """Visits, patients and charges (insured / self-pay, KRW) by department this month."""
    month = _between(clinic.visits, "visit_date", _month_start(as_of), as_of)
    dept = month["department"].astype("object").fillna("(unknown)")
    frame = pd.DataFrame({"department": dept.to_numpy(), "patient_id": month["patient_id"].to_numpy(),
                          "insured": month["charge_insured"].astype("float64").fillna(0).to_numpy(),
                          "self_pay": month["charge_self_pay"].astype("float64").fillna(0).to_numpy()})
    table = frame.groupby("department", sort=True).agg(visits=("patient_id", "size"),
                                                       patients=("patient_id", "nunique"),
                                                       insured=("insured", "sum"), self_pay=("self_pay", "sum"))
    table[["insured", "self_pay"]] = table[["insured", "self_pay"]].round().astype("int64")
    table["total"] = table["insured"] + table["self_pay"]
    total = {"visits": _count(len(frame), min_count), "patients": _count(frame["patient_id"].nunique(), min_count),
             "insured": int(table["insured"].sum()), "self_pay": int(table["self_pay"].sum()),
             "total": int(table["total"].sum())}
    shown = suppress_small_counts(table, ["visits", "patients"], min_count, additive="columns",
                                  linked={"insured": "visits", "self_pay": "visits", "total": "visits"})
    suppressed = int(shown["visits"].isna().sum())
    return {"rows": _records(shown.reset_index()), "total": total, "suppressed_rows": suppressed}


@register_section("trend")
def _trend(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """Visits, patients and new patients in each of the last 12 months."""
    visits = _between(clinic.visits, "visit_date", _month_start(as_of, 11), as_of)
    months = pd.period_range(end=as_of.to_period("M"), periods=12, freq="M")
    period = visits["visit_date"].dt.to_period("M")
    by_month = pd.DataFrame({"month": period.to_numpy(), "patient_id": visits["patient_id"].to_numpy()})
    counts = by_month.groupby("month").agg(visits=("patient_id", "size"), patients=("patient_id", "nunique"))
    first = _first_visits(clinic)
    first = first[(first >= months[0].start_time) & (first <= as_of)]
    new = first.dt.to_period("M").value_counts()
    table = pd.DataFrame(index=months)
    table["visits"] = counts["visits"].reindex(months, fill_value=0).astype("int64")
    table["patients"] = counts["patients"].reindex(months, fill_value=0).astype("int64")
    table["new_patients"] = new.reindex(months, fill_value=0).astype("int64")
    table.index = [f"{m}" for m in months]
    shown = suppress_small_counts(table, ["visits", "patients", "new_patients"], min_count, additive="columns")
    return {"rows": _records(shown.rename_axis("month").reset_index())}


# --------------------------------------------------------------------------- the result

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
    def _get(self, section: str, *keys: str) -> Any:
        value: Any = self.sections.get(section, {})
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def headline(self, lang: str = "ko") -> pd.DataFrame:
        """One row per headline KPI: label and formatted value ("<5" where suppressed, "–" if unavailable)."""
        check_lang(lang)
        rows = [("kpi_active_12m", "patients", ("active_12m",), "count"),
                ("kpi_visiting_month", "patients", ("visiting_month",), "count"),
                ("kpi_new_month", "patients", ("new_month",), "count"),
                ("kpi_returning_month", "patients", ("returning_month",), "count"),
                ("kpi_retention_rate", "retention", ("rate",), "rate"),
                ("kpi_no_show_month", "no_show", ("month", "rate"), "rate"),
                ("kpi_no_show_12m", "no_show", ("last_12m", "rate"), "rate"),
                ("kpi_revenue_month", "revenue_by_department", ("total", "total"), "won")]
        shown = []
        for key, section, path, kind in rows:
            value = self._get(section, *path)
            if value is None:
                available = self.sections.get(section, {}).get("available", False)
                text = f"<{self.min_count}" if available and kind == "count" else "–"
            else:
                text = f"{value:.1%}" if kind == "rate" else f"{value:,.0f}" if kind == "won" else f"{value:,}"
            shown.append({label("kpi_name", lang): label(key, lang), label("kpi_value", lang): text})
        return pd.DataFrame(shown)

    def department_table(self, lang: str = "ko") -> pd.DataFrame:
        """Revenue by department this month, with a total row; suppressed cells are missing."""
        check_lang(lang)
        section = self.sections.get("revenue_by_department", {})
        if not section.get("rows"):
            return pd.DataFrame()
        table = pd.DataFrame(section["rows"])
        total = {"department": label("kpi_total", lang), **section["total"]}
        columns = ["department", "visits", "patients", "insured", "self_pay", "total"]
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)[columns]
        for col in columns[1:]:
            table[col] = table[col].astype("Int64")
        return localise_columns(table.rename(columns=lambda c: f"kpi_col_{c}"), lang)

    def headline_view(self, lang: str = "ko"):
        """:meth:`headline` as a display table (no index), for the report page."""
        return self.headline(lang).style.hide(axis="index")

    def department_view(self, lang: str = "ko"):
        """:meth:`department_table` for display: thousands separators, suppressed counts as ``<5``."""
        table = self.department_table(lang)
        if table.empty:
            return table
        counts = [label(f"kpi_col_{c}", lang) for c in ("visits", "patients")]
        money = [label(f"kpi_col_{c}", lang) for c in ("insured", "self_pay", "total")]
        styler = table.style.format("{:,}", subset=counts, na_rep=f"<{self.min_count}")
        return styler.format("{:,}", subset=money, na_rep="–").hide(axis="index")

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
        ax.legend(fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return ax

    def summary(self) -> pd.DataFrame:
        """Headline KPIs in Korean (see :meth:`headline` for English)."""
        return self.headline("ko")

    def _repr_html_(self) -> str:
        return (f"<h4>{escape(self.month)} KPIs (as of {escape(self.as_of)})</h4>"
                + self.headline("ko").to_html(index=False))


def monthly_kpis(clinic: ClinicData, as_of: str | pd.Timestamp, *, sections: list[str] | None = None,
                 min_count: int = DEFAULT_MIN_COUNT) -> MonthlyKpis:
    """Compute the month's KPIs on the clinic as known at `as_of`.

    Parameters
    ----------
    clinic : ClinicData
        The clinic (the whole extract or a snapshot); it is cut to `as_of`
        first (``clinic.snapshot``, skipped when ``clinic.as_of`` already is
        `as_of`), so nothing recorded later is used.
    as_of : str or Timestamp
        The report month's last day. The month is the calendar month of `as_of`.
    sections : list of str, optional
        Registered sections to compute (default: all, in registry order).
    min_count : int
        Counts from 1 to ``min_count - 1`` are suppressed.

    Returns
    -------
    MonthlyKpis

    Raises
    ------
    KeyError
        If a requested section is not registered.
    ValueError
        If `as_of` lies after the clinic's data.

    Examples
    --------
    >>> kpis = monthly_kpis(clinic, "2026-10-31")  # doctest: +SKIP
    >>> kpis.to_dict()["sections"]["patients"]["new_month"]  # doctest: +SKIP
    """
    from crm_analysis.privacy import _check_threshold

    as_of = pd.Timestamp(as_of).normalize()
    min_count = _check_threshold(min_count)
    names = list(SECTIONS) if sections is None else list(sections)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise KeyError(f"unknown KPI sections {unknown}; registered: {list(SECTIONS)}")
    # A clinic already cut (or validated) at as_of holds nothing later: no need to cut it again.
    snap = clinic if clinic.as_of is not None and clinic.as_of == as_of else clinic.snapshot(as_of)
    out = {}
    for name in names:
        try:
            out[name] = {"available": True, **SECTIONS[name](snap, as_of, min_count)}
        except MissingTableError as err:
            out[name] = {"available": False, "reason": str(err)}
    return MonthlyKpis(month=f"{as_of:%Y-%m}", as_of=f"{as_of:%Y-%m-%d}", min_count=min_count, sections=out)


def kpis_for_report(clinic: ClinicData, as_of: str | pd.Timestamp, out_dir: str | Path | None = None) -> MonthlyKpis:
    """The KPIs the report shows: the run's own ``kpis.json`` if it is there, else computed now.

    The monthly run computes the KPIs once (with its suppression threshold)
    and writes ``kpis.json`` into the month's folder before the notebooks run,
    so the report shows exactly the published numbers. Run by hand, the
    notebook computes them with the defaults.

    Parameters
    ----------
    clinic : ClinicData
    as_of : str or Timestamp
    out_dir : str or Path, optional
        The month's folder (the notebooks' ``out_dir`` parameter).

    Returns
    -------
    MonthlyKpis
    """
    as_of = pd.Timestamp(as_of).normalize()
    if out_dir:
        path = Path(out_dir) / KPIS_FILE
        if path.is_file():
            kpis = MonthlyKpis.read(path)
            if kpis.as_of == f"{as_of:%Y-%m-%d}":
                return kpis
    return monthly_kpis(clinic, as_of)
