"""Monthly KPIs: by hand on a tiny clinic, independently on the demo clinic, no look-ahead, registry, JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from crm_analysis import load_clinic
from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.monthly.kpis import (ANALYSIS_SECTIONS, CORE_SECTIONS, KPIS_FILE, SECTIONS, MonthlyKpis, kpis_for_report,
                                       monthly_kpis, register_section)
from crm_analysis.monthly.month import Month

TINY = {
    "patients": [
        {"patient_id": "P1", "name": "김가나다", "first_visit_date": "2026-01-05"},
        {"patient_id": "P2", "name": "이라마바", "first_visit_date": ""},
        {"patient_id": "P3", "name": "박사아자", "first_visit_date": "2026-02-10"},
    ],
    "visits": [
        {"visit_id": "V1", "patient_id": "P1", "visit_date": "2026-01-05", "department": "내과", "charge_insured": "10000",
         "charge_self_pay": "0"},
        {"visit_id": "V2", "patient_id": "P1", "visit_date": "2026-02-07", "department": "내과", "charge_insured": "",
         "charge_self_pay": "3000"},
        {"visit_id": "V3", "patient_id": "P2", "visit_date": "2026-02-15", "department": "", "charge_insured": "5000",
         "charge_self_pay": ""},
        {"visit_id": "V4", "patient_id": "P3", "visit_date": "2026-02-10", "department": "외과", "charge_insured": "7000",
         "charge_self_pay": "1000"},
        {"visit_id": "V5", "patient_id": "P3", "visit_date": "2026-03-02", "department": "외과", "charge_insured": "7000",
         "charge_self_pay": "0"},
    ],
    "appointments": [
        {"appointment_id": "A1", "patient_id": "P1", "booked_at": "2026-01-10 10:00", "scheduled_at": "2026-02-07 09:30",
         "status": "attended"},
        {"appointment_id": "A2", "patient_id": "P2", "booked_at": "2026-02-01 10:00", "scheduled_at": "2026-02-20 14:00",
         "status": "no_show"},
        {"appointment_id": "A3", "patient_id": "P3", "booked_at": "2026-02-01 10:00", "scheduled_at": "2026-02-21 14:00",
         "status": "cancelled", "cancelled_at": "2026-02-05 09:00"},
        {"appointment_id": "A4", "patient_id": "P1", "booked_at": "2026-02-25 10:00", "scheduled_at": "2026-03-03 10:00",
         "status": "no_show"},
    ],
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_kpis")
    for name, rows in TINY.items():
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
    return load_clinic(folder, as_of="2026-03-31")


def test_by_hand_on_a_tiny_clinic(tiny):
    kpis = monthly_kpis(tiny, "2026-02-28", min_count=1).to_dict()
    s = kpis["sections"]
    assert kpis["month"] == "2026-02" and kpis["as_of"] == "2026-02-28"
    assert s["patients"] == {"available": True, "active_12m": 3, "visiting_month": 3, "new_month": 2,
                             "returning_month": 1, "registered": 3}
    # February: A1 attended, A2 no-show, A3 cancelled (left out); A4 is March's (and unknown by 28 Feb)
    assert s["no_show"]["month"] == {"appointments": 2, "no_shows": 1, "rate": 0.5}
    rows = {r["department"]: r for r in s["revenue_by_department"]["rows"]}
    assert rows["내과"] == {"department": "내과", "visits": 1, "patients": 1, "insured": 0, "self_pay": 3000, "total": 3000}
    assert rows["(unknown)"]["insured"] == 5000 and rows["외과"]["total"] == 8000
    assert s["revenue_by_department"]["total"] == {"visits": 3, "patients": 3, "insured": 12000, "self_pay": 4000,
                                                    "total": 16000}
    # two months of history cannot show a 12-month retention: the section says so, figures null
    assert s["retention"]["available"] is False and s["retention"]["base"] is None and s["retention"]["rate"] is None
    assert "24 months of visit history" in s["retention"]["reason"]
    trend = {r["month"]: r for r in s["trend"]["rows"]}
    assert trend["2026-01"] == {"month": "2026-01", "visits": 1, "patients": 1, "new_patients": 1}
    assert trend["2026-02"] == {"month": "2026-02", "visits": 3, "patients": 3, "new_patients": 2}


def test_small_counts_are_suppressed_by_default(tiny):
    kpis = monthly_kpis(tiny, "2026-02-28")
    s = kpis.to_dict()["sections"]
    assert s["patients"]["visiting_month"] is None and s["no_show"]["month"]["rate"] is None
    assert all(r["visits"] is None and r["insured"] is None for r in s["revenue_by_department"]["rows"])
    head = kpis.headline("en")
    assert head.iloc[2, 1] == "<5" and head.iloc[5, 1] == "–"


def test_no_look_ahead(tiny):
    """Rows recorded after as_of change nothing: a March visit, booking and first visit."""
    before = monthly_kpis(tiny, "2026-02-28", min_count=1).to_json()
    visits = pd.concat([tiny.visits, tiny.visits.iloc[[0]].assign(visit_id="V9", visit_date=pd.Timestamp("2026-03-30"),
                                                                   charge_insured=1e9)], ignore_index=True)
    later = replace(tiny, tables={**tiny.tables, "visits": visits})
    assert monthly_kpis(later, "2026-02-28", min_count=1).to_json() == before
    march = monthly_kpis(later, "2026-03-31", min_count=1).to_dict()["sections"]
    assert march["revenue_by_department"]["total"]["insured"] > 1e9  # ... but they do count in their own month


def test_input_not_modified(tiny):
    copies = {n: df.copy() for n, df in tiny.tables.items()}
    monthly_kpis(tiny, "2026-02-28")
    for name, df in tiny.tables.items():
        pd.testing.assert_frame_equal(df, copies[name])


def test_independent_computation_on_the_demo_clinic(demo_clinic):
    as_of = pd.Timestamp("2026-10-31")
    s = monthly_kpis(demo_clinic, as_of).to_dict()["sections"]
    v = demo_clinic.visits
    october = v[(v["visit_date"] >= "2026-10-01") & (v["visit_date"] <= as_of)]
    year = v[(v["visit_date"] >= "2025-11-01") & (v["visit_date"] <= as_of)]
    first = v.groupby("patient_id", observed=True)["visit_date"].min()
    new = int(((first >= "2026-10-01") & (first <= as_of)).sum())
    print(f"demo October: visiting {october['patient_id'].nunique()}, new {new}, active {year['patient_id'].nunique()}")
    assert s["patients"]["visiting_month"] == october["patient_id"].nunique()
    assert s["patients"]["active_12m"] == year["patient_id"].nunique()
    assert s["patients"]["new_month"] == new
    assert s["patients"]["returning_month"] == october["patient_id"].nunique() - new
    charges = october["charge_insured"].fillna(0).sum() + october["charge_self_pay"].fillna(0).sum()
    assert abs(s["revenue_by_department"]["total"]["total"] - charges) <= len(october["department"].unique())
    shown = [r["total"] for r in s["revenue_by_department"]["rows"] if r["total"] is not None]
    assert sum(shown) <= s["revenue_by_department"]["total"]["total"]
    a = demo_clinic.appointments
    due = a[(a["scheduled_at"] >= "2026-10-01") & (a["scheduled_at"] < "2026-11-01")]
    status = due["status"].astype(str)
    rate = (status == "no_show").sum() / status.isin(["no_show", "attended"]).sum()
    print(f"no-show rate October: {s['no_show']['month']['rate']} (direct {rate:.4f})")
    assert s["no_show"]["month"]["rate"] == round(rate, 4)
    prior = set(v[(v["visit_date"] >= "2024-11-01") & (v["visit_date"] < "2025-11-01")]["patient_id"])
    kept = prior & set(year["patient_id"])
    assert s["retention"]["base"] == len(prior) and s["retention"]["retained"] == len(kept)
    assert s["retention"]["history_complete"] is True


def test_missing_table_makes_a_section_unavailable(tiny):
    tables = {n: df for n, df in tiny.tables.items() if n != "appointments"}
    kpis = monthly_kpis(replace(tiny, tables=tables), "2026-02-28", min_count=1)
    section = kpis.to_dict()["sections"]["no_show"]
    assert section["available"] is False and "appointments" in section["reason"]
    assert kpis.headline("en").iloc[5, 1] == "–"


def test_registry_adds_sections(tiny):
    @register_section("test_visits_total")
    def _visits_total(month, min_count):
        return {"visits": int(len(month.clinic.visits))}

    try:
        with pytest.raises(ValueError, match="already registered"):
            register_section("test_visits_total", _visits_total)
        kpis = monthly_kpis(tiny, "2026-02-28", sections=["patients", "test_visits_total"])
        assert list(kpis.sections) == ["patients", "test_visits_total"]
        assert kpis.sections["test_visits_total"] == {"available": True, "visits": 4}  # snapshot: no March visit
        with pytest.raises(KeyError, match="unknown KPI sections"):
            monthly_kpis(tiny, "2026-02-28", sections=["nope"])
    finally:
        SECTIONS.pop("test_visits_total", None)


def test_json_is_deterministic_and_round_trips(tiny, tmp_path):
    first, second = monthly_kpis(tiny, "2026-02-28"), monthly_kpis(tiny, "2026-02-28")
    assert first.to_json() == second.to_json()
    text = first.to_json()
    assert text.endswith("\n") and json.loads(text)["schema_version"] == 1
    assert list(json.loads(text)) == sorted(json.loads(text))
    path = tmp_path / KPIS_FILE
    path.write_text(text, encoding="utf-8")
    assert MonthlyKpis.read(path) == first
    with pytest.raises(ValueError, match="schema_version"):
        MonthlyKpis.from_dict({**first.to_dict(), "schema_version": 99})


def test_kpis_for_report_prefers_the_runs_file(tiny, tmp_path):
    run = monthly_kpis(tiny, "2026-02-28", min_count=1)
    (tmp_path / KPIS_FILE).write_text(run.to_json(), encoding="utf-8")
    assert kpis_for_report(Month(tiny, "2026-02-28"), tmp_path).min_count == 1  # the run's threshold, read back
    assert kpis_for_report(Month(tiny, "2026-01-31"), tmp_path).month == "2026-01"  # another month: computed
    assert kpis_for_report(Month(tiny, "2026-02-28"), Path(tmp_path / "none")).min_count == 5


def test_display_tables_in_both_languages(demo_clinic):
    kpis = monthly_kpis(demo_clinic, "2026-10-31")
    assert kpis.headline("ko").shape == (14, 2) and "활성 환자" in kpis.headline("ko").iloc[0, 0]
    dept = kpis.department_table("en")
    assert list(dept.columns)[:3] == ["department", "visits", "patients"] and dept.iloc[-1, 0] == "total"
    assert "<table" in kpis._repr_html_() and "<table" in kpis.department_view("ko").to_html()
    import matplotlib

    matplotlib.use("Agg")
    ax = kpis.plot_trend("en")
    assert len(ax.patches) == 24


@pytest.fixture(autouse=True)
def _core_sections_only(monkeypatch):
    """Sections registered by analysis modules (e.g. by a monthly run earlier in the session) are not tested here."""
    from crm_analysis.monthly import kpis

    keep = (*kpis.CORE_SECTIONS, *kpis.ANALYSIS_SECTIONS)
    monkeypatch.setattr(kpis, "SECTIONS", {k: v for k, v in kpis.SECTIONS.items() if k in keep})


# --------------------------------------------------------------------------- the analysis sections

AS_OF = pd.Timestamp("2026-10-31")


@pytest.fixture(scope="module")
def demo_kpis(demo_clinic):
    """The demo clinic's October KPIs (core and analysis sections), computed once."""
    return monthly_kpis(demo_clinic, AS_OF, sections=[*CORE_SECTIONS, *ANALYSIS_SECTIONS])


