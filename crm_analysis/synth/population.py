"""Patients: fixed covariates, registration dates, contact quality and consent.

Each patient is drawn once and keeps the same covariates for the whole window.
The covariates of the return model are all *observable* in the tables:

* age band: completed years of age at the first visit (``birth_date`` never lies
  within a week of a band edge, so any sensible age formula agrees);
* sex;
* main department: the department of the patient's first visit;
* referral: ``referral_source == "word_of_mouth"``;
* self-pay heavy: the first visit's ``charge_self_pay`` exceeds ``charge_insured``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from crm_analysis.contract import CHANNELS, REFERRAL_SOURCES
from crm_analysis.synth.calendar import NEVER, ClinicCalendar
from crm_analysis.synth.catalog import AGE_BAND_EDGES, AGE_BANDS, DEPARTMENTS, REGIONS
from crm_analysis.synth.names import draw_emails, draw_names, draw_phones
from crm_analysis.synth.params import SynthParams
from crm_analysis.synth.returns import linear_predictor

__all__ = ["Patients", "draw_population", "department_weights", "registration_days", "WOM"]

WOM = REFERRAL_SOURCES.index("word_of_mouth")


@dataclass
class Patients:
    """Column arrays of the patients drawn so far (internal; one row per patient)."""

    sex: np.ndarray            # int8, 0 M / 1 F
    birth_day: np.ndarray      # int64 day index
    age_band: np.ndarray       # int8 code into AGE_BANDS
    main_dept: np.ndarray      # int8 code into DEPARTMENTS
    referral: np.ndarray       # int8 code into REFERRAL_SOURCES, -1 missing
    self_pay_heavy: np.ndarray  # bool
    region: np.ndarray         # int16 code into REGIONS
    reg_day: np.ndarray        # int64, day of the first visit
    is_child: np.ndarray       # bool: born to a patient during the window
    mother: np.ndarray         # int64 patient index or -1
    name: np.ndarray           # object
    surname: np.ndarray        # int16
    phone: np.ndarray          # object, None when missing
    email: np.ndarray          # object, None when missing
    kakao_user: np.ndarray     # bool
    phone_invalid: np.ndarray  # bool: every SMS/KakaoTalk message hard-bounces
    kakao_fail: np.ndarray     # float: P(KakaoTalk message not delivered) for valid numbers
    sms_soft: np.ndarray       # float: P(soft bounce) of an SMS
    email_invalid: np.ndarray  # bool
    email_soft: np.ndarray     # float
    engagement: np.ndarray     # float in (0, 1)
    consent: np.ndarray        # int8 (n, 3): 1 yes, 0 no, -1 missing; columns in CHANNELS order
    consent_day: np.ndarray    # int64 (n, 3), NEVER when none
    first_consent_day: np.ndarray  # int64 (n, 3): when consent was first given (NEVER when none)
    opt_out_day: np.ndarray    # int64 (n, 3), NEVER when none
    night_consent: np.ndarray  # bool
    eta: np.ndarray            # float: return-model linear predictor

    def __len__(self) -> int:
        return len(self.sex)

    @staticmethod
    def concat(*parts: "Patients") -> "Patients":
        """Stack patient blocks (indices of later blocks are shifted by the earlier lengths)."""
        out = {}
        for f in dataclasses.fields(Patients):
            out[f.name] = np.concatenate([getattr(p, f.name) for p in parts])
        return Patients(**out)


def department_weights(age_band: int, sex: int, params: SynthParams) -> np.ndarray:
    """Probabilities of each department as main department for an age band and sex."""
    pp = params.population
    w = np.array([pp.main_department[AGE_BANDS[age_band]].get(d, 0.0) for d in DEPARTMENTS], dtype=np.float64)
    obgyn = DEPARTMENTS.index("산부인과")
    w[obgyn] *= pp.obgyn_female_factor if sex == 1 else 0.0
    return w / w.sum()


def registration_days(n: int, cal: ClinicCalendar, growth: float, rng: np.random.Generator) -> np.ndarray:
    """First-visit days with density ∝ exp(g·t) over the window, moved to open days."""
    g = np.log1p(growth) / 365.25
    span = cal.n_days
    u = rng.random(n)
    t = np.log1p(u * np.expm1(g * span)) / g if g > 0 else u * span
    day = cal.next_open(np.floor(t).astype(np.int64))
    late = day > cal.last_day
    day[late] = cal.last_open(np.full(late.sum(), cal.last_day))
    return day


def _pick(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(np.cumsum(probs), u * probs.sum(), side="right"), len(probs) - 1)


def _birth_days(reg_day: np.ndarray, age_years: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Birth days giving `age_years` completed years at registration, a week or more from a birthday."""
    frac = 0.03 + 0.94 * rng.random(len(reg_day))
    return reg_day - np.round((age_years + frac) * 365.25).astype(np.int64)


