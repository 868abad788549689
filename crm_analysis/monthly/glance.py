"""The month at a glance: the KPI tiles of the report's first page, each with 13 months of history.

Every tile is counted from the core tables (patients, visits, appointments,
reminders) at each of the last 13 month ends, with the same definitions as
the core KPI sections (:mod:`crm_analysis.monthly.core`), so a tile's "this
month" equals the figure of ``kpis.json``'s other sections. A tile shows this
month, last month and the same month last year (the first of the 13 points),
with the change; counts from 1 to ``min_count - 1`` are hidden, and so are
rates built on them (:func:`crm_analysis.figures.shown_rate`).

Computed month by month over whole columns (13 vectorised passes), never
patient by patient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_analysis.clinic import ClinicData
from crm_analysis.figures import shown_count, shown_rate
from crm_analysis.ids import id_positions
from crm_analysis.monthly.core import first_visits

__all__ = ["TILES", "Tile", "glance_kpis", "tile_history", "HISTORY_MONTHS"]

#: Points of history on each tile: this month and the 12 before it (the first is the same month last year).
HISTORY_MONTHS = 13


@dataclass(frozen=True)
class Tile:
    """One KPI tile: its key (a label key too), what it counts, and which way is better."""

    key: str
    kind: str  # "count", "rate" or "krw"
    better: str  # "up" or "down"


#: The tiles, in the order page 1 shows them.
TILES: tuple[Tile, ...] = (
    Tile("visiting_month", "count", "up"),
    Tile("new_month", "count", "up"),
    Tile("visits_month", "count", "up"),
    Tile("active_12m", "count", "up"),
    Tile("retention_rate", "rate", "up"),
    Tile("no_show_rate", "rate", "down"),
    Tile("reminded_share", "rate", "up"),
    Tile("charges_month", "krw", "up"),
)


def _day_codes(values: pd.Series) -> np.ndarray:
    """Days since the epoch (int64); missing as the largest value, so no window holds it."""
    days = values.dt.floor("D").to_numpy(dtype="datetime64[D]").astype("int64")
    return np.where(values.isna().to_numpy(), np.iinfo(np.int64).max, days)


def _day(moment: pd.Timestamp) -> int:
    return int(np.datetime64(moment.date(), "D").astype("int64"))


def _reminded(appointments: pd.DataFrame, reminders: pd.DataFrame) -> np.ndarray:
    """Whether each appointment has a reminder: the reminders' places among the appointments (numbered ids are
    found without hashing), not a hash set of twenty million reminder ids."""
    where = id_positions(reminders["appointment_id"], appointments["appointment_id"])
    flags = np.zeros(len(appointments), dtype=bool)
    flags[where[where >= 0]] = True
    return flags


def _codes(ids: pd.Series) -> np.ndarray:
    """A number per distinct id. Arrow text ids are factorised as they are: turned into Python strings first,
    twenty million visits would take 1.3 GiB and most of the section's time."""
    if not isinstance(ids.dtype, pd.StringDtype):
        ids = ids.astype(str)
    return pd.factorize(ids)[0]