def test_reminder_effect_on_the_demo_clinic(demo_kpis, demo_clinic, demo_synth):
    s = demo_kpis.sections["reminder_effect"]
    truth = demo_synth.truth["reminders"]["rollout_periods"]["3d+1d+2h"]["risk_difference"]
    print(f"reminder effect {s['risk_difference']} [{s['ci_low']}, {s['ci_high']}], truth {truth:.4f}")
    assert s["available"] and s["regime"] == "3d+1d+2h" and s["regime_since"] == "2025-09-01"
    assert s["ci_low"] <= truth <= s["ci_high"] and s["ci_high"] < 0
    # independently: the eligible (booked >= 3 days ahead), non-cancelled appointments since the roll-out
    a = demo_clinic.snapshot(AS_OF).appointments
    lead = (a["scheduled_at"].dt.normalize() - a["booked_at"].dt.normalize()).dt.days
    since = (a["scheduled_at"] >= "2025-09-01") & (a["scheduled_at"] < AS_OF + pd.Timedelta(days=1))
    n = int((since & (lead >= 3) & a["status"].isin(["attended", "no_show"])).sum())
    print(f"appointments in the estimate {s['appointments']}, direct count {n}")
    assert s["appointments"] == n
    assert s["rate_with_reminders"] - s["rate_without_reminders"] == pytest.approx(s["risk_difference"], abs=2e-4)
    assert s["no_show_month"] == demo_kpis.sections["no_show"]["month"]
    assert 0 < s["reminded_share_month"] < 1
    # what the regime keeps per booking, cancelled bookings included: visits, with the cancellations beside them
    kept = demo_synth.truth["reminders"]["rollout_periods"]["3d+1d+2h"]["per_booking"]
    print(f"extra visits per booking {s['extra_visits_per_booking']} [{s['visits_ci_low']}, {s['visits_ci_high']}], "
          f"truth {kept['extra_visits']:.4f}; extra cancellations {s['extra_cancellations_per_booking']}, truth "
          f"{kept['extra_cancellations']:.4f}; {s['bookings']} bookings")
    assert s["visits_ci_low"] <= kept["extra_visits"] <= s["visits_ci_high"]
    assert s["cancellations_ci_low"] <= kept["extra_cancellations"] <= s["cancellations_ci_high"]
    assert s["extra_visits_per_booking"] == pytest.approx(
        s["no_shows_avoided_per_booking"] - s["extra_cancellations_per_booking"], abs=2e-4)
    assert s["bookings"] == kept["n"] and s["slot_refill_rate"] == 0


