"""Data sufficiency: declared needs, the check, the skipped-section notes, and KPI sections that degrade."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import InsufficientDataError, MissingTableError
from crm_analysis.monthly.kpis import SECTIONS, monthly_kpis
from crm_analysis.report.sections import Skipped, attempt, skip_note
from crm_analysis.sufficiency import REQUIREMENTS, check, history_months, require, requirements_table
from tests.conftest import DEMO_END


def _visits_only(clinic: ClinicData, months: int | None = None, patients: int | None = None) -> ClinicData:
    """The clinic with only patients and visits, optionally the last `months` and the first `patients`."""
    visits, people = clinic.tables["visits"], clinic.tables["patients"]
    if months is not None:
        start = (pd.Timestamp(DEMO_END).to_period("M") - (months - 1)).start_time
        visits = visits.loc[(visits["visit_date"] >= start).to_numpy()]
    if patients is not None:
        keep = people["patient_id"].iloc[:patients]
        people = people.loc[people["patient_id"].isin(keep).to_numpy()]
        visits = visits.loc[visits["patient_id"].isin(keep).to_numpy()]
    return ClinicData(tables={"patients": people, "visits": visits}, as_of=clinic.as_of)


def test_every_kpi_section_and_notebook_analysis_is_declared():
    assert set(SECTIONS) <= set(REQUIREMENTS), set(SECTIONS) - set(REQUIREMENTS)
    table = requirements_table("en")
    assert list(table.columns) == ["analysis", "key", "tables", "columns", "min_history_months", "min_counts"]
    assert table["key"].is_unique and len(table) == len(REQUIREMENTS)


def test_the_full_demo_clinic_satisfies_every_requirement(demo_clinic):
    short = {name: check(name, demo_clinic, DEMO_END).reason("en") for name in REQUIREMENTS}
    assert not any(short.values()), {k: v for k, v in short.items() if v}


def test_history_months_counts_calendar_months_up_to_as_of(demo_clinic):
    assert history_months(_visits_only(demo_clinic, months=6), DEMO_END) == 6
    assert history_months(_visits_only(demo_clinic, months=6), "2026-08-15") == 4
    assert history_months(_visits_only(demo_clinic, months=6), "2025-01-31") == 0


def test_short_history_names_what_is_missing_in_both_languages(demo_clinic):
    result = check("clv_backtest", _visits_only(demo_clinic, months=6), DEMO_END)
    assert not result.ok
    en, ko = result.reason("en"), result.reason("ko")
    print(en, ko, sep="\n")
    assert en.startswith("CLV back-test: not enough data") and "18 months of visit history" in en and "has 6" in en
    assert "18개월" in ko and "6개월" in ko
    with pytest.raises(InsufficientDataError, match="18 months") as caught:
        require("clv_backtest", _visits_only(demo_clinic, months=6), DEMO_END)
    assert caught.value.analysis == "clv_backtest" and caught.value.reason_in("ko") == ko


def test_missing_table_is_reported_as_insufficient_data(demo_clinic):
    result = check("reminder_effect", _visits_only(demo_clinic), DEMO_END)
    assert "no appointments, reminders table" in result.reason("en")
    assert issubclass(MissingTableError, InsufficientDataError)


def test_small_counts_are_named_with_the_numbers(demo_clinic):
    tiny = _visits_only(demo_clinic, patients=12)
    reason = check("churn", tiny, DEMO_END).reason("en")
    assert "at least 30 patients with visits on two or more days" in reason


def test_a_column_without_values_is_named(demo_clinic):
    no_charges = ClinicData(tables={"patients": demo_clinic.patients,
                                    "visits": demo_clinic.visits.assign(charge_insured=pd.NA, charge_self_pay=pd.NA)},
                            as_of=demo_clinic.as_of)
    result = check("vip", no_charges, DEMO_END)
    assert "no insured charge (KRW) (visits.charge_insured) or self-pay charge (KRW) (visits.charge_self_pay)" \
        in result.reason("en")
    assert "급여 진료비(charge_insured) 또는 비급여 진료비(charge_self_pay) 값이 없습니다" in result.reason("ko")


def test_kpis_of_a_thin_clinic_give_null_figures_with_reasons(demo_clinic):
    thin = _visits_only(demo_clinic, months=3, patients=40)
    kpis = monthly_kpis(thin, DEMO_END).to_dict()["sections"]
    retention = kpis["retention"]
    assert retention["available"] is False
    assert retention["rate"] is None and retention["base"] is None and "24 months" in retention["reason"]
    assert "24개월" in retention["reason_ko"]
    for name in ("no_show", "reminder_effect", "campaigns"):
        assert kpis[name]["available"] is False and kpis[name]["reason"], name
    assert kpis["patients"]["available"] is True
    json.dumps(kpis)  # JSON-ready
    table = monthly_kpis(thin, DEMO_END).skipped_table("en")
    assert set(table["section"]) >= {"12-month retention", "No-show rate", "Reminder effect", "Campaign lifts"}
    reasons = dict(zip(table["section"], table["reason"]))  # the title and "not enough data" are not repeated
    assert reasons["12-month retention"].startswith("it needs 24 months of visit history up to 2026-10-31")


def test_kpi_views_of_a_skipped_section_raise_the_reason(demo_clinic):
    kpis = monthly_kpis(_visits_only(demo_clinic), DEMO_END, sections=["patients", "campaigns"])
    with pytest.raises(InsufficientDataError, match="contacts"):
        kpis.campaign_view("en")
    assert kpis.skipped_view("en") is not None
    full = monthly_kpis(demo_clinic, DEMO_END, sections=["patients"])
    assert full.skipped_view("en") is None


def test_skipped_stand_in_raises_the_original_error_when_used():
    err = InsufficientDataError("clv", "Lifetime value: not enough data — x.", "생애가치: 자료 부족.")
    stand_in = attempt(lambda: (_ for _ in ()).throw(err))
    assert isinstance(stand_in, Skipped)
    for use in (lambda s: s.summary(), bool, len, iter, lambda s: s["x"], lambda s: s or "a default"):
        with pytest.raises(InsufficientDataError) as caught:
            use(stand_in)
        assert caught.value is err
    assert attempt(lambda x: x + 1, 1) == 2


def test_skip_note_escapes_the_reason_and_carries_metadata():
    err = InsufficientDataError("referrals", "Word of mouth: <img src=x onerror=alert(1)> missing.", "입소문: <b>없음</b>")
    data, meta = skip_note(err, "en")
    assert "<img" not in data["text/html"] and "&lt;img" in data["text/html"]
    assert meta["crm_analysis_skipped"]["analysis"] == "referrals"
    again, _ = skip_note(err, "ko", again=True)
    assert "위에서 설명한" in again["text/plain"] and "<b>" not in again["text/html"]


@pytest.mark.parametrize("how", [
    # found by review: reminder steps always sent together on a small clinic made the GLM's design singular
    # (LinAlgError), and a huge standard error overflowed math.exp in the risk-ratio bounds (OverflowError)
    dict(months=7, patients=60, no_phones=True, seed=34788),
    dict(months=7, patients=35, seed=6),
], ids=["singular-design", "overflowing-ci"])
def test_reminder_analyses_on_small_clinics_skip_or_succeed(demo_synth, tmp_path, how):
    """What the KPI step and notebook 30 compute, on thinned clinics: a result or InsufficientDataError, never a crash."""
    from crm_analysis import load_clinic
    from crm_analysis.reminders import evaluate_reminders
    from tests.thinning import Thinning, thin_tables, write_export

    export = write_export(thin_tables(demo_synth.tables, Thinning(**how), DEMO_END), tmp_path / "export")
    clinic = load_clinic(export).snapshot(DEMO_END)
    kpis = monthly_kpis(clinic, DEMO_END, sections=["reminder_effect"]).to_dict()["sections"]["reminder_effect"]
    assert kpis["available"] or kpis["reason"]
    evaluation = attempt(evaluate_reminders, clinic, DEMO_END)
    for show in ("headline", "note_texts", "pilot_table", "planner_table", "comparison_table", "explain_crude",
                 "its_table", "schedule_table", "step_2h_sentence", "cost_table"):
        try:
            getattr(evaluation, show)("en")
        except InsufficientDataError as err:
            assert err.reason


def test_skip_reasons_on_the_kpi_page_are_escaped():
    from crm_analysis.monthly.kpis import MonthlyKpis

    hostile = "Reminder effect: the model failed (<img src=x onerror=alert(1)>)."
    kpis = MonthlyKpis("2026-10", "2026-10-31", 5, {"reminder_effect": {"available": False, "reason": hostile,
                                                                        "reason_ko": hostile}})
    html = kpis.skipped_view("en").to_html()
    assert "<img" not in html and "&lt;img" in html


def test_a_network_branch_keeps_its_patient_figures_without_retention():
    from crm_analysis.network.summary import _retention

    row = _retention({"patients": {"available": True, "active_12m": 40, "new_month": 6, "returning_month": 9},
                      "retention": {"available": False, "base": None, "retained": None, "rate": None}}, 5)
    assert row["available"] and row["active_12m"] == 40 and not row["retention_available"] and row["rate"] is None


def _reference_counts(clinic, as_of) -> dict:
    """The counters as they were written before they read only their columns (each copied the visits up to as_of)."""
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    v = clinic.tables["visits"]
    v = v.loc[(v["visit_date"] < end).fillna(False).to_numpy()]
    days = v[["patient_id", "visit_date"]].drop_duplicates()
    charged = v[["charge_insured", "charge_self_pay"]].astype("float64").fillna(0).sum(axis=1).gt(0).sum()
    return {"_patients_seen": int(v["patient_id"].nunique()),
            "_returning_patients": int((days.groupby("patient_id", observed=True).size() >= 2).sum()),
            "_charged_visits": int(charged)}


@pytest.mark.parametrize("as_of", [DEMO_END, "2025-02-15"])
def test_counters_reading_only_their_columns_equal_the_copying_reference(demo_clinic, as_of):
    from crm_analysis import sufficiency

    visits = demo_clinic.visits.copy()
    ids = visits["patient_id"].astype(object).to_numpy()
    ids[::37] = None  # missing ids count for no patient
    visits["patient_id"] = pd.array(ids, dtype=demo_clinic.visits["patient_id"].dtype)
    clinic = ClinicData(tables={**demo_clinic.tables, "visits": visits}, as_of=demo_clinic.as_of)
    for name, expected in _reference_counts(clinic, as_of).items():
        assert getattr(sufficiency, name)(clinic, pd.Timestamp(as_of)) == expected, name


def test_a_minimum_reached_on_the_first_rows_stops_there_and_a_shortfall_is_counted_exactly(demo_clinic, monkeypatch):
    from crm_analysis import sufficiency

    monkeypatch.setattr(sufficiency, "_PREFIXES", (500,))
    monkeypatch.setattr(sufficiency, "_COUNTED", [])
    read = []

    def returning(clinic, as_of):
        read.append(len(clinic.tables["visits"]))
        return sufficiency._returning_patients(clinic, as_of)

    day = pd.Timestamp(DEMO_END)
    exact = sufficiency._returning_patients(demo_clinic, day)
    assert 3 <= sufficiency._count(returning, demo_clinic, day, 3) < exact and read == [500]
    read.clear()
    assert sufficiency._count(returning, demo_clinic, day, exact + 1) == exact  # the shortfall names the true count
    assert read == [500, len(demo_clinic.visits)]
    read.clear()
    assert sufficiency._count(returning, demo_clinic, day, 3) == exact and read == []  # the exact count is kept
    result = check("churn", _visits_only(demo_clinic, patients=12), DEMO_END)  # short: the reason's number is exact
    assert f"the data has {sufficiency._returning_patients(_visits_only(demo_clinic, patients=12), day):,}" \
        in result.reason("en")
