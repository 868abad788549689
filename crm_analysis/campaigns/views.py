"""Aggregate tables for the campaign report (notebook 40): no names, phones, emails or ids.

Column names are label keys (``camp_*`` in ``crm_analysis/labels/campaigns.yaml``),
so :func:`crm_analysis.i18n.localised_view` shows them in Korean or English.
Counts from 1 to 4 are hidden with :func:`crm_analysis.privacy.suppress_small_counts`
(with the values that would reveal them).
"""

from __future__ import annotations

import pandas as pd

from crm_analysis.campaigns.evaluation import CampaignEvaluation
from crm_analysis.campaigns.planner import CampaignPlan
from crm_analysis.cells import p_value_text
from crm_analysis.data_labels import campaign_kind_name
from crm_analysis.i18n import check_lang, label
from crm_analysis.privacy import DEFAULT_MIN_COUNT, suppress_small_counts

__all__ = ["list_sizes", "message_costs", "not_sent_counts", "suppression_counts", "recent_lifts", "lift_table"]

_GROUPED = r"^(gestational_week|vaccination)_.*$"
#: The counts behind a campaign's lift: arm sizes and the patients who returned in each arm.
_LIFT_COUNTS = ["n_sent", "n_holdout", "returned_sent", "returned_holdout"]


def _label_or(key: str, lang: str, default: str) -> str:
    try:
        return label(key, lang)
    except KeyError:
        return default


def list_sizes(plan: CampaignPlan, lang: str = "ko") -> pd.DataFrame:
    """Messages planned per campaign, kind and reason (pregnancy weeks and vaccines grouped)."""
    lang = check_lang(lang)
    s = plan.sends
    reason = s["reason"].astype(str).str.replace(_GROUPED, r"\1", regex=True)
    t = (s.assign(reason=reason).groupby(["campaign_id", "kind", "reason"], observed=True)
         .agg(camp_messages=("message", "size"), camp_recipients=("recipient_id", "nunique")).reset_index())
    t["kind"] = t["kind"].map(lambda k: label(f"camp_{k}", lang))
    t["reason"] = t["reason"].map(lambda r: _label_or(f"camp_why_{r}", lang, r))
    t["campaign_id"] = t["campaign_id"].map(lambda c: campaign_kind_name(c, lang))
    t = t.rename(columns={"campaign_id": "camp_campaign", "kind": "camp_kind", "reason": "camp_reason"})
    return suppress_small_counts(t, ["camp_messages", "camp_recipients"], additive="columns")


def message_costs(plan: CampaignPlan, lang: str = "ko") -> pd.DataFrame:
    """Messages planned and their cost (KRW) per campaign and message type (SMS, LMS, 알림톡, 친구톡, email),
    priced as each message really goes (:mod:`crm_analysis.campaigns.message_types`); a cost is hidden with
    its count. The consent reconfirmation notices are a line of their own.

    A campaign's lines add up to its messages in :func:`list_sizes`, so the two tables hide alike: a campaign
    with a count hidden there has all its lines hidden here, and a campaign with one line hidden here has a
    second one hidden too."""
    from crm_analysis.campaigns.message_types import MESSAGE_TYPES

    lang = check_lang(lang)
    notices = plan.reconfirmation
    rows = [plan.sends[["campaign_id", "message_type", "cost_krw"]]]
    if notices is not None and "message_type" in notices and len(notices):
        rows.append(notices[["message_type", "cost_krw"]].assign(campaign_id=label("camp_reconfirmation", lang)))
    s = pd.concat(rows, ignore_index=True)
    s["cost_krw"] = pd.to_numeric(s["cost_krw"]).astype(float)  # an empty plan's column has no dtype
    t = s.groupby(["campaign_id", "message_type"], observed=True).agg(
        camp_messages=("cost_krw", "size"), camp_cost=("cost_krw", "sum")).reset_index()
    t["camp_messages"] = t["camp_messages"].astype("int64")
    t["message_type"] = t["message_type"].map(lambda c: MESSAGE_TYPES.get(c, (c, c))[lang == "en"])
    t["camp_cost"] = t["camp_cost"].round(0)
    t["campaign_id"] = t["campaign_id"].map(lambda c: campaign_kind_name(c, lang))  # as list_sizes names it
    t = t.rename(columns={"campaign_id": "camp_campaign", "message_type": "camp_message_type"})
    # a campaign's messages add up to its total in list_sizes: a campaign that table hides any of is hidden
    # whole here, and within a campaign one hidden message type takes another with it
    sizes = list_sizes(plan, lang)
    hidden_there = t["camp_campaign"].isin(sizes.loc[sizes["camp_messages"].isna(), "camp_campaign"]).to_numpy()
    return suppress_small_counts(t, ["camp_messages"], linked={"camp_cost": "camp_messages"}, additive="columns",
                                 row_groups=t["camp_campaign"], hidden=hidden_there[:, None])


def not_sent_counts(plan: CampaignPlan, lang: str = "ko") -> pd.DataFrame:
    """Audience members not sent a message, per campaign and reason (holdout included)."""
    lang = check_lang(lang)
    d = plan.dropped.copy()
    d["reason"] = d["reason"].map(lambda r: _label_or(f"camp_reason_{r}", lang, r))
    d["campaign_id"] = d["campaign_id"].map(lambda c: campaign_kind_name(c, lang))
    t = d.rename(columns={"campaign_id": "camp_campaign", "reason": "camp_reason", "n": "camp_n"})
    t["camp_n"] = t["camp_n"].astype("int64")
    return suppress_small_counts(t, ["camp_n"], additive="columns")


