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
    # the demo exports the allocation: the arms are the randomised groups, exactly as the generator drew them
    assert res.by_allocation and res.analysis == "intention_to_treat"
    assert "intention to treat" in res.risk_difference.estimand
    assert (arms.loc["reminder", "appointments"], arms.loc["control", "appointments"]) == (
        truth["n_reminder_arm"], truth["n_control_arm"])


def test_without_the_allocation_the_pilot_is_per_protocol_and_says_so(rem_table, demo_clinic):
    """Read from the reminders sent, allocated-but-unreachable patients fall into the control arm."""
    appts, reminders = demo_clinic.tables["appointments"], demo_clinic.tables["reminders"]
    unreached = int((appts["reminder_arm"].eq("reminder") & appts["status"].isin(["attended", "no_show"])
                     & ~appts["appointment_id"].isin(reminders["appointment_id"])).sum())
    itt = pilot_analysis(rem_table)
    pp = pilot_analysis(rem_table.drop(columns="allocated_reminder"))
    a_itt, a_pp = itt.arms.set_index("arm")["appointments"], pp.arms.set_index("arm")["appointments"]
    moved = a_itt["reminder"] - a_pp["reminder"]
    print(f"ITT arms {a_itt.to_dict()}, per-protocol arms {a_pp.to_dict()}: {moved} allocated to reminders but "
          f"never sent one; ITT {itt.risk_difference.estimate:+.4f}, per protocol {pp.risk_difference.estimate:+.4f}")
    assert not pp.by_allocation and pp.analysis == "per_protocol"
    assert "per protocol" in pp.risk_difference.estimand
    assert moved == unreached and a_pp["control"] - a_itt["control"] == moved


def test_an_allocated_but_unreachable_patient_stays_in_the_reminder_arm():
    table = _arms_table(10, 100, 20, 100)
    table["allocated_reminder"] = pd.array(table["sent_any"].to_numpy(), dtype="boolean")
    table.loc[:9, "sent_any"] = False  # ten allocated to reminders could not be reached
    itt = pilot_analysis(table, month="2024-06")
    pp = pilot_analysis(table.drop(columns="allocated_reminder"), month="2024-06")
    assert itt.arms["appointments"].tolist() == [100, 100] and itt.risk_difference.estimate == pytest.approx(-0.10)
    assert pp.arms["appointments"].tolist() == [90, 110]
    # outside the pilot (no allocation recorded) an appointment is left out of the comparison, not made a control
    table["allocated_reminder"] = table["allocated_reminder"].mask(table.index >= 190)
    assert pilot_analysis(table, month="2024-06").arms["appointments"].tolist() == [100, 90]


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
