"""Recall candidates: exclusions (property-tested for future appointments), band, ranking, reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_analysis.churn import ChurnModel, recall_candidates, recall_counts, recall_table
from crm_analysis.churn.recall import CANDIDATE_COLUMNS
from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import CrmAnalysisError
from tests.conftest import DEMO_END

#: Everyone selected (band rule, the band is everything) and overdue: only the exclusions keep a patient off the list.
WIDE = {"recall": {"select": "band", "band": [0.0, 1.0], "min_overdue_ratio": 0}}
#: The older rule: the recoverable band, ranked by overdue ratio then return probability.
BAND = {"recall": {"select": "band"}}


def _future_bookers(clinic: ClinicData, as_of: pd.Timestamp) -> set[str]:
    """Independent reading of 'has a future appointment' on the snapshot: booked and scheduled after as_of."""
    a = clinic.snapshot(as_of).appointments
    future = (a["scheduled_at"] >= as_of) & (a["status"].astype(str) == "booked")
    return set(a.loc[future, "patient_id"].astype(str))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(150, 250), days_before_end=st.integers(0, 400))
def test_no_one_with_a_future_appointment_is_ever_a_candidate(seed, n, days_before_end):
    from crm_analysis import synth

    sim = synth.generate_clinic(n_patients=n, seed=seed, end="2026-10-31")
    clinic = ClinicData(sim.tables, as_of=pd.Timestamp("2026-10-31"))
    as_of = pd.Timestamp("2026-10-31") - pd.Timedelta(days=days_before_end)
    model = ChurnModel("truth", weibull=False, min_events=5).fit(clinic.snapshot(as_of), as_of)
    bookers = _future_bookers(clinic, as_of)
    print(f"[recall property] seed={seed} n={n} as_of={as_of:%Y-%m-%d}: {len(bookers)} with a future appointment")
    cands = recall_candidates(clinic, as_of, model=model, rules=WIDE)
    assert not bookers & set(cands["patient_id"]), "a patient with a future appointment is on the recall list"
    # the exclusion is what keeps them off: without it, those with a visit appear
    loose = recall_candidates(clinic, as_of, model=model,
                              rules={"recall": {**WIDE["recall"], "exclude_future_appointments": False}})
    seen = bookers & set(model.current_.index.astype(str))
    table = recall_table(clinic, as_of, model=model, rules=WIDE)
    other = table.loc[sorted(seen), ["contacted_recently", "opted_out", "record_status"]].any(axis=1)
    assert set(other.index[~other]) <= set(loose["patient_id"])


def test_exclusions_by_hand(churn_clinic, churn_model):
    as_of = pd.Timestamp("2026-10-31")
    cur = churn_model.current_
    away = cur[cur["elapsed_days"].between(200, 700)]  # long-absent, within the uplift's max_elapsed_days
    pid = away.sort_values("elapsed_days").index.astype(str)[-40:]
    pats = churn_clinic.patients.copy()
    row = pats["patient_id"].astype(str).isin(pid[:2])
    for ch in ("kakao", "sms", "email"):
        pats.loc[row, f"{ch}_opt_out"] = True
    pats.loc[pats["patient_id"].astype(str) == pid[2], "record_status"] = "deceased"
    contacts = pd.concat([churn_clinic.contacts, pd.DataFrame({
        "contact_id": ["CX1"], "campaign_id": ["TEST"], "patient_id": [pid[3]], "channel": ["sms"],
        "sent_at": [as_of - pd.Timedelta(days=3)], "arm": ["holdout"]})], ignore_index=True)
    appts = pd.concat([churn_clinic.appointments, pd.DataFrame({
        "appointment_id": ["AX1", "AX2"], "patient_id": [pid[4], pid[5]],
        "booked_at": [as_of - pd.Timedelta(days=1)] * 2,
        "scheduled_at": [as_of + pd.Timedelta(days=5), as_of + pd.Timedelta(days=6)],
        "status": ["booked", "cancelled"], "cancelled_at": [pd.NaT, as_of - pd.Timedelta(hours=2)]})],
        ignore_index=True)
    clinic = ClinicData({**churn_clinic.tables, "patients": pats, "contacts": contacts, "appointments": appts},
                        as_of=as_of)
    table = recall_table(clinic, as_of, model=churn_model, rules=WIDE)
    assert table.loc[pid[:2], "opted_out"].all() and table.loc[pid[2], "record_status"]
    assert table.loc[pid[3], "contacted_recently"] and table.loc[pid[4], "future_appointment"]
    assert not table.loc[pid[5], "future_appointment"]  # its only new appointment was cancelled
    cands = set(recall_candidates(clinic, as_of, model=churn_model, rules=WIDE)["patient_id"])
    assert not cands & set(pid[:5])
    # the same exclusions hold under the uplift selection (the default)
    by_uplift = recall_table(clinic, as_of, model=churn_model)
    assert by_uplift.loc[pid[:5], "worth_contacting"].all(), "long-absent patients are worth a message"
    assert not by_uplift.loc[pid[:5], "candidate"].any()


def test_band_overdue_ranking_and_reasons(churn_clinic, churn_model):
    cands = recall_candidates(churn_clinic, "2026-10-31", model=churn_model, rules=BAND)
    assert list(cands.columns) == list(CANDIDATE_COLUMNS) and len(cands) > 0
    print(f"\n{len(cands)} recall candidates of {churn_model.n_patients_} patients")
    assert cands["p_return"].between(0.2, 0.6, inclusive="left").all()
    assert (cands["overdue_ratio"] >= 1.5).all()
    assert cands["rank"].tolist() == list(range(1, len(cands) + 1))
    assert (np.diff(cands["overdue_ratio"].to_numpy()) <= 0).all()
    first = cands.iloc[0]
    assert f"{first['elapsed_days']}일 전" in first["reason"] and "P(return within 180d)" in first["reason_en"]
    capped = recall_candidates(churn_clinic, "2026-10-31", model=churn_model,
                               rules={"recall": {"select": "band", "max_candidates": 5}})
    pd.testing.assert_frame_equal(capped, cands.head(5))


def test_uplift_ranking_and_reasons(churn_clinic, churn_model):
    cands = recall_candidates(churn_clinic, "2026-10-31", model=churn_model)
    assert list(cands.columns) == list(CANDIDATE_COLUMNS) and len(cands) > 0
    print(f"\n{len(cands)} recall candidates by uplift; top uplift {cands['uplift'].iloc[0]:.3f}, "
          f"last {cands['uplift'].iloc[-1]:.3f}")
    assert (np.diff(cands["uplift"].to_numpy()) <= 0).all()
    assert (cands["uplift"] >= 0.02).all() and (cands["overdue_ratio"] >= 1.5).all()
    assert (cands["uplift_basis"] == "holdouts").all()  # the demo clinic has past recall campaigns
    first = cands.iloc[0]
    assert f"{first['elapsed_days']}일 전" in first["reason"] and "%p" in first["reason"]
    assert "P(return within 30d)" in first["reason_en"] and "assumed" not in first["reason_en"]
    # the uplift is what a message adds to the return probability: never above what is left to gain
    assert (cands["uplift"] <= 1 - cands["p_without_contact"]).all()


def test_unknown_selection_is_refused(churn_clinic, churn_model):
    with pytest.raises(CrmAnalysisError, match="recall.select must be one of uplift, band"):
        recall_table(churn_clinic, "2026-10-31", model=churn_model, rules={"recall": {"select": "probability"}})


def test_counts_by_segment_add_up(churn_clinic, churn_model):
    table = recall_table(churn_clinic, "2026-10-31", model=churn_model,
                         segments=pd.Series("A", index=churn_model.current_.index))
    counts = recall_counts(table).set_index("segment")
    assert counts.loc["total", "patients"] == len(table)
    assert counts.loc["total", "candidates"] == table["candidate"].sum()


def test_model_at_another_date_is_refused(churn_clinic, churn_model):
    with pytest.raises(CrmAnalysisError, match="fitted at 2026-10-31 but recall is for 2026-06-30"):
        recall_candidates(churn_clinic, "2026-06-30", model=churn_model)


def test_shared_model_is_the_default_cox_model_without_its_extras(churn_clinic, churn_model, monkeypatch):
    """The cached model skips the Weibull fit and PH check; its Cox model and predictions are the default's."""
    from crm_analysis.churn import cache

    monkeypatch.setattr(cache, "_ENTRIES", [])
    shared = cache.fitted_model(churn_clinic, DEMO_END)
    assert shared.weibull_ is None
    pd.testing.assert_frame_equal(shared.summary, churn_model.summary)
    pd.testing.assert_frame_equal(shared.predict_return(), churn_model.predict_return())


