"""The extract moment of a daily run, and the clinic as it was known then.

A daily run for the day ``D`` works from the **extract moment** ``D 00:00``: the bookings, cancellations,
consents and opt-outs recorded before the day began (an extract taken in the evening of ``D-1`` or early
on ``D``, before the front desk opens). It plans the 24 hours ``[D 00:00, D+1 00:00)``, the day itself.
A booking made on ``D`` is not in that day's list (the booking system confirms it when it is made); the
next day's run covers its later steps.

:func:`daily_moment` checks a day against the data's recorded range; :func:`appointments_at` says which
appointments were live at a moment; :func:`clinic_at` cuts a clinic at a moment.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from crm_analysis.exceptions import SourceError

__all__ = ["STALE_DAYS", "daily_moment", "appointments_at", "clinic_at", "LIVE", "CANCELLED_STATUSES"]

#: How many days the extract's last recorded event may lie before the day before the run's day (a long
#: weekend records nothing); an older extract would miss bookings and cancellations and is refused.
STALE_DAYS = 3
#: Status of an appointment still ahead and not cancelled at the moment.
LIVE = "booked"
#: Statuses of an appointment taken off the book: cancelled, or moved (a new appointment row replaces it).
CANCELLED_STATUSES = ("cancelled", "rescheduled")


def daily_moment(clinic, date) -> pd.Timestamp:
    """The extract moment (``date`` at 00:00) of a daily run, checked against the data.

    Parameters
    ----------
    clinic : ClinicData
    date : date-like
        The day planned (explicit; never today).

    Returns
    -------
    Timestamp

    Raises
    ------
    SourceError
        If the data does not reach the day before `date` (an extract more than :data:`STALE_DAYS` days
        old would miss bookings), or `date` lies before the data's first recorded day.
    """
    try:
        moment = pd.Timestamp(date)
    except (TypeError, ValueError):
        raise SourceError(f"date {date!r} is not a date (use YYYY-MM-DD, e.g. 2026-10-15)") from None
    if moment != moment.normalize():
        raise SourceError(f"date {date!r} must be a day (YYYY-MM-DD) without a time: the run plans the whole day")
    day_before = moment - pd.Timedelta(days=1)
    if clinic.as_of is not None and day_before > clinic.as_of:
        raise SourceError(f"the data runs to {clinic.as_of:%Y-%m-%d}; a daily run for {moment:%Y-%m-%d} needs an "
                          f"extract taken on {day_before:%Y-%m-%d} or later")
    recorded = clinic.recorded_range()
    if recorded is not None:
        first, last = recorded
        if clinic.as_of is None and day_before > last + pd.Timedelta(days=STALE_DAYS):
            raise SourceError(f"the data's last recorded event is on {last:%Y-%m-%d}: too old for a daily run for "
                              f"{moment:%Y-%m-%d} (bookings made since would be missed); export the data again")
        if moment < first:
            raise SourceError(f"{moment:%Y-%m-%d} is before the data's first recorded day ({first:%Y-%m-%d})")
    return moment


def appointments_at(appointments: pd.DataFrame, moment) -> pd.DataFrame:
    """The appointments booked by `moment`, with the status known then.

    Booked by `moment` means ``booked_at`` before it. An appointment counts as cancelled (or moved) at
    `moment` when its ``cancelled_at`` is before `moment`, or when its status is ``cancelled``/``rescheduled`` and no ``cancelled_at`` says when: it is
    never reminded of (the safe side). A cancellation made after `moment` is not known yet.

    Parameters
    ----------
    appointments : DataFrame
        The contract's appointments table (not modified).
    moment : Timestamp

    Returns
    -------
    DataFrame
        The rows with ``booked_at < moment``; ``status`` is ``booked`` (:data:`LIVE`) for those scheduled
        at or after `moment` and not cancelled by then, ``cancelled_at`` is cleared where the cancellation
        came later. Other rows keep their status.
    """
    moment = pd.Timestamp(moment)
    a = appointments.loc[(appointments["booked_at"] < moment).to_numpy()].copy()
    cancelled_at = a["cancelled_at"] if "cancelled_at" in a else pd.Series(pd.NaT, index=a.index)
    status = a["status"].astype(object)
    later = (cancelled_at >= moment).fillna(False).to_numpy()
    off = (cancelled_at < moment).fillna(False).to_numpy() | (
        status.isin(CANCELLED_STATUSES).to_numpy() & cancelled_at.isna().to_numpy())
    ahead = (a["scheduled_at"] >= moment).to_numpy()
    live = ahead & ~off
    a["status"] = pd.Series(np.where(live, LIVE, status.to_numpy()), index=a.index, dtype="category")
    if "cancelled_at" in a:
        a.loc[later, "cancelled_at"] = pd.NaT
    return a.reset_index(drop=True)


def clinic_at(clinic, moment):
    """`clinic` as known at `moment` (a day's start): the snapshot of the day before, whose appointments are
    those of :func:`appointments_at`."""
    moment = pd.Timestamp(moment)
    snap = clinic.snapshot(moment - pd.Timedelta(days=1))
    if not clinic.has("appointments"):
        return snap
    tables = dict(snap.tables)
    tables["appointments"] = appointments_at(clinic.tables["appointments"], moment)
    return replace(snap, tables=tables)
