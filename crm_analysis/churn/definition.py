"""An explicit, configurable churn definition, reported per segment.

A patient is **churned** (이탈) on ``as_of`` when the model's probability of
returning within ``churn.horizon_days`` (180) days, given the days already
elapsed since the last visit, is below ``churn.max_return_probability``
(0.2). Both numbers live in ``crm_analysis/rules/churn.yaml`` and can be
overridden. This replaces "no visit for N days": a patient who usually comes
twice a year is not churned after 100 days, one who came weekly may be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.churn.rules import load_churn_rules
from crm_analysis.exceptions import CrmAnalysisError

__all__ = ["churn_status", "churn_by_segment", "patient_segments"]


def churn_status(model, rules=None, state: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each patient's return probability and churn flag.

    Parameters
    ----------
    model : ChurnModel
        A fitted model.
    rules : path, mapping or None
        Churn rules (the ``churn`` section is used).
    state : DataFrame, optional
        Open gaps to predict from (default: the model's patients at its as_of).

    Returns
    -------
    DataFrame
        Indexed by ``patient_id``: ``elapsed_days``, ``p_return``
        (within the churn horizon) and ``churned`` (bool).
    """
    rules = load_churn_rules(rules)
    horizon = int(rules["churn"]["horizon_days"])
    p = model.predict_probability(horizon, state)  # this column only (predict_return adds costly means)
    state = model.current_ if state is None else state
    elapsed = np.clip(state["elapsed_days"].to_numpy(dtype=np.int64), 0, None)
    return pd.DataFrame({"elapsed_days": elapsed, "p_return": p,
                         "churned": p < float(rules["churn"]["max_return_probability"])}, index=p.index)


def churn_by_segment(status: pd.DataFrame, segments: pd.Series, rules=None, min_count: int = 5) -> pd.DataFrame:
    """Churn counts and rates per segment, small counts suppressed.

    Parameters
    ----------
    status : DataFrame
        From :func:`churn_status`.
    segments : Series
        Segment per ``patient_id``; patients without one are counted as
        ``unassigned``.
    rules : path, mapping or None
        Churn rules, to state the definition in the result's ``definition`` column.
    min_count : int
        Counts from 1 to ``min_count − 1`` are hidden (with
        :func:`crm_analysis.privacy.suppress_small_counts`), and so are the
        rates computed from them.

    Returns
    -------
    DataFrame
        ``segment``, ``patients``, ``churned``, ``churn_rate``,
        ``mean_p_return``, plus a total row (``segment == "total"``).
    """
    from crm_analysis.privacy import suppress_small_counts

    rules = load_churn_rules(rules)
    seg = segments.reindex(status.index).astype("object").fillna("unassigned")
    frame = pd.DataFrame({"segment": seg.to_numpy(), "churned": status["churned"].to_numpy(dtype=bool),
                          "p": status["p_return"].to_numpy()})
    g = frame.groupby("segment", sort=True)
    table = pd.DataFrame({"patients": g.size(), "churned": g["churned"].sum().astype(np.int64),
                          "mean_p_return": g["p"].mean()}).reset_index()
    total = pd.DataFrame({"segment": ["total"], "patients": [len(frame)], "churned": [int(frame["churned"].sum())],
                          "mean_p_return": [frame["p"].mean()]})
    table = pd.concat([table, total], ignore_index=True)
    table["churn_rate"] = table["churned"] / table["patients"]
    table = table[["segment", "patients", "churned", "churn_rate", "mean_p_return"]]
    table = suppress_small_counts(table.set_index("segment"), ["patients", "churned"], min_count,
                                  linked={"churn_rate": "churned", "mean_p_return": "patients"},
                                  total_row="total").reset_index()
    table["definition"] = (f"P(return within {rules['churn']['horizon_days']}d) < "
                           f"{rules['churn']['max_return_probability']}")
    return table


def patient_segments(clinic, as_of, lang: str | None = None) -> pd.Series:
    """Each patient's segment on `as_of`, from :mod:`crm_analysis.value.segmentation`.

    Uses ``patient_features`` → ``rfm_scores`` → ``assign_segments`` (the
    segmentation's default rules).

    Returns
    -------
    Series
        Segment per ``patient_id`` (named ``segment``).

    Raises
    ------
    CrmAnalysisError
        If :mod:`crm_analysis.value.segmentation` is not available.
    """
    try:
        from crm_analysis.features import patient_features
        from crm_analysis.value.segmentation import assign_segments, rfm_scores
    except ImportError as err:
        raise CrmAnalysisError(f"segments need crm_analysis.value.segmentation and crm_analysis.features ({err}); "
                               "pass your own segments Series instead") from None
    features = patient_features(clinic, as_of)
    seg = assign_segments(rfm_scores(features))
    seg = seg["segment"] if isinstance(seg, pd.DataFrame) else seg
    if lang is not None:
        from crm_analysis.value.segmentation import segment_names

        seg = seg.cat.rename_categories(segment_names(lang=lang))
    return seg.rename("segment")