def draw_population(n: int, cal: ClinicCalendar, params: SynthParams, rng: np.random.Generator) -> Patients:
    """Draw `n` adult-or-child patients who arrive on their own (not born in the window).

    Parameters
    ----------
    n : int
    cal : ClinicCalendar
    params : SynthParams
    rng : numpy.random.Generator

    Returns
    -------
    Patients
    """
    pp = params.population
    sex = (rng.random(n) < pp.female_share).astype(np.int8)
    band_p = np.array([pp.age_band_shares[b] for b in AGE_BANDS], dtype=np.float64)
    age_band = _pick(rng.random(n), band_p).astype(np.int8)
    lo = np.array(AGE_BAND_EDGES)[age_band]
    hi = np.array(list(AGE_BAND_EDGES[1:]) + [pp.oldest_age + 1])[age_band]
    u = rng.random(n)
    # older ages thin out: within 60+ use a decreasing density
    span = (hi - lo).astype(np.float64)
    offset = np.where(age_band == 3, span * (1 - np.sqrt(1 - u)), span * u)
    age_years = np.minimum(lo + np.floor(offset).astype(np.int64), hi - 1)
    reg_day = registration_days(n, cal, pp.annual_growth, rng)
    birth_day = _birth_days(reg_day, age_years, rng)

    main_dept = np.zeros(n, dtype=np.int8)
    ud = rng.random(n)
    for b in range(len(AGE_BANDS)):
        for s in (0, 1):
            m = (age_band == b) & (sex == s)
            main_dept[m] = _pick(ud[m], department_weights(b, s, params))
    heavy_p = np.array([pp.self_pay_heavy[d] for d in DEPARTMENTS])[main_dept]
    self_pay_heavy = rng.random(n) < heavy_p
    ref_p = np.array([pp.referral_sources[s] for s in REFERRAL_SOURCES], dtype=np.float64)
    referral = _pick(rng.random(n), ref_p).astype(np.int8)
    region_p = np.array([pp.regions[r] for r in REGIONS], dtype=np.float64)
    region = _pick(rng.random(n), region_p).astype(np.int16)

    names, surname = draw_names(sex, rng)
    phone = draw_phones(n, rng)
    phone[rng.random(n) < pp.phone_missing_share] = None
    has_email = rng.random(n) < np.array([pp.email_share[b] for b in AGE_BANDS])[age_band]
    email = np.full(n, None, dtype=object)
    email[has_email] = draw_emails(surname[has_email], rng)
    has_phone = np.array([x is not None for x in phone], dtype=bool)
    kakao_p = np.array([pp.kakao_user_share[b] for b in AGE_BANDS])[age_band]
    kakao_user = (rng.random(n) < kakao_p) & has_phone

    eta = linear_predictor(age_band, sex, main_dept, referral == WOM, self_pay_heavy, params.returns)
    pat = Patients(
        sex=sex, birth_day=birth_day, age_band=age_band, main_dept=main_dept, referral=referral,
        self_pay_heavy=self_pay_heavy, region=region, reg_day=reg_day, is_child=np.zeros(n, bool),
        mother=np.full(n, -1, np.int64), name=names.astype(object), surname=surname.astype(np.int16),
        phone=phone, email=email, kakao_user=kakao_user,
        **_contact_quality(n, has_phone, has_email, params, rng),
        **_consent(reg_day, kakao_user, has_email, has_phone, cal, params, rng),
        eta=eta,
    )
    return pat


def _contact_quality(n, has_phone, has_email, params, rng) -> dict:
    cq = params.contact

    def mix(low, high, share):
        return np.where(rng.random(n) < share, high, low)

    a, b = cq.engagement_beta
    return dict(
        phone_invalid=(rng.random(n) < cq.phone_invalid_share) & has_phone,
        kakao_fail=mix(cq.kakao_fail_low, cq.kakao_fail_high, cq.kakao_fail_high_share),
        sms_soft=mix(cq.sms_soft_low, cq.sms_soft_high, cq.sms_soft_high_share),
        email_invalid=(rng.random(n) < cq.email_invalid_share) & has_email,
        email_soft=mix(cq.email_soft_low, cq.email_soft_high, cq.email_soft_high_share),
        engagement=rng.beta(a, b, size=n),
    )


def _consent(reg_day, kakao_user, has_email, has_phone, cal: ClinicCalendar, params: SynthParams, rng) -> dict:
    cp = params.consent
    n = len(reg_day)
    last = cal.last_day
    consent = np.zeros((n, 3), dtype=np.int8)
    consent_day = np.full((n, 3), NEVER, dtype=np.int64)
    first_day = np.full((n, 3), NEVER, dtype=np.int64)
    opt_out_day = np.full((n, 3), NEVER, dtype=np.int64)
    reachable = {"kakao": kakao_user, "sms": has_phone, "email": has_email}
    share = {"kakao": cp.kakao, "sms": cp.sms, "email": cp.email}
    marketing = rng.random(n) < cp.marketing
    picks = {ch: marketing & reachable[ch] & (rng.random(n) < share[ch]) for ch in CHANNELS}
    none = marketing & ~np.any(np.column_stack(list(picks.values())), axis=1)
    picks["sms"] |= none & has_phone
    picks["email"] |= none & ~has_phone & has_email
    for j, ch in enumerate(CHANNELS):
        yes = picks[ch]
        consent[yes, j] = 1
        first_day[yes, j] = reg_day[yes]
        lo, hi = cp.reconfirm_after_days
        re_day = reg_day + lo + np.floor(rng.random(n) * (hi - lo)).astype(np.int64)
        reconf = yes & (rng.random(n) < cp.reconfirm_share) & (re_day <= last)
        consent_day[yes, j] = np.where(reconf, re_day, reg_day)[yes]
        missing = rng.random(n) < cp.missing_share
        consent[missing, j] = -1
        consent_day[missing, j] = NEVER
        first_day[missing, j] = NEVER
        out = (rng.random(n) < cp.opt_out_share) & reachable[ch]
        out_day = reg_day + np.floor(rng.random(n) * (last - reg_day + 1)).astype(np.int64)
        opt_out_day[out, j] = out_day[out]
    any_consent = (consent == 1).any(axis=1)
    night = any_consent & (rng.random(n) < cp.night)
    return dict(consent=consent, consent_day=consent_day, first_consent_day=first_day,
                opt_out_day=opt_out_day, night_consent=night)
