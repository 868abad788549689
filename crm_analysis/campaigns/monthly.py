"""Campaign lifts as a KPI section of the monthly report (``kpis.json`` → ``campaigns``).

The monthly run registers :func:`campaign_kpis` in :mod:`crm_analysis.monthly.kpis`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from crm_analysis.campaigns.definitions import CampaignConfig, load_campaigns
from crm_analysis.campaigns.evaluation import evaluate_campaigns
from crm_analysis.figures import between, month_start, p_value_3g, rounded, shown_count
from crm_analysis.privacy import suppress_small_counts

__all__ = ["campaign_kpis", "campaign_actions", "CAMPAIGN_FIGURES", "ACTION_PRIORITY"]

#: The order page 1 lists next month's actions in (the first five lists with anyone on them).
ACTION_PRIORITY = ("recall", "appointment_reminder", "infant_vaccination", "pregnancy_week", "vip_event",
                   "vip_birthday", "reconfirmation")

#: The headline figures (``null`` in kpis.json when the section is skipped).
CAMPAIGN_FIGURES = ("last_month", "last_12m")
_COUNTS = ["n_sent", "n_holdout", "returned_sent", "returned_holdout"]


def _lift_rows(per: pd.DataFrame, overall, name: str, min_count: int) -> tuple[list[dict], dict | None]:
    """Campaign lift rows and the pooled line, counts suppressed (secondary too), lifts hidden with them."""
    if per.empty:
        return [], None
    t = per.set_index("campaign_id")
    t = t.assign(returned_sent=(t["rate_sent"] * t["n_sent"]).round().astype("int64"),
                 returned_holdout=(t["rate_holdout"] * t["n_holdout"]).round().astype("int64"))
    t.loc["(total)", _COUNTS] = t[_COUNTS].sum()
    t[_COUNTS] = t[_COUNTS].astype("int64")
    hidden = suppress_small_counts(t[_COUNTS], _COUNTS, min_count, additive="columns", total_row="(total)").isna()
    rows = []
    for cid, row in t.drop(index="(total)").iterrows():
        h = hidden.loc[cid]
        ok = not h.any()
        rows.append({name: str(cid), "first_sent": f"{row['first_sent']:%Y-%m-%d}",
                     **{c: None if h[c] else int(row[c]) for c in _COUNTS},
                     "rate_sent": None if h["n_sent"] or h["returned_sent"] else rounded(row["rate_sent"]),
                     "rate_holdout": None if h["n_holdout"] or h["returned_holdout"] else rounded(row["rate_holdout"]),
                     "lift": rounded(row["lift"]) if ok else None,
                     "ci_low": rounded(row["lift_ci_low"]) if ok else None,
                     "ci_high": rounded(row["lift_ci_high"]) if ok else None,
                     "p_value": p_value_3g(row["p_value"]) if ok else None})
    h, tot = hidden.loc["(total)"], t.loc["(total)"]
    ok = not h.any()
    pooled = {**{c: None if h[c] else int(tot[c]) for c in _COUNTS},
              "lift": rounded(overall.estimate) if ok else None, "ci_low": rounded(overall.ci_low) if ok else None,
              "ci_high": rounded(overall.ci_high) if ok else None, "p_value": p_value_3g(overall.p_value) if ok else None}
    return rows, pooled


def campaign_kpis(clinic, as_of, min_count: int = 5, *,
                  config: str | Path | Mapping | CampaignConfig | None = None) -> dict:
    """Return-rate lift (sent − holdout) of last month's campaign runs and of the last 12 months' campaigns by kind.

    Parameters
    ----------
    clinic : ClinicData
        As known at `as_of`.
    as_of : str or Timestamp
    min_count : int
        Counts from 1 to ``min_count - 1`` are hidden (with secondary suppression), lifts with them.
    config : path, mapping, CampaignConfig or None
        Campaign definitions (the evaluation window).

    Returns
    -------
    dict
        ``window_days``, ``conf_level``, ``last_month`` and ``last_12m`` (rows, pooled ``overall``,
        ``pending_contacts``, ``suppressed_rows``).

    Raises
    ------
    MissingTableError
        Without a contacts table.
    """
    as_of = pd.Timestamp(as_of).normalize()
    contacts = clinic.require("contacts", "the campaign-lift KPI")
    cfg = load_campaigns(config)
    window = int(cfg.evaluation.get("window_days", 30))
    out: dict[str, Any] = {"window_days": window, "conf_level": 0.95}
    closed_by = as_of - pd.Timedelta(days=window)  # a contact sent on or before this day has a closed window
    for key, start, end, by, name in (("last_month", month_start(as_of, 1), month_start(as_of) - pd.Timedelta(days=1),
                                       "run", "campaign_id"),
                                      ("last_12m", month_start(as_of, 11), as_of, "campaign", "kind")):
        ev = evaluate_campaigns(clinic, as_of, config=cfg, sent_from=start, sent_to=end, by=by, conf_level=0.95)
        rows, pooled = _lift_rows(ev.per_campaign, ev.overall, name, min_count)
        sent = between(contacts, "sent_at", start, end)["sent_at"].dt.normalize()
        out[key] = {"sent_from": f"{start:%Y-%m-%d}", "sent_to": f"{end:%Y-%m-%d}", "rows": rows, "overall": pooled,
                    "pending_contacts": shown_count(int((sent > closed_by).sum()), min_count),
                    "suppressed_rows": sum(any(r[c] is None for c in _COUNTS) for r in rows)}
    return out


def campaign_actions(plan, patients: pd.DataFrame, config=None, min_count: int = 5, limit: int = 5) -> dict:
    """Next month's actions for page 1: each staff list with anyone on it, its rows and its file.

    Parameters
    ----------
    plan : CampaignPlan
        The month's plan (for the month after the report month).
    patients : DataFrame
        The clinic's patients table (the lists are built as the outreach folder's are).
    config : path, mapping or CampaignConfig, optional
        The campaign definitions the plan was made with.
    min_count : int
        A list of 1 to ``min_count - 1`` rows is shown without its count.
    limit : int
        At most this many actions, in :data:`ACTION_PRIORITY` order.

    Returns
    -------
    dict
        ``planned_month`` (``YYYY-MM``) and ``rows``: ``{audience, file, rows, recipients}`` (counts None
        when hidden).
    """
    from crm_analysis.campaigns.staff_lists import staff_lists

    lists = [s for s in staff_lists(plan, patients, config) if len(s.frame)]
    rank = {a: i for i, a in enumerate(ACTION_PRIORITY)}
    lists.sort(key=lambda s: (rank.get(s.audience, len(rank)), s.name))
    rows = [{"audience": s.audience, "file": f"{s.name}.xlsx", "rows": shown_count(len(s.frame), min_count),
             "recipients": shown_count(s.frame["환자번호"].nunique(), min_count) if "환자번호" in s.frame else None}
            for s in lists[:limit]]
    return {"planned_month": f"{plan.start:%Y-%m}", "rows": rows}