def test_recall_counts_hide_what_the_table_gives_away_by_difference():
    """in_band - candidates is the excluded: with one reason in a row, that reason is hidden only if candidates
    (or in_band) is hidden too; patients - in_band is the patients outside the band."""
    from crm_analysis.churn.recall import EXCLUSIONS

    def segment(name, n, in_band, future, candidates):
        i = np.arange(n)
        flags = {"segment": name, "selected": i < in_band, "overdue": True, "future_appointment": i < future,
                 "candidate": (i >= future) & (i < future + candidates)}
        return pd.DataFrame({**flags, **{e: False for e in EXCLUSIONS if e != "future_appointment"}})

    table = pd.concat([segment("a", 43, 40, 3, 37), segment("b", 60, 60, 10, 50), segment("c", 80, 78, 20, 58)],
                      ignore_index=True)
    counts = recall_counts(table).set_index("segment")
    print(counts)
    shown = counts.notna()
    assert counts["future_appointment"].isna()["a"], "3 is small"
    for name, row in counts.iterrows():
        others_zero = all(row[e] == 0 for e in EXCLUSIONS if e != "future_appointment")
        if pd.isna(row["future_appointment"]) and others_zero:
            assert pd.isna(row["candidates"]) or pd.isna(row["in_band"]), f"{name}: in_band - candidates gives it"
        if shown.loc[name, "patients"] and shown.loc[name, "in_band"]:
            assert not 1 <= row["patients"] - row["in_band"] <= 4, f"{name}: patients outside the band are few"
    values = counts.to_numpy(dtype=float, na_value=np.nan)
    assert not ((values >= 1) & (values < 5)).any()


