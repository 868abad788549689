"""Tests for crm_analysis.features: a hand-computed tiny clinic, an independent pandas reference on the
demo clinic, and no look-ahead (rows after as_of changed or removed leave the features identical)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.clinic import ClinicData
from crm_analysis.features import FEATURE_COLUMNS, patient_features
from tests.conftest import DEMO_END

AS_OF = "2025-10-31"


def tiny_clinic() -> ClinicData:
    """Three patients, hand-made. P3 registers after as_of=2024-03-31."""
    patients = pd.DataFrame({
        "patient_id": pd.array(["P1", "P2", "P3"], dtype="string"),
        "sex": pd.Categorical(["F", "M", "F"]),
        "birth_date": pd.to_datetime(["1990-04-01", "1950-03-31", "2010-01-01"]),
        "region": pd.Categorical(["송파구", "강남구", "송파구"]),
        "first_visit_date": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-05-01"]),
        "referral_source": pd.Categorical(["internet", "word_of_mouth", "word_of_mouth"]),
        "referred_by": pd.array([None, "P1", "P1"], dtype="string"),
        "record_status": pd.Categorical(["active", "active", "active"]),
    })
    visits = pd.DataFrame({
        "visit_id": pd.array([f"V{i}" for i in range(1, 9)], dtype="string"),
        "patient_id": pd.array(["P1", "P1", "P1", "P1", "P2", "P2", "P1", "P3"], dtype="string"),
        "visit_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-11", "2024-02-10",
                                      "2024-03-01", "2024-03-05", "2024-06-01", "2024-05-01"]),
        "department": pd.Categorical(["내과", "피부과", "내과", "내과", "정형외과", "정형외과", "안과", "내과"]),
        "visit_type": pd.Categorical(["outpatient", "outpatient", "outpatient", "inpatient",
                                      "outpatient", "outpatient", "outpatient", "outpatient"]),
        "inpatient_days": [0, 0, 0, 3, 0, 0, 0, 0],
        "charge_insured": [10_000.0, 0.0, 20_000.0, 600_000.0, 50_000.0, np.nan, 1e9, 5.0],
        "charge_self_pay": [0.0, 30_000.0, 0.0, 0.0, 10_000.0, 40_000.0, 1e9, 5.0],
    })
    appointments = pd.DataFrame({
        "appointment_id": pd.array(["A1", "A2", "A3", "A4", "A5"], dtype="string"),
        "patient_id": pd.array(["P1", "P1", "P1", "P2", "P1"], dtype="string"),
        "booked_at": pd.to_datetime(["2023-12-20", "2024-01-02", "2024-02-01", "2024-02-20", "2024-03-20"]),
        "scheduled_at": pd.to_datetime(["2024-01-01 10:00", "2024-01-11 10:00", "2024-02-05 10:00",
                                        "2024-03-01 10:00", "2024-04-10 10:00"]),
        "department": pd.Categorical(["내과"] * 5),
        "status": pd.Categorical(["attended", "attended", "no_show", "cancelled", "no_show"]),
        "cancelled_at": pd.to_datetime([None, None, None, "2024-02-25", None]),
    })
    return ClinicData({"patients": patients, "visits": visits, "appointments": appointments},
                      as_of=pd.Timestamp("2024-12-31"))


def test_tiny_clinic_by_hand():
    f = patient_features(tiny_clinic(), "2024-03-31")
    assert list(f.index) == ["P1", "P2"] and list(f.columns) == list(FEATURE_COLUMNS)
    p1, p2 = f.loc["P1"], f.loc["P2"]
    # P1: visit days 01-01 (two visits), 01-11, 02-10 -> 3 days, gaps 10 and 30
    assert p1.frequency == 3 and p1.visits_12m == 3
    assert p1.first_visit_date == pd.Timestamp("2024-01-01") and p1.last_visit_date == pd.Timestamp("2024-02-10")
    assert p1.recency_days == 50 and p1.tenure_days == 90
    assert p1.monetary_insured == 630_000 and p1.monetary_self_pay == 30_000 and p1.monetary_total == 660_000
    assert p1.self_pay_share == pytest.approx(30_000 / 660_000)
    assert p1.mean_interval_days == 20 and p1.median_interval_days == 20
    assert p1.interval_cv == pytest.approx(10 / 20)          # sd of (10, 30) with ddof=0 is 10
    assert p1.inpatient_days == 3 and p1.inpatient_stays == 1
    assert p1.per_diem_charge == pytest.approx(660_000 / (3 + 3))  # 3 outpatient visits + 3 inpatient days
    assert p1.n_departments == 2 and p1.main_department == "내과" and p1.last_department == "내과"
    assert p1.appointments == 3 and p1.no_show_count == 1 and p1.no_show_rate == pytest.approx(1 / 3)
    assert p1.referral_count == 1                              # P3 registers after as_of
    assert p1.age == 33 and p1.age_band == "20-39"
    # P2: gap of 4 days only: no regularity; NaN insured charge counts as 0
    assert p2.frequency == 2 and p2.mean_interval_days == 4 and np.isnan(p2.interval_cv)
    assert p2.monetary_insured == 50_000 and p2.monetary_total == 100_000
    assert p2.appointments == 1 and p2.no_show_count == 0 and np.isnan(p2.no_show_rate)
    assert p2.age == 74 and p2.age_band == "60+"               # birthday on 03-31 counts
    assert p2.referral_count == 0 and p2.main_department == "정형외과"
    assert f.loc["P1", "value_12m"] == 660_000


def test_tiny_clinic_later_as_of_counts_the_later_referral():
    f = patient_features(tiny_clinic(), "2024-12-31")
    assert f.loc["P1", "referral_count"] == 2 and f.loc["P1", "last_department"] == "안과"
    assert f.loc["P3", "frequency"] == 1 and np.isnan(f.loc["P3", "mean_interval_days"])


def test_as_of_after_the_data_is_refused():
    with pytest.raises(ValueError, match="after the data's own as_of"):
        patient_features(tiny_clinic(), "2025-06-30")
    with pytest.raises(ValueError, match="explicit as_of"):
        patient_features(tiny_clinic(), None)


@pytest.fixture(scope="module")
def demo(demo_synth) -> ClinicData:
    return ClinicData(demo_synth.tables, as_of=pd.Timestamp(DEMO_END))


def test_matches_an_independent_pandas_reference(demo):
    f = patient_features(demo, AS_OF)
    v = demo.visits[demo.visits["visit_date"] <= AS_OF]
    ref = v.assign(total=v.charge_insured + v.charge_self_pay).groupby("patient_id", observed=True).agg(
        frequency=("visit_date", "nunique"), monetary_total=("total", "sum"),
        last_visit_date=("visit_date", "max"), inpatient_days=("inpatient_days", "sum"),
        n_departments=("department", "nunique"))
    days = v.drop_duplicates(["patient_id", "visit_date"]).sort_values(["patient_id", "visit_date"])
    gaps = days.groupby("patient_id")["visit_date"].diff().dt.days
    ref["median_interval_days"] = gaps.groupby(days["patient_id"]).median()
    ref["interval_cv"] = gaps.groupby(days["patient_id"]).agg(lambda g: g.std(ddof=0) / g.mean()
                                                             if g.count() >= 2 else np.nan)
    ref["referral_count"] = demo.patients[demo.patients.first_visit_date <= AS_OF]["referred_by"].value_counts()
    ref["referral_count"] = ref["referral_count"].fillna(0).astype(np.int64)
    assert set(f.index) == set(ref.index)
    got = f.loc[ref.index, ref.columns]
    pd.testing.assert_frame_equal(got, ref, check_dtype=False, check_names=False, check_index_type=False)


def _tamper_after(clinic: ClinicData, as_of: str, drop: bool) -> ClinicData:
    """Change (or remove) every row dated after `as_of` in every table."""
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    rng = np.random.default_rng(3)
    t = {k: v.copy() for k, v in clinic.tables.items()}
    late_patients = t["patients"]["first_visit_date"] >= end
    v = t["visits"]
    late = v["visit_date"] >= end
    if drop:
        t["visits"] = v[~late | (rng.random(len(v)) < 0.3)].reset_index(drop=True)
    else:
        v.loc[late, "charge_insured"] = 1e9
        v.loc[late, "visit_date"] += pd.Timedelta(days=3)
        v.loc[late, "department"] = v["department"].cat.categories[0]
        v.loc[late, "inpatient_days"] = 9
    a = t["appointments"]
    late_a = (a["scheduled_at"] >= end) | (a["booked_at"] >= end) | (a["cancelled_at"] >= end)
    if drop:
        t["appointments"] = a[~late_a].reset_index(drop=True)
    else:
        a.loc[late_a, "status"] = "no_show"
    p = t["patients"]
    if drop:
        gone = late_patients & ~p["patient_id"].isin(t["visits"]["patient_id"])
        t["patients"] = p[~gone].reset_index(drop=True)
    else:
        p.loc[late_patients, "referred_by"] = p["patient_id"].iloc[0]
        p.loc[late_patients, "region"] = p["region"].cat.categories[0]
    return ClinicData(t, as_of=clinic.as_of)


@pytest.mark.parametrize("drop", [False, True], ids=["changed", "removed"])
def test_no_look_ahead(demo, drop):
    before = patient_features(demo, AS_OF)
    after = patient_features(_tamper_after(demo, AS_OF, drop), AS_OF)
    assert (before["frequency"] > 0).all() and len(before) < len(demo.patients)
    pd.testing.assert_frame_equal(before, after)


def test_same_as_on_a_snapshot_and_input_untouched(demo):
    copies = {k: v.copy() for k, v in demo.tables.items()}
    full = patient_features(demo, AS_OF)
    snap = patient_features(demo.snapshot(AS_OF), AS_OF)
    pd.testing.assert_frame_equal(full, snap)
    for k, v in copies.items():
        pd.testing.assert_frame_equal(demo.tables[k], v)
    pd.testing.assert_frame_equal(full, patient_features(demo, AS_OF))  # reproducible


def test_through_the_loader(demo_clinic, demo):
    pd.testing.assert_frame_equal(patient_features(demo_clinic, DEMO_END), patient_features(demo, DEMO_END),
                                  check_index_type=False, check_categorical=False)


def test_before_any_visit_and_without_appointments():
    empty = patient_features(tiny_clinic(), "2023-06-30")
    assert empty.empty and list(empty.columns) == list(FEATURE_COLUMNS)
    t = dict(tiny_clinic().tables)
    del t["appointments"]
    f = patient_features(ClinicData(t), "2024-06-30")
    assert (f["appointments"] == 0).all() and f["no_show_rate"].isna().all()
    assert f.attrs["as_of"] == pd.Timestamp("2024-06-30")


def test_completed_years_and_age_band_at_the_band_edge():
    from crm_analysis.features import age_band, completed_years

    birth = pd.Series(pd.to_datetime(["2006-11-01", "2006-11-01", None, "1966-02-28"]))
    at = pd.Series(pd.to_datetime(["2026-10-31", "2026-11-01", "2026-11-01", "2026-02-27"]))
    age = completed_years(birth, at)
    assert age.iloc[[0, 1, 3]].tolist() == [19.0, 20.0, 59.0] and np.isnan(age.iloc[2])
    bands = age_band(age)
    assert list(bands[[0, 1, 3]]) == ["0-19", "20-39", "40-59"] and pd.isna(bands[2])
    # a scalar date works the same way (19 years and 364 days is still 19)
    assert completed_years(birth, "2026-10-31").iloc[0] == 19.0


def test_day_numbers():
    from crm_analysis.features import day_numbers

    days = day_numbers(pd.to_datetime(["1970-01-02 00:00", "2026-10-31 23:59"]))
    assert days.tolist() == [1, (pd.Timestamp("2026-10-31") - pd.Timestamp("1970-01-01")).days]


@pytest.mark.parametrize("as_of", [DEMO_END, "2025-06-30"])
def test_the_few_features_of_the_value_model_equal_the_full_ones(demo_clinic, as_of):
    """``full=False`` (what the lifetime-value model reads) gives the same values, patients and visit rows."""
    from crm_analysis.features import patient_features_and_visit_rows

    lean, rows = patient_features_and_visit_rows(demo_clinic, as_of, full=False)
    full, full_rows = patient_features_and_visit_rows(demo_clinic, as_of)
    assert list(lean.columns) == ["first_visit_date", "last_visit_date", "frequency", "value_12m"]
    pd.testing.assert_frame_equal(lean, full[list(lean.columns)], check_exact=True)
    np.testing.assert_array_equal(rows, full_rows)
    assert (rows >= 0).sum() > 1_000
