"""The appointment-level analysis table: a hand-made clinic, then the demo clinic against its truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import MissingTableError
from crm_analysis.reminders import appointment_table

AS_OF = "2024-03-31"
T = pd.Timestamp


def tiny_clinic() -> ClinicData:
    patients = pd.DataFrame({"patient_id": ["P1", "P2"], "sex": ["F", "M"],
                             "birth_date": [T("1990-05-01"), T("1950-01-01")]})
    visits = pd.DataFrame({"visit_id": ["V1", "V2", "V3"], "patient_id": ["P1", "P1", "P2"],
                           "visit_date": [T("2024-01-02"), T("2024-02-10"), T("2024-01-05")],
                           "charge_insured": [10000.0, 20000.0, 30000.0], "charge_self_pay": [0.0, 5000.0, None]})
    appts = pd.DataFrame({
        "appointment_id": ["A1", "A2", "A3", "A4", "A5"],
        "patient_id": ["P1", "P1", "P1", "P2", "P2"],
        "booked_at": [T("2024-01-01 09:00"), T("2024-02-01 11:00"), T("2024-02-20 10:00"), T("2024-01-05 09:00"),
                      T("2024-03-01 09:00")],
        "scheduled_at": [T("2024-01-20 10:00"), T("2024-02-10 14:00"), T("2024-03-10 09:00"), T("2024-01-05 15:00"),
                         T("2024-04-10 09:00")],
        "department": ["내과", "내과", None, "안과", "안과"],
        "status": ["no_show", "attended", "cancelled", "attended", "booked"],
        "cancelled_at": [pd.NaT, pd.NaT, T("2024-03-01 08:00"), pd.NaT, pd.NaT]})
    reminders = pd.DataFrame({
        "reminder_id": ["R1", "R2", "R3", "R4", "R5"],
        "appointment_id": ["A1", "A1", "A2", "A2", "A2"],
        "channel": ["kakao", "sms", "kakao", "kakao", "sms"],
        "schedule": ["1d", "1d", "3d", "1d", "1d"],
        "sent_at": [T("2024-01-19 10:00"), T("2024-01-19 10:01"), T("2024-02-07 10:00"), T("2024-02-09 10:00"),
                    T("2024-02-09 10:01")],
        "delivered": pd.array([False, True, None, False, False], dtype="boolean")})
    return ClinicData({"patients": patients, "visits": visits, "appointments": appts, "reminders": reminders})


def test_hand_made_clinic():
    clinic = tiny_clinic()
    before = {k: v.copy() for k, v in clinic.tables.items()}
    t = appointment_table(clinic, AS_OF).set_index("appointment_id")
    assert list(t.index) == ["A4", "A1", "A2", "A3"]  # A5 is after as_of; sorted by scheduled_at
    assert t.loc["A1", "lead_days"] == 19 and t.loc["A4", "lead_days"] == 0
    assert list(t["eligible"]) == [False, True, True, True]
    # no-show among non-cancelled only; cancellation separate
    assert t.loc["A1", "no_show"] == 1 and t.loc["A2", "no_show"] == 0 and np.isnan(t.loc["A3", "no_show"])
    assert t.loc["A3", "cancelled"] == 1 and t.loc["A1", "cancelled"] == 0
    # exposure: A1's KakaoTalk failed, its SMS fallback arrived; A2: 3d delivery unknown (counts), 1d failed twice
    assert (t.loc["A1", "n_sent"], t.loc["A1", "n_delivered"], t.loc["A1", "schedule"]) == (2, 1, "1d")
    assert (t.loc["A2", "n_sent"], t.loc["A2", "n_delivered"], t.loc["A2", "schedule"]) == (3, 1, "3d")
    assert t.loc["A2", "schedule_sent"] == "3d+1d" and t.loc["A2", "rem_1d"] == 0 and t.loc["A2", "rem_3d"] == 1
    assert t.loc["A3", "schedule"] == "none" and not t.loc["A3", "sent_any"] and t.loc["A1", "reminded"]
    assert (t.loc["A2", "msgs_kakao"], t.loc["A2", "msgs_sms"]) == (2, 1)
    # history: A2 comes after P1's no-show A1 and after the visit of 2024-01-02 (not the same-day one)
    assert t.loc["A2", "prior_no_shows"] == 1 and t.loc["A1", "prior_no_shows"] == 0
    assert t.loc["A2", "prior_visits"] == 1 and t.loc["A3", "prior_visits"] == 2
    assert t.loc["A1", "age_band"] == "20-39" and t.loc["A4", "age_band"] == "60+"
    assert t.loc["A3", "department"] == "unknown" and t.loc["A1", "hour_band"] == "morning"
    assert t.loc["A1", "weekday"] == "Sat" and t.loc["A1", "month_of_year"] == "01"
    for name, df in clinic.tables.items():
        pd.testing.assert_frame_equal(df, before[name])


def test_nothing_after_as_of_is_used():
    t = appointment_table(tiny_clinic(), "2024-02-08").set_index("appointment_id")
    assert list(t.index) == ["A4", "A1"]
    t = appointment_table(tiny_clinic(), "2024-02-09").set_index("appointment_id")
    # A2 (scheduled 02-10) is not in the table yet
    assert "A2" not in t.index


def test_day_precision_export_has_no_hour():
    clinic = tiny_clinic()
    appts = clinic.tables["appointments"].assign(scheduled_at=lambda d: d["scheduled_at"].dt.normalize())
    t = appointment_table(ClinicData({**clinic.tables, "appointments": appts}), AS_OF)
    assert t["hour"].isna().all() and set(t["hour_band"]) == {"unknown"}


def _history_clinic(appointments: list[tuple]) -> ClinicData:
    """A clinic of (appointment_id, patient_id, booked_at, scheduled_at, status), each with a delivered SMS."""
    appts = pd.DataFrame(appointments, columns=["appointment_id", "patient_id", "booked_at", "scheduled_at", "status"])
    appts = appts.assign(booked_at=pd.to_datetime(appts["booked_at"]), scheduled_at=pd.to_datetime(appts["scheduled_at"]),
                         department="내과", cancelled_at=pd.NaT)
    patients = pd.DataFrame({"patient_id": sorted(set(appts["patient_id"]))})
    reminders = pd.DataFrame({"reminder_id": "R" + appts["appointment_id"], "appointment_id": appts["appointment_id"],
                              "channel": "sms", "schedule": "unknown", "sent_at": pd.NaT, "delivered": True})
    visits = pd.DataFrame({"visit_id": ["V1"], "patient_id": ["P1"], "visit_date": [T("2024-01-02")]})
    return ClinicData({"patients": patients, "visits": visits, "appointments": appts, "reminders": reminders})


def test_prior_no_shows_tied_days_without_times_count_only_what_was_known_at_booking():
    """Days without times (as in the Kaggle export): appointments of one day are ordered by id, so a sibling's no-show
    that day used to count as "prior" although the same reminder affected it. Only no-shows known when the reminders
    were planned (at booking; a day's outcome is known when the day is over) count."""
    clinic = _history_clinic([
        ("A10", "P1", "2024-03-01 09:00", "2024-03-05", "no_show"),
        ("A11", "P1", "2024-03-01 09:05", "2024-03-05", "attended"),  # same day, id after A10: not prior
        ("A12", "P1", "2024-03-06 10:00", "2024-03-08", "attended"),  # booked after A10's day: it counts
        ("A13", "P1", "2024-03-04 10:00", "2024-03-08", "attended"),  # booked before A10 happened: it does not
        ("B1", "P2", "2024-02-20 09:00", "2024-03-05", "no_show"),
        ("B2", "P2", "2024-02-20 09:00", "2024-03-05", "no_show"),   # two tied no-shows: neither is the other's prior
        ("B3", "P2", "2024-03-05 18:00", "2024-03-07", "attended"),  # booked the same evening: the day is not over
    ])
    t = appointment_table(clinic, AS_OF).set_index("appointment_id")
    prior = t["prior_no_shows"].to_dict()
    print(f"\nprior no-shows: {prior}")
    assert t["hour"].isna().all()  # the export has days only
    assert prior == {"A10": 0, "A11": 0, "A12": 1, "A13": 0, "B1": 0, "B2": 0, "B3": 0}


def test_prior_no_shows_with_times_count_outcomes_before_the_booking():
    """With times, a no-show earlier the same day counts only if the appointment was booked after it."""
    clinic = _history_clinic([
        ("C1", "P3", "2024-03-01 09:00", "2024-03-05 10:00", "no_show"),
        ("C2", "P3", "2024-03-01 09:00", "2024-03-05 15:00", "attended"),  # its reminders were planned before C1
        ("C3", "P3", "2024-03-05 12:00", "2024-03-05 16:00", "attended"),  # booked after the missed morning slot
        ("C4", "P3", "2024-03-05 10:00", "2024-03-05 17:00", "attended"),  # booked at C1's very minute: not known yet
    ])
    prior = appointment_table(clinic, AS_OF).set_index("appointment_id")["prior_no_shows"].to_dict()
    print(f"\nprior no-shows: {prior}")
    assert prior == {"C1": 0, "C2": 0, "C3": 1, "C4": 0}


def test_missing_appointments_table_is_explained():
    clinic = tiny_clinic()
    with pytest.raises(MissingTableError, match="reminder evaluation needs the 'appointments' table"):
        appointment_table(ClinicData({"patients": clinic.patients, "visits": clinic.visits}), AS_OF)


def test_demo_counts_match_truth(rem_table, rem_truth, demo_synth):
    realised = demo_synth.truth["appointments"]["realised"]["status_counts"]
    assert int(rem_table["analysed"].sum()) == realised["attended"] + realised["no_show"]
    assert int((rem_table["no_show"] == 1).sum()) == realised["no_show"]
    pilot = rem_table["analysed"] & rem_table["eligible"] & (rem_table["month"].astype(str) == "2024-06")
    n_arm = int((pilot & rem_table["sent_any"]).sum())
    print(f"pilot arm from data {n_arm} vs truth {rem_truth['pilot']['n_reminder_arm']}")
    assert int(pilot.sum()) == rem_truth["pilot"]["n"]
    # assigned but unreachable patients have no reminder row: at most a few
    assert 0 <= rem_truth["pilot"]["n_reminder_arm"] - n_arm <= 3
    # every delivered schedule of the generator appears with its label
    assert {"1d", "3d+1d+2h", "none"} <= set(rem_table["schedule"])


def test_arrow_text_and_categories_give_the_same_table():
    """Loaded exports hold Arrow text ids and categories; the table must not depend on it (codes, not texts)."""
    clinic = tiny_clinic()
    tables = {k: v.copy() for k, v in clinic.tables.items()}
    # a duplicated patient row (the first counts), a reminder of an unknown appointment, an unknown step
    tables["patients"] = pd.concat([tables["patients"], tables["patients"].iloc[[0]].assign(sex="M")],
                                   ignore_index=True)
    extra = tables["reminders"].iloc[[1, 1]].assign(reminder_id=["R6", "R7"], appointment_id=["A9", "A4"],
                                                     schedule=["1d", None])
    tables["reminders"] = pd.concat([tables["reminders"], extra], ignore_index=True)
    plain = appointment_table(ClinicData(tables), AS_OF)
    loaded = {k: v.copy() for k, v in tables.items()}
    for name, df in loaded.items():
        for col in df.columns:
            if col.endswith("_id"):
                df[col] = df[col].astype("string[pyarrow]")
            elif col in ("department", "status", "channel", "schedule", "sex"):
                df[col] = df[col].astype("category")
    arrow = appointment_table(ClinicData(loaded), AS_OF)
    pd.testing.assert_frame_equal(arrow, plain, check_dtype=False)
    t = plain.set_index("appointment_id")
    assert t.loc["A4", "schedule"] == "unknown" and t.loc["A4", "rem_unknown"] == 1 and t.loc["A4", "msgs_sms"] == 1
    assert t.loc["A1", "sex"] == "F" and t.loc["A1", "n_sent"] == 2
    assert [c for c in plain.columns if c.startswith(("rem_", "msgs_"))] == \
        ["rem_3d", "rem_1d", "rem_unknown", "msgs_kakao", "msgs_sms"]


def test_text_columns_are_lexical_categoricals_of_the_same_texts(rem_table):
    """The low-cardinality text columns are ``category`` (about a byte a row, not an object pointer and a
    Python string each), categories the values present sorted lexically, values the texts they always were."""
    from crm_analysis.reminders.analysis_table import STEP_ORDER, TEXT_COLUMNS
    from crm_analysis.reminders.rules import load_rules

    t = rem_table
    for c in TEXT_COLUMNS:
        assert isinstance(t[c].dtype, pd.CategoricalDtype), c
        cats = list(t[c].cat.categories)
        assert cats == sorted(cats) and cats == sorted(set(t[c].astype(str))), c  # only values present
        assert all(isinstance(x, str) for x in cats) and not t[c].isna().any(), c
    # the same texts as computed from the other columns
    text = {c: t[c].astype(str).to_numpy() for c in TEXT_COLUMNS}
    assert (text["month_of_year"] == t["scheduled_at"].dt.strftime("%m").to_numpy()).all()
    hour = t["hour"].astype(float)
    expected = np.where(hour.isna(), "unknown", np.where(hour < 12, "morning",
                                                         np.where(hour < 15, "early_afternoon", "late_afternoon")))
    assert (text["hour_band"] == expected).all()
    edges = [*load_rules(None)["lead_bands"], np.inf]
    labels = [f"<{edges[0]}"] + [f"{lo}-{hi - 1}" if np.isfinite(hi) else f"{lo}+"
                                 for lo, hi in zip(edges[:-1], edges[1:])]
    expected = pd.cut(t["lead_days"], [-np.inf, *edges], right=False, labels=labels).astype(str).to_numpy()
    assert (text["lead_band"] == expected).all()
    expected = pd.cut(t["prior_visits"], [-1, 0, 2, 9, np.inf], labels=["0", "1-2", "3-9", "10+"]).astype(str)
    assert (text["prior_visits_band"] == expected.to_numpy()).all()
    steps = [s for s in STEP_ORDER if f"rem_{s}" in t]
    received = t[[f"rem_{s}" for s in steps]].to_numpy() == 1
    expected = np.array(["+".join(s for s, on in zip(steps, row) if on) or "none" for row in received], dtype=object)
    assert (text["schedule"] == expected).all()
    assert (np.where(t["no_show"] == 1, "no_show", "x") == np.where(text["status"] == "no_show", "no_show", "x")).all()
    assert set(text["status"][t["analysed"].to_numpy()]) <= {"attended", "no_show"}


def test_table_is_lean_in_memory(rem_table):
    """About 200 bytes a row on the demo clinic (it was about 800 with object text columns)."""
    per_row = rem_table.memory_usage(deep=True).sum() / len(rem_table)
    assert per_row < 300, per_row


def test_text_columns_of_the_hand_made_clinic():
    t = appointment_table(tiny_clinic(), AS_OF).set_index("appointment_id")
    assert t["department"].astype(str).to_dict() == {"A4": "안과", "A1": "내과", "A2": "내과", "A3": "unknown"}
    assert list(t["department"].cat.categories) == ["unknown", "내과", "안과"]
    assert t["status"].astype(str).to_dict() == {"A4": "attended", "A1": "no_show", "A2": "attended",
                                                 "A3": "cancelled"}
    assert list(t["schedule_sent"].cat.categories) == ["1d", "3d+1d", "none"]
    assert t["sex"].astype(str).tolist() == ["M", "F", "F", "F"]
    # a clinic without reminders or patients: constant texts, still categorical
    bare = appointment_table(ClinicData({"appointments": tiny_clinic().tables["appointments"]}), AS_OF)
    for c in ("schedule", "schedule_sent", "age_band", "sex"):
        assert isinstance(bare[c].dtype, pd.CategoricalDtype) and list(bare[c].cat.categories) == [
            "none" if c.startswith("schedule") else "unknown"], c
