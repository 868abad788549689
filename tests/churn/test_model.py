"""ChurnModel: recovery of the generator's true hazard ratios, predictions against lifelines, API."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.churn import ChurnModel
from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import ConvergenceError, ConvergenceWarning, CrmAnalysisError, InsufficientDataError

#: Seeds and size of the recovery clinics (exact PH: no campaigns).
RECOVERY_SEEDS = (11, 12, 13)
RECOVERY_PATIENTS = 2_000


@pytest.mark.parametrize("seed", RECOVERY_SEEDS)
def test_true_hazard_ratios_inside_simultaneous_95pct_intervals(seed):
    """All 13 true HRs lie inside the model's Bonferroni-adjusted (simultaneous) 95% CIs.

    Simultaneous intervals because with 13 plain 95% intervals all of them cover the truth in only about
    half the seeds even for a perfect model (docs/demo_clinic.md §1). The plain intervals' coverage is
    printed, and hazard ratios 20% away from the truth are shown to fail the same check.
    """
    from crm_analysis import synth

    print(f"\n[recovery] seed={seed} patients={RECOVERY_PATIENTS} campaigns=[]")
    sim = synth.generate_clinic(n_patients=RECOVERY_PATIENTS, seed=seed, end="2026-10-31",
                                params={"campaigns": []})
    clinic = ClinicData(sim.tables, as_of=pd.Timestamp("2026-10-31"))
    truth = pd.Series(sim.truth["return_model"]["hazard_ratios"])
    model = ChurnModel("truth", weibull=False, penalizer=0.0).fit(clinic, "2026-10-31")
    hr = model.hazard_ratios(simultaneous=True).set_index("term")
    plain = model.hazard_ratios().set_index("term")
    assert sorted(hr.index) == sorted(truth.index), "the truth specification must estimate exactly the true terms"
    z = (np.log(hr["hazard_ratio"]) - np.log(truth[hr.index])) / hr["se_log_hr"]
    covered = (hr["lower"] <= truth[hr.index]) & (truth[hr.index] <= hr["upper"])
    plain_cov = ((plain["lower"] <= truth[plain.index]) & (truth[plain.index] <= plain["upper"])).mean()
    print(pd.DataFrame({"true": truth[hr.index], "estimate": hr["hazard_ratio"], "lower": hr["lower"],
                        "upper": hr["upper"], "z": z}).round(3).to_string())
    print(f"simultaneous coverage {covered.mean():.2f}, plain 95% coverage {plain_cov:.2f}, max |z| {z.abs().max():.2f}")
    assert covered.all(), f"true HRs outside the simultaneous CIs: {list(hr.index[~covered])}"
    # the check has teeth: hazard ratios 20% away from the truth are not all inside the same intervals
    shifted = truth[hr.index] * 1.2
    off = (hr["lower"] <= shifted) & (shifted <= hr["upper"])
    print(f"HRs 20% off the truth: {off.sum()} of {len(hr)} inside")
    assert not off.all()


def _survival_with_tail(model, state, times):
    """S(e + t | x) / S(e | x) for t in `times` from lifelines' Cox fit up to the splice day, times the fitted tail.

    Rows: times; columns: patients. Beyond ``tail_.splice_day`` the model replaces the Breslow baseline by its
    long-absence tail; up to it the survival must be lifelines' own.
    """
    x = model.design_.matrix(state)
    e = state["elapsed_days"].to_numpy(dtype=np.int64)
    splice = model.tail_.splice_day
    times = np.asarray(times, dtype=np.int64)
    grid = np.arange(0, times.max() + 1)
    sf = model.cox_.predict_survival_function(x, times=grid, conditional_after=e).to_numpy()
    ph = model.cox_.predict_partial_hazard(x).to_numpy()
    cox_part = np.clip(np.minimum(times[:, None], splice - e[None, :]), 0, None)  # days of the Cox part
    body = sf[cox_part, np.arange(len(e))[None, :]]
    tail = np.exp(-ph[None, :] * (model.tail_.cumulative(e[None, :] + times[:, None])
                                  - model.tail_.cumulative(e[None, :])))
    return pd.DataFrame(body * tail, index=times, columns=state.index)


def test_predictions_match_lifelines_conditional_after(churn_model):
    state = churn_model.current_.iloc[::15]
    x = churn_model.design_.matrix(state)
    after = state["elapsed_days"].to_numpy()
    ours = churn_model.predict_return(state, horizons=(30, 90, 180))
    ref = _survival_with_tail(churn_model, state, [30, 90, 180])
    plain = churn_model.cox_.predict_survival_function(x, times=[30, 90, 180], conditional_after=after)
    splice = churn_model.tail_.splice_day
    for h in (30, 90, 180):
        np.testing.assert_allclose(ours[f"p_return_{h}d"], 1 - ref.loc[h].to_numpy(), atol=1e-10)
        within = after + h <= splice  # the tail plays no part: exactly lifelines' conditional_after
        assert within.sum() > 10
        np.testing.assert_allclose(ours[f"p_return_{h}d"][within], 1 - plain.loc[h].to_numpy()[within], atol=1e-10)
    w = churn_model.predict_weibull_return(state, 90)
    wref = churn_model.weibull_.predict_survival_function(x, times=[90], conditional_after=after)
    np.testing.assert_allclose(w, 1 - wref.loc[90].to_numpy(), atol=1e-10)
    # log partial hazards agree with lifelines' own
    np.testing.assert_allclose(churn_model._log_partial_hazard(state),
                               churn_model.cox_.predict_log_partial_hazard(x).to_numpy(), atol=1e-10)


def test_expected_and_median_days_by_direct_summation(churn_model):
    state = churn_model.current_.iloc[::100]
    pred = churn_model.predict_return(state)
    R = churn_model.restricted_days
    sf = _survival_with_tail(churn_model, state, np.arange(R + churn_model.max_day_ + 1))
    np.testing.assert_allclose(pred["expected_days"], sf.iloc[:R].sum(axis=0).to_numpy(), rtol=1e-9)
    for (pid, med), e in zip(pred["median_days"].items(), state["elapsed_days"]):
        curve = sf[pid].to_numpy()
        if np.isnan(med):
            # no median within the longest gap observed: the curve stays above one half up to there
            assert curve[: max(churn_model.max_day_ - e, 0) + 1].min() > 0.5 - 1e-9
        else:
            assert curve[int(med)] <= 0.5 + 1e-12 and (med == 0 or curve[int(med) - 1] > 0.5)


def test_prediction_properties(churn_model):
    pred = churn_model.predict_return()
    assert len(pred) == churn_model.n_patients_ == 1_500
    p = pred[["p_return_30d", "p_return_90d", "p_return_180d", "p_return_ever"]].to_numpy()
    assert ((p >= 0) & (p <= 1)).all() and (np.diff(p, axis=1) >= -1e-12).all()
    assert ((pred["expected_days"] > 0) & (pred["expected_days"] <= churn_model.restricted_days)).all()
    assert (pred["usual_interval_days"] >= 1).all()
    np.testing.assert_allclose(pred["overdue_ratio"], pred["elapsed_days"] / pred["usual_interval_days"])
    # the longer a patient has stayed away, the less likely a return (decreasing hazard), other things equal
    one = churn_model.current_.iloc[[0] * 4].assign(elapsed_days=[10, 60, 200, 500])
    one.index = ["a", "b", "c", "d"]
    assert np.all(np.diff(churn_model.predict_probability(180, one).to_numpy()) < 0)


def test_predict_probability_is_predict_returns_column(churn_model):
    state = churn_model.current_.iloc[::7]
    full = churn_model.predict_return(state, horizons=(45,))["p_return_45d"]
    pd.testing.assert_series_equal(churn_model.predict_probability(45, state), full)


def test_design_codes_same_for_categorical_and_text_columns(churn_model, churn_gaps):
    design = churn_model.design_
    sample = churn_gaps.iloc[::11]
    as_text = sample.astype({c: "object" for c in design.levels})
    np.testing.assert_array_equal(design.codes(sample), design.codes(as_text))
    pd.testing.assert_frame_equal(design.compress(sample), design.compress(as_text))


def test_summary_checks_and_comparison(churn_model):
    s = churn_model.summary
    assert {"term", "hazard_ratio", "lower", "upper", "p"} <= set(s.columns)
    assert (s["lower"] < s["hazard_ratio"]).all() and (s["hazard_ratio"] < s["upper"]).all()
    ph = churn_model.ph_test_
    assert {"covariate", "test_statistic", "p", "ph_violated_5pct"} <= set(ph.columns) and len(ph) == len(s)
    cmp = churn_model.comparison(90)
    print("\n" + cmp.round(4).to_string())
    assert list(cmp["model"]) == ["cox", "weibull_aft"]
    assert cmp["concordance"].between(0.5, 1).all()
    assert "Cox concordance" in churn_model._repr_html_()


def test_plots_return_axes(churn_model):
    import matplotlib.pyplot as plt

    ax = churn_model.plot_hazard_ratios(lang="en")
    assert ax.get_xscale() == "log" and len(ax.get_yticklabels()) == len(churn_model.summary)
    ax2 = churn_model.plot_calibration(t0=90)
    assert len(ax2.lines) == 3
    plt.close("all")


def test_robust_cluster_errors_same_estimates(churn_clinic, churn_gaps):
    """Uncompressed rows with patient-clustered errors give (nearly) the same HRs with other SEs.

    Not exactly the same: Efron's tie correction treats a merged row of weight w as one subject, not w
    tied ones, so the compressed fit differs by well under 0.1% here.
    """
    kw = dict(weibull=False, penalizer=0.0, max_gaps=4_000, seed=5)  # same seeded sample of gaps for both
    plain = ChurnModel("truth", **kw).fit(churn_clinic, "2026-10-31", gaps=churn_gaps)
    robust = ChurnModel("truth", robust=True, **kw).fit(churn_clinic, "2026-10-31", gaps=churn_gaps)
    np.testing.assert_allclose(plain.summary["hazard_ratio"], robust.summary["hazard_ratio"], rtol=1e-3)
    assert not np.allclose(plain.summary["se_log_hr"], robust.summary["se_log_hr"])


def test_hazard_ratio_table_and_plot_say_whether_cis_allow_for_repeated_gaps(churn_model, churn_clinic, churn_gaps):
    import matplotlib.pyplot as plt

    from crm_analysis.churn.model import CI_MODEL_BASED, CI_ROBUST

    assert set(churn_model.summary["ci_method"]) == {CI_MODEL_BASED}
    ax = churn_model.plot_hazard_ratios(lang="en")
    assert "independent" in ax.get_xlabel()
    robust = ChurnModel({"sex": ("M", "F")}, robust=True, weibull=False, ph_test=False, max_gaps=3_000).fit(
        churn_clinic, "2026-10-31", gaps=churn_gaps)
    assert set(robust.summary["ci_method"]) == {CI_ROBUST}
    assert "clustered by patient" in robust.plot_hazard_ratios(lang="en").get_xlabel()
    assert "환자 단위 군집" in robust.plot_hazard_ratios(lang="ko").get_xlabel()
    plt.close("all")


@pytest.mark.parametrize("robust", [False, True])
def test_cox_that_does_not_converge_raises_convergence_error(churn_clinic, churn_gaps, robust):
    """A perfectly separating covariate (every gap of women ends in a return, no gap of men does) makes lifelines'
    Newton-Raphson run off (it only warns); the fit must fail with a clear ConvergenceError, not return the
    last iterate's hazard ratio of ~10^8. Unpenalised, since a penalty keeps the estimate finite."""
    gaps = churn_gaps.assign(sex=np.where(churn_gaps["event"].to_numpy() == 1, "F", "M"))
    model = ChurnModel({"sex": ("M", "F")}, penalizer=0.0, robust=robust, weibull=False, ph_test=False,
                       max_gaps=3_000)
    with pytest.raises(ConvergenceError, match=r"Cox model did not converge.*sex\[F\] separates") as info:
        model.fit(churn_clinic, "2026-10-31", gaps=gaps)
    err = info.value
    print(f"\nrobust={robust}: {err.reason}\n  ko: {err.reason_ko}\n  lifelines: {err.detail}")
    assert isinstance(err, InsufficientDataError) and err.analysis == "churn_model"
    assert "Newton-Raphson" in err.detail and not hasattr(model, "cox_")
    # kept by the monthly run like other thin-data errors (pickled with the models), and a section shows it
    import pickle

    from crm_analysis.report.sections import section

    again = pickle.loads(pickle.dumps(err))
    assert type(again) is ConvergenceError and again.reason == err.reason and again.detail == err.detail
    with section("en"):
        raise again


