"""Patient cards: the figures shown are checked against plain pandas on the demo tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.profile import PatientNotFoundError, patient_card

FORMATS = ("{a}-{b}-{c}", "{a}{b}{c}", "+82 {a1}-{b}-{c}")


def spell(canonical: str, pattern: str) -> str:
    a, b, c = canonical.split("-")
    return pattern.format(a=a, a1=a[1:], b=b, c=c)


def pick_patients(t: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> dict[str, str]:
    """Demo patients that exercise every part of the card, chosen with plain pandas."""
    p, a, preg = t["patients"], t["appointments"], t["pregnancies"]
    with_phone = p.loc[p["phone"].notna()]
    guardians = set(p["guardian_id"].dropna().astype(str))
    family = with_phone.loc[with_phone["phone"].duplicated(keep=False)
                            & with_phone["patient_id"].astype(str).isin(guardians), "patient_id"]
    upcoming = a.loc[(a["status"] == "booked") & (a["scheduled_at"] >= as_of), "patient_id"].astype(str)
    contacted = set(t["contacts"]["patient_id"].astype(str))
    ongoing = preg.loc[preg["outcome"].isna() & (preg["due_date"] > as_of), "patient_id"].astype(str)
    singles = with_phone.loc[~with_phone["phone"].duplicated(keep=False), "patient_id"].astype(str)
    return {
        "family": str(family.iloc[0]),
        "upcoming": next(x for x in upcoming if x in set(singles) and x in contacted),
        "pregnant": next(x for x in ongoing if x in set(with_phone["patient_id"].astype(str))),
        "single": next(x for x in singles if x in contacted),
    }


def expected_figures(t: dict[str, pd.DataFrame], pid: str, as_of: pd.Timestamp) -> dict:
    """The card's figures for `pid`, computed independently with pandas."""
    v = t["visits"].loc[t["visits"]["patient_id"].astype(str) == pid].sort_values("visit_date", kind="stable")
    charge = v["charge_insured"].fillna(0) + v["charge_self_pay"].fillna(0)
    recent = v["visit_date"] > as_of - pd.DateOffset(years=1)
    a = t["appointments"].loc[t["appointments"]["patient_id"].astype(str) == pid]
    past = a["scheduled_at"] < as_of + pd.Timedelta(days=1)
    row = t["patients"].loc[t["patients"]["patient_id"].astype(str) == pid].iloc[0]
    birth = row["birth_date"]
    age = as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))
    band = "0-19" if age < 20 else "20-39" if age < 40 else "40-59" if age < 60 else "60+"
    days = np.sort(v["visit_date"].unique())
    gaps = np.diff(days).astype("timedelta64[D]").astype(int)
    return {
        "name": row["name"],
        "age_band": band,
        "first_visit": v["visit_date"].min(),
        "last_visit": v["visit_date"].max(),
        "last_department": v["department"].iloc[-1],
        "visit_days": v["visit_date"].nunique(),
        "visits_12m": v.loc[recent, "visit_date"].nunique(),
        "value_12m": float(charge[recent].sum()),
        "value_lifetime": float(charge.sum()),
        "upcoming": sorted(a.loc[(a["status"] == "booked") & (a["scheduled_at"] >= as_of), "appointment_id"].astype(str)),
        "no_shows": int((past & (a["status"] == "no_show")).sum()),
        "past_appointments": int((past & a["status"].isin(["attended", "no_show"])).sum()),
        "elapsed_days": (as_of - v["visit_date"].max()).days,
        "own_median_gap": float(np.median(gaps)) if len(gaps) >= 2 else None,
        "row": row,
        "visits": v,
    }


