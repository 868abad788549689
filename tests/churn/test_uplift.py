"""Uplift of a recall message, checked against the demo generator's true campaign effect.

The generator's true lift of messaging patient i in a window of w days after
``as_of`` is ``(1 − p0_i) · r_i · P(delivered_i)`` (``crm_analysis.synth.campaigns``):
``p0_i`` the organic P(visit in the window | days elapsed) of the true return
model, ``r_i = min(1, response_prob · exp(η_i))`` and ``P(delivered_i)`` the
expected delivery of the patient's first consented channel (from the contact
quality parameters; the per-patient draws are internal to the generator and
independent of the return model). Patients without a valid marketing channel
cannot be messaged and are left out of the comparisons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.churn import ChurnModel, recall_candidates, recall_table
from crm_analysis.churn.survival_data import current_gaps, survival_data
from crm_analysis.churn.uplift import contact_states, expected_uplift, learn_contact_response
from crm_analysis.clinic import ClinicData
from crm_analysis.consent import opted_out
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.synth.returns import survival
from tests.conftest import DEMO_END

WINDOW = 30
#: The older ranking the issue complains about: the recoverable band, most overdue first.
BAND = {"recall": {"select": "band"}}


def _expected_delivery(contact) -> dict[str, float]:
    """E[P(delivered)] per channel from the generator's two-point mixtures and invalid shares."""
    def mix(low, high, share):
        return low * (1 - share) + high * share

    phone_ok = 1 - contact.phone_invalid_share
    return {"kakao": phone_ok
            * (1 - mix(contact.kakao_fail_low, contact.kakao_fail_high, contact.kakao_fail_high_share)),
            "sms": phone_ok * (1 - mix(contact.sms_soft_low, contact.sms_soft_high, contact.sms_soft_high_share)),
            "email": (1 - contact.email_invalid_share)
            * (1 - mix(contact.email_soft_low, contact.email_soft_high, contact.email_soft_high_share))}


def true_lift(sim, clinic: ClinicData, as_of, window: int = WINDOW) -> pd.Series:
    """The generator's true lift of a recall message sent on `as_of`, per patient (NaN: no consented channel)."""
    as_of = pd.Timestamp(as_of)
    gaps = current_gaps(survival_data(clinic, as_of))
    eta = np.zeros(len(gaps))
    for key, beta in sim.truth["return_model"]["log_hazard_ratios"].items():
        column, level = key[:-1].split("[")
        eta += beta * (gaps[column].astype(str).to_numpy() == level)
    elapsed = gaps["elapsed_days"].to_numpy()
    rp = sim.params.returns
    p0 = 1 - survival(elapsed + window, eta, rp) / survival(elapsed, eta, rp)
    spec = next(c for c in sim.params.campaigns if c.kind == "recall")
    respond = np.minimum(1.0, spec.response_prob * np.exp(eta))
    delivery = _expected_delivery(sim.params.contact)
    ids = gaps.index.astype(str)
    pats = clinic.patients.set_index(clinic.patients["patient_id"].astype(str)).reindex(ids)
    at = pd.Series(as_of, index=pats.index)
    p_deliver = np.full(len(pats), np.nan)
    for channel in ("kakao", "sms", "email"):  # the generator's channel order: KakaoTalk first
        ok = pats[f"{channel}_consent"].fillna(False).astype(bool).to_numpy() & ~opted_out(pats, channel, at)
        p_deliver[ok & np.isnan(p_deliver)] = delivery[channel]
    return pd.Series((1 - p0) * respond * p_deliver, index=ids, name="true_lift")


@pytest.fixture(scope="module")
def truth_now(demo_synth, churn_clinic):
    return true_lift(demo_synth, churn_clinic, DEMO_END)


def _mean_true(ids, truth: pd.Series, k: int) -> float:
    reachable = truth.reindex(pd.Index(ids, dtype=object)).dropna()
    return float(reachable.head(k).mean())


def test_uplift_ranking_targets_more_true_lift_than_the_return_probability_ranking(churn_clinic, churn_model,
                                                                                   truth_now):
    new = recall_candidates(churn_clinic, DEMO_END, model=churn_model)
    old = recall_candidates(churn_clinic, DEMO_END, model=churn_model, rules=BAND)
    # the campaigns' own fallback rule: away 180-730 days, most recently lapsed first
    last = churn_model.current_["elapsed_days"]
    naive = last[last.between(180, 730)].sort_values(kind="stable").index.astype(str)
    reachable_old = truth_now.reindex(old["patient_id"]).notna().sum()
    oracle = truth_now.dropna().sort_values(ascending=False)
    print(f"\n[uplift vs truth] candidates: uplift {len(new)}, band {len(old)} ({reachable_old} reachable); "
          f"away 180-730 d: band {int(old['elapsed_days'].between(180, 730).sum())}, "
          f"uplift {int(new['elapsed_days'].between(180, 730).sum())}")
    for k in (25, 50, int(reachable_old)):
        t_new, t_old = _mean_true(new["patient_id"], truth_now, k), _mean_true(old["patient_id"], truth_now, k)
        t_naive, t_best = _mean_true(naive, truth_now, k), float(oracle.head(k).mean())
        print(f"  top {k:>3}: true lift per message  uplift {t_new:.4f}  band/overdue {t_old:.4f}  "
              f"180-730 d most recent {t_naive:.4f}  best possible {t_best:.4f}")
        assert t_new > 1.3 * t_old, "the uplift ranking must buy clearly more true returns than the old one"
        assert t_new > t_naive, "the uplift ranking must beat the campaigns' day-range rule"
    # the symptom of the issue: the long-absent now qualify
    assert new["elapsed_days"].between(180, 730).sum() > 0