def suppression_counts(plan: CampaignPlan, lang: str = "ko") -> pd.DataFrame:
    """Suppressed contacts per reason, channel and scope."""
    lang = check_lang(lang)
    s = plan.suppression
    t = s.groupby(["reason", "channel", "scope"], observed=True).size().rename("camp_suppressed").reset_index()
    t["reason"] = t["reason"].map(lambda r: label(f"camp_reason_{r}", lang))
    t["channel"] = t["channel"].map(lambda c: label(f"camp_channel_{c}", lang))
    t["scope"] = t["scope"].map(lambda c: label(f"camp_scope_{c}", lang))
    t = t.rename(columns={"reason": "camp_reason", "channel": "camp_channel", "scope": "camp_scope"})
    t["camp_suppressed"] = t["camp_suppressed"].astype("int64")
    return suppress_small_counts(t, ["camp_suppressed"], additive="columns")


def recent_lifts(clinic, as_of, *, months: int = 12, by: str = "campaign") -> CampaignEvaluation:
    """Evaluation of the campaigns sent in the `months` before `as_of`.

    Raises
    ------
    InsufficientDataError
        Without contacts, or without both sent and holdout contacts (:mod:`crm_analysis.sufficiency`).
    """
    from crm_analysis.campaigns.evaluation import evaluate_campaigns
    from crm_analysis.sufficiency import require

    require("campaign_lifts", clinic, as_of)
    since = pd.Timestamp(as_of).normalize() - pd.DateOffset(months=months)
    return evaluate_campaigns(clinic, as_of, sent_from=since + pd.Timedelta(days=1), by=by)


def lift_table(evaluation: CampaignEvaluation | None, lang: str = "ko",
               min_count: int = DEFAULT_MIN_COUNT) -> pd.DataFrame:
    """Per campaign and overall: arm sizes, return rates, lift (pp) with CI, p-value, revenue difference, cost.

    The rule of the monthly KPIs (:mod:`crm_analysis.campaigns.monthly`), so the appendix hides what page 1
    hides: the arm sizes and the patients who returned in each arm are suppressed together (secondary
    suppression down each column, whose total is the overall row); an arm's return rate is hidden with its
    size or its returners, and a campaign's lift, interval, p-value and revenue difference with any of its
    four counts (the lift and one rate give the other). The cost is hidden with the size of the sent arm.
    Return rates and the lift are fractions (``attrs["kinds"]`` marks them as a rate and percentage points for
    :func:`crm_analysis.i18n.localised_view`: ``43.4%``, ``+6.1%p``).
    Empty (with the headers) when there is nothing to evaluate.
    """
    lang = check_lang(lang)
    cols = ["camp_campaign", "camp_n_sent", "camp_n_holdout", "camp_return_sent", "camp_return_holdout", "camp_lift",
            "camp_lift_ci", "camp_p_value", "camp_revenue_diff", "camp_cost"]
    if evaluation is None or evaluation.per_campaign.empty:
        return pd.DataFrame(columns=cols)
    t = evaluation.summary()
    counts = t[_LIFT_COUNTS].astype("int64").set_axis(range(len(t)))
    total_row = len(t) - 1 if evaluation.overall is not None else None
    if total_row is not None:  # the counts of the pooled line are the sums of the campaigns'
        counts.iloc[total_row] = counts.iloc[:total_row].sum()
    hidden = suppress_small_counts(counts, _LIFT_COUNTS, min_count, additive="columns", total_row=total_row).isna()
    any_hidden = hidden.any(axis=1).to_numpy()
    out = pd.DataFrame({
        "camp_campaign": t["campaign_id"].replace({"overall": label("camp_overall", lang)}).map(
            lambda c: campaign_kind_name(c, lang)),
        "camp_n_sent": t["n_sent"].astype("Int64").mask(hidden["n_sent"].to_numpy()),
        "camp_n_holdout": t["n_holdout"].astype("Int64").mask(hidden["n_holdout"].to_numpy()),
        "camp_return_sent": t["rate_sent"].astype("Float64").round(3).mask(
            (hidden["n_sent"] | hidden["returned_sent"]).to_numpy()),
        "camp_return_holdout": t["rate_holdout"].astype("Float64").round(3).mask(
            (hidden["n_holdout"] | hidden["returned_holdout"]).to_numpy()),
        "camp_lift": t["lift"].round(3).astype("Float64").mask(any_hidden),
        "camp_lift_ci": [None if h else f"{lo * 100:+.1f} ~ {hi * 100:+.1f}"
                         for h, lo, hi in zip(any_hidden, t["lift_ci_low"], t["lift_ci_high"])],
        "camp_p_value": [None if h else p_value_text(p) for h, p in zip(any_hidden, t["p_value"])],
        "camp_revenue_diff": t["revenue_diff"].round(-1).astype("Float64").mask(any_hidden),
        "camp_cost": t["cost_krw"].round(0).astype("Float64").mask(hidden["n_sent"].to_numpy()),
    })
    out.attrs["kinds"] = {"camp_return_sent": "rate", "camp_return_holdout": "rate", "camp_lift": "pp"}
    return out
