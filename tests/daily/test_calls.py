"""Tomorrow's confirmation call list: who is on it, and in what order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.daily import CALL_COLUMNS, confirmation_calls
from crm_analysis.daily.calls import reply_state

DAY = "2026-10-20"


@pytest.fixture(scope="module")
def calls(clinic):
    return confirmation_calls(clinic, DAY, scores=False)


def test_the_list_holds_every_live_appointment_of_the_next_day(clinic, calls):
    moment = pd.Timestamp(DAY)
    a = clinic.tables["appointments"]
    cancelled = (a["cancelled_at"] < moment).fillna(False) | (
        a["status"].astype(object).isin(["cancelled", "rescheduled"]) & a["cancelled_at"].isna())
    tomorrow = (a["scheduled_at"].dt.normalize() == moment + pd.Timedelta(days=1)) & (a["booked_at"] < moment)
    p = clinic.tables["patients"].set_index("patient_id")["record_status"].astype(object)
    gone = p.reindex(a["patient_id"]).isin(["deceased", "moved"]).to_numpy()
    want = set(a.loc[(tomorrow & ~cancelled).to_numpy() & ~gone, "appointment_id"].astype(str))
    assert set(calls["appointment_id"]) == want and len(calls) == len(want) > 0
    assert list(calls.columns) == CALL_COLUMNS
    assert calls["rank"].tolist() == list(range(1, len(calls) + 1))


def test_without_a_model_the_order_is_by_earlier_no_shows_with_the_reason_said(calls):
    assert (calls["risk_source"] == "prior_no_shows").all() and calls["no_show_risk"].isna().all()
    state = calls["confirmation"].map({"cancel_requested": 0, "unconfirmed": 1, "confirmed": 2}).to_numpy()
    assert (np.diff(state) >= 0).all()  # cancel requests, then unconfirmed, then confirmed
    for value in np.unique(state):
        prior = calls.loc[state == value, "prior_no_shows"].to_numpy()
        assert (np.diff(prior) <= 0).all()
    assert calls["risk_reason"].str.contains("노쇼 예측 모형 없음").all()


def test_replies_before_the_moment_set_the_confirmation():
    reminders = pd.DataFrame({"appointment_id": ["A1", "A2", "A2", "A3", "A4"],
                              "sent_at": pd.to_datetime(["2026-10-18 10:00", "2026-10-18 10:00", "2026-10-19 10:00",
                                                         "2026-10-20 08:00", "2026-10-18 10:00"]),
                              "reply": ["confirmed", "confirmed", "cancelled", "confirmed", "none"]})
    ids = pd.Series(["A1", "A2", "A3", "A4", "A5"])
    got = reply_state(reminders, ids, pd.Timestamp("2026-10-20")).tolist()
    # A3 replied after the moment: not known yet
    assert got == ["confirmed", "cancel_requested", "unconfirmed", "unconfirmed", "unconfirmed"]
    assert reply_state(reminders.drop(columns="reply"), ids, pd.Timestamp("2026-10-20")).eq("unconfirmed").all()


def test_model_scores_rank_unconfirmed_high_risk_first(clinic, calls):
    scores = pd.DataFrame({"appointment_id": calls["appointment_id"],
                           "no_show_risk": np.linspace(0.05, 0.5, len(calls)), "risk_reason": "테스트 사유"})
    ranked = confirmation_calls(clinic, DAY, scores=scores)
    assert (ranked["risk_source"] == "noshow_model").all()
    state = ranked["confirmation"].map({"cancel_requested": 0, "unconfirmed": 1, "confirmed": 2}).to_numpy()
    assert (np.diff(state) >= 0).all()
    for value in np.unique(state):
        assert (np.diff(ranked.loc[state == value, "no_show_risk"].to_numpy()) <= 0).all()
