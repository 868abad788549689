"""Hand-built clinics: message types and cost, the patient's language, VIP seats after eligibility, and the
2-yearly consent reconfirmation notices."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_analysis.campaigns import load_campaigns, plan_campaigns
from crm_analysis.campaigns.message_types import euckr_bytes, message_costs, message_types
from crm_analysis.campaigns.reconfirmation import reconfirmation_notices
from crm_analysis.clinic import ClinicData
from tests.campaigns.test_rules_small import patients

T = pd.Timestamp
AS_OF = T("2026-10-31")


def test_bytes_are_counted_as_korean_carriers_count_them():
    text = pd.Series(["안녕", "abc", "가" * 45, "가" * 45 + "a", "똠", "😀", None])
    # Hangul 2 bytes (똠, missing from plain EUC-KR, too), ASCII 1, an emoji a 2-byte replacement, nothing 0
    assert euckr_bytes(text).tolist() == [4, 3, 90, 91, 2, 2, 0]
    kinds = pd.Series(["advertising"] * 7)
    assert message_types(text, pd.Series(["sms"] * 7), kinds).tolist() == ["sms", "sms", "sms", "lms", "sms", "sms",
                                                                            "sms"]
    channel = pd.Series(["kakao", "kakao", "email"])
    assert message_types(text[:3], channel, pd.Series(["advertising", "transactional", "transactional"])).tolist() \
        == ["friendtalk", "alimtalk", "email"]
    prices = load_campaigns().message_cost_krw
    assert message_costs(pd.Series(["sms", "lms", "alimtalk"]), prices).tolist() == [prices["sms"], prices["lms"],
                                                                                      prices["alimtalk"]]
    with pytest.raises(KeyError, match="no price for mms"):
        message_costs(pd.Series(["mms"]), prices)


def _clinic(n: int, **cols) -> ClinicData:
    p = patients(**{"sms_consent": [True] * n, "sms_consent_date": [T("2026-01-01")] * n, **cols})
    p["sex"], p["guardian_id"], p["first_visit_date"] = "F", None, T("2024-01-01")
    visits = pd.DataFrame({"visit_id": [f"V{i}" for i in range(n)], "patient_id": p["patient_id"],
                           "visit_date": T("2026-03-01")})
    return ClinicData({"patients": p, "visits": visits}, as_of=AS_OF)


def test_every_message_is_typed_and_costed_in_the_plan():
    clinic = _clinic(20)
    cand = pd.DataFrame({"patient_id": [f"P{i}" for i in range(20)], "reason": "test"})
    plan = plan_campaigns(clinic, AS_OF, config={"campaigns": [{"id": "RECALL", "holdout_share": 0.05}]},
                          candidates={"recall": cand, "vip_event": cand.iloc[:0], "vip_birthday": cand.iloc[:0]})
    recall = plan.sends[plan.sends["campaign_id"] == "RECALL"]
    assert len(recall) >= 15 and recall["message"].map(lambda m: len(m.encode("cp949"))).gt(90).all()
    assert set(recall["message_type"]) == {"lms"}  # SMS channel, over 90 bytes: an LMS, priced as one
    assert recall["cost_krw"].tolist() == [load_campaigns().message_cost_krw["lms"]] * len(recall)
    assert plan.summary().set_index("campaign_id").at["RECALL", "cost_krw"] == recall["cost_krw"].sum()


def test_messages_follow_the_patients_language_never_the_reports():
    n = 30
    language = (["en", None, "ko"] * n)[:n]
    clinic = _clinic(n, language=language)
    cand = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "reason": "test"})
    config = {"campaigns": [{"id": "RECALL", "holdout_share": 0.05}]}
    reads = {f"P{i}": lang or "ko" for i, lang in enumerate(language)}
    for report_lang in ("ko", "en"):
        plan = plan_campaigns(clinic, AS_OF, config=config, lang=report_lang,
                              candidates={"recall": cand, "vip_event": cand.iloc[:0], "vip_birthday": cand.iloc[:0]})
        sent = plan.sends.set_index("patient_id")
        assert len(sent) >= 20 and {reads[p] for p in sent.index} == {"ko", "en"}
        for pid, row in sent.iterrows():
            assert row["language"] == reads[pid]
            assert ("[Demo Clinic]" in row["message"]) == (reads[pid] == "en"), (report_lang, pid)
            assert ("[데모의원]" in row["message"]) == (reads[pid] == "ko"), (report_lang, pid)
    # a clinic whose default is English: the patients whose record names no language get English
    plan = plan_campaigns(clinic, AS_OF, config={**config, "rules": {"message_lang": "en"}},
                          candidates={"recall": cand, "vip_event": cand.iloc[:0], "vip_birthday": cand.iloc[:0]})
    got = plan.sends.set_index("patient_id")["language"]
    assert all(got[p] == ("ko" if language[int(p[1:])] == "ko" else "en") for p in got.index)


def test_vip_seats_are_filled_in_rank_order_from_those_who_may_be_invited():
    """60 ranked VIPs, the best 30 without consent: all 40 seats go to the next eligible ones in rank order."""
    n = 60
    consent = [False] * 30 + [True] * 30
    clinic = _clinic(n, sms_consent=consent)
    cand = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "reason": "vip"})
    plan = plan_campaigns(clinic, AS_OF, config={"campaigns": [{"id": "VIP-EVENT", "holdout_share": 0.1,
                                                               "capacity": 20}]},
                          candidates={"vip_event": cand, "vip_birthday": cand.iloc[:0], "recall": cand.iloc[:0]})
    assigned = plan.holdout[plan.holdout["campaign_id"] == "VIP-EVENT"]
    held = set(assigned.loc[assigned["arm"] == "holdout", "patient_id"])
    invited = plan.sends.loc[plan.sends["campaign_id"] == "VIP-EVENT", "patient_id"].tolist()
    # the holdout and the seats come from the top of the eligible, in rank order: P30, P31, ...
    assert assigned["patient_id"].tolist() == [f"P{i}" for i in range(30, 30 + 20 + len(held))]
    assert sorted(invited, key=lambda p: int(p[1:])) == [p for p in assigned["patient_id"] if p not in held]
    assert len(invited) == 20, "every seat filled: nobody without consent took one"
    dropped = plan.dropped.set_index(["campaign_id", "reason"])["n"]
    assert dropped[("VIP-EVENT", "no_consent_or_channel")] == 30
    assert dropped[("VIP-EVENT", "over_capacity")] == 30 - 20 - len(held)


def test_consent_reconfirmation_notices_for_consents_turning_two_next_month():
    cfg = load_campaigns()
    p = patients(kakao_consent=[True, True, True, True, True],
                 kakao_consent_date=[T("2024-11-14"), T("2024-12-05"), T("2024-11-20"), T("2024-11-03"),
                                     T("2024-11-25")],
                 kakao_opt_out=[False, False, True, False, False],
                 kakao_opt_out_date=[pd.NaT, pd.NaT, T("2026-01-01"), pd.NaT, pd.NaT],
                 birth_date=[T("1980-01-01")] * 4 + [T("2015-01-01")],
                 record_status=["active"] * 5)
    notices = reconfirmation_notices(p, T("2026-11-01"), T("2026-11-30"), rules=cfg.rules, sender=cfg.sender)
    # P1's consent turns two in December, P2 opted out, P4 is a child: only P0 and P3
    assert notices["patient_id"].tolist() == ["P0", "P3"]  # both sent on the period's first day
    first = notices.set_index("patient_id")
    assert first.at["P0", "lapses_on"] == T("2026-11-14") and first.at["P0", "send_at"] == T("2026-11-01 10:00")
    message = first.at["P0", "message"]
    assert "2024년 11월 14일" in message and "카카오톡" in message and cfg.sender["opt_out"] in message
    assert not message.startswith("(광고)"), "a legal notice, not advertising"
