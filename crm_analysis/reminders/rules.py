"""The reminder evaluation's rules: defaults shipped as YAML, overridable by the analyst.

The defaults live in ``crm_analysis/rules/reminders.yaml``. Every function of
:mod:`crm_analysis.reminders` takes ``rules=``: ``None`` (the defaults), a path
to a YAML file or a dict. Overrides are merged into the defaults key by key
(nested sections too), so an override names only what changes, e.g.
``{"message_cost_krw": {"sms": 30}, "rollouts": []}``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.rule_files import load_rule_file

__all__ = ["load_rules", "rules_within", "DEFAULT_RULES_PATH"]

DEFAULT_RULES_PATH = Path(__file__).resolve().parents[1] / "rules" / "reminders.yaml"


def load_rules(rules: str | os.PathLike | Mapping | None = None) -> Mapping[str, Any]:
    """The reminder rules: the shipped defaults with `rules` merged in.

    Parameters
    ----------
    rules : path, mapping or None
        A YAML file or a dict of overrides; None for the defaults. An already
        loaded rules mapping is returned unchanged.

    Returns
    -------
    Mapping
        Read-only nested mapping (lists become tuples).

    Raises
    ------
    CrmAnalysisError
        If a key is unknown or a value is out of range, naming the key.
    """
    return load_rule_file(rules, defaults_path=DEFAULT_RULES_PATH, what="reminder",
                          check=_check, open_sections=("message_cost_krw",))


def _check(r: dict) -> None:
    lead = r["eligible_min_lead_days"]
    if not isinstance(lead, int) or lead < 0:
        raise CrmAnalysisError(f"eligible_min_lead_days must be a whole number of days >= 0, not {lead!r}")
    bands = list(r["lead_bands"])
    if not bands or bands != sorted(set(bands)) or bands[0] < lead:
        raise CrmAnalysisError("lead_bands must be increasing whole numbers of days starting at "
                               f"eligible_min_lead_days or later, e.g. [3, 5, 8, 15, 29]; got {bands!r}")
    dates = []
    for item in r["rollouts"] or []:
        if not isinstance(item, Mapping) or "date" not in item:
            raise CrmAnalysisError("each roll-out needs a date, e.g. rollouts: [{date: '2024-09-01', schedule: '1d'}]")
        try:
            dates.append(pd.Timestamp(item["date"]))
        except (ValueError, TypeError):
            raise CrmAnalysisError(f"roll-out date {item['date']!r} is not a date (use YYYY-MM-DD)") from None
    if dates != sorted(dates):
        raise CrmAnalysisError("rollouts must be listed oldest first")
    if r["pilot_month"] is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(r["pilot_month"])):
        raise CrmAnalysisError(f"pilot_month {r['pilot_month']!r} is not a month (use YYYY-MM, e.g. '2024-06')")
    for ch, cost in r["message_cost_krw"].items():
        if not isinstance(cost, (int, float)) or cost < 0:
            raise CrmAnalysisError(f"message_cost_krw.{ch} must be a number of won >= 0, not {cost!r}")
    rev = r["revenue_per_visit_krw"]
    if rev is not None and (not isinstance(rev, (int, float)) or rev < 0):
        raise CrmAnalysisError(f"revenue_per_visit_krw must be null or a number of won >= 0, not {rev!r}")
    refill = r["slot_refill_rate"]
    if isinstance(refill, bool) or not isinstance(refill, (int, float)) or not 0 <= refill <= 1:
        raise CrmAnalysisError(f"slot_refill_rate must be a share between 0 and 1 (0 = a cancelled slot is never "
                               f"filled again), not {refill!r}")
    if r["cost_effect"] not in COST_EFFECTS:
        raise CrmAnalysisError(f"cost_effect must be one of {', '.join(COST_EFFECTS)}, not {r['cost_effect']!r}")
    most = r["model"]["max_patients"]
    if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 1):
        raise CrmAnalysisError(f"model.max_patients must be null or a whole number of patients, not {most!r}")
    if r["its"]["frequency"] not in ("M", "W"):
        raise CrmAnalysisError(f"its.frequency must be 'M' (monthly) or 'W' (weekly), not {r['its']['frequency']!r}")


#: The estimates the cost-benefit can value (rule ``cost_effect``).
COST_EFFECTS = ("pilot", "adjusted")


def rules_within(rules, first: pd.Timestamp, last: pd.Timestamp) -> tuple[Mapping[str, Any], bool]:
    """The rules with the programme dates the data cannot see left out.

    Roll-outs dated after `first` and on or before `last` (the first and last scheduled appointments) are
    kept; the pilot month is kept when it falls in that window. So the shipped defaults, written for the
    demo clinic, do no harm on other data.

    Parameters
    ----------
    rules : path, mapping or None
    first, last : Timestamp

    Returns
    -------
    (Mapping, bool)
        The rules, and whether some roll-out was left out.
    """
    r = load_rules(rules)
    rollouts = [dict(x) for x in r["rollouts"] or [] if first < pd.Timestamp(x["date"]) <= last]
    pilot = r["pilot_month"]
    if pilot and not (first.to_period("M") <= pd.Period(str(pilot), freq="M") <= last.to_period("M")):
        pilot = None
    override = _thaw({k: v for k, v in r.items() if k != "_loaded"})
    override.update(rollouts=rollouts, pilot_month=pilot)
    return load_rules(override), len(rollouts) < len(r["rollouts"] or [])


def _thaw(value):
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value
