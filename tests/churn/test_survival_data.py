"""Per-gap survival data: hand-computed cases, agreement with the features, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.churn import current_gaps, survival_data
from crm_analysis.churn.survival_data import GAP_COLUMNS
from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import CrmAnalysisError
from tests.conftest import DEMO_END


def _tiny() -> ClinicData:
    """Two patients; P1 has two visits on one day and a no-show; P2 a single self-pay-heavy visit."""
    patients = pd.DataFrame({
        "patient_id": ["P1", "P2"], "sex": ["F", "M"],
        "birth_date": pd.to_datetime(["1990-06-15", "1950-01-01"]),
        "referral_source": ["word_of_mouth", None], "record_status": ["active", "active"],
        "first_visit_date": pd.to_datetime(["2025-06-14", "2025-03-01"]),
    })
    visits = pd.DataFrame({
        "visit_id": ["V1", "V2", "V3", "V4", "V5", "V6"],
        "patient_id": ["P1", "P1", "P1", "P1", "P2", "P1"],
        "visit_date": pd.to_datetime(["2025-06-14", "2025-06-24", "2025-06-24", "2025-08-01", "2025-03-01",
                                      "2025-12-31"]),
        "department": ["내과", "피부과", "내과", "정형외과", "피부과", "내과"],
        "charge_insured": [100.0, 50.0, 50.0, 0.0, 10.0, 1.0],
        "charge_self_pay": [0.0, 100.0, 0.0, 300.0, 90.0, 1.0],
    })
    appts = pd.DataFrame({
        "appointment_id": ["A1", "A2"], "patient_id": ["P1", "P1"],
        "booked_at": pd.to_datetime(["2025-06-01", "2025-06-20"]),
        "scheduled_at": pd.to_datetime(["2025-06-10 10:00", "2025-07-01 10:00"]),
        "status": ["no_show", "no_show"], "cancelled_at": pd.to_datetime([None, None]),
    })
    return ClinicData({"patients": patients, "visits": visits, "appointments": appts})


def test_tiny_clinic_by_hand():
    gaps = survival_data(_tiny(), "2025-09-30")  # V6 lies after as_of and must be ignored
    assert list(gaps.columns) == list(GAP_COLUMNS)
    p1 = gaps[gaps["patient_id"] == "P1"].reset_index(drop=True)
    # visit days 06-14, 06-24 (two visits, one day), 08-01; open gap to 09-30
    assert p1["duration"].tolist() == [10, 38, 60]
    assert p1["event"].tolist() == [1, 1, 0]
    assert p1["is_open"].tolist() == [False, False, True]
    assert p1["visit_number"].tolist() == [1, 2, 3]
    assert p1["prev_gap_days"].iloc[1:].tolist() == [10.0, 38.0]
    assert p1["prior_no_shows"].tolist() == [1, 1, 2]       # no-shows on 06-10 and 07-01
    assert p1["department"].tolist() == ["내과", "피부과", "정형외과"]  # first visit of the day
    assert (p1["main_department"] == "내과").all()
    assert (p1["age_band"] == "20-39").all()               # 34 at the first visit
    assert (p1["referral"] == "word_of_mouth").all() and (p1["self_pay_heavy"] == "no").all()
    np.testing.assert_allclose(p1["self_pay_share"], [0.0, 100 / 300, 400 / 600])
    assert p1["self_pay_mix"].astype(str).tolist() == ["none", "some", "mostly"]
    p2 = gaps[gaps["patient_id"] == "P2"].iloc[0]
    assert (p2["duration"], p2["event"], p2["is_open"]) == (213, 0, True)
    assert p2["self_pay_heavy"] == "yes" and p2["referral"] == "other" and p2["referral_source"] == "other"
    assert p2["age_band"] == "60+" and pd.isna(p2["prev_gap_band"])


def test_birthday_edge_counts_completed_years():
    clinic = _tiny()
    patients = clinic.patients.assign(birth_date=pd.to_datetime(["2005-06-15", "2005-03-01"]))
    gaps = survival_data(ClinicData({**clinic.tables, "patients": patients}), "2025-09-30")
    # P1 turns 20 the day after the first visit; P2 turns 20 on the first visit's day
    assert gaps.groupby("patient_id")["age_band"].first().astype(str).to_dict() == {"P1": "0-19", "P2": "20-39"}


def test_input_not_modified(churn_clinic):
    before = {k: v.copy() for k, v in churn_clinic.tables.items()}
    survival_data(churn_clinic, "2025-06-30")
    for name, df in before.items():
        pd.testing.assert_frame_equal(churn_clinic.tables[name], df)


def test_open_gaps_agree_with_patient_features(churn_clinic, churn_gaps):
    from crm_analysis.features import patient_features

    cur = current_gaps(churn_gaps)
    feats = patient_features(churn_clinic, DEMO_END).loc[cur.index]
    assert cur.index.is_unique and len(cur) == churn_gaps["patient_id"].nunique()
    np.testing.assert_array_equal(cur["visit_number"], feats["frequency"])
    np.testing.assert_array_equal(cur["elapsed_days"], feats["recency_days"])
    np.testing.assert_array_equal(cur["main_department"].astype(str), feats["main_department"].astype(str))
    np.testing.assert_allclose(cur["self_pay_share"], feats["self_pay_share"], equal_nan=True)


def test_same_as_on_a_snapshot_no_look_ahead(churn_clinic):
    cutoff = "2025-08-15"
    direct = survival_data(churn_clinic, cutoff)
    snap = survival_data(churn_clinic.snapshot(cutoff), cutoff)
    pd.testing.assert_frame_equal(direct, snap)
    assert direct["start_date"].max() <= pd.Timestamp(cutoff)
    assert (direct["start_date"] + pd.to_timedelta(direct["duration"], unit="D")).max() == pd.Timestamp(cutoff)


def test_no_shows_unknown_on_as_of_are_not_counted():
    """A no-show booked, or cancelled, after as_of was no no-show then (as on a snapshot)."""
    clinic = _tiny()
    appts = clinic.appointments.assign(booked_at=pd.to_datetime(["2025-06-01", "2025-10-05"]))
    late_booked = ClinicData({**clinic.tables, "appointments": appts})
    appts = clinic.appointments.assign(cancelled_at=pd.to_datetime([None, "2025-10-05"]))
    late_cancelled = ClinicData({**clinic.tables, "appointments": appts})
    for c in (late_booked, late_cancelled):
        gaps = survival_data(c, "2025-09-30")
        assert gaps.loc[gaps["patient_id"] == "P1", "prior_no_shows"].tolist() == [1, 1, 1]


def test_gaps_match_the_generator_truth_counts(demo_synth, churn_gaps):
    visits = demo_synth.tables["visits"]
    days = visits.drop_duplicates(["patient_id", "visit_date"])
    assert len(churn_gaps) == len(days)
    assert int((~churn_gaps["is_open"]).sum()) == len(days) - visits["patient_id"].nunique()


def test_no_visits_before_as_of_is_a_clear_error(churn_clinic):
    with pytest.raises(CrmAnalysisError, match="no visit on or before 2000-01-01"):
        survival_data(churn_clinic, "2000-01-01")


def test_gap_covariates_use_only_the_past(churn_gaps, churn_clinic):
    """A gap's covariates are the same whether the data ends at its start or years later (no look-ahead)."""
    cutoff = pd.Timestamp("2025-03-31")
    early = survival_data(churn_clinic, cutoff).set_index(["patient_id", "start_date"])
    late = churn_gaps.set_index(["patient_id", "start_date"]).loc[early.index]
    covariates = ["age_band", "sex", "main_department", "referral", "referral_source", "self_pay_heavy",
                  "department", "visit_number", "visits_band", "self_pay_share", "self_pay_mix",
                  "prior_no_shows", "no_show_history", "prev_gap_days", "prev_gap_band"]
    for col in covariates:
        np.testing.assert_array_equal(early[col].astype(str).to_numpy(), late[col].astype(str).to_numpy(), err_msg=col)
    closed = ~early["is_open"].to_numpy()
    np.testing.assert_array_equal(early["duration"].to_numpy()[closed], late["duration"].to_numpy()[closed])


