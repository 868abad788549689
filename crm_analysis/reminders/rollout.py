"""Roll-out evaluation: interrupted time series of the no-show rate.

The no-show rate (no-shows / non-cancelled appointments) per month (or week)
is regressed by OLS on a linear time trend, and for each roll-out date k on a
level step (1 from the roll-out period on) and a slope change (periods since
the roll-out), plus month-of-year dummies when the series is long enough and a
dummy for a randomised pilot month. Errors are HAC (Newey–West).

The **level change** reported for roll-out k is the mean gap between the fitted
series and its counterfactual without roll-out k over the first
``effect_months`` periods from the roll-out: ``level_k + slope_k·mean(0, …,
effect_months − 1)``, a linear contrast tested with the HAC covariance. For
the first roll-out it is the change versus no reminders; for later ones, the
change versus the previous regime continued. Roll-out dates should fall on
the first day of a period (month or week); otherwise the period containing
the date counts as treated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm

from crm_analysis.estimates import Estimate
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders.rules import load_rules

__all__ = ["rate_series", "ITSResult", "interrupted_time_series", "plot_its"]


def rate_series(table: pd.DataFrame, frequency: str = "M") -> pd.DataFrame:
    """No-show rate per period among non-cancelled appointments, with case-mix means.

    Returns
    -------
    DataFrame
        Index ``period`` (pandas Period); columns ``appointments``,
        ``no_shows``, ``no_show_rate``, ``reminded_share`` and the case-mix
        means ``mix_log_lead`` (mean log(1 + lead days)), ``mix_prior_no_shows``
        (mean earlier no-shows, capped at 3) and ``mix_eligible`` (share
        booked far enough ahead for a reminder).
    """
    rows = table["analysed"].to_numpy()
    g = pd.DataFrame({  # the columns it needs only: copying the whole table was most of the time
        "period": table["scheduled_at"][rows].dt.to_period(frequency), "no_show": table["no_show"][rows],
        "reminded": table["reminded"][rows], "_lead": np.log1p(table["lead_days"][rows].clip(lower=0)),
        "_prior": table["prior_no_shows"][rows].clip(upper=3), "eligible": table["eligible"][rows],
    }).groupby("period", observed=True)
    out = pd.DataFrame({"appointments": g.size(), "no_shows": g["no_show"].sum().astype(np.int64),
                        "reminded_share": g["reminded"].mean(), "mix_log_lead": g["_lead"].mean(),
                        "mix_prior_no_shows": g["_prior"].mean(), "mix_eligible": g["eligible"].mean()})
    full = pd.period_range(out.index.min(), out.index.max(), freq=frequency) if len(out) else out.index
    out = out.reindex(full)
    out.index.name = "period"
    out["appointments"] = out["appointments"].fillna(0).astype(np.int64)
    out["no_shows"] = out["no_shows"].fillna(0).astype(np.int64)
    out["no_show_rate"] = out["no_shows"] / out["appointments"].where(out["appointments"] > 0)
    return out[["appointments", "no_shows", "no_show_rate", "reminded_share", "mix_log_lead", "mix_prior_no_shows",
                "mix_eligible"]]


@dataclass(frozen=True)
class ITSResult:
    """Segmented-regression results.

    Attributes
    ----------
    series : DataFrame
        Per period: observed rate, fitted, counterfactual without any roll-out
        (``counterfactual``), and without only the latest roll-out
        (``counterfactual_previous``).
    level_changes : dict of str to Estimate
        Mean change over the first ``effect_months`` periods, per roll-out.
    instant_level_changes : dict of str to Estimate
        The step at the roll-out date alone.
    slope_changes : dict of str to Estimate
    rollouts : tuple of (name, Timestamp)
    params : DataFrame
        All coefficients with HAC SEs.
    """

    series: pd.DataFrame = field(repr=False)
    level_changes: dict
    instant_level_changes: dict = field(repr=False)
    slope_changes: dict = field(repr=False)
    rollouts: tuple = ()
    params: pd.DataFrame = field(default=None, repr=False)
    seasonality: bool = False
    case_mix: tuple = ()

    def summary(self) -> pd.DataFrame:
        """One row per roll-out and quantity."""
        rows = []
        for name in self.level_changes:
            for kind, d in (("level_change", self.level_changes), ("instant_level_change", self.instant_level_changes),
                            ("slope_change_per_period", self.slope_changes)):
                rows.append(d[name].summary().assign(rollout=name, quantity=kind))
        out = pd.concat(rows, ignore_index=True)
        return out[["rollout", "quantity", *[c for c in out.columns if c not in ("rollout", "quantity")]]]

    def _repr_html_(self) -> str:
        return "<h4>Interrupted time series</h4>" + "".join(e._repr_html_() for e in self.level_changes.values())


def interrupted_time_series(table: pd.DataFrame, rules=None, conf_level: float = 0.95) -> ITSResult:
    """Segmented regression of the no-show rate around the roll-out dates (OLS, HAC errors).

    Parameters
    ----------
    table : DataFrame
        From :func:`~crm_analysis.reminders.analysis_table.appointment_table`.
    rules : path, mapping or None
        ``rollouts``, ``pilot_month`` and the ``its`` section.
    conf_level : float

    Returns
    -------
    ITSResult

    Raises
    ------
    CrmAnalysisError
        Without roll-out dates, or with too few periods before or after one.
    """
    r = load_rules(rules)
    cfg = r["its"]
    rollouts = list(r["rollouts"] or [])
    if not rollouts:
        raise CrmAnalysisError("no roll-out date in the reminder rules, so there is no interrupted time series; "
                               "set rollouts: [{date: YYYY-MM-DD, schedule: ...}]")
    freq = cfg["frequency"]
    s = rate_series(table, freq)
    s = s.loc[s["appointments"] > 0]
    t = np.array([(p - s.index[0]).n for p in s.index], dtype=float)
    x = pd.DataFrame({"const": 1.0, "time": t}, index=s.index)
    names = []
    for item in rollouts:
        name = str(item.get("schedule") or item["date"])
        start = pd.Timestamp(item["date"]).to_period(freq)
        k = float((start - s.index[0]).n)
        before, after = int((t < k).sum()), int((t >= k).sum())
        if before < 3 or after < 3:
            raise CrmAnalysisError(f"roll-out {name} on {item['date']}: {before} periods before and {after} after in "
                                   "the data; the time series needs at least 3 on each side")
        x[f"level[{name}]"] = (t >= k).astype(float)
        x[f"slope[{name}]"] = np.maximum(t - k, 0.0)
        names.append((name, pd.Timestamp(item["date"])))
    if r["pilot_month"]:
        pil = pd.Period(str(r["pilot_month"]), freq="M")
        in_pilot = np.array([p.asfreq("M", how="start") == pil if freq == "W" else p == pil for p in s.index])
        if in_pilot.any():
            x["pilot"] = in_pilot.astype(float)
    n_months = len(s) if freq == "M" else len(s) / 4.345
    seasonal = n_months >= cfg["seasonality_min_periods"]
    if seasonal:
        moy = pd.get_dummies(pd.Index([p.asfreq("M", how="start").month if freq == "W" else p.month
                                       for p in s.index]), prefix="moy", drop_first=True, dtype=float)
        moy.index = s.index
        x = pd.concat([x, moy], axis=1)
    mix = [c for c in cfg["case_mix"] if s[c].std() > 0]
    x = pd.concat([x, s[mix]], axis=1)
    y = s["no_show_rate"].astype(float)
    fit_kw = dict(cov_type="HAC", cov_kwds={"maxlags": int(cfg["hac_maxlags"]), "use_correction": True}, use_t=True)
    if cfg["weighted"]:
        res = sm.WLS(y, x, weights=s["appointments"].astype(float)).fit(**fit_kw)
    else:
        res = sm.OLS(y, x).fit(**fit_kw)
    alpha = 1 - conf_level
    k_eff = int(cfg["effect_months"]) if freq == "M" else int(round(cfg["effect_months"] * 4.345))
    level, instant, slope = {}, {}, {}
    cols = list(x.columns)
    n = int(s["appointments"].sum())
    for name, date in names:
        for store, weights, what in (
                (level, {f"level[{name}]": 1.0, f"slope[{name}]": (k_eff - 1) / 2},
                 f"mean change in the no-show rate over the first {k_eff} periods from {date:%Y-%m-%d}"),
                (instant, {f"level[{name}]": 1.0}, f"step in the no-show rate at {date:%Y-%m-%d}"),
                (slope, {f"slope[{name}]": 1.0},
                 f"change in the no-show rate's slope per period from {date:%Y-%m-%d}")):
            vec = np.array([weights.get(c, 0.0) for c in cols])
            tt = res.t_test(vec)
            lo, hi = np.asarray(tt.conf_int(alpha=alpha)).ravel()
            store[name] = Estimate(float(np.squeeze(tt.effect)), lo, hi, float(np.squeeze(tt.pvalue)),
                                   f"segmented {'WLS' if cfg['weighted'] else 'OLS'}, HAC (Newey-West, "
                                   f"{cfg['hac_maxlags']} lags, t reference)"
                                   + (", case-mix terms" if mix else "")
                                   + (", month-of-year terms" if seasonal else ""), n, "risk_difference",
                                   f"{name}: {what}", conf_level, {"periods": len(s)})
    fitted = res.fittedvalues
    x_cf = x.copy()
    for c in cols:
        if c.startswith(("level[", "slope[")):
            x_cf[c] = 0.0
    x_prev = x.copy()
    last = names[-1][0]
    x_prev[f"level[{last}]"] = 0.0
    x_prev[f"slope[{last}]"] = 0.0
    series = s.assign(fitted=fitted, counterfactual=res.predict(x_cf), counterfactual_previous=res.predict(x_prev))
    ci = res.conf_int(alpha=alpha)
    params = pd.DataFrame({"coef": res.params, "se": res.bse, "ci_low": ci[0], "ci_high": ci[1],
                           "p_value": res.pvalues})
    return ITSResult(series, level, instant, slope, tuple(names), params, seasonal, tuple(mix))


def plot_its(result: ITSResult, lang: str = "ko", ax=None):
    """Observed monthly no-show rate, the fitted segments and the no-reminder counterfactual.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    from crm_analysis.i18n import check_lang, label

    check_lang(lang)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    s = result.series
    when = s.index.to_timestamp()
    ax.plot(when, s["no_show_rate"], "o", color="0.35", ms=4, label=label("rem_observed", lang))
    ax.plot(when, s["fitted"], "-", color="C0", lw=2, label=label("rem_fitted", lang))
    ax.plot(when, s["counterfactual"], "--", color="C3", lw=1.5, label=label("rem_counterfactual", lang))
    for name, date in result.rollouts:
        ax.axvline(date, color="0.6", lw=1, ls=":")
        ax.annotate(name, (date, 1.0), xycoords=("data", "axes fraction"), va="top", ha="left", fontsize=8)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel(label("rem_no_show_rate", lang))
    ax.set_title(label("rem_its_title", lang))
    ax.legend(loc="lower left", fontsize=8)
    return ax
