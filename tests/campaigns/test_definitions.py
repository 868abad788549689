"""Campaign definitions: shipped defaults, overrides, and templates rejected before anything is produced."""

from __future__ import annotations

import pytest

from crm_analysis.campaigns import CampaignConfigError, load_campaigns
from crm_analysis.campaigns.definitions import DEFAULT_PATH

GOOD_AD = "(광고) [{sender_name}] {name}님, 다시 찾아 주세요. 문의: {sender_contact} {opt_out}"


def test_defaults_ship_every_built_in_campaign():
    cfg = load_campaigns()
    assert {c.audience for c in cfg.campaigns} == {"vip_event", "vip_birthday", "recall", "pregnancy_week",
                                                    "infant_vaccination", "appointment_reminder"}
    for c in cfg.campaigns:
        assert set(c.templates) == {"ko", "en"}
        if c.advertising:
            assert c.holdout_share > 0
    assert cfg.campaign("VIP-EVENT").options["capacity"] == 40
    assert cfg.campaign("APPT-REMINDER").cap_exempt


def test_override_merges_by_id_and_switches_off(tmp_path):
    path = tmp_path / "clinic.yaml"
    path.write_text("sender: {name: 송파연세의원}\ncampaigns:\n  - {id: RECALL, holdout_share: 0.3}\n"
                    "  - {id: VIP-BIRTHDAY, enabled: false}\n", encoding="utf-8")
    cfg = load_campaigns(path)
    assert cfg.sender["name"] == "송파연세의원" and cfg.sender["contact"] == "02-0000-0000"
    assert cfg.campaign("RECALL").holdout_share == 0.3
    assert "VIP-BIRTHDAY" not in [c.id for c in cfg.campaigns]
    assert load_campaigns({"campaigns": [{"id": "RECALL", "priority": 3}]}).campaign("RECALL").priority == 3


def test_template_without_opt_out_line_is_rejected_with_a_clear_error():
    bad = "(광고) [{sender_name}] {name}님, 다시 찾아 주세요. 문의: {sender_contact}"
    with pytest.raises(CampaignConfigError, match=r"campaign 'RECALL', template 'ko'.*free opt-out line.*\{opt_out\}"):
        load_campaigns({"campaigns": [{"id": "RECALL", "templates": {"ko": bad, "en": GOOD_AD}}]})


@pytest.mark.parametrize("template, match", [
    ("[{sender_name}] {name}님, 다시 찾아 주세요. {sender_contact} {opt_out}", r"must start with '\(광고\)'"),
    ("(광고) {name}님, 다시 찾아 주세요. {sender_contact} {opt_out}", r"name the sender"),
    ("(광고) [{sender_name}] {name}님, 다시 찾아 주세요. {opt_out}", r"sender's contact"),
    ("(광고) [{sender_name}] {name}님 유산 후 관리 안내 {sender_contact} {opt_out}", r"never contain a diagnosis"),
    ("(광고) [{sender_name}] {nmae}님 {sender_contact} {opt_out}", r"unknown field.*nmae"),
])
def test_advertising_template_rules(template, match):
    with pytest.raises(CampaignConfigError, match=match):
        load_campaigns({"campaigns": [{"id": "RECALL", "templates": {"ko": GOOD_AD, "en": template}}]})


def test_transactional_template_may_omit_the_ad_marks_but_not_diagnoses():
    ok = "[{sender_name}] {name}님, 임신 {week}주차 안내입니다. {content}"
    load_campaigns({"campaigns": [{"id": "PREGNANCY-WEEK", "templates": {"ko": ok, "en": ok}}]})
    with pytest.raises(CampaignConfigError, match="diagnosis"):
        load_campaigns({"campaigns": [{"id": "PREGNANCY-WEEK",
                                       "templates": {"ko": ok + " 임신성 당뇨 확진", "en": ok}}]})


@pytest.mark.parametrize("change, match", [
    ({"holdout_share": 0.0}, "holds back a control group"),
    ({"holdout_share": 1.0}, r"holdout_share must be in \[0, 1\)"),
    ({"kind": "promo"}, "kind must be one of"),
    ({"channels": ["fax"]}, "channels must be distinct values"),
    ({"send": {"time": "7pm"}}, "HH:MM"),
    ({"send": {"time": "22:00", "window": ["09:00", "20:00"]}}, "must lie in the window"),
    ({"kind": "transactional", "holdout_share": 0.0}, "recall message is advertising"),
    ({"cap_exempt": True}, "only appointment reminders may be cap_exempt"),
])
def test_bad_settings_name_the_campaign_and_the_fix(change, match):
    with pytest.raises(CampaignConfigError, match=match):
        load_campaigns({"campaigns": [{"id": "RECALL", **change}]})


@pytest.mark.parametrize("rules, match", [
    ({"consent_valid_days": 1095}, r"consent_valid_days .* 1\.\.730"),
    ({"day_end": "22:00"}, "within 08:00–21:00"),
    ({"day_start": "07:00"}, "within 08:00–21:00"),
])
def test_overrides_cannot_loosen_the_legal_limits(rules, match):
    with pytest.raises(CampaignConfigError, match=match):
        load_campaigns({"rules": rules})
    # tightening is allowed
    load_campaigns({"rules": {"consent_valid_days": 365, "day_start": "09:00", "day_end": "20:00"}})


def test_unknown_section_and_missing_file():
    with pytest.raises(CampaignConfigError, match="unknown campaign config section"):
        load_campaigns({"campain": []})
    with pytest.raises(CampaignConfigError, match="does not exist"):
        load_campaigns("/nonexistent/campaigns.yaml")
    assert DEFAULT_PATH.exists()


def test_render_sample_is_render_of_the_sample_row():
    import pandas as pd

    from crm_analysis.campaigns.templates import SAMPLE_VALUES, render, render_sample

    cfg = load_campaigns()
    constants = {"sender_name": cfg.sender["name"], "sender_contact": cfg.sender["contact"],
                 "opt_out": cfg.sender["opt_out"]}
    sample = pd.DataFrame({k: [v] for k, v in SAMPLE_VALUES.items()})
    for camp in cfg.campaigns:
        for template in camp.templates.values():
            assert render_sample(template, constants) == render(template, sample, constants).iloc[0]
    with pytest.raises(CampaignConfigError, match=r"template field \{nmae\} is unknown"):
        render_sample("{nmae}님", constants)
