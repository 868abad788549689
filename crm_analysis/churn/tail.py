"""The long-absence tail of the churn model's baseline hazard.

The Cox model's Breslow baseline only exists where gaps were observed: it is
flat (no returns at all) beyond the longest gap in the data, and noisy where
few gaps are still open. Real clinics see patients come back after long
absences, so a prediction whose horizon reaches past the data would be
silently too low. :func:`fit_return_tail` fits a parametric tail to the
long gaps and the model uses it beyond the *splice day*:

- the baseline hazard after ``start_day`` (the ``start_quantile`` of the
  return times, 0.9 by default: "a long absence") is either a power law
  ``h0(t) = exp(a) · t^b`` or a Gompertz hazard ``h0(t) = exp(a + b·t)``,
  each fitted as a Poisson regression of the returns in 30-day bins of the
  gaps' time at risk (on ``log t`` or on ``t``; statsmodels GLM), with each
  gap's Cox linear predictor in the offset so the tail stays on the Cox
  baseline's scale (lifelines' parametric fitters have no offset). The one
  with the higher likelihood is kept (both have two parameters);
- ``b`` must be at most 0 (the pull back to the clinic does not grow with
  the absence). A finite total hazard (Gompertz with ``b < 0``, power law
  with ``b < -1``) leaves a share of patients who never return: a cure
  fraction, as in the demo generator, where the power law's slower decay
  suits real exports with returns after a year or more away. With fewer than
  10 long-gap returns a constant hazard is fitted instead;
- the splice day is the longest gap with at least ``min_at_risk`` gaps still
  open (and no later than the last observed return): up to it the Breslow
  baseline is used as before, beyond it the fitted tail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["ReturnTail", "fit_return_tail", "no_return_tail"]

#: Width of the bins of time at risk in the tail's Poisson fit (days).
BIN_DAYS = 30
#: Fewer returns after the tail's start than this: a constant hazard instead of a power law.
MIN_TAIL_RETURNS = 10


@dataclass(frozen=True)
class ReturnTail:
    """The baseline hazard beyond the data, used after ``splice_day``.

    Attributes
    ----------
    kind : str
        ``"power law"`` (``exp(log_rate) · t^exponent``), ``"gompertz"``
        (``exp(log_rate + exponent·t)``), ``"constant"``, ``"no returns"``
        (none seen after ``start_day``: zero hazard) or ``"off"`` (not
        fitted: zero hazard beyond the longest gap, the old capped behaviour).
    start_day : int
        The tail was fitted to the time at risk after this many days.
    splice_day : int
        The Cox baseline is used up to this day, the tail after it.
    log_rate, exponent : float
        ``a`` and ``b`` of the baseline hazard (per day, at the Cox baseline's covariates).
    n_returns : float
        Returns after ``start_day`` that the fit saw.
    """

    kind: str
    start_day: int
    splice_day: int
    log_rate: float = float("-inf")
    exponent: float = 0.0
    n_returns: float = 0.0

    def cumulative(self, t) -> np.ndarray:
        """Baseline cumulative hazard added between ``splice_day`` and `t` (0 up to ``splice_day``)."""
        t = np.maximum(np.asarray(t, dtype=np.float64), self.splice_day)
        if not np.isfinite(self.log_rate):
            return np.zeros_like(t)
        s, b = max(float(self.splice_day), 1.0), self.exponent
        t = np.maximum(t, s)
        if self.kind == "gompertz":
            return np.exp(self.log_rate) * (np.exp(b * t) - np.exp(b * s)) / b
        if abs(b + 1) < 1e-9:
            return np.exp(self.log_rate) * (np.log(t) - np.log(s))
        return np.exp(self.log_rate) * (t ** (b + 1) - s ** (b + 1)) / (b + 1)

    def total(self) -> float:
        """Baseline cumulative hazard added after ``splice_day`` in all (``inf`` when some return is always ahead)."""
        s, a, b = max(float(self.splice_day), 1.0), self.log_rate, self.exponent
        if not np.isfinite(a):
            return 0.0
        if self.kind == "gompertz" and b < 0:
            return float(-np.exp(a + b * s) / b)
        if self.kind == "power law" and b < -1:
            return float(-np.exp(a) * s ** (b + 1) / (b + 1))
        return float("inf")

    def to_frame(self) -> pd.DataFrame:
        """One row describing the tail (for notebooks and reports)."""
        return pd.DataFrame([{"tail": self.kind, "start_day": self.start_day, "splice_day": self.splice_day,
                              "log_rate": self.log_rate, "exponent": self.exponent, "n_returns": self.n_returns}])


def no_return_tail(max_day: int) -> ReturnTail:
    """The tail of a model that does not extrapolate: no return after the longest gap."""
    return ReturnTail(kind="off", start_day=int(max_day), splice_day=int(max_day))


def fit_return_tail(duration, event, weight, linear_predictor, *, start_quantile: float = 0.9,
                    min_at_risk: int = 100) -> ReturnTail:
    """Fit the tail of the baseline hazard (power law or Gompertz, the likelier) to the long gaps.

    Parameters
    ----------
    duration, event, weight : array-like
        The Cox fit's rows: days, 1 = returned, frequency weight.
    linear_predictor : array-like
        Each row's Cox linear predictor (centred as the Cox baseline is).
    start_quantile : float
        The tail is fitted after this quantile of the return times.
    min_at_risk : int
        The splice day is the longest gap with at least this many gaps still open.

    Returns
    -------
    ReturnTail
    """
    import statsmodels.api as sm

    d = np.asarray(duration, dtype=np.float64)
    returned = np.asarray(event, dtype=np.int64) == 1
    w = np.asarray(weight, dtype=np.float64)
    risk = w * np.exp(np.asarray(linear_predictor, dtype=np.float64))
    start = int(np.quantile(np.repeat(d[returned], w[returned].astype(np.int64)), start_quantile))
    # still open at day t: gaps with duration >= t (weighted); splice where that falls below min_at_risk
    order = np.argsort(-d)
    open_count = np.cumsum(w[order])
    enough = open_count >= min_at_risk
    splice = int(d[order][np.argmax(enough)]) if enough.any() else int(d.min())
    splice = int(min(max(splice, start), d[returned].max(), d.max()))
    edges = np.arange(start, d.max() + BIN_DAYS, BIN_DAYS, dtype=np.float64)
    if len(edges) < 2:
        edges = np.array([start, start + BIN_DAYS], dtype=np.float64)
    exposure = _exposure(d, risk, edges)
    # a return on day d belongs to the bin (lo, hi] holding d, where its time at risk ended
    bin_of = np.searchsorted(edges, d[returned], side="left") - 1
    inside = (bin_of >= 0) & (bin_of < len(edges) - 1)
    returns = np.bincount(bin_of[inside], weights=w[returned][inside], minlength=len(edges) - 1)
    n_returns = float(returns.sum())
    base = dict(start_day=start, splice_day=splice, n_returns=n_returns)
    keep = exposure > 0
    if n_returns == 0:
        return ReturnTail(kind="no returns", **base)
    if n_returns >= MIN_TAIL_RETURNS and keep.sum() >= 3:
        mid = (edges[:-1] + edges[1:])[keep] / 2
        fits = {kind: sm.GLM(returns[keep], sm.add_constant(x), family=sm.families.Poisson(),
                             offset=np.log(exposure[keep])).fit()
                for kind, x in (("power law", np.log(mid)), ("gompertz", mid))}
        falling = {kind: f for kind, f in fits.items() if f.params[1] < 0}
        if falling:
            kind = max(falling, key=lambda k: falling[k].llf)
            a, b = (float(x) for x in falling[kind].params)
            return ReturnTail(kind=kind, log_rate=a, exponent=b, **base)
    # few long-gap returns, or a hazard rising with the absence: a constant hazard (its MLE)
    return ReturnTail(kind="constant", log_rate=float(np.log(n_returns / exposure.sum())), exponent=0.0, **base)


def _exposure(d: np.ndarray, risk: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Risk-weighted days at risk in each bin: Σ risk·clip(d − lo, 0, hi − lo), via F(x) = Σ risk·max(d − x, 0)."""
    order = np.argsort(d)
    ds, rs = d[order], risk[order]
    tail_risk = np.concatenate([np.cumsum(rs[::-1])[::-1], [0.0]])         # Σ risk over d > x (by position)
    tail_days = np.concatenate([np.cumsum((rs * ds)[::-1])[::-1], [0.0]])  # Σ risk·d over the same
    pos = np.searchsorted(ds, edges, side="right")
    beyond = tail_days[pos] - edges * tail_risk[pos]
    return beyond[:-1] - beyond[1:]
