"""Replies to reminders: the month's confirmation rate and the no-show rate by reply.

The reminders table's optional ``reply`` column records each message's answer: ``confirmed``,
``cancelled`` (asked to cancel) or ``none``. :func:`reply_summary` reads, for the appointments
scheduled in one month, each appointment's reply (``cancelled`` if any message was answered so, else
``confirmed`` if any was, else ``none`` when a reminder was delivered; appointments with no delivered
reminder are ``not_reminded``) and reports

- the **confirmation rate**: confirmed appointments among those with a delivered reminder;
- per reply, the appointments, those with a known outcome (attended or no-show), the no-shows and the
  **no-show rate** (no-shows among known outcomes).

Aggregates only, counts 1–4 (below `min_count`) hidden through
:func:`crm_analysis.privacy.suppress_small_counts` (with the rates they would reveal). A confirmed
reply marks patients who intend to come: the lower no-show rate among them is an association, not the
effect of asking for a reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

import numpy as np
import pandas as pd

from crm_analysis.clinic import month_end
from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.i18n import check_lang, label
from crm_analysis.ids import id_positions
from crm_analysis.privacy import DEFAULT_MIN_COUNT, check_threshold, shown_count, suppress_small_counts

__all__ = ["REPLY_STATES", "ReplySummary", "appointment_replies", "reply_summary"]

#: Reply states of an appointment, in table order.
REPLY_STATES = ("confirmed", "none", "cancelled", "not_reminded")
_COUNTS = ["appointments", "outcome_known", "no_shows"]


@dataclass(frozen=True)
class ReplySummary:
    """The month's replies (aggregates, small counts hidden).

    Attributes
    ----------
    month : str
        ``YYYY-MM``.
    table : DataFrame
        One row per :data:`REPLY_STATES` value: ``reply``, ``appointments``, ``outcome_known``,
        ``no_shows`` (nullable integers, ``<NA>`` where hidden) and ``no_show_rate``.
    reminded : int or None
        Appointments with a delivered reminder (None when hidden).
    confirmed : int or None
        Those confirmed by reply (None when hidden).
    confirmation_rate : float or None
        ``confirmed / reminded`` (None when either is hidden or nothing was reminded).
    min_count : int
    """

    month: str
    table: pd.DataFrame = field(repr=False)
    reminded: int | None
    confirmed: int | None
    confirmation_rate: float | None
    min_count: int = DEFAULT_MIN_COUNT

    def summary(self, lang: str = "ko") -> pd.DataFrame:
        """The table with labelled columns and replies in `lang`."""
        check_lang(lang)
        t = self.table.copy()
        t["reply"] = t["reply"].map(lambda r: label(f"daily_reply_{r}", lang))
        names = {"reply": "daily_reply", "appointments": "daily_reply_appointments",
                 "no_shows": "daily_reply_no_shows", "no_show_rate": "daily_reply_no_show_rate"}
        t = t.drop(columns="outcome_known")
        return t.rename(columns={c: label(k, lang) for c, k in names.items()})

    def _repr_html_(self) -> str:
        rate = "–" if self.confirmation_rate is None else f"{self.confirmation_rate:.1%}"
        return (f"<h4>Reminder replies, {escape(self.month)}</h4><p>confirmation rate {rate} "
                f"(of {self.reminded if self.reminded is not None else '<' + str(self.min_count)} reminded "
                f"appointments)</p>" + self.summary("en").to_html(index=False, na_rep="<5"))


#: The reply states in the order a later one overrides an earlier (an appointment with a confirming and a
#: cancelling reply is cancelled).
_STATE_NAMES = np.array(["not_reminded", "none", "confirmed", "cancelled"], dtype=object)


def appointment_replies(appointments: pd.DataFrame, reminders: pd.DataFrame) -> pd.Series:
    """Each appointment's reply state (:data:`REPLY_STATES`), indexed like `appointments`.

    A reminder counts as delivered unless ``delivered`` says it failed (missing: assumed delivered).
    """
    # each reminder's appointment among `appointments` by an id look-up (-1: another appointment): the reminders
    # table is every reminder ever sent (19M at a million patients), `appointments` often one month's
    where = id_positions(reminders["appointment_id"], appointments["appointment_id"])
    hit = where >= 0
    delivered = reminders["delivered"].astype("boolean").fillna(True).to_numpy(dtype=bool) \
        if "delivered" in reminders else np.ones(len(reminders), bool)
    state = np.zeros(len(appointments), dtype=np.int8)  # codes into _STATE_NAMES; a later state wins
    state[where[hit & delivered]] = 1
    if "reply" in reminders:
        for code, reply in ((2, "confirmed"), (3, "cancelled")):
            state[where[hit & reminders["reply"].eq(reply).to_numpy(dtype=bool, na_value=False)]] = code
    state = pd.Series(_STATE_NAMES[state], index=appointments.index)
    return state


def reply_summary(clinic, month: str, *, min_count: int = DEFAULT_MIN_COUNT) -> ReplySummary:
    """The confirmation rate and the no-show rate by reply of the appointments scheduled in `month`.

    Parameters
    ----------
    clinic : ClinicData
        Needs the appointments and reminders tables, with replies recorded. A snapshot at the month's last
        day is taken here (nothing later is used).
    month : str
        ``YYYY-MM``.
    min_count : int
        Counts from 1 to ``min_count - 1`` are hidden (default 5).

    Returns
    -------
    ReplySummary

    Raises
    ------
    InsufficientDataError
        Without appointments or reminders, or when the reminders record no reply (no ``reply`` column, or
        every value missing).
    ValueError
        A bad month or threshold.

    Examples
    --------
    >>> s = reply_summary(clinic, "2026-10")          # doctest: +SKIP
    >>> s.confirmation_rate, s.summary("ko")          # doctest: +SKIP
    """
    min_count = check_threshold(min_count)
    as_of = month_end(month)
    for table in ("appointments", "reminders"):
        if not clinic.has(table):
            raise InsufficientDataError("reminder_replies", f"reminder replies need the '{table}' table",
                                        f"예약 알림 회신 분석에는 '{table}' 테이블이 필요합니다")
    rem = clinic.tables["reminders"]
    if "reply" not in rem or not rem["reply"].notna().any():
        raise InsufficientDataError("reminder_replies", "the reminders table records no replies (column 'reply'); "
                                    "export the reply (confirmed / cancelled / none) of each reminder to see the "
                                    "confirmation rate",
                                    "예약 알림의 회신(reply: confirmed / cancelled / none)이 자료에 없어 확인 회신율을 "
                                    "계산하지 못했습니다")
    if clinic.as_of is None or clinic.as_of != as_of:
        clinic = clinic.snapshot(as_of)
    a = clinic.tables["appointments"]
    start = as_of.replace(day=1)
    a = a.loc[((a["scheduled_at"] >= start) & (a["scheduled_at"] < as_of + pd.Timedelta(days=1))).to_numpy()]
    state = appointment_replies(a, clinic.tables["reminders"])
    status = a["status"].astype(object)
    known = status.isin(["attended", "no_show"]).to_numpy()
    frame = pd.DataFrame({"reply": state.to_numpy(), "known": known, "no_show": (status == "no_show").to_numpy()})
    grouped = frame.groupby("reply").agg(appointments=("reply", "size"), outcome_known=("known", "sum"),
                                         no_shows=("no_show", "sum"))
    table = grouped.reindex(list(REPLY_STATES), fill_value=0).astype(np.int64).rename_axis("reply").reset_index()
    rate = table["no_shows"] / table["outcome_known"].where(table["outcome_known"] > 0)
    table = suppress_small_counts(table, _COUNTS, min_count, additive="columns")
    hidden = table["no_shows"].isna() | table["outcome_known"].isna()
    table["no_show_rate"] = rate.astype("Float64").mask(hidden.to_numpy())
    reminded = int((state != "not_reminded").sum())
    confirmed = int((state == "confirmed").sum())
    shown_r, shown_c = shown_count(reminded, min_count), shown_count(confirmed, min_count)
    rate_c = None if shown_r is None or shown_c is None or reminded == 0 else confirmed / reminded
    return ReplySummary(month=month, table=table, reminded=shown_r, confirmed=shown_c, confirmation_rate=rate_c,
                        min_count=min_count)
