"""The hospital loyalty score: frequency, regularity, inpatient days and per-diem value in one number.

Method
------
A hospital loyalty study measured loyalty with four behaviours: how often a
patient comes (visit frequency), how regularly (the visit interval), how much
inpatient care they received (total inpatient days) and how valuable each day
of care is (per-diem charge). :func:`loyalty_score` combines the same four
measures from :func:`~crm_analysis.features.patient_features`:

1. Each measure becomes a **percentile**: the share of the clinic's patients
   with a strictly lower value (regularity is reversed: a low coefficient of
   variation of the gaps means regular visits). Percentiles put visit counts,
   days and won on one 0-1 scale, are not thrown by the very skewed charges,
   and read plainly ("more regular than 80% of patients"). Ties share a value,
   so the many patients with no inpatient day all get 0 on that measure.
2. The score is **100 × the weighted mean** of the four percentiles. Default
   weights (``rules/loyalty.yaml``): frequency 0.35 (the most direct sign of
   loyalty), regularity 0.25 (planned, continuing care such as chronic
   disease follow-up), per-diem value 0.25, inpatient days 0.15 (rare, so a
   lower weight keeps a single stay from dominating).
3. **Tiers** (Platinum, Gold, Silver, Bronze) come from score cut points in
   the same YAML file.

A first principal component was considered and rejected: its loadings change
from clinic to clinic and month to month, so a score of 70 would not mean the
same thing next month, and it cannot be explained to a manager in one line.
Percentile scores are relative to the clinic's own patients on ``as_of``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crm_analysis.value.segmentation import read_rules

__all__ = ["loyalty_score", "loyalty_rules", "loyalty_tier_summary", "plot_loyalty_distribution"]


def loyalty_rules(rules: str | Path | Mapping | None = None) -> dict[str, Any]:
    """The loyalty rules: packaged defaults updated with `rules` (path or dict), checked.

    Raises
    ------
    ValueError
        If a component or tier is malformed.
    """
    out = read_rules(None, "loyalty.yaml")
    if rules is not None:
        over = read_rules(rules, "loyalty.yaml")
        bad = set(over) - {"components", "tiers"}
        if bad:
            raise ValueError(f"loyalty rules: unknown key(s) {sorted(bad)}; allowed: components, tiers")
        out.update(over)
    comps = out["components"]
    if not isinstance(comps, Mapping) or not comps:
        raise ValueError("loyalty rules: 'components' must map names to {column, weight, higher_is_better}")
    for name, c in comps.items():
        if not isinstance(c, Mapping) or "column" not in c or "weight" not in c:
            raise ValueError(f"loyalty rules: component {name!r} needs 'column' and 'weight'")
        if not isinstance(c["weight"], (int, float)) or c["weight"] < 0:
            raise ValueError(f"loyalty rules: component {name!r} weight must be a number >= 0")
    if sum(c["weight"] for c in comps.values()) <= 0:
        raise ValueError("loyalty rules: at least one component needs a positive weight")
    tiers = out["tiers"]
    if not isinstance(tiers, list) or not tiers or not all(isinstance(t, Mapping) and "name" in t
                                                           and "min_score" in t for t in tiers):
        raise ValueError("loyalty rules: 'tiers' must be a list of {name, min_score} (highest first)")
    mins = [t["min_score"] for t in tiers]
    if mins != sorted(mins, reverse=True) or mins[-1] > 0:
        raise ValueError("loyalty rules: tiers must go from the highest min_score down, and the last "
                         "tier needs min_score: 0 so every patient gets one")
    return out


def loyalty_score(features: pd.DataFrame, rules: str | Path | Mapping | None = None) -> pd.DataFrame:
    """The loyalty score (0-100) and tier of every patient.

    Parameters
    ----------
    features : DataFrame
        From :func:`~crm_analysis.features.patient_features`.
    rules : str, Path, Mapping or None
        Overrides of ``rules/loyalty.yaml``.

    Returns
    -------
    DataFrame
        Same index: one ``pct_<component>`` column per component (0-1),
        ``loyalty_score`` (0-100) and ``loyalty_tier`` (ordered categorical,
        lowest tier first).

    Raises
    ------
    KeyError
        If a component's column is missing from `features`.
    """
    cfg = loyalty_rules(rules)
    comps = cfg["components"]
    missing = [c["column"] for c in comps.values() if c["column"] not in features]
    if missing:
        raise KeyError(f"loyalty_score needs the column(s) {missing} from crm_analysis.features.patient_features")
    n = len(features)
    out = pd.DataFrame(index=features.index)
    total_w = sum(float(c["weight"]) for c in comps.values())
    score = np.zeros(n)
    for name, c in comps.items():
        x = features[c["column"]].to_numpy(dtype="float64", na_value=np.nan)
        if not c.get("higher_is_better", True):
            x = -x
        pct = _share_below(x)
        out[f"pct_{name}"] = pct
        score += float(c["weight"]) * pct
    out["loyalty_score"] = 100 * score / total_w
    tiers = cfg["tiers"]
    code = np.full(n, len(tiers) - 1)
    for i in range(len(tiers) - 1, -1, -1):
        code = np.where(out["loyalty_score"].to_numpy() >= tiers[i]["min_score"], i, code)
    names = [t["name"] for t in tiers]
    # categories lowest first so the categorical is ordered by loyalty
    out["loyalty_tier"] = pd.Categorical.from_codes(len(tiers) - 1 - code, categories=names[::-1], ordered=True)
    return out


def _share_below(x: np.ndarray) -> np.ndarray:
    """Share of all values strictly below each value (missing values get 0 and count as lowest)."""
    n = len(x)
    if n == 0:
        return x
    valid = ~np.isnan(x)
    sorted_valid = np.sort(x[valid])
    out = np.zeros(n)
    out[valid] = (np.searchsorted(sorted_valid, x[valid], side="left") + (~valid).sum()) / n
    return out


def loyalty_tier_summary(features: pd.DataFrame, loyalty: pd.DataFrame, *, lang: str = "en",
                         rules: str | Path | Mapping | None = None) -> pd.DataFrame:
    """Patients, share and mean measures per tier (highest tier first)."""
    cfg = loyalty_rules(rules)
    df = features[["frequency", "inpatient_days", "per_diem_charge", "value_12m"]].join(loyalty)
    g = df.groupby("loyalty_tier", observed=False)
    out = pd.DataFrame({"patients": g.size(), "score_mean": g["loyalty_score"].mean(),
                        "frequency_mean": g["frequency"].mean(), "inpatient_days_mean": g["inpatient_days"].mean(),
                        "per_diem_mean": g["per_diem_charge"].mean(), "value_12m_mean": g["value_12m"].mean()})
    out.insert(1, "share", out["patients"] / max(len(df), 1))
    out = out.iloc[::-1]
    names = {t["name"]: t.get("ko", t["name"]) if lang == "ko" else t["name"] for t in cfg["tiers"]}
    out.index = [names[str(i)] for i in out.index]
    return out.rename_axis("tier").reset_index()


def plot_loyalty_distribution(loyalty: pd.DataFrame, lang: str = "ko", ax=None,
                              rules: str | Path | Mapping | None = None):
    """Histogram of the loyalty score with the tier cut points marked."""
    import matplotlib.pyplot as plt

    from crm_analysis.i18n import label

    cfg = loyalty_rules(rules)
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    ax.hist(loyalty["loyalty_score"], bins=np.arange(0, 102.5, 2.5), color="#4C72B0")
    for t in cfg["tiers"][:-1]:
        ax.axvline(t["min_score"], color="grey", ls="--", lw=1)
        ax.text(t["min_score"] + 0.5, ax.get_ylim()[1] * 0.95, t.get("ko", t["name"]) if lang == "ko" else t["name"],
                fontsize=8, va="top")
    ax.set_title(label("seg_loyalty_title", lang))
    ax.set_xlabel(label("seg_loyalty_xlabel", lang))
    ax.set_ylabel(label("seg_patients_axis", lang))
    return ax
