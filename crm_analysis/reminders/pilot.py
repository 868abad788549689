"""Randomised pilot analysis and a sample-size planner for the next pilot.

In a pilot month reminders were assigned at random among eligible
appointments. How the arms are read depends on the export:

- **By allocation (intention to treat).** When the appointments carry the
  pilot's allocation (the contract's ``reminder_arm`` column), the arms are
  the appointments allocated to reminders and to control, whatever was then
  sent. An allocated patient who could not be reached (no phone, no
  KakaoTalk, or opted out) stays in the reminder arm, so randomisation holds
  and the estimate is the effect of *deciding* to remind.
- **From the reminders sent (per protocol).** Without the allocation, an
  eligible appointment with at least one reminder row is in the reminder arm
  (a row is written when the message is sent, even if delivery then fails);
  one without is a control. A patient allocated to reminders but unreachable
  gets no row and so counts as a control: the arms are no longer the
  randomised groups, and the estimate says so.

Rates are no-show rates among non-cancelled appointments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

import numpy as np
import pandas as pd
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (confint_proportions_2indep, proportion_confint, proportion_effectsize,
                                          samplesize_proportions_2indep_onetail, test_proportions_2indep)

from crm_analysis.estimates import Estimate
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders.rules import load_rules

__all__ = ["PilotResult", "pilot_analysis", "pilot_per_booking", "plan_pilot", "two_proportions"]


def two_proportions(c1: int, n1: int, c0: int, n0: int, compare: str = "diff", alpha: float = 0.05):
    """Score (Miettinen–Nurminen) interval and the matching score test of two proportions.

    ``confint_proportions_2indep`` and ``test_proportions_2indep`` with
    ``method="score"``, so the interval excludes the null exactly when p < alpha.
    When the score interval's root search fails (it can for identical
    proportions), the Newcombe interval (difference) or log-adjusted interval
    (ratio) is used instead.

    Returns
    -------
    (float, float, float, str)
        ci_low, ci_high, p-value and the interval method used.
    """
    test = test_proportions_2indep(c1, n1, c0, n0, compare=compare, method="score")
    try:
        lo, hi = confint_proportions_2indep(c1, n1, c0, n0, compare=compare, method="score", alpha=alpha)
        method = "score"
    except ValueError:
        method = "newcomb" if compare == "diff" else "log-adjusted"
        lo, hi = confint_proportions_2indep(c1, n1, c0, n0, compare=compare, method=method, alpha=alpha)
    return float(lo), float(hi), float(test.pvalue), method


@dataclass(frozen=True)
class PilotResult:
    """The randomised pilot's results.

    Attributes
    ----------
    month : str
    arms : DataFrame
        Per arm: appointments, no-shows, no-show rate with a Wilson CI.
    risk_difference, risk_ratio : Estimate
        Reminder arm vs control (``confint_proportions_2indep``; the p-value is
        the two-proportion test ``test_proportions_2indep``).
    number_needed : float
        Reminders needed to prevent one no-show (1 / |risk difference|; inf
        when the difference is 0 or positive).
    number_needed_ci : tuple of float
        Its interval from the risk-difference bounds (inf when the interval
        crosses zero: then no finite bound exists).
    by_allocation : bool
        True when the arms are the pilot's allocation (intention to treat),
        False when they were read from the reminders sent (per protocol).
    """

    month: str
    arms: pd.DataFrame = field(repr=False)
    risk_difference: Estimate
    risk_ratio: Estimate
    number_needed: float
    number_needed_ci: tuple
    by_allocation: bool = False

    @property
    def analysis(self) -> str:
        """``"intention_to_treat"`` (arms as allocated) or ``"per_protocol"`` (arms from the reminders sent)."""
        return "intention_to_treat" if self.by_allocation else "per_protocol"

    def summary(self) -> pd.DataFrame:
        """Risk difference and risk ratio as a two-row table."""
        return pd.concat([self.risk_difference.summary(), self.risk_ratio.summary()], ignore_index=True)

    def __str__(self) -> str:
        return f"Pilot {self.month} ({self.analysis.replace('_', ' ')}):\n  {self.risk_difference}\n  {self.risk_ratio}\n  NNT {self.number_needed:.1f}"

    def _repr_html_(self) -> str:
        lo, hi = self.number_needed_ci
        how = "arms as allocated (intention to treat)" if self.by_allocation else "arms from the reminders sent (per protocol)"
        return (f"<h4>Randomised pilot {escape(self.month)}</h4><p>{how}</p>" + self.arms.to_html(index=False)
                + self.risk_difference._repr_html_() + self.risk_ratio._repr_html_()
                + f"<p>Number needed to remind: {self.number_needed:.1f} (CI {lo:.1f} to {hi:.1f})</p>")


def _pilot_arms(table: pd.DataFrame, in_month: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """The pilot's rows among `in_month`, which of them are in the reminder arm, and whether the arms are the
    allocation itself (intention to treat) or read from the reminders sent (per protocol)."""
    allocated = (table["allocated_reminder"] if "allocated_reminder" in table
                 else pd.Series(pd.NA, index=table.index, dtype="boolean"))
    by_allocation = bool(allocated[in_month].notna().any())
    if by_allocation:  # the randomised groups themselves: whoever was allocated, reached or not
        rows = in_month & allocated.notna().to_numpy()
        return rows, allocated.to_numpy(dtype=bool, na_value=False)[rows], True
    rows = in_month & table["eligible"].to_numpy(dtype=bool)
    return rows, table["sent_any"].to_numpy(dtype=bool)[rows], False


def pilot_analysis(table: pd.DataFrame, month: str | None = None, rules=None,
                   conf_level: float = 0.95) -> PilotResult:
    """Compare the arms of a randomised reminder pilot.

    Parameters
    ----------
    table : DataFrame
        From :func:`~crm_analysis.reminders.analysis_table.appointment_table`.
    month : str, optional
        ``YYYY-MM``; default the rules' ``pilot_month``.
    rules : path, mapping or None
    conf_level : float

    Returns
    -------
    PilotResult

    Raises
    ------
    CrmAnalysisError
        If no pilot month is given or the month lacks one of the arms.
    """
    r = load_rules(rules)
    month = month or r["pilot_month"]
    if not month:
        raise CrmAnalysisError("no randomised pilot: set pilot_month (YYYY-MM) in the reminder rules if reminders "
                               "were once assigned at random")
    period = pd.Period(str(month), freq="M")
    in_month = (table["analysed"] & (table["month"] == period)).to_numpy()
    rows, arm, by_allocation = _pilot_arms(table, in_month)
    y = table["no_show"].to_numpy()[rows]
    c1, n1, c0, n0 = int(y[arm].sum()), int(arm.sum()), int(y[~arm].sum()), int((~arm).sum())
    if n1 == 0 or n0 == 0:
        found = ("allocated to reminders and {} to control" if by_allocation
                 else "with a reminder and {} without").format(n0)
        raise CrmAnalysisError(f"pilot month {month}: found {n1} eligible appointments {found}; a randomised pilot "
                               "needs both. Check pilot_month in the reminder rules.")
    alpha = 1 - conf_level
    arms = []
    for name, c, n in (("reminder", c1, n1), ("control", c0, n0)):
        lo, hi = proportion_confint(c, n, alpha=alpha, method="wilson")
        arms.append({"arm": name, "appointments": n, "no_shows": c, "no_show_rate": c / n, "ci_low": lo,
                     "ci_high": hi})
    arms = pd.DataFrame(arms)
    lo, hi, p_rd, _ = two_proportions(c1, n1, c0, n0, "diff", alpha)
    estimand = (f"pilot {month}: no-show rate, reminder arm minus control, "
                + ("arms as allocated (intention to treat)" if by_allocation else
                   "arms read from the reminders sent (per protocol: allocated but unreachable patients count as "
                   "controls)"))
    extras = {"rate_reminder": c1 / n1, "rate_control": c0 / n0, "n_reminder": n1, "n_control": n0,
              "analysis": "intention_to_treat" if by_allocation else "per_protocol"}
    method = "randomised, score CI and two-proportion score test (Miettinen-Nurminen)"
    rd = Estimate(c1 / n1 - c0 / n0, lo, hi, p_rd, method,
                  n1 + n0, "risk_difference", estimand, conf_level, extras)
    rr_lo, rr_hi, p_rr, _ = two_proportions(c1, n1, c0, n0, "ratio", alpha)
    rr = Estimate((c1 / n1) / (c0 / n0) if c0 else float("nan"), rr_lo, rr_hi, p_rr,
                  "randomised, score CI and test", n1 + n0, "risk_ratio", estimand.replace("minus", "over"),
                  conf_level, extras)
    diff = rd.estimate
    nnt = 1 / -diff if diff < 0 else math.inf
    nnt_ci = (1 / -rd.ci_low if rd.ci_low < 0 else math.inf, 1 / -rd.ci_high if rd.ci_high < 0 else math.inf)
    return PilotResult(str(month), arms, rd, rr, nnt, (min(nnt_ci), max(nnt_ci)), by_allocation)


def pilot_per_booking(table: pd.DataFrame, month: str | None = None, rules=None,
                      conf_level: float = 0.95) -> dict[str, Estimate] | None:
    """The pilot's effect per booking: attended visits, cancellations and no-shows, reminder arm minus control.

    Every resolved booking of the pilot month counts, cancelled ones included, so the extra visits are what
    the clinic keeps (no-shows avoided minus the cancellations reminders cause), measured on randomised arms:
    the estimate the cost-benefit uses by default (``cost_effect: pilot`` in the reminder rules).

    Parameters
    ----------
    table : DataFrame
        From :func:`~crm_analysis.reminders.analysis_table.appointment_table`.
    month : str, optional
        ``YYYY-MM``; default the rules' ``pilot_month``.
    rules : path, mapping or None
    conf_level : float

    Returns
    -------
    dict or None
        ``visits``, ``cancellations``, ``no_shows``: :class:`~crm_analysis.estimates.Estimate` per booking
        (score intervals); None without a pilot month, or when a pilot arm has no resolved booking.
    """
    r = load_rules(rules)
    month = month or r["pilot_month"]
    if not month:
        return None
    in_month = (table["month"] == pd.Period(str(month), freq="M")).to_numpy() & table["cancelled"].notna().to_numpy()
    rows, arm, by_allocation = _pilot_arms(table, in_month)
    if not arm.any() or arm.all():
        return None
    cancelled = table["cancelled"].to_numpy(dtype=float)[rows] > 0
    no_show = (table["no_show"].astype("Float64").fillna(0).to_numpy(dtype=float)[rows] > 0) & ~cancelled
    outcomes = {"visits": ~cancelled & ~no_show, "cancellations": cancelled, "no_shows": no_show}
    n1, n0 = int(arm.sum()), int((~arm).sum())
    out = {}
    for name, y in outcomes.items():
        c1, c0 = int(y[arm].sum()), int(y[~arm].sum())
        lo, hi, p_value, _ = two_proportions(c1, n1, c0, n0, "diff", 1 - conf_level)
        out[name] = Estimate(c1 / n1 - c0 / n0, lo, hi, p_value,
                             "randomised pilot, score CI (Miettinen-Nurminen)", n1 + n0, "risk_difference",
                             f"pilot {month}: {name} per booking (cancelled bookings included), reminder arm minus "
                             "control" + (", as allocated" if by_allocation else ", arms from the reminders sent"),
                             conf_level, {"n_reminder": n1, "n_control": n0})
    return out


def plan_pilot(control_rate: float, effects=(-0.02, -0.03, -0.05, -0.08), alpha: float | None = None,
               power: float | None = None, ratio: float = 1.0, rules=None) -> pd.DataFrame:
    """Appointments needed per arm to detect a given drop in the no-show rate.

    Parameters
    ----------
    control_rate : float
        Expected no-show rate without reminders (e.g. the pilot's control arm
        or the eligible appointments' rate before the roll-out).
    effects : sequence of float
        Risk differences to detect (negative: fewer no-shows).
    alpha, power : float, optional
        Two-sided level and power; default from the rules' ``planner``.
    ratio : float
        Control-arm size / reminder-arm size.

    Returns
    -------
    DataFrame
        One row per effect: the reminder-arm rate and appointments per arm by
        ``samplesize_proportions_2indep_onetail`` (normal approximation on
        the difference) and by ``NormalIndPower`` on Cohen's h (arcsine).
    """
    r = load_rules(rules)
    alpha = r["planner"]["alpha"] if alpha is None else alpha
    power = r["planner"]["power"] if power is None else power
    if not 0 < control_rate < 1:
        raise CrmAnalysisError(f"control_rate must be a proportion between 0 and 1, not {control_rate!r}")
    rows = []
    for eff in effects:
        p1 = control_rate + eff
        if not 0 < p1 < 1 or eff == 0:
            raise CrmAnalysisError(f"effect {eff!r} gives a reminder-arm rate of {p1!r}; it must be non-zero and keep "
                                   "the rate between 0 and 1")
        n_diff = samplesize_proportions_2indep_onetail(eff, control_rate, power, ratio=ratio, alpha=alpha,
                                                       alternative="two-sided")
        h = proportion_effectsize(p1, control_rate)
        n_h = NormalIndPower().solve_power(effect_size=abs(h), alpha=alpha, power=power, ratio=ratio,
                                           alternative="two-sided")
        rows.append({"risk_difference": eff, "control_rate": control_rate, "reminder_rate": p1,
                     "n_per_arm": int(np.ceil(n_diff)), "n_per_arm_arcsine": int(np.ceil(n_h)),
                     "alpha": alpha, "power": power})
    return pd.DataFrame(rows)
