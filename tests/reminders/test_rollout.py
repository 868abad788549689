"""Interrupted time series: an exact synthetic series, then the demo clinic's roll-outs against the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders import interrupted_time_series, plot_its, rate_series

RULES = {"rollouts": [{"date": "2024-01-01", "schedule": "1d"}], "pilot_month": None}


def _series_table(level=-0.05, slope=-0.002, months=30, n=2000):
    """`n` appointments a month whose no-show count follows trend + step exactly (up to rounding)."""
    rows = []
    start = pd.Period("2023-01", "M")
    for m in range(months):
        k = m - 12
        rate = 0.20 + 0.001 * m + (level + slope * k if k >= 0 else 0.0)
        ns = int(round(rate * n))
        when = (start + m).to_timestamp() + pd.Timedelta(days=3)
        rows.append(pd.DataFrame({"scheduled_at": when, "analysed": True, "no_show": [1.0] * ns + [0.0] * (n - ns),
                                  "reminded": k >= 0, "eligible": True, "lead_days": 5, "prior_no_shows": 0}))
    return pd.concat(rows, ignore_index=True)


def test_exact_series_recovers_step_and_slope():
    res = interrupted_time_series(_series_table(), rules=RULES)
    level = res.instant_level_changes["1d"]
    print(f"synthetic step -0.05: {level}")
    assert level.estimate == pytest.approx(-0.05, abs=1e-3)
    assert res.slope_changes["1d"].estimate == pytest.approx(-0.002, abs=2e-4)
    # mean change over the first 3 months = level + slope * 1
    assert res.level_changes["1d"].estimate == pytest.approx(-0.052, abs=1e-3)
    assert res.seasonality and res.case_mix == ()  # 30 months: month-of-year terms; constant case mix dropped
    s = res.series
    after = s.index >= pd.Period("2024-01", "M")
    assert np.allclose(s.loc[~after, "fitted"], s.loc[~after, "counterfactual"])


@pytest.mark.parametrize("name, key", [("1d", "level_change_vs_no_reminder"),
                                       ("3d+1d+2h", "level_change_vs_previous_regime")])
def test_demo_its_level_change_covers_truth(rem_table, rem_truth, name, key):
    res = interrupted_time_series(rem_table)
    est = res.level_changes[name]
    truth = rem_truth["its"][name][key]
    print(f"ITS {name}: {est} vs truth {truth:+.4f}")
    assert res.seasonality and len(res.series) == 36
    assert est.contains(truth)
    assert set(res.summary()["quantity"]) == {"level_change", "instant_level_change", "slope_change_per_period"}


def test_rate_series_matches_truth_monthly(rem_table, rem_truth):
    s = rate_series(rem_table)
    monthly = rem_truth["monthly"]
    for period, row in s.iloc[[0, 10, 35]].iterrows():
        assert row["no_show_rate"] == pytest.approx(monthly[str(period)]["observed_no_show_rate"])
        assert row["appointments"] == monthly[str(period)]["n_non_cancelled"]


def test_its_needs_rollouts_and_enough_periods(rem_table):
    with pytest.raises(CrmAnalysisError, match="no roll-out date"):
        interrupted_time_series(rem_table, rules={"rollouts": []})
    with pytest.raises(CrmAnalysisError, match="at least 3 on each side"):
        interrupted_time_series(rem_table, rules={"rollouts": [{"date": "2026-10-01", "schedule": "x"}]})


def test_plot(rem_table):
    import matplotlib.pyplot as plt

    ax = plot_its(interrupted_time_series(rem_table), lang="en")
    assert ax.get_title() == "Monthly no-show rate and the reminder roll-outs"
    assert len(ax.get_lines()) >= 3
    plt.close(ax.figure)
