"""Replies: the generator ties them to outcomes; the month's summary shows them, small counts hidden."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.reminders.replies import REPLY_STATES, appointment_replies, reply_summary


def test_generated_replies_follow_the_outcomes(clinic, demo_synth):
    r, a = clinic.tables["reminders"], clinic.tables["appointments"]
    assert set(r["reply"].cat.categories) == {"confirmed", "cancelled", "none"}
    status = a.set_index("appointment_id")["status"].astype(object).reindex(r["appointment_id"]).to_numpy()
    cancel = (r["reply"] == "cancelled").to_numpy()
    assert cancel.any() and (status[cancel] == "cancelled").all()  # a 'cancelled' reply: a cancelled appointment
    assert not (r["reply"].ne("none") & ~r["delivered"].astype(bool)).any()  # only delivered messages answered
    assert "replies" in demo_synth.truth["reminders"]


def test_confirmed_appointments_are_no_shows_less_often(clinic):
    s = reply_summary(clinic, "2026-06")
    t = s.table.set_index("reply")
    assert list(s.table["reply"]) == list(REPLY_STATES)
    assert t.loc["confirmed", "no_show_rate"] < t.loc["none", "no_show_rate"]
    assert 0.3 < s.confirmation_rate < 0.8


def test_small_counts_are_hidden():
    from crm_analysis.clinic import ClinicData

    a = pd.DataFrame({"appointment_id": [f"A{i}" for i in range(30)], "patient_id": "P1",
                      "booked_at": pd.Timestamp("2026-05-01"), "scheduled_at": pd.Timestamp("2026-06-10 10:00"),
                      "status": ["no_show"] * 3 + ["attended"] * 27, "cancelled_at": pd.NaT})
    r = pd.DataFrame({"reminder_id": [f"R{i}" for i in range(30)], "appointment_id": a["appointment_id"],
                      "sent_at": pd.Timestamp("2026-06-09 10:00"), "delivered": True,
                      "reply": ["confirmed"] * 2 + ["none"] * 28})
    clinic = ClinicData({"patients": pd.DataFrame({"patient_id": ["P1"]}), "visits": pd.DataFrame(
        {"visit_id": ["V"], "patient_id": ["P1"], "visit_date": [pd.Timestamp("2026-06-10")]}),
        "appointments": a, "reminders": r}, as_of=pd.Timestamp("2026-06-30"), source="t")
    s = reply_summary(clinic, "2026-06")
    assert s.confirmed is None and s.confirmation_rate is None  # 2 confirmed: hidden
    assert pd.isna(s.table.set_index("reply").loc["confirmed", "appointments"])
    assert appointment_replies(a, r).value_counts().to_dict() == {"none": 28, "confirmed": 2}


def test_without_replies_the_summary_says_why(clinic):
    from dataclasses import replace

    bare = replace(clinic, tables={**clinic.tables, "reminders": clinic.tables["reminders"].drop(columns="reply")})
    with pytest.raises(InsufficientDataError, match="records no replies"):
        reply_summary(bare, "2026-06")
