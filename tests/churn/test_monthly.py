"""Churn in the monthly run: the churn KPI section and the recall outreach list."""

from __future__ import annotations

import pytest

from crm_analysis.churn import recall_candidates, recall_table
from crm_analysis.churn.monthly import churn_kpis, recall_outreach
from tests.conftest import DEMO_END


def test_kpis_and_outreach_agree_with_the_analysis(churn_clinic, churn_model, monkeypatch):
    from crm_analysis.churn import cache

    # the hooks share one model per (clinic, as_of); hand them the already fitted one
    monkeypatch.setattr(cache, "_ENTRIES", [(churn_clinic, DEMO_END, churn_model)])
    kpis = churn_kpis(churn_clinic, DEMO_END)
    assert kpis["patients"] == 1_500 and kpis["definition"] == "P(return within 180d) < 0.2"
    assert 0 < kpis["churn_rate"] < 1 and kpis["recall_candidates"] > 0
    staff = recall_outreach(churn_clinic, DEMO_END)
    assert list(staff.columns) == ["rank", "patient_id", "name", "phone", "last_visit_date", "reason"]
    assert len(staff) == kpis["recall_candidates"]
    assert set(staff["patient_id"]) == set(recall_candidates(churn_clinic, DEMO_END, model=churn_model)["patient_id"])


def test_given_model_and_recall_table_are_used_as_they_are(churn_clinic, churn_model):
    from crm_analysis.churn import recall_table

    table = recall_table(churn_clinic, DEMO_END, model=churn_model)
    chosen = table.index[table["candidate"].to_numpy()]
    fewer = table.assign(candidate=table.index.isin(chosen[: len(chosen) // 2]))
    kpis = churn_kpis(churn_clinic, DEMO_END, model=churn_model, recall=fewer)
    assert kpis["recall_candidates"] == int(fewer["candidate"].sum()) < int(table["candidate"].sum())
    cand = recall_candidates(churn_clinic, DEMO_END, model=churn_model, table=fewer)
    assert len(recall_outreach(churn_clinic, DEMO_END, candidates=cand)) == len(cand) == kpis["recall_candidates"]


def test_shared_model_is_fitted_once_per_clinic_and_day(churn_clinic, churn_model, monkeypatch):
    from crm_analysis.churn import cache

    fits = []
    monkeypatch.setattr(cache, "_ENTRIES", [(churn_clinic, DEMO_END, churn_model)])
    monkeypatch.setattr(cache.ChurnModel, "fit", lambda self, clinic, as_of, gaps=None: fits.append(as_of) or self)
    assert cache.fitted_model(churn_clinic, DEMO_END) is churn_model
    assert cache.fitted_model(churn_clinic, "2026-10-31 15:00") is churn_model  # same day
    # recall without a model (default rules) reuses it: same candidates as with the model passed
    assert recall_candidates(churn_clinic, DEMO_END)["patient_id"].tolist() == \
        recall_candidates(churn_clinic, DEMO_END, model=churn_model)["patient_id"].tolist()
    assert fits == []
    other = churn_clinic.snapshot("2026-06-30")  # another object: its own model
    assert cache.fitted_model(other, "2026-06-30") is not churn_model and len(fits) == 1
    assert cache.fitted_model(other, "2026-06-30") is cache.fitted_model(other, "2026-06-30") and len(fits) == 1
    assert len(cache._ENTRIES) == cache.MAX_ENTRIES


def test_kpis_state_the_backtest_calibration(churn_clinic, churn_model, churn_backtest):
    from crm_analysis.exceptions import InsufficientDataError

    table = recall_table(churn_clinic, DEMO_END, model=churn_model)
    kpis = churn_kpis(churn_clinic, DEMO_END, model=churn_model, recall=table, backtest=churn_backtest)
    assert kpis["calibration"].startswith("back-test from 2026-04-30")
    assert churn_kpis(churn_clinic, DEMO_END, model=churn_model, recall=table)["calibration"].startswith("not checked")
    with pytest.raises(InsufficientDataError, match="calibration"):
        churn_kpis(churn_clinic, DEMO_END, model=churn_model, recall=table, backtest=churn_backtest,
                   rules={"churn": {"max_calibration_error": 0.0}})
