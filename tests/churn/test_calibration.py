"""Calibration of the churn probabilities (issue #17, point 5).

- On the full-size demo back-test the predicted return rate is within ±0.03 of
  the observed one in every decile of the prediction (with 20,000 patients a
  decile holds ~1,500, so 0.03 is more than two standard errors: the check can fail).
- On a short-history clinic whose returns have a long tail (the generator with
  a heavier-tailed return process) the old capped baseline underpredicts the
  long-absent patients badly; the fitted long-absence tail removes that.
- A horizon longer than any gap in the data warns.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from crm_analysis.churn import backtest
from crm_analysis.exceptions import DataQualityWarning
from tests.conftest import DEMO_END

TOLERANCE = 0.03


def _clinic(n_patients, seed, **kwargs):
    from crm_analysis import synth
    from crm_analysis.clinic import ClinicData

    print(f"\n[demo clinic] seed={seed} patients={n_patients} {kwargs}")
    tables = synth.generate_clinic(n_patients=n_patients, seed=seed, end=DEMO_END, **kwargs).tables
    return ClinicData(tables, as_of=pd.Timestamp(DEMO_END), source=f"demo seed {seed}")


def _show(name, result):
    cal = result.calibration["cox"].assign(error=lambda t: t["predicted"] - t["observed"])
    print(f"\n[{name}] cut-off {result.cutoff:%Y-%m-%d}, {result.n_patients:,} patients, "
          f"{result.observed_rate:.1%} returned within {result.horizon} days; tail {result.model.tail_}")
    print(cal.round(4).to_string(index=False))
    print(result.table.round(4).to_string(index=False))
    return cal


@pytest.fixture(scope="module")
def full_demo_backtest():
    """The default demo clinic at full size (20,000 patients, seed 42), back-tested 180 days before its end."""
    return backtest(_clinic(20_000, 42), None, 180, model={"weibull": False})


@pytest.fixture(scope="module")
def long_tail_clinic():
    """18 months of a clinic whose patients come back after long absences (heavier-tailed returns than the demo's)."""
    return _clinic(6_000, 12, start="2025-05-01",
                   params={"returns": {"weibull_shape": 0.45, "weibull_scale": 90.0, "dropout_mass": 0.1}})


@pytest.fixture(scope="module")
def long_tail_backtests(long_tail_clinic):
    return {tail: backtest(long_tail_clinic, None, 180, model={"weibull": False, "tail": tail})
            for tail in (False, True)}


def test_every_decile_within_3_points_on_the_demo_backtest(full_demo_backtest):
    cal = _show("full demo", full_demo_backtest)
    assert len(cal) == 10 and cal["n"].min() > 1_000
    # the check has power: 0.03 is more than two standard errors of every decile's observed rate
    assert (2 * cal["observed_se"] < TOLERANCE).all()
    assert (cal["error"].abs() <= TOLERANCE).all(), cal
    table = full_demo_backtest.table.set_index("model")
    assert table.loc["cox", "calibration_max"] <= TOLERANCE
    assert abs(table.loc["cox", "mean_predicted"] - full_demo_backtest.observed_rate) < 0.01
    # calibration did not cost ranking: the model still beats days since the last visit
    assert table.loc["cox", "c_index"] > table.loc["days_since_last_visit", "c_index"]


def test_long_absence_tail_fixes_the_capped_horizon(long_tail_backtests):
    capped, tailed = (_show(f"long tail, model.tail={t}", long_tail_backtests[t]) for t in (False, True))
    result = long_tail_backtests[True]
    assert result.model.max_day_ < 400  # one year of history: e + 180 days runs past the data for many patients
    # the old baseline (no return after the longest gap) underpredicts the long-absent decile badly ...
    assert capped["error"].iloc[0] < -0.08
    # ... the tail brings it within the tolerance, and no decile gets worse than the capped model's worst
    assert abs(tailed["error"].iloc[0]) <= TOLERANCE
    assert tailed["error"].abs().max() < capped["error"].abs().max()
    assert abs(result.table.set_index("model").loc["cox", "mean_predicted"] - result.observed_rate) < 0.02
    # ranking is unchanged (the tail is a common baseline)
    assert abs(result.c_index("cox") - long_tail_backtests[False].c_index("cox")) < 0.01
    print(f"\nworst decile error: capped {capped['error'].abs().max():.4f}, with tail {tailed['error'].abs().max():.4f}")


def test_horizon_beyond_the_data_warns(long_tail_backtests):
    tailed, capped = long_tail_backtests[True].model, long_tail_backtests[False].model
    beyond = tailed.max_day_ + 30
    with pytest.warns(DataQualityWarning, match=f"{beyond}-day horizon is longer than the longest gap"):
        p_far = tailed.predict_probability(beyond)
    with pytest.warns(DataQualityWarning, match="model.tail is off"):
        capped.predict_probability(beyond)
    with pytest.warns(DataQualityWarning, match="longer than the longest gap"):
        tailed.predict_return(horizons=(30, beyond))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # within the data: no warning
        p_180 = tailed.predict_probability(180)
    # the tail keeps adding returns past the data instead of stopping at the longest gap
    assert (p_far.to_numpy() >= p_180.to_numpy()).all()
    long_absent = tailed.current_["elapsed_days"].to_numpy() >= tailed.max_day_ - 10
    assert (p_far.to_numpy()[long_absent] > 0.01).all()


def test_tail_is_the_cox_baseline_beyond_the_splice(long_tail_backtests):
    model = long_tail_backtests[True].model
    tail = model.tail_
    assert tail.kind in ("power law", "gompertz") and tail.exponent <= 0
    assert tail.start_day < tail.splice_day <= model.max_day_
    days = np.arange(tail.splice_day, tail.splice_day + 400)
    h0 = model._baseline(days)
    np.testing.assert_allclose(h0 - h0[0], tail.cumulative(days), rtol=1e-12)
    assert (np.diff(h0) > 0).all()
