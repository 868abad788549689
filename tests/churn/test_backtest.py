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
def result(churn_backtest):
    assert churn_backtest.cutoff == pd.Timestamp(CUTOFF) and churn_backtest.horizon == HORIZON
    return churn_backtest


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


def test_table_reports_calibration_beside_the_c_index(result):
    table = result.table
    assert list(table.columns[:4]) == ["model", "c_index", "calibration_mae", "calibration_max"]
    for name, deciles in result.calibration.items():
        gap = (deciles["predicted"] - deciles["observed"]).abs()
        row = table.set_index("model").loc[name]
        np.testing.assert_allclose(row["calibration_max"], gap.max())
        np.testing.assert_allclose(row["calibration_mae"], np.average(gap, weights=deciles["n"]))
        assert (deciles["observed_se"] > 0).all()
    assert result.calibration_error("cox") == {"calibration_mae": table.loc[0, "calibration_mae"],
                                               "calibration_max": table.loc[0, "calibration_max"]}
    # the Weibull AFT alternative has no cure fraction: it ranks fairly but its probabilities are far too high
    print(f"\ncalibration (mean / worst decile): cox {result.calibration_error('cox')}, "
          f"weibull_aft {result.calibration_error('weibull_aft')}")
    assert result.calibration_error("weibull_aft")["calibration_max"] > 0.3 > result.calibration_error()["calibration_max"]


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
