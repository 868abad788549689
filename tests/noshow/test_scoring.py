"""score_appointments: the daily job's list of upcoming appointments, without look-ahead."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from crm_analysis.noshow import NoShowRiskModel, score_appointments

AS_OF = "2026-10-20"


@pytest.fixture(scope="module")
def scored(generated_clinic):
    return score_appointments(generated_clinic, AS_OF)


def test_scores_every_appointment_still_booked_after_as_of(scored, generated_clinic):
    a = generated_clinic.appointments
    end = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    cancelled_by_then = (a["cancelled_at"] < end).fillna(False)
    expected = a.loc[((a["scheduled_at"] >= end) & (a["booked_at"] < end) & ~cancelled_by_then).to_numpy(),
                     "appointment_id"]
    assert scored.index.name == "appointment_id"
    assert set(scored.index) == set(expected.astype(str))
    assert {"no_show_risk", "risk_reason", "risk_decile"} <= set(scored.columns)
    assert scored["no_show_risk"].between(0, 1).all()
    assert scored["no_show_risk"].is_monotonic_decreasing
    assert scored["risk_decile"].between(1, 10).all()
    assert scored["risk_reason"].map(type).eq(str).all() and scored["risk_reason"].str.len().gt(0).all()
    print("\n" + scored.head(5)[["scheduled_at", "no_show_risk", "risk_decile", "risk_reason"]].to_string())


def test_later_outcomes_do_not_change_the_scores(scored, generated_clinic):
    """No look-ahead: rewriting everything that happened after as_of leaves the list unchanged."""
    a = generated_clinic.appointments.copy()
    end = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    later = ((a["scheduled_at"] >= end) & ~(a["cancelled_at"] < end).fillna(False)).to_numpy()
    a["status"] = a["status"].astype(object)
    a.loc[later, "status"] = "no_show"
    a.loc[later, "cancelled_at"] = pd.NaT
    tables = dict(generated_clinic.tables, appointments=a)
    altered = dataclasses.replace(generated_clinic, tables=tables)
    again = score_appointments(altered, AS_OF)
    pd.testing.assert_frame_equal(scored.sort_index(), again.sort_index())


def test_a_fitted_model_is_reused_and_english_reasons(scored, generated_clinic, ns_table):
    train = ns_table.loc[(ns_table["scheduled_at"] < pd.Timestamp(AS_OF) + pd.Timedelta(days=1)).to_numpy()]
    model = NoShowRiskModel().fit(train)
    en = score_appointments(generated_clinic, AS_OF, model=model, lang="en")
    assert set(en.index) == set(scored.index)
    assert np.isfinite(en["no_show_risk"]).all()
    # every reason is in English, departments by their English names (the demo's are all in departments.yaml)
    assert not en["risk_reason"].str.contains("[가-힣]").any()
    ko = score_appointments(generated_clinic, AS_OF, model=model).loc[en.index]
    by_department = ko["risk_reason"] == ko["department"].astype(str) + " 진료"
    assert (~en.loc[by_department, "risk_reason"].str.contains("[가-힣]")).all()
