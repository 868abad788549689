"""Closed-loop evaluation: did each campaign bring patients back, compared with its holdout?

For every row of the contacts log (발송이력) whose response window has closed by
`as_of`, the outcome is whether the patient visited within
``(sent day, sent day + window_days]`` (30 days by default) and the revenue of
those visits. The comparison is **intention to treat on the assignment**: all
rows assigned ``sent`` against all rows assigned ``holdout``, whether or not
the message was delivered, so the randomisation protects it from bias
(estimand: the effect of *being assigned* to receive the message, the
generator's ``true_lift_itt``).

Per campaign
    Return-rate lift = rate(sent) − rate(holdout), with a Newcombe (hybrid
    score) interval and a score test (``statsmodels.stats.proportion.
    confint_proportions_2indep`` / ``test_proportions_2indep``); revenue per
    contact difference with a Welch (unequal variances) normal interval; the
    message cost (``channel_cost_krw`` × messages sent) and cost per extra return.
Overall
    The campaigns pooled with weights proportional to their size (so the
    estimand is the row-weighted average ITT lift), variance from each
    campaign's Agresti–Caffo-adjusted proportions (stable when a holdout has no
    returns), normal interval and z test.

When checking many campaigns at once, widen each interval (Bonferroni:
``conf_level = 1 − 0.05 / n_campaigns``) or read the pooled line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

from crm_analysis.campaigns.definitions import CampaignConfig, load_campaigns
from crm_analysis.estimates import Estimate
from crm_analysis.ids import id_positions
from crm_analysis.privacy import DEFAULT_MIN_COUNT, suppressed_mask

__all__ = ["CampaignEvaluation", "contact_outcomes", "evaluate_campaigns"]

_RUN_SUFFIX = r"-\d{4}(?:-\d{2})?$"


def contact_outcomes(contacts: pd.DataFrame, visits: pd.DataFrame, as_of, *, window_days: int = 30) -> pd.DataFrame:
    """One row per contact whose window closed by `as_of`: ``returned`` and ``revenue`` in the window.

    Visits on the send day do not count (the window is ``(sent day, sent day + window]``).
    Two ``merge_asof`` look-ups per contact (next visit; cumulative revenue), no per-patient loop.
    """
    as_of = pd.Timestamp(as_of).normalize()
    c = contacts[["contact_id", "campaign_id", "patient_id", "channel", "sent_at", "arm"]].copy()
    c["day"] = c["sent_at"].dt.normalize()
    c["window_end"] = c["day"] + pd.Timedelta(days=window_days)
    c = c.loc[(c["window_end"] <= as_of).to_numpy()].reset_index(drop=True)
    c["patient_id"] = c["patient_id"].astype(str)
    # patients as integer codes, and only the visits of contacted patients: text keys make the
    # group-bys and as-of joins below several times slower
    c["who"], contacted = pd.factorize(c["patient_id"])
    # Only the visits that can fall in a window: after the first send day, up to the last window's end (by
    # as_of, as every kept window). An earlier visit adds the same to a contact's revenue at its start and at
    # its end, so it cancels out.
    keep = ((visits["visit_date"] > c["day"].min()) & (visits["visit_date"] <= c["window_end"].max())).to_numpy() \
        if len(c) else np.zeros(len(visits), dtype=bool)
    who = id_positions(visits["patient_id"], contacted, keep)
    rows = np.flatnonzero(keep)[who >= 0]
    v = pd.DataFrame({"who": who[who >= 0], "visit_date": visits["visit_date"].to_numpy()[rows],
                      "revenue": (visits["charge_insured"].fillna(0) + visits["charge_self_pay"].fillna(0))
                      .to_numpy()[rows]})
    v = v.groupby(["who", "visit_date"], as_index=False)["revenue"].sum()
    v["cum"] = v.groupby("who")["revenue"].cumsum()  # rows are sorted by (who, visit_date)
    v = v.sort_values(["visit_date", "who"], kind="stable")
    c["after"] = c["day"] + pd.Timedelta(days=1)
    order = c.sort_values("after", kind="stable").index
    nxt = pd.merge_asof(c.loc[order, ["after", "who"]], v[["visit_date", "who"]], left_on="after",
                        right_on="visit_date", by="who", direction="forward")
    c.loc[order, "next_visit"] = nxt["visit_date"].to_numpy()
    cum = v[["visit_date", "who", "cum"]]
    at_start = pd.merge_asof(c.loc[order, ["day", "who"]], cum, left_on="day", right_on="visit_date",
                             by="who", direction="backward")["cum"].fillna(0).to_numpy()
    order_end = c.sort_values("window_end", kind="stable").index
    at_end = pd.merge_asof(c.loc[order_end, ["window_end", "who"]], cum, left_on="window_end",
                           right_on="visit_date", by="who", direction="backward")["cum"].fillna(0).to_numpy()
    c.loc[order, "cum_start"] = at_start
    c.loc[order_end, "cum_end"] = at_end
    c["returned"] = (c["next_visit"] <= c["window_end"]).fillna(False).astype(bool)
    c["revenue"] = (c["cum_end"] - c["cum_start"]).round(2)
    return c[["contact_id", "campaign_id", "patient_id", "channel", "sent_at", "arm", "returned", "revenue"]]


@dataclass(frozen=True)
class CampaignEvaluation:
    """Lifts of past campaigns, per campaign and pooled.

    Attributes
    ----------
    per_campaign : DataFrame
        One row per campaign: sizes, patients who returned (``returned_sent``,
        ``returned_holdout``), return rates, lift and CI, p-value, revenue per
        contact by arm and its difference with CI, cost, cost per extra return.
    lifts : Mapping of str to Estimate
        The return-rate lift of each campaign and ``"overall"``.
    overall : Estimate
        The pooled lift.
    window_days : int
    conf_level : float
    """

    per_campaign: pd.DataFrame
    lifts: Mapping[str, Estimate]
    overall: Estimate | None
    window_days: int
    conf_level: float

    def summary(self) -> pd.DataFrame:
        """Per-campaign table plus an ``overall`` row (aggregates only)."""
        if self.overall is None:
            return self.per_campaign.copy()
        o = self.overall
        row = {"campaign_id": "overall", "n_contacts": o.n, "n_sent": o.extras.get("n_sent"),
               "n_holdout": o.extras.get("n_holdout"), "returned_sent": self.per_campaign["returned_sent"].sum(),
               "returned_holdout": self.per_campaign["returned_holdout"].sum(), "lift": o.estimate,
               "lift_ci_low": o.ci_low,
               "lift_ci_high": o.ci_high, "p_value": o.p_value, "cost_krw": self.per_campaign["cost_krw"].sum(),
               "revenue_diff": o.extras.get("revenue_diff"), "revenue_diff_ci_low": o.extras.get("revenue_ci_low"),
               "revenue_diff_ci_high": o.extras.get("revenue_ci_high")}
        return pd.concat([self.per_campaign, pd.DataFrame([row])], ignore_index=True)

    def _repr_html_(self) -> str:
        return (f"<h4>Campaign lifts ({self.window_days}-day return, sent vs holdout, "
                f"{self.conf_level:.0%} CI)</h4>" + self.summary().to_html(index=False, float_format="{:.4g}".format))

    def plot_lifts(self, ax=None, lang: str = "ko", min_count: int = DEFAULT_MIN_COUNT):
        """Forest plot of the lifts (percentage points) with their intervals.

        Campaigns by their names in `lang`; a campaign whose counts the report's tables hide (a count from 1
        to ``min_count - 1``, with secondary suppression as :func:`~crm_analysis.privacy.suppressed_mask`)
        is left out of the chart too.
        """
        import matplotlib.pyplot as plt

        from crm_analysis.data_labels import campaign_kind_name
        from crm_analysis.i18n import label

        t = self.summary()
        counts = ["n_sent", "n_holdout", "returned_sent", "returned_holdout"]
        if not t.empty:
            t = t.loc[~suppressed_mask(t, counts, min_count, additive="columns").any(axis=1).to_numpy()]
        if ax is None and t.empty:
            _, ax = plt.subplots(figsize=(7, 1.5))
        if t.empty:
            ax.set_axis_off()
            return ax
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.4 * len(t) + 1.2))
        y = np.arange(len(t))[::-1]
        ax.errorbar(t["lift"] * 100, y, xerr=[(t["lift"] - t["lift_ci_low"]) * 100, (t["lift_ci_high"] - t["lift"]) * 100],
                    fmt="o", color="tab:blue", capsize=3)
        ax.axvline(0, color="grey", lw=1)
        names = t["campaign_id"].replace({"overall": label("camp_overall", lang)})
        ax.set_yticks(y, [campaign_kind_name(c, lang) for c in names])
        ax.set_xlabel(label("camp_lift_pp", lang))
        ax.set_title(label("camp_lift_title", lang), fontsize=10)
        return ax


def _welch(x1: np.ndarray, x0: np.ndarray, z: float) -> tuple[float, float, float, float]:
    d = float(x1.mean() - x0.mean()) if len(x1) and len(x0) else float("nan")
    se = float(np.sqrt(x1.var(ddof=1) / len(x1) + x0.var(ddof=1) / len(x0))) if len(x1) > 1 and len(x0) > 1 else float("nan")
    return d, d - z * se, d + z * se, se


def evaluate_campaigns(clinic, as_of, *, config: str | Mapping | CampaignConfig | None = None,
                       window_days: int | None = None, sent_from=None, sent_to=None, by: str = "run",
                       conf_level: float = 0.95) -> CampaignEvaluation:
    """Compare sent against holdout for every campaign in the contacts log whose window has closed.

    Parameters
    ----------
    clinic : ClinicData
        Needs ``contacts`` and ``visits``.
    as_of : date-like
        Only data up to this day; a contact counts once ``sent day + window ≤ as_of``.
    config : optional
        Campaign config (for ``evaluation.window_days`` and ``channel_cost_krw``).
    window_days : int, optional
        Return window (default from the config, 30).
    sent_from, sent_to : date-like, optional
        Only contacts sent in this range (e.g. last month's campaigns).
    by : {"run", "campaign"}
        ``run``: one line per ``campaign_id`` of the log (``RECALL-2026-08``);
        ``campaign``: runs of the same campaign pooled (the trailing ``-YYYY`` or
        ``-YYYY-MM`` removed: ``RECALL``). Pooling the counts of runs is unbiased
        for the size-weighted lift when their holdout shares are equal.
    conf_level : float
        Interval level (use ``1 − 0.05/k`` for k simultaneous intervals).

    Returns
    -------
    CampaignEvaluation
    """
    cfg = load_campaigns(config)
    window = int(window_days or cfg.evaluation.get("window_days", 30))
    contacts = clinic.require("contacts", "campaign evaluation")
    if sent_from is not None:
        contacts = contacts.loc[(contacts["sent_at"] >= pd.Timestamp(sent_from)).to_numpy()]
    if sent_to is not None:
        contacts = contacts.loc[(contacts["sent_at"] < pd.Timestamp(sent_to) + pd.Timedelta(days=1)).to_numpy()]
    if by not in ("run", "campaign"):
        raise ValueError(f"by must be 'run' or 'campaign', not {by!r}")
    out = contact_outcomes(contacts, clinic.tables["visits"], as_of, window_days=window)
    if by == "campaign":
        out["campaign_id"] = out["campaign_id"].astype(str).str.replace(_RUN_SUFFIX, "", regex=True)
    alpha = 1.0 - conf_level
    z = float(stats.norm.ppf(1 - alpha / 2))
    cost = out["channel"].astype(object).map(dict(cfg.channel_cost_krw)).fillna(0.0).where(out["arm"] == "sent", 0.0)
    out = out.assign(cost=cost)
    rows, lifts, pooled = [], {}, []
    for cid, g in out.groupby("campaign_id", sort=True, observed=True):
        s, h = g[g["arm"] == "sent"], g[g["arm"] == "holdout"]
        n1, n0 = len(s), len(h)
        if n1 == 0 or n0 == 0:
            continue
        x1, x0 = int(s["returned"].sum()), int(h["returned"].sum())
        with np.errstate(divide="ignore", invalid="ignore"):  # statsmodels also computes ratios we do not use
            lo, hi = confint_proportions_2indep(x1, n1, x0, n0, method="newcomb", compare="diff", alpha=alpha)
            p = float(test_proportions_2indep(x1, n1, x0, n0, method="score", compare="diff").pvalue)
        lift = x1 / n1 - x0 / n0
        rd, rlo, rhi, rse = _welch(s["revenue"].to_numpy(float), h["revenue"].to_numpy(float), z)
        total_cost = float(s["cost"].sum())
        extra = lift * n1
        lifts[str(cid)] = Estimate(lift, lo, hi, p, "Newcombe interval, score test (ITT on assignment)", n1 + n0,
                                   "risk_difference", f"{cid}: {window}-day return rate, sent − holdout",
                                   conf_level=conf_level, extras={"rate_sent": x1 / n1, "rate_holdout": x0 / n0})
        rows.append({"campaign_id": str(cid), "first_sent": g["sent_at"].min().normalize(), "n_contacts": n1 + n0,
                     "n_sent": n1, "n_holdout": n0, "returned_sent": x1, "returned_holdout": x0,
                     "rate_sent": x1 / n1, "rate_holdout": x0 / n0, "lift": lift,
                     "lift_ci_low": lo, "lift_ci_high": hi, "p_value": p,
                     "revenue_sent": float(s["revenue"].mean()), "revenue_holdout": float(h["revenue"].mean()),
                     "revenue_diff": rd, "revenue_diff_ci_low": rlo, "revenue_diff_ci_high": rhi,
                     "cost_krw": total_cost, "cost_per_extra_return": total_cost / extra if extra > 0 else float("nan")})
        pa1, pa0 = (x1 + 1) / (n1 + 2), (x0 + 1) / (n0 + 2)
        pooled.append((n1 + n0, lift, pa1 * (1 - pa1) / (n1 + 2) + pa0 * (1 - pa0) / (n0 + 2), rd, rse ** 2, n1, n0))
    per = pd.DataFrame(rows)
    overall = None
    if pooled:
        arr = np.array(pooled, dtype=float)
        w = arr[:, 0] / arr[:, 0].sum()
        est, se = float(w @ arr[:, 1]), float(np.sqrt((w ** 2) @ arr[:, 2]))
        rev_ok = ~np.isnan(arr[:, 4])
        rev = float(w[rev_ok] @ arr[rev_ok, 3] / w[rev_ok].sum()) if rev_ok.any() else float("nan")
        rev_se = float(np.sqrt(((w[rev_ok] / w[rev_ok].sum()) ** 2) @ arr[rev_ok, 4])) if rev_ok.any() else float("nan")
        p = float(2 * stats.norm.sf(abs(est / se))) if se > 0 else float("nan")
        overall = Estimate(est, est - z * se, est + z * se, p,
                           "size-weighted pooled risk difference, Agresti–Caffo variance, normal interval",
                           int(arr[:, 0].sum()), "risk_difference",
                           f"all campaigns: {window}-day return rate, sent − holdout", conf_level=conf_level,
                           extras={"n_sent": int(arr[:, 5].sum()), "n_holdout": int(arr[:, 6].sum()),
                                   "revenue_diff": rev, "revenue_ci_low": rev - z * rev_se,
                                   "revenue_ci_high": rev + z * rev_se})
        lifts["overall"] = overall
    return CampaignEvaluation(per_campaign=per, lifts=lifts, overall=overall, window_days=window,
                              conf_level=conf_level)
