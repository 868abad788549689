"""Interrupted time series: an exact synthetic series, the demo clinic's roll-outs against the truth, a small
coverage study over simulated clinics, and the logistic model against a plain statsmodels fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from crm_analysis import synth
from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders import appointment_table, interrupted_time_series, plot_its, rate_series

RULES = {"rollouts": [{"date": "2024-01-01", "schedule": "1d"}], "pilot_month": None}


def _series_table(level=-0.05, slope=-0.002, months=30, n=2000):
    """`n` appointments a month whose no-show count follows trend + step exactly (up to rounding)."""
    rows = []
    start = pd.Period("2023-01", "M")
    for m in range(months):
        k = m - 12
        rate = 0.20 + 0.001 * m + (level + slope * k if k >= 0 else 0.0)
        ns = int(round(rate * n))
        when = (start + m).to_timestamp() + pd.Timedelta(days=3)
        rows.append(pd.DataFrame({"scheduled_at": when, "analysed": True, "no_show": [1.0] * ns + [0.0] * (n - ns),
                                  "reminded": k >= 0, "eligible": True, "lead_days": 5, "prior_no_shows": 0}))
    return pd.concat(rows, ignore_index=True)


def test_exact_series_recovers_step_and_slope():
    res = interrupted_time_series(_series_table(), rules=RULES)
    level = res.instant_level_changes["1d"]
    print(f"synthetic step -0.05: {level}")
    assert level.estimate == pytest.approx(-0.05, abs=1e-3)
    assert res.slope_changes["1d"].estimate == pytest.approx(-0.002, abs=2e-4)
    # mean change over the first 3 months = level + slope * 1
    assert res.level_changes["1d"].estimate == pytest.approx(-0.052, abs=1e-3)
    assert res.seasonality and res.case_mix == ()  # 30 months: month-of-year terms; constant case mix dropped
    s = res.series
    after = s.index >= pd.Period("2024-01", "M")
    assert np.allclose(s.loc[~after, "fitted"], s.loc[~after, "counterfactual"])


@pytest.mark.parametrize("name, key", [("1d", "level_change_vs_no_reminder"),
                                       ("3d+1d+2h", "level_change_vs_previous_regime")])
def test_demo_its_level_change_covers_truth(rem_table, rem_truth, name, key):
    res = interrupted_time_series(rem_table)
    est = res.level_changes[name]
    truth = rem_truth["its"][name][key]
    print(f"ITS {name}: {est} vs truth {truth:+.4f}")
    assert res.seasonality and len(res.series) == 36
    assert est.contains(truth)
    assert set(res.summary()["quantity"]) == {"level_change", "instant_level_change", "slope_change_per_period"}


def test_rate_series_matches_truth_monthly(rem_table, rem_truth):
    s = rate_series(rem_table)
    monthly = rem_truth["monthly"]
    for period, row in s.iloc[[0, 10, 35]].iterrows():
        assert row["no_show_rate"] == pytest.approx(monthly[str(period)]["observed_no_show_rate"])
        assert row["appointments"] == monthly[str(period)]["n_non_cancelled"]


def test_its_needs_rollouts_and_enough_periods(rem_table):
    with pytest.raises(CrmAnalysisError, match="no roll-out date"):
        interrupted_time_series(rem_table, rules={"rollouts": []})
    with pytest.raises(CrmAnalysisError, match="at least 3 on each side"):
        interrupted_time_series(rem_table, rules={"rollouts": [{"date": "2026-10-01", "schedule": "x"}]})


def test_plot(rem_table):
    import matplotlib.pyplot as plt

    ax = plot_its(interrupted_time_series(rem_table), lang="en")
    assert ax.get_title() == "Monthly no-show rate and the reminder roll-outs"
    assert len(ax.get_lines()) >= 3
    plt.close(ax.figure)


#: The small coverage study: seeds, clinic size, and the true step effects scaled as in
#: benchmarks/bench_reminder_coverage.py (x 0.5, 1.0, 1.5 in turn).
COVERAGE_SEEDS = range(3000, 3016)
COVERAGE_PATIENTS = 500
_BASE_EFFECTS = {"3d": -0.20, "1d": -0.50, "2h": -0.25}
_SCALES = (0.5, 1.0, 1.5)
_TRUTH_KEY = {"1d": "level_change_vs_no_reminder", "3d+1d+2h": "level_change_vs_previous_regime"}


def test_small_coverage_study_reaches_nominal_coverage():
    """A 16-clinic version of `bench_reminder_coverage.py --only its`: the default (logistic) model's 95% intervals
    cover the true level change of both roll-outs in at least 90% of the 32 cases (31 on these seeds). The earlier
    series model (monthly WLS, HAC errors) covers 28 of 32 here (0.875; 0.80-0.81 over 100 clinics of 1,500
    patients) and would fail."""
    rows = []
    for i, seed in enumerate(COVERAGE_SEEDS):
        scale = _SCALES[i % len(_SCALES)]
        clinic = synth.generate_clinic(n_patients=COVERAGE_PATIENTS, seed=seed, params={
            "noshow": {"reminder": {k: v * scale for k, v in _BASE_EFFECTS.items()}}})
        table = appointment_table(ClinicData(clinic.tables), clinic.truth["end"])
        truth = clinic.truth["reminders"]["its"]
        for model in ("logistic", "series"):
            res = interrupted_time_series(table, {"its": {"model": model}})
            for name, e in res.level_changes.items():
                true = truth[name][_TRUTH_KEY[name]]
                rows.append({"model": model, "rollout": name, "covered": e.contains(true),
                             "error": e.estimate - true, "width": e.ci_high - e.ci_low})
    df = pd.DataFrame(rows)
    study = df.groupby(["model", "rollout"]).agg(coverage=("covered", "mean"), mean_bias=("error", "mean"),
                                                 rmse=("error", lambda x: float(np.sqrt(np.mean(x ** 2)))),
                                                 mean_ci_width=("width", "mean"))
    coverage = df.groupby("model")["covered"].mean()
    print(f"\nseeds {COVERAGE_SEEDS.start}-{COVERAGE_SEEDS.stop - 1}, {COVERAGE_PATIENTS} patients\n"
          f"{study.round(4).to_string()}\noverall coverage: {coverage.round(3).to_dict()}")
    assert coverage["logistic"] >= 0.9


def _design_by_hand(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The logistic model's design, rebuilt from the analysis table and the default rules (monthly, 36 months)."""
    a = table.loc[table["analysed"].to_numpy()]
    period = a["scheduled_at"].dt.to_period("M")
    t = np.asarray((period.dt.year - period.min().year) * 12 + period.dt.month - period.min().month, dtype=float)
    cols = {"const": np.ones(len(a)), "time": t}
    for name, start in (("1d", "2024-09"), ("3d+1d+2h", "2025-09")):
        k = float((pd.Period(start, "M") - period.min()).n)
        cols[f"level[{name}]"], cols[f"slope[{name}]"] = (t >= k) * 1.0, np.maximum(t - k, 0.0)
    cols["pilot"] = (period == pd.Period("2024-06", "M")).to_numpy(dtype=float)
    for m in range(2, 13):
        cols[f"moy_{m}"] = (period.dt.month == m).to_numpy(dtype=float)
    cols["mix_log_lead"] = np.log1p(a["lead_days"].clip(lower=0).to_numpy(dtype=float))
    cols["mix_prior_no_shows"] = a["prior_no_shows"].clip(upper=3).to_numpy(dtype=float)
    cols["mix_eligible"] = a["eligible"].to_numpy(dtype=float)
    x = pd.DataFrame(cols, index=a.index)
    assert sorted(x.columns) == sorted(names)
    return x[names]


