"""Hand-built frames: compliance rules, holdout hashing and suppression reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.campaigns import load_campaigns
from crm_analysis.campaigns.compliance import check_sends
from crm_analysis.consent import valid_consent
from crm_analysis.campaigns.holdout import assign_holdout, holdout_uniform
from crm_analysis.campaigns.suppression import suppression_list

T = pd.Timestamp
CFG = load_campaigns()
AD_TEXT = "(광고) [데모의원] 홍길동님 문의: 02-0000-0000 무료수신거부 080-000-0000"


def patients(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"patient_id": [f"P{i}" for i in range(n)], "name": ["홍길동"] * n, "birth_date": [T("1980-01-01")] * n,
            "phone": ["010-0000-0000"] * n, "email": [None] * n, "record_status": ["active"] * n,
            "night_ad_consent": [False] * n, "night_ad_consent_date": [pd.NaT] * n}
    for ch in ("kakao", "sms", "email"):
        base |= {f"{ch}_consent": [False] * n, f"{ch}_consent_date": [pd.NaT] * n,
                 f"{ch}_opt_out": [False] * n, f"{ch}_opt_out_date": [pd.NaT] * n}
    base |= cols
    return pd.DataFrame(base)


def sends(pids, *, kind="advertising", channel="sms", at="2026-11-12 10:30", message=AD_TEXT, campaign="RECALL",
          cap_exempt=False, family=False, max_per_month=1, contact=None) -> pd.DataFrame:
    n = len(pids)
    at = [T(a) for a in at] if isinstance(at, list) else [T(at)] * n
    return pd.DataFrame({"campaign_id": campaign, "run_id": f"{campaign}-2026-11", "kind": kind, "patient_id": pids,
                         "recipient_id": pids, "channel": channel, "contact": contact or [f"c{p}" for p in pids],
                         "send_at": at, "message": message, "cap_exempt": cap_exempt, "family": family,
                         "max_per_month": max_per_month})


def rules_broken(s, p, holdout=None) -> set:
    return set(check_sends(s, p, CFG, holdout)["rule"])


def test_consent_must_be_under_two_years_old_or_reconfirmed():
    p = patients(sms_consent=[True, True, True, None], sms_consent_date=[T("2024-11-13"), T("2024-11-12"),
                                                                          pd.NaT, T("2026-01-01")])
    at = pd.Series([T("2026-11-12 10:30")] * 4)
    # 729 days old: valid; 730 days: expired; undated: not valid; missing flag: no consent
    assert valid_consent(p, "sms", at).tolist() == [True, False, False, False]
    assert rules_broken(sends(["P0"]), p) == set()
    assert rules_broken(sends(["P1"]), p) == {"ad_without_valid_consent"}


def test_opt_out_blocks_every_message_kind():
    p = patients(sms_consent=[True], sms_consent_date=[T("2026-01-01")], sms_opt_out=[True],
                 sms_opt_out_date=[T("2026-05-01")])
    assert "opted_out_channel" in rules_broken(sends(["P0"]), p)
    assert rules_broken(sends(["P0"], kind="transactional", message="[데모의원] 예약 안내"), p) == {"opted_out_channel"}
    later = patients(sms_opt_out=[True], sms_opt_out_date=[T("2026-12-01")])
    assert rules_broken(sends(["P0"], kind="transactional", message="[데모의원] 예약 안내"), later) == set()


def test_night_advertising_needs_night_consent():
    p = patients(sms_consent=[True, True], sms_consent_date=[T("2026-01-01")] * 2,
                 night_ad_consent=[False, True], night_ad_consent_date=[pd.NaT, T("2026-01-01")])
    for at, night in [("2026-11-12 21:00", True), ("2026-11-12 07:59", True), ("2026-11-12 08:00", False),
                      ("2026-11-12 20:59", False)]:
        assert ("ad_at_night" in rules_broken(sends(["P0"], at=at), p)) is night
        assert rules_broken(sends(["P1"], at=at), p) == set()
    # transactional messages are not advertising
    assert rules_broken(sends(["P0"], kind="transactional", at="2026-11-12 07:00", message="[데모의원] 안내"), p) == set()


def test_text_rules_on_rendered_messages():
    p = patients(sms_consent=[True], sms_consent_date=[T("2026-01-01")])
    assert rules_broken(sends(["P0"], message=AD_TEXT.replace("(광고) ", "")), p) == {"no_ad_prefix"}
    assert rules_broken(sends(["P0"], message=AD_TEXT.replace("무료수신거부 080-000-0000", "")), p) == {"no_opt_out_line"}
    assert rules_broken(sends(["P0"], kind="transactional", message="[데모의원] 유산 후 안내"), p) == {"diagnosis_word"}


def test_monthly_cap_campaign_cap_household_and_holdout():
    p = patients(sms_consent=[True, True], sms_consent_date=[T("2026-01-01")] * 2)
    days = [f"2026-11-{d:02d} 10:00" for d in range(1, 8)]
    many = pd.concat([sends(["P0"], campaign=f"C{i}", at=d) for i, d in enumerate(days)], ignore_index=True)
    assert rules_broken(many.iloc[:6], p) == set()
    assert rules_broken(many, p) == {"monthly_cap"}  # 7 > monthly_cap 6
    reminders = sends(["P0"] * 7, kind="transactional", message="[데모의원] 예약", at=days, cap_exempt=True, max_per_month=100,
                      campaign="APPT-REMINDER")
    assert rules_broken(reminders, p) == set()
    twice = sends(["P0", "P0"], at=["2026-11-01 10:00", "2026-11-20 10:00"])
    assert rules_broken(twice, p) == {"campaign_cap"}
    family = sends(["P0", "P1"], kind="transactional", message="[데모의원] 접종 안내", family=True, contact=["010", "010"],
                   campaign="VACCINATION")
    assert rules_broken(family, p) == {"household_duplicate"}
    held = pd.DataFrame({"run_id": ["RECALL-2026-11"], "patient_id": ["P1"], "arm": ["holdout"]})
    assert rules_broken(sends(["P0", "P1"]), p, held) == {"holdout_in_send_list"}


def test_deceased_or_moved_patients_are_never_contacted():
    p = patients(record_status=["deceased", "moved"], sms_consent=[True, True], sms_consent_date=[T("2026-01-01")] * 2)
    assert rules_broken(sends(["P0", "P1"], kind="transactional", message="[데모의원] 안내"), p) == {"inactive_patient"}


# --------------------------------------------------------------------------- holdout

def test_holdout_is_a_stable_hash_of_run_and_patient():
    ids = [f"P{i:07d}" for i in range(20_000)]
    u = holdout_uniform("RECALL-2026-11", ids)
    assert np.array_equal(u, holdout_uniform("RECALL-2026-11", ids))
    assert np.array_equal(u[5:10], holdout_uniform("RECALL-2026-11", ids[5:10]))  # independent of who else is there
    assert not np.array_equal(u, holdout_uniform("RECALL-2026-12", ids))
    share = np.mean(u < 0.2)
    print(f"\nholdout share 0.2 → realised {share:.4f} over 20,000 ids")
    assert abs(share - 0.2) < 0.01
    # a fixed reference value guards against accidental changes of the hash
    import hashlib
    ref = int.from_bytes(hashlib.blake2b(b"RECALL-2026-11|P0000000", digest_size=8).digest(), "big") / 2**64
    assert u[0] == ref


def test_assign_holdout_does_not_modify_its_input():
    aud = pd.DataFrame({"patient_id": ["P1", "P2", "P3"]})
    before = aud.copy()
    out = assign_holdout(aud, "VIP-EVENT-2026-11", 0.5)
    pd.testing.assert_frame_equal(aud, before)
    assert set(out["arm"]) <= {"sent", "holdout"} and (out["run_id"] == "VIP-EVENT-2026-11").all()


# --------------------------------------------------------------------------- suppression

def contact_rows(rows):
    df = pd.DataFrame(rows, columns=["patient_id", "channel", "sent_at", "bounce_type", "opened", "clicked", "replied"])
    df["sent_at"] = pd.to_datetime(df["sent_at"])
    df["arm"] = "sent"
    return df


def test_suppression_reasons():
    c = contact_rows([
        ("H", "sms", "2026-01-05", "hard", False, False, False),
        ("S", "sms", "2026-01-01", "soft", False, False, False),
        ("S", "sms", "2026-01-10", "soft", False, False, False),
        ("S", "sms", "2026-01-20", "soft", False, False, False),     # 3 in a row over 19 days
        ("Q", "sms", "2026-01-01", "soft", False, False, False),
        ("Q", "sms", "2026-01-05", "soft", False, False, False),
        ("Q", "sms", "2026-01-10", "soft", False, False, False),     # only 9 days: kept
        ("R", "kakao", "2026-01-01", "soft", False, False, False),
        ("R", "kakao", "2026-01-10", "none", False, False, False),
        ("R", "kakao", "2026-02-10", "soft", False, False, False),
        ("R", "kakao", "2026-03-10", "soft", False, False, False),   # not in a row
        *[("N", "kakao", f"2026-0{m}-01", "none", True, False, False) for m in range(1, 6)],   # opens only
        *[("C", "kakao", f"2026-0{m}-01", "none", True, m == 3, False) for m in range(1, 6)],  # one click
        *[("V", "kakao", f"2026-0{m}-01", "none", False, False, False) for m in range(1, 6)],  # visited
        *[("F", "kakao", f"2026-0{m}-01", "none", False, False, False) for m in range(2, 6)],  # only 4 messages
    ])
    visits = pd.DataFrame({"patient_id": ["V", "N"], "visit_date": [T("2026-02-15"), T("2025-12-01")]})
    out = suppression_list(c, visits, "2026-06-30")
    got = {(r.patient_id, r.channel, r.reason) for r in out.itertuples()}
    assert got == {("H", "sms", "hard_bounce"), ("S", "sms", "soft_bounce_repeated"), ("N", "all", "no_engagement")}
    assert out.set_index("patient_id").loc["N", "scope"] == "advertising"
    assert out.set_index("patient_id").loc["H", "scope"] == "all"
    # nothing after as_of is used
    assert suppression_list(c, visits, "2026-01-04").empty


def test_holdout_rows_never_count_as_sent():
    c = contact_rows([("H", "sms", "2026-01-05", None, None, None, None)]).assign(arm="holdout", bounce_type="hard")
    assert suppression_list(c, pd.DataFrame({"patient_id": [], "visit_date": pd.to_datetime([])}), "2026-06-30").empty
