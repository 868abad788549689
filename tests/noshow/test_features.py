"""The no-show table's added features, on a tiny hand-computed clinic, and their no-look-ahead property."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis import load_clinic
from crm_analysis.noshow import noshow_table

T = pd.Timestamp


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two patients, nine appointments, written as CSV files and read by the public loader."""
    appts = pd.DataFrame({
        "appointment_id": ["A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9"],
        "patient_id": ["P1"] * 5 + ["P2"] * 4,
        "booked_at": [T("2026-01-01 10:00"), T("2026-01-03 12:00"), T("2026-01-04 09:00"), T("2026-01-12 09:00"),
                      T("2026-01-13 09:00"), T("2026-01-02 09:00"), T("2026-01-02 09:30"), T("2026-01-09 09:00"),
                      T("2026-01-20 09:00")],
        "scheduled_at": [T("2026-01-05 10:00"), T("2026-01-10 10:00"), T("2026-01-12 10:00"), T("2026-01-20 10:00"),
                         T("2026-01-25 10:00"), T("2026-01-06 10:00"), T("2026-01-08 10:00"), T("2026-01-15 10:00"),
                         T("2026-02-20 10:00")],
        "department": ["내과"] * 9,
        "status": ["cancelled", "attended", "no_show", "attended", "attended", "attended", "rescheduled", "attended",
                   "booked"],
        "cancelled_at": [T("2026-01-03 09:00")] + [pd.NaT] * 8,
    })
    visits = pd.DataFrame({"visit_id": ["V1", "V2", "V3", "V4", "V5"],
                           "patient_id": ["P1", "P1", "P1", "P2", "P2"],
                           "visit_date": [T("2026-01-10"), T("2026-01-20"), T("2026-01-25"), T("2026-01-06"),
                                          T("2026-01-15")]})
    patients = pd.DataFrame({"patient_id": ["P1", "P2"], "birth_date": [T("1980-06-01"), T("2020-01-01")],
                             "sex": ["F", "M"], "first_visit_date": [T("2026-01-10"), T("2026-01-06")]})
    folder = tmp_path_factory.mktemp("noshow_tiny")
    for name, frame in (("appointments", appts), ("visits", visits), ("patients", patients)):
        frame.to_csv(folder / f"{name}.csv", index=False)
    return load_clinic(folder, as_of="2026-01-31")


def test_hand_computed_features(tiny):
    before = {k: v.copy() for k, v in tiny.tables.items()}
    t = noshow_table(tiny, "2026-01-31").set_index("appointment_id")
    for k, v in before.items():  # the input is not modified
        pd.testing.assert_frame_equal(tiny.tables[k], v)
    # A1's cancellation is known on 01-03: not for A2 booked that day, but for A3 booked the day after.
    # A7's undated move counts from the day after its day (01-09): not for A8 booked 01-09.
    assert t["prior_cancellations"].to_dict() == {"A1": 0, "A2": 0, "A3": 1, "A4": 1, "A5": 1, "A6": 0, "A7": 0,
                                                  "A8": 0}
    # A3's no-show (01-12 10:00) is not known when A4 is booked that morning; it is for A5.
    assert t.loc[["A3", "A4", "A5"], "prior_no_shows"].tolist() == [0, 0, 1]
    # First visit: no visit on a day before the booking day.
    assert t["first_visit"].to_dict() == {"A1": 1.0, "A2": 1.0, "A3": 1.0, "A4": 0.0, "A5": 0.0, "A6": 1.0,
                                          "A7": 1.0, "A8": 0.0}
    assert t.loc["A1", "age"] == 45 and t.loc["A6", "age"] == 6
    assert np.allclose(t["log_lead"], np.log1p(t["lead_days"]))
    assert "A9" not in t.index  # scheduled after as_of


def test_upcoming_rows_come_from_the_snapshot(tiny):
    t = noshow_table(tiny, "2026-01-16", include_upcoming=True).set_index("appointment_id")
    # Booked by 01-16 and scheduled later, still booked then: A4 (attended later), A5 (booked 01-13).
    assert sorted(t.index[t["upcoming"]]) == ["A4", "A5"]
    assert t.loc["A4", "status"] == "booked" and np.isnan(t.loc["A4", "no_show"])
    assert "A9" not in t.index  # booked after 01-16


def test_features_of_past_appointments_do_not_change_with_later_data(ns_table, generated_clinic):
    """No look-ahead: the features of appointments up to a date are the same when the table is built then."""
    cut = "2026-04-30"
    early = noshow_table(generated_clinic, cut).set_index("appointment_id")
    late = ns_table.set_index("appointment_id").loc[early.index]
    cols = ["lead_days", "prior_no_shows", "prior_cancellations", "first_visit", "age", "weekday", "hour_band",
            "department"]
    pd.testing.assert_frame_equal(early[cols], late[cols], check_dtype=False)
