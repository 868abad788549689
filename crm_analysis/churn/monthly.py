"""Churn for the monthly run: the ``churn`` KPI section and the front desk's recall list.

- :func:`churn_kpis`: patients, churned, churn rate and recall candidates (small counts hidden);
- :func:`recall_outreach`: the ranked recall list with name and phone, for staff (never a report).

Both take the month's fitted model and recall table when given (the monthly
run fits them once, :class:`crm_analysis.monthly.Month`) and fit them
otherwise. The run registers them in :mod:`crm_analysis.monthly.kpis` and
its outreach lists.
"""

from __future__ import annotations

import pandas as pd

from crm_analysis.churn.cache import fitted_model
from crm_analysis.churn.definition import calibration_note, churn_status
from crm_analysis.churn.model import ChurnModel
from crm_analysis.churn.recall import recall_candidates, recall_table
from crm_analysis.churn.rules import load_churn_rules
from crm_analysis.figures import shown_count

__all__ = ["churn_kpis", "recall_outreach", "CHURN_FIGURES"]

#: The headline figures (``null`` in kpis.json when the section is skipped).
CHURN_FIGURES = ("patients", "at_risk", "churned", "churn_rate", "recall_candidates")


def churn_kpis(clinic, as_of, min_count: int = 5, *, model: ChurnModel | None = None,
               recall: pd.DataFrame | None = None, rules=None, backtest=None) -> dict:
    """The month's churn figures: patients, churned, churn rate and recall candidates (small counts hidden).

    Parameters
    ----------
    clinic : ClinicData
        As known at `as_of`.
    as_of : str or Timestamp
    min_count : int
        Counts from 1 to ``min_count − 1`` become None, and so do rates built on them.
    model : ChurnModel, optional
        Fitted at `as_of` with `rules` (the default model is fitted, once per clinic and day, when omitted).
    recall : DataFrame, optional
        :func:`~crm_analysis.churn.recall_table` from `model` (made here when omitted).
    rules : path, mapping or None
        Churn rules.
    backtest : BacktestResult, optional
        The churn back-test at the churn horizon (the month's ``churn_backtest``): the churn figures are given
        only when it shows calibrated probabilities (:func:`~crm_analysis.churn.churn_status`).

    Returns
    -------
    dict
        ``definition``, ``calibration`` (one line: the back-test's decile calibration errors, or "not
        checked"), ``patients``, ``at_risk`` (probability of returning below the recall band's top;
        the churned are among them), ``churned``, ``churn_rate``, ``recall_candidates``, ``recall_band``.

    Raises
    ------
    InsufficientDataError
        If the back-test shows the probabilities too poorly calibrated to threshold (the run skips the section).
    """
    as_of = pd.Timestamp(as_of).normalize()
    rules = load_churn_rules(rules)
    if model is None:
        model = fitted_model(clinic, as_of) if rules["model"] == load_churn_rules(None)["model"] \
            else ChurnModel(rules=rules).fit(clinic, as_of)
    status = churn_status(model, rules=rules, backtest=backtest)
    table = recall if recall is not None else recall_table(clinic, as_of, model=model, rules=rules)
    n, churned = len(status), int(status["churned"].sum())
    top = max(float(rules["recall"]["band"][1]), float(rules["churn"]["max_return_probability"]))
    at_risk = int((status["churned"] | (status["p_return"] < top)).sum())  # the churned counted among them
    shown_n, shown_c = shown_count(n, min_count), shown_count(churned, min_count)
    return {"definition": f"P(return within {rules['churn']['horizon_days']}d) < "
                          f"{rules['churn']['max_return_probability']}",
            "calibration": calibration_note(status),
            "patients": shown_n, "at_risk": shown_count(at_risk, min_count), "at_risk_below": top,
            "churned": shown_c,
            "churn_rate": round(churned / n, 4) if shown_n and shown_c is not None and n else None,
            "recall_candidates": shown_count(int(table["candidate"].sum()), min_count),
            "recall_band": [float(x) for x in rules["recall"]["band"]], "recall_select": rules["recall"]["select"]}


def recall_outreach(clinic, as_of, *, candidates: pd.DataFrame | None = None) -> pd.DataFrame:
    """The recall list for staff: rank, patient id, name, phone, last visit, reason (Korean).

    Parameters
    ----------
    clinic : ClinicData
    as_of : str or Timestamp
    candidates : DataFrame, optional
        :func:`~crm_analysis.churn.recall_candidates` (made with the default model when omitted).
    """
    as_of = pd.Timestamp(as_of).normalize()
    cand = candidates if candidates is not None else recall_candidates(clinic, as_of,
                                                                       model=fitted_model(clinic, as_of))
    people = clinic.patients.assign(patient_id=clinic.patients["patient_id"].astype(str)).set_index("patient_id")
    cols = [c for c in ("name", "phone") if c in people.columns]
    out = cand[["rank", "patient_id", "last_visit_date", "reason"]].join(people[cols], on="patient_id")
    return out[["rank", "patient_id", *cols, "last_visit_date", "reason"]]
