"""The appointment-level analysis table behind every reminder estimate.

One row per appointment scheduled on or before `as_of` (later ones have no
outcome yet). Outcomes, exposure and covariates are computed from the
appointments, reminders, visits and patients tables with vectorised pandas.

Outcomes
    ``no_show`` is 1 for a no-show and 0 for an attended appointment, and
    missing for cancelled, rescheduled and still-booked ones: **the no-show rate
    is no-shows / (attended + no-shows)**, i.e. among appointments that were
    not cancelled. Reminders also make patients cancel early, so cancellation
    is a separate outcome: ``cancelled`` is 1 for cancelled or rescheduled and
    0 for attended or no-show (missing while still booked).

Exposure
    From the reminders table. ``n_sent`` messages were sent and
    ``n_delivered`` of them delivered (a missing ``delivered`` flag, as in
    exports that only record "SMS received", counts as delivered). A schedule
    step (``3d``, ``1d``, ``2h`` or ``unknown``) counts as received when any
    of its messages (KakaoTalk or its SMS fallback) was delivered:
    ``rem_<step>`` is 0/1, ``schedule`` the received steps joined by ``+``
    (``none`` when nothing arrived) and ``schedule_sent`` the steps sent.
    ``reminded`` = at least one step received; ``sent_any`` = at least one
    message sent (a row is written even when delivery fails).
    ``allocated_reminder`` is the randomised pilot's allocation from the
    appointments' ``reminder_arm`` column (True: reminder arm, False: control;
    missing outside the pilot or when the export has no such column).
    ``msgs_<channel>`` counts messages per channel.

Covariates
    ``lead_days`` (calendar days from the booking date to the appointment
    date), ``eligible`` (lead_days >= the rules' ``eligible_min_lead_days``),
    ``lead_band``, ``weekday``, ``hour`` and ``hour_band`` (missing / "unknown"
    when the export records days only), ``department``, ``prior_no_shows``
    (the patient's no-shows known when this appointment's reminders were
    planned, see below), ``prior_visits`` (visits before the appointment day)
    and ``prior_visits_band``,
    ``age_band`` at the appointment, ``sex``, ``month`` (scheduled month),
    ``month_of_year`` and ``years`` (years since the first appointment in the
    data, for a trend).

Earlier no-shows
    A covariate must be known before the treatment. A programme plans an
    appointment's reminders (3 days, 1 day, 2 hours before) when the
    appointment is booked, so ``prior_no_shows`` counts only the no-shows
    known at ``booked_at``: appointments scheduled strictly before the booking
    moment, or, when the export records days only, on a day strictly before
    the booking day (a day's outcome is known when the day is over). A sibling
    appointment of the same day, which the same reminders affected, never
    counts, whatever the order of the ids; a no-show between the booking and
    the appointment does not count either.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_analysis.clinic import ClinicData
from crm_analysis.features import age_band, completed_years
from crm_analysis.reminders.rules import load_rules

__all__ = ["appointment_table", "step_columns", "STEP_ORDER", "TEXT_COLUMNS"]

#: Canonical order of schedule steps in labels such as ``3d+1d+2h``.
STEP_ORDER = ("3d", "1d", "2h", "unknown")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = np.array([f"{m:02d}" for m in range(13)], dtype=object)  # by month number
_HOUR_BANDS = np.array(["morning", "early_afternoon", "late_afternoon", "unknown"], dtype=object)

#: Low-cardinality text columns of the table, held as pandas ``category`` (categories: the values present,
#: sorted lexically), about 1 byte a row instead of an object pointer and a Python string each.
TEXT_COLUMNS = ("department", "status", "lead_band", "hour_band", "schedule", "schedule_sent", "prior_visits_band",
                "age_band", "sex", "month_of_year")


def _category(codes: np.ndarray, labels) -> pd.Categorical:
    """``labels[codes]`` (distinct texts) as a Categorical of the labels used, categories sorted lexically."""
    codes = np.asarray(codes, dtype=np.int64)
    labels = np.asarray(labels, dtype=object)
    used = np.flatnonzero(np.bincount(codes, minlength=len(labels))) if len(codes) else np.zeros(0, dtype=np.int64)
    order = sorted(range(len(used)), key=lambda i: labels[used[i]])  # lexical, as astype("category")
    remap = np.full(len(labels), -1, dtype=np.int64)
    remap[used[order]] = np.arange(len(used))
    dtype = np.int8 if len(used) < 127 else np.int16 if len(used) < 32_767 else np.int32
    return pd.Categorical.from_codes(remap[codes].astype(dtype), categories=list(labels[used[order]]))


def _text_category(values) -> pd.Categorical:
    """`values` as text (missing read as ``"unknown"``) in a Categorical: each distinct value converted once."""
    codes, labels = _text_codes(pd.Series(values))
    return _category(codes, labels)


def _cut_category(cut: pd.Categorical) -> pd.Categorical:
    """A :func:`pandas.cut` result as ``.astype(str)`` gives it (a missing value as ``"nan"``), lexical categories."""
    labels = [str(c) for c in cut.categories] + ["nan"]
    codes = np.asarray(cut.codes, dtype=np.int64)
    return _category(np.where(codes < 0, len(labels) - 1, codes), labels)


def _step_name(step: str) -> str:
    return "rem_" + re.sub(r"\W", "_", str(step))


def step_columns(table: pd.DataFrame) -> list[str]:
    """The ``rem_<step>`` exposure columns of an analysis table, in schedule order."""
    return [c for c in table.columns if c.startswith("rem_")]


def _order_steps(steps) -> list[str]:
    known = [s for s in STEP_ORDER if s in steps]
    return known + sorted(s for s in steps if s not in STEP_ORDER)


def _shared_codes(*columns: pd.Series) -> list[np.ndarray]:
    """Integer codes of id columns on one scale: equal ids get equal codes (one hash pass over all of them).

    Arrow-backed text is hashed by Arrow; pandas' ``isin``, ``get_indexer``
    and ``map`` on text ids were most of this table's cost.
    """
    codes, _ = pd.factorize(pd.concat([pd.Series(c.array) for c in columns], ignore_index=True),
                            use_na_sentinel=False)
    return np.split(codes, np.cumsum([len(c) for c in columns])[:-1])


def _text_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes into the sorted distinct texts of `values`, a missing value read as ``"unknown"``."""
    codes, uniques = pd.factorize(values)
    labels = np.array([str(u) for u in uniques] + ["unknown"], dtype=object)
    codes = np.where(codes < 0, len(uniques), codes)
    used = np.unique(codes)
    distinct, inverse = np.unique(labels[used], return_inverse=True)  # "unknown" may also be a value
    remap = np.zeros(len(labels), dtype=np.int64)
    remap[used] = inverse.reshape(-1)
    return remap[codes], list(distinct)