def _reasons_one_by_one(cand: pd.DataFrame, rules) -> tuple[list, list]:
    """The reasons as they were written before they were put together per distinct value (the reference)."""
    from crm_analysis.churn.rules import load_churn_rules

    rec = load_churn_rules(rules)["recall"]
    h = int(rec["horizon_days"])
    ratio, usual = cand["overdue_ratio"].to_numpy(), cand["usual_interval_days"].to_numpy()
    pct = np.round(cand["p_return"].to_numpy() * 100).astype(int)
    el = cand["elapsed_days"].to_numpy()
    ko = [f"마지막 방문 {e}일 전 (평소 간격 {u:.0f}일의 {r:.1f}배)" for e, u, r in zip(el, usual, ratio)]
    en = [f"last visit {e} days ago ({r:.1f}x the usual {u:.0f}-day interval)" for e, u, r in zip(el, usual, ratio)]
    if rec["select"] != "uplift":
        return ([f"{k}; {h}일 내 재방문 확률 {q}%" for k, q in zip(ko, pct)],
                [f"{k}; P(return within {h}d) = {q}%" for k, q in zip(en, pct)])
    w = int(rec["uplift"]["window_days"])
    gain = cand["uplift"].to_numpy() * 100
    anyway = np.round(cand["p_without_contact"].to_numpy() * 100).astype(int)
    assumed = cand["uplift_basis"].to_numpy() == "assumed"
    rho = float(rec["uplift"]["assumed_response"])
    return ([f"{k}; 안내 시 {w}일 내 재방문 +{g:.1f}%p 기대 (안내 없이 {q}%)"
             + (f" [과거 캠페인 대조군이 없어 반응률 평균 {rho:.0%} 가정]" if a else "")
             for k, g, q, a in zip(ko, gain, anyway, assumed)],
            [f"{k}; a message is expected to add {g:.1f} points to P(return within {w}d) "
             f"(without it: {q}%)" + (f" [no past campaign holdouts: a {rho:.0%} average response is assumed]" if a
                                      else "")
             for k, g, q, a in zip(en, gain, anyway, assumed)])


@pytest.mark.parametrize("rules", [None, {"recall": {"select": "band"}},
                                   {"recall": {"uplift": {"campaigns": "^NO-SUCH-CAMPAIGN"}}}],
                         ids=["uplift-holdouts", "band", "uplift-assumed"])
def test_reasons_put_together_per_distinct_value_equal_the_one_by_one_texts(churn_clinic, churn_model, rules):
    cand = recall_candidates(churn_clinic, DEMO_END, model=churn_model, rules=rules)
    assert len(cand) > 20
    ko, en = _reasons_one_by_one(cand, rules)
    assert cand["reason"].tolist() == ko and cand["reason_en"].tolist() == en
    assert cand["reason"].dtype == object
