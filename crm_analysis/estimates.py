"""A small frozen result for one effect estimate, shared by every analysis.

Any analysis that estimates one number with a confidence interval (a reminder
effect, a campaign lift, a hazard ratio) returns an :class:`Estimate`. It holds
the estimate, the interval, the p-value, the method, the number of units and
what was estimated, shows itself as a one-row table in a notebook, and turns
into a one-row DataFrame with :meth:`Estimate.summary`, so several estimates
stack into one table with :func:`estimates_frame`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import pandas as pd

__all__ = ["Estimate", "estimates_frame"]

#: Scales an estimate can be on, with the value meaning "no effect".
NULL_VALUE = {"risk_difference": 0.0, "difference": 0.0, "rate": None, "proportion": None,
              "risk_ratio": 1.0, "odds_ratio": 1.0, "hazard_ratio": 1.0, "ratio": 1.0, "count": None,
              "amount": None}


@dataclass(frozen=True)
class Estimate:
    """One estimated quantity with its confidence interval.

    Parameters
    ----------
    estimate : float
        The point estimate.
    ci_low, ci_high : float
        Confidence interval bounds (NaN when not available).
    p_value : float
        Two-sided p-value against the scale's null value (NaN when not tested).
    method : str
        How it was estimated, e.g. ``"Newcombe score interval"``.
    n : int
        Units the estimate is based on (appointments, patients, months...).
    scale : str
        What kind of number it is: one of ``risk_difference``, ``difference``,
        ``risk_ratio``, ``odds_ratio``, ``hazard_ratio``, ``ratio``, ``rate``,
        ``proportion``, ``count``, ``amount``.
    estimand : str
        What was estimated, in words (population and contrast).
    conf_level : float
        Confidence level of the interval, default 0.95.
    extras : Mapping
        Any further named numbers (standard error, arm rates...). Stored
        read-only.

    Examples
    --------
    >>> e = Estimate(-0.05, -0.09, -0.01, 0.01, "Wald", 1200, "risk_difference", "reminder vs none")
    >>> e.contains(-0.055)
    True
    >>> e.summary()[["estimate", "ci_low", "ci_high"]].round(2).to_dict("records")
    [{'estimate': -0.05, 'ci_low': -0.09, 'ci_high': -0.01}]
    """

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str
    n: int
    scale: str
    estimand: str = ""
    conf_level: float = 0.95
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scale not in NULL_VALUE:
            raise ValueError(f"scale must be one of {', '.join(NULL_VALUE)}, not {self.scale!r}")
        if not 0 < self.conf_level < 1:
            raise ValueError(f"conf_level must lie between 0 and 1, not {self.conf_level!r}")
        for name in ("estimate", "ci_low", "ci_high", "p_value"):
            value = getattr(self, name)
            object.__setattr__(self, name, float("nan") if value is None else float(value))
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "extras", MappingProxyType(dict(self.extras)))

    @property
    def null_value(self) -> float | None:
        """The value meaning "no effect" on this scale (None for rates and counts)."""
        return NULL_VALUE[self.scale]

    @property
    def significant(self) -> bool:
        """Whether the interval excludes the null value (False when there is none)."""
        null = self.null_value
        if null is None or math.isnan(self.ci_low) or math.isnan(self.ci_high):
            return False
        return not self.ci_low <= null <= self.ci_high

    def contains(self, value: float) -> bool:
        """Whether `value` lies inside the confidence interval (bounds included)."""
        return bool(self.ci_low <= value <= self.ci_high)

    def summary(self) -> pd.DataFrame:
        """One-row DataFrame: estimand, scale, estimate, ci_low, ci_high, p_value, n, method, then extras."""
        row = {"estimand": self.estimand, "scale": self.scale, "estimate": self.estimate, "ci_low": self.ci_low,
               "ci_high": self.ci_high, "p_value": self.p_value, "n": self.n, "method": self.method,
               "conf_level": self.conf_level}
        row.update({k: v for k, v in self.extras.items() if k not in row and _scalar(v)})
        return pd.DataFrame([row])

    def _fmt(self, value: float) -> str:
        if math.isnan(value):
            return "–"
        if self.scale in ("risk_difference", "rate", "proportion"):
            return f"{value:+.1%}" if self.scale == "risk_difference" else f"{value:.1%}"
        if self.scale in ("count", "amount"):
            return f"{value:,.0f}"
        return f"{value:.3g}"

    def __str__(self) -> str:
        level = f"{self.conf_level:.0%}"
        p = "" if math.isnan(self.p_value) else f", p={self.p_value:.3g}"
        what = f"{self.estimand}: " if self.estimand else ""
        return (f"{what}{self.scale} {self._fmt(self.estimate)} ({level} CI {self._fmt(self.ci_low)} to "
                f"{self._fmt(self.ci_high)}{p}; n={self.n:,}; {self.method})")

    def _repr_html_(self) -> str:
        level = f"{self.conf_level:.0%}"
        p = "–" if math.isnan(self.p_value) else f"{self.p_value:.3g}"
        cells = [escape(self.estimand or "–"), escape(self.scale), self._fmt(self.estimate),
                 f"{self._fmt(self.ci_low)} to {self._fmt(self.ci_high)}", p, f"{self.n:,}", escape(self.method)]
        head = ["estimand", "scale", "estimate", f"{level} CI", "p-value", "n", "method"]
        return ("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody><tr>"
                + "".join(f"<td>{c}</td>" for c in cells) + "</tr></tbody></table>")


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


def estimates_frame(estimates: Iterable[Estimate] | Mapping[str, Estimate], name: str = "name") -> pd.DataFrame:
    """Stack the summaries of several estimates into one table.

    Parameters
    ----------
    estimates : iterable of Estimate, or mapping of label to Estimate
        With a mapping, the labels become a first column called `name`.
    name : str
        Header of the label column.

    Returns
    -------
    pandas.DataFrame
        One row per estimate (columns of :meth:`Estimate.summary`; extras that
        only some estimates have are missing for the others).
    """
    if isinstance(estimates, Mapping):
        rows = [e.summary().assign(**{name: key}) for key, e in estimates.items()]
        if not rows:
            return pd.DataFrame(columns=[name, "estimand", "estimate", "ci_low", "ci_high", "p_value", "n"])
        out = pd.concat(rows, ignore_index=True)
        return out[[name, *[c for c in out.columns if c != name]]]
    rows = [e.summary() for e in estimates]
    if not rows:
        return pd.DataFrame(columns=["estimand", "estimate", "ci_low", "ci_high", "p_value", "n"])
    return pd.concat(rows, ignore_index=True)
