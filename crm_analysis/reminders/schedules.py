"""Schedule comparison (dose–response): which reminder schedule works, and is the 2-hour message worth it?

:func:`schedule_comparison` refits the adjusted model of
:mod:`crm_analysis.reminders.adjusted` with one indicator per *received
schedule variant* (``1d``, ``3d+1d``, ``3d+1d+2h``...; rarer variants merged
into ``other``) instead of one per step, and reports per variant the crude
no-show rate, the adjusted odds ratio against no reminder and the
standardised no-show rate: the mean predicted rate of a reference group of
appointments (by default the eligible appointments of the latest roll-out
period) had they all received that variant.

:func:`step_value` answers "is one step worth its cost?": among appointments
that received the step, the no-shows it avoided per message (from the
step-indicator model) times the revenue of a visit, against the message cost.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from crm_analysis.estimates import Estimate
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders.adjusted import ReminderEffectModel
from crm_analysis.reminders.rules import load_rules

__all__ = ["schedule_comparison", "step_value"]


def _col(schedule: str) -> str:
    return "rem_" + re.sub(r"\W", "_", schedule)


def _text_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes of ``values.astype(str)`` and the texts they stand for (texts converted once each)."""
    code, uniques = pd.factorize(values, use_na_sentinel=False)
    text_code, texts = pd.factorize(np.array([str(u) for u in uniques], dtype=object))
    return text_code[code], list(texts)


def schedule_comparison(table: pd.DataFrame, reference_mask=None, rules=None,
                        conf_level: float = 0.95) -> tuple[pd.DataFrame, ReminderEffectModel]:
    """No-show rate by received schedule variant, crude and adjusted.

    Parameters
    ----------
    table : DataFrame
        From :func:`~crm_analysis.reminders.analysis_table.appointment_table`.
    reference_mask : boolean array, optional
        Appointments to standardise over; default every eligible non-cancelled
        appointment.
    rules : path, mapping or None
    conf_level : float

    Returns
    -------
    (DataFrame, ReminderEffectModel)
        The table (one row per variant, ``none`` first; columns ``schedule``,
        ``appointments``, ``crude_rate``, ``odds_ratio``, ``or_ci_low``,
        ``or_ci_high``, ``adjusted_rate``, ``risk_difference``, ``rd_ci_low``,
        ``rd_ci_high``, ``p_value``) and the fitted variant model.
    """
    r = load_rules(rules)
    rows = table["analysed"].to_numpy()
    code, labels = _text_codes(table["schedule"])  # integer codes: comparing texts row by row was slow
    counts = pd.Series(code[rows]).value_counts()  # ties in order of first appearance, as on the texts
    min_count = int(r["model"]["min_level_count"])
    keep = [labels[c] for c in counts.index if labels[c] != "none" and counts[c] >= min_count]
    if not keep:
        raise CrmAnalysisError("schedule comparison: no reminder schedule was received by at least "
                               f"{min_count} non-cancelled appointments")
    merged_code, merged_labels = pd.factorize(np.array([x if x in keep or x == "none" else "other" for x in labels],
                                                       dtype=object))
    merged_code, merged_labels = merged_code[code], list(merged_labels)

    def received(schedule: str) -> np.ndarray:  # rows whose merged schedule is `schedule`
        return merged_code == (merged_labels.index(schedule) if schedule in merged_labels else -1)

    variants = keep + (["other"] if (received("other") & rows).sum() >= min_count else [])
    model = ReminderEffectModel(rules=r, conf_level=conf_level)
    # the columns the model reads, with one indicator per variant instead of the steps (copying them only)
    work = pd.DataFrame({**{c: table[c] for c in dict.fromkeys([*model.input_columns(table), "eligible"])},
                         **{_col(v): received(v).astype(np.int64) for v in variants}}, index=table.index)
    if "other" not in variants:  # too rare to estimate: leave those appointments out
        work["analysed"] = work["analysed"].to_numpy() & ~received("other")
    model.fit(work)
    ref = (work["analysed"] & work["eligible"]).to_numpy() if reference_mask is None \
        else np.asarray(reference_mask, dtype=bool) & work["analysed"].to_numpy()
    fitted = [v for v in variants if _col(v) in model.steps_]
    effects = model.marginal_effects(work, {v: {c: int(c == _col(v)) for c in model.steps_} for v in fitted}, ref,
                                     control=0, estimand={v: f"schedule {v} vs none" for v in fitted}) \
        if fitted else {}
    # every variant is compared with no reminder: the control mean is the standardised rate without one
    base = next(iter(effects.values()))[0].extras["mean_p_control"] if effects \
        else model.predict_proba(work.loc[ref], steps=0).mean()
    y = table["no_show"].to_numpy()
    out = [{"schedule": "none", "appointments": int((received("none") & rows).sum()),
            "crude_rate": float(np.nanmean(y[rows & received("none")])),
            "odds_ratio": 1.0, "or_ci_low": np.nan, "or_ci_high": np.nan, "adjusted_rate": float(base),
            "risk_difference": 0.0, "rd_ci_low": np.nan, "rd_ci_high": np.nan, "p_value": np.nan}]
    for v in fitted:
        orr = model.odds_ratio([_col(v)])
        rd, _ = effects[v]
        sel = rows & received(v)
        out.append({"schedule": v, "appointments": int(sel.sum()), "crude_rate": float(np.nanmean(y[sel])),
                    "odds_ratio": orr.estimate, "or_ci_low": orr.ci_low, "or_ci_high": orr.ci_high,
                    "adjusted_rate": rd.extras["mean_p_treated"], "risk_difference": rd.estimate,
                    "rd_ci_low": rd.ci_low, "rd_ci_high": rd.ci_high, "p_value": orr.p_value})
    return pd.DataFrame(out), model


