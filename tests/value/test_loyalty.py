"""Tests for crm_analysis.value.loyalty: a hand-computed score, monotonicity (hypothesis), tiers and rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_analysis.clinic import ClinicData
from crm_analysis.features import patient_features
from crm_analysis.value.loyalty import loyalty_rules, loyalty_score, loyalty_tier_summary
from tests.conftest import DEMO_END


def _features(freq, cv, inp, per_diem):
    return pd.DataFrame({"frequency": freq, "interval_cv": cv, "inpatient_days": inp, "per_diem_charge": per_diem},
                        index=pd.Index([f"P{i}" for i in range(len(freq))], name="patient_id"))


def test_score_by_hand():
    f = _features(freq=[1, 5, 10, 5], cv=[np.nan, 0.5, 0.2, 1.0], inp=[0, 0, 3, 0], per_diem=[10, 20, 30, 40])
    s = loyalty_score(f)
    # share strictly below (n = 4): frequency 0, .25, .75, .25; regularity (-cv, NaN lowest) 0, .5, .75, .25;
    # inpatient 0, 0, .75, 0; per diem 0, .25, .5, .75
    np.testing.assert_allclose(s["pct_frequency"], [0, .25, .75, .25])
    np.testing.assert_allclose(s["pct_regularity"], [0, .5, .75, .25])
    np.testing.assert_allclose(s["pct_inpatient_days"], [0, 0, .75, 0])
    np.testing.assert_allclose(s["pct_per_diem"], [0, .25, .5, .75])
    expected = 100 * np.array([0, .35 * .25 + .25 * .5 + .25 * .25,
                               .35 * .75 + .25 * .75 + .15 * .75 + .25 * .5,
                               .35 * .25 + .25 * .25 + .25 * .75])
    np.testing.assert_allclose(s["loyalty_score"], expected)
    assert s["loyalty_tier"].tolist() == ["Bronze", "Bronze", "Gold", "Bronze"]
    assert s["loyalty_tier"].cat.ordered and s["loyalty_tier"].cat.categories[-1] == "Platinum"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 50), st.floats(0, 3), st.integers(0, 10), st.floats(1e3, 1e6)),
                min_size=2, max_size=30), st.integers(0, 29), st.integers(1, 20))
def test_more_visits_never_lowers_the_score(rows, who, extra):
    f = _features(*map(list, zip(*rows)))
    who = who % len(f)
    more = f.copy()
    more.iloc[who, 0] += extra
    assert loyalty_score(more)["loyalty_score"].iloc[who] >= loyalty_score(f)["loyalty_score"].iloc[who] - 1e-9
    s = loyalty_score(f)["loyalty_score"]
    assert s.between(0, 100).all()


def test_rules_override_and_errors():
    f = _features(freq=[1, 2, 3], cv=[0.1, 0.2, 0.3], inp=[0, 0, 0], per_diem=[1, 2, 3])
    only_freq = {"components": {"frequency": {"column": "frequency", "weight": 1}}}
    np.testing.assert_allclose(loyalty_score(f, only_freq)["loyalty_score"], [0, 100 / 3, 200 / 3])
    with pytest.raises(ValueError, match="last tier needs min_score: 0"):
        loyalty_rules({"tiers": [{"name": "A", "min_score": 50}]})
    with pytest.raises(ValueError, match="needs 'column' and 'weight'"):
        loyalty_rules({"components": {"x": {"weight": 1}}})
    with pytest.raises(KeyError, match="no_such"):
        loyalty_score(f, {"components": {"x": {"column": "no_such", "weight": 1}}})


def test_demo_tiers(demo_synth):
    f = patient_features(ClinicData(demo_synth.tables, as_of=pd.Timestamp(DEMO_END)), DEMO_END)
    s = loyalty_score(f)
    summary = loyalty_tier_summary(f, s, lang="ko")
    print("\nloyalty tiers on the demo clinic:\n" + summary.to_string())
    assert summary["patients"].sum() == len(f) and summary["tier"].tolist() == ["플래티넘", "골드", "실버", "브론즈"]
    # higher tiers visit more often on average
    assert summary["frequency_mean"].is_monotonic_decreasing
