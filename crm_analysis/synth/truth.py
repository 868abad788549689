"""Assemble ``truth.json``: every generating parameter and the derived true effects.

The sections mirror the sub-processes; ``docs/demo_clinic.md`` explains each
equation. Everything here is plain JSON (no NaN: missing numbers are null).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.contract import CHANNELS, REFERRAL_SOURCES
from crm_analysis.synth.appointments import STATUSES, Appointments
from crm_analysis.synth.calendar import ClinicCalendar
from crm_analysis.synth.catalog import AGE_BANDS, DEPARTMENTS
from crm_analysis.synth.charges import VisitDetails
from crm_analysis.synth.family import OUTCOMES, Pregnancies
from crm_analysis.synth.params import SynthParams
from crm_analysis.synth.population import Patients
from crm_analysis.synth.referrals import STATUSES as RECORD_STATUSES
from crm_analysis.synth.returns import coefficients
from crm_analysis.synth.visits import VisitPath

__all__ = ["return_model_truth", "spend_truth", "appointment_truth", "population_truth", "contact_truth",
           "family_truth", "referral_truth"]


def _shares(codes: np.ndarray, labels) -> dict:
    n = max(len(codes), 1)
    return {lab: float(np.sum(codes == i) / n) for i, lab in enumerate(labels)}


def return_model_truth(params: SynthParams, pat: Patients, path: VisitPath) -> dict:
    """Section ``return_model``."""
    rp = params.returns
    beta = coefficients(rp)
    hr, coef = {}, {}
    for group, labels in (("age_band", AGE_BANDS), ("sex", ("M", "F")), ("main_department", DEPARTMENTS),
                          ("referral", ("other", "word_of_mouth")), ("self_pay_heavy", ("no", "yes"))):
        for i, lab in enumerate(labels):
            if beta[group][i] != 0.0 or lab in rp.hazard_ratios.get(group, {}):
                hr[f"{group}[{lab}]"] = float(np.exp(beta[group][i]))
                coef[f"{group}[{lab}]"] = float(beta[group][i])
    n_vis = np.bincount(path.pid, minlength=len(pat))
    induced = int((path.induced_event >= 0).sum())
    return {
        "model": "S(t|x) = S_b(t)^exp(beta'x), S_b(t) = q + (1-q)*exp(-(t/scale)^shape); T = days from a visit "
                 "to the next; v = U^exp(-beta'x); v <= q: never returns; else T = S_0^-1((v-q)/(1-q))",
        "baseline": {"type": "improper Weibull", "q": rp.dropout_mass, "weibull_shape": rp.weibull_shape,
                     "weibull_scale_days": rp.weibull_scale},
        "time_unit": "days",
        "gaps": "one gap per visit: from each visit to the patient's next visit (event) or to `end` (censored); "
                "gaps of a patient are independent given the covariates (no frailty)",
        "calendar_rounding": "next visit day = visit day + max(1, ceil(T)); never moved off Sundays or "
                             "holidays (visits on closed days are walk-ins), so gap durations in whole days follow "
                             "the grouped proportional-hazards model exactly",
        "covariates": {
            "fixed_per_patient": True,
            "age_band": "completed years of age at first_visit_date: 0-19, 20-39, 40-59, 60+",
            "sex": "patients.sex",
            "main_department": "department of the patient's first visit",
            "referral": "word_of_mouth = (patients.referral_source == 'word_of_mouth'); missing counts as other",
            "self_pay_heavy": "first visit has charge_self_pay > charge_insured",
        },
        "reference_levels": {"age_band": "20-39", "sex": "M", "main_department": DEPARTMENTS[0],
                             "referral": "other", "self_pay_heavy": "no"},
        "hazard_ratios": hr,
        "log_hazard_ratios": coef,
        "campaign_induced_gaps": induced,
        "campaign_induced_gap_share": float(induced / max(len(path), 1)),
        "mean_visits_per_patient": float(n_vis.mean()),
        "visits_per_patient_quantiles": {str(q): float(np.quantile(n_vis, q))
                                         for q in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)},
        "share_patients_1_to_3_visits": float(np.mean(n_vis <= 3)),
        "share_patients_100_plus_visits": float(np.mean(n_vis >= 100)),
        "max_visits": int(n_vis.max()) if len(n_vis) else 0,
    }


def spend_truth(params: SynthParams, det: VisitDetails) -> dict:
    """Section ``spend``."""
    sp = params.spend
    total = det.charge_insured + det.charge_self_pay
    return {
        "model": "total = base * z, z ~ Gamma(shape=p, rate=nu_i), nu_i ~ Gamma(shape=q, rate=gamma) per patient; "
                 "floored at 1000 KRW; split by a self-pay share s: charge_self_pay = total*s, "
                 "charge_insured = total*(1-s), each rounded to 10 KRW",
        "gamma_gamma": {"p": sp.gg_p, "q": sp.gg_q, "gamma": sp.gg_gamma,
                        "mean_multiplier": sp.gg_p * sp.gg_gamma / (sp.gg_q - 1) if sp.gg_q > 1 else None},
        "base_krw": {"outpatient": dict(sp.outpatient_base), "checkup": sp.checkup_base,
                     "inpatient_per_day": sp.inpatient_per_diem},
        "self_pay_share": {"p_any_by_department": dict(sp.self_pay_any), "p_any_self_pay_heavy": sp.self_pay_any_heavy,
                           "mean_by_department": dict(sp.self_pay_mean), "min_mean_self_pay_heavy":
                           sp.self_pay_mean_heavy, "beta": "Beta(mean*k, (1-mean)*k), k = share_concentration",
                           "share_concentration": sp.share_concentration,
                           "checkup": "p_any 0.5, mean 0.5", "inpatient": "p_any 0.6, mean 2/7",
                           "first_visit": "self-pay heavy: 0.55 + 0.45*Beta(2,2); others: 0.45*Beta(2,2) "
                                          "with p_any, else 0"},
        "realised": {"mean_total_per_visit": float(total.mean()) if len(total) else None,
                     "self_pay_share_of_revenue": float(det.charge_self_pay.sum() / max(total.sum(), 1)),
                     "mean_total_by_department": {d: float(total[det.dept == i].mean())
                                                  for i, d in enumerate(DEPARTMENTS) if np.any(det.dept == i)}},
    }


def appointment_truth(params: SynthParams, app: Appointments, n_visits: int, cal: ClinicCalendar) -> dict:
    """Section ``appointments`` (the no-show model)."""
    npar = params.noshow
    past = app.day <= cal.last_day
    nc = past & np.isin(app.status, (0, 1))
    return {
        "no_show_model": {
            "logit": "b0 + b_lead*log1p(lead_days) + b_prior*min(prior_no_shows, cap) + month[scheduled month] "
                     "+ b_trend*years_since_start + department[department] + sum of reminder[s] over delivered steps s",
            "lead_days": "calendar days from booked_at's date to scheduled_at's date",
            "prior_no_shows": "the patient's no_show appointments with an earlier scheduled_at",
            "years_since_start": "(scheduled date - start) in days / 365.25",
            "population": "all non-cancelled appointments (status attended or no_show); conditional on not "
                          "being cancelled the logit holds exactly",
            "b0": npar.intercept, "b_lead": npar.lead, "b_prior": npar.prior, "prior_cap": npar.prior_cap,
            "month": dict(npar.month), "b_trend_per_year": npar.trend_per_year,
            "department": {DEPARTMENTS[0]: 0.0, **dict(npar.department)}, "reminder": dict(npar.reminder),
        },
        "cancellation": {"p_cancel": "cancel_base + cancel_reminder_bump*[any reminder step delivered]",
                         "cancel_base": npar.cancel_base, "cancel_reminder_bump": npar.cancel_reminder_bump,
                         "rescheduled_share": npar.rescheduled_share,
                         "cancelled_at": "uniform between booked_at and scheduled_at (cancelled only; "
                                         "rescheduled rows have no cancelled_at)"},
        "walk_in": {"first_visit": npar.walk_in_first, "return_visit": npar.walk_in_return},
        "lead_time": {"return": {"p_same_day": npar.lead_return[0], "p_next_day": npar.lead_return[1],
                                 "p_2_to_6_days": npar.lead_return[2],
                                 "follow_up": "weeks 1-6 with P .30/.25/.15/.15/.10/.05, +-2 days; capped at the "
                                              "days since the previous visit (booked at that visit)"},
                      "first": {"p_same_day": npar.lead_first[0], "p_next_day": npar.lead_first[1],
                                "rest": "uniform 2-14 days"}},
        "future_bookings": "appointments scheduled after `end` and booked on or before it have status booked",
        "realised": {
            "status_counts": {s: int(np.sum(app.status == i)) for i, s in enumerate(STATUSES)},
            "no_show_rate_non_cancelled": float(np.mean(app.status[nc] == 1)) if nc.any() else None,
            "cancel_rate": float(np.mean(np.isin(app.status[past], (2, 3)))) if past.any() else None,
            "share_visits_with_appointment": float(np.sum(app.attended_visit & past) / max(n_visits, 1)),
        },
    }


def population_truth(pat: Patients) -> dict:
    """Section ``population``."""
    adult = ~pat.is_child
    return {
        "age_band_at_first_visit": _shares(pat.age_band, AGE_BANDS),
        "female_share": float(np.mean(pat.sex == 1)),
        "main_department": _shares(pat.main_dept, DEPARTMENTS),
        "self_pay_heavy_share": float(np.mean(pat.self_pay_heavy)),
        "children_born_in_window": int(pat.is_child.sum()),
        "consent": {ch: {"share_yes": float(np.mean(pat.consent[adult, j] == 1)),
                         "share_missing": float(np.mean(pat.consent[adult, j] < 0)),
                         "share_opted_out": float(np.mean(pat.opt_out_day[:, j] < 2**39))}
                    for j, ch in enumerate(CHANNELS)},
        "night_ad_consent_share": float(np.mean(pat.night_consent)),
    }


def contact_truth(params: SynthParams, pat: Patients, tables: dict) -> dict:
    """Section ``contact_quality``: deliverability and engagement, parameters and realised rates."""
    cq = params.contact
    c = tables["contacts"]
    sent = c[c["arm"] == "sent"]
    realised = {}
    for ch in CHANNELS:
        s = sent[sent["channel"] == ch]
        if len(s):
            realised[ch] = {"n_sent": int(len(s)),
                            "bounce_rates": {b: float((s["bounce_type"] == b).mean())
                                             for b in ("none", "soft", "hard")},
                            "open_rate": float(s["opened"].mean()) if s["opened"].notna().any() else None,
                            "click_rate": float(s["clicked"].mean()), "reply_rate": float(s["replied"].mean())}
    r = tables["reminders"]
    return {
        "model": "per patient: phone invalid (every SMS/KakaoTalk message hard-bounces), KakaoTalk failure and "
                 "SMS/email soft-bounce probabilities from two-point mixtures, email invalid (hard); engagement "
                 "e ~ Beta; P(opened | delivered) = open_base + open_slope*e (SMS opens untracked: missing), "
                 "P(clicked | opened) = e, P(replied | delivered) = reply_slope*e; holdout rows: delivered, "
                 "bounce_type, opened, clicked and replied missing",
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cq).items()},
        "realised_campaign_messages": realised,
        "realised_reminder_delivery_rate": {ch: float(r.loc[r["channel"] == ch, "delivered"].mean())
                                            for ch in ("kakao", "sms") if (r["channel"] == ch).any()},
        "share_phone_invalid": float(np.mean(pat.phone_invalid)),
    }


def family_truth(params: SynthParams, preg: Pregnancies, pat: Patients) -> dict:
    """Section ``pregnancies``."""
    counts = {o: int(np.sum(preg.outcome == i)) for i, o in enumerate(OUTCOMES)}
    counts["ongoing"] = int(np.sum(preg.outcome < 0))
    return {
        "model": "outcome date = one of the mother's visits (deliveries: inpatient stay in 산부인과); visits "
                 "from gestational day prenatal_from_day to the outcome are prenatal (산부인과); due_date = "
                 "LMP + 280 days; each live birth adds a child patient (guardian_id = mother, birth_date = "
                 "delivery date, same phone) whose first visit is 7-35 days later in 소아청소년과",
        "counts": counts,
        "n_children": int(pat.is_child.sum()),
        "caesarean_share_param": params.family.csection_share,
        "prenatal_visits": int(len(preg.prenatal_visits)),
    }


def referral_truth(params: SynthParams, pat: Patients, referred_by: np.ndarray, weight: np.ndarray) -> dict:
    """Section ``referral``."""
    adult = ~pat.is_child
    counts = np.bincount(referred_by[referred_by >= 0], minlength=len(pat))
    top = np.sort(counts)[::-1][:10]
    return {
        "model": "referral_source ~ Categorical(referral_sources) per non-child patient; word-of-mouth patients "
                 "name a referrer with probability referrer_recorded_share, drawn among patients with a strictly "
                 "earlier first visit with P proportional to w = min(1 + Lomax(alpha), max_weight); "
                 "children: mother's source with "
                 "probability child_referral_inherit_share, else missing; never a referrer",
        "source_probabilities": dict(params.population.referral_sources),
        "realised_source_shares": _shares(pat.referral[adult], REFERRAL_SOURCES),
        "referrer_recorded_share": params.population.referrer_recorded_share,
        "pareto_alpha": params.population.referrer_pareto_alpha,
        "max_weight": params.population.referrer_max_weight,
        "n_with_referrer": int(np.sum(referred_by >= 0)),
        "top_referrer_counts": [int(x) for x in top],
    }


def status_truth(status: np.ndarray) -> dict:
    """Section ``record_status`` counts."""
    return {s: int(np.sum(status == i)) for i, s in enumerate(RECORD_STATUSES)}


def row_counts(tables: dict[str, pd.DataFrame]) -> dict:
    """Rows per table."""
    return {k: int(len(v)) for k, v in tables.items()}
