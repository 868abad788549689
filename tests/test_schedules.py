"""Prenatal and vaccination schedules: data files with sources, dates checked against hand-computed examples."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_analysis import schedules
from crm_analysis.schedules import (age_offset, gestational_week, load_prenatal_schedule, load_vaccination_schedule,
                                    pregnancy_weeks, prenatal_content, vaccination_due, week_start)

T = pd.Timestamp


def test_schedule_files_name_their_source():
    pre, vac = load_prenatal_schedule(), load_vaccination_schedule()
    assert "대한산부인과학회" in pre["source"] and "kdca.go.kr" in pre["source"]
    assert "질병관리청" in vac["source"] and "표준예방접종일정표" in vac["source"]
    for name in ("prenatal_schedule.yaml", "vaccination_schedule.yaml"):
        assert (schedules.RULES_DIR / name).read_text(encoding="utf-8").startswith("#")


@pytest.mark.parametrize("due, day, week", [
    ("2026-12-31", "2026-12-31", 40),   # due date: 40+0
    ("2026-12-31", "2026-12-30", 39),   # 39+6 is 39 completed weeks
    ("2026-12-31", "2026-03-26", 0),    # LMP = due − 280 days
    ("2026-12-31", "2026-04-25", 4),    # 30 days after LMP = 4+2
    ("2026-12-31", "2026-06-18", 12),   # 84 days after LMP = 12+0
    ("2026-12-31", "2027-01-07", 41),
])
def test_gestational_week_hand_examples(due, day, week):
    assert int(gestational_week(T(due), T(day))[0]) == week


def test_week_start_inverts_gestational_week():
    starts = week_start([T("2026-12-31")] * 3, [0, 12, 40])
    assert list(starts) == [T("2026-03-26"), T("2026-06-18"), T("2026-12-31")]
    assert list(gestational_week(T("2026-12-31"), starts)) == [0, 12, 40]
    assert list(gestational_week(T("2026-12-31"), starts - pd.Timedelta(days=1))) == [-1, 11, 39]


def test_pregnancy_weeks_in_a_month_and_stop_at_outcome():
    preg = pd.DataFrame({"patient_id": ["A", "B", "C"],
                         "due_date": [T("2027-05-01"), T("2026-11-20"), T("2027-03-01")],
                         "outcome": [None, None, "miscarriage"]})
    out = pregnancy_weeks(preg, "2026-11-01", "2026-11-30")
    # A: LMP 2026-07-25 (2027-05-01 − 280 d); week 15 starts 2026-11-07, then weekly. B: LMP 2026-02-13; week 38 starts 2026-11-06; stops at 40.
    got = {(r.patient_id, r.week): r.week_start for r in out.itertuples()}
    assert got == {("A", 15): T("2026-11-07"), ("A", 16): T("2026-11-14"), ("A", 17): T("2026-11-21"),
                   ("A", 18): T("2026-11-28"), ("B", 38): T("2026-11-06"), ("B", 39): T("2026-11-13"),
                   ("B", 40): T("2026-11-20")}
    assert "C" not in set(out["patient_id"])  # any outcome stops the messages


def test_prenatal_content_follows_the_korean_schedule():
    text = prenatal_content([5, 12, 17, 22, 24, 26, 30, 35, 37], lang="en").tolist()
    assert "first ultrasound" in text[0]
    assert "nuchal translucency" in text[1]
    assert "quad" in text[2]
    assert "anomaly" in text[3]
    assert "anomaly" in text[4] and "gestational diabetes" in text[4]  # 20–24 and 24–28 overlap at 24
    assert "gestational diabetes" in text[5]
    assert text[6] == load_prenatal_schedule()["general"]["en"]
    assert "late-pregnancy" in text[7] and "GBS" in text[7]
    assert "GBS" in text[8] and "late-pregnancy" not in text[8]


def test_age_offsets_are_calendar_offsets():
    assert T("2026-12-31") + age_offset("2m") == T("2027-02-28")
    assert T("2026-09-15") + age_offset("4w") == T("2026-10-13")
    with pytest.raises(ValueError, match="must look like"):
        age_offset("2 months")


def test_vaccination_dates_hand_examples():
    kids = pd.DataFrame({"patient_id": ["K1", "K2", "K3"],
                         "birth_date": [T("2026-09-15"), T("2025-11-20"), T("2026-10-10")]})
    out = vaccination_due(kids, "2026-11-01", "2026-11-30", days_before=7)
    k1 = out[out["patient_id"] == "K1"]
    # born 2026-09-15: 2-month doses due 2026-11-15, reminder a week before
    assert set(k1["vaccine"]) == {"DTaP", "IPV", "Hib", "PCV", "RV"}
    assert set(k1["due_from"]) == {T("2026-11-15")} and set(k1["send_date"]) == {T("2026-11-08")}
    k2 = out[out["patient_id"] == "K2"]
    # born 2025-11-20: 12-month doses (MMR, varicella, Hib 4, PCV 4, HepA 1, JE 1) due 2026-11-20
    assert {"MMR", "VAR", "HepA", "IJEV", "Hib", "PCV"} == set(k2["vaccine"])
    assert set(k2["send_date"]) == {T("2026-11-13")}
    k3 = out[out["patient_id"] == "K3"]
    # born 2026-10-10: HepB 2 at 1 month = 2026-11-10, reminder 2026-11-03
    assert k3[["vaccine", "dose", "send_date"]].values.tolist() == [["HepB", 2, T("2026-11-03")]]


def test_seasonal_influenza_from_six_months():
    kids = pd.DataFrame({"patient_id": ["old_enough", "too_young", "too_old"],
                         "birth_date": [T("2026-03-01"), T("2026-05-01"), T("2013-09-01")]})
    out = vaccination_due(kids, "2026-10-01", "2026-10-31", days_before=7)
    flu = out[out["vaccine"] == "IIV"]
    assert flu["patient_id"].tolist() == ["old_enough"]
    assert flu["send_date"].tolist() == [T("2026-10-01")]


def _given(rows):
    return pd.DataFrame(rows, columns=["patient_id", "vaccine", "dose", "vaccination_date"])


def test_doses_given_are_not_reminded_and_a_missed_one_gets_one_catch_up():
    kids = pd.DataFrame({"patient_id": ["A", "B"], "birth_date": [T("2026-08-10")] * 2})
    given = _given([["A", "dtap", 1, T("2026-09-30")],  # given early (codes compared without case)
                    ["A", "HepB", 2, T("2026-09-12")], ["A", "BCG", 1, T("2026-08-20")],
                    ["B", "BCG", 1, T("2026-08-20")]])
    out = vaccination_due(kids, "2026-10-01", "2026-10-31", days_before=7, given=given)
    got = {p: sorted(map(tuple, g[["kind", "vaccine", "dose"]].values.tolist())) for p, g in out.groupby("patient_id")}
    two_months = [("window", v, 1) for v in ("DTaP", "Hib", "IPV", "PCV", "RV")]
    # 2-month doses: window opens 2026-10-10; HepB 2's one-month window closed 2026-09-10, so 30 days later
    # (2026-10-10) B, who never had it, is reminded once more; BCG (window closed 2026-09-07) was given to both
    assert got["A"] == [t for t in two_months if t[1] != "DTaP"]
    assert got["B"] == sorted([("catch_up", "HepB", 2), *two_months])
    late = out[out["kind"] == "catch_up"].iloc[0]
    assert late["send_date"] == T("2026-10-10") and late["en"].endswith("(overdue)") and "지남" in late["ko"]
    # without a record of what was given, the schedule alone: no catch-up, nothing left out
    alone = vaccination_due(kids, "2026-10-01", "2026-10-31", days_before=7)
    assert set(alone["kind"]) == {"window"} and len(alone) == 10


def test_hpv_at_twelve_for_girls_only():
    kids = pd.DataFrame({"patient_id": ["girl", "boy", "unknown"], "birth_date": [T("2014-11-05")] * 3,
                         "sex": ["F", "M", None]})
    out = vaccination_due(kids, "2026-10-01", "2026-10-31", days_before=7)
    hpv = out[out["vaccine"] == "HPV"]
    assert hpv[["patient_id", "dose", "send_date"]].values.tolist() == [["girl", 1, T("2026-10-29")]]
    second = vaccination_due(kids, "2027-04-01", "2027-04-30", days_before=7)
    assert second.loc[second["vaccine"] == "HPV", ["patient_id", "dose"]].values.tolist() == [["girl", 2]]


def test_a_seasonal_vaccine_given_this_season_is_not_reminded_again():
    kids = pd.DataFrame({"patient_id": ["recent", "last_spring", "none"], "birth_date": [T("2024-01-01")] * 3})
    given = _given([["recent", "IIV", 0, T("2026-09-15")], ["last_spring", "IIV", 0, T("2026-03-01")]])
    out = vaccination_due(kids, "2026-10-01", "2026-10-31", days_before=7, given=given)
    assert out.loc[out["vaccine"] == "IIV", "patient_id"].tolist() == ["last_spring", "none"]


def test_vaccination_catch_ups_on_the_demo_match_the_doses_the_generator_left_out(demo_synth, generated_clinic):
    """Over a past year, a catch-up goes exactly to the scheduled doses missing from the vaccinations table; their
    share estimates the generator's 1 − coverage (each dose given with probability coverage, before its catch-up
    day), so its 99% interval covers the truth."""
    from statsmodels.stats.proportion import proportion_confint

    from tests.conftest import DEMO_END

    p = generated_clinic.tables["patients"]
    kids = p.loc[p["guardian_id"].notna().to_numpy(), ["patient_id", "birth_date", "sex"]]
    given = generated_clinic.tables["vaccinations"]
    start, end = T(DEMO_END) - pd.Timedelta(days=400), T(DEMO_END)
    out = vaccination_due(kids, start, end, given=given)
    done = set(zip(given["patient_id"].astype(str), given["vaccine"].str.upper(), given["dose"]))
    assert not any((pid, v.upper(), d) in done for pid, v, d in out[["patient_id", "vaccine", "dose"]].values
                   if d > 0)
    # every dose whose catch-up day falls in the year, given or not
    schedule = load_vaccination_schedule()["doses"]
    candidates = sum(int((((kids["birth_date"] + age_offset(d["to"]) + pd.Timedelta(days=30)).between(start, end))
                          & ((kids["sex"] == d["sex"]) if pd.notna(d["sex"]) else True)).sum())
                     for _, d in schedule.iterrows())
    missed = int((out["kind"] == "catch_up").sum())
    lo, hi = proportion_confint(missed, candidates, alpha=0.01, method="wilson")
    truth = 1 - demo_synth.truth["vaccinations"]["coverage_per_dose"]
    print(f"catch-ups {missed} of {candidates} doses due for one (share {missed / candidates:.3f}, 99% CI "
          f"{lo:.3f}-{hi:.3f}); true share not given {truth:.2f}")
    assert candidates >= 100 and lo <= truth <= hi
