"""Cost–benefit of the reminders, per month.

Revenue comes from attended visits, so the benefit is counted in **extra
attended visits per booking** (:mod:`crm_analysis.reminders.bookings`): over
every booking with a reminder planned that month, cancelled ones included, the
attended visits with the planned reminders minus without, from two logistic
stages (cancellation, then no-show if not cancelled) with a delta-method CI.
Reminders avoid no-shows but also cause cancellations; a cancelled slot counts
as kept only in the share ``slot_refill_rate`` of the rules (default 0: a
cancelled slot is lost like a no-show). The extra cancellations are shown
beside the extra visits. Benefit = extra visits × revenue of a visit; cost =
every message sent that month (cancelled appointments' messages included) at
the per-channel prices of the rules (``message_cost_krw``; KakaoTalk
Alimtalk, SMS, email).

The no-shows avoided among non-cancelled reminded appointments (the no-show
model's count, which this table used to value) are kept as a column for
analysts: they overstate what reminders keep, by the cancellations reminders
cause (in the demo clinic 0.10 avoided no-shows per planned booking are only
0.07 extra visits).

Revenue per visit is the mean charge (insured + self-pay) of the visits up to
`as_of`, or the rules' ``revenue_per_visit_krw`` / an explicit argument. An
export without charges (and no value given) gets the message cost only, with
revenue columns left empty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders.adjusted import ReminderEffectModel
from crm_analysis.reminders.bookings import BookingEffectModel
from crm_analysis.reminders.pilot import pilot_per_booking
from crm_analysis.reminders.rules import load_rules, rules_within

__all__ = ["revenue_per_visit", "cost_benefit", "step_cost_per_appointment"]


def revenue_per_visit(clinic: ClinicData, as_of: str | pd.Timestamp) -> float | None:
    """Mean charge (insured + self-pay, KRW) per visit on or before `as_of`; None without charges."""
    v = clinic.tables.get("visits")
    if v is None or not {"charge_insured", "charge_self_pay"} <= set(v.columns):
        return None
    v = v.loc[(v["visit_date"] < pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)).to_numpy()]
    charges = v[["charge_insured", "charge_self_pay"]].astype(float)
    known = charges.notna().any(axis=1)
    if not known.any():
        return None
    return float(charges[known].fillna(0).sum(axis=1).mean())


def _message_cost(table: pd.DataFrame, costs) -> pd.Series:
    total = pd.Series(0.0, index=table.index)
    for col in [c for c in table.columns if c.startswith("msgs_")]:
        total += table[col] * float(costs.get(col[5:], 0.0))
    return total


def step_cost_per_appointment(clinic: ClinicData, step: str, as_of: str | pd.Timestamp, rules=None) -> float | None:
    """Mean message cost (KRW) of one schedule step per appointment it was sent for (fallback SMS included)."""
    r = load_rules(rules)
    rem = clinic.tables.get("reminders")
    if rem is None:
        return None
    rem = rem.loc[~(rem["sent_at"] >= pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)).fillna(False).to_numpy()]
    codes, schedules = pd.factorize(rem["schedule"], use_na_sentinel=False)  # compare each schedule once
    rem = rem.loc[np.array([str(x) == step for x in schedules], dtype=bool)[codes]]
    if rem.empty:
        return None
    channel = rem["channel"].astype(str)
    cost = channel.map({c: float(r["message_cost_krw"].get(c, 0.0)) for c in channel.unique()})
    return float(cost.sum() / rem["appointment_id"].nunique())


def cost_benefit(table: pd.DataFrame, model: ReminderEffectModel, revenue: float | None = None,
                 rules=None, bookings: BookingEffectModel | str | None = "fit") -> pd.DataFrame:
    """Monthly reminder cost–benefit in KRW, counted in extra attended visits per booking.

    Parameters
    ----------
    table : DataFrame
        From :func:`~crm_analysis.reminders.analysis_table.appointment_table`.
    model : ReminderEffectModel
        The no-show model fitted on `table` (for the ``no_shows_avoided`` columns).
    revenue : float, optional
        Revenue per attended visit (KRW); default the rules'
        ``revenue_per_visit_krw``. None: revenue columns are left empty.
    rules : path, mapping or None
        Reminder rules: message prices, roll-outs, ``slot_refill_rate``.
    bookings : BookingEffectModel, "fit" or None
        The per-booking model fitted on `table`; ``"fit"`` (default) fits one
        here (with the roll-outs inside the data's window); None, or a model
        that cannot be fitted, leaves the visit columns empty.

    Returns
    -------
    DataFrame
        One row per month with messages: ``month``, ``reminded`` (non-cancelled
        appointments with a reminder received), ``bookings_planned`` (resolved
        bookings with a reminder planned, cancelled ones included),
        ``messages``, ``message_cost``, ``extra_visits`` and
        ``extra_cancellations`` (sums over the month's planned bookings, each
        with ``_ci_low``/``_ci_high``), ``revenue_kept`` (extra visits ×
        revenue), ``net_benefit`` (with ``net_ci_low``/``net_ci_high``),
        ``cost_per_extra_visit``, and for analysts ``no_shows_avoided`` with
        ``avoided_ci_low``/``avoided_ci_high`` (among non-cancelled reminded
        appointments: not the revenue outcome, see the module docstring).
        ``attrs["effect"]`` says which estimate values the visits: ``"pilot"``
        (the rules' ``cost_effect: pilot`` and a pilot in the data: planned
        bookings × the pilot's per-booking effects) or ``"adjusted"`` (the
        per-booking model).
        A month without planned bookings whose outcome is known (e.g. a
        randomised pilot month) has empty visit columns.
    """
    r = load_rules(rules)
    revenue = r["revenue_per_visit_krw"] if revenue is None else revenue
    codes, months = pd.factorize(table["month"], use_na_sentinel=False)  # each month formatted once
    month = pd.Series(np.asarray(months.astype(str), dtype=object)[codes], index=table.index)
    msg_cols = [c for c in table.columns if c.startswith("msgs_")]
    messages = table[msg_cols].sum(axis=1) if msg_cols else pd.Series(0, index=table.index)
    cost = _message_cost(table, r["message_cost_krw"])
    g = pd.DataFrame({"month": month, "messages": messages, "message_cost": cost,
                      "reminded": table["analysed"] & table["reminded"]}).groupby("month")
    out = g[["messages", "message_cost", "reminded"]].sum()
    out = out.loc[out["messages"] > 0]
    avoided = model.avoided_by_group(table, month.to_numpy(),
                                     mask=(table["analysed"] & table["reminded"]).to_numpy())
    out = out.join(avoided.rename(columns={"ci_low": "avoided_ci_low", "ci_high": "avoided_ci_high"}), how="left")
    out[["no_shows_avoided", "avoided_ci_low", "avoided_ci_high"]] = \
        out[["no_shows_avoided", "avoided_ci_low", "avoided_ci_high"]].fillna(0.0)
    visits = _visits_by_month(table, month.to_numpy(), bookings, r)
    effect = "adjusted"
    if r["cost_effect"] == "pilot":
        per_booking = pilot_per_booking(table, rules=r)
        if per_booking is not None and len(visits):
            visits = _scaled_by_bookings(visits, per_booking)
            effect = "pilot"
    out = out.join(visits, how="left")
    out["bookings_planned"] = out["bookings_planned"].fillna(0).astype(np.int64)
    rev = np.nan if revenue is None else float(revenue)
    out["revenue_kept"] = out["extra_visits"] * rev
    out["net_benefit"] = out["revenue_kept"] - out["message_cost"]
    out["net_ci_low"] = out["extra_visits_ci_low"] * rev - out["message_cost"]
    out["net_ci_high"] = out["extra_visits_ci_high"] * rev - out["message_cost"]
    out["cost_per_extra_visit"] = out["message_cost"] / out["extra_visits"].where(out["extra_visits"] > 0)
    out["reminded"] = out["reminded"].astype(np.int64)
    out["messages"] = out["messages"].astype(np.int64)
    out.index.name = "month"
    columns = ["reminded", "bookings_planned", "messages", "message_cost", "extra_visits", "extra_visits_ci_low",
               "extra_visits_ci_high", "extra_cancellations", "extra_cancellations_ci_low",
               "extra_cancellations_ci_high", "revenue_kept", "net_benefit", "net_ci_low", "net_ci_high",
               "cost_per_extra_visit", "no_shows_avoided", "avoided_ci_low", "avoided_ci_high"]
    out = out[columns].reset_index()
    out.attrs["effect"] = effect  # which estimate the visits are valued with: "pilot" or "adjusted"
    return out


def _scaled_by_bookings(visits: pd.DataFrame, per_booking) -> pd.DataFrame:
    """Extra visits and cancellations of each month as its planned bookings times the pilot's per-booking
    effects (and their interval bounds)."""
    out = visits.copy()
    n = out["bookings_planned"].astype(float)
    for column, name in (("extra_visits", "visits"), ("extra_cancellations", "cancellations")):
        e = per_booking[name]
        out[column], out[f"{column}_ci_low"], out[f"{column}_ci_high"] = n * e.estimate, n * e.ci_low, n * e.ci_high
    return out


_VISIT_COLUMNS = ["bookings_planned", "extra_visits", "extra_visits_ci_low", "extra_visits_ci_high",
                  "extra_cancellations", "extra_cancellations_ci_low", "extra_cancellations_ci_high"]


def _visits_by_month(table: pd.DataFrame, month: np.ndarray, bookings, rules) -> pd.DataFrame:
    """Extra visits and cancellations summed per month over the bookings with a reminder planned."""
    if isinstance(bookings, str) and bookings == "fit":
        at = table["scheduled_at"]
        try:
            bookings = BookingEffectModel(rules_within(rules, at.min(), at.max())[0]).fit(table) if len(table) else None
        except CrmAnalysisError:
            bookings = None
    if bookings is None:
        return pd.DataFrame(columns=_VISIT_COLUMNS, dtype=float)
    mask = bookings.bookings(table) & (bookings.planned(table) != "none").to_numpy()
    if not mask.any():
        return pd.DataFrame(columns=_VISIT_COLUMNS, dtype=float)
    by = bookings.effects_by_group(table, month, mask).rename(columns={"bookings": "bookings_planned"})
    return by[_VISIT_COLUMNS]