def _exposure(appt_ids: pd.Series, reminders: pd.DataFrame | None, end: pd.Timestamp) -> pd.DataFrame:
    """Per appointment: messages sent/delivered, steps received, schedules, messages per channel."""
    n = len(appt_ids)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    if reminders is None or reminders.empty:
        out["n_sent"] = 0
        out["n_delivered"] = 0
        out["schedule"] = "none"
        out["schedule_sent"] = "none"
        return out
    rem = reminders.loc[~(reminders["sent_at"] >= end).fillna(False).to_numpy()]
    row, code = _shared_codes(appt_ids, rem["appointment_id"])
    in_table = np.zeros(max(row.max(initial=-1), code.max(initial=-1)) + 1, dtype=bool)
    in_table[row] = True
    known = in_table[code]  # reminders of appointments in the table
    rem, code = rem.loc[known], code[known]
    step, step_names = _text_codes(rem["schedule"])
    steps = _order_steps(step_names)
    step = np.array([steps.index(s) for s in step_names], dtype=np.int64)[step]  # schedule order
    delivered = rem["delivered"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    channel, channels = _text_codes(rem["channel"])
    size = len(in_table)
    got = np.zeros((size, len(steps)), dtype=bool)
    got[code[delivered], step[delivered]] = True  # a step counts as received when any message arrived
    sent = np.zeros((size, len(steps)), dtype=bool)
    sent[code, step] = True
    out["n_sent"] = np.bincount(code, minlength=size).astype(np.int64)[row]
    out["n_delivered"] = np.bincount(code[delivered], minlength=size).astype(np.int64)[row]
    got, sent = got[row], sent[row]
    for i, s in enumerate(steps):
        out[_step_name(s)] = got[:, i].astype(np.int64)
    out["schedule"] = _labels(got, steps)
    out["schedule_sent"] = _labels(sent, steps)
    per_channel = np.bincount(code * len(channels) + channel, minlength=size * len(channels))
    per_channel = per_channel.reshape(size, len(channels))[row].astype(np.int64)
    for i, ch in enumerate(channels):
        out[f"msgs_{ch}"] = per_channel[:, i]
    return out


def _labels(flags: np.ndarray, steps: list[str]) -> np.ndarray:
    """'3d+1d+2h'-style labels of boolean step columns (a Categorical), vectorised over the 2**k combinations."""
    code = np.zeros(len(flags), dtype=np.int64)
    for b in range(len(steps)):
        code |= flags[:, b].astype(np.int64) << b
    names = np.array(["+".join(s for b, s in enumerate(steps) if c >> b & 1) or "none"
                      for c in range(2 ** len(steps))], dtype=object)
    return _category(code, names)


def _time_order(a: pd.DataFrame) -> np.ndarray:
    """Row order by ``scheduled_at``, then ``appointment_id`` (stable).

    Arrow's multi-key sort: pandas' ``sort_values`` first turns text ids into a
    categorical, several times slower.
    """
    try:
        keys = pa.table({"at": a["scheduled_at"].to_numpy("datetime64[ns]").view(np.int64),
                         "id": pa.array(a["appointment_id"].array)})
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # ids of mixed types: pandas' sort (or its error)
        return a.reset_index(drop=True).sort_values(["scheduled_at", "appointment_id"], kind="stable").index
    return pc.sort_indices(keys, sort_keys=[("at", "ascending"), ("id", "ascending")]).to_numpy()


def _prior_visits(a_code: np.ndarray, a_day: np.ndarray, v_code: np.ndarray, v_day: np.ndarray,
                  order: np.ndarray) -> np.ndarray:
    """Visits of the same patient strictly before each appointment's day (searchsorted on a composite key).

    `order` sorts the appointments by patient and day, so the look-ups run in key order (cache-friendly).
    """
    base = np.int64(1 << 20)
    v_key = np.sort(v_code.astype(np.int64) * base + (v_day + (1 << 19)))
    a_code = a_code.astype(np.int64)[order]
    found = (np.searchsorted(v_key, a_code * base + (a_day[order] + (1 << 19)), side="left")
             - np.searchsorted(v_key, a_code * base, side="left"))
    out = np.empty(len(order), dtype=found.dtype)
    out[order] = found
    return out


def _seconds(values: pd.Series) -> np.ndarray:
    """Whole seconds since the epoch (int64) of a datetime column."""
    return np.floor_divide(values.to_numpy("datetime64[ns]").view(np.int64), 10**9)


def _prior_events(patient: np.ndarray, event: np.ndarray, known_at: np.ndarray, cutoff: np.ndarray) -> np.ndarray:
    """Per row: the rows of the same patient with `event` whose `known_at` is at or before the row's `cutoff`.

    One sorted composite key (patient, time) and two binary searches per row.

    Parameters
    ----------
    patient : ndarray of int
        Patient code of each row (0, 1, ...).
    event : ndarray of bool
        Rows that count (e.g. no-shows).
    known_at, cutoff : ndarray of int
        Whole seconds: when each row's outcome became known, and the moment up to which each row may
        look back.

    Returns
    -------
    ndarray of int64
    """
    if len(patient) == 0:
        return np.zeros(0, dtype=np.int64)
    t0 = min(known_at.min(), cutoff.min())
    span = int(max(known_at.max(), cutoff.max()) - t0) + 2
    step = 1
    while (int(patient.max()) + 2) * (span // step + 2) >= 2**62:  # absurd date ranges: a coarser clock
        step *= 60
    base = np.int64(span // step + 2)
    code = patient.astype(np.int64) * base
    keys = np.sort(code[event] + (known_at[event] - t0) // step)
    return (np.searchsorted(keys, code + (cutoff - t0) // step, side="right")
            - np.searchsorted(keys, code, side="left")).astype(np.int64)


def appointment_table(clinic: ClinicData, as_of: str | pd.Timestamp, rules=None) -> pd.DataFrame:
    """One row per appointment scheduled on or before `as_of`, with outcomes, exposure and covariates.

    Parameters
    ----------
    clinic : ClinicData
        Needs the appointments table; reminders, visits and patients are used
        when present. Nothing recorded after `as_of` is used.
    as_of : str or Timestamp
        The analysis date (end of that day).
    rules : path, mapping or None
        Reminder rules (see :func:`crm_analysis.reminders.rules.load_rules`).

    Returns
    -------
    pandas.DataFrame
        Columns described in the module docstring, sorted by ``scheduled_at``.
        The input is not modified.

    Raises
    ------
    MissingTableError
        If the clinic has no appointments table.
    """
    r = load_rules(rules)
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    appts = clinic.require("appointments", "the reminder evaluation")
    keep = (appts["scheduled_at"] < end) & (appts["booked_at"] < end)
    columns = ["appointment_id", "patient_id", "booked_at", "scheduled_at", "department", "status", "cancelled_at"]
    a = appts.loc[keep.fillna(False).to_numpy(), columns + [c for c in ("reminder_arm",) if c in appts]]
    a = a.take(_time_order(a)).reset_index(drop=True)
    status = a["status"].astype(str)
    late_cancel = (a["cancelled_at"] >= end).fillna(False)
    status = status.where(~late_cancel, "booked")
    a["status"] = _text_category(status)
    a["scheduled_date"] = a["scheduled_at"].dt.normalize()
    a["lead_days"] = (a["scheduled_date"] - a["booked_at"].dt.normalize()).dt.days.astype(np.int64)
    a["eligible"] = a["lead_days"] >= r["eligible_min_lead_days"]
    edges = [*r["lead_bands"], np.inf]
    a["lead_band"] = _cut_category(pd.cut(a["lead_days"], [-np.inf, *edges], right=False,
                                          labels=[f"<{edges[0]}"] + [f"{lo}-{hi - 1}" if np.isfinite(hi) else f"{lo}+"
                                                                     for lo, hi in zip(edges[:-1], edges[1:])]).array)
    resolved = status.isin(["attended", "no_show", "cancelled", "rescheduled"])
    a["cancelled"] = np.where(resolved, status.isin(["cancelled", "rescheduled"]).astype(float), np.nan)
    a["no_show"] = np.where(status.isin(["attended", "no_show"]), (status == "no_show").astype(float), np.nan)
    a["analysed"] = a["no_show"].notna()

    exp = _exposure(a["appointment_id"], clinic.tables.get("reminders"), end)
    a = pd.concat([a, exp], axis=1)
    a["reminded"] = a["n_delivered"] > 0 if "n_delivered" in a else False
    a["sent_any"] = a["n_sent"] > 0
    arm = a.pop("reminder_arm").astype(object) if "reminder_arm" in a else pd.Series(None, index=a.index, dtype=object)
    a["allocated_reminder"] = pd.array(np.where(arm.isna(), None, arm == "reminder"), dtype="boolean")

    has_time = bool((a["scheduled_at"] != a["scheduled_date"]).any())
    a["weekday"] = pd.Categorical.from_codes(a["scheduled_at"].dt.weekday.to_numpy(), categories=list(_WEEKDAYS))
    a["hour"] = a["scheduled_at"].dt.hour.astype("Int64") if has_time else pd.array([pd.NA] * len(a), "Int64")
    hour = a["hour"].astype("float")
    band = np.where(hour < 12, 0, np.where(hour < 15, 1, 2))
    a["hour_band"] = _category(np.where(hour.isna(), 3, band), _HOUR_BANDS)
    a["department"] = _text_category(a["department"])
    visits = clinic.tables.get("visits")
    if visits is not None:
        visits = visits.loc[(visits["visit_date"] < end).to_numpy()]
    patients = clinic.tables.get("patients")
    if patients is not None and not {"birth_date", "sex"} <= set(patients.columns):
        patients = None
    others = {name: t for name, t in (("visits", visits), ("patients", patients)) if t is not None}
    patient, *codes = _shared_codes(a["patient_id"], *(t["patient_id"] for t in others.values()))
    codes = dict(zip(others, codes))
    order = np.lexsort((a["scheduled_at"].to_numpy(), patient))  # each patient's appointments in time order
    # known at the booking (when the reminders are planned; never after the appointment itself): a timed outcome
    # a second after its time, a day's outcome when the day is over
    cutoff = np.minimum(_seconds(a["booked_at"]), _seconds(a["scheduled_at"]))
    known_at = _seconds(a["scheduled_at"]) + 1 if has_time else _seconds(a["scheduled_date"]) + 86_400
    a["prior_no_shows"] = _prior_events(patient, (status == "no_show").to_numpy(), known_at, cutoff)
    if visits is not None:
        day = a["scheduled_date"].to_numpy("datetime64[D]").astype(np.int64)
        a["prior_visits"] = _prior_visits(patient, day, codes["visits"],
                                          visits["visit_date"].to_numpy("datetime64[D]").astype(np.int64), order)
    else:
        a["prior_visits"] = 0
    a["prior_visits_band"] = _cut_category(pd.cut(a["prior_visits"], [-1, 0, 2, 9, np.inf],
                                                  labels=["0", "1-2", "3-9", "10+"]).array)
    if patients is not None:
        first = np.full(max(patient.max(initial=-1), codes["patients"].max(initial=-1)) + 1, -1)
        found, at = np.unique(codes["patients"], return_index=True)
        first[found] = at  # a patient listed twice: the first row, as drop_duplicates
        row = first[patient]
        birth = pd.Series(patients["birth_date"].array.take(row, allow_fill=True), index=a.index)
        bands = age_band(completed_years(birth, a["scheduled_date"]))
        a["age_band"] = _text_category(pd.Series(bands).astype(object))
        a["sex"] = _text_category(pd.Series(patients["sex"].array.take(row, allow_fill=True)))
    else:
        a["age_band"] = "unknown"
        a["sex"] = "unknown"
    a["month"] = a["scheduled_at"].dt.to_period("M")
    a["month_of_year"] = _category(a["scheduled_at"].dt.month.to_numpy(), _MONTHS)
    t0 = a["scheduled_date"].min() if len(a) else pd.Timestamp(as_of)
    a["years"] = (a["scheduled_date"] - t0).dt.days / 365.25
    for c in TEXT_COLUMNS:  # e.g. the constant "none" / "unknown" of a clinic without reminders or patients
        if not isinstance(a[c].dtype, pd.CategoricalDtype):
            a[c] = a[c].astype(str).astype("category")
    return a
