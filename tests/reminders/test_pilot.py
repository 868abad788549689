"""Randomised pilot: recovery of the demo clinic's true effect, hand-computed arms, the planner."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders import pilot_analysis, plan_pilot


def test_pilot_ci_covers_true_effect(rem_table, rem_truth):
    res = pilot_analysis(rem_table)
    truth = rem_truth["pilot"]
    print(f"pilot RD {res.risk_difference} vs truth {truth['risk_difference']:.4f}")
    print(f"pilot RR {res.risk_ratio} vs truth {truth['risk_ratio']:.4f}")
    assert res.risk_difference.contains(truth["risk_difference"])
    assert res.risk_ratio.contains(truth["risk_ratio"])
    arms = res.arms.set_index("arm")
    assert arms.loc["control", "no_show_rate"] == pytest.approx(truth["observed_no_show_rate_control_arm"], abs=0.02)
    assert res.summary()["scale"].tolist() == ["risk_difference", "risk_ratio"]
    assert "Randomised pilot" in res._repr_html_()


def _arms_table(c1, n1, c0, n0):
    y = np.r_[np.ones(c1), np.zeros(n1 - c1), np.ones(c0), np.zeros(n0 - c0)]
    arm = np.r_[np.ones(n1, bool), np.zeros(n0, bool)]
    return pd.DataFrame({"analysed": True, "eligible": True, "month": pd.Period("2024-06", "M"), "no_show": y,
                         "sent_any": arm})


def test_hand_computed_pilot():
    res = pilot_analysis(_arms_table(10, 100, 20, 100), month="2024-06")
    assert res.risk_difference.estimate == pytest.approx(-0.10)
    assert res.risk_ratio.estimate == pytest.approx(0.5)
    assert res.number_needed == pytest.approx(10.0)
    lo, hi = res.number_needed_ci
    assert lo == pytest.approx(1 / -res.risk_difference.ci_low)
    assert res.risk_difference.ci_high < 0 and math.isfinite(hi)
    # the score interval and the score test agree (one inverts the other)
    for c1, c0 in ((10, 20), (12, 20), (13, 20), (15, 15)):
        rd = pilot_analysis(_arms_table(c1, 100, c0, 100), month="2024-06").risk_difference
        assert (rd.p_value < 0.05) == (rd.ci_high < 0 or rd.ci_low > 0)
    same = pilot_analysis(_arms_table(15, 100, 15, 100), month="2024-06")
    assert same.number_needed == math.inf and same.number_needed_ci[1] == math.inf


def test_pilot_errors_say_what_to_do():
    with pytest.raises(CrmAnalysisError, match="set pilot_month"):
        pilot_analysis(_arms_table(1, 10, 1, 10), rules={"pilot_month": None})
    with pytest.raises(CrmAnalysisError, match="needs both"):
        pilot_analysis(_arms_table(1, 10, 0, 0), month="2024-06")


def test_planner_consistent_with_power():
    plan = plan_pilot(0.17, effects=(-0.03, -0.05, -0.08))
    assert plan["n_per_arm"].is_monotonic_decreasing
    for _, row in plan.iterrows():
        h = abs(proportion_effectsize(row["reminder_rate"], row["control_rate"]))
        power = NormalIndPower().power(h, nobs1=row["n_per_arm_arcsine"], alpha=0.05, ratio=1.0)
        assert 0.8 <= power < 0.81
        # the two approximations agree within 10%
        assert abs(row["n_per_arm"] / row["n_per_arm_arcsine"] - 1) < 0.1
    with pytest.raises(CrmAnalysisError, match="between 0 and 1"):
        plan_pilot(0.02, effects=(-0.05,))
