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
lists, dicts, None). What a section needs from the data is declared once in
:data:`crm_analysis.sufficiency.REQUIREMENTS` and checked before it runs; a
section whose data falls short (or that raises
:class:`~crm_analysis.exceptions.InsufficientDataError` itself, e.g. a model
that cannot be fitted on thin data) appears as ``{"available": false,
"reason": ..., "reason_ko": ...}`` with its declared figures ``null``,
instead of failing the month.

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
from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.i18n import check_lang, label, localise_columns
from crm_analysis.privacy import DEFAULT_MIN_COUNT, suppress_small_counts
from crm_analysis.sufficiency import REQUIREMENTS, SHORT_OF_DATA, require

__all__ = ["SCHEMA_VERSION", "SECTIONS", "CORE_SECTIONS", "ANALYSIS_SECTIONS", "register_section", "monthly_kpis", "MonthlyKpis", "kpis_for_report",
           "KPIS_FILE"]

#: Bumped when a key of kpis.json changes meaning or disappears.
SCHEMA_VERSION = 1
#: The file name the monthly run writes.
KPIS_FILE = "kpis.json"

Section = Callable[[ClinicData, pd.Timestamp, int], dict]

#: The basic sections, counted from the core tables (a run without analysis hooks computes only these).
CORE_SECTIONS = ("patients", "retention", "no_show", "revenue_by_department", "trend")
#: Sections defined (and registered by default) in this module that use the analysis packages.
ANALYSIS_SECTIONS = ("reminder_effect", "vip", "campaigns")

#: Registered sections, in report order: name -> function(clinic, as_of, min_count) -> dict.
SECTIONS: dict[str, Section] = {}
#: The headline figures of each section: ``null`` in kpis.json when the section is skipped.
FIGURES: dict[str, tuple[str, ...]] = {}


def register_section(name: str, func: Section | None = None, *, replace: bool = False,
                     figures: tuple[str, ...] = ()):
    """Add a KPI section (usable as a decorator).

    Parameters
    ----------
    name : str
        Key of the section in ``kpis.json`` (document it in ``docs/kpis.md``).
    func : callable, optional
        ``func(clinic, as_of, min_count) -> dict``; omit to use as a decorator.
    replace : bool
        Allow replacing a section of the same name.
    figures : tuple of str
        Top-level keys the section returns that are shown as ``null`` when the
        data is insufficient (see :mod:`crm_analysis.sufficiency`; declare the
        section's needs there under the same name).

    Raises
    ------
    ValueError
        If `name` is taken and `replace` is False.
    """
    def add(f: Section) -> Section:
        if name in SECTIONS and not replace:
            raise ValueError(f"a KPI section named {name!r} is already registered; pass replace=True to replace it")
        SECTIONS[name] = f
        FIGURES[name] = tuple(figures)
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

@register_section("patients", figures=("active_12m", "visiting_month", "new_month", "returning_month", "registered"))
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


@register_section("retention", figures=("base", "retained", "rate"))
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


@register_section("no_show", figures=("month", "last_12m"))
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


@register_section("revenue_by_department", figures=("rows", "total"))
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
    # A department's charges tell about its patients: hide them where the patient count is hidden too (three
    # patients can make five visits). Each money column then hides no row or at least two, as both counts do.
    money = ["insured", "self_pay", "total"]
    hidden_patients = shown["patients"].isna().to_numpy()
    for col in money:
        shown[col] = shown[col].mask(hidden_patients)
    suppressed = int(shown[["visits", "patients"]].isna().any(axis=1).sum())
    return {"rows": _records(shown.reset_index()), "total": total, "suppressed_rows": suppressed}


@register_section("trend", figures=("rows",))
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


# --------------------------------------------------------------------------- sections built on the analyses
# Defined here and registered by default: they need only package code. Each imports its analysis lazily,
# so importing this module stays cheap and free of import cycles.

