"""The core KPI sections: counted from the core tables (patients, visits, appointments), no model needed.

Each function takes the clinic as known at `as_of`, the month's last day and
the suppression threshold, and returns a JSON-ready dict; the monthly run
registers them first in :mod:`crm_analysis.monthly.kpis` (their keys are
documented in ``docs/kpis.md``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.clinic import ClinicData
from crm_analysis.ids import id_positions
from crm_analysis.figures import between, month_start, records, shown_count, shown_rate
from crm_analysis.privacy import suppress_small_counts

__all__ = ["patients_kpis", "retention_kpis", "no_show_kpis", "revenue_kpis", "trend_kpis", "first_visits"]


def first_visits(clinic: ClinicData) -> pd.Series:
    """Each patient's first visit day: ``patients.first_visit_date``, else their earliest visit."""
    first = clinic.patients.set_index("patient_id")["first_visit_date"]
    missing = first.isna().to_numpy()
    if missing.any():  # the visits of those patients only (a look-up of ids, not a group-by of every visit)
        visits = clinic.visits
        who = id_positions(visits["patient_id"], first.index[missing])
        seen = who >= 0
        days = visits["visit_date"].to_numpy()[seen]
        earliest = pd.Series(days, dtype=first.dtype).groupby(who[seen]).min()
        filled = first.to_numpy(copy=True)
        filled[np.flatnonzero(missing)[earliest.index.to_numpy()]] = earliest.to_numpy()
        first = pd.Series(filled, index=first.index, name=first.name)
    return first.dropna()


def patients_kpis(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """Active (seen in the last 12 months), visiting, new and returning patients this month."""
    visits = clinic.visits
    this_start, year_start = month_start(as_of), month_start(as_of, 11)
    first = first_visits(clinic)
    active = between(visits, "visit_date", year_start, as_of)["patient_id"].nunique()
    this_month = pd.Index(between(visits, "visit_date", this_start, as_of)["patient_id"].unique())
    first_of_visitors = first.reindex(this_month)
    new = int(((first >= this_start) & (first <= as_of)).sum())
    returning = int((first_of_visitors < this_start).sum())
    return {"active_12m": shown_count(active, min_count), "visiting_month": shown_count(len(this_month), min_count),
            "new_month": shown_count(new, min_count), "returning_month": shown_count(returning, min_count),
            "registered": shown_count(int((first <= as_of).sum()), min_count)}


def retention_kpis(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """Share of the patients seen in the previous 12 months who came back in the last 12 months."""
    visits = clinic.visits
    year_start, prior_start = month_start(as_of, 11), month_start(as_of, 23)
    prior = pd.Index(between(visits, "visit_date", prior_start, year_start - pd.Timedelta(days=1))["patient_id"].unique())
    recent = pd.Index(between(visits, "visit_date", year_start, as_of)["patient_id"].unique())
    retained = int(prior.isin(recent).sum())
    earliest = visits["visit_date"].min()
    return {"base": shown_count(len(prior), min_count), "retained": shown_count(retained, min_count),
            "rate": shown_rate(retained, len(prior), min_count), "window_months": 12,
            "base_from": f"{prior_start:%Y-%m-%d}", "base_to": f"{year_start - pd.Timedelta(days=1):%Y-%m-%d}",
            "history_complete": bool(pd.notna(earliest) and earliest <= prior_start)}


def no_show_kpis(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """No-show rate of appointments due this month and in the last 12 months (attended + no-show)."""
    appts = clinic.require("appointments", "the no-show KPI")
    out = {}
    for key, start in (("month", month_start(as_of)), ("last_12m", month_start(as_of, 11))):
        due = between(appts, "scheduled_at", start, as_of)
        status = due["status"].astype("object")
        no_shows, attended = int((status == "no_show").sum()), int((status == "attended").sum())
        out[key] = {"appointments": shown_count(no_shows + attended, min_count), "no_shows": shown_count(no_shows, min_count),
                    "rate": shown_rate(no_shows, no_shows + attended, min_count)}
    return out


def revenue_kpis(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """Visits, patients and charges (insured / self-pay, KRW) by department this month."""
    month = between(clinic.visits, "visit_date", month_start(as_of), as_of)
    dept = month["department"].astype("object").fillna("(unknown)")
    frame = pd.DataFrame({"department": dept.to_numpy(), "patient_id": month["patient_id"].to_numpy(),
                          "insured": month["charge_insured"].astype("float64").fillna(0).to_numpy(),
                          "self_pay": month["charge_self_pay"].astype("float64").fillna(0).to_numpy()})
    table = frame.groupby("department", sort=True).agg(visits=("patient_id", "size"),
                                                       patients=("patient_id", "nunique"),
                                                       insured=("insured", "sum"), self_pay=("self_pay", "sum"))
    table[["insured", "self_pay"]] = table[["insured", "self_pay"]].round().astype("int64")
    table["total"] = table["insured"] + table["self_pay"]
    total = {"visits": shown_count(len(frame), min_count), "patients": shown_count(frame["patient_id"].nunique(), min_count),
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
    return {"rows": records(shown.reset_index()), "total": total, "suppressed_rows": suppressed}


def trend_kpis(clinic: ClinicData, as_of: pd.Timestamp, min_count: int) -> dict:
    """Visits, patients and new patients in each of the last 12 months."""
    # only the two columns read, and patients and months as integer codes: a year of a large hospital's visits
    # as rows of every column, or as Python strings, takes gigabytes
    visits = between(clinic.visits[["visit_date", "patient_id"]], "visit_date", month_start(as_of, 11), as_of)
    months = pd.period_range(end=as_of.to_period("M"), periods=12, freq="M")
    dates = visits["visit_date"].dt
    month = ((dates.year * 12 + dates.month).to_numpy(dtype=np.int64)
             - (months[0].year * 12 + months[0].month))
    patient, distinct = pd.factorize(visits["patient_id"])
    named, width = patient >= 0, max(len(distinct), 1)
    pairs = np.unique(month[named] * width + patient[named])  # each patient once a month
    counts = pd.DataFrame({"visits": np.bincount(month, minlength=12),
                           "patients": np.bincount(pairs // width, minlength=12)}, index=months)
    first = first_visits(clinic)
    first = first[(first >= months[0].start_time) & (first <= as_of)]
    new = first.dt.to_period("M").value_counts()
    table = pd.DataFrame(index=months)
    table["visits"] = counts["visits"].reindex(months, fill_value=0).astype("int64")
    table["patients"] = counts["patients"].reindex(months, fill_value=0).astype("int64")
    table["new_patients"] = new.reindex(months, fill_value=0).astype("int64")
    table.index = [f"{m}" for m in months]
    shown = suppress_small_counts(table, ["visits", "patients", "new_patients"], min_count, additive="columns")
    return {"rows": records(shown.rename_axis("month").reset_index())}
