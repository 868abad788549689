"""Kaplan–Meier return curves: how soon patients come back, by group.

Each curve is the Kaplan–Meier estimate over gaps (from a visit to the next
one, censored at as_of; see :func:`~crm_analysis.churn.survival_data`), drawn
as the share returned, 1 − S(t), with 95% confidence bands (lifelines'
exponential Greenwood intervals). The median time to return and its 95% CI
come from the same fit.

Groups are either a gap column (``department`` of the visit, or
``main_department``) or a patient-level label such as the current segment.
A patient-level label describes the patient at as_of and is applied to all
the patient's gaps: this is a description of how each group has behaved, not
a prediction (for predictions use :class:`~crm_analysis.churn.ChurnModel`).

Groups with fewer than ``min_patients`` patients are left out so no curve
describes a handful of identifiable people.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Mapping

import pandas as pd

from crm_analysis.exceptions import CrmAnalysisError

__all__ = ["ReturnCurves", "return_curves"]


@dataclass(frozen=True)
class ReturnCurves:
    """Kaplan–Meier return curves by group.

    Attributes
    ----------
    by : str
        What the groups are.
    table : DataFrame
        One row per group: ``group``, ``n_patients``, ``n_gaps``,
        ``returns``, ``median_days`` with ``median_lower``/``median_upper``
        (95% CI; inf when the curve never reaches 50%), and
        ``p_return_30d``/``90d``/``180d`` (KM share returned by then).
    curves : Mapping of str to DataFrame
        Per group, indexed by day: ``survival``, ``lower``, ``upper``.
    left_out : int
        Groups left out for having fewer than `min_patients` patients.
    """

    by: str
    table: pd.DataFrame
    curves: Mapping[str, pd.DataFrame] = field(repr=False)
    left_out: int = 0

    def summary(self) -> pd.DataFrame:
        """The per-group table."""
        return self.table

    def plot(self, ax=None, lang: str = "ko", max_days: int = 365, by_label: str | None = None):
        """Share returned against days since the visit, with 95% bands."""
        from crm_analysis.churn.plots import plot_return_curves

        return plot_return_curves(self.curves, by_label or self.by, ax=ax, lang=lang, max_days=max_days)

    def _repr_html_(self) -> str:
        note = f"<p>{self.left_out} small group(s) left out</p>" if self.left_out else ""
        return f"<h4>Return curves by {escape(self.by)}</h4>" + note + self.table.round(3).to_html(index=False)


def return_curves(gaps: pd.DataFrame, by: str | pd.Series, *, min_patients: int = 10,
                  horizons=(30, 90, 180), name: str | None = None) -> ReturnCurves:
    """Kaplan–Meier curves of the time to return, by group.

    Parameters
    ----------
    gaps : DataFrame
        From :func:`~crm_analysis.churn.survival_data`.
    by : str or Series
        A column of `gaps`, or a Series indexed by ``patient_id`` giving each
        patient's group (e.g. segments). Gaps of patients without a group are
        left out.
    min_patients : int
        Smallest group shown.
    horizons : sequence of int
        Days for the ``p_return_<h>d`` columns.
    name : str, optional
        Name of the grouping (default: the column or Series name).

    Returns
    -------
    ReturnCurves

    Raises
    ------
    CrmAnalysisError
        If `by` is not a column of `gaps` nor a Series.
    """
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    # a number per patient: 20M gaps' ids as Python strings would take GiBs at a million patients
    patient, patients = pd.factorize(gaps["patient_id"])
    if isinstance(by, str):
        if by not in gaps.columns:
            raise CrmAnalysisError(f"cannot group return curves by {by!r}: not a column of the gaps; use one of "
                                   f"{', '.join(map(str, gaps.columns))} or pass a Series indexed by patient_id")
        groups = gaps[by].astype("object").to_numpy()
        name = name or by
    elif isinstance(by, pd.Series):
        groups = by.astype("object").reindex(pd.Index(patients).astype(str)).to_numpy()[patient]
        name = name or (str(by.name) if by.name is not None else "group")
    else:
        raise CrmAnalysisError("by must be a column name of the gaps or a Series indexed by patient_id")
    data = pd.DataFrame({"group": groups, "patient_id": patient,
                         "duration": gaps["duration"].to_numpy(), "event": gaps["event"].to_numpy()})
    data = data[data["group"].notna() & (data["duration"] > 0)]
    rows, curves, left_out = [], {}, 0
    for group, part in data.groupby("group", sort=True):
        n_patients = part["patient_id"].nunique()
        if n_patients < min_patients:
            left_out += 1
            continue
        counts = part.groupby(["duration", "event"], sort=True).size().reset_index(name="n")
        kmf = KaplanMeierFitter().fit(counts["duration"], counts["event"], weights=counts["n"])
        sf = kmf.survival_function_.iloc[:, 0]
        ci = kmf.confidence_interval_survival_function_
        med_ci = median_survival_times(ci)
        row = {"group": str(group), "n_patients": int(n_patients), "n_gaps": int(len(part)),
               "returns": int(part["event"].sum()), "median_days": float(kmf.median_survival_time_),
               "median_lower": float(med_ci.iloc[0, 0]), "median_upper": float(med_ci.iloc[0, 1])}
        for h in horizons:
            row[f"p_return_{int(h)}d"] = float(1 - sf[sf.index <= h].iloc[-1]) if (sf.index <= h).any() else 0.0
        rows.append(row)
        curves[str(group)] = pd.DataFrame({"survival": sf.to_numpy(), "lower": ci.iloc[:, 0].to_numpy(),
                                           "upper": ci.iloc[:, 1].to_numpy()}, index=sf.index)
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.sort_values("n_patients", ascending=False, kind="stable").reset_index(drop=True)
    return ReturnCurves(by=name, table=table, curves=curves, left_out=left_out)
