"""The appointment-level table of the no-show risk model: features known when the reminders are planned.

:func:`noshow_table` starts from the reminder evaluation's table
(:func:`crm_analysis.reminders.analysis_table.appointment_table`: lead time,
``prior_no_shows`` counted without look-ahead, weekday, hour band,
department, age band, outcomes) and adds, vectorised:

``log_lead``
    ``log1p(lead_days)`` (lead days below 0 read as 0).
``prior_cancellations``
    The patient's cancelled or rescheduled appointments whose cancellation
    was known on a day strictly before this appointment's booking day (the
    ``cancelled_at`` day, or for a move without a date the day after the
    moved appointment's day). The appointment's own cancellation never
    counts.
``first_visit``
    1.0 when the patient has no visit on a day strictly before the booking
    day (visits table; without one, attended appointments), else 0.0.
``age``
    Completed years on the appointment day (missing without a birth date).
``reminder_plan``
    The reminder schedule planned at booking: from the reminder rules'
    roll-outs known at `as_of` (:func:`crm_analysis.reminders.bookings.planned_schedule`;
    ``"pilot"`` for an eligible appointment of a randomised pilot month,
    ``"none"`` for a non-eligible one). Without roll-outs in the rules (e.g. the
    Kaggle export) the steps actually sent by `as_of` (``schedule_sent``).
``upcoming``
    True for appointments scheduled after `as_of`'s day that are still booked
    at `as_of` (only with ``include_upcoming=True``).

Nothing recorded after `as_of` is used: with ``include_upcoming=True`` the
table is built on ``clinic.snapshot(as_of)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.features import completed_years
from crm_analysis.reminders.analysis_table import appointment_table
from crm_analysis.reminders.bookings import planned_schedule
from crm_analysis.reminders.rules import load_rules, rules_within

__all__ = ["noshow_table", "FEATURE_COLUMNS"]

#: Feature name -> the table column(s) it reads (the reasons name these features).
FEATURE_COLUMNS = {
    "lead": ("lead_days", "log_lead"),
    "prior_no_shows": ("prior_no_shows",),
    "prior_cancellations": ("prior_cancellations",),
    "age": ("age",),
    "weekday": ("weekday",),
    "hour": ("hour_band",),
    "department": ("department",),
    "first_visit": ("first_visit",),
    "reminder": ("reminder_plan",),
}


def _days(values: pd.Series) -> np.ndarray:
    """Day numbers (int64, days since the epoch; missing -> a very large number)."""
    out = values.to_numpy("datetime64[ns]").astype("datetime64[D]")
    mask = np.isnat(out)
    days = out.astype(np.int64)
    days[mask] = np.iinfo(np.int32).max
    return days


def _count_before(patient: np.ndarray, event_patient: np.ndarray, event_day: np.ndarray,
                  cutoff_day: np.ndarray) -> np.ndarray:
    """Per row: events of the same patient on a day strictly before the row's `cutoff_day`.

    One sorted composite key (patient, day) and two binary searches per row.
    """
    if len(patient) == 0:
        return np.zeros(0, dtype=np.int64)
    t0 = min(event_day.min(initial=0), cutoff_day.min(initial=0))
    span = np.int64(max(event_day.max(initial=0), cutoff_day.max(initial=0)) - t0 + 2)
    keys = np.sort(event_patient.astype(np.int64) * span + (event_day - t0))
    base = patient.astype(np.int64) * span
    return (np.searchsorted(keys, base + (cutoff_day - t0), side="left")
            - np.searchsorted(keys, base, side="left")).astype(np.int64)


def _patient_codes(*columns: pd.Series) -> list[np.ndarray]:
    """Integer codes of patient-id columns on one scale (one hash pass; text only when the id types differ)."""
    try:
        codes, _ = pd.factorize(pd.concat([pd.Series(c.array) for c in columns], ignore_index=True))
    except TypeError:
        codes, _ = pd.factorize(pd.concat([pd.Series(c.astype(str).to_numpy()) for c in columns], ignore_index=True))
    return np.split(codes, np.cumsum([len(c) for c in columns])[:-1])


def _reminder_plan(table: pd.DataFrame, rules, as_of: pd.Timestamp, first=None) -> pd.Series:
    r = load_rules(rules)
    if len(table) and r["rollouts"]:
        known, _ = rules_within(r, table["scheduled_at"].min() if first is None else first, as_of)
        if known["rollouts"]:
            plan, _ = planned_schedule(table, known)
            return plan.astype(object).fillna("pilot").astype(str)
    return table["schedule_sent"].astype(str)


def _of_patients(clinic, patients):
    """`clinic` with only the records of `patients` (ids): their appointments, visits, reminders, ..."""
    from dataclasses import replace

    ids = list(pd.unique(pd.Series(list(patients), dtype=object).astype(str)))
    tables = {}
    for name, df in clinic.tables.items():
        if "patient_id" in df:
            df = df.loc[_isin_text(df["patient_id"], ids)]
        tables[name] = df
    if "appointments" in tables and "reminders" in tables and "appointment_id" in tables["reminders"]:
        r = tables["reminders"]
        kept = list(tables["appointments"]["appointment_id"].astype(str))
        tables["reminders"] = r.loc[_isin_text(r["appointment_id"], kept)]
    return replace(clinic, tables=tables)


def _isin_text(values: pd.Series, texts: list[str]) -> np.ndarray:
    """Whether each id, as text, is one of `texts` (text ids compared as they are: no per-row conversion)."""
    if isinstance(values.dtype, pd.StringDtype) and str(values.dtype.storage).startswith("pyarrow"):
        import pyarrow as pa
        import pyarrow.compute as pc

        ids = pa.array(values.array)
        return pc.is_in(ids, value_set=pa.array(texts, type=ids.type)).to_numpy(zero_copy_only=False).astype(bool)
    return values.astype(str).isin(pd.Index(texts)).to_numpy()


def noshow_table(clinic, as_of, rules=None, *, include_upcoming: bool = False, patients=None,
                 base: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per appointment with the no-show model's features, known when its reminders were planned.

    Parameters
    ----------
    clinic : ClinicData
        Needs the appointments table; visits, patients and reminders are used when present.
    as_of : str or Timestamp
        The analysis date (end of that day). Nothing recorded later is used.
    rules : path, mapping or None
        Reminder rules (:func:`crm_analysis.reminders.rules.load_rules`); their roll-outs give the
        planned reminder schedule.
    include_upcoming : bool
        Also return the appointments scheduled after `as_of`'s day and booked by it (``upcoming`` is
        True for those still booked), built from ``clinic.snapshot(as_of)``.
    patients : iterable of patient ids, optional
        Only the rows of these patients, built from their own records (fast: the daily call list needs a
        few hundred patients). Every feature has the value it has in the whole clinic's table: each is
        counted per patient, and the two that read the whole table (the reminder roll-outs in the data's
        window, ``years``) are taken from the whole clinic's first appointment.
    base : DataFrame, optional
        ``appointment_table(clinic, as_of, rules)`` when it was made already (the reminder evaluation's
        ``table``, for the same clinic, day and rules), so it is not built twice; not with `include_upcoming`
        or `patients`.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`~crm_analysis.reminders.analysis_table.appointment_table` plus
        ``log_lead``, ``prior_cancellations``, ``first_visit``, ``age``, ``reminder_plan`` and
        ``upcoming`` (see the module docstring). The input is not modified.

    Raises
    ------
    MissingTableError
        If the clinic has no appointments table.
    """
    as_of = pd.Timestamp(as_of).normalize()
    end = as_of + pd.Timedelta(days=1)
    if base is not None and (include_upcoming or patients is not None):
        raise ValueError("base is the whole clinic's appointment table at as_of: not with include_upcoming or "
                         "patients")
    first_day = None
    if patients is not None:
        appts = clinic.require("appointments", "the no-show risk model")
        booked = appts["booked_at"] < end
        if not include_upcoming:
            booked &= appts["scheduled_at"] < end
        first_day = appts.loc[booked.fillna(False).to_numpy(), "scheduled_at"].min()
        first_day = None if pd.isna(first_day) else first_day
        clinic = _of_patients(clinic, patients)
    if include_upcoming:
        known = clinic.snapshot(as_of)
        appts = known.require("appointments", "the no-show risk model")
        last = appts["scheduled_at"].max()
        table = appointment_table(known, max(last, as_of) if pd.notna(last) else as_of, rules)
        source = known
    else:
        table = appointment_table(clinic, as_of, rules) if base is None else base
        source = clinic
    t = table.copy()
    t["log_lead"] = np.log1p(t["lead_days"].clip(lower=0).to_numpy(dtype=float))
    booking_day = _days(t["booked_at"])

    appts = source.tables["appointments"]
    appts = appts.loc[(appts["booked_at"] < end).fillna(False).to_numpy()]
    status = appts["status"].astype(str)
    dated = appts["cancelled_at"].notna()
    by_then = np.where(dated, (appts["cancelled_at"] < end).fillna(False), (appts["scheduled_at"] < end).fillna(False))
    moved = status.isin(["cancelled", "rescheduled"]).to_numpy() & by_then
    ev = appts.loc[moved]
    known_day = np.where(ev["cancelled_at"].notna().to_numpy(), _days(ev["cancelled_at"]),
                         _days(ev["scheduled_at"]) + 1)

    visits = source.tables.get("visits")
    if visits is not None:
        visits = visits.loc[(visits["visit_date"] < end).fillna(False).to_numpy()]
        v_patient, v_day = visits["patient_id"], _days(visits["visit_date"])
    else:
        att = appts.loc[(status == "attended").to_numpy()]
        v_patient, v_day = att["patient_id"], _days(att["scheduled_at"])
    patients = source.tables.get("patients")
    if patients is None or "birth_date" not in patients:
        patients = pd.DataFrame({"patient_id": t["patient_id"].iloc[:0],
                                 "birth_date": pd.Series([], dtype="datetime64[ns]")})
    patient, ev_patient, v_code, p_code = _patient_codes(t["patient_id"], ev["patient_id"], v_patient,
                                                         patients["patient_id"])
    t["prior_cancellations"] = _count_before(patient, ev_patient, known_day, booking_day)
    t["first_visit"] = (_count_before(patient, v_code, v_day, booking_day) == 0).astype(float)

    size = max(patient.max(initial=-1), p_code.max(initial=-1)) + 2
    first = np.full(size, -1)
    found, at = np.unique(p_code, return_index=True)
    first[found] = at  # a patient listed twice: the first row
    row = first[patient]
    birth = patients["birth_date"].to_numpy("datetime64[ns]")
    birth = np.where(row >= 0, birth[np.maximum(row, 0)] if len(birth) else np.datetime64("NaT"), np.datetime64("NaT"))
    age = completed_years(pd.Series(birth, index=t.index), t["scheduled_date"]).astype(float)
    t["age"] = age.where((age >= 0) & (age <= 110))
    if first_day is not None and len(t):  # as in the whole clinic's table
        t["years"] = (t["scheduled_date"] - first_day.normalize()).dt.days / 365.25
    t["reminder_plan"] = _reminder_plan(t, rules, as_of, first_day).to_numpy()
    t["upcoming"] = ((t["scheduled_at"] >= end) & (t["status"] == "booked")).to_numpy()
    return t
