"""Back-test: fit on the past, predict, then watch what happened next.

:func:`backtest` fits a :class:`~crm_analysis.churn.ChurnModel` on the data
up to the cut-off (as on ``clinic.snapshot(cutoff)``: nothing later is visible), predicts
for every patient seen by the cut-off the probability of returning within
``horizon`` days of it, and compares with the visits actually made in
(cutoff, cutoff + horizon] in the full data.

Every patient is observed for the whole horizon (the data must run to
``cutoff + horizon``), so the observed outcome "returned within the horizon"
has no censoring and the Brier score is the plain mean squared error.
Patients who died or moved keep their place (the data has no date for that),
as they would in a real recall list.

Compared:

- ``cox``: the churn model (conditional on days since the last visit);
- ``weibull_aft``: its parametric alternative;
- ``days_since_last_visit``: rank by days since the last visit (longer =
  less likely to return); its probability for the Brier score is the
  Kaplan–Meier conditional return probability of the training gaps, with no
  covariates;
- ``rule_180d``: the fixed rule "no visit for 180 days = lost" (two groups);
  its probability is the mean of the Kaplan–Meier probability in each group.

Metrics: the C-index (Harrell's, lifelines ``concordance_index``, on days to
return capped at the horizon), calibration (predicted against observed return
rate by decile of the prediction: the mean absolute gap, weighted by decile
size, and the largest), the Brier score at the horizon and the mean
prediction. The C-index says whether the model ranks patients well; the
calibration errors say whether its probabilities can be read as
probabilities, which a threshold such as the churn definition's needs
(:func:`~crm_analysis.churn.churn_status` takes the back-test for that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from crm_analysis.churn.calibration import brier_score, calibration_errors, decile_calibration
from crm_analysis.churn.model import ChurnModel
from crm_analysis.churn.survival_data import survival_data
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.features import day_numbers
from crm_analysis.ids import id_positions
from crm_analysis.sufficiency import require

__all__ = ["BacktestResult", "backtest"]


@dataclass(frozen=True)
class BacktestResult:
    """What a back-test found.

    Attributes
    ----------
    cutoff : Timestamp
    horizon : int
    n_patients : int
        Patients seen on or before the cut-off.
    observed_rate : float
        Share of them who returned within the horizon.
    table : DataFrame
        One row per model/baseline: ``model``, ``c_index``,
        ``calibration_mae`` (mean |predicted − observed| over deciles,
        weighted by size), ``calibration_max`` (the largest decile's),
        ``brier``, ``mean_predicted``.
    calibration : Mapping of str to DataFrame
        Per model, the decile table (``decile``, ``n``, ``predicted``,
        ``observed``, ``observed_se``).
    model : ChurnModel
        The model fitted on the data up to the cut-off.
    """

    cutoff: pd.Timestamp
    horizon: int
    n_patients: int
    observed_rate: float
    table: pd.DataFrame
    calibration: Mapping[str, pd.DataFrame] = field(repr=False)
    model: Any = field(repr=False, default=None)

    def summary(self) -> pd.DataFrame:
        """The comparison table."""
        return self.table

    def c_index(self, name: str) -> float:
        """C-index of model or baseline `name`."""
        return float(self.table.set_index("model").loc[name, "c_index"])

    def calibration_error(self, name: str = "cox") -> dict[str, float]:
        """``calibration_mae`` and ``calibration_max`` of model or baseline `name` (see :attr:`table`)."""
        row = self.table.set_index("model").loc[name]
        return {"calibration_mae": float(row["calibration_mae"]), "calibration_max": float(row["calibration_max"])}

    def plot_calibration(self, ax=None, lang: str = "ko", models=("cox", "weibull_aft")):
        """Predicted against observed return rate by decile."""
        from crm_analysis.churn.plots import plot_calibration

        return plot_calibration({m: self.calibration[m] for m in models if m in self.calibration}, self.horizon,
                                ax=ax, lang=lang)

    def _repr_html_(self) -> str:
        head = (f"<h4>Back-test: cut-off {self.cutoff:%Y-%m-%d}, horizon {self.horizon} days</h4>"
                f"<p>{self.n_patients:,} patients; {self.observed_rate:.1%} returned within the horizon</p>")
        return head + self.table.round(4).to_html(index=False)


def backtest(clinic, cutoff=None, horizon: int = 180, *, model: ChurnModel | Mapping | None = None,
             n_bins: int = 10) -> BacktestResult:
    """Fit on data up to `cutoff`, predict return within `horizon` days, and check against what happened.

    Parameters
    ----------
    clinic : ClinicData
        The full data; it must run to at least ``cutoff + horizon``.
    cutoff : str or Timestamp, optional
        The back-test's as_of; default: `horizon` days before the data ends
        (the latest cut-off that can be followed for the whole horizon).
    horizon : int
        Days after the cut-off to observe.
    model : ChurnModel or mapping, optional
        An unfitted model to use, or keyword arguments for :class:`ChurnModel`
        (built with ``ph_test=False`` unless the mapping says otherwise: the
        back-test does not report the proportional-hazards check).
    n_bins : int
        Bins of the calibration tables.

    Returns
    -------
    BacktestResult

    Raises
    ------
    CrmAnalysisError
        If the data ends before ``cutoff + horizon``.
    """
    from lifelines import KaplanMeierFitter
    from lifelines.utils import concordance_index

    horizon = int(horizon)
    data_end = clinic.as_of if clinic.as_of is not None else pd.Timestamp(clinic.visits["visit_date"].max())
    cutoff = data_end - pd.Timedelta(days=horizon) if cutoff is None else pd.Timestamp(cutoff).normalize()
    if cutoff + pd.Timedelta(days=horizon) > data_end:
        raise CrmAnalysisError(f"the data runs to {data_end:%Y-%m-%d}, so a cut-off of {cutoff:%Y-%m-%d} cannot be "
                               f"followed for {horizon} days; use a cut-off on or before "
                               f"{data_end - pd.Timedelta(days=horizon):%Y-%m-%d}")
    require("churn_backtest", clinic, data_end)
    if model is None or isinstance(model, Mapping):
        # the proportional-hazards check is not part of a back-test's result: skip its Cox refit
        model = ChurnModel(**{"ph_test": False, **(model or {})})
    # survival_data and the fit use only rows up to the cut-off, exactly as on clinic.snapshot(cutoff)
    # (tested), so the full data is passed and no snapshot copied
    gaps = survival_data(clinic, cutoff)
    model.fit(clinic, cutoff, gaps=gaps)
    state = model.current_
    p_cox = model.predict_probability(horizon, state).to_numpy()
    # observe the next `horizon` days in the full data: each patient's first visit day after the cut-off
    v = clinic.visits
    vday = day_numbers(v["visit_date"])
    c_day = day_numbers([cutoff])[0]
    after = vday > c_day
    who = id_positions(v["patient_id"], state.index, after)
    seen = who >= 0
    first_after = np.full(len(state), np.inf)
    np.minimum.at(first_after, who[seen], vday[after][seen].astype(np.float64))
    days_to = np.where(np.isfinite(first_after), first_after - c_day, np.nan)
    returned = np.isfinite(days_to) & (days_to <= horizon)
    t_obs = np.where(returned, days_to, horizon)
    elapsed = state["elapsed_days"].to_numpy(dtype=np.float64)
    # Kaplan-Meier (no covariates) conditional probability, from the training gaps only
    duration, event = gaps["duration"].to_numpy(), gaps["event"].to_numpy()
    usable = duration > 0  # the counts only: no copy of the 20M gap rows of a million patients
    counts = (pd.DataFrame({"duration": duration[usable], "event": event[usable]})
              .groupby(["duration", "event"]).size().reset_index(name="n"))
    del gaps, duration, event, usable
    km = KaplanMeierFitter().fit(counts["duration"], counts["event"], weights=counts["n"]).survival_function_
    grid = np.arange(int(elapsed.max()) + horizon + 2)
    s = km.iloc[:, 0].reindex(np.union1d(km.index.to_numpy(), grid)).ffill().fillna(1.0).reindex(grid).to_numpy()
    e_idx = elapsed.astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_km = np.where(s[e_idx] > 0, 1 - s[e_idx + horizon] / s[e_idx], 0.0)
    rule = elapsed > 180
    p_rule = np.where(rule, p_km[rule].mean() if rule.any() else 0.0, p_km[~rule].mean() if (~rule).any() else 0.0)
    scores = {"cox": p_cox, "days_since_last_visit": p_km, "rule_180d": p_rule}
    # concordance: a higher score must mean a longer time to return
    ranking = {"cox": -p_cox, "days_since_last_visit": elapsed, "rule_180d": rule.astype(np.float64)}
    if model.weibull_ is not None:
        p_w = model.predict_weibull_return(state, horizon).to_numpy()
        scores = {"cox": p_cox, "weibull_aft": p_w, **{k: v for k, v in scores.items() if k != "cox"}}
        ranking["weibull_aft"] = -p_w
    rows, calib = [], {}
    for name, p in scores.items():
        table = decile_calibration(p, t_obs, returned.astype(np.int64), horizon, n_bins=n_bins)
        calib[name] = table
        rows.append({"model": name, "c_index": float(concordance_index(t_obs, ranking[name], returned)),
                     **calibration_errors(table), "brier": brier_score(p, returned),
                     "mean_predicted": float(np.mean(p))})
    return BacktestResult(cutoff=cutoff, horizon=horizon, n_patients=len(state),
                          observed_rate=float(returned.mean()), table=pd.DataFrame(rows), calibration=calib,
                          model=model)
