"""The network summary: the branches' ``kpis.json`` side by side, with honest network totals.

Built by :func:`crm_analysis.network.run.run_network` after the branches have
run, into ``<out>/network/YYYY-MM/``. Only the contents of the branches'
``kpis.json`` files reach this module, never patient rows.

:func:`network_summary` returns a JSON-ready dict; :func:`network_json` is its
file text, :func:`network_html` / :func:`write_network_pdf` (in
:mod:`crm_analysis.network.summary_html`) the report for managers.

Rules for the figures
---------------------
- **Branch values** are copied from the branch's ``kpis.json``. A branch whose
  ``kpis.json`` was made with a lower ``min_count`` than the network's is not
  used at all (it is listed as missing): hiding its single small cells again
  here could be undone by subtraction from its own totals. As a second guard,
  counts from 1 to ``min_count - 1`` are hidden again; a rate or an effect is
  hidden with its counts. Values already hidden in the branch stay hidden.
- **Network totals** cover the branches that reported. A total is None when
  any reporting branch's value is hidden or not available: a sum with one
  hidden part would give that part away by subtraction.
- **Network rates** (no-show, retention, churn) come from summed numerators
  and denominators, never from a mean of the branches' rates.
- **Network effects** (reminder effect, campaign lift) are fixed-effect
  inverse-variance pools of the branch estimates: they assume one common
  effect across branches. Each branch's standard error is taken from its
  95% CI as ``(high - low) / (2 * 1.96)``, so the CIs are taken as symmetric.
  The branches hold different patients, so the estimates are independent.
  Cochran's Q (with its chi-square p-value) and I² say how far the branches
  disagree beyond chance; a large I² means the common-effect assumption is
  doubtful. The reminder effect is pooled only when every branch runs the
  same reminder schedule.
- **Missing branches** (no ``kpis.json``, a failed run, one for another
  month, or one made with a lower ``min_count``) are listed with their
  one-line reason and left out of the totals.

The summary's keys
------------------
``month``, ``network``, ``min_count``, ``n_branches``, ``reported`` (ids),
``failed`` (ids), ``missing`` (``id``, ``name``, ``reason``), ``clinics``
(one headline row per reporting branch: ``active_12m``, ``new_month``,
``returning_month``, ``retention_rate``, ``no_show_rate``, ``vip_count``,
``revenue_total``), ``totals`` (the same keys for the network), and
``sections``: ``no_show``, ``retention``, ``vip``, ``campaigns``,
``revenue``, and ``churn`` when any branch has it. Each section has ``rows``
(``id``, ``name``, ``available``, ``hidden_below`` and the figures) and
``total``. The pooled effects in the totals carry ``q``, ``q_p_value`` and
``i2`` (None for fewer than two branches).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from crm_analysis.privacy import DEFAULT_MIN_COUNT, check_threshold, shown_count

__all__ = ["network_summary", "network_json", "network_html", "write_network_pdf", "pool_effects",
           "DEFAULT_MIN_COUNT", "SCHEMA_VERSION"]

#: Bumped when a key of ``network_kpis.json`` changes meaning or disappears.
SCHEMA_VERSION = 1
#: The 97.5% normal quantile: 95% intervals.
_Z = 1.959963984540054
#: The reason shown for a missing branch whose failure was not recorded.
NO_REASON = "no reason recorded"
#: How a network effect is pooled (also shown in the HTML/PDF notes).
POOL_METHOD = ("fixed-effect pool (assumes one common effect across branches; "
               "standard errors from symmetric 95% CIs)")
#: The heterogeneity keys of a pooled effect.
_HETEROGENEITY = ("q", "q_p_value", "i2")


# --------------------------------------------------------------------------- small helpers

def _get(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _count(value: Any, min_count: int) -> int | None:
    """A count, or None when missing or small enough to single someone out (1 .. min_count - 1)."""
    if value is None or isinstance(value, bool):  # a branch's hidden or missing figure stays hidden
        return None
    return shown_count(value, min_count)


def _sum(values: list) -> Any:
    """The sum, or None when any part is hidden or missing (or there is nothing to add)."""
    return sum(values) if values and all(v is not None for v in values) else None


def _ratio(numerator: Any, denominator: Any) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 4)


def _shown_if(value: Any, *counts: Any) -> Any:
    """`value` when every count it is built on is shown, else None."""
    return None if value is None or any(c is None for c in counts) else value


def pool_effects(effects: list[tuple[float, float, float]]) -> dict | None:
    """Fixed-effect inverse-variance pool of independent estimates with 95% CIs, with heterogeneity
    (:func:`statsmodels.stats.meta_analysis.combine_effects`).

    The pool assumes one common effect across branches. Each standard error is taken from a
    symmetric 95% CI as ``(high - low) / (2 * 1.96)``.

    Parameters
    ----------
    effects : list of (estimate, ci_low, ci_high)
        One per branch.

    Returns
    -------
    dict or None
        ``estimate``, ``ci_low``, ``ci_high``, ``n_branches``, ``method`` and the heterogeneity:
        ``q`` (Cochran's Q, ``sum(w_i * (e_i - pooled) ** 2)`` with ``w_i = 1 / se_i ** 2``),
        ``q_p_value`` (``P(chi2(k - 1) >= Q)``) and ``i2`` (``max(0, (Q - (k - 1)) / Q)``, a
        share from 0 to 1; 0 when Q is 0). Numbers are rounded to 4 decimals. None when
        `effects` is empty, a value is missing, or a CI has no width. A single estimate is
        returned as it is, with the heterogeneity keys None.
    """
    if not effects or any(v is None for e in effects for v in e):
        return None
    if len(effects) == 1:
        est, low, high = effects[0]
        return {"estimate": est, "ci_low": low, "ci_high": high, "n_branches": 1, "method": "one branch",
                **dict.fromkeys(_HETEROGENEITY)}
    from statsmodels.stats.meta_analysis import combine_effects

    se = np.array([(high - low) / (2 * _Z) for _, low, high in effects])
    if (se <= 0).any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):  # identical estimates: Q = 0 and I² = 0/0
        pooled = combine_effects(np.array([e for e, _, _ in effects]), se ** 2, use_t=False)
        low, high = pooled.conf_int(use_t=False)[0]  # the fixed-effect interval comes first
    q = float(pooled.q)
    # I² = max(0, (Q - df) / Q), statsmodels' formula clipped; 0 when Q is 0 up to rounding (identical estimates
    # can give Q = -1e-16, and statsmodels' ratio then explodes)
    i2 = max(0.0, (q - (len(effects) - 1)) / q) if q > 1e-9 else 0.0
    return {"estimate": round(float(pooled.mean_effect_fe), 4), "ci_low": round(float(low), 4),
            "ci_high": round(float(high), 4), "n_branches": len(effects), "method": POOL_METHOD,
            "q": round(q, 4), "q_p_value": round(float(pooled.test_homogeneity().pvalue), 4),
            "i2": round(i2, 4)}


# --------------------------------------------------------------------------- the sections, branch by branch
# Each takes (sections of one branch's kpis.json, min_count) and returns that branch's figures.

def _no_show(s: dict, m: int) -> dict:
    month = _get(s, "no_show", "month") or {}
    appts, no_shows = _count(month.get("appointments"), m), _count(month.get("no_shows"), m)
    rem = s.get("reminder_effect") or {}
    ok = bool(rem.get("available")) and None not in (_count(rem.get("appointments"), m),
                                                      _count(rem.get("patients"), m))
    effect = {k: rem.get(k) if ok else None for k in ("risk_difference", "ci_low", "ci_high")}
    if None in effect.values():
        effect = dict.fromkeys(effect)
    return {"available": bool(_get(s, "no_show", "available")), "appointments": appts, "no_shows": no_shows,
            "rate": _shown_if(month.get("rate"), appts, no_shows),
            "reminder_available": bool(rem.get("available")), **effect,
            "regime": rem.get("regime") if rem.get("available") else None}


def _retention(s: dict, m: int) -> dict:
    ret, pat = s.get("retention") or {}, s.get("patients") or {}
    base, kept = _count(ret.get("base"), m), _count(ret.get("retained"), m)
    # the row is the patient figures' (retention needs 24 months; without them base/retained/rate are null)
    return {"available": bool(pat.get("available")), "retention_available": bool(ret.get("available")),
            "base": base,
            "retained": kept, "rate": _shown_if(ret.get("rate"), base, kept),
            **{k: _count(pat.get(k), m) for k in ("active_12m", "new_month", "returning_month")}}


def _vip(s: dict, m: int) -> dict:
    vip = s.get("vip") or {}
    return {"available": bool(vip.get("available")), **{k: _count(vip.get(k), m) for k in ("count", "entered", "left")}}


_CAMPAIGN_COUNTS = ("n_sent", "n_holdout", "returned_sent", "returned_holdout")


def _lift(block: Any, m: int) -> dict:
    """One campaign kind (or the pooled line) of a branch: counts re-hidden, lift hidden with them."""
    block = block if isinstance(block, dict) else {}
    counts = {k: _count(block.get(k), m) for k in _CAMPAIGN_COUNTS}
    ok = None not in counts.values() and None not in (block.get("lift"), block.get("ci_low"), block.get("ci_high"))
    return {**counts, **{k: block.get(k) if ok else None for k in ("lift", "ci_low", "ci_high")}}


def _campaigns(s: dict, m: int) -> dict:
    camp = s.get("campaigns") or {}
    last = _get(camp, "last_12m") or {}
    kinds = {str(r.get("kind")): _lift(r, m) for r in last.get("rows") or []}
    return {"available": bool(camp.get("available")), "kinds": kinds,
            "overall": _lift(last.get("overall"), m) if last.get("overall") else None}


def _revenue(s: dict, m: int) -> dict:
    rev = s.get("revenue_by_department") or {}
    total = rev.get("total") or {}
    departments = {str(r.get("department")): r.get("total") for r in rev.get("rows") or []}
    return {"available": bool(rev.get("available")),
            **{k: total.get(k) for k in ("insured", "self_pay", "total")}, "departments": departments}


def _churn(s: dict, m: int) -> dict:
    ch = s.get("churn") or {}
    patients, churned = _count(ch.get("patients"), m), _count(ch.get("churned"), m)
    return {"available": bool(ch.get("available")), "patients": patients, "churned": churned,
            "rate": _shown_if(ch.get("churn_rate"), patients, churned),
            "recall_candidates": _count(ch.get("recall_candidates"), m)}


# --------------------------------------------------------------------------- network totals

def _sum_keys(rows: list[dict], keys: tuple[str, ...]) -> dict:
    return {k: _sum([r[k] if r["available"] else None for r in rows]) for k in keys}


def _no_show_total(rows: list[dict]) -> dict:
    total = _sum_keys(rows, ("appointments", "no_shows"))
    regimes = {r["regime"] for r in rows}
    pooled = pool_effects([(r["risk_difference"], r["ci_low"], r["ci_high"]) for r in rows]) \
        if len(regimes) == 1 else None
    return {**total, "rate": _ratio(total["no_shows"], total["appointments"]),
            "risk_difference": pooled and pooled["estimate"], "ci_low": pooled and pooled["ci_low"],
            "ci_high": pooled and pooled["ci_high"], "regime": regimes.pop() if len(regimes) == 1 else None,
            "effect_method": pooled and pooled["method"],
            **{k: pooled and pooled[k] for k in _HETEROGENEITY}}


def _campaign_total(rows: list[dict], kinds: list[str]) -> dict:
    out = {}
    for kind in [*kinds, "overall"]:
        blocks = [r["overall"] if kind == "overall" else r["kinds"].get(kind) for r in rows]
        if not all(r["available"] for r in rows):
            blocks = [None] * len(rows)  # a branch without campaign data: its part is unknown
            ran = blocks
        else:  # a branch that did not run this kind adds nothing (it is not hidden, it is zero)
            ran = [b for b in blocks if b is not None]
        counts = {k: _sum([b and b[k] for b in ran]) for k in _CAMPAIGN_COUNTS}
        pooled = pool_effects([(b["lift"], b["ci_low"], b["ci_high"]) for b in ran]) if ran and None not in ran \
            else None
        out[kind] = {**counts, "lift": pooled and pooled["estimate"], "ci_low": pooled and pooled["ci_low"],
                     "ci_high": pooled and pooled["ci_high"], "n_branches": len(ran) if None not in ran else None,
                     "method": pooled and pooled["method"], **{k: pooled and pooled[k] for k in _HETEROGENEITY}}
    return out


def _revenue_total(rows: list[dict], departments: list[str]) -> dict:
    total = _sum_keys(rows, ("insured", "self_pay", "total"))
    # A department a branch did not see this month is 0 there; a hidden one (None) hides the network cell.
    total["departments"] = {d: _sum([r["departments"].get(d, 0) if r["available"] else None for r in rows])
                            for d in departments}
    return total


# --------------------------------------------------------------------------- the summary

_SECTIONS: dict[str, Callable[[dict, int], dict]] = {
    "no_show": _no_show, "retention": _retention, "vip": _vip, "campaigns": _campaigns, "revenue": _revenue,
    "churn": _churn}


def _missing_reason(cid: str, data: Any, month: str, failures: dict[str, str], min_count: int) -> str | None:
    """Why a branch cannot be used, or None when it can."""
    if data is None:
        reason = str(failures.get(cid) or NO_REASON).strip()
        return reason.splitlines()[0] if reason else NO_REASON
    if not isinstance(data, dict) or not isinstance(data.get("sections"), dict):
        return "its kpis.json has no 'sections'; rerun the branch's monthly job"
    if data.get("month") not in (None, month):
        return f"its kpis.json is for {data.get('month')}, not {month}; rerun the branch for {month}"
    branch_min = data.get("min_count")
    if isinstance(branch_min, (int, float)) and branch_min < min_count:
        # Its figures were suppressed below a lower threshold: re-hiding single cells here could still be
        # undone by subtraction from the branch's own totals.
        return (f"its kpis.json hides counts below {branch_min:g}, not {min_count}; "
                f"rerun the branch with --min-count {min_count}")
    return None


def network_summary(month: str, kpis: dict[str, dict | None], names: dict[str, str],
                    failures: dict[str, str] | None = None, network: str = "",
                    min_count: int = DEFAULT_MIN_COUNT) -> dict:
    """The branches' KPIs side by side, with network totals, as a JSON-ready dict.

    Parameters
    ----------
    month : str
        ``YYYY-MM``.
    kpis : dict
        Branch id -> the parsed ``kpis.json`` of that branch, or None when it failed or is missing.
    names : dict
        Branch id -> display name. A branch named here but absent from `kpis` is missing.
    failures : dict, optional
        Branch id -> one-line reason for the failure (only the first line is kept).
    network : str
        The network's name.
    min_count : int
        Counts from 1 to ``min_count - 1`` are hidden. A branch whose kpis.json was made with a
        lower threshold is listed as missing (rerun it with this one), never shown.

    Returns
    -------
    dict
        Deterministic (branches sorted by id); see the module docstring for the keys. A total
        is None when any reporting branch's part is hidden or not available.

    Raises
    ------
    ValueError
        If `min_count` is not a whole number of at least 1.
    TypeError
        If `kpis` or `names` is not a dict.

    See Also
    --------
    network_json, network_html, write_network_pdf
    """
    min_count = check_threshold(min_count)
    if not isinstance(kpis, dict) or not isinstance(names, dict):
        raise TypeError("kpis and names must be dicts keyed by branch id (kpis: id -> parsed kpis.json or None)")
    failures = dict(failures or {})
    ids = sorted({str(c) for c in kpis} | {str(c) for c in names} | {str(c) for c in failures})
    name_of = {cid: str(names.get(cid) or cid) for cid in ids}
    reported, missing = [], []
    for cid in ids:
        reason = _missing_reason(cid, kpis.get(cid), month, failures, min_count)
        if reason is None:
            reported.append(cid)
        else:
            missing.append({"id": cid, "name": name_of[cid], "reason": reason})
    sections: dict[str, dict] = {}
    for key, build in _SECTIONS.items():
        rows = []
        for cid in reported:
            data = kpis[cid]
            figures = build(data["sections"], min_count)
            hidden_below = max(min_count, int(data.get("min_count") or min_count))
            rows.append({"id": cid, "name": name_of[cid], "hidden_below": hidden_below, **figures})
        if key == "churn" and not any(r["available"] for r in rows):
            continue  # the optional section: shown only when some branch has it
        sections[key] = {"rows": rows}
    _add_totals(sections)
    headline_rows, headline_total = _headline(sections, reported)
    return {"schema_version": SCHEMA_VERSION, "month": str(month), "network": str(network), "min_count": min_count,
            "n_branches": len(ids), "reported": reported, "failed": [m["id"] for m in missing], "missing": missing,
            "clinics": headline_rows, "totals": headline_total, "sections": sections}


def _add_totals(sections: dict[str, dict]) -> None:
    """Fill each section's ``total`` (and the lists of campaign kinds and departments)."""
    s = sections
    s["no_show"]["total"] = _no_show_total(s["no_show"]["rows"])
    ret = _sum_keys(s["retention"]["rows"], ("base", "retained", "active_12m", "new_month", "returning_month"))
    s["retention"]["total"] = {**ret, "rate": _ratio(ret["retained"], ret["base"])}
    s["vip"]["total"] = _sum_keys(s["vip"]["rows"], ("count", "entered", "left"))
    kinds = sorted({k for r in s["campaigns"]["rows"] for k in r["kinds"]})
    s["campaigns"]["kinds"] = kinds
    s["campaigns"]["total"] = _campaign_total(s["campaigns"]["rows"], kinds)
    departments = sorted({d for r in s["revenue"]["rows"] for d in r["departments"]})
    s["revenue"]["departments"] = departments
    s["revenue"]["total"] = _revenue_total(s["revenue"]["rows"], departments)
    if "churn" in s:
        churn = _sum_keys(s["churn"]["rows"], ("patients", "churned", "recall_candidates"))
        s["churn"]["total"] = {**churn, "rate": _ratio(churn["churned"], churn["patients"])}


#: The headline table: key -> (section, figure).
_HEADLINE = (("active_12m", "retention", "active_12m"), ("new_month", "retention", "new_month"),
             ("returning_month", "retention", "returning_month"), ("retention_rate", "retention", "rate"),
             ("no_show_rate", "no_show", "rate"), ("vip_count", "vip", "count"),
             ("revenue_total", "revenue", "total"))


def _headline(sections: dict, reported: list[str]) -> tuple[list[dict], dict]:
    rows = []
    for i, cid in enumerate(reported):
        row = {"id": cid, "name": sections["no_show"]["rows"][i]["name"],
               "hidden_below": sections["no_show"]["rows"][i]["hidden_below"]}
        for key, section, figure in _HEADLINE:
            r = sections[section]["rows"][i]
            row[key] = r[figure] if r["available"] else None
            row[f"{key}_available"] = r["available"]
        rows.append(row)
    return rows, {key: sections[section]["total"][figure] for key, section, figure in _HEADLINE}


def network_json(summary: dict) -> str:
    """Deterministic JSON text of the summary: sorted keys, UTF-8 (not escaped), indented, final newline."""
    return json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def network_html(summary: dict, lang: str = "ko", *, extra_css: str = "") -> str:
    """The summary as a self-contained HTML page; see :func:`crm_analysis.network.summary_html.network_html`."""
    from crm_analysis.network.summary_html import network_html as _html

    return _html(summary, lang, extra_css=extra_css)


def write_network_pdf(summary: dict, path: Path, lang: str = "ko") -> Path:
    """The summary as an A4 PDF with the Korean font embedded; see :mod:`crm_analysis.network.summary_html`."""
    from crm_analysis.network.summary_html import write_network_pdf as _pdf

    return _pdf(summary, path, lang)