def test_vip_on_the_demo_clinic(demo_kpis, demo_clinic):
    from crm_analysis.features import patient_features
    from crm_analysis.value.segmentation import assign_segments, rfm_scores
    from crm_analysis.value.vip import select_vips

    s = demo_kpis.sections["vip"]
    before = pd.Timestamp("2026-09-30")
    feats = {t: patient_features(demo_clinic, t) for t in (before, AS_OF)}
    chosen = {t: set(v.index[v["selected"]]) for t, v in ((t, select_vips(f, t)) for t, f in feats.items())}
    print(f"VIPs {s['count_before']} -> {s['count']} (+{s['entered']} / -{s['left']})")
    assert s["before_as_of"] == "2026-09-30"
    assert s["count"] == len(chosen[AS_OF]) and s["count_before"] == len(chosen[before])
    assert s["entered"] == len(chosen[AS_OF] - chosen[before]) and s["left"] == len(chosen[before] - chosen[AS_OF])
    sizes = {t: assign_segments(rfm_scores(f))["segment"].astype(str).value_counts() for t, f in feats.items()}
    seg_now, seg_before = (assign_segments(rfm_scores(feats[t]))["segment"].astype(str) for t in (AS_OF, before))
    stayed = (seg_before == seg_now.reindex(seg_before.index)).groupby(seg_before).sum()
    for row in s["segments"]:
        assert row["patients_now"] == sizes[AS_OF].get(row["segment"], 0)
        assert row["patients_before"] == sizes[before].get(row["segment"], 0)
        assert row["stayed"] == stayed.get(row["segment"], 0)
    assert s["new_patients_since"] == len(feats[AS_OF]) - len(feats[before])


