"""Rules as data, the monthly cost-benefit, and the evaluation's headline and report tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.estimates import Estimate
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders import cost_benefit, headline_sentence, load_rules, revenue_per_visit
from crm_analysis.reminders.pilot import pilot_per_booking
from tests.conftest import DEMO_END


def test_default_rules_and_overrides(tmp_path):
    r = load_rules()
    assert r["eligible_min_lead_days"] == 3 and r["message_cost_krw"]["kakao"] > 0
    assert r["slot_refill_rate"] == 0 and load_rules({"slot_refill_rate": 0.4})["slot_refill_rate"] == 0.4
    r2 = load_rules({"message_cost_krw": {"sms": 30}, "its": {"hac_maxlags": 2}})
    assert r2["message_cost_krw"]["sms"] == 30 and r2["message_cost_krw"]["kakao"] == r["message_cost_krw"]["kakao"]
    assert r2["its"]["hac_maxlags"] == 2 and r2["its"]["frequency"] == "M"
    path = tmp_path / "rules.yaml"
    path.write_text("pilot_month: null\nrollouts: []\n", encoding="utf-8")
    r3 = load_rules(path)
    assert r3["pilot_month"] is None and r3["rollouts"] == ()
    with pytest.raises(TypeError):
        r3["pilot_month"] = "2024-01"


@pytest.mark.parametrize("override, match", [
    ({"eligable_min_lead_days": 3}, "unknown reminder rule 'eligable_min_lead_days'"),
    ({"message_cost_krw": {"sms": -5}}, "message_cost_krw.sms must be a number of won >= 0"),
    ({"rollouts": [{"date": "2025-09-01"}, {"date": "2024-09-01"}]}, "oldest first"),
    ({"rollouts": [{"date": "soon"}]}, "is not a date"),
    ({"pilot_month": "June"}, "is not a month"),
    ({"lead_bands": [5, 3]}, "lead_bands must be increasing"),
    ({"its": {"frequency": "Q"}}, "its.frequency must be 'M'"),
    ({"slot_refill_rate": 1.5}, "slot_refill_rate must be a share between 0 and 1"),
    ({"slot_refill_rate": "half"}, "slot_refill_rate must be a share between 0 and 1"),
    ({"model": {"max_patients": 0}}, "model.max_patients must be null or a whole number of patients"),
    ({"model": {"max_patients": "all"}}, "model.max_patients must be null or a whole number of patients"),
])
def test_bad_rules_name_the_key(override, match):
    with pytest.raises(CrmAnalysisError, match=match):
        load_rules(override)


def test_missing_rules_file(tmp_path):
    with pytest.raises(CrmAnalysisError, match="does not exist"):
        load_rules(tmp_path / "nope.yaml")


def test_revenue_and_monthly_costs(demo_clinic, rem_table, rem_model):
    rev = revenue_per_visit(demo_clinic, DEMO_END)
    v = demo_clinic.visits
    assert rev == pytest.approx((v["charge_insured"].fillna(0) + v["charge_self_pay"].fillna(0)).mean())
    adjusted = {"cost_effect": "adjusted"}  # the per-booking model; the pilot path is tested below
    costs = cost_benefit(rem_table, rem_model, revenue=rev, rules=adjusted).set_index("month")
    assert costs.attrs["effect"] == "adjusted"
    # message cost of one month computed straight from the reminders table
    rem = demo_clinic.reminders.merge(demo_clinic.appointments[["appointment_id", "scheduled_at"]], on="appointment_id")
    month = rem[rem["scheduled_at"].dt.to_period("M") == pd.Period("2026-03", "M")]
    prices = load_rules()["message_cost_krw"]
    expected = month["channel"].astype(str).map(lambda c: prices[c]).sum()
    assert costs.loc["2026-03", "message_cost"] == pytest.approx(expected)
    assert costs.loc["2026-03", "messages"] == len(month)
    # the benefit is extra attended visits over the month's bookings with reminders planned, cancelled ones included
    planned = costs.drop(index="2024-06")  # the pilot month: arms of cancelled appointments unknown, so no figure
    assert planned["extra_visits"].notna().all() and np.isnan(costs.loc["2024-06", "extra_visits"])
    assert np.allclose(planned["net_benefit"], planned["extra_visits"] * rev - planned["message_cost"])
    assert np.allclose(planned["revenue_kept"], planned["extra_visits"] * rev)
    assert (planned["extra_visits_ci_low"] < planned["extra_visits"]).all()
    assert (planned["extra_cancellations"] > 0).all() and (planned["bookings_planned"] > planned["reminded"]).all()
    # the no-shows avoided among non-cancelled appointments (kept for analysts) are more than the visits kept
    assert (planned["no_shows_avoided"] > planned["extra_visits"]).all()
    m = costs.loc["2026-03"]
    print(f"revenue per visit {rev:,.0f} KRW; 2026-03: {m['bookings_planned']} bookings planned, extra visits "
          f"{m['extra_visits']:.1f} [{m['extra_visits_ci_low']:.1f}, {m['extra_visits_ci_high']:.1f}], extra "
          f"cancellations {m['extra_cancellations']:.1f}, (old: no-shows avoided {m['no_shows_avoided']:.1f}), "
          f"net {m['net_benefit']:,.0f} KRW")
    no_rev = cost_benefit(rem_table, rem_model, revenue=None, rules=adjusted)
    assert no_rev["revenue_kept"].isna().all() and no_rev["message_cost"].gt(0).all()
    without = cost_benefit(rem_table, rem_model, revenue=rev, bookings=None, rules=adjusted)
    assert without["extra_visits"].isna().all() and without["net_benefit"].isna().all()


def test_costs_value_the_pilot_by_default_and_say_so(rem_table, rem_model, rem_truth, rem_eval):
    per = pilot_per_booking(rem_table)
    truth = rem_truth["rollout_periods"]["1d"]["per_booking"]  # the pilot allocated the 1-day reminder
    print({k: f"{e.estimate:+.4f} [{e.ci_low:+.4f}, {e.ci_high:+.4f}]" for k, e in per.items()},
          f"truth: visits {truth['extra_visits']:+.4f}, cancellations "
          f"{truth['cancellations_planned'] - truth['cancellations_none']:+.4f}")
    # the figure the cost-benefit values (192 pilot bookings in this small clinic: wide, but it covers the truth)
    assert per["visits"].contains(truth["extra_visits"])
    assert per["visits"].n == per["cancellations"].n == per["no_shows"].n
    costs = cost_benefit(rem_table, rem_model, revenue=1000.0)
    assert costs.attrs["effect"] == "pilot"
    valued = costs.dropna(subset=["extra_visits"])
    assert len(valued) and np.allclose(valued["extra_visits"], valued["bookings_planned"] * per["visits"].estimate)
    assert np.allclose(valued["extra_cancellations_ci_high"],
                       valued["bookings_planned"] * per["cancellations"].ci_high)
    assert "cost_effect" in rem_eval.cost_effect_sentence("ko")
    assert "cost_effect: pilot" in rem_eval.cost_effect_sentence("en")


def test_evaluation_on_demo(rem_eval, rem_truth):
    ev = rem_eval
    assert ev.headline_key == "3d+1d+2h" and ev.pilot is not None and ev.its is not None
    rd, _ = ev.adjusted["3d+1d+2h"]
    assert rd.contains(rem_truth["rollout_periods"]["3d+1d+2h"]["risk_difference"])
    ko, en = ev.headline("ko"), ev.headline("en")
    print(ko, en, sep="\n")
    assert f"{abs(rd.estimate) * 100:.1f}%p 낮춥니다" in ko and f"{abs(rd.ci_high) * 100:.1f}" in ko
    assert "percentage points" in en and "95% CI" in en
    assert ev.notes == ()
    table = ev.comparison_table("en")
    assert len(table) == 6 and "randomised pilot" in table.iloc[:, 0].tolist()
    assert "2-hour" in ev.step_2h_sentence("en")
    assert {"none", "1d", "3d+1d+2h"} <= set(ev.schedules["schedule"])
    assert list(ev.planner_table("en").columns) == [
        "change in no-show rate to detect", "no-show rate (control → reminder)", "appointments needed per arm"]
    summary = ev.summary()
    assert {"crude", "pilot_rd", "its_level_change[1d]", "adjusted_rd[reminded]",
            "per_booking_visits[3d+1d+2h]", "per_booking_cancellations[1d]"} <= set(summary["name"])
    assert "Reminder evaluation" in ev._repr_html_()


def test_a_large_clinic_is_evaluated_on_a_patient_sample_that_still_covers_the_truth(demo_clinic, rem_eval,
                                                                                      rem_truth):
    """Above ``model.max_patients`` the evaluation keeps a random sample of patients with all their
    appointments: its intervals are wider, still cover the clinic's true effects, and the counts say whose."""
    from crm_analysis.monthly.page_one import effect_sentence
    from crm_analysis.reminders import evaluate_reminders
    from crm_analysis.reminders.monthly import reminder_effect_kpis

    n = len(demo_clinic.patients)
    most = n * 2 // 3
    ev = evaluate_reminders(demo_clinic, DEMO_END, rules={"model": {"max_patients": most}})
    assert ev.sample is not None and (ev.sample.patients, ev.sample.of) == (most, n) and rem_eval.sample is None
    assert ev.model.n_patients_ <= most < rem_eval.model.n_patients_
    for period in ("1d", "3d+1d+2h"):
        truth = rem_truth["rollout_periods"][period]
        rd, rr = ev.adjusted[period]
        full, _ = rem_eval.adjusted[period]
        print(f"{period}: sample {rd} vs all patients {full} vs truth {truth['risk_difference']:+.4f}")
        assert rd.contains(truth["risk_difference"]) and rr.contains(truth["risk_ratio"])
        assert rd.n < full.n and rd.ci_high - rd.ci_low > full.ci_high - full.ci_low
    en = ev.note_texts("en")[0]
    print(en)
    assert f"a random {most:,} of them" in en and f"With {n:,} patients" in en
    assert "표본" in ev.note_texts("ko")[0] and rem_eval.note_texts("en") == []
    kpis = reminder_effect_kpis(demo_clinic, DEMO_END, evaluation=ev, rules={"model": {"max_patients": most}})
    assert kpis["sample"] == {"patients": most, "of": n}
    sentence = effect_sentence({"reminder_effect": {**kpis, "available": True}}, "en")
    assert f"random sample of {most:,} patients" in sentence


