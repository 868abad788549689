"""An explicit, configurable churn definition, reported per segment.

A patient is **churned** (이탈) on ``as_of`` when the model's probability of
returning within ``churn.horizon_days`` (180) days, given the days already
elapsed since the last visit, is below ``churn.max_return_probability``
(0.2). Both numbers live in ``crm_analysis/rules/churn.yaml`` and can be
overridden. This replaces "no visit for N days": a patient who usually comes
twice a year is not churned after 100 days, one who came weekly may be.

A threshold on a probability is only meaningful if the probability is
calibrated: if the model says 5% where 15% come back, "< 20%" labels far too
many patients churned. So :func:`churn_status` takes the churn
:func:`~crm_analysis.churn.backtest` at the same horizon (fitted
``horizon_days`` before the model's as_of, so it sees no later data) and

- states its calibration with the result (``status.attrs["calibration"]``,
  and the ``calibration`` column of :func:`churn_by_segment`);
- refuses, with :class:`~crm_analysis.exceptions.InsufficientDataError`
  (the monthly run then skips the churn figures with the reason), when the
  back-test's mean absolute decile calibration error of the model is above
  ``churn.max_calibration_error`` (0.05).

The probabilities are not recalibrated: a correction learned on the back-test
could only be checked on yet another, earlier back-test, and the model's
long-absence tail (:mod:`crm_analysis.churn.tail`) already removes the bias
that made real exports look mostly churned. Without a back-test the flag is
given as before and said to be unchecked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.churn.rules import load_churn_rules
from crm_analysis.exceptions import CrmAnalysisError, InsufficientDataError

__all__ = ["churn_status", "churn_by_segment", "calibration_note", "churn_definition_sentence", "patient_segments"]


def churn_status(model, rules=None, state: pd.DataFrame | None = None, *, backtest=None) -> pd.DataFrame:
    """Each patient's return probability and churn flag.

    Parameters
    ----------
    model : ChurnModel
        A fitted model.
    rules : path, mapping or None
        Churn rules (the ``churn`` section is used).
    state : DataFrame, optional
        Open gaps to predict from (default: the model's patients at its as_of).
    backtest : BacktestResult, optional
        The churn back-test at the churn horizon, ending on or before the
        model's as_of (e.g. ``backtest(clinic, None, 180)``): its calibration
        decides whether the flag is given (see the module docstring).

    Returns
    -------
    DataFrame
        Indexed by ``patient_id``: ``elapsed_days``, ``p_return``
        (within the churn horizon) and ``churned`` (bool).
        ``attrs["calibration"]`` holds the back-test's ``cutoff``,
        ``calibration_mae`` and ``calibration_max`` (``checked`` False
        without a back-test).

    Raises
    ------
    InsufficientDataError
        If the back-test's mean absolute decile calibration error is above
        ``churn.max_calibration_error``: the probabilities are too far off
        for a threshold on them to mean anything.
    CrmAnalysisError
        If the back-test is at another horizon or follows patients past the model's as_of.
    """
    rules = load_churn_rules(rules)
    horizon = int(rules["churn"]["horizon_days"])
    calibration = _checked_calibration(model, backtest, rules) if backtest is not None else {"checked": False}
    p = model.predict_probability(horizon, state)  # this column only (predict_return adds costly means)
    state = model.current_ if state is None else state
    elapsed = np.clip(state["elapsed_days"].to_numpy(dtype=np.int64), 0, None)
    status = pd.DataFrame({"elapsed_days": elapsed, "p_return": p,
                           "churned": p < float(rules["churn"]["max_return_probability"])}, index=p.index)
    status.attrs["calibration"] = calibration
    return status


def calibration_note(status: pd.DataFrame) -> str:
    """One line on how well the churn probabilities were calibrated (for tables and kpis.json).

    Parameters
    ----------
    status : DataFrame
        From :func:`churn_status`.
    """
    cal = status.attrs.get("calibration", {"checked": False})
    if not cal.get("checked"):
        return "not checked (no back-test given)"
    return (f"back-test from {cal['cutoff']}: mean decile error {cal['calibration_mae'] * 100:.1f}%p, "
            f"max {cal['calibration_max'] * 100:.1f}%p")


def churn_definition_sentence(status: pd.DataFrame, rules=None, lang: str = "ko") -> str:
    """The churn rule and how well its probabilities were calibrated, in one sentence in `lang`.

    Parameters
    ----------
    status : DataFrame
        From :func:`churn_status`.
    rules : path, mapping or None
        The churn rules `status` was made with.
    lang : {"ko", "en"}
    """
    from crm_analysis.i18n import check_lang, label

    check_lang(lang)
    rules = load_churn_rules(rules)
    text = label("churn_definition_sentence", lang).format(
        days=int(rules["churn"]["horizon_days"]), share=f"{float(rules['churn']['max_return_probability']):.0%}")
    cal = status.attrs.get("calibration", {"checked": False})
    if not cal.get("checked"):
        return text + " " + label("churn_calibration_unchecked", lang)
    return text + " " + label("churn_calibration_sentence", lang).format(
        cutoff=cal["cutoff"], mean=f"{cal['calibration_mae'] * 100:.1f}%p", worst=f"{cal['calibration_max'] * 100:.1f}%p")


def _checked_calibration(model, backtest, rules) -> dict:
    """The back-test's calibration of the churn probabilities, refused when too poor to threshold."""
    horizon = int(rules["churn"]["horizon_days"])
    if int(backtest.horizon) != horizon:
        raise CrmAnalysisError(f"the back-test follows patients for {backtest.horizon} days but churn is defined at "
                               f"{horizon} days; back-test at {horizon} days (backtest(clinic, None, {horizon}))")
    followed_to = backtest.cutoff + pd.Timedelta(days=horizon)
    if followed_to > model.as_of_:
        raise CrmAnalysisError(f"the back-test follows patients to {followed_to:%Y-%m-%d}, after the model's as_of "
                               f"{model.as_of_:%Y-%m-%d}: that would judge today's churn with later data")
    errors = backtest.calibration_error("cox")
    limit = float(rules["churn"]["max_calibration_error"])
    mae = errors["calibration_mae"]
    if mae > limit:
        raise InsufficientDataError(
            "churn",
            f"Churn: on the back-test from {backtest.cutoff:%Y-%m-%d} the predicted {horizon}-day return rates miss "
            f"the observed ones by {100 * mae:.1f} percentage points per decile on average (the calibration limit, "
            f"churn.max_calibration_error, is {limit:g}), so 'P(return) < "
            f"{rules['churn']['max_return_probability']}' would not mean what it says and nobody is labelled churned.",
            f"이탈: {backtest.cutoff:%Y-%m-%d} 시점 검증에서 {horizon}일 재방문 확률이 10분위마다 평균 {100 * mae:.1f}%p "
            f"빗나가(허용 {100 * limit:g}%p 초과) 확률 기준 이탈 판정을 믿을 수 없으므로 이탈 환자를 표시하지 않습니다.")
    return {"checked": True, "cutoff": f"{backtest.cutoff:%Y-%m-%d}", **errors, "max_allowed": limit}


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
        rates computed from them. The patients who did not churn count too:
        a segment of 300 with 298 churned is hidden like one with 2 churned.

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
    # patients = churned + retained: a segment where all but 1-4 churned tells about those few, too
    table = suppress_small_counts(table.assign(retained=table["patients"] - table["churned"]).set_index("segment"),
                                  ["churned", "retained", "patients"], min_count, total_row="total",
                                  total_column="patients", linked={"mean_p_return": "patients"})
    hidden = (table["churned"].isna() | table["patients"].isna()).to_numpy()
    table = table.assign(churn_rate=table["churn_rate"].astype("Float64").mask(hidden))
    table = table.drop(columns="retained").reset_index()
    table["definition"] = (f"P(return within {rules['churn']['horizon_days']}d) < "
                           f"{rules['churn']['max_return_probability']}")
    table["calibration"] = calibration_note(status)
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
