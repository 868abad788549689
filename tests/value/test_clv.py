"""Tests for crm_analysis.value.clv: the back-test beats the naive baseline, Gamma-Gamma recovers the demo
generator's spend truth, the BG/NBD formula matches numerical integration, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from crm_analysis.clinic import ClinicData
from crm_analysis.value.clv import CLVModel, ClvBacktest, clv_backtest
from tests.conftest import DEMO_END
from tests.test_features import _tamper_after

CUTOFF = "2025-10-31"


@pytest.fixture(scope="module")
def demo(demo_synth) -> ClinicData:
    return ClinicData(demo_synth.tables, as_of=pd.Timestamp(DEMO_END))


@pytest.fixture(scope="module")
def backtest(demo) -> ClvBacktest:
    return clv_backtest(demo, CUTOFF, horizon_days=365)


def test_backtest_beats_naive_on_rank_correlation(backtest):
    print(f"\nCLV back-test (fit {CUTOFF}, next 12 months) Spearman: model {backtest.spearman_model:.3f} "
          f"vs naive {backtest.spearman_naive:.3f}; total error model {backtest.total_error_model:+.1%} "
          f"vs naive {backtest.total_error_naive:+.1%}")
    assert backtest.spearman_model > backtest.spearman_naive


def test_backtest_tables(backtest, demo):
    cal = backtest.calibration
    assert cal["decile"].tolist() == list(range(1, 11))
    assert cal["patients"].sum() == len(backtest.patients)
    # the top decile of predicted value really is worth more than the bottom one
    assert cal["actual_mean"].iloc[-1] > 5 * cal["actual_mean"].iloc[:3].mean()
    # actual value is the charges in (cutoff, cutoff + 365 days] of patients registered by the cutoff
    v = demo.visits
    win = v[(v.visit_date > CUTOFF) & (v.visit_date <= pd.Timestamp(CUTOFF) + pd.Timedelta(days=365))]
    expected = (win.charge_insured + win.charge_self_pay).groupby(win.patient_id).sum()
    got = backtest.patients["actual"]
    np.testing.assert_allclose(got.sum(), expected.reindex(got.index).fillna(0).sum())
    assert (backtest.patients[["predicted", "naive", "actual"]] >= 0).all().all()
    s = backtest.summary()
    assert s["method"].tolist() == ["clv_model", "naive"]
    assert "Calibration" in backtest._repr_html_()


def test_backtest_refuses_a_horizon_past_the_data(demo):
    with pytest.raises(ValueError, match="Choose an earlier cutoff"):
        clv_backtest(demo, "2026-01-31", horizon_days=365)


def test_gamma_gamma_recovers_the_generator_spend_truth(demo, demo_synth):
    model = CLVModel().fit(demo, DEMO_END)
    truth = demo_synth.truth["spend"]["gamma_gamma"]
    s = model.summary
    print("\nGamma-Gamma fit vs truth:\n" + s.loc[["p", "q", "gamma"], ["estimate", "lower_95", "upper_95"]]
          .assign(truth=[truth["p"], truth["q"], truth["gamma"]]).to_string())
    for name in ("p", "q", "gamma"):
        assert s.loc[name, "lower_95"] <= truth[name] <= s.loc[name, "upper_95"], name
    assert model.converged_
    assert "BG/NBD" in model._repr_html_()


def test_bgnbd_expected_visits_match_numerical_integration(demo):
    """For a patient with no repeat visits yet (x = 0, T = 0) the prediction is the unconditional
    E[Y(t)] = ∫ (1 - (α/(α + p t))^r) / p  Beta(p; a, b) dp."""
    model = CLVModel().fit(demo, CUTOFF)
    r, alpha, a, b = (model.params_[k] for k in ("r", "alpha", "a", "b"))
    t = 365 / 7
    numeric = integrate.quad(lambda p: (1 - (alpha / (alpha + p * t)) ** r) / p * stats.beta.pdf(p, a, b),
                             0, 1, limit=200)[0]
    new = model.data_.index[(model.data_["x"] == 0) & (model.data_["T"] == 0)]
    assert len(new) > 0
    assert model.predict_visits().loc[new].iloc[0] == pytest.approx(numeric, rel=1e-6)
    frame = model.predict_frame()
    assert frame["p_alive"].between(0, 1).all() and (frame["expected_visits"] >= 0).all()
    np.testing.assert_allclose(frame["expected_value"], frame["expected_visits"] * frame["expected_spend_per_visit"])


def test_fit_has_no_look_ahead(demo):
    a = CLVModel().fit(demo, CUTOFF)
    b = CLVModel().fit(_tamper_after(demo, CUTOFF, drop=False), CUTOFF)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_series_equal(a.predict_value(), b.predict_value())


def test_fit_needs_as_of_and_predict_needs_fit(demo):
    with pytest.raises(ValueError, match="explicit as_of"):
        CLVModel().fit(demo, None)
    with pytest.raises(RuntimeError, match="call fit"):
        CLVModel().predict_value()


def test_likelihoods_per_distinct_value_equal_the_per_patient_formulas():
    """The fit evaluates each term once per distinct x, t_x, T (or visit count); every patient's value
    must still be exactly the textbook per-patient formula, so the optimiser takes the same path."""
    from scipy import special

    from crm_analysis.value.clv_fit import _BgnbdData, _bgnbd_loglik, _GammaGammaData, _gg_loglik

    rng = np.random.default_rng(5)
    x = rng.integers(0, 30, 3_000).astype(float)
    T = rng.integers(1, 500, 3_000) / 7.0
    tx = np.where(x > 0, np.floor(rng.random(3_000) * T * 7) / 7.0, 0.0)
    r, alpha, a, b = 0.7, 3.2, 0.4, 2.5
    lg = special.gammaln
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + tx), -np.inf)
    a1 = lg(r + x) - lg(r) + r * np.log(alpha)
    a2 = lg(a + b) + lg(b + x) - lg(b) - lg(a + b + x)
    direct = a1 + a2 + np.logaddexp(-(r + x) * np.log(alpha + T), a4)
    assert np.array_equal(_bgnbd_loglik((r, alpha, a, b), _BgnbdData(x, tx, T)), direct)

    n = rng.integers(1, 40, 3_000).astype(float)
    zbar = rng.gamma(2.0, 0.5, 3_000)
    p, q, gamma = 2.1, 3.3, 1.2
    px = p * n
    direct = (lg(px + q) - lg(px) - lg(q) + q * np.log(gamma) + (px - 1) * np.log(zbar) + px * np.log(n)
              - (px + q) * np.log(gamma + n * zbar))
    assert np.array_equal(_gg_loglik((p, q, gamma), _GammaGammaData(n, zbar)), direct)


@pytest.mark.parametrize("as_category", [True, False])
def test_spend_base_is_the_group_mean_per_day_of_care(as_category):
    """Base = mean charge per day of care of the visit's (department, visit type); missing labels form a group."""
    from crm_analysis.value.clv import visit_spend_multipliers

    dept = ["내과", "내과", None, "피부과", "내과", None]
    kind = ["outpatient", "inpatient", "outpatient", "outpatient", "outpatient", "outpatient"]
    visits = pd.DataFrame({
        "visit_id": [f"V{i}" for i in range(6)], "patient_id": ["P1", "P1", "P2", "P2", "P3", "P3"],
        "visit_date": pd.to_datetime(["2025-01-02", "2025-02-03", "2025-03-04", "2025-04-05", "2025-05-06",
                                      "2025-06-07"]),
        "department": pd.Categorical(dept) if as_category else pd.Series(dept, dtype=object),
        "visit_type": pd.Categorical(kind) if as_category else pd.Series(kind, dtype=object),
        "inpatient_days": pd.array([0, 3, 0, 0, 0, 0], dtype="Int64"),
        "charge_insured": [100.0, 600.0, 50.0, 80.0, 300.0, 70.0], "charge_self_pay": [0.0] * 6,
    })
    clinic = ClinicData({"patients": pd.DataFrame({"patient_id": ["P1", "P2", "P3"]}), "visits": visits})
    out = visit_spend_multipliers(clinic, "2025-12-31")
    care = visits["inpatient_days"].astype(float).clip(lower=1)
    key = visits["department"].astype(object).fillna("?") + "|" + visits["visit_type"].astype(str)
    per_day = visits["charge_insured"].groupby(key).sum() / care.groupby(key).sum()
    np.testing.assert_allclose(out["base"], per_day[key].to_numpy() * care.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(out["z"], out["total"] / out["base"])


def _reference_model_data(clinic, as_of, unit_days=7.0) -> pd.DataFrame:
    """The per-patient summary as it was made before the visits' feature rows were reused: patient_features,
    then every spend row's patient looked up again among the features' ids."""
    from crm_analysis.features import day_numbers, patient_features
    from crm_analysis.ids import id_positions
    from crm_analysis.value.clv import _spend_rows

    f = patient_features(clinic, as_of)
    rows, total, base = _spend_rows(clinic, as_of)
    code = id_positions(clinic.tables["visits"]["patient_id"], f.index, rows)
    good = code >= 0
    n_z = np.bincount(code[good], minlength=len(f))
    sum_z = np.bincount(code[good], weights=(total / base)[good], minlength=len(f))
    sum_base = np.bincount(code[good], weights=base[good], minlength=len(f))
    freq = f["frequency"].to_numpy()
    first = day_numbers(f["first_visit_date"])
    last = np.where(f["last_visit_date"].isna(), first, day_numbers(f["last_visit_date"].fillna(pd.Timestamp(0))))
    return pd.DataFrame({
        "x": np.maximum(freq - 1, 0).astype("float64"), "t_x": (last - first) / unit_days,
        "T": (day_numbers([pd.Timestamp(as_of)])[0] - first) / unit_days, "n_z": n_z,
        "z_mean": np.where(n_z > 0, sum_z / np.maximum(n_z, 1), np.nan),
        "base_per_visit_day": np.where(freq > 0, sum_base / np.maximum(freq, 1), np.nan),
        "value_12m": f["value_12m"].to_numpy()}, index=f.index)


@pytest.mark.parametrize("seed", [3, 11])
def test_model_data_reusing_the_feature_rows_equals_the_lookup_by_id(seed):
    """The fast path (each visit's feature row from patient_features) gives the same summary as looking every
    spend row's patient up by id, also with visits of unknown patients, missing ids and a visit after as_of."""
    from crm_analysis import synth
    from crm_analysis.value.clv import _model_data

    tables = dict(synth.generate_clinic(n_patients=300, seed=seed).tables)
    v = tables["visits"].copy()
    ids = v["patient_id"].astype(object).to_numpy()
    ids[::97] = "P-UNKNOWN"
    ids[5::101] = None
    v["patient_id"] = pd.array(ids, dtype=tables["visits"]["patient_id"].dtype)
    tables["visits"] = v
    clinic = ClinicData(tables)
    as_of = v["visit_date"].quantile(0.8).normalize()
    new, ref = _model_data(clinic, as_of, 7.0), _reference_model_data(clinic, as_of)
    pd.testing.assert_frame_equal(new, ref, check_exact=True)
    assert (new["n_z"] > 0).sum() > 100
