"""The churn rules: defaults shipped as YAML, overridable by the analyst.

The defaults live in ``crm_analysis/rules/churn.yaml``: the churn definition,
the recall band and exclusions, and the model settings. Every function of
:mod:`crm_analysis.churn` that uses them takes ``rules=``: ``None`` (the
defaults), a path to a YAML file or a dict. Overrides are merged into the
defaults key by key, so an override names only what changes, e.g.
``{"churn": {"max_return_probability": 0.1}}``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.rule_files import load_rule_file

__all__ = ["load_churn_rules", "DEFAULT_RULES_PATH"]

DEFAULT_RULES_PATH = Path(__file__).resolve().parents[1] / "rules" / "churn.yaml"
_RANK_KEYS = ("overdue_ratio", "p_return", "elapsed_days", "expected_days")


def load_churn_rules(rules: str | os.PathLike | Mapping | None = None) -> Mapping[str, Any]:
    """The churn rules: the shipped defaults with `rules` merged in.

    Parameters
    ----------
    rules : path, mapping or None
        A YAML file or a dict of overrides; None for the defaults. Already
        loaded rules are returned unchanged.

    Returns
    -------
    Mapping
        Read-only nested mapping (lists become tuples).

    Raises
    ------
    CrmAnalysisError
        If a key is unknown or a value is out of range, naming the key and
        how to fix it.
    """
    return load_rule_file(rules, defaults_path=DEFAULT_RULES_PATH, what="churn",
                          check=_check, open_sections=())


def _days(value: Any, name: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CrmAnalysisError(f"{name} must be a whole number of days >= {minimum}, not {value!r}")


def _prob(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise CrmAnalysisError(f"{name} must be a probability between 0 and 1, not {value!r}")


def _check(r: dict) -> None:
    _days(r["churn"]["horizon_days"], "churn.horizon_days")
    _prob(r["churn"]["max_return_probability"], "churn.max_return_probability")
    _prob(r["churn"]["max_calibration_error"], "churn.max_calibration_error")
    rec = r["recall"]
    _days(rec["horizon_days"], "recall.horizon_days")
    band = rec["band"]
    if not isinstance(band, (list, tuple)) or len(band) != 2:
        raise CrmAnalysisError(f"recall.band must be two probabilities [low, high], e.g. [0.2, 0.6]; got {band!r}")
    _prob(band[0], "recall.band[0]")
    _prob(band[1], "recall.band[1]")
    if not band[0] < band[1]:
        raise CrmAnalysisError(f"recall.band must have low < high, e.g. [0.2, 0.6]; got {band!r}")
    ratio = rec["min_overdue_ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio < 0:
        raise CrmAnalysisError(f"recall.min_overdue_ratio must be a number >= 0 (0 = no overdue condition), "
                               f"not {ratio!r}")
    _days(rec["contacted_within_days"], "recall.contacted_within_days", minimum=0)
    bad = [k for k in rec["rank_by"] if k not in _RANK_KEYS]
    if not rec["rank_by"] or bad:
        raise CrmAnalysisError(f"recall.rank_by must list some of {', '.join(_RANK_KEYS)}; got {rec['rank_by']!r}")
    cap = rec["max_candidates"]
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise CrmAnalysisError(f"recall.max_candidates must be null or a whole number >= 1, not {cap!r}")
    m = r["model"]
    if m["covariates"] not in ("prediction", "truth"):
        raise CrmAnalysisError(f"model.covariates must be 'prediction' or 'truth', not {m['covariates']!r}")
    for key in ("max_gaps", "weibull_max_gaps", "ph_test_gaps", "restricted_days", "min_own_gaps"):
        _days(m[key], f"model.{key}")
    if isinstance(m["penalizer"], bool) or not isinstance(m["penalizer"], (int, float)) or m["penalizer"] < 0:
        raise CrmAnalysisError(f"model.penalizer must be a number >= 0, not {m['penalizer']!r}")
    if not isinstance(m["tail"], bool):
        raise CrmAnalysisError(f"model.tail must be true or false, not {m['tail']!r}")
    q = m["tail_start_quantile"]
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q < 1:
        raise CrmAnalysisError(f"model.tail_start_quantile must be a number between 0 and 1 (e.g. 0.9), not {q!r}")
    n = m["tail_min_at_risk"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise CrmAnalysisError(f"model.tail_min_at_risk must be a whole number of gaps >= 1, not {n!r}")
