"""ClinicData: optional tables, and snapshots that never look ahead."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from crm_analysis import MissingTableError, load_clinic
from tests.test_validation import AS_OF, VALID, write_clinic_csv


@pytest.fixture
def clinic(tmp_path):
    return load_clinic(write_clinic_csv(tmp_path / "c", copy.deepcopy(VALID)), as_of=AS_OF)


def test_missing_optional_table_says_what_needed_it(clinic):
    assert not clinic.has("contacts")
    with pytest.raises(MissingTableError, match="campaign evaluation needs the 'contacts' table"):
        clinic.require("contacts", "campaign evaluation")
    with pytest.raises(MissingTableError):
        clinic.contacts
    counts = clinic.row_counts().set_index("table")
    assert counts.loc["contacts", "rows"] == 0 and not counts.loc["contacts", "present"]
    assert counts.loc["visits", "rows"] == 4


def test_tables_are_read_only_mapping(clinic):
    with pytest.raises(TypeError):
        clinic.tables["visits"] = None


def test_snapshot_keeps_only_what_was_known(clinic):
    snap = clinic.snapshot("2024-02-06")
    assert snap.visits["visit_id"].tolist() == ["V1", "V2"]
    appts = snap.appointments.set_index("appointment_id")
    assert list(appts.index) == ["A1", "A2", "A3"]
    # A3 was scheduled for 10 Feb: on 6 Feb it was still booked, and its cancellation (8 Feb) not yet made.
    assert appts.loc["A3", "status"] == "booked" and pd.isna(appts.loc["A3", "cancelled_at"])
    # P3 first came on 1 March but booked A3 on 1 February, so is already known.
    assert snap.patients["patient_id"].tolist() == ["P1", "P2", "P3"]
    assert clinic.snapshot("2024-01-31").patients["patient_id"].tolist() == ["P1", "P2"]
    assert snap.patients["sms_consent"].iloc[0]  # consent given on 5 Jan is kept
    assert snap.as_of == pd.Timestamp("2024-02-06")


def test_snapshot_ignores_changes_after_its_date(tmp_path):
    """Rows after the snapshot date can be changed or removed without changing the snapshot."""
    base = copy.deepcopy(VALID)
    altered = copy.deepcopy(VALID)
    altered["visits"][3]["charge_self_pay"] = "999999"        # V4, 1 April
    altered["visits"].append({**altered["visits"][0], "visit_id": "V9", "visit_date": "2024-06-01"})
    altered["appointments"][3]["status"] = "cancelled"         # A4, booked in December
    altered["appointments"][3]["cancelled_at"] = "2024-12-21 09:00:00"
    del altered["pregnancies"]
    altered["pregnancies"] = [{"patient_id": "P2", "due_date": "2025-03-01", "outcome": "", "outcome_date": ""}]
    when = "2024-03-15"
    a = load_clinic(write_clinic_csv(tmp_path / "a", base), as_of=AS_OF).snapshot(when)
    b = load_clinic(write_clinic_csv(tmp_path / "b", altered), as_of=AS_OF).snapshot(when)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], check_categorical=False)


def test_consent_given_later_is_undone(tmp_path):
    tables = copy.deepcopy(VALID)
    tables["patients"][0]["sms_consent_date"] = "2024-03-01"
    snap = load_clinic(write_clinic_csv(tmp_path / "c", tables), as_of=AS_OF).snapshot("2024-02-06")
    assert snap.patients["sms_consent"].tolist() == [False, False, False]
    assert snap.patients["sms_consent_date"].isna().all()


def test_snapshot_cannot_look_past_the_data(clinic):
    with pytest.raises(ValueError, match="only runs to 2024-12-31"):
        clinic.snapshot("2025-01-01")


def test_snapshot_reports_what_it_left_out(clinic):
    snap = clinic.snapshot("2024-02-06")
    note = next(p for p in snap.report.info if p.check == "snapshot")
    assert "visits 2" in note.message and "appointments 1" in note.message
    assert not any(p.check == "snapshot" for p in clinic.report.info)  # the original is untouched


def test_snapshot_of_demo_keeps_references_whole(demo_clinic):
    """Every id in a snapshot points at a row that is in the same snapshot."""
    from crm_analysis.contract import TABLES

    for day in ("2024-06-30", "2025-06-30", "2026-01-15"):
        snap = demo_clinic.snapshot(day)
        for name, df in snap.tables.items():
            for col in TABLES[name].columns:
                if col.references:
                    parent, key = col.references.split(".")
                    if parent in snap.tables:
                        values = df[col.name].dropna()
                        assert values.isin(snap.tables[parent][key]).all(), (day, name, col.name)
        assert (snap.visits["visit_date"] <= pd.Timestamp(day)).all()


def test_a_future_appointment_cancelled_by_as_of_stays_cancelled(generated_clinic):
    from crm_analysis.clinic import ClinicData

    as_of = pd.Timestamp("2026-10-31") - pd.Timedelta(days=20)
    pid = str(generated_clinic.patients["patient_id"].iloc[0])
    extra = pd.DataFrame({
        "appointment_id": ["AX1", "AX2", "AX3", "AX4"], "patient_id": [pid] * 4,
        "booked_at": [as_of - pd.Timedelta(days=3)] * 4,
        "scheduled_at": [as_of + pd.Timedelta(days=d) for d in (5, 6, 7, 8)],
        "status": ["cancelled", "cancelled", "rescheduled", "attended"],
        "cancelled_at": [as_of - pd.Timedelta(hours=2), as_of + pd.Timedelta(days=2), pd.NaT, pd.NaT]})
    appts = pd.concat([generated_clinic.appointments, extra], ignore_index=True)
    clinic = ClinicData({**generated_clinic.tables, "appointments": appts}, as_of=generated_clinic.as_of)
    snap = clinic.snapshot(as_of).appointments.set_index("appointment_id").loc[["AX1", "AX2", "AX3", "AX4"]]
    # known by then: cancelled the day before; not yet: cancelled later, an undated move, an outcome ahead
    assert snap["status"].astype(str).tolist() == ["cancelled", "booked", "booked", "booked"]
    assert snap.loc["AX1", "cancelled_at"] == as_of - pd.Timedelta(hours=2) and pd.isna(snap.loc["AX2", "cancelled_at"])
