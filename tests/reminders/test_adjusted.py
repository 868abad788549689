"""Observational estimates on the demo clinic: adjusted covers the truth, crude is biased."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders import ReminderEffectModel, crude_effect, mantel_haenszel, period_masks


@pytest.mark.parametrize("period", ["1d", "3d+1d+2h"])
def test_adjusted_marginal_rd_covers_truth(rem_table, rem_model, rem_truth, period):
    rd, rr = rem_model.marginal_effect(rem_table, period_masks(rem_table)[period])
    truth = rem_truth["rollout_periods"][period]
    print(f"adjusted RD [{period}] {rd} vs truth {truth['risk_difference']:.4f}")
    assert rd.n == truth["n"]
    assert rd.contains(truth["risk_difference"])
    assert rr.contains(truth["risk_ratio"])


def test_crude_is_biased_and_adjusted_is_not(rem_table, rem_model, rem_truth):
    truth = rem_truth["crude"]["true_effect_among_reminded"]
    crude = crude_effect(rem_table, since="2024-09-01")
    mask = (rem_table["analysed"] & rem_table["reminded"] & (rem_table["scheduled_at"] >= "2024-09-01")).to_numpy()
    adjusted, _ = rem_model.marginal_effect(rem_table, mask)
    print(f"truth {truth:+.4f}: crude {crude.estimate:+.4f} (error {crude.estimate - truth:+.4f}), "
          f"adjusted {adjusted.estimate:+.4f} (error {adjusted.estimate - truth:+.4f})")
    assert crude.estimate == pytest.approx(rem_truth["crude"]["crude_difference"], abs=1e-12)
    assert not crude.contains(truth) and crude.estimate - truth > 0.05
    assert adjusted.contains(truth)
    assert abs(adjusted.estimate - truth) < abs(crude.estimate - truth) / 5


def test_mantel_haenszel_removes_most_of_the_lead_time_confounding(rem_table, rem_truth):
    mh = mantel_haenszel(rem_table)
    crude = crude_effect(rem_table, since="2024-09-01")
    rr_crude = crude.extras["rate_reminded"] / crude.extras["rate_not_reminded"]
    periods = rem_truth["rollout_periods"]
    print(f"MH RR {mh.estimate:.3f} ({mh.ci_low:.3f}-{mh.ci_high:.3f}) vs crude RR {rr_crude:.3f}; true RR by period "
          f"{periods['1d']['risk_ratio']:.3f} / {periods['3d+1d+2h']['risk_ratio']:.3f}")
    assert mh.ci_high < 1 and rr_crude > 1
    assert mh.extras["strata"] == 5  # eligible lead-time bands 3-4, 5-7, 8-14, 15-28, 29+


def test_adjusted_odds_ratios_cover_truth(rem_model, rem_truth):
    truth = rem_truth["effect_per_delivered_schedule"]
    full = rem_model.odds_ratio()
    one = rem_model.odds_ratio(["1d"])
    print(f"OR full {full.estimate:.3f} vs {truth['3d+1d+2h']['odds_ratio']:.3f}; 1d {one.estimate:.3f} vs "
          f"{truth['1d']['odds_ratio']:.3f}")
    assert full.contains(truth["3d+1d+2h"]["odds_ratio"]) and one.contains(truth["1d"]["odds_ratio"])
    with pytest.raises(CrmAnalysisError, match="no reminder step"):
        rem_model.odds_ratio(["5m"])


def test_schedule_comparison(rem_eval, rem_truth):
    """The evaluation's schedule comparison (schedule_comparison standardised over the full-schedule period)."""
    s = rem_eval.schedules.set_index("schedule")
    truth = rem_truth["effect_per_delivered_schedule"]
    print(s[["appointments", "crude_rate", "adjusted_rate", "odds_ratio", "or_ci_low", "or_ci_high"]].round(3))
    for name in ("1d", "3d+1d+2h"):
        assert s.loc[name, "or_ci_low"] <= truth[name]["odds_ratio"] <= s.loc[name, "or_ci_high"]
    # dose-response: the full schedule beats one message, both beat none
    assert s.loc["3d+1d+2h", "adjusted_rate"] < s.loc["1d", "adjusted_rate"] < s.loc["none", "adjusted_rate"]
    assert (s["appointments"] >= 30).all()


def test_inputs_not_modified_and_unfitted_model(rem_table):
    before = pd.util.hash_pandas_object(rem_table.drop(columns=["month"]), index=True).sum()
    crude_effect(rem_table, since="2024-09-01")
    mantel_haenszel(rem_table)
    after = pd.util.hash_pandas_object(rem_table.drop(columns=["month"]), index=True).sum()
    assert before == after
    with pytest.raises(CrmAnalysisError, match=r"call \.fit\(table\) first"):
        ReminderEffectModel().predict_proba(rem_table)


def test_predictions_and_repr(rem_table, rem_model):
    rows = rem_table.loc[rem_table["analysed"].to_numpy()].head(500)
    p_as = rem_model.predict_proba(rows)
    p_none = rem_model.predict_proba(rows, steps=0)
    assert np.all((p_as > 0) & (p_as < 1))
    reminded = rows["reminded"].to_numpy()
    assert np.all(p_none[reminded] > p_as[reminded]) and np.allclose(p_none[~reminded], p_as[~reminded])
    assert "rem_1d" in rem_model.summary.index and "ReminderEffectModel" in rem_model._repr_html_()


def test_fit_matches_statsmodels_glm(rem_table, rem_model):
    """The hand-built design and Newton fit reproduce statsmodels' formula GLM with patient-clustered errors."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    rows = rem_table.loc[rem_table["analysed"].to_numpy()]
    frame = pd.DataFrame({"no_show": rows["no_show"].to_numpy(), "lead_days": rows["lead_days"].clip(lower=0)})
    for name, src in (("prior_ns", "prior_no_shows"), ("prior_visits_band", "prior_visits_band"),
                      ("weekday", "weekday"), ("hour_band", "hour_band"), ("department", "department"),
                      ("age_band", "age_band"), ("month_of_year", "month_of_year")):
        cats = np.asarray(rem_model.categories_[name], dtype=object)  # rare levels merged as in the model
        frame[name] = cats[rem_model._codes(rows, name, src)]
    for col in ["years", *rem_model.steps_]:
        frame[col] = rows[col].to_numpy(dtype=float)
    groups = pd.factorize(rows["patient_id"])[0]
    ref = smf.glm(rem_model.formula_, data=frame, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": groups})
    ours = rem_model.result_
    assert list(ours.params.index) == list(ref.params.index)
    np.testing.assert_allclose(ours.params, ref.params, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.bse, ref.bse, rtol=1e-5)
    print(f"max |coef diff| {np.abs(ours.params - ref.params).max():.2e}, "
          f"max rel SE diff {np.abs(ours.bse / ref.bse - 1).max():.2e}")
