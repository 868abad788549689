"""Tests for crm_analysis.value.clv_fit: the CLV fit on sufficient statistics (distinct rows with
multiplicities, analytic gradients) gives the per-patient Nelder-Mead fit's parameters and predictions to
the optimiser's tolerance, its weighted likelihood is the per-patient sum, and it recovers simulated truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.clinic import ClinicData
from crm_analysis.value import clv_fit
from crm_analysis.value.clv import CLVModel
from crm_analysis.value.clv_fit import distinct_rows, fit_bgnbd, fit_gamma_gamma
from tests.conftest import DEMO_END

CUTOFF = "2025-10-31"
SEED = 22
#: Nelder-Mead stops within xatol = 1e-7 of its best vertex (log parameters); on the demo clinics the
#: per-patient fit is within ~5e-7 of the gradient fit's optimum. 1e-5 leaves room, and is far below
#: the parameters' standard errors (~1%).
RTOL = 1e-5


@pytest.fixture(scope="module")
def demo(demo_synth) -> ClinicData:
    return ClinicData(demo_synth.tables, as_of=pd.Timestamp(DEMO_END))


def _fit(clinic, as_of, sufficient: bool) -> CLVModel:
    model = CLVModel()
    model._sufficient = sufficient
    return model.fit(clinic, as_of)


@pytest.fixture(scope="module", params=[DEMO_END, CUTOFF])
def both(request, demo) -> tuple[CLVModel, CLVModel]:
    """The demo clinic fitted per patient (as before) and on sufficient statistics (the default)."""
    return _fit(demo, request.param, False), CLVModel().fit(demo, request.param)


def test_parameters_equal_the_per_patient_fit(both):
    old, new = both
    est_old, est_new = old.summary["estimate"], new.summary["estimate"]
    print("\nper patient vs sufficient statistics:\n" + pd.DataFrame(
        {"per_patient": est_old, "sufficient": est_new, "rel_diff": est_new / est_old - 1}).to_string())
    assert old.converged_ and new.converged_
    np.testing.assert_allclose(est_new, est_old, rtol=RTOL)
    # standard errors: the same numerical Hessian up to its own error (central differences, step 1e-4)
    np.testing.assert_allclose(new.summary["se_log"], old.summary["se_log"], rtol=1e-3)
    for part in ("visits", "spend"):
        assert new.loglik_[part] >= old.loglik_[part] - 1e-9 * abs(old.loglik_[part])   # no worse an optimum
        assert new.loglik_[part] == pytest.approx(old.loglik_[part], rel=1e-10)


def test_predictions_equal_the_per_patient_fit(both):
    old, new = both
    a, b = old.predict_frame(), new.predict_frame()
    pd.testing.assert_index_equal(a.index, b.index)
    pd.testing.assert_index_equal(a.columns, b.columns)
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=10 * RTOL, atol=1e-12)
    assert np.corrcoef(a["expected_value"], b["expected_value"])[0, 1] > 1 - 1e-10


def test_compression_on_the_demo(demo):
    """Patients without a repeat visit collapse to one row per T; the fit says how many rows it used."""
    d = CLVModel().fit(demo, DEMO_END).data_
    first, inverse = distinct_rows(d["x"].to_numpy(), d["t_x"].to_numpy(), d["T"].to_numpy())
    once = d["x"].to_numpy() == 0
    assert len(first) < len(d)
    assert len(np.unique(inverse[once])) == d.loc[once, "T"].nunique()
    fit = fit_bgnbd(d["x"], d["t_x"], d["T"])
    assert fit.rows == len(first)
    assert fit_bgnbd(d["x"], d["t_x"], d["T"], sufficient=False).rows == len(d)


def test_distinct_rows_on_a_tiny_frame():
    x = np.array([0.0, 2.0, 0.0, 2.0, 2.0, np.nan, np.nan])
    t = np.array([1.0, 3.0, 1.0, 3.0, 4.0, 1.0, 1.0])
    first, inverse = distinct_rows(x, t)
    assert first.tolist() == [0, 1, 4, 5]
    assert inverse.tolist() == [0, 1, 0, 1, 2, 3, 3]
    np.testing.assert_array_equal(x[first][inverse], x)
    np.testing.assert_array_equal(t[first][inverse], t)


def _random_summary(rng, n):
    x = rng.integers(0, 20, n).astype(float) * (rng.random(n) < 0.7)
    T = rng.integers(0, 400, n) / 7.0
    tx = np.where(x > 0, np.floor(rng.random(n) * T * 7) / 7.0, 0.0)
    return x, tx, T


def test_weighted_likelihood_is_the_per_patient_sum_and_its_gradient_is_exact():
    rng = np.random.default_rng(SEED)
    x, tx, T = _random_summary(rng, 4_000)
    triples = clv_fit._VisitTriples(x, tx, T)
    assert triples.w.sum() == len(x) and len(triples.w) < len(x)
    theta = np.log([0.7, 3.2, 0.4, 2.5])
    per_patient = clv_fit._bgnbd_loglik(np.exp(theta), clv_fit._BgnbdData(x, tx, T))
    nll, grad = clv_fit._bgnbd_nll_grad(theta, triples)
    assert -nll == pytest.approx(per_patient.sum(), rel=1e-13)
    assert triples.loglik(np.exp(theta)).sum() == pytest.approx(per_patient.sum(), rel=1e-13)
    _check_gradient(clv_fit._bgnbd_nll_grad, theta, triples, grad)

    n = rng.integers(1, 30, 4_000).astype(float)
    zbar = np.round(rng.gamma(2.0, 0.5, 4_000), 2)        # rounded: some (n, z̄) pairs repeat
    pairs = clv_fit._SpendPairs(n, zbar)
    assert pairs.w.sum() == len(n) and len(pairs.w) < len(n)
    theta = np.log([2.1, 3.3, 1.2])
    per_patient = clv_fit._gg_loglik(np.exp(theta), clv_fit._GammaGammaData(n, zbar))
    nll, grad = clv_fit._gg_nll_grad(theta, pairs)
    assert -nll == pytest.approx(per_patient.sum(), rel=1e-13)
    _check_gradient(clv_fit._gg_nll_grad, theta, pairs, grad)


def _check_gradient(nll_grad, theta, data, grad, h=1e-6):
    numeric = [(nll_grad(theta + e, data)[0] - nll_grad(theta - e, data)[0]) / (2 * h) for e in np.eye(len(theta)) * h]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6 * np.max(np.abs(grad)))


def test_fallback_to_nelder_mead_gives_the_same_estimates(monkeypatch):
    """When the gradient fit is not accepted, the weighted Nelder-Mead fit takes over."""
    rng = np.random.default_rng(SEED)
    x, tx, T = _random_summary(rng, 3_000)
    reference = fit_bgnbd(x, tx, T)
    monkeypatch.setattr(clv_fit, "_GRAD_TOL", -1.0)
    fallback = fit_bgnbd(x, tx, T)
    per_patient = fit_bgnbd(x, tx, T, sufficient=False)
    assert reference.converged and fallback.converged
    np.testing.assert_allclose(fallback.params, per_patient.params, rtol=RTOL)
    np.testing.assert_allclose(reference.params, per_patient.params, rtol=RTOL)
    assert fallback.loglik == pytest.approx(per_patient.loglik, rel=1e-10)


def _simulate_bgnbd(rng, n, r, alpha, a, b, days):
    """BG/NBD visit histories observed for `days` whole days from registration (time unit: weeks)."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.integers(1, days + 1, n).astype(float)
    t, x, tx = np.zeros(n), np.zeros(n), np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        t = t + rng.exponential(1.0, n) / lam * 7.0
        came = alive & (np.ceil(t) <= T)
        x[came], tx[came] = x[came] + 1, np.ceil(t[came])
        alive = came & (rng.random(n) >= p)
    return x, tx / 7.0, T / 7.0


