"""Tests for crm_analysis.monthly.glance: the page-1 tiles' history."""

import numpy as np
import pandas as pd

from crm_analysis.monthly.glance import _reminded


def test_reminded_appointments_are_those_a_reminder_points_at(demo_clinic):
    appts, reminders = demo_clinic.tables["appointments"], demo_clinic.tables["reminders"]
    expected = appts["appointment_id"].astype(str).isin(set(reminders["appointment_id"].dropna().astype(str)))
    assert 0 < expected.sum() < len(appts)
    np.testing.assert_array_equal(_reminded(appts, reminders), expected.to_numpy())


def test_reminded_with_ids_that_are_not_numbered_and_reminders_of_unknown_appointments():
    appts = pd.DataFrame({"appointment_id": pd.array(["x-b", "y", "z-long", "w"], dtype="string[pyarrow]")})
    reminders = pd.DataFrame({"appointment_id": pd.array(["z-long", "gone", None, "x-b", "x-b"],
                                                         dtype="string[pyarrow]")})
    assert _reminded(appts, reminders).tolist() == [True, False, True, False]

