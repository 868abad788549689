"""The fast logistic GLM equals a plain statsmodels row-level GLM with patient-clustered errors.

Both ways of fitting are checked: on the rows (a design with a continuous trend, as on the demo clinic)
and on the distinct rows with successes and trials (a categorical design, as in exports with days only).
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.reminders import glm
from crm_analysis.reminders.glm import cluster_covariance, fit_binomial

SEED = 20261031


def _table(n: int, seed: int = SEED):
    """A small appointment-like design: intercept, a trend, a 3-level category, two step indicators; patients."""
    print(f"seed {seed}, n {n}")
    rng = np.random.default_rng(seed)
    patients = rng.integers(0, n // 5, n)
    trend = rng.uniform(0, 2, n)
    cat = rng.integers(0, 3, n)
    step1 = rng.random(n) < 0.6
    step2 = step1 & (rng.random(n) < 0.5)
    x = np.column_stack([np.ones(n), trend, cat == 1, cat == 2, step1, step2]).astype(float)
    frailty = rng.normal(0, 0.5, patients.max() + 1)[patients]  # patients differ: clustering matters
    eta = x @ np.array([-1.5, 0.2, 0.4, -0.3, -0.5, -0.2]) + frailty
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return x, y, patients, ["Intercept", "years", "cat[T.1]", "cat[T.2]", "rem_1d", "rem_2h"]


def _categorical_table(n: int, seed: int = SEED):
    """A design of categories and steps only: a few dozen distinct rows, as in day-precision exports."""
    print(f"seed {seed}, n {n}")
    rng = np.random.default_rng(seed)
    patients = rng.integers(0, n // 4, n)
    weekday, band = rng.integers(0, 5, n), rng.integers(0, 3, n)
    step1 = rng.random(n) < 0.6
    step2 = step1 & (rng.random(n) < 0.5)
    x = np.column_stack([np.ones(n), *(weekday == k for k in range(1, 5)), band == 1, band == 2, step1,
                         step2]).astype(float)
    frailty = rng.normal(0, 0.5, patients.max() + 1)[patients]
    eta = x @ np.array([-1.2, 0.1, -0.2, 0.3, 0.1, 0.4, -0.3, -0.5, -0.2]) + frailty
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    names = ["Intercept", *(f"weekday[T.{k}]" for k in range(1, 5)), "band[T.1]", "band[T.2]", "rem_1d", "rem_2h"]
    return x, y, patients, names


def _reference(x, y, groups):
    return sm.GLM(y, x, family=sm.families.Binomial()).fit(cov_type="cluster", cov_kwds={"groups": groups})


@pytest.mark.parametrize("start_rows", [None, 100])
def test_fit_equals_statsmodels_cluster_glm(monkeypatch, start_rows):
    """Both paths (default start, and Newton from a subsample fit) give statsmodels' estimates and CRV1 covariance."""
    if start_rows is not None:
        monkeypatch.setattr(glm, "_START_ROWS", start_rows)  # the subsample start, on a small table
    x, y, groups, names = _table(3000)
    assert glm._patterns(x) is None  # every row is distinct (the trend): fitted on the rows
    assert (glm._start_params(x, y, 100) is None) == (start_rows is None)
    ref = _reference(x, y, groups)
    ours = fit_binomial(x, y, groups, names, "cluster")
    assert list(ours.params.index) == names
    np.testing.assert_allclose(ours.params.to_numpy(), ref.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.cov_params().to_numpy(), ref.cov_params(), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(ours.pvalues.to_numpy(), ref.pvalues, rtol=1e-7)
    np.testing.assert_allclose(ours.conf_int().to_numpy(), ref.conf_int(), rtol=1e-9)
    assert ours.deviance == pytest.approx(ref.deviance, rel=1e-12)
    assert ours.n_iter >= 1


@pytest.mark.parametrize("collapse", [True, False])
def test_fit_on_distinct_rows_equals_statsmodels_on_the_rows(monkeypatch, collapse):
    """Successes and trials per distinct row: the row-level estimates, CRV1 covariance and deviance."""
    x, y, groups, names = _categorical_table(4000)
    if not collapse:
        monkeypatch.setattr(glm, "_PATTERN_SHARE", 0.0)
    found = glm._patterns(x)
    assert (found is not None) == collapse
    if collapse:
        first, pattern = found
        assert len(first) <= 60 and np.array_equal(x[first][pattern], x)
    ref = _reference(x, y, groups)
    ours = fit_binomial(x, y, groups, names, "cluster")
    np.testing.assert_allclose(ours.params.to_numpy(), ref.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.cov_params().to_numpy(), ref.cov_params(), rtol=1e-9, atol=1e-15)
    assert ours.deviance == pytest.approx(ref.deviance, rel=1e-10)
    plain = sm.GLM(y, x, family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(fit_binomial(x, y, groups, names, "nonrobust").cov_params().to_numpy(),
                               plain.cov_params(), rtol=1e-9, atol=1e-15)


def test_subsample_start_takes_every_row_of_a_rare_column(monkeypatch):
    """A column too rare for the subsample brings all its rows, so the start fit converges (not zeros)."""
    monkeypatch.setattr(glm, "_START_ROWS", 1000)  # every 4th row; a column with < 800 non-zero rows is rare
    x, y, groups, names = _table(4000, SEED + 4)
    rare = np.zeros(len(y))
    rare[np.random.default_rng(SEED).choice(len(y), 60, replace=False)] = 1.0
    x = np.column_stack([x, rare])
    start = glm._start_params(x, y, 100)
    assert start is not None and np.all(start != 0)
    ref = _reference(x, y, groups)
    ours = fit_binomial(x, y, groups, [*names, "rare"], "cluster")
    np.testing.assert_allclose(ours.params.to_numpy(), ref.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.cov_params().to_numpy(), ref.cov_params(), rtol=1e-9, atol=1e-15)


def test_cluster_covariance_matches_statsmodels_with_text_labels():
    x, y, groups, _ = _table(800, SEED + 1)
    labels = np.array([f"P{g:05d}" for g in groups], dtype=object)
    model = sm.GLM(y, x, family=sm.families.Binomial())
    ref = model.fit(cov_type="cluster", cov_kwds={"groups": groups})
    cov = cluster_covariance(model.score_obs(ref.params), model.hessian(ref.params), labels)
    np.testing.assert_allclose(cov, ref.cov_params(), rtol=1e-10, atol=1e-15)


def test_other_cov_types_come_from_statsmodels():
    x, y, groups, names = _table(600, SEED + 2)
    ref = sm.GLM(y, x, family=sm.families.Binomial()).fit(cov_type="HC0")
    ours = fit_binomial(x, y, groups, names, "HC0")
    np.testing.assert_allclose(ours.cov_params().to_numpy(), ref.cov_params(), rtol=1e-8)


@pytest.mark.parametrize("table", [_table, _categorical_table])
def test_separation_and_zero_columns_are_insufficient_data(table):
    x, y, groups, names = table(500, SEED + 3)
    separated = (x @ np.arange(x.shape[1]) > x.shape[1]).astype(float)  # a linear score predicts the outcome
    with pytest.raises(InsufficientDataError, match="could not be fitted"):
        fit_binomial(x, separated, groups, names, "cluster")
    with pytest.raises(InsufficientDataError, match="singular design"):
        fit_binomial(np.column_stack([x, np.zeros(len(y))]), y, groups, [*names, "empty"], "cluster")


@pytest.mark.parametrize("aliased", [False, True])
def test_rank_from_the_cross_product_equals_statsmodels(aliased):
    """The GLM's rank (df_model, df_resid) comes from X'X, not an SVD of X: the same as statsmodels',
    with a full-rank design and with an aliased column."""
    x, y, _, _ = _table(2_000)
    if aliased:
        x = np.column_stack([x, x[:, 2] + x[:, 3]])
    mine = glm._GLM(y, x, family=sm.families.Binomial())
    theirs = sm.GLM(y, x, family=sm.families.Binomial())
    print(f"df_model {mine.df_model} vs {theirs.df_model}, df_resid {mine.df_resid} vs {theirs.df_resid}")
    assert (mine.df_model, mine.df_resid, mine.wnobs) == (theirs.df_model, theirs.df_resid, theirs.wnobs)
    assert mine.df_model == x.shape[1] - 1 - aliased
