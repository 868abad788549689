"""Cost–benefit of the reminders, per month.

For each month: the no-shows the reminders avoided (from the adjusted model:
the sum over reminded non-cancelled appointments of the predicted no-show
probability without reminders minus with the reminders received, with a
delta-method CI), times the revenue of a visit, minus the cost of every
message sent that month (cancelled appointments' messages included) at the
per-channel prices of the rules (``message_cost_krw``; KakaoTalk Alimtalk,
SMS, email).

Revenue per visit is the mean charge (insured + self-pay) of the visits up to
`as_of`, or the rules' ``revenue_per_visit_krw`` / an explicit argument. An
export without charges (and no value given) gets the message cost only, with
revenue columns left empty. Not counted: slots freed by the extra early
cancellations reminders cause (they may or may not be rebooked).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.clinic import ClinicData
from crm_analysis.reminders.adjusted import ReminderEffectModel
from crm_analysis.reminders.rules import load_rules

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
                 rules=None) -> pd.DataFrame:
    """Monthly reminder cost–benefit in KRW.

    Parameters
    ----------
    table : DataFrame
        From :func:`~crm_analysis.reminders.analysis_table.appointment_table`.
    model : ReminderEffectModel
        Fitted on `table`.
    revenue : float, optional
        Revenue per attended visit (KRW); default the rules'
        ``revenue_per_visit_krw``. None: revenue columns are left empty.
    rules : path, mapping or None

    Returns
    -------
    DataFrame
        One row per month with messages: ``month``, ``reminded`` (non-cancelled
        appointments with a reminder received), ``messages``, ``message_cost``,
        ``no_shows_avoided`` with ``avoided_ci_low``/``avoided_ci_high``,
        ``revenue_kept``, ``net_benefit`` (with CI bounds) and
        ``cost_per_avoided_no_show``.
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
    rev = np.nan if revenue is None else float(revenue)
    out["revenue_kept"] = out["no_shows_avoided"] * rev
    out["net_benefit"] = out["revenue_kept"] - out["message_cost"]
    out["net_ci_low"] = out["avoided_ci_low"] * rev - out["message_cost"]
    out["net_ci_high"] = out["avoided_ci_high"] * rev - out["message_cost"]
    out["cost_per_avoided_no_show"] = out["message_cost"] / out["no_shows_avoided"].where(out["no_shows_avoided"] > 0)
    out["reminded"] = out["reminded"].astype(np.int64)
    out["messages"] = out["messages"].astype(np.int64)
    out.index.name = "month"
    return out.reset_index()
