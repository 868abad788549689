"""Recall candidates: the patients a message would most likely bring back.

A patient is a **candidate** on ``as_of`` when

1. they are selected by ``recall.select``:

   - ``uplift`` (default): the expected extra return a message buys within
     ``recall.uplift.window_days`` (``uplift`` = (1 − P(return anyway)) ×
     response, :mod:`crm_analysis.churn.uplift`) is at least
     ``recall.uplift.min_uplift``, and they have been away no longer than
     ``max_elapsed_days`` (and than the longest absence in the past contacts
     the response was learned from). The response is learned from past
     campaign holdouts; without them it is assumed, and ``reason`` says so;
   - ``band`` (the older rule): their probability of returning within
     ``recall.horizon_days`` lies in ``recall.band`` (default [0.2, 0.6)).
     It puts first the patients who will come back anyway: kept to compare;

2. they are overdue: days since the last visit ≥ ``recall.min_overdue_ratio``
   × their usual interval (their own median gap, or the model's for their
   profile when they have too few gaps); and
3. none of the exclusions applies:

   - a future appointment: an appointment with status ``booked`` scheduled
     on or after ``as_of``'s day (on the snapshot, bookings cancelled after
     ``as_of`` are ``booked`` again, so they count);
   - contacted recently: any outreach row (``contacts``, sent or holdout) in
     the last ``recall.contacted_within_days`` days, since a holdout patient is
     part of a running test;
   - opted out on every channel (KakaoTalk, SMS and email);
   - ``record_status`` deceased or moved.

With ``select: uplift`` candidates are ranked by uplift (``recall.rank_by``
breaks ties); with ``band`` by ``recall.rank_by`` (most overdue first, then
the most recoverable). Each gets a plain-language ``reason``. The data is
first cut to ``as_of`` (:meth:`ClinicData.snapshot`), so nothing later is used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.churn.model import ChurnModel
from crm_analysis.consent import opted_out
from crm_analysis.churn.rules import load_churn_rules
from crm_analysis.churn.survival_data import survival_data
from crm_analysis.churn.uplift import ContactResponse, expected_uplift, learn_contact_response
from crm_analysis.contract import CHANNELS
from crm_analysis.distinct import each_distinct
from crm_analysis.exceptions import CrmAnalysisError

__all__ = ["recall_candidates", "recall_table", "recall_counts", "EXCLUSIONS", "CANDIDATE_COLUMNS", "SELECTIONS"]

#: Values of ``recall.select``.
SELECTIONS: tuple[str, ...] = ("uplift", "band")

#: Exclusion flags, in the order they are reported.
EXCLUSIONS: tuple[str, ...] = ("future_appointment", "contacted_recently", "opted_out", "record_status")

#: Columns of :func:`recall_candidates`.
CANDIDATE_COLUMNS: tuple[str, ...] = (
    "rank", "patient_id", "segment", "last_visit_date", "elapsed_days", "usual_interval_days", "overdue_ratio",
    "p_return", "expected_days", "reason", "reason_en", "p_without_contact", "uplift", "uplift_basis",
)


def _at(clinic, as_of: pd.Timestamp):
    if clinic.as_of is not None and clinic.as_of < as_of:
        raise CrmAnalysisError(f"the data only runs to {clinic.as_of:%Y-%m-%d}; recall candidates need as_of on or "
                               "before that")
    # Cut even at the data's own as_of: what the snapshot cannot date (a rescheduling without a date) counts as
    # still booked, as the future-appointment exclusion must read it; cutting a snapshot again is cheap.
    return clinic.snapshot(as_of)


def recall_table(clinic, as_of, *, model: ChurnModel | None = None, segments: pd.Series | None = None,
                 rules=None, response: ContactResponse | None = None) -> pd.DataFrame:
    """Every patient with their recall figures, band and exclusion flags.

    Parameters
    ----------
    clinic : ClinicData
    as_of : str or Timestamp
    model : ChurnModel, optional
        Fitted at the same `as_of`; fitted here (with ``rules``) when omitted.
    segments : Series, optional
        Segment per ``patient_id``, carried into the result.
    rules : path, mapping or None
        Churn rules (the ``recall`` section).
    response : ContactResponse, optional
        The response to a message (:func:`~crm_analysis.churn.uplift.learn_contact_response`
        at the same `as_of` and model); learned here when omitted.

    Returns
    -------
    DataFrame
        Indexed by ``patient_id``: ``segment``, ``last_visit_date``,
        ``elapsed_days``, ``usual_interval_days``, ``overdue_ratio``,
        ``p_return``, ``expected_days``, ``p_without_contact`` (P(return
        within ``recall.uplift.window_days`` without a message)), ``uplift``
        (the extra return a message is expected to buy), ``uplift_basis``
        (``holdouts`` or ``assumed``), ``in_band``, ``worth_contacting``
        (uplift ≥ ``min_uplift`` within ``max_elapsed_days``), ``selected``
        (the one of the two ``recall.select`` names), ``overdue``, one bool
        column per :data:`EXCLUSIONS`, ``excluded`` and ``candidate``.

    Raises
    ------
    CrmAnalysisError
        If ``recall.select`` is unknown, the data ends before `as_of` or the
        model was fitted at another date.
    """
    rules = load_churn_rules(rules)
    default_model = rules["model"] == load_churn_rules(None)["model"]
    rec = rules["recall"]
    if rec["select"] not in SELECTIONS:
        raise CrmAnalysisError(f"recall.select must be one of {', '.join(SELECTIONS)}, not {rec['select']!r}")
    as_of = pd.Timestamp(as_of).normalize()
    given = clinic
    clinic = _at(clinic, as_of)
    gaps = None
    if response is None and clinic.has("contacts") and len(clinic.contacts):
        # the response is learned on the gaps the model is fitted on: built once, not twice (the same
        # rows on the clinic and on its snapshot; built on the one the fit would use, for the same order)
        gaps = survival_data(given if model is None and default_model else clinic, as_of)  # rows up to as_of only
    if model is None and default_model:  # the default model: fitted once per (clinic, as_of) in a process
        from crm_analysis.churn.cache import fitted_model

        model = fitted_model(given, as_of, gaps=gaps)  # fit uses rows up to as_of only
    elif model is None:
        model = ChurnModel(rules=rules).fit(clinic, as_of, gaps=gaps)
    elif not hasattr(model, "as_of_"):
        model = model.fit(clinic, as_of, gaps=gaps)
    elif model.as_of_ != as_of:
        raise CrmAnalysisError(f"the model was fitted at {model.as_of_:%Y-%m-%d} but recall is for {as_of:%Y-%m-%d}; "
                               "fit it at the same as_of")
    h = int(rec["horizon_days"])
    pred = model.predict_return(horizons=(h,))
    ids = pred.index.astype(str)
    lo, hi = (float(x) for x in rec["band"])
    p = pred[f"p_return_{h}d"].to_numpy()
    out = pd.DataFrame({
        "segment": (segments.reindex(ids).astype("object").to_numpy() if segments is not None
                    else np.full(len(pred), None, dtype=object)),
        "last_visit_date": model.current_["start_date"].reindex(pred.index).to_numpy(),
        "elapsed_days": pred["elapsed_days"].to_numpy(),
        "usual_interval_days": pred["usual_interval_days"].to_numpy(),
        "overdue_ratio": pred["overdue_ratio"].to_numpy(),
        "p_return": p,
        "expected_days": pred["expected_days"].to_numpy(),
    }, index=pd.Index(ids, name="patient_id"))
    if response is None:
        response = learn_contact_response(clinic, as_of, model, rules=rules, gaps=gaps)
    del gaps
    gain = expected_uplift(model, response).reindex(pred.index)
    out["p_without_contact"] = gain["p_without_contact"].to_numpy()
    out["uplift"] = gain["uplift"].to_numpy()
    out["uplift_basis"] = response.basis
    out["in_band"] = (p >= lo) & (p < hi)
    out["worth_contacting"] = ((out["uplift"].to_numpy() >= float(rec["uplift"]["min_uplift"]))
                               & (out["elapsed_days"].to_numpy() <= response.max_elapsed_days))
    out["selected"] = out["worth_contacting" if rec["select"] == "uplift" else "in_band"]
    out["overdue"] = out["overdue_ratio"].to_numpy() >= float(rec["min_overdue_ratio"])
    flags = _exclusions(clinic, as_of, ids, rec)
    for name in EXCLUSIONS:
        out[name] = flags[name]
    out["excluded"] = out[list(EXCLUSIONS)].any(axis=1)
    out["candidate"] = out["selected"] & out["overdue"] & ~out["excluded"]
    return out


def _exclusions(clinic, as_of: pd.Timestamp, ids: pd.Index, rec) -> dict[str, np.ndarray]:
    end = as_of + pd.Timedelta(days=1)
    idx = pd.Index(ids)
    flags = {name: np.zeros(len(idx), dtype=bool) for name in EXCLUSIONS}

    def mark(name: str, who) -> None:
        pos = idx.get_indexer(pd.Index(pd.unique(np.asarray(who, dtype=object))).astype(str))
        flags[name][pos[pos >= 0]] = True

    if rec["exclude_future_appointments"] and clinic.has("appointments"):
        a = clinic.appointments
        future = ((a["scheduled_at"] >= as_of).to_numpy(dtype=bool, na_value=False)
                  & (a["status"].astype("object") == "booked").to_numpy(dtype=bool))
        mark("future_appointment", a.loc[future, "patient_id"].astype(str).to_numpy())
    if clinic.has("contacts"):
        c = clinic.contacts
        since = end - pd.Timedelta(days=int(rec["contacted_within_days"]))
        recent = ((c["sent_at"] >= since) & (c["sent_at"] < end)).to_numpy(dtype=bool, na_value=False)
        mark("contacted_recently", c.loc[recent, "patient_id"].astype(str).to_numpy())
    pats = clinic.patients
    pid = pats["patient_id"].astype(str).to_numpy()
    if rec["exclude_opted_out_everywhere"]:
        # the campaign rules' own test (an undated opt-out counts; one dated after as_of does not)
        opted = np.ones(len(pats), dtype=bool)
        at = pd.Series(end - pd.Timedelta(1, "ns"), index=pats.index)
        for ch in CHANNELS:
            opted &= (opted_out(pats, ch, at) if f"{ch}_opt_out" in pats.columns
                      else np.zeros(len(pats), dtype=bool))
        mark("opted_out", pid[opted])
    bad = pats["record_status"].astype("object").isin(list(rec["exclude_record_status"])).to_numpy()
    mark("record_status", pid[bad])
    return flags


def recall_candidates(clinic, as_of, *, model: ChurnModel | None = None, segments: pd.Series | None = None,
                      rules=None, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ranked recall list.

    Parameters
    ----------
    clinic : ClinicData
    as_of : str or Timestamp
        The day the list is made for.
    model : ChurnModel, optional
        Fitted at `as_of` (fitted here when omitted).
    segments : Series, optional
        Segment per ``patient_id``.
    rules : path, mapping or None
        Churn rules (``recall`` section: selection, uplift, band, overdue ratio, exclusions, ranking, cap).
    table : DataFrame, optional
        :func:`recall_table` already made for the same clinic, `as_of`, model and rules (not rebuilt).

    Returns
    -------
    DataFrame
        Columns :data:`CANDIDATE_COLUMNS`, best first (``rank`` 1, 2, ...):
        by ``uplift`` with ``recall.select: uplift``. ``reason`` (Korean) and
        ``reason_en`` say why each patient is on the list, and when the
        response to a message is assumed (no past holdouts). Contains patient
        ids: for the campaign team, not for reports.

    Examples
    --------
    >>> recall_candidates(clinic, "2026-10-31", rules={"recall": {"band": [0.1, 0.5]}})  # doctest: +SKIP
    """
    rules = load_churn_rules(rules)
    rec = rules["recall"]
    if table is None:
        table = recall_table(clinic, as_of, model=model, segments=segments, rules=rules)
    cand = table[table["candidate"]].reset_index()
    by_uplift = rec["select"] == "uplift"
    keys = ["uplift"] * by_uplift + list(rec["rank_by"]) + ["patient_id"]
    cand = cand.sort_values(keys, ascending=[False] * (len(keys) - 1) + [True], kind="stable")
    if rec["max_candidates"] is not None:
        cand = cand.head(int(rec["max_candidates"]))
    h = int(rec["horizon_days"])
    ratio = cand["overdue_ratio"].to_numpy()
    usual = cand["usual_interval_days"].to_numpy()
    pct = np.round(cand["p_return"].to_numpy() * 100).astype(int)
    el = cand["elapsed_days"].to_numpy()
    # texts put together from each number formatted once per distinct value (many patients share them)
    e_txt, u_txt, r_txt = each_distinct(el, "{}"), each_distinct(usual, "{:.0f}"), each_distinct(ratio, "{:.1f}")
    ko = "마지막 방문 " + e_txt + "일 전 (평소 간격 " + u_txt + "일의 " + r_txt + "배)"
    en = "last visit " + e_txt + " days ago (" + r_txt + "x the usual " + u_txt + "-day interval)"
    if by_uplift:
        w = int(rec["uplift"]["window_days"])
        gain = each_distinct(cand["uplift"].to_numpy() * 100, "{:.1f}")
        anyway = each_distinct(np.round(cand["p_without_contact"].to_numpy() * 100).astype(int), "{}")
        assumed = cand["uplift_basis"].to_numpy() == "assumed"
        rho = float(rec["uplift"]["assumed_response"])
        cand["reason"] = (ko + f"; 안내 시 {w}일 내 재방문 +" + gain + "%p 기대 (안내 없이 " + anyway + "%)"
                          + np.where(assumed, f" [과거 캠페인 대조군이 없어 반응률 평균 {rho:.0%} 가정]", "").astype(object))
        cand["reason_en"] = (en + "; a message is expected to add " + gain + f" points to P(return within {w}d) "
                             "(without it: " + anyway + "%)"
                             + np.where(assumed, f" [no past campaign holdouts: a {rho:.0%} average response is "
                                                 "assumed]", "").astype(object))
    else:
        q = each_distinct(pct, "{}")
        cand["reason"] = ko + f"; {h}일 내 재방문 확률 " + q + "%"
        cand["reason_en"] = en + f"; P(return within {h}d) = " + q + "%"
    cand["rank"] = np.arange(1, len(cand) + 1)
    return cand[list(CANDIDATE_COLUMNS)].reset_index(drop=True)