def test_without_appointments_no_show_history_is_zero():
    clinic = _tiny()
    bare = ClinicData({"patients": clinic.patients, "visits": clinic.visits})
    gaps = survival_data(bare, "2025-09-30")
    assert (gaps["prior_no_shows"] == 0).all() and (gaps["no_show_history"] == "0").all()
    pd.testing.assert_frame_equal(gaps.drop(columns=["prior_no_shows", "no_show_history"]),
                                  survival_data(clinic, "2025-09-30").drop(columns=["prior_no_shows",
                                                                                     "no_show_history"]))


def _factorized_codes(patient_ids, visit_ids):
    """The reference: the patients' and visits' ids factorized one after the other (as survival_data did)."""
    codes, uniques = pd.factorize(pd.concat([patient_ids, visit_ids], ignore_index=True).astype("string[pyarrow]"))
    return codes[: len(patient_ids)], codes[len(patient_ids):], uniques


@pytest.mark.parametrize("odd", ["none", "unknown_and_missing", "repeated_patient"])
def test_patient_codes_by_lookup_give_the_factorized_survival_data(churn_clinic, monkeypatch, odd):
    """The fast path (patients numbered by row, visits looked up) equals factorizing every id, also with visits of
    patients the table lacks, missing ids, and a repeated patient id (which takes the factorize path)."""
    import importlib

    module = importlib.import_module("crm_analysis.churn.survival_data")  # the package exports the function

    tables = dict(churn_clinic.tables)
    if odd == "unknown_and_missing":
        v = tables["visits"].copy()
        ids = v["patient_id"].astype(object).to_numpy()
        ids[::89] = "Q-NEW-1"
        ids[3::97] = "Q-NEW-0"
        ids[11::103] = None
        v["patient_id"] = pd.array(ids, dtype=tables["visits"]["patient_id"].dtype)
        tables["visits"] = v
    elif odd == "repeated_patient":
        tables["patients"] = pd.concat([tables["patients"], tables["patients"].iloc[[5]]], ignore_index=True)
    clinic = ClinicData(tables, as_of=churn_clinic.as_of)
    fast = survival_data(clinic, DEMO_END)
    monkeypatch.setattr(module, "_patient_codes", _factorized_codes)
    pd.testing.assert_frame_equal(fast, survival_data(clinic, DEMO_END), check_exact=True)


@pytest.mark.parametrize("far_day", [False, True], ids=["packed", "lexsort-fallback"])
def test_visits_sorted_by_packed_keys_equal_the_lexsort(far_day):
    import importlib

    module = importlib.import_module("crm_analysis.churn.survival_data")
    rng = np.random.default_rng(3)
    code = rng.integers(-1, 50, 5_000)
    day = rng.integers(19_000, 19_400, 5_000)
    if far_day:  # a NaT-like day number: the keys no longer fit 62 bits
        day[17] = np.iinfo(np.int64).min // 86_400_000_000_000
    order, code_s, day_s = module.sorted_by_patient_and_day(code, day)
    expected = np.lexsort((np.arange(len(day)), day, code))
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(code_s, code[expected])
    np.testing.assert_array_equal(day_s, day[expected])