def test_evaluation_shows_visits_per_booking_beside_cancellations(rem_eval, rem_truth):
    ev = rem_eval
    assert ev.per_booking_key == "3d+1d+2h" and list(ev.per_booking) == ["1d", "3d+1d+2h"]
    visits = ev.per_booking["3d+1d+2h"]["visits"]
    assert visits.contains(rem_truth["rollout_periods"]["3d+1d+2h"]["per_booking"]["extra_visits"])
    ko, en = ev.visits_sentence("ko"), ev.visits_sentence("en")
    print(ko, en, sep="\n")
    assert f"{visits.estimate * 100:+.1f}" in en and "cancellations" in en and "Per 100 bookings" in en
    assert "취소" in ko and f"{visits.estimate * 100:+.1f}건" in ko
    table = ev.visits_table("en")
    print(table.to_string())
    assert list(table.columns) == ["reminders planned", "bookings (cancelled included)",
                                   "extra attended visits per 100 bookings (95% CI)",
                                   "no-shows avoided per 100 bookings (95% CI)",
                                   "extra cancellations per 100 bookings (95% CI)"]
    for lang in ("ko", "en"):
        costs = ev.cost_table(lang)
        assert len(costs.columns) == 8 and costs.iloc[:, 4].str.contains("~").sum() == len(costs) - 1
    assert list(ev.cost_table("en").columns[4:6]) == ["extra attended visits (95% CI)", "extra cancellations (95% CI)"]
    assert ev.cost_table("en").set_index("month").loc["2024-06", "extra attended visits (95% CI)"] == "–"


@pytest.mark.parametrize("rd, key", [(-0.05, "낮춥니다"), (0.04, "높입니다"), (-0.01, "확인되지 않습니다")])
def test_headline_wording_follows_the_interval(rd, key):
    e = Estimate(rd, rd - 0.02, rd + 0.02, 0.01, "m", 100, "risk_difference",
                 extras={"mean_p_control": 0.2, "mean_p_treated": 0.2 + rd})
    assert key in headline_sentence(e, "1d", "ko")
    assert "1d" in headline_sentence(e, "1d", "en")