def test_recovers_simulated_bgnbd_truth_and_matches_the_per_patient_fit():
    """Whole-day times over a year: many patients share a triple (multiplicities up to 20)."""
    rng = np.random.default_rng(SEED)
    print(f"\n[BG/NBD simulation] seed={SEED}")
    truth = np.array([0.8, 4.0, 0.6, 3.0])
    x, tx, T = _simulate_bgnbd(rng, 6_000, *truth, days=365)
    fit = fit_bgnbd(x, tx, T)
    assert fit.rows < 0.85 * len(x) and clv_fit._VisitTriples(x, tx, T).w.max() >= 10
    se = np.sqrt(np.diag(fit.cov_log))
    lower, upper = fit.params * np.exp(-3 * se), fit.params * np.exp(3 * se)
    assert np.all((lower <= truth) & (truth <= upper)), (fit.params, truth)
    np.testing.assert_allclose(fit.params, fit_bgnbd(x, tx, T, sufficient=False).params, rtol=RTOL)


def test_gamma_gamma_on_distinct_pairs_matches_the_per_patient_fit():
    rng = np.random.default_rng(SEED)
    n = rng.integers(1, 25, 5_000).astype(float)
    nu = rng.gamma(4.0, 1.0 / 1.0, 5_000)
    zbar = np.round(rng.gamma(3.0 * n, 1.0 / nu) / n, 3)
    fit, per_patient = fit_gamma_gamma(n, zbar), fit_gamma_gamma(n, zbar, sufficient=False)
    assert fit.converged and fit.rows < len(n)
    np.testing.assert_allclose(fit.params, per_patient.params, rtol=RTOL)
    np.testing.assert_allclose(np.diag(fit.cov_log), np.diag(per_patient.cov_log), rtol=1e-3)


def test_expected_visits_per_distinct_pair_are_the_per_patient_formula(demo):
    """predict_visits evaluates the hypergeometric term once per distinct (x, T); each patient's value must
    be exactly the per-patient formula's."""
    from scipy import special

    model = CLVModel().fit(demo, CUTOFF)
    r, alpha, a, b = (model.params_[k] for k in ("r", "alpha", "a", "b"))
    x, T = model.data_["x"].to_numpy(), model.data_["T"].to_numpy()
    t = model.horizon_days / model.time_unit_days
    alive = model.predict_alive().to_numpy()
    h = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    term = 1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * h
    direct = (a + b + x - 1) / (a - 1) * term * alive
    np.testing.assert_array_equal(model.predict_visits().to_numpy(), direct)
