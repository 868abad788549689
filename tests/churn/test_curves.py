"""Kaplan–Meier return curves: against a direct lifelines fit, small groups left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.churn import return_curves
from crm_analysis.exceptions import CrmAnalysisError


def test_medians_and_rates_match_a_direct_kaplan_meier(churn_gaps):
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    curves = return_curves(churn_gaps, "main_department")
    table = curves.table.set_index("group")
    assert set(table.index) == set(churn_gaps["main_department"].astype(str))
    part = churn_gaps[(churn_gaps["main_department"] == "피부과") & (churn_gaps["duration"] > 0)]
    kmf = KaplanMeierFitter().fit(part["duration"], part["event"])
    row = table.loc["피부과"]
    assert row["median_days"] == kmf.median_survival_time_
    ci = median_survival_times(kmf.confidence_interval_survival_function_)
    assert (row["median_lower"], row["median_upper"]) == (ci.iloc[0, 0], ci.iloc[0, 1])
    assert row["p_return_90d"] == pytest.approx(1 - kmf.predict(90), abs=1e-12)
    assert row["n_patients"] == part["patient_id"].nunique() and row["returns"] == part["event"].sum()
    c = curves.curves["피부과"]
    assert (c["lower"] <= c["survival"] + 1e-12).all() and (c["survival"] <= c["upper"] + 1e-12).all()


def test_groups_from_a_patient_series_and_small_groups_left_out(churn_gaps):
    patients = churn_gaps["patient_id"].unique()
    labels = pd.Series(np.where(np.arange(len(patients)) < 5, "tiny", "big"), index=patients, name="segment")
    curves = return_curves(churn_gaps, labels, min_patients=10)
    assert list(curves.table["group"]) == ["big"] and curves.left_out == 1
    assert curves.by == "segment"
    assert "1 small group(s) left out" in curves._repr_html_()


def test_bad_grouping_is_a_clear_error(churn_gaps):
    with pytest.raises(CrmAnalysisError, match="cannot group return curves by 'colour'"):
        return_curves(churn_gaps, "colour")


def test_plot_has_one_line_per_group(churn_gaps):
    import matplotlib.pyplot as plt

    curves = return_curves(churn_gaps, "department")
    ax = curves.plot(lang="en")
    assert len(ax.get_lines()) == len(curves.table)
    plt.close("all")