def test_logistic_its_equals_statsmodels_glm_and_numerical_delta_method(rem_table):
    """Coefficients and patient-clustered SEs are statsmodels' row-level GLM (cov_type="cluster"), times the
    square root of the period dispersion when above 1; the level change's SE is the delta method with a numerical
    gradient; the dispersion is the Pearson X² of the monthly no-show counts over (months - period terms)."""
    res = interrupted_time_series(rem_table)
    x = _design_by_hand(rem_table, list(res.params.index))
    a = rem_table.loc[rem_table["analysed"].to_numpy()]
    y = a["no_show"].to_numpy(dtype=float)
    ref = sm.GLM(y, x, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(a["patient_id"])[0]})
    p = ref.fittedvalues.to_numpy()
    per = pd.DataFrame({"m": a["scheduled_at"].dt.to_period("M").to_numpy(), "y": y, "p": p, "v": p * (1 - p)})
    g = per.groupby("m")[["y", "p", "v"]].sum()
    n_period_terms = sum(not c.startswith("mix_") for c in x.columns)
    dispersion = float((((g["y"] - g["p"]) ** 2) / g["v"]).sum() / (len(g) - n_period_terms))
    print(f"dispersion {res.dispersion:.4f} (by hand {dispersion:.4f})")
    assert res.dispersion == pytest.approx(dispersion, rel=1e-6)
    inflate = max(1.0, dispersion)
    np.testing.assert_allclose(res.params["coef"], ref.params, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.params["se"], ref.bse * np.sqrt(inflate), rtol=1e-5)

    est = res.level_changes["1d"]
    rows = ((x["time"] >= 10) & (x["time"] < 13)).to_numpy()  # Sep-Nov 2024: months 10-12 from Nov 2023
    x1 = x.to_numpy()[rows]
    x0 = x1.copy()
    x0[:, [x.columns.get_loc("level[1d]"), x.columns.get_loc("slope[1d]")]] = 0.0

    def level_change(beta):
        return np.mean(1 / (1 + np.exp(-x1 @ beta)) - 1 / (1 + np.exp(-x0 @ beta)))

    beta = ref.params.to_numpy()
    h = 1e-6
    grad = np.array([(level_change(beta + h * e) - level_change(beta - h * e)) / (2 * h) for e in np.eye(len(beta))])
    se = float(np.sqrt(grad @ (ref.cov_params().to_numpy() * inflate) @ grad))
    print(f"{est}; by hand {level_change(beta):+.5f}, se {se:.5f}")
    assert est.estimate == pytest.approx(level_change(beta), rel=1e-5)
    assert est.extras["se"] == pytest.approx(se, rel=1e-4)