def _round(value: Any, digits: int = 4) -> float | None:
    """A float rounded to `digits` decimals; None for missing / NaN / infinite."""
    if value is None or value is pd.NA:
        return None
    value = float(value)
    return round(value, digits) if np.isfinite(value) else None


def _p_value(value: Any) -> float | None:
    """A p-value to 3 significant digits (small ones stay visible as 1.23e-07)."""
    value = _round(value, 300)
    return None if value is None else float(f"{value:.3g}")


@register_section("reminder_effect", figures=("risk_difference", "ci_low", "ci_high", "p_value", "appointments"))
def _reminder_effect(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """The adjusted no-show effect of the current reminder regime (95% CI) and this month's no-show rate."""
    from crm_analysis.exceptions import CrmAnalysisError
    from crm_analysis.reminders import ReminderEffectModel, appointment_table, load_rules, period_masks

    table = appointment_table(clinic, as_of)  # MissingTableError without appointments
    analysed = table["analysed"].to_numpy(dtype=bool)
    reminded = analysed & table["reminded"].to_numpy(dtype=bool)
    if not reminded.any() or reminded.sum() == analysed.sum():
        raise InsufficientDataError("reminder_effect",
                            "Reminder effect: no analysed appointment up to as_of went without a reminder (or none "
                            "had one), so there is nothing to compare; check that the reminders table is complete.",
                            "예약 알림 효과: 알림을 받은 예약과 받지 않은 예약이 모두 있어야 비교할 수 있는데 한쪽이 "
                            "없습니다. 알림 발송 기록이 빠짐없이 들어왔는지 확인하세요.")
    rules = load_rules()
    periods = {name: mask for name, mask in period_masks(table, rules).items() if name != "all" and mask.any()}
    if periods:  # the current regime: the last roll-out period with appointments in the data
        regime, mask = list(periods.items())[-1]
        since = next((f"{pd.Timestamp(r['date']):%Y-%m-%d}" for r in reversed(rules["rollouts"] or [])
                      if str(r.get("schedule")) == regime), None)
        group = f"eligible appointments since the roll-out of {regime}"
    else:  # no roll-out history in the rules: the appointments that were reminded
        regime, mask, since, group = "as received", reminded, None, "appointments that received a reminder"
    try:
        model = ReminderEffectModel(rules, conf_level=0.95).fit(table)
        rd, _ = model.marginal_effect(table, mask, estimand=f"{group}: no-show rate with reminders as received "
                                                            "minus none")
    except InsufficientDataError:
        raise
    except CrmAnalysisError as err:
        raise InsufficientDataError("reminder_effect", f"Reminder effect: the reminder model could not be fitted on this "
                                               f"clinic's data ({err}).",
                            f"예약 알림 효과: 이 병원 자료로는 알림 효과 모형을 추정할 수 없었습니다 ({err}).") from None
    month = (table["scheduled_at"] >= _month_start(as_of)).to_numpy() & analysed
    n_appts, n_patients = int(mask.sum()), int(rd.extras["n_patients"])
    shown = _count(n_appts, min_count) is not None and _count(n_patients, min_count) is not None
    return {"regime": regime, "regime_since": since, "estimand": group,
            "risk_difference": _round(rd.estimate) if shown else None,
            "ci_low": _round(rd.ci_low) if shown else None, "ci_high": _round(rd.ci_high) if shown else None,
            "p_value": _p_value(rd.p_value) if shown else None, "conf_level": 0.95,
            "rate_with_reminders": _round(rd.extras["mean_p_treated"]) if shown else None,
            "rate_without_reminders": _round(rd.extras["mean_p_control"]) if shown else None,
            "appointments": _count(n_appts, min_count), "patients": _count(n_patients, min_count),
            "method": rd.method,
            "no_show_month": _no_show(clinic, as_of, min_count)["month"],
            "reminded_month": _count(int((month & reminded).sum()), min_count),
            "reminded_share_month": _rate(int((month & reminded).sum()), int(month.sum()), min_count)}


def _hide_vip_partner(moves: dict) -> dict:
    """Secondary suppression of ``count = count_before + entered - left``: a lone hidden value takes its partner."""
    hidden = [k for k, v in moves.items() if v is None]
    if len(hidden) != 1:
        return moves
    partner = {"count": "count_before", "count_before": "count", "entered": "left", "left": "entered"}[hidden[0]]
    return {**moves, partner: None}


@register_section("vip", figures=("count", "entered", "left", "qualified", "segments"))
def _vip(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """VIPs now and at the previous month's end, who entered and left, and the RFM segment sizes."""
    from crm_analysis.features import patient_features
    from crm_analysis.value.migration import NOT_REGISTERED, previous_month_end, segment_migration
    from crm_analysis.value.vip import select_vips, vip_rules

    before = previous_month_end(as_of)
    vips = select_vips(patient_features(clinic, as_of), as_of)
    moves = segment_migration(clinic, before, as_of)
    now, entered, left = int(vips["selected"].sum()), len(moves.vip_entered), len(moves.vip_left)
    counts = moves.counts
    old = counts.drop(index=NOT_REGISTERED, errors="ignore")
    table = pd.DataFrame({"patients_before": old.sum(axis=1).reindex(counts.columns, fill_value=0),
                          "patients_now": counts.sum(axis=0),
                          "stayed": pd.Series(np.diag(old.reindex(columns=old.index).to_numpy()), index=old.index)
                          .reindex(counts.columns, fill_value=0)}).astype("int64")
    shown = suppress_small_counts(table, list(table.columns), min_count, additive="columns")
    new_since = int(counts.loc[NOT_REGISTERED].sum()) if NOT_REGISTERED in counts.index else 0
    # count = count_before + entered - left: one hidden number among the four is the others' sum, so its
    # partner is hidden too (secondary suppression).
    moves = _hide_vip_partner({"count": _count(now, min_count), "count_before": _count(now - entered + left, min_count),
                               "entered": _count(entered, min_count), "left": _count(left, min_count)})
    return {"before_as_of": f"{before:%Y-%m-%d}", **moves, "qualified": _count(len(vips), min_count),
            "capacity": vip_rules()["capacity"],
            "segments": _records(shown.rename_axis("segment").reset_index()),
            "new_patients_since": _count(new_since, min_count),
            "suppressed_rows": int(shown.isna().any(axis=1).sum())}


def _lift_rows(per: pd.DataFrame, overall, name: str, min_count: int) -> tuple[list[dict], dict | None]:
    """Campaign lift rows and the pooled line, counts suppressed (secondary too), lifts hidden with them."""
    counts = ["n_sent", "n_holdout", "returned_sent", "returned_holdout"]
    if per.empty:
        return [], None
    t = per.set_index("campaign_id")
    t = t.assign(returned_sent=(t["rate_sent"] * t["n_sent"]).round().astype("int64"),
                 returned_holdout=(t["rate_holdout"] * t["n_holdout"]).round().astype("int64"))
    t.loc["(total)", counts] = t[counts].sum()
    t[counts] = t[counts].astype("int64")
    hidden = suppress_small_counts(t[counts], counts, min_count, additive="columns", total_row="(total)").isna()
    rows = []
    for cid, row in t.drop(index="(total)").iterrows():
        h = hidden.loc[cid]
        ok = not h.any()
        rows.append({name: str(cid), "first_sent": f"{row['first_sent']:%Y-%m-%d}",
                     **{c: None if h[c] else int(row[c]) for c in counts},
                     "rate_sent": None if h["n_sent"] or h["returned_sent"] else _round(row["rate_sent"]),
                     "rate_holdout": None if h["n_holdout"] or h["returned_holdout"] else _round(row["rate_holdout"]),
                     "lift": _round(row["lift"]) if ok else None,
                     "ci_low": _round(row["lift_ci_low"]) if ok else None,
                     "ci_high": _round(row["lift_ci_high"]) if ok else None,
                     "p_value": _p_value(row["p_value"]) if ok else None})
    h, tot = hidden.loc["(total)"], t.loc["(total)"]
    ok = not h.any()
    pooled = {**{c: None if h[c] else int(tot[c]) for c in counts},
              "lift": _round(overall.estimate) if ok else None, "ci_low": _round(overall.ci_low) if ok else None,
              "ci_high": _round(overall.ci_high) if ok else None, "p_value": _p_value(overall.p_value) if ok else None}
    return rows, pooled


@register_section("campaigns", figures=("last_month", "last_12m"))
def _campaigns(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """Return-rate lift (sent − holdout) of last month's campaign runs and of the last 12 months' campaigns by kind."""
    from crm_analysis.campaigns import evaluate_campaigns, load_campaigns

    contacts = clinic.require("contacts", "the campaign-lift KPI")
    window = int(load_campaigns().evaluation.get("window_days", 30))
    out: dict[str, Any] = {"window_days": window, "conf_level": 0.95}
    closed_by = as_of - pd.Timedelta(days=window)  # a contact sent on or before this day has a closed window
    for key, start, end, by, name in (("last_month", _month_start(as_of, 1), _month_start(as_of) - pd.Timedelta(days=1),
                                       "run", "campaign_id"),
                                      ("last_12m", _month_start(as_of, 11), as_of, "campaign", "kind")):
        ev = evaluate_campaigns(clinic, as_of, sent_from=start, sent_to=end, by=by, conf_level=0.95)
        rows, pooled = _lift_rows(ev.per_campaign, ev.overall, name, min_count)
        sent = _between(contacts, "sent_at", start, end)["sent_at"].dt.normalize()
        out[key] = {"sent_from": f"{start:%Y-%m-%d}", "sent_to": f"{end:%Y-%m-%d}", "rows": rows, "overall": pooled,
                    "pending_contacts": _count(int((sent > closed_by).sum()), min_count),
                    "suppressed_rows": sum(any(r[c] is None for c in ("n_sent", "n_holdout", "returned_sent",
                                                                     "returned_holdout")) for r in rows)}
    return out


# --------------------------------------------------------------------------- the result

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
        return (table.rename(columns=names).style.format(escape="html").hide(axis="index")
                .set_properties(**{"text-align": "left"}))

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
        rows = [{**r, "campaign": r[name]} for r in block["rows"]]
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
        return table.style.format("{:,}", subset=counts, na_rep=f"<{self.min_count}").hide(axis="index")

    def campaign_view(self, lang: str = "ko", period: str = "last_12m"):
        """:meth:`campaign_table` for display: hidden counts as ``<5``, hidden rates as "–"."""
        table = self.campaign_table(lang, period)
        if table.empty:
            return table
        counts = [label(f"kpi_col_{c}", lang) for c in ("n_sent", "n_holdout")]
        rates = [label(f"kpi_col_{c}", lang) for c in ("rate_sent", "rate_holdout")]
        styler = table.style.format("{:,}", subset=counts, na_rep=f"<{self.min_count}")
        return styler.format("{:.1f}%", subset=rates, na_rep="–").hide(axis="index")

    def department_table(self, lang: str = "ko") -> pd.DataFrame:
        """Revenue by department this month, with a total row; suppressed cells are missing."""
        check_lang(lang)
        section = self._require("revenue_by_department")
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
            if name in REQUIREMENTS:
                require(name, snap, as_of)
            out[name] = {"available": True, **SECTIONS[name](snap, as_of, min_count)}
        except InsufficientDataError as err:
            out[name] = {"available": False, **dict.fromkeys(FIGURES.get(name, ()), None),
                         "reason": err.reason, "reason_ko": err.reason_ko}
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
