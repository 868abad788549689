"""Survival-style churn and recall targeting.

Patients never cancel; they stop coming. This subpackage models the time from
a visit to the next one (right-censored at ``as_of``) and turns it into a
churn definition and a recall list:

- :func:`survival_data`, :func:`current_gaps`: one row per gap between visits;
- :func:`return_curves`: Kaplan–Meier return curves by group, with medians;
- :class:`ChurnModel`: Cox model (hazard ratios, PH check) with a Weibull AFT
  alternative, and per-patient predictions conditional on the time elapsed;
- :func:`churn_status`, :func:`churn_by_segment`: the explicit churn definition;
- :func:`backtest`: fit at a cut-off, observe the next horizon, compare with
  baselines;
- :func:`recall_candidates`: the ranked recall list with exclusions.

Rules (churn threshold, recall band, exclusions, model settings) are in
``crm_analysis/rules/churn.yaml``; see ``docs/churn.md``.
"""

from crm_analysis.churn.backtest import BacktestResult, backtest
from crm_analysis.churn.curves import ReturnCurves, return_curves
from crm_analysis.churn.definition import churn_by_segment, churn_definition_sentence, churn_status, patient_segments
from crm_analysis.churn.model import HORIZONS, ChurnModel
from crm_analysis.churn.views import churn_view
from crm_analysis.churn.recall import recall_candidates, recall_counts, recall_table
from crm_analysis.churn.rules import load_churn_rules
from crm_analysis.churn.survival_data import PREDICTION_COVARIATES, TRUTH_COVARIATES, current_gaps, survival_data
from crm_analysis.churn.uplift import ContactResponse, expected_uplift, learn_contact_response

__all__ = [
    "survival_data",
    "current_gaps",
    "TRUTH_COVARIATES",
    "PREDICTION_COVARIATES",
    "return_curves",
    "ReturnCurves",
    "ChurnModel",
    "HORIZONS",
    "churn_status",
    "churn_by_segment",
    "churn_definition_sentence",
    "patient_segments",
    "backtest",
    "BacktestResult",
    "recall_candidates",
    "recall_table",
    "recall_counts",
    "load_churn_rules",
    "churn_view",
    "ContactResponse", "learn_contact_response", "expected_uplift",
]