def tile_history(clinic: ClinicData, as_of: str | pd.Timestamp, months: int = HISTORY_MONTHS) -> pd.DataFrame:
    """The tiles' raw figures at each of the last `months` month ends (no suppression).

    Parameters
    ----------
    clinic : ClinicData
        As known at `as_of` (a snapshot: nothing later is used).
    as_of : str or Timestamp
        The report month's last day; earlier points are the ends of the months before.
    months : int

    Returns
    -------
    DataFrame
        Indexed by month (``YYYY-MM``), oldest first: ``visiting_month``, ``new_month``, ``visits_month``,
        ``active_12m``, ``retention_base``, ``retained``, ``appointments``, ``no_shows``,
        ``reminder_eligible``, ``reminded``, ``charges_month``, ``registered``.
    """
    as_of = pd.Timestamp(as_of).normalize()
    visits = clinic.visits
    v_day = _day_codes(visits["visit_date"])
    order = np.argsort(v_day, kind="stable")  # windows of days become slices
    v_day = v_day[order]
    v_pid = _codes(visits["patient_id"])[order]
    n_patients = int(v_pid.max()) + 1 if len(v_pid) else 0
    charges = ((visits["charge_insured"].astype("float64").fillna(0)
                + visits["charge_self_pay"].astype("float64").fillna(0)).to_numpy()[order]
               if {"charge_insured", "charge_self_pay"} <= set(visits.columns) else np.zeros(len(visits)))
    firsts = np.sort(_day_codes(first_visits(clinic)))  # as the patients KPI counts new and registered patients
    appts = clinic.tables.get("appointments")
    reminders = clinic.tables.get("reminders")
    if appts is not None:
        a_day = _day_codes(appts["scheduled_at"])
        a_order = np.argsort(a_day, kind="stable")
        a_day = a_day[a_order]
        status = appts["status"]  # compared as it is (categories, not one Python object per appointment)
        known = status.isin(["attended", "no_show"]).to_numpy(dtype=bool)[a_order]
        no_show = status.eq("no_show").to_numpy(dtype=bool, na_value=False)[a_order]
        reminded = (_reminded(appts, reminders)[a_order]
                    if reminders is not None and "appointment_id" in reminders else np.zeros(len(appts), bool))

    def span(days: np.ndarray, start: int, end: int) -> slice:
        return slice(int(np.searchsorted(days, start, "left")), int(np.searchsorted(days, end, "right")))

    def seen(window: slice) -> np.ndarray:
        flags = np.zeros(n_patients, bool)
        flags[v_pid[window]] = True
        return flags

    rows = {}
    for back in range(months - 1, -1, -1):
        period = as_of.to_period("M") - back
        e = _day(min(period.end_time.normalize(), as_of))
        m0, y0, p0 = _day(period.start_time), _day((period - 11).start_time), _day((period - 23).start_time)
        month, year, prior = span(v_day, m0, e), seen(span(v_day, y0, e)), seen(span(v_day, p0, y0 - 1))
        row = {"visiting_month": int(seen(month).sum()),
               "new_month": int(np.searchsorted(firsts, e, "right") - np.searchsorted(firsts, m0, "left")),
               "visits_month": month.stop - month.start, "active_12m": int(year.sum()),
               "retention_base": int(prior.sum()), "retained": int((prior & year).sum()),
               "charges_month": float(charges[month].sum()), "registered": int(np.searchsorted(firsts, e, "right"))}
        if appts is not None:
            due = span(a_day, m0, e)
            row.update(appointments=int(known[due].sum()), no_shows=int((known[due] & no_show[due]).sum()),
                       reminder_eligible=int(known[due].sum()), reminded=int((known[due] & reminded[due]).sum()))
        rows[f"{period}"] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _figure(row: pd.Series, tile: Tile, min_count: int) -> float | int | None:
    key = tile.key
    if key == "retention_rate":
        return shown_rate(int(row["retained"]), int(row["retention_base"]), min_count)
    if key == "no_show_rate":
        if "appointments" not in row or pd.isna(row["appointments"]):
            return None
        return shown_rate(int(row["no_shows"]), int(row["appointments"]), min_count)
    if key == "reminded_share":
        if "reminder_eligible" not in row or pd.isna(row["reminder_eligible"]):
            return None
        return shown_rate(int(row["reminded"]), int(row["reminder_eligible"]), min_count)
    if key == "charges_month":
        # money says nothing about a person unless few patients make it up
        return int(round(row[key])) if shown_count(int(row["visiting_month"]), min_count) else None
    return shown_count(int(row[key]), min_count)


def glance_kpis(clinic: ClinicData, as_of: str | pd.Timestamp, min_count: int = 5,
                months: int = HISTORY_MONTHS) -> dict:
    """The ``glance`` section of ``kpis.json``: each tile's 13-month series, this month, last month and the
    same month last year.

    Parameters
    ----------
    clinic : ClinicData
        As known at `as_of`.
    as_of : str or Timestamp
    min_count : int
        Counts from 1 to ``min_count - 1`` are hidden (None), with the rates built on them.
    months : int
        Points of history (13: the same month last year is the first).

    Returns
    -------
    dict
        ``months`` (``YYYY-MM``, oldest first), ``covered_from`` (the first of them the clinic's visits
        reach) and ``tiles``: a list of ``{key, kind, better, series, this, last_month, last_year}``; a value
        the clinic's history does not reach (a month before its first visit) is None. A clinic without
        appointments has no no-show or reminder tile, one without charges no charges tile.
    """
    history = tile_history(clinic, as_of, months)
    first_month = clinic.visits["visit_date"].min()
    covered = [pd.notna(first_month) and pd.Period(m, "M") >= first_month.to_period("M") for m in history.index]
    visits = clinic.visits
    charged = any(c in visits and visits[c].notna().any() for c in ("charge_insured", "charge_self_pay"))
    tiles = []
    for tile in TILES:
        if tile.key in ("no_show_rate", "reminded_share") and "appointments" not in history:
            continue
        if tile.key == "reminded_share" and "reminders" not in clinic.tables:
            continue
        if tile.key == "charges_month" and not charged:  # an export without charges: no tile, not 0 won
            continue
        series = [_figure(row, tile, min_count) if ok else None for (_, row), ok in zip(history.iterrows(), covered)]
        tiles.append({"key": tile.key, "kind": tile.kind, "better": tile.better, "series": series,
                      "this": series[-1], "last_month": series[-2] if len(series) > 1 else None,
                      "last_year": series[0] if len(series) >= 13 else None})
    first = next((m for m, ok in zip(history.index, covered) if ok), None)
    return {"months": list(history.index), "covered_from": first, "tiles": tiles}
