"""Roll-out evaluation: interrupted time series of the no-show rate.

Two models share the same segmented design, a time trend (periods since the
first), and for each roll-out date k a level step (1 from the roll-out period
on) and a slope change (periods since the roll-out), plus month-of-year
dummies when the series is long enough and a dummy for a randomised pilot
month.

``its.model: logistic`` (the default) fits that design to the **appointments**:
a logistic GLM of no-show among non-cancelled appointments, with each
appointment's case mix (log(1 + lead days), earlier no-shows capped at 3,
eligibility) beside the period terms, and errors clustered by patient. The
level change is standardised: the mean, over the non-cancelled appointments
of the first ``effect_months`` periods from the roll-out, of the predicted
no-show probability minus that with roll-out k's two terms set to zero, with a
delta-method interval. The covariance is inflated by the period-level
dispersion: the Pearson X² of the periods' observed against expected no-show
counts over its degrees of freedom (periods minus period-level terms), when it
exceeds 1 (extra-binomial variation from month to month, e.g. an epidemic or a
staffing change, which patient clustering does not see); the interval then
uses the t distribution with those degrees of freedom, as a quasi-binomial
model does. Each estimate's ``extras`` hold ``se``, ``dispersion``,
``dispersion_df``, ``residual_autocorrelation`` (lag-1 autocorrelation of the
periods' Pearson residuals: clearly positive values mean the intervals are
too narrow; slightly negative ones are usual in short series) and
``appointments_in_window``.

``its.model: series`` is the earlier method: OLS (WLS with ``weighted``) of
the monthly rate on the same period terms and the monthly case-mix means, with
HAC (Newey–West) errors. Its 95% intervals covered the truth in only 80–83% of
simulated clinics, so its estimates are labelled a plausibility check.

Why the appointment-level model (``benchmarks/bench_reminder_coverage.py
--only its``): in a young clinic the no-show rate climbs for months as
patients build up histories (earlier no-shows) and bookings lengthen. Three
monthly case-mix means, whose effects are estimated from 36 monthly points,
absorb only part of that climb, so the series model overstated the first
roll-out's effect by 1.3–1.5 points on average; the appointments carry the case-mix effects
within each month, on the logit scale the risk follows. And 36 monthly points
carrying ~21 coefficients leave HAC errors 25–30% too small (ordinary WLS
errors were about right: the simulated months carry no autocorrelation for
HAC to correct).

For the first roll-out the level change is the change versus no reminders; for
later ones, the change versus the previous regime continued. Roll-out dates
should fall on the first day of a period (month or week); otherwise the period
containing the date counts as treated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from crm_analysis.estimates import Estimate
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders.glm import fit_binomial
from crm_analysis.reminders.rules import load_rules

__all__ = ["rate_series", "ITSResult", "interrupted_time_series", "plot_its"]

#: Appointment-level case-mix terms of the logistic model, by their names in ``its.case_mix``.
_CASE_MIX = {
    "mix_log_lead": lambda a: np.log1p(a["lead_days"].clip(lower=0).to_numpy(dtype=float)),
    "mix_prior_no_shows": lambda a: a["prior_no_shows"].clip(upper=3).to_numpy(dtype=float),
    "mix_eligible": lambda a: a["eligible"].to_numpy(dtype=float),
}


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
        (``counterfactual_previous``); with the logistic model these are the
        mean predicted probabilities of the period's appointments.
    level_changes : dict of str to Estimate
        Mean change over the first ``effect_months`` periods, per roll-out.
    instant_level_changes : dict of str to Estimate
        The change in the roll-out period alone.
    slope_changes : dict of str to Estimate
        Change per period of the gap between fitted and counterfactual rates
        (logistic: from the first to the last period of the effect window).
    rollouts : tuple of (name, Timestamp)
    params : DataFrame
        All coefficients with their SEs (logistic: log-odds, patient-clustered,
        inflated by ``dispersion``; series: HAC).
    seasonality : bool
        Whether month-of-year terms were used.
    case_mix : tuple of str
        The case-mix terms used.
    model : str
        ``"logistic"`` or ``"series"`` (``its.model`` of the rules).
    dispersion : float
        Logistic model: Pearson X² of the periods' no-show counts over its
        degrees of freedom (NaN with none left, or for the series model); the
        covariance is multiplied by it when above 1.
    plausibility_check : bool
        True when the method's intervals are known to be too narrow (the series
        model): read its estimates as a plausibility check, not as an effect
        with a 95% interval.
    """

    series: pd.DataFrame = field(repr=False)
    level_changes: dict
    instant_level_changes: dict = field(repr=False)
    slope_changes: dict = field(repr=False)
    rollouts: tuple = ()
    params: pd.DataFrame = field(default=None, repr=False)
    seasonality: bool = False
    case_mix: tuple = ()
    model: str = "logistic"
    dispersion: float = float("nan")
    plausibility_check: bool = False

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
        title = "Interrupted time series" + (" (plausibility check)" if self.plausibility_check else "")
        return f"<h4>{title}</h4>" + "".join(e._repr_html_() for e in self.level_changes.values())


