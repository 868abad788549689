"""Calibration of predicted return probabilities, with censoring handled.

Two views, both used by :class:`~crm_analysis.churn.ChurnModel` and
:func:`~crm_analysis.churn.backtest`:

- :func:`decile_calibration`: patients (or gaps) are cut into deciles of the
  predicted P(return within t0); in each decile the observed share returning
  within t0 is the Kaplan–Meier estimate, so a gap censored before t0 counts
  for as long as it was observed and no longer;
- :func:`lifelines_calibration`: lifelines'
  ``survival_probability_calibration`` (a flexible spline of observed on
  predicted), reported as its ICI (mean absolute difference) and E50 (median).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd

__all__ = ["decile_calibration", "calibration_errors", "lifelines_calibration", "brier_score"]


def decile_calibration(predicted, duration, event, t0: float, n_bins: int = 10) -> pd.DataFrame:
    """Predicted against observed P(return within `t0`) by decile of the prediction.

    Parameters
    ----------
    predicted : array-like
        Predicted probabilities of returning within `t0`.
    duration, event : array-like
        Observed days to return (or to censoring) and whether the return was
        seen (1) or censored (0).
    t0 : float
        Horizon in days.
    n_bins : int
        Number of quantile bins (fewer when predictions tie).

    Returns
    -------
    DataFrame
        One row per bin: ``decile`` (1 = lowest predictions), ``n``,
        ``predicted`` (mean), ``observed`` (Kaplan–Meier 1 − S(t0) in the bin)
        and ``observed_se`` (its Greenwood standard error: how far ``observed``
        may stray from the truth by chance alone).
    """
    p = np.asarray(predicted, dtype=np.float64)
    d = np.asarray(duration, dtype=np.float64)
    e = np.asarray(event, dtype=np.int64)
    ranks = pd.Series(p).rank(method="first").to_numpy()
    bins = np.minimum((ranks - 1) * n_bins // max(len(p), 1), n_bins - 1).astype(np.int64)
    rows = []
    for b in np.unique(bins):
        m = bins == b
        surv, se = _km_at(d[m], e[m], t0)
        rows.append({"decile": int(b) + 1, "n": int(m.sum()), "predicted": float(p[m].mean()),
                     "observed": 1 - surv, "observed_se": se})
    return pd.DataFrame(rows)


def calibration_errors(table: pd.DataFrame) -> dict[str, float]:
    """Mean (weighted by bin size) and largest absolute gap between predicted and observed in a decile table.

    Parameters
    ----------
    table : DataFrame
        From :func:`decile_calibration`.

    Returns
    -------
    dict
        ``calibration_mae`` and ``calibration_max``.
    """
    gap = np.abs(table["predicted"].to_numpy() - table["observed"].to_numpy())
    return {"calibration_mae": float(np.average(gap, weights=table["n"].to_numpy())),
            "calibration_max": float(gap.max())}


def _km_at(duration: np.ndarray, event: np.ndarray, t0: float) -> tuple[float, float]:
    """Kaplan–Meier survival at t0 and its Greenwood standard error (vectorised)."""
    times, inv = np.unique(duration, return_inverse=True)
    deaths = np.bincount(inv, weights=event, minlength=len(times))
    total = np.bincount(inv, minlength=len(times)).astype(np.float64)
    at_risk = total[::-1].cumsum()[::-1]
    keep = times <= t0
    n, dth = at_risk[keep], deaths[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = np.where(n > 0, 1 - dth / n, 1.0)
        greenwood = np.where((n > dth) & (n > 0), dth / (n * (n - dth)), 0.0)
    surv = float(np.prod(factors))
    return surv, float(surv * np.sqrt(greenwood.sum()))


def lifelines_calibration(fitter, data: pd.DataFrame, t0: float) -> tuple[float, float]:
    """ICI and E50 from lifelines' ``survival_probability_calibration`` (its figure is discarded).

    Parameters
    ----------
    fitter : lifelines regression fitter
        Fitted with duration column ``duration`` and event column ``event``.
    data : DataFrame
        Covariates plus ``duration`` and ``event``.
    t0 : float

    Returns
    -------
    (float, float)
        ICI and E50; NaN when the smoother cannot be fitted.
    """
    import matplotlib.pyplot as plt
    from lifelines.calibration import survival_probability_calibration

    before = set(plt.get_fignums())
    fig = plt.figure()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            _, ici, e50 = survival_probability_calibration(fitter, data, t0, ax=fig.add_subplot())
        return float(ici), float(e50)
    except Exception:  # noqa: BLE001 - a failed smoother leaves the metric missing, not the analysis broken
        return float("nan"), float("nan")
    finally:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)


def brier_score(predicted, returned) -> float:
    """Mean squared difference between P(return) and whether the patient returned (0/1).

    Only meaningful when every patient was observed for the full horizon.
    """
    p = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(returned, dtype=np.float64)
    return float(np.mean((p - y) ** 2))
