"""The churn definition: threshold from the rules, per-segment table with suppression."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
