"""The day's appointment reminders: every step due in the 24 hours after the extract moment.

:func:`reminder_sends` plans, for the day ``D`` (extract moment ``D 00:00``, :mod:`crm_analysis.daily.moment`),
the reminder steps (3d / 1d / 2h by default) of **every** appointment booked before the moment and not
cancelled by then, whose send time falls on ``D``. It runs the monthly planner
(:func:`crm_analysis.campaigns.plan_campaigns`) on the reminder campaign alone, so the daily sends obey
exactly the rules of the monthly staff lists:

- a step whose send time was already past at booking is not sent (``send time > booked_at``);
- steps at a fixed time (``days_before``) go at that time; ``hours_before`` steps are moved up to their
  ``earliest`` time (08:00);
- reminders are informational (transactional) messages: no marketing consent or night-time consent is
  needed, but they keep to the campaign's own window (08:00–21:00 by default); a step the window pushes
  to or past the appointment is not sent;
- the channel is the first of the campaign's channels (KakaoTalk 알림톡, then SMS) with a contact, no
  opt-out of that channel by the send time and no hard suppression (repeated bounces); without one no
  message is planned;
- deceased and moved patients are never contacted; each message in its recipient's language.

The planner's final compliance check runs on the day's sends too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from crm_analysis.campaigns.definitions import CampaignConfig, load_campaigns
from crm_analysis.campaigns.planner import plan_campaigns
from crm_analysis.daily.moment import LIVE, clinic_at, daily_moment
from crm_analysis.exceptions import CampaignConfigError

__all__ = ["REMINDER_AUDIENCE", "SEND_COLUMNS", "ReminderSends", "reminder_config", "reminder_sends"]

#: The campaign audience of appointment reminders (``crm_analysis/rules/campaigns.yaml``).
REMINDER_AUDIENCE = "appointment_reminder"
#: Columns of :attr:`ReminderSends.sends`.
SEND_COLUMNS = ["appointment_id", "step", "patient_id", "recipient_id", "scheduled_at", "department", "booked_at",
                "send_at", "channel", "contact", "message_type", "message", "detail", "language", "cost_krw",
                "campaign_id"]


@dataclass(frozen=True)
class ReminderSends:
    """The reminder sends of one day.

    Attributes
    ----------
    moment : Timestamp
        The extract moment (the day's 00:00); the sends fall in ``[moment, moment + 24 h)``.
    sends : DataFrame
        One row per message (:data:`SEND_COLUMNS`), sorted by send time and appointment id.
    dropped : DataFrame
        Steps due that day but not sent, counted by ``reason`` (``no_channel``: no contact without an
        opt-out; ``inactive_or_unknown``: deceased or moved; ``at_or_after_appointment``: the send window
        pushed the step past the appointment), columns ``reason``, ``n``.
    """

    moment: pd.Timestamp
    sends: pd.DataFrame = field(repr=False)
    dropped: pd.DataFrame = field(repr=False)

    def summary(self) -> pd.DataFrame:
        """Messages per step and channel (aggregates only)."""
        return self.sends.groupby(["step", "channel"], observed=True).size().rename("messages").reset_index()

    def _repr_html_(self) -> str:
        return (f"<h4>Reminder sends of {self.moment:%Y-%m-%d}</h4><p>{len(self.sends):,} messages "
                f"(aggregates only)</p>" + self.summary().to_html(index=False))


def reminder_config(config: str | CampaignConfig | dict | None = None) -> CampaignConfig:
    """The campaign configuration with only its appointment-reminder campaign(s).

    Raises
    ------
    CampaignConfigError
        If the configuration has no campaign of audience ``appointment_reminder``.
    """
    cfg = load_campaigns(config)
    keep = tuple(c for c in cfg.campaigns if c.audience == REMINDER_AUDIENCE)
    if not keep:
        raise CampaignConfigError("the campaign definitions have no appointment reminder campaign "
                                  f"(audience: {REMINDER_AUDIENCE}); add one (see crm_analysis/rules/campaigns.yaml)")
    return replace(cfg, campaigns=keep)


def reminder_sends(clinic, date, *, config: str | CampaignConfig | dict | None = None,
                   known=None) -> ReminderSends:
    """The reminder steps due on `date` for every appointment booked before it began and still on the book.

    Parameters
    ----------
    clinic : ClinicData
        The extract (taken on the day before `date` or later; later events are not used).
    date : date-like
        The day planned (explicit); the extract moment is its 00:00.
    config : path, mapping or CampaignConfig, optional
        Campaign definitions (default the shipped ones); only the appointment-reminder campaign is used.
    known : ClinicData, optional
        ``clinic_at(clinic, moment)`` when already made.

    Returns
    -------
    ReminderSends

    Raises
    ------
    SourceError
        If the data does not cover the day before `date` (:func:`~crm_analysis.daily.moment.daily_moment`).
    CampaignConfigError
        Bad campaign definitions, or (never expected) a send that would break a messaging rule.
    """
    moment = daily_moment(clinic, date)
    known = clinic_at(clinic, moment) if known is None else known
    cfg = reminder_config(config)
    day_before = moment - pd.Timedelta(days=1)
    plan = plan_campaigns(known, day_before, config=cfg, start=moment, end=moment)
    dropped = plan.dropped.groupby("reason", as_index=False)["n"].sum() if len(plan.dropped) else \
        pd.DataFrame({"reason": pd.Series(dtype=object), "n": pd.Series(dtype=np.int64)})
    if not known.has("appointments") or plan.sends.empty:
        return ReminderSends(moment, _empty(), dropped)
    sends = _with_appointments(plan.sends, known)
    late = (sends["send_at"] >= sends["scheduled_at"]).to_numpy()  # a window pushed it to or past the visit
    if late.any():
        dropped = pd.concat([dropped, pd.DataFrame({"reason": ["at_or_after_appointment"], "n": [int(late.sum())]})],
                            ignore_index=True)
    sends = sends.loc[~late & (sends["send_at"] >= moment).to_numpy()
                      & (sends["send_at"] < moment + pd.Timedelta(days=1)).to_numpy()]
    sends = sends.sort_values(["send_at", "appointment_id", "step"], kind="stable").reset_index(drop=True)
    return ReminderSends(moment, sends[SEND_COLUMNS], dropped)


def _with_appointments(sends: pd.DataFrame, known) -> pd.DataFrame:
    """The planner's sends with their appointment (id, time, department, booking time).

    The planner's rows name the patient and, in ``detail``, the appointment's time and department
    (``예약 2026-10-15 09:50 산부인과 · 2시간 전 알림``, :func:`~crm_analysis.campaigns.audiences.appointment_reminder`):
    a message is the live appointment of that patient, time and department. Two alike (one patient booked
    twice at the same time in the same department) are paired with their messages in order.
    """
    a = known.tables["appointments"]
    a = a.loc[(a["status"] == LIVE).to_numpy()]
    department = a["department"].astype(object).fillna("") if "department" in a else pd.Series("", index=a.index)
    appts = pd.DataFrame({"appointment_id": a["appointment_id"].astype(str).to_numpy(),
                          "patient_id": a["patient_id"].astype(str).to_numpy(),
                          "scheduled_at": a["scheduled_at"].to_numpy(), "booked_at": a["booked_at"].to_numpy(),
                          "department": department.astype(str).to_numpy()})
    appts["_what"] = "예약 " + appts["scheduled_at"].dt.strftime("%Y-%m-%d %H:%M") + " " + appts["department"]
    s = sends.assign(patient_id=sends["patient_id"].astype(str),
                     step=sends["reason"].astype(str).str.replace("appointment_", "", n=1, regex=False),
                     _what=sends["detail"].astype(str).str.rsplit(" · ", n=1).str[0])
    key = ["patient_id", "_what"]
    s = s.assign(_n=s.groupby([*key, "step", "campaign_id"]).cumcount())
    appts = appts.sort_values("appointment_id", kind="stable")
    appts = appts.assign(_n=appts.groupby(key).cumcount())
    s = s.drop(columns=["department"], errors="ignore").merge(appts, on=[*key, "_n"], how="left",
                                                              validate="many_to_one")
    if s["appointment_id"].isna().any():  # never expected: the audience's detail text changed
        raise CampaignConfigError("a planned reminder could not be matched to its appointment "
                                  f"({s.loc[s['appointment_id'].isna(), 'detail'].iloc[0]!r})")
    return s


def _empty() -> pd.DataFrame:
    times = ("scheduled_at", "booked_at", "send_at")
    return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c in times else
                                      "float64" if c == "cost_krw" else object) for c in SEND_COLUMNS})