def test_weibull_that_does_not_converge_is_left_out_and_said(churn_clinic, churn_gaps, monkeypatch):
    from lifelines import WeibullAFTFitter
    from lifelines.exceptions import ConvergenceError as LifelinesConvergenceError

    def fail(self, *args, **kwargs):
        raise LifelinesConvergenceError("Fitting did not converge. Try checking the following: ...")

    monkeypatch.setattr(WeibullAFTFitter, "fit", fail)
    with pytest.warns(ConvergenceWarning, match="Weibull AFT alternative did not converge"):
        model = ChurnModel({"sex": ("M", "F")}, ph_test=False, max_gaps=3_000).fit(
            churn_clinic, "2026-10-31", gaps=churn_gaps)
    assert model.weibull_ is None and any("Weibull AFT alternative left out" in n for n in model.notes_)
    assert list(model.comparison(90)["model"]) == ["cox"]
    with pytest.raises(CrmAnalysisError, match="Weibull AFT alternative did not converge"):
        model.predict_weibull_return()


def test_sampling_is_seeded_and_documented(churn_clinic, churn_gaps):
    a = ChurnModel("truth", weibull=False, max_gaps=5_000, seed=3).fit(churn_clinic, "2026-10-31", gaps=churn_gaps)
    b = ChurnModel("truth", weibull=False, max_gaps=5_000, seed=3).fit(churn_clinic, "2026-10-31", gaps=churn_gaps)
    assert a.n_fit_gaps_ == 5_000 < a.n_gaps_
    pd.testing.assert_frame_equal(a.summary, b.summary)


