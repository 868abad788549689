"""Reusing a fitted model: it pickles without changing a prediction, and a few patients score as in the whole clinic."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

from crm_analysis.noshow import NoShowRiskModel, fit_noshow_model, score_appointments
from tests.noshow.conftest import TRUE_FORM

AS_OF = "2026-10-20"


@pytest.fixture(scope="module")
def month_model(generated_clinic):
    return fit_noshow_model(generated_clinic, AS_OF, train_months=12)


@pytest.mark.parametrize("formula", [None, TRUE_FORM], ids=["default", "true_form"])
def test_a_pickled_model_predicts_exactly_the_same(ns_table, ns_model, formula):
    model = ns_model if formula is None else NoShowRiskModel(formula).fit(ns_table)
    again = pickle.loads(pickle.dumps(model))
    assert "design_info_" not in model.__getstate__()
    assert list(again.design_info_.column_names) == list(model.design_info_.column_names)
    pd.testing.assert_series_equal(again.predict(ns_table), model.predict(ns_table), check_exact=True)
    pd.testing.assert_series_equal(again.reasons(ns_table, "en"), model.reasons(ns_table, "en"))
    assert (again.risk_decile(model.predict(ns_table)) == model.risk_decile(model.predict(ns_table))).all()


def test_the_fitted_model_is_the_one_scoring_fits(generated_clinic, month_model):
    fresh = score_appointments(generated_clinic, AS_OF, train_months=12)
    reused = score_appointments(generated_clinic, AS_OF, model=pickle.loads(pickle.dumps(month_model)))
    pd.testing.assert_frame_equal(fresh, reused, check_exact=True)


def test_a_few_patients_score_as_in_the_whole_clinic(generated_clinic, month_model):
    whole = score_appointments(generated_clinic, AS_OF, model=month_model)
    tomorrow = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    ids = whole.loc[whole["scheduled_at"].dt.normalize() == tomorrow, "patient_id"].astype(str).unique()
    assert len(ids) > 5
    few = score_appointments(generated_clinic, AS_OF, model=month_model, patients=ids)
    expected = whole.loc[whole["patient_id"].astype(str).isin(ids)]
    assert set(few.index) == set(expected.index)
    # the same features and model; the design rows are multiplied in other memory positions, so a risk may
    # differ in its last bit (~1e-17)
    pd.testing.assert_frame_equal(few.sort_index(), expected.sort_index(), check_exact=False, rtol=1e-12, atol=0)


def test_scoring_a_few_patients_needs_a_fitted_model(generated_clinic):
    with pytest.raises(ValueError, match="needs a fitted model"):
        score_appointments(generated_clinic, AS_OF, patients=["P1"])
