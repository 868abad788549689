"""Property tests over many generated clinics: the messaging rules are never broken.

Each example generates a small demo clinic (150–300 patients, random seed), then scrambles consents
(older dates, so many expire), night-time consents and opt-outs, moves the advertising send times into
the night, and varies the monthly cap and holdout shares. VIP and recall audiences are random subsets
of patients, to stress the caps. The plan is then checked by code written independently of
``crm_analysis.campaigns.compliance``.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_analysis import synth
from crm_analysis.campaigns import check_sends, load_campaigns, plan_campaigns
from crm_analysis.clinic import ClinicData

AS_OF = pd.Timestamp("2026-10-31")
CHANNELS = ("kakao", "sms", "email")


def scramble(patients: pd.DataFrame, rng: np.random.Generator, night_share: float) -> pd.DataFrame:
    p = patients.copy()
    n = len(p)
    for ch in CHANNELS:
        shift = pd.to_timedelta(rng.integers(0, 3 * 365, n), unit="D")
        p[f"{ch}_consent_date"] = p[f"{ch}_consent_date"] - shift
        give = rng.random(n) < 0.3
        p.loc[give, f"{ch}_consent"] = True
        p.loc[give, f"{ch}_consent_date"] = AS_OF - pd.to_timedelta(rng.integers(0, 1000, give.sum()), unit="D")
        out = rng.random(n) < 0.15
        p.loc[out, f"{ch}_opt_out"] = True
        p.loc[out, f"{ch}_opt_out_date"] = AS_OF - pd.to_timedelta(rng.integers(0, 700, out.sum()), unit="D")
    night = rng.random(n) < night_share
    p["night_ad_consent"] = pd.array(night, dtype="boolean")
    p["night_ad_consent_date"] = pd.Series(AS_OF - pd.to_timedelta(rng.integers(0, 500, n), unit="D")).where(night)
    return p


def independent_violations(plan, patients: pd.DataFrame, cap: int) -> dict[str, int]:
    s = plan.sends
    r = patients.set_index("patient_id").loc[s["recipient_id"]].reset_index(drop=True)
    day = s["send_at"].dt.normalize().reset_index(drop=True)
    ch = s["channel"].reset_index(drop=True)
    ad = (s["kind"] == "advertising").to_numpy()

    def pick(suffix):
        return pd.Series([r.at[i, f"{c}{suffix}"] for i, c in enumerate(ch)], dtype=object)

    consent, consent_date = pick("_consent"), pd.to_datetime(pick("_consent_date"))
    opt, opt_date = pick("_opt_out"), pd.to_datetime(pick("_opt_out_date"))
    opted = opt.astype("boolean").fillna(False).astype(bool) & (opt_date.isna() | (opt_date <= s["send_at"].reset_index(drop=True)))
    valid = consent.astype("boolean").fillna(False).astype(bool) & consent_date.notna() & (consent_date <= day) \
        & ((day - consent_date).dt.days < 730) & ~opted
    hour = s["send_at"].dt.hour.reset_index(drop=True)
    night_ok = r["night_ad_consent"].astype("boolean").fillna(False).astype(bool) & (r["night_ad_consent_date"] <= day)
    at_night = (hour < 8) | (hour >= 21)
    capped = ~s["cap_exempt"].astype(bool)
    per_month = s[capped].groupby([s["recipient_id"], s["send_at"].dt.to_period("M")]).size()
    held = plan.holdout[plan.holdout["arm"] == "holdout"]
    in_holdout = (s["run_id"] + "|" + s["patient_id"]).isin(held["run_id"] + "|" + held["patient_id"])
    return {
        "ad_without_valid_consent": int((ad & ~valid.to_numpy()).sum()),
        "ad_at_night_without_consent": int((ad & at_night.to_numpy() & ~night_ok.to_numpy()).sum()),
        "opted_out_channel": int(opted.sum()),
        "monthly_cap": int((per_month > cap).sum()),
        "holdout_in_send_list": int(in_holdout.sum()),
    }


@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), n=st.integers(150, 300), night_share=st.floats(0, 0.6),
       ad_hour=st.sampled_from(["07:00", "10:00", "20:30", "22:30"]), cap=st.integers(1, 6),
       holdout=st.floats(0.05, 0.5), audience_share=st.floats(0.2, 0.9))
def test_no_rule_is_ever_broken(seed, n, night_share, ad_hour, cap, holdout, audience_share):
    gen = synth.generate_clinic(n_patients=n, seed=seed, end=f"{AS_OF:%Y-%m-%d}")
    rng = np.random.default_rng(seed)
    tables = dict(gen.tables)
    tables["patients"] = scramble(tables["patients"], rng, night_share)
    clinic = ClinicData(tables, as_of=AS_OF)
    ids = tables["patients"]["patient_id"].astype(str)
    pick = ids[rng.random(len(ids)) < audience_share].tolist()
    cand = pd.DataFrame({"patient_id": pick, "reason": "random"})
    window = ["00:00", "23:59"]
    config = {"rules": {"monthly_cap": cap},
              "campaigns": [{"id": cid, "holdout_share": holdout, "send": {"time": ad_hour, "window": window,
                                                                         **({"day_of_month": 3} if cid != "VIP-BIRTHDAY" else {})}}
                            for cid in ("VIP-EVENT", "VIP-BIRTHDAY", "RECALL")]}
    plan = plan_campaigns(clinic, AS_OF, config=config,
                          candidates={"vip_event": cand, "vip_birthday": cand, "recall": cand})
    bad = independent_violations(plan, tables["patients"], cap)
    print(f"seed={seed} n={n} cap={cap} hour={ad_hour} messages={len(plan.sends)} "
          f"ads={int((plan.sends['kind'] == 'advertising').sum())} violations={bad}")
    assert not any(bad.values()), bad
    assert check_sends(plan.sends, tables["patients"], load_campaigns(config), plan.holdout).empty
    # the checks can fail: move one advertising message to 23:00 for a recipient without night consent
    ads = plan.sends.index[plan.sends["kind"] == "advertising"]
    no_night = ~tables["patients"].set_index("patient_id")["night_ad_consent"].astype("boolean").fillna(False)
    target = [i for i in ads if no_night.get(plan.sends.at[i, "recipient_id"], False)]
    if target:
        broken = plan.sends.copy()
        broken.loc[target[0], "send_at"] = broken.at[target[0], "send_at"].normalize() + pd.Timedelta(hours=23)
        assert independent_violations(replace(plan, sends=broken), tables["patients"], cap)["ad_at_night_without_consent"] == 1
        assert "ad_at_night" in set(check_sends(broken, tables["patients"], load_campaigns(config), plan.holdout)["rule"])


# --------------------------------------------------------------------------- the staff files, row by row

_CHANNEL_OF = {"카카오톡": "kakao", "문자": "sms", "이메일": "email"}
_ADVERTISING_FILES = ("VIP행사초대", "생일축하", "재내원안내")
_FAMILY_FILES = ("임신주수안내", "예방접종안내")


def staff_file_violations(files: dict, patients: pd.DataFrame, holdout: pd.DataFrame, cap: int) -> dict[str, int]:
    """Every rule, checked on the staff files as staff receive them (Korean headers, one file per campaign),
    written apart from the planner and the compliance module."""
    p = patients.assign(patient_id=patients["patient_id"].astype(str)).set_index("patient_id")
    held = set(holdout.loc[holdout["arm"] == "holdout", "patient_id"].astype(str))
    bad = dict.fromkeys(["ad_without_valid_consent", "ad_at_night_without_consent", "opted_out_channel",
                         "ad_to_a_child", "holdout_on_a_list", "child_not_through_guardian", "monthly_cap",
                         "same_household_same_day", "contact_is_not_the_patients"], 0)
    capped = []
    for name, frame in files.items():
        if name.startswith("system/") or frame.empty:
            continue
        stem = name.rsplit("_", 1)[0]
        r = p.loc[frame["환자번호"]].reset_index()
        at = pd.to_datetime(frame["발송일시"]).reset_index(drop=True)
        day = at.dt.normalize()
        channel = frame["채널"].map(_CHANNEL_OF).reset_index(drop=True)
        for ch in ("kakao", "sms", "email"):
            rows = (channel == ch).to_numpy()
            if not rows.any():
                continue
            rr, d, t = r.loc[rows], day[rows], at[rows]
            opt_date = rr[f"{ch}_opt_out_date"]
            opted = rr[f"{ch}_opt_out"].astype("boolean").fillna(False).astype(bool) \
                & (opt_date.isna() | (opt_date <= t).fillna(False))
            bad["opted_out_channel"] += int(opted.sum())
            address = rr["email"] if ch == "email" else rr["phone"]
            bad["contact_is_not_the_patients"] += int((address.astype(str).to_numpy()
                                                       != frame["연락처"].to_numpy()[rows]).sum())
            if stem in _ADVERTISING_FILES:
                date = rr[f"{ch}_consent_date"]
                valid = rr[f"{ch}_consent"].astype("boolean").fillna(False).astype(bool) & date.notna() \
                    & (date <= d) & ((d - date).dt.days < 730)
                bad["ad_without_valid_consent"] += int((~valid).sum())
        if stem in _ADVERTISING_FILES:
            night = (at.dt.hour < 8) | (at.dt.hour >= 21)
            night_ok = r["night_ad_consent"].astype("boolean").fillna(False).astype(bool) \
                & (r["night_ad_consent_date"] <= day)
            bad["ad_at_night_without_consent"] += int((night & ~night_ok).sum())
            age = (day - r["birth_date"]).dt.days / 365.2425
            bad["ad_to_a_child"] += int((age < 14).fillna(False).sum())
            bad["holdout_on_a_list"] += int(frame["환자번호"].isin(held).sum())
        if "아이 환자번호" in frame:
            guardian = p["guardian_id"].astype(object).reindex(frame["아이 환자번호"]).astype(str).to_numpy()
            bad["child_not_through_guardian"] += int((guardian != frame["환자번호"].to_numpy()).sum())
        if stem in _FAMILY_FILES:
            bad["same_household_same_day"] += int(frame.assign(day=day.to_numpy())
                                                  .duplicated(["연락처", "day"]).sum())
        if stem != "예약알림" and stem != "수신동의확인안내":
            capped.append(pd.DataFrame({"who": frame["환자번호"].to_numpy(), "month": at.dt.to_period("M")}))
    if capped:
        counts = pd.concat(capped).groupby(["who", "month"]).size()
        bad["monthly_cap"] = int((counts > cap).sum())
    return bad


#: Visit histories the staff-file clinics are built on (generated once each, 80–160 patients).
_BASES = 24


@functools.lru_cache(maxsize=_BASES)
def _base_tables(base: int) -> dict:
    return dict(synth.generate_clinic(n_patients=80 + 3 * base, seed=10_000 + base, end=f"{AS_OF:%Y-%m-%d}").tables)


@pytest.mark.parametrize("half", [0, 1])  # two halves, so the 200 clinics spread over the test workers
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True, database=None)
@given(seed=st.integers(0, 10**6), base=st.integers(0, _BASES - 1), night_share=st.floats(0, 0.6),
       ad_hour=st.sampled_from(["07:00", "10:00", "20:30", "22:30"]), cap=st.integers(1, 6),
       holdout=st.floats(0.05, 0.5), audience_share=st.floats(0.2, 0.9), english=st.floats(0, 0.3),
       capacity=st.integers(1, 40))
def test_no_staff_file_ever_breaks_a_rule(half, seed, base, night_share, ad_hour, cap, holdout, audience_share,
                                          english, capacity):
    """200 generated clinics (two halves of 100): one of 24 generated visit histories, with its patients' consents,
    consent dates, opt-outs, night-time consents and languages drawn anew, and a random plan (caps, holdout
    shares, capacities, send hours, audiences). Every row of every staff file obeys every rule, and each file
    holds exactly its campaign's messages."""
    from crm_analysis.campaigns.outreach import outreach_tables

    seed = seed * 2 + half
    rng = np.random.default_rng(seed)
    tables = dict(_base_tables(base))
    patients = scramble(tables["patients"], rng, night_share)
    patients["language"] = pd.Categorical(np.where(rng.random(len(patients)) < english, "en", None),
                                          categories=["ko", "en"])
    tables["patients"] = patients
    clinic = ClinicData(tables, as_of=AS_OF)
    ids = patients["patient_id"].astype(str)
    cand = pd.DataFrame({"patient_id": ids[rng.random(len(ids)) < audience_share].tolist(), "reason": "random"})
    window = ["00:00", "23:59"]
    config = {"rules": {"monthly_cap": cap},
              "campaigns": [{"id": cid, "holdout_share": holdout, "send": {"time": ad_hour, "window": window,
                                                                         **({"day_of_month": 3} if cid != "VIP-BIRTHDAY" else {})},
                             **({"capacity": capacity} if cid != "VIP-BIRTHDAY" else {})}
                            for cid in ("VIP-EVENT", "VIP-BIRTHDAY", "RECALL")]}
    config = load_campaigns(config)  # validated once for the plan and the lists
    plan = plan_campaigns(clinic, AS_OF, config=config,
                          candidates={"vip_event": cand, "vip_birthday": cand, "recall": cand})
    files = outreach_tables(plan, clinic, config)
    bad = staff_file_violations(files, patients, plan.holdout, cap)
    assert not any(bad.values()), {k: v for k, v in bad.items() if v}
    staff = {name: f for name, f in files.items() if not name.startswith(("system/", "수신동의확인안내"))}
    assert sum(len(f) for f in staff.values()) == len(plan.sends), "a staff file holds exactly the plan's messages"
    for cfg_id, stem in (("VIP-EVENT", "VIP행사초대"), ("RECALL", "재내원안내")):
        sent = int((plan.holdout.query("campaign_id == @cfg_id")["arm"] == "sent").sum())
        listed = files[f"{stem}_2026-11"]
        assert len(listed) == int((plan.sends["campaign_id"] == cfg_id).sum()) <= sent <= capacity, cfg_id
    # English readers get English, everybody else Korean, whatever the report's language: each template opens
    # with the sender's name in the message's language
    lang = patients.set_index(ids)["language"].astype(object)
    for name, f in files.items():
        if name.startswith("system/"):
            continue
        reads = lang.reindex(f["환자번호"]).fillna("ko").to_numpy()
        english_text = f["메시지"].str.contains("[Demo Clinic]", regex=False).to_numpy()
        korean_text = f["메시지"].str.contains("[데모의원]", regex=False).to_numpy()
        assert (english_text == (reads == "en")).all() and (korean_text == (reads == "ko")).all(), name