def interrupted_time_series(table: pd.DataFrame, rules=None, conf_level: float = 0.95) -> ITSResult:
    """Segmented regression of the no-show rate around the roll-out dates.

    Parameters
    ----------
    table : DataFrame
        From :func:`~crm_analysis.reminders.analysis_table.appointment_table`.
    rules : path, mapping or None
        ``rollouts``, ``pilot_month`` and the ``its`` section (``its.model``:
        ``logistic``, the appointment-level model, or ``series``, the monthly
        rate's WLS with HAC errors; see the module docstring).
    conf_level : float

    Returns
    -------
    ITSResult

    Raises
    ------
    CrmAnalysisError
        Without roll-out dates, with too few periods before or after one, or
        an unknown ``its.model``.
    InsufficientDataError
        If the logistic model cannot be fitted (a :class:`CrmAnalysisError`).
    """
    r = load_rules(rules)
    cfg = r["its"]
    if cfg["model"] not in ("logistic", "series"):
        raise CrmAnalysisError(f"its.model must be 'logistic' (appointments) or 'series' (monthly rates), "
                               f"not {cfg['model']!r}")
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
        names.append((name, pd.Timestamp(item["date"]), k))
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
    k_eff = int(cfg["effect_months"]) if freq == "M" else int(round(cfg["effect_months"] * 4.345))
    fit = _series_fit if cfg["model"] == "series" else _logistic_fit
    return fit(table, s, x, names, seasonal, k_eff, cfg, conf_level)


def _what(name: str, date: pd.Timestamp, k_eff: int) -> dict[str, str]:
    return {"level": f"mean change in the no-show rate over the first {k_eff} periods from {date:%Y-%m-%d}",
            "instant": f"step in the no-show rate at {date:%Y-%m-%d}",
            "slope": f"change in the no-show rate's slope per period from {date:%Y-%m-%d}"}


