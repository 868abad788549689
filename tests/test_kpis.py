"""Monthly KPIs: by hand on a tiny clinic, independently on the demo clinic, no look-ahead, registry, JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from crm_analysis import load_clinic
from crm_analysis.kpis import (KPIS_FILE, SECTIONS, MonthlyKpis, kpis_for_report, monthly_kpis,
                               register_section)

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
    assert s["retention"]["base"] == 0 and s["retention"]["rate"] is None
    assert s["retention"]["history_complete"] is False
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
    def _visits_total(clinic, as_of, min_count):
        return {"visits": int(len(clinic.visits))}

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
    assert kpis_for_report(tiny, "2026-02-28", tmp_path).min_count == 1  # the run's threshold, read back
    assert kpis_for_report(tiny, "2026-01-31", tmp_path).month == "2026-01"  # another month: computed
    assert kpis_for_report(tiny, "2026-02-28", Path(tmp_path / "none")).min_count == 5


def test_display_tables_in_both_languages(demo_clinic):
    kpis = monthly_kpis(demo_clinic, "2026-10-31")
    assert kpis.headline("ko").shape == (8, 2) and "활성 환자" in kpis.headline("ko").iloc[0, 0]
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
    from crm_analysis import kpis

    monkeypatch.setattr(kpis, "SECTIONS", {k: v for k, v in kpis.SECTIONS.items() if k in kpis.CORE_SECTIONS})