@pytest.fixture(scope="module")
def picked(tables, as_of):
    chosen = pick_patients(tables, as_of)
    print(f"\n[profile] patients checked: {chosen}")
    return chosen


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("who", ["family", "upcoming", "pregnant", "single"])
def test_card_figures_match_pandas_for_each_phone_format(demo_clinic, card_ctx, tables, picked, as_of, tmp_path,
                                                          who, fmt):
    pid = picked[who]
    t = tables
    phone = t["patients"].loc[t["patients"]["patient_id"].astype(str) == pid, "phone"].iloc[0]
    cards = patient_card(demo_clinic, phone=spell(phone, fmt), as_of=as_of, context=card_ctx,
                         access_log=tmp_path / "access.log")
    sharing = t["patients"].loc[t["patients"]["phone"] == phone, "patient_id"].astype(str).tolist()
    assert cards.patient_ids == sharing
    card = cards.card(pid)
    exp = expected_figures(t, pid, as_of)
    assert card.name == exp["name"]
    assert card.age_band == exp["age_band"]
    assert card.first_visit == exp["first_visit"]
    assert card.last_visit == exp["last_visit"]
    assert card.last_department == exp["last_department"]
    assert card.visit_days == exp["visit_days"]
    assert card.visits_12m == exp["visits_12m"]
    assert card.value_12m == pytest.approx(exp["value_12m"])
    assert card.value_lifetime == pytest.approx(exp["value_lifetime"])
    assert sorted(card.upcoming["appointment_id"].astype(str)) == exp["upcoming"]
    assert card.no_shows == exp["no_shows"]
    assert card.past_appointments == exp["past_appointments"]
    # churn: elapsed days and (with two or more gaps) the patient's own usual interval
    assert card.p_return is not None and 0 <= card.p_return <= 1
    assert card.elapsed_days == exp["elapsed_days"]
    if exp["own_median_gap"] is not None:
        assert card.usual_interval_days == pytest.approx(exp["own_median_gap"])
        assert card.overdue_ratio == pytest.approx(exp["elapsed_days"] / exp["own_median_gap"])
    text, html = str(cards), cards._repr_html_()
    assert exp["name"] in text and pid in html
    assert phone not in text and phone not in html


def test_consent_and_campaign_outcomes_match_pandas(demo_clinic, card_ctx, tables, picked, as_of, tmp_path):
    t = tables
    for pid in picked.values():
        card = patient_card(demo_clinic, patient_id=pid, as_of=as_of, context=card_ctx,
                            access_log=tmp_path / "a.log")[0]
        row = t["patients"].loc[t["patients"]["patient_id"].astype(str) == pid].iloc[0]
        for ch in ("kakao", "sms", "email"):
            given = bool(row[f"{ch}_consent"]) if pd.notna(row[f"{ch}_consent"]) else False
            date = row[f"{ch}_consent_date"]
            opted = bool(row[f"{ch}_opt_out"]) if pd.notna(row[f"{ch}_opt_out"]) else False
            valid = given and pd.notna(date) and 0 <= (as_of - date).days < 730 and not opted
            assert card.consent.loc[ch, "consent_valid"] == valid, (pid, ch)
            assert card.consent.loc[ch, "opt_out"] == opted, (pid, ch)
        c = t["contacts"].loc[t["contacts"]["patient_id"].astype(str) == pid].sort_values(
            ["sent_at", "contact_id"], ascending=False).head(3)
        assert card.campaigns["campaign_id"].astype(str).tolist() == c["campaign_id"].astype(str).tolist()
        v_days = t["visits"].loc[t["visits"]["patient_id"].astype(str) == pid, "visit_date"]
        for shown, (_, contact) in zip(card.campaigns.itertuples(), c.iterrows()):
            day = contact["sent_at"].normalize()
            if day + pd.Timedelta(days=30) > as_of:
                assert pd.isna(shown.returned)
            else:
                came = bool(((v_days > day) & (v_days <= day + pd.Timedelta(days=30))).any())
                assert bool(shown.returned) == came


def test_pregnancy_week_and_children(demo_clinic, card_ctx, tables, picked, as_of, tmp_path):
    t = tables
    pid = picked["pregnant"]
    card = patient_card(demo_clinic, patient_id=pid, as_of=as_of, context=card_ctx, access_log=tmp_path / "a.log")[0]
    preg = t["pregnancies"].loc[(t["pregnancies"]["patient_id"].astype(str) == pid) & t["pregnancies"]["outcome"].isna()]
    due = preg["due_date"].max()
    assert card.pregnancy_week == (280 - (due - as_of).days) // 7
    assert 0 <= card.pregnancy_week <= 42

    guardian = picked["family"]
    card = patient_card(demo_clinic, patient_id=guardian, as_of=as_of, context=card_ctx,
                        access_log=tmp_path / "a.log")[0]
    kids = t["patients"].loc[t["patients"]["guardian_id"].astype("object") == guardian]
    assert sorted(card.children["patient_id"]) == sorted(kids["patient_id"].astype(str))
    from crm_analysis.schedules import age_offset, load_vaccination_schedule

    doses = load_vaccination_schedule()["doses"]
    shots = t["vaccinations"]
    for child in card.children.itertuples():
        birth = kids.loc[kids["patient_id"].astype(str) == child.patient_id, "birth_date"].iloc[0]
        mine = shots.loc[(shots["patient_id"].astype(str) == child.patient_id) & (shots["vaccination_date"] <= as_of)]
        done = set(zip(mine["vaccine"], mine["dose"]))
        open_windows = [(birth + age_offset(d["from"]), birth + age_offset(d["to"])) for _, d in doses.iterrows()
                        if birth + age_offset(d["to"]) >= as_of and (d["vaccine"], d["dose"]) not in done]
        # the next regular dose not yet given (seasonal influenza may come earlier)
        assert child.due_from <= min(start for start, _ in open_windows)
        assert child.due_to >= as_of
        names = {d["ko"] for _, d in doses.iterrows() if (d["vaccine"], d["dose"]) in done}
        assert not names & set(child.vaccines_ko.split(", "))  # a dose given is never listed as next