def test_estimated_uplift_tracks_the_true_lift_per_patient(churn_clinic, churn_model, truth_now):
    table = recall_table(churn_clinic, DEMO_END, model=churn_model)
    both = pd.DataFrame({"estimated": table["uplift"], "true": truth_now.reindex(table.index)}).dropna()
    away = table.loc[both.index, "elapsed_days"]
    bands = pd.cut(away, [0, 7, 30, 90, 180, 730, 10_000], include_lowest=True)
    by_band = both.groupby(bands, observed=True).mean()
    rank_corr = both.corr(method="spearman").iloc[0, 1]
    print(f"\n[uplift vs truth] Spearman correlation {rank_corr:.3f} over {len(both)} reachable patients; "
          f"mean by days away:\n{by_band.round(4).to_string()}")
    assert rank_corr > 0.5
    # the scale, where the response was learned (180-730 days away) and below it
    learned = both[away.between(180, 730)].mean()
    assert abs(learned["estimated"] - learned["true"]) < 0.015, learned
    assert by_band["estimated"].iloc[0] < by_band["estimated"].iloc[-2]  # those about to come anyway gain least


def test_response_scale_matches_the_measured_holdout_lift_and_the_truth(demo_synth, churn_clinic, churn_model):
    response = learn_contact_response(churn_clinic, DEMO_END, churn_model)
    campaigns = demo_synth.truth["campaigns"]
    rows = [campaigns[c] for c in response.campaigns]
    true_itt = np.average([r["true_lift_itt"] for r in rows], weights=[r["n_targeted"] for r in rows])
    m = response.measured_lift
    print(f"\n[response] {response.note_en}\n{response.summary()[['estimand', 'estimate', 'ci_low', 'ci_high']]}"
          f"\n  implied lift {response.implied_lift:.4f}; measured {m.estimate:.4f} [{m.ci_low:.4f}, {m.ci_high:.4f}];"
          f" generator's true ITT lift {true_itt:.4f}")
    assert response.basis == "holdouts" and all(c.startswith("RECALL-") for c in response.campaigns)
    assert m.ci_low <= response.implied_lift <= m.ci_high
    assert abs(response.implied_lift - true_itt) < 0.015
    assert response.response.ci_low <= true_itt / 0.9 and response.response.ci_high >= true_itt * 0.9
    assert response.slope.estimate > 0  # the generator's response grows with the return hazard


def test_out_of_time_uplift_predicts_the_next_campaigns_true_lift(demo_synth, churn_clinic):
    """Fit the day before RECALL-2026-08 on the campaigns closed by then; predict that campaign's lift."""
    as_of = pd.Timestamp("2026-08-09")
    model = ChurnModel(weibull=False, ph_test=False).fit(churn_clinic, as_of)
    response = learn_contact_response(churn_clinic, as_of, model)
    assert "RECALL-2026-08" not in response.campaigns and "RECALL-2026-05" in response.campaigns
    c = churn_clinic.contacts
    target = c.loc[c["campaign_id"] == "RECALL-2026-08", "patient_id"].astype(str)
    predicted = float(expected_uplift(model, response)["uplift"].reindex(target).mean())
    later = contact_states(churn_clinic, DEMO_END, WINDOW, "RECALL-2026-08")
    sent, held = later.loc[later["sent"], "returned"], later.loc[~later["sent"], "returned"]
    measured = sent.mean() - held.mean()
    true_itt = demo_synth.truth["campaigns"]["RECALL-2026-08"]["true_lift_itt"]
    print(f"\n[out of time] RECALL-2026-08 ({len(target)} rows): predicted uplift {predicted:.4f}, "
          f"generator's true ITT lift {true_itt:.4f}, measured afterwards {measured:.4f} "
          f"({len(sent)} sent, {len(held)} held out)")
    assert abs(predicted - true_itt) < 0.02