def test_campaign_lifts_on_the_demo_clinic(demo_kpis, demo_clinic, demo_synth):
    s = demo_kpis.sections["campaigns"]
    assert s["window_days"] == 30 and s["last_month"]["rows"] == []  # no campaign was sent in September 2026
    rows = {r["kind"]: r for r in s["last_12m"]["rows"]}
    assert set(rows) == {"BIRTHDAY", "RECALL", "VIP"}
    # independently: each contact sent 2025-11-01 .. 2026-09-30 returns if any visit in (send day, send day + 30]
    c = demo_clinic.contacts
    c = c[(c["sent_at"] >= "2025-11-01") & (c["sent_at"].dt.normalize() + pd.Timedelta(days=30) <= AS_OF)]
    c = c.assign(day=c["sent_at"].dt.normalize(), kind=c["campaign_id"].astype(str).str.split("-").str[0],
                 patient_id=c["patient_id"].astype(str))
    v = demo_clinic.visits[["patient_id", "visit_date"]].assign(patient_id=lambda d: d["patient_id"].astype(str))
    m = c[["contact_id", "patient_id", "day"]].merge(v, on="patient_id")
    hit = m[(m["visit_date"] > m["day"]) & (m["visit_date"] <= m["day"] + pd.Timedelta(days=30))]
    c = c.assign(returned=c["contact_id"].isin(hit["contact_id"]))
    by = c.groupby(["kind", "arm"], observed=True)["returned"].agg(["size", "sum", "mean"])
    recall = rows["RECALL"]
    lift = by.loc[("RECALL", "sent"), "mean"] - by.loc[("RECALL", "holdout"), "mean"]
    print(f"RECALL lift {recall['lift']} [{recall['ci_low']}, {recall['ci_high']}], direct {lift:.4f}; "
          f"pooled {s['last_12m']['overall']['lift']}")
    assert recall["n_sent"] == by.loc[("RECALL", "sent"), "size"] and recall["n_holdout"] == by.loc[("RECALL", "holdout"), "size"]
    assert recall["lift"] == round(lift, 4) and recall["ci_low"] < lift < recall["ci_high"]
    # small counts: BIRTHDAY's holdout returns are 1-4, so hidden, with a second cell so the total cannot give it away
    assert 0 < by.loc[("BIRTHDAY", "holdout"), "sum"] < 5 and rows["BIRTHDAY"]["returned_holdout"] is None
    assert rows["BIRTHDAY"]["lift"] is None and rows["BIRTHDAY"]["rate_holdout"] is None
    hidden = [r["returned_holdout"] for r in rows.values()].count(None)
    assert hidden >= 2 or s["last_12m"]["overall"]["returned_holdout"] is None
    assert s["last_12m"]["overall"]["n_sent"] == int(c["arm"].eq("sent").sum())