def test_segment_vip_and_return_probability_come_from_the_shared_analyses(demo_clinic, card_ctx, picked, as_of,
                                                                          tmp_path):
    from crm_analysis.churn import ChurnModel, recall_table
    from crm_analysis.features import patient_features
    from crm_analysis.value.segmentation import assign_segments, rfm_scores
    from crm_analysis.value.vip import select_vips

    feats = patient_features(demo_clinic, as_of)
    seg = assign_segments(rfm_scores(feats))["segment"]
    vips = select_vips(feats, as_of)
    top = str(vips.index[0])
    churn = recall_table(demo_clinic, as_of, model=ChurnModel().fit(demo_clinic, as_of))
    for pid in [*picked.values(), top]:
        card = patient_card(demo_clinic, patient_id=pid, as_of=as_of, context=card_ctx,
                            access_log=tmp_path / "a.log")[0]
        assert card.segment == str(seg.loc[pid])
        expected_vip = "no" if pid not in vips.index else ("selected" if vips.loc[pid, "selected"] else "over_capacity")
        assert card.vip_status == expected_vip
        assert card.vip_reason["en"] and card.vip_reason["ko"]
        assert card.p_return == pytest.approx(churn.loc[pid, "p_return"])
        assert card.recall_candidate == bool(churn.loc[pid, "candidate"])
    card = patient_card(demo_clinic, patient_id=top, as_of=as_of, context=card_ctx, access_log=tmp_path / "a.log")[0]
    assert card.vip_status == "selected" and "top" in card.vip_reason["en"]


def test_unknown_number_raises_a_clear_error_and_is_logged(demo_clinic, card_ctx, as_of, tmp_path):
    log = tmp_path / "access.log"
    with pytest.raises(PatientNotFoundError, match="no patient found"):
        patient_card(demo_clinic, phone="010-9876-5432", as_of=as_of, context=card_ctx, access_log=log)
    assert len(log.read_text().splitlines()) == 1
    with pytest.raises(ValueError, match="exactly one"):
        patient_card(demo_clinic, as_of=as_of, context=card_ctx, access_log=log)
    with pytest.raises(ValueError, match="not a valid Korean phone number"):
        patient_card(demo_clinic, phone="12", as_of=as_of, context=card_ctx, access_log=log)


def test_missing_analysis_shows_unavailable_not_a_value(demo_clinic, picked, as_of, tmp_path):
    cards = patient_card(demo_clinic, patient_id=picked["single"], as_of=as_of, access_log=tmp_path / "a.log",
                         churn=False, clv=False, lang="en")
    card = cards[0]
    assert card.p_return is None and card.predicted_value is None
    assert "unavailable (not computed" in card.to_text()


def test_card_describes_a_past_day_without_look_ahead(demo_clinic, tables, picked, as_of, tmp_path):
    past = pd.Timestamp("2026-03-31")
    pid = picked["single"]
    card = patient_card(demo_clinic, patient_id=pid, as_of=past, access_log=tmp_path / "a.log",
                        churn=False, clv=False)[0]
    v = tables["visits"]
    v = v.loc[(v["patient_id"].astype(str) == pid) & (v["visit_date"] <= past)]
    assert card.visit_days == v["visit_date"].nunique()
    assert card.last_visit == v["visit_date"].max()
    assert card.as_of == past


def test_campaign_outcomes_agree_with_campaign_evaluation(card_ctx, tables, as_of):
    """The context's one-pass outcomes equal crm_analysis.campaigns' contact_outcomes for every contact."""
    from crm_analysis.campaigns.evaluation import contact_outcomes

    ref = contact_outcomes(tables["contacts"], tables["visits"], as_of)
    mine = card_ctx.history["contacts"].table
    both = mine.merge(ref, on="contact_id", suffixes=("", "_ref"))
    assert len(both) == len(ref) == mine["returned"].notna().sum()
    assert (both["returned"].astype(bool) == both["returned_ref"]).all()
    np.testing.assert_allclose(both["revenue"], both["revenue_ref"])