def test_without_past_holdouts_the_response_is_assumed_and_said(churn_clinic, churn_model, truth_now):
    tables = {k: v for k, v in churn_clinic.tables.items() if k != "contacts"}
    bare = ClinicData(tables, as_of=churn_clinic.as_of)
    response = learn_contact_response(bare, DEMO_END, churn_model)
    assert response.basis == "assumed" and response.measured_lift is None
    assert "no past campaign contacts" in response.note_en and "가정" in response.note
    new = recall_candidates(bare, DEMO_END, model=churn_model)
    old = recall_candidates(bare, DEMO_END, model=churn_model, rules=BAND)
    assert (new["uplift_basis"] == "assumed").all()
    assert new["reason"].str.contains("가정").all() and new["reason_en"].str.contains("response is assumed").all()
    k = int(truth_now.reindex(old["patient_id"]).notna().sum())
    t_new, t_old = _mean_true(new["patient_id"], truth_now, k), _mean_true(old["patient_id"], truth_now, k)
    print(f"\n[no holdouts] {len(new)} candidates; top {k} true lift per message: uplift (assumed response) "
          f"{t_new:.4f} vs band/overdue {t_old:.4f}")
    assert t_new > t_old
    # too few rows in an arm also falls back
    few = learn_contact_response(churn_clinic, DEMO_END, churn_model,
                                 rules={"recall": {"uplift": {"min_rows_per_arm": 100_000}}})
    assert few.basis == "assumed" and "holdout rows" in few.note_en
    # so do campaign names that match no past campaign (real exports name campaigns their own way)
    unnamed = learn_contact_response(churn_clinic, DEMO_END, churn_model,
                                     rules={"recall": {"uplift": {"campaigns": "^WINBACK"}}})
    assert unnamed.basis == "assumed" and "matching '^WINBACK'" in unnamed.note_en


def test_contact_states_use_the_send_day_state_and_leave_the_input_alone(churn_clinic):
    before = churn_clinic.contacts.copy()
    rows = contact_states(churn_clinic, DEMO_END, WINDOW, "RECALL")
    pd.testing.assert_frame_equal(churn_clinic.contacts, before)
    # recall campaigns target patients 180-730 days away on the send day (counted from the last visit before it)
    assert rows["elapsed_days"].between(180, 731).all(), rows["elapsed_days"].describe()
    assert rows["sent"].any() and (~rows["sent"]).any()
    # a window still open on as_of is not used (look-ahead): RECALL-2026-08 closes on 2026-09-09
    early = contact_states(churn_clinic, "2026-09-08", WINDOW, "RECALL")
    assert "RECALL-2026-08" not in set(early["campaign_id"]) and "RECALL-2026-08" in set(rows["campaign_id"])


def test_bad_uplift_rules_are_refused(churn_clinic, churn_model):
    with pytest.raises(CrmAnalysisError, match="recall.uplift.assumed_response"):
        learn_contact_response(churn_clinic, DEMO_END, churn_model,
                               rules={"recall": {"uplift": {"assumed_response": 1.5}}})
    with pytest.raises(CrmAnalysisError, match="recall.uplift.campaigns"):
        learn_contact_response(churn_clinic, DEMO_END, churn_model, rules={"recall": {"uplift": {"campaigns": "("}}})
    with pytest.raises(CrmAnalysisError, match="must be fitted at 2026-09-30"):
        learn_contact_response(churn_clinic, "2026-09-30", churn_model)


@pytest.mark.parametrize("as_of", [DEMO_END, "2026-03-31"])
def test_contact_states_by_binary_search_equal_the_as_of_merges(churn_clinic, monkeypatch, as_of):
    """The fast path (a sorted key over survival_data's layout) gives the rows the two as-of merges on patient ids
    gave (the reference, still used for gaps in another layout), also for unknown and missing patient ids."""
    from crm_analysis.churn import uplift

    contacts = churn_clinic.contacts.copy()
    ids = contacts["patient_id"].astype(object).to_numpy()
    ids[::50] = "P-NOT-A-PATIENT"
    ids[7::61] = None
    contacts["patient_id"] = pd.array(ids, dtype=churn_clinic.contacts["patient_id"].dtype)
    clinic = ClinicData({**churn_clinic.tables, "contacts": contacts}, as_of=churn_clinic.as_of)
    gaps = survival_data(clinic, as_of)
    fast = contact_states(clinic, as_of, WINDOW, gaps=gaps)
    assert len(fast) > 1_000 and fast["returned"].any() and (~fast["returned"]).any()
    monkeypatch.setattr(uplift, "_gaps_around", lambda *args: None)
    reference = contact_states(clinic, as_of, WINDOW, gaps=gaps)
    pd.testing.assert_frame_equal(fast, reference, check_exact=True)
    # gaps in another order are not misread: the layout check sends them to the merges
    monkeypatch.undo()
    shuffled = gaps.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert uplift._gaps_around(shuffled, contacts["patient_id"], contacts["sent_at"].to_numpy()) is None
    pd.testing.assert_frame_equal(contact_states(clinic, as_of, WINDOW, gaps=shuffled), reference, check_exact=True)
