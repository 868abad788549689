"""Recall candidates: patients overdue against their own pattern who can still be won back.

A patient is a **candidate** on ``as_of`` when

1. their probability of returning within ``recall.horizon_days`` (given the
   days already elapsed) lies in the recoverable band ``recall.band``
   (default [0.2, 0.6)): below it they are most likely lost, above it they
   will probably come back without a message;
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

Candidates are ranked by ``recall.rank_by`` (most overdue first, then the most
recoverable) and each gets a plain-language ``reason``. The data is first cut
to ``as_of`` (:meth:`ClinicData.snapshot`), so nothing later is used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.churn.model import ChurnModel
from crm_analysis.consent import opted_out
from crm_analysis.churn.rules import load_churn_rules
from crm_analysis.contract import CHANNELS
from crm_analysis.exceptions import CrmAnalysisError

__all__ = ["recall_candidates", "recall_table", "recall_counts", "EXCLUSIONS", "CANDIDATE_COLUMNS"]

#: Exclusion flags, in the order they are reported.
EXCLUSIONS: tuple[str, ...] = ("future_appointment", "contacted_recently", "opted_out", "record_status")

#: Columns of :func:`recall_candidates`.
CANDIDATE_COLUMNS: tuple[str, ...] = (
    "rank", "patient_id", "segment", "last_visit_date", "elapsed_days", "usual_interval_days", "overdue_ratio",
    "p_return", "expected_days", "reason", "reason_en",
)


def _at(clinic, as_of: pd.Timestamp):
    if clinic.as_of is not None and clinic.as_of < as_of:
        raise CrmAnalysisError(f"the data only runs to {clinic.as_of:%Y-%m-%d}; recall candidates need as_of on or "
                               "before that")
    # Cut even at the data's own as_of: what the snapshot cannot date (a rescheduling without a date) counts as
    # still booked, as the future-appointment exclusion must read it; cutting a snapshot again is cheap.
    return clinic.snapshot(as_of)


def recall_table(clinic, as_of, *, model: ChurnModel | None = None, segments: pd.Series | None = None,
                 rules=None) -> pd.DataFrame:
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

    Returns
    -------
    DataFrame
        Indexed by ``patient_id``: ``segment``, ``last_visit_date``,
        ``elapsed_days``, ``usual_interval_days``, ``overdue_ratio``,
        ``p_return``, ``expected_days``, ``in_band``, ``overdue``, one bool
        column per :data:`EXCLUSIONS`, ``excluded`` and ``candidate``.
    """
    rules = load_churn_rules(rules)
    default_model = rules["model"] == load_churn_rules(None)["model"]
    rec = rules["recall"]
    as_of = pd.Timestamp(as_of).normalize()
    given = clinic
    clinic = _at(clinic, as_of)
    if model is None and default_model:  # the default model: fitted once per (clinic, as_of) in a process
        from crm_analysis.churn.cache import fitted_model

        model = fitted_model(given, as_of)  # fit uses rows up to as_of only
    elif model is None:
        model = ChurnModel(rules=rules).fit(clinic, as_of)
    elif not hasattr(model, "as_of_"):
        model = model.fit(clinic, as_of)
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
    out["in_band"] = (p >= lo) & (p < hi)
    out["overdue"] = out["overdue_ratio"].to_numpy() >= float(rec["min_overdue_ratio"])
    flags = _exclusions(clinic, as_of, ids, rec)
    for name in EXCLUSIONS:
        out[name] = flags[name]
    out["excluded"] = out[list(EXCLUSIONS)].any(axis=1)
    out["candidate"] = out["in_band"] & out["overdue"] & ~out["excluded"]
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
        Churn rules (``recall`` section: band, overdue ratio, exclusions, ranking, cap).
    table : DataFrame, optional
        :func:`recall_table` already made for the same clinic, `as_of`, model and rules (not rebuilt).

    Returns
    -------
    DataFrame
        Columns :data:`CANDIDATE_COLUMNS`, best first (``rank`` 1, 2, ...).
        ``reason`` (Korean) and ``reason_en`` say why each patient is on the
        list. Contains patient ids: for the campaign team, not for reports.

    Examples
    --------
    >>> recall_candidates(clinic, "2026-10-31", rules={"recall": {"band": [0.1, 0.5]}})  # doctest: +SKIP
    """
    rules = load_churn_rules(rules)
    rec = rules["recall"]
    if table is None:
        table = recall_table(clinic, as_of, model=model, segments=segments, rules=rules)
    cand = table[table["candidate"]].reset_index()
    keys = list(rec["rank_by"]) + ["patient_id"]
    cand = cand.sort_values(keys, ascending=[False] * (len(keys) - 1) + [True], kind="stable")
    if rec["max_candidates"] is not None:
        cand = cand.head(int(rec["max_candidates"]))
    h = int(rec["horizon_days"])
    ratio = cand["overdue_ratio"].to_numpy()
    usual = cand["usual_interval_days"].to_numpy()
    pct = np.round(cand["p_return"].to_numpy() * 100).astype(int)
    el = cand["elapsed_days"].to_numpy()
    cand["reason"] = [f"마지막 방문 {e}일 전 (평소 간격 {u:.0f}일의 {r:.1f}배); {h}일 내 재방문 확률 {q}%"
                      for e, u, r, q in zip(el, usual, ratio, pct)]
    cand["reason_en"] = [f"last visit {e} days ago ({r:.1f}x the usual {u:.0f}-day interval); "
                         f"P(return within {h}d) = {q}%" for e, u, r, q in zip(el, usual, ratio, pct)]
    cand["rank"] = np.arange(1, len(cand) + 1)
    return cand[list(CANDIDATE_COLUMNS)].reset_index(drop=True)


def recall_counts(table: pd.DataFrame, min_count: int = 5) -> pd.DataFrame:
    """Counts by segment for reports: patients, in band, excluded (by reason), candidates.

    Parameters
    ----------
    table : DataFrame
        From :func:`recall_table`.
    min_count : int
        Counts from 1 to ``min_count − 1`` are hidden (with secondary
        suppression) by :func:`crm_analysis.privacy.suppress_small_counts`.

    Returns
    -------
    DataFrame
        ``segment``, ``patients``, ``in_band``, ``future_appointment``,
        ``contacted_recently``, ``opted_out``, ``record_status``,
        ``candidates``, with a ``total`` row. Exclusion counts are among the
        in-band overdue patients (a patient may have several reasons).
    """
    from crm_analysis.privacy import suppress_small_counts

    seg = table["segment"].astype("object").fillna("all")
    target = table["in_band"] & table["overdue"]
    frame = pd.DataFrame({"segment": seg.to_numpy(), "patients": 1, "in_band": target.to_numpy(dtype=np.int64),
                          **{n: (table[n] & target).to_numpy(dtype=np.int64) for n in EXCLUSIONS},
                          "candidates": table["candidate"].to_numpy(dtype=np.int64)})
    counts = frame.groupby("segment", sort=True).sum()
    counts.loc["total"] = counts.sum()
    counts = counts.astype(np.int64)
    counts.index.name = "segment"
    return suppress_small_counts(counts, list(counts.columns), min_count, total_row="total",
                                 additive="columns").reset_index()
