"""Hooks for the monthly run: a churn KPI section and the recall outreach list.

Nothing is registered on import. The lead (or the monthly run's set-up) calls
:func:`register_monthly` once, which adds

- the KPI section ``churn`` (:func:`churn_kpis`) to :mod:`crm_analysis.kpis`;
- the outreach producer ``recall`` (:func:`recall_outreach`) to
  :mod:`crm_analysis.report.outreach`: the ranked recall list with name and
  phone for the front desk (a staff list, never a report).

Both use one churn model per (clinic, as_of), fitted once and remembered, so
the month fits it once however many hooks ask.
"""

from __future__ import annotations

import pandas as pd

from crm_analysis.churn.cache import fitted_model
from crm_analysis.churn.definition import churn_status
from crm_analysis.churn.model import ChurnModel
from crm_analysis.churn.recall import recall_candidates, recall_table
from crm_analysis.churn.rules import load_churn_rules

__all__ = ["churn_kpis", "recall_outreach", "register_monthly"]

def _model(clinic, as_of: pd.Timestamp) -> ChurnModel:
    """The churn model of (`clinic`, `as_of`), fitted once and shared (:func:`crm_analysis.churn.cache.fitted_model`).

    Keyed by the clinic object itself (held, compared with ``is``), not by ``id(clinic)``: an id can be
    reused by a new object once the old one is freed, which would hand back another clinic's model.
    """
    return fitted_model(clinic, as_of)


def _count(n: int, min_count: int) -> int | None:
    n = int(n)
    return None if 0 < n < min_count else n


def churn_kpis(clinic, as_of, min_count: int = 5) -> dict:
    """The month's churn figures: patients, churned, churn rate and recall candidates (small counts hidden).

    Parameters
    ----------
    clinic : ClinicData
        As known at `as_of`.
    as_of : str or Timestamp
    min_count : int
        Counts from 1 to ``min_count − 1`` become None, and so do rates built on them.

    Returns
    -------
    dict
        ``definition``, ``patients``, ``churned``, ``churn_rate``, ``recall_candidates``, ``recall_band``.
    """
    as_of = pd.Timestamp(as_of).normalize()
    rules = load_churn_rules()
    model = _model(clinic, as_of)
    status = churn_status(model, rules=rules)
    table = recall_table(clinic, as_of, model=model, rules=rules)
    n, churned = len(status), int(status["churned"].sum())
    shown_n, shown_c = _count(n, min_count), _count(churned, min_count)
    return {"definition": f"P(return within {rules['churn']['horizon_days']}d) < "
                          f"{rules['churn']['max_return_probability']}",
            "patients": shown_n, "churned": shown_c,
            "churn_rate": round(churned / n, 4) if shown_n and shown_c is not None and n else None,
            "recall_candidates": _count(int(table["candidate"].sum()), min_count),
            "recall_band": [float(x) for x in rules["recall"]["band"]]}


def recall_outreach(clinic, as_of) -> pd.DataFrame:
    """The recall list for staff: rank, patient id, name, phone, last visit, reason (Korean)."""
    as_of = pd.Timestamp(as_of).normalize()
    cand = recall_candidates(clinic, as_of, model=_model(clinic, as_of))
    people = clinic.patients.assign(patient_id=clinic.patients["patient_id"].astype(str)).set_index("patient_id")
    cols = [c for c in ("name", "phone") if c in people.columns]
    out = cand[["rank", "patient_id", "last_visit_date", "reason"]].join(people[cols], on="patient_id")
    return out[["rank", "patient_id", *cols, "last_visit_date", "reason"]]


def register_monthly(*, replace: bool = False) -> list[str]:
    """Register the ``churn`` KPI section and the ``recall`` outreach producer.

    Returns
    -------
    list of str
        What was registered: ``["kpis:churn", "outreach:recall"]``.
    """
    from crm_analysis.kpis import register_section
    from crm_analysis.report.outreach import register_producer

    register_section("churn", lambda clinic, as_of, min_count: churn_kpis(clinic, as_of, min_count), replace=replace,
                     figures=("patients", "churned", "churn_rate", "recall_candidates"))
    register_producer("recall", recall_outreach, replace=replace)
    return ["kpis:churn", "outreach:recall"]
