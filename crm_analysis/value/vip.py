"""VIP selection with reasons: who gets the birthday cake and the year-end concert invitation.

:func:`select_vips` applies rules kept in YAML (``crm_analysis/rules/vip.yaml``)
to :func:`~crm_analysis.features.patient_features`:

1. **Top value** — the top ``top_value_share`` of patients by ``value_12m``
   (charges in the last 12 months), counted among patients with any charge in
   that period. Ties are broken by ``patient_id``. The value of the last
   patient inside the top share is the *threshold*.
2. **Referral bonus** (optional) — the ranking score is
   ``value_12m × (1 + per_referral × min(referral_count, max_referrals))``.
   A patient outside the top share whose score reaches the threshold
   qualifies by ``referral_bonus``.
3. **Minimum visits** — everyone selected needs ``visits_12m >= min_visits``.
4. **Exclusions** — record status (deceased, moved), patients opted out of
   every channel, and listed ids are never selected (they still count when
   the top share is worked out, so excluding someone does not pull others in).
5. **Capacity** — candidates are ranked by score (then value, then id) and the
   first ``capacity`` are ``selected``.

Every row of the result says which rule qualified the patient (``rule``) and
why in words (``reason``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crm_analysis.value.segmentation import read_rules

__all__ = ["select_vips", "vip_rules", "vip_summary"]

_DEFAULTS_KEYS = {"top_value_share", "min_visits", "referral_bonus", "exclude", "capacity"}


def vip_rules(rules: str | Path | Mapping | None = None) -> dict[str, Any]:
    """The VIP rules: the packaged defaults updated with `rules` (a path or dict), checked.

    Raises
    ------
    ValueError
        Naming the bad key and the allowed values.
    """
    out = read_rules(None, "vip.yaml")
    if rules is not None:
        over = read_rules(rules, "vip.yaml")
        unknown = set(over) - _DEFAULTS_KEYS
        if unknown:
            raise ValueError(f"VIP rules: unknown key(s) {sorted(unknown)}; allowed: {sorted(_DEFAULTS_KEYS)}")
        for key, value in over.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = {**out[key], **value}
            else:
                out[key] = value
    share = out["top_value_share"]
    if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 < share <= 1:
        raise ValueError(f"VIP rules: top_value_share must be a fraction in (0, 1], e.g. 0.10 for the top 10%; "
                         f"got {share!r}")
    if not isinstance(out["min_visits"], int) or out["min_visits"] < 0:
        raise ValueError(f"VIP rules: min_visits must be a whole number >= 0; got {out['min_visits']!r}")
    cap = out["capacity"]
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise ValueError(f"VIP rules: capacity must be a whole number >= 1 or null (no limit); got {cap!r}")
    bonus = out["referral_bonus"]
    if not isinstance(bonus, Mapping) or not {"enabled", "per_referral", "max_referrals"} <= set(bonus):
        raise ValueError("VIP rules: referral_bonus needs enabled, per_referral and max_referrals")
    if bonus["per_referral"] < 0 or bonus["max_referrals"] < 0:
        raise ValueError("VIP rules: referral_bonus.per_referral and max_referrals must be >= 0")
    excl = out["exclude"]
    if not isinstance(excl, Mapping) or set(excl) - {"record_status", "opted_out_all", "patient_ids"}:
        raise ValueError("VIP rules: exclude may hold record_status (list), opted_out_all (true/false) "
                         "and patient_ids (list)")
    return out


def select_vips(features: pd.DataFrame, as_of, rules: str | Path | Mapping | None = None) -> pd.DataFrame:
    """Ranked VIP candidates, each with the rule that qualified them.

    Parameters
    ----------
    features : DataFrame
        From :func:`~crm_analysis.features.patient_features` at `as_of`
        (needs ``value_12m``, ``visits_12m``, ``referral_count``, and for the
        exclusions ``record_status`` and ``opted_out_all``).
    as_of : str or Timestamp
        The date the features describe; checked against ``features.attrs``.
    rules : str, Path, Mapping or None
        Overrides of ``rules/vip.yaml``.

    Returns
    -------
    DataFrame
        Indexed by ``patient_id``, ranked: ``rank`` (1 = first), ``selected``
        (within capacity), ``rule`` (``top_value`` or ``referral_bonus``),
        ``reason`` (plain words), ``value_12m``, ``visits_12m``,
        ``referral_count``, ``score``. Only qualified, non-excluded patients
        appear. ``attrs`` holds ``as_of``, ``threshold`` and ``excluded``
        (count of qualified patients removed by exclusions).

    Raises
    ------
    ValueError
        If the rules are malformed or `as_of` differs from the features' date.
    KeyError
        If a needed column is missing.
    """
    as_of = pd.Timestamp(as_of).normalize()
    feat_as_of = features.attrs.get("as_of")
    if feat_as_of is not None and pd.Timestamp(feat_as_of) != as_of:
        raise ValueError(f"the features describe {pd.Timestamp(feat_as_of):%Y-%m-%d}, not {as_of:%Y-%m-%d}; "
                         "compute patient_features at the same as_of")
    cfg = vip_rules(rules)
    need = ["value_12m", "visits_12m", "referral_count"]
    missing = [c for c in need if c not in features]
    if missing:
        raise KeyError(f"select_vips needs the column(s) {missing} from crm_analysis.features.patient_features")
    value = features["value_12m"].fillna(0).to_numpy(dtype="float64")
    visits = features["visits_12m"].fillna(0).to_numpy()
    refs = features["referral_count"].fillna(0).to_numpy()
    ids = features.index.to_numpy().astype(str)

    # 1. top share by value among patients with any value (ties by patient_id)
    active = value > 0
    n_top = math.ceil(cfg["top_value_share"] * active.sum()) if active.any() else 0
    order = np.lexsort((ids, -value))                 # value desc, then id
    top = np.zeros(len(value), dtype=bool)
    top[order[:n_top]] = True
    threshold = float(value[order[n_top - 1]]) if n_top else np.inf

    # 2. referral bonus
    bonus = cfg["referral_bonus"]
    mult = 1 + (bonus["per_referral"] * np.minimum(refs, bonus["max_referrals"]) if bonus["enabled"] else 0)
    score = value * mult
    by_bonus = ~top & bool(bonus["enabled"]) & (refs > 0) & active & (score >= threshold)

    # 3. minimum visits, 4. exclusions
    qualified = (top | by_bonus) & (visits >= cfg["min_visits"])
    excl = cfg["exclude"]
    excluded = np.zeros(len(value), dtype=bool)
    if excl.get("record_status") and "record_status" in features:
        excluded |= features["record_status"].astype("object").isin(list(excl["record_status"])).to_numpy()
    if excl.get("opted_out_all") and "opted_out_all" in features:
        excluded |= features["opted_out_all"].fillna(False).to_numpy(dtype=bool)
    if excl.get("patient_ids"):
        excluded |= np.isin(ids, [str(i) for i in excl["patient_ids"]])
    keep = qualified & ~excluded

    # 5. rank and capacity
    pos = np.flatnonzero(keep)
    pos = pos[np.lexsort((ids[pos], -value[pos], -score[pos]))]
    rank = np.arange(1, len(pos) + 1)
    cap = cfg["capacity"]
    selected = rank <= cap if cap is not None else np.ones(len(pos), dtype=bool)
    rule = np.where(top[pos], "top_value", "referral_bonus")
    pct = round(cfg["top_value_share"] * 100, 2)
    reason = np.where(
        top[pos],
        [f"top {pct:g}% by 12-month value ({v:,.0f} KRW ≥ {threshold:,.0f}); {int(n)} visit days"
         for v, n in zip(value[pos], visits[pos])],
        [f"referral bonus: {int(r)} referred patient(s) raise {v:,.0f} KRW to a score of {s:,.0f} ≥ "
         f"{threshold:,.0f}; {int(n)} visit days" for r, v, s, n in zip(refs[pos], value[pos], score[pos], visits[pos])],
    ).astype(object)
    if cap is not None:
        reason[~selected] = [f"{t} — over capacity ({cap})" for t in reason[~selected]]
    out = pd.DataFrame({
        "rank": rank, "selected": selected, "rule": pd.Categorical(rule, categories=["top_value", "referral_bonus"]),
        "reason": reason, "value_12m": value[pos], "visits_12m": visits[pos], "referral_count": refs[pos],
        "score": score[pos],
    }, index=features.index[pos])
    out.attrs.update(as_of=as_of, threshold=threshold, excluded=int((qualified & excluded).sum()),
                     rules=cfg)
    return out


def vip_summary(vips: pd.DataFrame) -> pd.DataFrame:
    """Counts and value of VIP candidates by rule and selection (aggregates only, no ids)."""
    g = vips.groupby(["rule", "selected"], observed=False)
    out = pd.DataFrame({"patients": g.size(), "value_12m_total": g["value_12m"].sum(),
                        "value_12m_mean": g["value_12m"].mean(), "visits_12m_mean": g["visits_12m"].mean()})
    return out.reset_index()