def test_month_to_month_overdispersion_widens_the_intervals(rem_table):
    """Month-level shocks (logit sd 0.3, seed 5) that patient clustering cannot see make the period dispersion > 1:
    the intervals widen by its square root and use the t distribution."""
    rng = np.random.default_rng(5)
    shocked = rem_table.copy()
    y = shocked["no_show"].to_numpy().copy()
    month = shocked["scheduled_at"].dt.to_period("M")
    analysed = shocked["analysed"].to_numpy()
    for m in month[analysed].unique():  # move each month's rate by a random logit shift, flipping outcomes at random
        rows = analysed & (month == m).to_numpy()
        rate = y[rows].mean()
        target = 1 / (1 + np.exp(-(np.log(rate / (1 - rate)) + rng.normal(0, 0.3))))
        flip = rng.random(rows.sum())
        ym = y[rows]
        y[rows] = np.where(target > rate, np.where((ym == 0) & (flip < (target - rate) / (1 - rate)), 1.0, ym),
                           np.where((ym == 1) & (flip < (rate - target) / rate), 0.0, ym))
    shocked["no_show"] = y
    plain, noisy = interrupted_time_series(rem_table), interrupted_time_series(shocked)
    e0, e1 = plain.level_changes["1d"], noisy.level_changes["1d"]
    print(f"dispersion {plain.dispersion:.2f} -> {noisy.dispersion:.2f}\n{e0}\n{e1}")
    assert noisy.dispersion > 2
    assert "overdispersion (t, 18 df)" in e1.method
    assert e1.extras["se"] > 1.3 * e0.extras["se"]


def test_series_model_is_labelled_a_plausibility_check(rem_table):
    series = interrupted_time_series(rem_table, {"its": {"model": "series"}})
    logistic = interrupted_time_series(rem_table)
    assert series.model == "series" and series.plausibility_check and not logistic.plausibility_check
    assert all(e.method.startswith("plausibility check") for e in series.level_changes.values())
    assert "plausibility check" in series._repr_html_() and "plausibility check" not in logistic._repr_html_()
    assert logistic.model == "logistic" and logistic.case_mix == ("mix_log_lead", "mix_prior_no_shows", "mix_eligible")


def test_its_rejects_unknown_model_and_case_mix_term(rem_table):
    with pytest.raises(CrmAnalysisError, match="its.model must be 'logistic'"):
        interrupted_time_series(rem_table, rules={"its": {"model": "arima"}})
    with pytest.raises(CrmAnalysisError, match="its.case_mix: unknown term 'mix_age'"):
        interrupted_time_series(rem_table, rules={"its": {"case_mix": ["mix_age"]}})
