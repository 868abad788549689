"""Tests for crm_analysis.value.referrals (word of mouth) and crm_analysis.value.migration, against the demo truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.clinic import ClinicData
from crm_analysis.value.migration import NOT_REGISTERED, segment_migration
from crm_analysis.value.referrals import referral_source_by_month, referral_value_summary, top_referrers
from tests.conftest import DEMO_END
from tests.test_features import AS_OF, _tamper_after


@pytest.fixture(scope="module")
def demo(demo_synth) -> ClinicData:
    return ClinicData(demo_synth.tables, as_of=pd.Timestamp(DEMO_END))


def test_top_referrers_match_the_generator_truth(demo, demo_synth):
    truth = demo_synth.truth["referral"]
    top = top_referrers(demo, DEMO_END, n=10)
    print(f"\ntop referrer counts: {top['referrals'].tolist()} (truth {truth['top_referrer_counts']})")
    assert top["referrals"].tolist() == truth["top_referrer_counts"]
    assert top.index.name == "patient_id" and top["rank"].tolist() == list(range(1, 11))
    anon = top_referrers(demo, DEMO_END, n=10, anonymise=True)
    assert anon.index.name == "rank" and "patient_id" not in anon.columns
    # referred value is the total charges of the patients each one referred
    first = top.index[0]
    referred = demo.patients.loc[demo.patients.referred_by == first, "patient_id"]
    v = demo.visits[demo.visits.patient_id.isin(referred)]
    assert top.loc[first, "referred_value_total"] == pytest.approx((v.charge_insured + v.charge_self_pay).sum())


def test_source_shares_by_month(demo, demo_synth):
    shares = referral_source_by_month(demo, DEMO_END)
    counts = referral_source_by_month(demo, DEMO_END, share=False)
    sources = shares.columns.drop("new_patients")
    np.testing.assert_allclose(shares[sources].sum(axis=1), 1.0)
    assert counts["new_patients"].sum() == len(demo.patients)
    overall = counts[sources].sum() / counts["new_patients"].sum()
    truth = demo_synth.truth["referral"]["realised_source_shares"]
    print(f"\nword-of-mouth share of new patients: {overall['word_of_mouth']:.3f} "
          f"(truth {truth['word_of_mouth']:.3f})")
    assert overall["word_of_mouth"] == pytest.approx(truth["word_of_mouth"], abs=0.01)
    assert overall.idxmax() == "word_of_mouth"


def test_value_summary(demo, demo_synth):
    s = referral_value_summary(demo, DEMO_END)
    assert s.loc["referred by a patient", "patients"] == demo_synth.truth["referral"]["n_with_referrer"]
    assert s["patients"].sum() == len(demo.patients)
    assert s.attrs["referrers"] > 0


def test_referrals_have_no_look_ahead(demo):
    a = top_referrers(demo, AS_OF, n=20)
    b = top_referrers(_tamper_after(demo, AS_OF, drop=False), AS_OF, n=20)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(referral_source_by_month(demo, AS_OF),
                                  referral_source_by_month(_tamper_after(demo, AS_OF, drop=True), AS_OF))


# --------------------------------------------------------------------------- migration

def test_migration_matrix(demo):
    m = segment_migration(demo, "2026-09-30", DEMO_END)
    n_from = len(demo.snapshot("2026-09-30").patients.query("first_visit_date <= '2026-09-30'"))
    assert m.counts.to_numpy().sum() == len(demo.patients)
    assert m.counts.sum(axis=1).drop(NOT_REGISTERED).sum() == n_from
    rows = m.rates.dropna()
    np.testing.assert_allclose(rows.sum(axis=1), 1.0)
    # patients registered since can only be in segments reachable with few visits
    assert m.counts.loc[NOT_REGISTERED].sum() == len(demo.patients) - n_from
    s = m.summary()
    assert (s["stayed"] <= s["patients_from"]).all()
    # VIP changes are consistent with the two selections
    assert set(m.vip_entered.index).isdisjoint(m.vip_left.index)
    assert m.vip_left["now"].notna().all() and m.vip_entered["reason"].notna().all()
    assert "Segment migration" in m._repr_html_()


def test_migration_from_the_features_already_made_is_the_same(demo):
    """The month passes the features it has (computed once per run) instead of having them made again."""
    from crm_analysis.features import patient_features

    made = segment_migration(demo, "2026-09-30", DEMO_END)
    given = segment_migration(demo, "2026-09-30", DEMO_END, features_to=patient_features(demo, DEMO_END))
    pd.testing.assert_frame_equal(given.counts, made.counts)
    pd.testing.assert_frame_equal(given.vip_entered, made.vip_entered)
    pd.testing.assert_frame_equal(given.vip_left, made.vip_left)


def test_migration_dates_in_order(demo):
    with pytest.raises(ValueError, match="must be before"):
        segment_migration(demo, DEMO_END, "2026-09-30")