def recall_counts(table: pd.DataFrame, min_count: int = 5) -> pd.DataFrame:
    """Counts by segment for reports: patients, selected, excluded (by reason), candidates.

    Parameters
    ----------
    table : DataFrame
        From :func:`recall_table`.
    min_count : int
        Counts from 1 to ``min_count − 1`` are hidden (with secondary
        suppression) by :func:`crm_analysis.privacy.suppress_small_counts`,
        and so are those the table gives away by difference: the patients
        not in the band (``patients - in_band``) and the excluded
        (``in_band - candidates``).

    Returns
    -------
    DataFrame
        ``segment``, ``patients``, ``in_band``, ``future_appointment``,
        ``contacted_recently``, ``opted_out``, ``record_status``,
        ``candidates``, with a ``total`` row. ``in_band`` counts the overdue
        patients the selection rule picks (``selected``: with ``recall.select:
        uplift``, those a message is expected to bring back; with ``band``, the
        recoverable band); exclusion counts are among them (a patient may have
        several reasons).
    """
    from crm_analysis.privacy import suppress_small_counts

    seg = table["segment"].astype("object").fillna("all")
    target = table["selected"] & table["overdue"]
    frame = pd.DataFrame({"segment": seg.to_numpy(), "patients": 1, "in_band": target.to_numpy(dtype=np.int64),
                          **{n: (table[n] & target).to_numpy(dtype=np.int64) for n in EXCLUSIONS},
                          "candidates": table["candidate"].to_numpy(dtype=np.int64)})
    counts = frame.groupby("segment", sort=True).sum()
    counts.loc["total"] = counts.sum()
    counts = counts.astype(np.int64)
    counts.index.name = "segment"
    # in_band = candidates + the excluded (any reason), so a row of exclusions and candidates adds up to in_band
    # (reasons overlap: treating them as adding up hides more, never less); patients - in_band and
    # in_band - candidates are published by difference, so a small one hides the cell that gives it away
    def few(n: pd.Series) -> np.ndarray:
        return ((n >= 1) & (n < min_count)).to_numpy()

    parts = [*EXCLUSIONS, "candidates", "in_band"]
    given_away = pd.DataFrame(False, index=counts.index, columns=parts)
    given_away["candidates"] = few(counts["in_band"] - counts["candidates"])
    given_away["in_band"] = few(counts["patients"] - counts["in_band"])
    out = suppress_small_counts(counts, parts, min_count, total_row="total", total_column="in_band",
                                hidden=given_away)
    out = suppress_small_counts(out, ["patients"], min_count, total_row="total", additive="columns")
    return out[list(counts.columns)].reset_index()
