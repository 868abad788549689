"""The churn definition: threshold from the rules, per-segment table with suppression."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from crm_analysis.churn import churn_by_segment, churn_status


def test_churned_means_below_the_threshold(churn_model):
    status = churn_status(churn_model)
    p180 = churn_model.predict_probability(180)
    np.testing.assert_array_equal(status["churned"], p180 < 0.2)
    stricter = churn_status(churn_model, rules={"churn": {"max_return_probability": 0.05}})
    assert stricter["churned"].sum() < status["churned"].sum()
    shorter = churn_status(churn_model, rules={"churn": {"horizon_days": 30}})
    np.testing.assert_allclose(shorter["p_return"], churn_model.predict_probability(30))
    print(f"\nchurned at 0.2: {status['churned'].sum()} of {len(status)}; at 0.05: {stricter['churned'].sum()}")


def test_per_segment_table_adds_up_and_hides_small_counts(churn_model):
    status = churn_status(churn_model)
    ids = status.index
    seg = pd.Series(np.where(np.arange(len(ids)) < 3, "few", np.where(np.arange(len(ids)) % 2, "odd", "even")),
                    index=ids)
    table = churn_by_segment(status, seg).set_index("segment")
    assert table.loc["total", "patients"] == len(status)
    assert table.loc["total", "churned"] == status["churned"].sum()
    assert pd.isna(table.loc["few", "patients"]) and pd.isna(table.loc["few", "churn_rate"])
    ok = table.drop(index=["total"]).dropna(subset=["churned"])
    np.testing.assert_allclose(ok["churn_rate"].astype(float), (ok["churned"] / ok["patients"]).astype(float))
    assert table["definition"].iloc[0] == "P(return within 180d) < 0.2"


def test_a_calibrated_backtest_is_stated_with_the_churn_flag(churn_model, churn_backtest):
    status = churn_status(churn_model, backtest=churn_backtest)
    plain = churn_status(churn_model)
    pd.testing.assert_frame_equal(status, plain)  # the flag itself is unchanged ...
    cal = status.attrs["calibration"]  # ... and the back-test's calibration goes with it
    assert cal["checked"] and cal["cutoff"] == "2026-04-30" and cal["max_allowed"] == 0.05
    assert cal["calibration_mae"] == churn_backtest.calibration_error()["calibration_mae"] < 0.05
    assert not plain.attrs["calibration"]["checked"]
    table = churn_by_segment(status, pd.Series("all", index=status.index))
    assert re.fullmatch(r"back-test from 2026-04-30: mean decile error \d\.\d%p, max \d+\.\d%p",
                        table["calibration"].iloc[0])  # percentage points with one decimal
    assert churn_by_segment(plain, pd.Series("all", index=plain.index))["calibration"].iloc[0].startswith("not checked")
    print(f"\n{table['calibration'].iloc[0]}")


def test_poorly_calibrated_probabilities_label_nobody_churned(churn_model, churn_backtest):
    from crm_analysis.exceptions import InsufficientDataError

    mae = churn_backtest.calibration_error()["calibration_mae"]
    with pytest.raises(InsufficientDataError, match="nobody is labelled churned") as err:
        churn_status(churn_model, rules={"churn": {"max_calibration_error": mae / 2}}, backtest=churn_backtest)
    assert err.value.analysis == "churn" and "이탈 환자를 표시하지 않습니다" in err.value.reason_ko
    # just inside the limit: given
    churn_status(churn_model, rules={"churn": {"max_calibration_error": mae * 1.01}}, backtest=churn_backtest)


def test_backtest_must_match_the_horizon_and_end_by_as_of(churn_model, churn_backtest):
    from crm_analysis.exceptions import CrmAnalysisError

    with pytest.raises(CrmAnalysisError, match="churn is defined at 90 days"):
        churn_status(churn_model, rules={"churn": {"horizon_days": 90}}, backtest=churn_backtest)
    # the back-test's own model (fitted at the cut-off) cannot be judged by outcomes after its as_of
    with pytest.raises(CrmAnalysisError, match="after the model's as_of 2026-04-30"):
        churn_status(churn_backtest.model, backtest=churn_backtest)


def test_a_segment_where_all_but_a_few_churned_is_hidden_too():
    """patients - churned is published by difference: 52 patients with 50 churned says 2 did not."""
    churned = [True] * 50 + [False] * 2 + [True] * 20 + [False] * 30 + [True] * 40 + [False] * 40
    status = pd.DataFrame({"churned": churned, "p_return": 0.5})
    segments = pd.Series(["a"] * 52 + ["b"] * 50 + ["c"] * 80, index=status.index)
    table = churn_by_segment(status, segments).set_index("segment")
    print(table[["patients", "churned", "churn_rate"]])
    assert pd.isna(table.loc["a", "churned"]) and pd.isna(table.loc["a", "churn_rate"])
    both = table[table["patients"].notna() & table["churned"].notna()]
    assert not (both["patients"] - both["churned"]).between(1, 4).any()
    assert table["churned"].isna().sum() >= 2, "secondary suppression down the column (the total is shown)"
    assert (table["churn_rate"].isna() == (table["churned"].isna() | table["patients"].isna())).all()
