"""Tests for crm_analysis.value.vip: a hand-computed tiny case (exact), reasons for everyone on the demo clinic,
rule overrides and errors."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_analysis.clinic import ClinicData
from crm_analysis.features import patient_features
from crm_analysis.value.vip import select_vips, vip_rules, vip_summary
from tests.conftest import DEMO_END

AS_OF = "2026-10-31"


def tiny_features() -> pd.DataFrame:
    ids = [f"P{i:02d}" for i in range(1, 11)]
    f = pd.DataFrame({
        "value_12m": [1000, 900, 800, 700, 600, 500, 400, 0, 300, 200],
        "visits_12m": [5, 2, 4, 6, 3, 3, 3, 3, 3, 3],
        "referral_count": [0, 0, 0, 1, 2, 1, 3, 5, 4, 0],
        "record_status": pd.Categorical(["active", "active", "deceased"] + ["active"] * 7),
        "opted_out_all": [False] * 6 + [True] + [False] * 3,
    }, index=pd.Index(ids, name="patient_id"))
    f.attrs["as_of"] = pd.Timestamp(AS_OF)
    return f


TINY_RULES = {"top_value_share": 0.4, "min_visits": 3, "capacity": 2,
              "referral_bonus": {"enabled": True, "per_referral": 0.25, "max_referrals": 4}}


def test_tiny_case_by_hand():
    # 9 patients have value (P08 has none): top 40% = ceil(3.6) = 4 -> P01..P04, threshold 700.
    # Bonus: P05 600*(1+2*.25)=900 >= 700 yes; P06 625 no; P07 400*1.75=700 yes; P09 300*2=600 no.
    # P02 has 2 visit days (< 3); P03 is deceased; P07 opted out everywhere.
    # Ranked by score: P01 1000, P05 900, P04 700*1.25=875; capacity 2.
    v = select_vips(tiny_features(), AS_OF, TINY_RULES)
    assert list(v.index) == ["P01", "P05", "P04"]
    assert v["rank"].tolist() == [1, 2, 3]
    assert v["selected"].tolist() == [True, True, False]
    assert v["rule"].tolist() == ["top_value", "referral_bonus", "top_value"]
    assert v["score"].tolist() == [1000, 900, 875]
    assert v.loc["P01", "reason"] == "top 40% by 12-month value (1,000 KRW ≥ 700); 5 visit days"
    assert v.loc["P05", "reason"] == ("referral bonus: 2 referred patient(s) raise 600 KRW to a score of 900 ≥ 700; "
                                      "3 visit days")
    assert v.loc["P04", "reason"] == "top 40% by 12-month value (700 KRW ≥ 700); 6 visit days — over capacity (2)"
    assert v.attrs["threshold"] == 700 and v.attrs["excluded"] == 2


def test_tiny_case_without_bonus_and_with_listed_exclusions():
    rules = {**TINY_RULES, "capacity": None, "referral_bonus": {"enabled": False},
             "exclude": {"patient_ids": ["P04"]}}
    v = select_vips(tiny_features(), AS_OF, rules)
    assert list(v.index) == ["P01"] and v["selected"].all() and (v["rule"] == "top_value").all()
    assert v.attrs["excluded"] == 2                     # P03 (deceased) and P04 (listed)


def test_input_not_modified_and_as_of_checked():
    f = tiny_features()
    copy = f.copy()
    select_vips(f, AS_OF, TINY_RULES)
    pd.testing.assert_frame_equal(f, copy)
    with pytest.raises(ValueError, match="features describe 2026-10-31"):
        select_vips(f, "2026-09-30", TINY_RULES)


@pytest.mark.parametrize("rules, match", [
    ({"top_value_share": 10}, "fraction in"),
    ({"capacity": 0}, "capacity must be"),
    ({"min_visits": -1}, "min_visits"),
    ({"vip_share": 0.1}, "unknown key"),
    ({"exclude": {"status": ["x"]}}, "exclude may hold"),
])
def test_bad_rules_are_named(rules, match):
    with pytest.raises(ValueError, match=match):
        vip_rules(rules)


def test_demo_every_candidate_has_a_reason(demo_synth):
    clinic = ClinicData(demo_synth.tables, as_of=pd.Timestamp(DEMO_END))
    f = patient_features(clinic, DEMO_END)
    v = select_vips(f, DEMO_END)
    print(f"\nVIPs on the demo clinic: {int(v['selected'].sum())} selected of {len(v)} candidates; "
          f"by rule: {v['rule'].value_counts().to_dict()}")
    assert v["selected"].sum() == min(len(v), 100) and len(v) > 0
    assert v["reason"].str.len().gt(20).all() and v["rule"].notna().all()
    assert (v.loc[v["selected"], "visits_12m"] >= 3).all()
    assert not f.loc[v.index, "record_status"].isin(["deceased", "moved"]).any()
    assert not f.loc[v.index, "opted_out_all"].any()
    assert v["score"].is_monotonic_decreasing
    s = vip_summary(v)
    assert s["patients"].sum() == len(v) and "patient_id" not in s.columns