def test_analysis_sections_without_their_tables(tiny):
    """The tiny clinic has no reminders or contacts: explicit 'not available' entries, not failures."""
    kpis = monthly_kpis(tiny, "2026-02-28", min_count=1)
    s = kpis.to_dict()["sections"]
    assert s["reminder_effect"]["available"] is False and "reminders" in s["reminder_effect"]["reason"]
    assert s["campaigns"]["available"] is False and "contacts" in s["campaigns"]["reason"]
    assert s["vip"]["available"] is False and s["vip"]["count"] is None  # three patients: too few to rank
    assert "at least 20 patients with a visit, the data has 3" in s["vip"]["reason"]
    no_appts = replace(tiny, tables={n: df for n, df in tiny.tables.items() if n != "appointments"})
    gone = monthly_kpis(no_appts, "2026-02-28", min_count=1).to_dict()["sections"]["reminder_effect"]
    assert gone["available"] is False and "appointments" in gone["reason"]
    head = kpis.headline("en").set_index("indicator")["value"]
    assert head[label_en("kpi_reminder_effect")] == "–" and head[label_en("kpi_campaign_lift")] == "–"
    with pytest.raises(InsufficientDataError, match="contacts"):
        kpis.campaign_table("en")


def label_en(key):
    from crm_analysis.i18n import label

    return label(key, "en")


def test_analysis_sections_are_json_ready_and_deterministic(demo_kpis, demo_clinic):
    again = monthly_kpis(demo_clinic, AS_OF, sections=list(ANALYSIS_SECTIONS))
    text = demo_kpis.to_json()
    assert json.loads(text)["sections"]["vip"] == json.loads(again.to_json())["sections"]["vip"]
    for name in ANALYSIS_SECTIONS:
        assert again.sections[name] == demo_kpis.sections[name], name
    assert MonthlyKpis.from_dict(json.loads(text)) == demo_kpis


def test_analysis_section_display(demo_kpis):
    head = demo_kpis.headline("en").set_index("indicator")["value"]
    rem = demo_kpis.sections["reminder_effect"]
    assert head[label_en("kpi_reminder_effect")].startswith(f"{rem['risk_difference'] * 100:+.1f}%p")
    assert head[label_en("kpi_vip_count")] == f"{demo_kpis.sections['vip']['count']:,}"
    camp = demo_kpis.campaign_table("en")
    assert list(camp["campaign"]) == ["Birthday", "Recall", "VIP invitation", "total"]  # kinds by their names
    assert list(demo_kpis.campaign_table("ko")["캠페인"])[:3] == ["생일 축하", "재내원 안내", "VIP 초대"]
    assert camp["sent"].iloc[-1] == demo_kpis.sections["campaigns"]["last_12m"]["overall"]["n_sent"]
    seg = demo_kpis.vip_segment_table("ko")
    assert "챔피언" in "".join(seg.iloc[:, 0]) or len(seg) == len(demo_kpis.sections["vip"]["segments"])
    assert "<table" in demo_kpis.campaign_view("ko").to_html() and "<table" in demo_kpis.vip_segment_view("en").to_html()


