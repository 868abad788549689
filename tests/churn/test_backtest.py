"""Back-test on the demo clinic: the model beats the days-since-last-visit baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.churn import ChurnModel, backtest
from crm_analysis.exceptions import CrmAnalysisError

CUTOFF = "2026-04-30"
HORIZON = 180


@pytest.fixture(scope="module")
def result(churn_clinic):
    return backtest(churn_clinic, CUTOFF, HORIZON, model={"weibull_max_gaps": 4_000})


def test_model_c_index_beats_days_since_last_visit(result):
    model, recency = result.c_index("cox"), result.c_index("days_since_last_visit")
    rule = result.c_index("rule_180d")
    print(f"\n[backtest cut-off {CUTOFF}, horizon {HORIZON}d, {result.n_patients} patients, "
          f"{result.observed_rate:.1%} returned] C-index: model {model:.4f} vs days since last visit "
          f"{recency:.4f} vs 180-day rule {rule:.4f}")
    print(result.table.round(4).to_string())
    assert model > recency
    assert model > rule


def test_calibration_and_brier(result):
    table = result.table.set_index("model")
    cox = result.calibration["cox"]
    assert len(cox) == 10 and cox["n"].sum() == result.n_patients
    assert (cox["predicted"].diff().dropna() >= 0).all()
    print(f"\nBrier at {HORIZON}d: model {table.loc['cox', 'brier']:.4f}, days since last visit "
          f"{table.loc['days_since_last_visit', 'brier']:.4f}, 180-day rule {table.loc['rule_180d', 'brier']:.4f}")
    assert table.loc["cox", "brier"] < table.loc["rule_180d", "brier"]
    assert table.loc["cox", "calibration_mae"] < 0.05
    assert abs(table.loc["cox", "mean_predicted"] - result.observed_rate) < 0.05


def test_fitted_on_the_cut_off_only(result):
    assert result.model.as_of_.strftime("%Y-%m-%d") == CUTOFF
    assert result.model.current_["start_date"].max().strftime("%Y-%m-%d") <= CUTOFF


def test_same_model_as_on_the_cut_off_snapshot(result, churn_clinic):
    """The back-test fits on the full data cut at the cut-off; a fit on the snapshot gives the same model."""
    snap = churn_clinic.snapshot(CUTOFF)
    on_snap = ChurnModel(ph_test=False, weibull_max_gaps=4_000).fit(snap, CUTOFF)
    pd.testing.assert_frame_equal(result.model.summary, on_snap.summary)
    pd.testing.assert_series_equal(result.model.predict_probability(HORIZON),
                                   on_snap.predict_probability(HORIZON))


def test_observed_returns_by_hand(result, churn_clinic):
    v = churn_clinic.visits
    cut = pd.Timestamp(CUTOFF)
    window = v[(v["visit_date"] > cut) & (v["visit_date"] <= cut + pd.Timedelta(days=HORIZON))]
    returned = result.model.current_.index.isin(window["patient_id"].unique())
    np.testing.assert_allclose(result.observed_rate, returned.mean())


def test_horizon_beyond_the_data_is_a_clear_error(churn_clinic):
    with pytest.raises(CrmAnalysisError, match="use a cut-off on or before 2026-05-04"):
        backtest(churn_clinic, "2026-06-30", 180)