def step_value(model: ReminderEffectModel, table: pd.DataFrame, step: str = "2h",
               revenue_per_visit: float | None = None, cost_per_message: float | None = None) -> Estimate:
    """No-shows avoided per appointment by one reminder step, among appointments that received it.

    Parameters
    ----------
    model : ReminderEffectModel
        Fitted with step indicators (the default model).
    table : DataFrame
    step : str
        ``"2h"``, ``"3d"``, ``"1d"``...
    revenue_per_visit, cost_per_message : float, optional
        KRW; when both are given the extras hold the value per message and
        the net value per message (revenue kept minus message cost).

    Returns
    -------
    Estimate
        Risk difference "with the step as received minus without it" (negative:
        the step prevents no-shows), standardised over the appointments that
        received it. ``extras["n_informative"]`` counts the non-cancelled
        appointments that were sent the step and received other steps but not
        this one: when a programme always sends the steps together, only these
        (delivery failures) separate the step's effect from the others', so
        with few of them the step's own effect is poorly determined.
    """
    col = step if step.startswith("rem_") else f"rem_{step}"
    if col not in model.steps_:
        raise CrmAnalysisError(f"no reminder step {step!r} in the model; available: {[s[4:] for s in model.steps_]}")
    mask = (table["analysed"] & (table[col] == 1)).to_numpy()
    rd, _ = model.marginal_effect(table, mask, treated=None, control={col: 0},
                                  estimand=f"no-show rate with the {step} message minus without it, among "
                                           "appointments that received it")
    labels, schedules = pd.factorize(table["schedule_sent"], use_na_sentinel=False)  # a few distinct schedules
    sent = np.array([col[4:] in str(x).split("+") for x in schedules], dtype=bool)[labels]
    informative = int((table["analysed"] & table["reminded"] & (table[col] == 0)).to_numpy()[sent].sum())
    extras = dict(rd.extras)
    extras["n_informative"] = informative
    if revenue_per_visit is not None and cost_per_message is not None:
        extras.update({"revenue_per_visit": revenue_per_visit, "cost_per_message": cost_per_message,
                       "value_per_message": -rd.estimate * revenue_per_visit,
                       "net_value_per_message": -rd.estimate * revenue_per_visit - cost_per_message,
                       "net_value_ci_low": -rd.ci_high * revenue_per_visit - cost_per_message,
                       "net_value_ci_high": -rd.ci_low * revenue_per_visit - cost_per_message})
    return Estimate(rd.estimate, rd.ci_low, rd.ci_high, rd.p_value, rd.method, rd.n, rd.scale, rd.estimand,
                    rd.conf_level, extras)
