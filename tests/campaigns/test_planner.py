"""The demo clinic's plan for 2026-11: every message passes the rules; audiences and send times are right."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_analysis.campaigns import check_sends, load_campaigns, plan_campaigns
from crm_analysis.campaigns.compliance import AD_PREFIX
from tests.campaigns.conftest import AS_OF

T = pd.Timestamp


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_every_message_rendered_for_the_demo_clinic_passes_the_rules(lang, demo_plan, demo_plan_en, demo_data):
    plan = demo_plan if lang == "ko" else demo_plan_en
    counts = plan.sends.groupby("campaign_id").size()
    print(f"\n[{lang}] messages per campaign: {counts.to_dict()}")
    assert set(counts.index) == {c.id for c in load_campaigns().campaigns}, "every campaign produces messages"
    violations = check_sends(plan.sends, demo_data.tables["patients"], load_campaigns(), plan.holdout)
    assert violations.empty, violations.groupby("rule").size().to_dict()
    ads = plan.sends[plan.sends["kind"] == "advertising"]
    assert ads["message"].str.startswith(AD_PREFIX).all()
    assert ads["message"].str.contains("무료수신거부 080-000-0000", regex=False).all()
    assert not plan.sends["message"].str.contains("{", regex=False).any(), "unfilled template field"
    assert plan.sends["send_at"].between(T("2026-11-01"), T("2026-12-01")).all()


def test_holdout_is_written_but_never_sent(demo_plan):
    held = demo_plan.holdout[demo_plan.holdout["arm"] == "holdout"]
    assert len(held) > 0 and {"VIP-EVENT", "RECALL"} <= set(held["campaign_id"]) <= {"VIP-EVENT", "VIP-BIRTHDAY",
                                                                                     "RECALL"}
    key = demo_plan.sends["run_id"] + "|" + demo_plan.sends["patient_id"]
    assert not key.isin(held["run_id"] + "|" + held["patient_id"]).any()
    assert (demo_plan.holdout["run_id"].str.endswith("-2026-11")).all()


def test_vip_event_capacity_and_sizes(demo_plan):
    vip = demo_plan.sends[demo_plan.sends["campaign_id"] == "VIP-EVENT"]
    assigned = demo_plan.holdout[demo_plan.holdout["campaign_id"] == "VIP-EVENT"]
    seats = int((assigned["arm"] == "sent").sum())
    over = demo_plan.dropped.query("campaign_id == 'VIP-EVENT' and reason == 'over_capacity'")["n"].sum()
    print(f"VIP event: {seats} invitations sent, {over} eligible VIPs over capacity")
    # seats are filled from those who may be invited: nobody waits over capacity while a seat is free, and a
    # seat is lost only to a rule across campaigns (a holdout elsewhere, one message a day, the caps)
    across = demo_plan.dropped.query("campaign_id == 'VIP-EVENT' and reason in ['held_out_of_another_campaign', "
                                     "'lower_priority_same_day', 'campaign_cap', 'monthly_cap']")["n"].sum()
    assert len(vip) == seats - across and (seats == 40 or over == 0) and seats <= 40
    # the holdout is drawn among those who could be invited too: none of them lacks a channel
    assert "no_consent_or_channel" not in set(demo_plan.dropped.query("campaign_id == 'VIP-EVENT'")["reason"]) \
        or seats + int((assigned["arm"] == "holdout").sum()) == len(assigned)
    assert (vip["send_at"] == T("2026-11-10 10:00")).all()
    assert vip["message"].str.contains("11월 21일").all()  # third Saturday of November 2026


def test_birthdays_fall_on_the_birthday(demo_plan, demo_data):
    b = demo_plan.sends[demo_plan.sends["campaign_id"] == "VIP-BIRTHDAY"]
    assert len(b) > 0
    birth = demo_data.tables["patients"].set_index("patient_id")["birth_date"].reindex(b["patient_id"])
    assert (birth.dt.month.to_numpy() == 11).all()
    assert (birth.dt.day.to_numpy() == b["send_at"].dt.day.to_numpy()).all()


def test_pregnancy_messages_name_the_week_and_stop_at_outcome(demo_plan, demo_data):
    p = demo_plan.sends[demo_plan.sends["campaign_id"] == "PREGNANCY-WEEK"]
    preg = demo_data.tables["pregnancies"]
    ongoing = set(preg.loc[preg["outcome"].isna(), "patient_id"])
    assert len(p) > 0 and set(p["patient_id"]) <= ongoing
    assert p["message"].str.contains(r"임신 \d+주차").all()
    for word in load_campaigns().rules["forbidden_words"]:
        assert not p["message"].str.contains(word, regex=False).any()


def test_vaccination_goes_to_the_guardian(demo_plan, demo_data):
    v = demo_plan.sends[demo_plan.sends["campaign_id"] == "VACCINATION"]
    guardians = demo_data.tables["patients"].set_index("patient_id")["guardian_id"]
    assert len(v) > 0
    assert (guardians.reindex(v["patient_id"]).to_numpy() == v["recipient_id"].to_numpy()).all()


def test_appointment_reminder_send_times(demo_plan, demo_data):
    r = demo_plan.sends[demo_plan.sends["campaign_id"] == "APPT-REMINDER"]
    appts = demo_data.tables["appointments"]
    booked = appts[(appts["status"] == "booked") & (appts["scheduled_at"] >= T("2026-11-01"))]
    # an appointment on 2026-11-05 with the full schedule: 3d and 1d at 10:00, 2h two hours before (not before 08:00)
    one = booked[(booked["scheduled_at"].dt.normalize() == T("2026-11-05"))
                 & (booked["booked_at"] < T("2026-11-01"))].iloc[0]
    mine = r[r["patient_id"] == one["patient_id"]]
    expected = {T("2026-11-02 10:00"), T("2026-11-04 10:00"),
                max(one["scheduled_at"] - pd.Timedelta(hours=2), T("2026-11-05 08:00"))}
    assert expected <= set(mine["send_at"])
    assert set(r["reason"]) == {"appointment_3d", "appointment_1d", "appointment_2h"}


def test_reminder_schedule_is_configurable(demo_data):
    cfg = {"campaigns": [{"id": "APPT-REMINDER", "steps": [{"label": "1d", "days_before": 1, "time": "18:00"}]},
                         *[{"id": i, "enabled": False} for i in ("VIP-EVENT", "VIP-BIRTHDAY", "RECALL",
                                                                  "PREGNANCY-WEEK", "VACCINATION")]]}
    plan = plan_campaigns(demo_data, AS_OF, config=cfg, candidates={})
    assert set(plan.sends["campaign_id"]) == {"APPT-REMINDER"}
    assert (plan.sends["send_at"].dt.strftime("%H:%M") == "18:00").all()


def test_plan_does_not_modify_the_clinic_and_needs_a_later_period(demo_data):
    before = demo_data.tables["patients"].copy()
    with pytest.raises(ValueError, match="must start after as_of"):
        plan_campaigns(demo_data, AS_OF, start="2026-10-15")
    pd.testing.assert_frame_equal(demo_data.tables["patients"], before)


def test_summary_is_aggregate(demo_plan):
    s = demo_plan.summary()
    assert {"campaign_id", "messages"} <= set(s.columns)
    assert "name" not in s.columns and "patient_id" not in s.columns
    assert "<table" in demo_plan._repr_html_()


def test_monthly_cap_counts_messages_already_sent_that_month(demo_data):
    from crm_analysis.campaigns.audiences import rule_recall_candidates, rule_vip_candidates

    as_of = "2026-08-11"  # the day after RECALL-2026-08 went out
    clinic = demo_data.snapshot(as_of)
    vips = rule_vip_candidates(clinic, as_of)
    cand = {"vip_event": vips, "vip_birthday": vips, "recall": rule_recall_candidates(clinic, as_of, min_days=60)}
    plan = plan_campaigns(clinic, as_of, config={"rules": {"monthly_cap": 1}}, candidates=cand)
    c = clinic.tables["contacts"]
    already = set(c.loc[(c["arm"] == "sent") & (c["sent_at"] >= T("2026-08-01")), "patient_id"])
    capped = plan.sends[~plan.sends["cap_exempt"].astype(bool)]
    assert len(already) > 50 and len(capped) > 0
    assert not set(capped["recipient_id"]) & already
    assert (plan.dropped["reason"] == "monthly_cap").any()


def test_vip_and_recall_lists_made_once_per_plan(demo_data, demo_candidates, monkeypatch):
    """The VIP event and birthday campaigns share one VIP list; the plan equals one with the lists given."""
    from crm_analysis.campaigns import audiences

    made = []

    def fake_source(clinic, as_of, source):
        made.append(source)
        return demo_candidates["recall" if source[0] == "recall" else "vip_event"]

    monkeypatch.setattr("crm_analysis.campaigns.planner.source_candidates", fake_source)
    plan = plan_campaigns(demo_data, AS_OF)
    assert sorted(made) == [("recall", 180, 730), ("vip", 10)]
    given = plan_campaigns(demo_data, AS_OF, candidates=demo_candidates)
    pd.testing.assert_frame_equal(plan.sends, given.sends)
    assert audiences.candidate_source(load_campaigns().campaign("APPT-REMINDER")) is None
