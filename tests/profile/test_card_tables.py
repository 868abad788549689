"""The card index's tables: the suggested action's precedence, the upcoming appointments, inputs untouched."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_analysis.profile.card_tables import suggested_actions, upcoming_appointments, with_appointments

IDS = ["P1", "P2", "P3", "P4", "P5", "P6", "P7"]


@pytest.fixture
def parts():
    cards = pd.DataFrame({
        "patient_id": IDS,
        "recall_candidate": [1, 1, 0, 0, 0, 0, 0],
        "elapsed_days": [142, 200, None, None, None, None, 30],
        "vip": [1, 0, 1, 0, 1, 0, 0],
        "pregnancy_week": [None, None, None, 12, 20, None, None],
        "segment_action_ko": ["세그먼트"] * 7, "segment_action_en": ["segment"] * 7,
    })
    at = pd.Timestamp("2026-11-03 10:30")
    appointments = pd.DataFrame({
        "patient_id": ["P1", "P2", "P6"], "appointment_id": ["A1", "A2", "A6"], "scheduled_at": [at, at, at],
        "department_ko": ["내과"] * 3, "department_en": ["Internal medicine"] * 3,
        "noshow_risk": [0.4, 0.5, 0.1], "risk_band": ["high", "high", "low"],
        "risk_reason_ko": ["이전 노쇼 3회"] * 3, "risk_reason_en": ["3 earlier no-shows"] * 3,
        "reply": ["unconfirmed", "confirmed", "unconfirmed"]})
    children = pd.DataFrame({"guardian_id": ["P3"], "patient_id": ["C3"], "name": ["아이"], "birth_date": [None],
                             "due_from": [None], "due_to": [None], "vaccines_ko": ["수두 1차"],
                             "vaccines_en": ["Varicella dose 1"]})
    messages = pd.DataFrame({"patient_id": ["P3"], "list_name": ["예방접종안내_2026-11"], "kind": ["infant_vaccination"],
                             "planned_at": ["2026-11-05 10:00"], "channel": ["문자"], "text": ["..."],
                             "child_id": ["C3"]})
    return cards, appointments, children, messages


def test_the_first_action_that_applies_is_suggested(parts):
    cards, appointments, children, messages = parts
    out = suggested_actions(cards, appointments, children, messages).set_index(cards["patient_id"])
    assert out["action_kind"].to_dict() == {
        "P1": "confirm",      # a risky unconfirmed appointment beats the recall
        "P2": "recall",       # confirmed: no call needed, so the recall
        "P3": "vaccination",  # a child's vaccination message this month beats VIP
        "P4": "pregnancy", "P5": "pregnancy",  # pregnancy beats VIP
        "P6": "appointment",  # a low-risk appointment
        "P7": "segment"}      # nothing else: the segment's suggestion
    assert out.loc["P1", "action_ko"] == "예약 확인 전화: 11월 3일 10:30 예약, 노쇼 위험 높음 (이전 노쇼 3회)"
    assert out.loc["P1", "action_en"] == "Confirm the appointment on 3 Nov 10:30: high no-show risk (3 earlier no-shows)"
    assert out.loc["P2", "action_ko"] == "재내원 안내 대상: 마지막 내원 200일 전, 예약 권유"
    assert out.loc["P3", "action_ko"] == "자녀 예방접종 안내: 아이 수두 1차, 접종 예약 권유"
    assert out.loc["P4", "action_ko"] == "임신 12주: 다음 검진 일정 안내"
    assert out.loc["P6", "action_en"] == "Appointment: 3 Nov 10:30 Internal medicine"
    assert out.loc["P7", "action_ko"] == "세그먼트"


def test_with_appointments_sets_the_risk_flag_and_leaves_its_input_alone(parts):
    cards, appointments, children, messages = parts
    tables = {"cards": cards, "children": children, "messages": messages}
    before = cards.copy()
    out = with_appointments(tables, appointments)
    pd.testing.assert_frame_equal(cards, before)
    assert out["cards"].set_index("patient_id")["high_noshow_risk"].to_dict() == {
        "P1": 1, "P2": 1, "P3": 0, "P4": 0, "P5": 0, "P6": 0, "P7": 0}
    assert out["appointments"] is appointments


def test_upcoming_appointments_are_those_still_booked_from_the_moment():
    moment = pd.Timestamp("2026-11-01")
    appts = pd.DataFrame({
        "appointment_id": ["A1", "A2", "A3", "A4"], "patient_id": ["P1", "P1", "P2", "P3"],
        "scheduled_at": pd.to_datetime(["2026-11-02 09:00", "2026-10-30 09:00", "2026-11-05 14:00",
                                        "2026-11-06 10:00"]),
        "status": ["booked", "booked", "cancelled", "booked"], "department": ["내과"] * 4})
    scores = pd.DataFrame({"no_show_risk": [0.3], "risk_decile": [10], "risk_reason": ["이전 노쇼 2회"],
                           "risk_reason_en": ["2 earlier no-shows"]}, index=pd.Index(["A1"], name="appointment_id"))
    out = upcoming_appointments(appts, moment, scores, pd.Series({"A1": "confirmed", "A4": "unconfirmed"}))
    assert out["appointment_id"].tolist() == ["A1", "A4"]
    assert out["risk_band"].tolist() == ["high", None] and out["reply"].tolist() == ["confirmed", "unconfirmed"]
    assert out.loc[0, "risk_reason_en"] == "2 earlier no-shows" and pd.isna(out.loc[1, "noshow_risk"])