def test_errors_are_clear(churn_clinic):
    with pytest.raises(CrmAnalysisError, match="not fitted yet"):
        ChurnModel().predict_return()
    with pytest.raises(CrmAnalysisError, match="model.penalizer must be a number >= 0"):
        ChurnModel(penalizer=-1)
    with pytest.raises(CrmAnalysisError, match="unknown covariate 'height'"):
        ChurnModel({"height": ("tall",)}, weibull=False).fit(churn_clinic, "2026-10-31")
    with pytest.raises(InsufficientDataError, match="not enough data"):
        ChurnModel(weibull=False).fit(churn_clinic, "2023-11-02")


def test_usual_interval_is_the_patients_own_median_gap(churn_model, churn_gaps):
    pred = churn_model.predict_return()
    done = churn_gaps[churn_gaps["event"] == 1].groupby("patient_id", observed=True)["duration"]
    own = done.median()[done.size() >= 2]
    np.testing.assert_allclose(pred.loc[own.index, "usual_interval_days"], own.to_numpy())
    few = pred.index.difference(own.index)
    assert len(few) > 0 and pred.loc[few, "usual_interval_days"].notna().all()


def test_gaps_built_for_a_later_date_are_refused(churn_clinic, churn_gaps):
    """Gaps from a later as_of would let the fit see visits after its own as_of (look-ahead)."""
    with pytest.raises(CrmAnalysisError, match="not built at 2026-06-30"):
        ChurnModel(weibull=False).fit(churn_clinic, "2026-06-30", gaps=churn_gaps)


def test_ph_test_can_be_switched_off(churn_clinic, churn_gaps):
    model = ChurnModel("truth", weibull=False, ph_test=False).fit(churn_clinic, "2026-10-31", gaps=churn_gaps)
    assert model.ph_test_["covariate"].tolist() == ["(not run)"] and len(model.summary) > 0