def _logistic_fit(table, s, x, names, seasonal, k_eff, cfg, conf_level) -> ITSResult:
    """The appointment-level segmented logistic model (see the module docstring)."""
    rows = table["analysed"].to_numpy()
    a = table.loc[rows, ["scheduled_at", "no_show", "lead_days", "prior_no_shows", "eligible"]]
    # clusters: patients (each appointment its own cluster in a table without patient ids)
    groups = table["patient_id"][rows].to_numpy() if "patient_id" in table else np.arange(len(a))
    period = s.index.get_indexer(a["scheduled_at"].dt.to_period(cfg["frequency"]))
    t = x["time"].to_numpy()
    mix = {}
    for c in cfg["case_mix"]:
        if c not in _CASE_MIX:
            raise CrmAnalysisError(f"its.case_mix: unknown term {c!r}; use any of {', '.join(_CASE_MIX)}")
        values = _CASE_MIX[c](a)
        if len(values) and values.min() < values.max():  # a constant term is the intercept's
            mix[c] = values
    design = np.column_stack([x.to_numpy()[period], *mix.values()])
    cols = [*x.columns, *mix]
    res = fit_binomial(design, a["no_show"].to_numpy(dtype=float), groups, cols, "cluster")
    beta, cov = res.params.to_numpy(), res.cov_params().to_numpy()

    # period-level dispersion: observed against expected no-shows per period, Pearson X² over its df
    eta = design @ beta
    p = 1.0 / (1.0 + np.exp(-eta))
    n_per = np.bincount(period, minlength=len(s)).astype(float)
    observed = np.bincount(period, a["no_show"].to_numpy(dtype=float), minlength=len(s))
    expected = np.bincount(period, p, minlength=len(s))
    var = np.bincount(period, p * (1 - p), minlength=len(s))
    resid = (observed - expected) / np.sqrt(np.where(var > 0, var, np.nan))
    resid = resid[np.isfinite(resid)]
    df = len(s) - x.shape[1]
    dispersion = float(np.sum(resid ** 2) / df) if df > 0 else float("nan")
    inflated = bool(np.isfinite(dispersion) and dispersion > 1)
    if inflated:
        cov = cov * dispersion
    alpha = 1 - conf_level
    ref = stats.t(df) if inflated else stats.norm()
    crit = float(ref.ppf(1 - alpha / 2))
    autocorr = float(np.corrcoef(resid[:-1], resid[1:])[0, 1]) if len(resid) > 2 else float("nan")

    method = ("segmented logistic regression of the appointments (GLM, logit link), standardised, delta method, "
              "patient-clustered SE"
              + (f", x{math.sqrt(dispersion):.2f} for period-level overdispersion (t, {df} df)" if inflated else "")
              + (", case-mix terms" if mix else "") + (", month-of-year terms" if seasonal else ""))
    n = int(len(a))
    extras0 = {"periods": len(s), "dispersion": dispersion, "dispersion_df": df,
               "residual_autocorrelation": autocorr}

    def gap(rows_, off):  # mean p − mean p with columns `off` at zero, over rows_, and its gradient
        x1 = design[rows_]
        eta1 = eta[rows_]
        p1, p0 = 1 / (1 + np.exp(-eta1)), 1 / (1 + np.exp(-(eta1 - x1[:, off] @ beta[off])))
        grad = (p1 * (1 - p1) - p0 * (1 - p0)) @ x1
        grad[off] = (p1 * (1 - p1)) @ x1[:, off]  # the columns `off` are zero in the counterfactual
        return float(np.mean(p1 - p0)), grad / len(p1)

    def estimate(value, grad, n_rows, what, name):
        se = math.sqrt(max(float(grad @ cov @ grad), 0.0))
        pv = float(2 * ref.sf(abs(value) / se)) if se > 0 else float("nan")
        return Estimate(value, value - crit * se, value + crit * se, pv, method, n, "risk_difference",
                        f"{name}: {what}", conf_level, {**extras0, "se": se, "appointments_in_window": n_rows})

    level, instant, slope = {}, {}, {}
    for name, date, k in names:
        off = [cols.index(f"level[{name}]"), cols.index(f"slope[{name}]")]
        what = _what(name, date, k_eff)
        after = t[t >= k]  # periods with appointments from the roll-out on (at least 3)
        window = (t[period] >= k) & (t[period] < max(k + k_eff, after[0] + 1))
        level[name] = estimate(*gap(window, off), int(window.sum()), what["level"], name)
        first_rows = t[period] == after[0]
        instant[name] = estimate(*gap(first_rows, off), int(first_rows.sum()), what["instant"], name)
        # slope: change of the gap from the first to the last period of the window (at least two periods)
        in_window = after[after < k + k_eff]
        t_last = in_window[-1] if len(in_window) > 1 else after[1]
        last_rows = t[period] == t_last
        (g1, d1), (g0, d0) = gap(last_rows, off), gap(first_rows, off)
        step = t_last - after[0]
        slope[name] = estimate((g1 - g0) / step, (d1 - d0) / step, int(first_rows.sum() + last_rows.sum()),
                               what["slope"], name)

    def period_mean(zero_cols):  # mean predicted probability per period with columns `zero_cols` at zero
        eta0 = eta - design[:, zero_cols] @ beta[zero_cols]
        return np.bincount(period, 1 / (1 + np.exp(-eta0)), minlength=len(s)) / n_per

    all_off = [i for i, c in enumerate(cols) if c.startswith(("level[", "slope["))]
    last = names[-1][0]
    series = s.assign(fitted=expected / n_per, counterfactual=period_mean(all_off),
                      counterfactual_previous=period_mean([cols.index(f"level[{last}]"),
                                                           cols.index(f"slope[{last}]")]))
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    params = pd.DataFrame({"coef": beta, "se": se, "ci_low": beta - crit * se, "ci_high": beta + crit * se,
                           "p_value": 2 * ref.sf(np.abs(beta) / np.where(se > 0, se, np.nan))}, index=cols)
    return ITSResult(series, level, instant, slope, tuple((nm, d) for nm, d, _ in names), params, seasonal,
                     tuple(mix), "logistic", dispersion, False)