def test_department_charges_are_hidden_with_a_hidden_patient_count(demo_clinic):
    """Three patients can make five visits: their department's charges must not show then either."""
    plain = monthly_kpis(demo_clinic, "2026-10-31", sections=["revenue_by_department"], min_count=1)
    rows = plain.to_dict()["sections"]["revenue_by_department"]["rows"]
    row = min((r for r in rows if r["visits"] > r["patients"]), key=lambda r: r["patients"])
    threshold = row["patients"] + 1  # the patient count is small, the visit count is not
    shown = monthly_kpis(demo_clinic, "2026-10-31", sections=["revenue_by_department"], min_count=threshold)
    section = shown.to_dict()["sections"]["revenue_by_department"]
    print(f"{row['department']}: {row['patients']} patients, {row['visits']} visits; min_count {threshold}")
    for r in section["rows"]:
        if r["patients"] is None or r["visits"] is None:
            assert r["insured"] is None and r["self_pay"] is None and r["total"] is None, r
    hidden = [r for r in section["rows"] if r["total"] is None]
    assert len(hidden) != 1 and next(r for r in section["rows"] if r["department"] == row["department"])["total"] is None
    assert section["suppressed_rows"] == sum(r["patients"] is None or r["visits"] is None for r in section["rows"])


def test_vip_moves_cannot_be_worked_out_from_the_others(demo_kpis, demo_clinic):
    """count = count_before + entered - left: a lone hidden number of the four would be their sum."""
    s = demo_kpis.sections["vip"]
    keys = ("count", "count_before", "entered", "left")
    smallest = min(s[k] for k in keys if s[k])
    shown = monthly_kpis(demo_clinic, AS_OF, sections=["vip"], min_count=smallest + 1).sections["vip"]
    print(f"VIP moves at min_count {smallest + 1}: {[shown[k] for k in keys]} (unsuppressed {[s[k] for k in keys]})")
    assert sum(shown[k] is None for k in keys) >= 2
    for k in keys:
        assert shown[k] is None or shown[k] == s[k]


def test_a_lone_hidden_vip_move_takes_its_partner():
    from crm_analysis.value.monthly import _hide_partner as _hide_vip_partner

    assert _hide_vip_partner({"count": 100, "count_before": 97, "entered": None, "left": 7}) == \
        {"count": 100, "count_before": 97, "entered": None, "left": None}
    assert _hide_vip_partner({"count": None, "count_before": 12, "entered": 0, "left": 9})["count_before"] is None
    both = {"count": 100, "count_before": 100, "entered": None, "left": None}
    assert _hide_vip_partner(both) == both


def test_first_visits_fill_a_missing_first_visit_date_with_the_earliest_visit(demo_clinic):
    """A patient without ``first_visit_date`` counts from their earliest visit; one without either is left out."""
    from crm_analysis.monthly.core import first_visits

    patients = demo_clinic.patients.copy()
    patients.loc[patients.index[::3], "first_visit_date"] = pd.NaT
    never = patients["patient_id"].iloc[0]  # missing its date and (below) its visits
    visits = demo_clinic.visits[demo_clinic.visits["patient_id"] != never]
    clinic = replace(demo_clinic, tables={**demo_clinic.tables, "patients": patients, "visits": visits})
    earliest = visits.groupby("patient_id", observed=True)["visit_date"].min()
    expected = patients.set_index("patient_id")["first_visit_date"]
    expected = expected.fillna(earliest.reindex(expected.index)).dropna()
    got = first_visits(clinic)
    pd.testing.assert_series_equal(got, expected)
    assert never not in got.index and got.notna().all()
    assert demo_clinic.patients["first_visit_date"].notna().sum() > patients["first_visit_date"].notna().sum()


def test_trend_counts_visits_and_distinct_patients_per_month_as_pandas_does(demo_clinic):
    from crm_analysis.monthly.core import trend_kpis

    as_of = demo_clinic.as_of.to_period("M").start_time - pd.Timedelta(days=1)
    snap = demo_clinic.snapshot(as_of)
    rows = {r["month"]: r for r in trend_kpis(snap, as_of, min_count=1)["rows"]}
    v = snap.visits
    v = v[(v["visit_date"] >= (as_of.to_period("M") - 11).start_time) & (v["visit_date"] <= as_of)]
    by_month = v.groupby(v["visit_date"].dt.to_period("M").astype(str))["patient_id"].agg(["size", "nunique"])
    assert len(rows) == 12 and len(by_month) == 12
    for month, row in by_month.iterrows():
        assert (rows[month]["visits"], rows[month]["patients"]) == (row["size"], row["nunique"])