def _series_fit(table, s, x, names, seasonal, k_eff, cfg, conf_level) -> ITSResult:
    """The monthly rate's segmented WLS/OLS with HAC errors (a plausibility check: its intervals are too narrow)."""
    mix = [c for c in cfg["case_mix"] if s[c].std() > 0]
    x = pd.concat([x, s[mix]], axis=1)
    y = s["no_show_rate"].astype(float)
    fit_kw = dict(cov_type="HAC", cov_kwds={"maxlags": int(cfg["hac_maxlags"]), "use_correction": True}, use_t=True)
    if cfg["weighted"]:
        res = sm.WLS(y, x, weights=s["appointments"].astype(float)).fit(**fit_kw)
    else:
        res = sm.OLS(y, x).fit(**fit_kw)
    alpha = 1 - conf_level
    level, instant, slope = {}, {}, {}
    cols = list(x.columns)
    n = int(s["appointments"].sum())
    method = (f"plausibility check (intervals too narrow): segmented {'WLS' if cfg['weighted'] else 'OLS'} of the "
              f"period rates, HAC (Newey-West, {cfg['hac_maxlags']} lags, t reference)"
              + (", case-mix terms" if mix else "") + (", month-of-year terms" if seasonal else ""))
    for name, date, _ in names:
        what = _what(name, date, k_eff)
        for store, weights, key in (
                (level, {f"level[{name}]": 1.0, f"slope[{name}]": (k_eff - 1) / 2}, "level"),
                (instant, {f"level[{name}]": 1.0}, "instant"),
                (slope, {f"slope[{name}]": 1.0}, "slope")):
            vec = np.array([weights.get(c, 0.0) for c in cols])
            tt = res.t_test(vec)
            lo, hi = np.asarray(tt.conf_int(alpha=alpha)).ravel()
            store[name] = Estimate(float(np.squeeze(tt.effect)), lo, hi, float(np.squeeze(tt.pvalue)), method, n,
                                   "risk_difference", f"{name}: {what[key]}", conf_level, {"periods": len(s)})
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
    return ITSResult(series, level, instant, slope, tuple((nm, d) for nm, d, _ in names), params, seasonal,
                     tuple(mix), "series", float("nan"), True)


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
    ax.set_xlabel(label("rem_its_xlabel", lang))
    ax.set_title(label("rem_its_title", lang))
    ax.legend(loc="lower left", fontsize=8)
    return ax
