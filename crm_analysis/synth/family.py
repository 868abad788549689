"""Pregnancies followed by the clinic and the children born to its patients.

Pregnancies are placed on the *existing* visit paths so they never change visit
timing (and so never disturb the return model): the outcome date of a finished
pregnancy is one of the mother's visits, and her later visits from gestational
day ``prenatal_from_day`` up to the outcome become prenatal visits in 산부인과.
A delivery visit is an inpatient stay in 산부인과 (2–3 days, 5–7 after a
caesarean section). Each live birth adds a child patient: birth date = delivery
date, ``guardian_id`` = mother, same phone number, first visit 1–5 weeks later
in 소아청소년과 (vaccinations), and the child's own visits follow the same
return model (age band 0-19, main department 소아청소년과).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_analysis.contract import CHANNELS
from crm_analysis.synth.calendar import NEVER, ClinicCalendar
from crm_analysis.synth.catalog import DEPARTMENTS
from crm_analysis.synth.names import draw_names
from crm_analysis.synth.params import SynthParams
from crm_analysis.synth.population import WOM, Patients
from crm_analysis.synth.returns import linear_predictor
from crm_analysis.synth.visits import VisitPath

__all__ = ["Pregnancies", "place_pregnancies", "make_children", "OUTCOMES"]

OUTCOMES = ("delivered", "miscarriage", "stillbirth", "termination")
OBGYN = DEPARTMENTS.index("산부인과")
PEDIATRICS = DEPARTMENTS.index("소아청소년과")


@dataclass
class Pregnancies:
    """Pregnancy rows and the visit relabelling they imply (internal)."""

    mother: np.ndarray        # global patient index
    due_day: np.ndarray
    outcome: np.ndarray       # code into OUTCOMES, -1 ongoing
    outcome_day: np.ndarray   # NEVER when ongoing
    outcome_visit: np.ndarray  # index into the visit path, -1 when ongoing
    caesarean: np.ndarray     # bool
    prenatal_visits: np.ndarray  # indices into the visit path relabelled 산부인과


def _one_per_patient(pid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Index of one random element per distinct patient."""
    key = rng.random(len(pid))
    order = np.lexsort((key, pid))
    _, first = np.unique(pid[order], return_index=True)
    return order[first]


def _weighted_sample(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """`k` indices without replacement, P ∝ weight (Efraimidis–Spirakis keys)."""
    k = min(k, len(weights))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.log(rng.random(len(weights))) / weights
    return np.sort(np.argsort(-keys, kind="stable")[:k])


def place_pregnancies(pat: Patients, path: VisitPath, cal: ClinicCalendar, params: SynthParams,
                      n_births: int, rng: np.random.Generator) -> Pregnancies:
    """Choose mothers and visits for deliveries, losses and ongoing pregnancies.

    Parameters
    ----------
    pat : Patients
    path : VisitPath
        Visits of `pat` (sorted by patient and visit number).
    cal : ClinicCalendar
    params : SynthParams
    n_births : int
        Wanted number of live births (fewer if not enough candidates).
    rng : numpy.random.Generator
    """
    fp = params.family
    last = cal.last_day
    lo_age, hi_age = fp.mother_age
    pid, day = path.pid, path.day
    age = (day - pat.birth_day[pid]) / 365.25
    prev_day = np.r_[NEVER, day[:-1]]
    prev_same = np.r_[False, pid[1:] == pid[:-1]]
    woman = (pat.sex[pid] == 1) & ~pat.is_child[pid] & (age >= lo_age) & (age < hi_age) & (path.seq >= 1)
    weight_of = np.where(pat.main_dept == OBGYN, fp.obgyn_weight, 1.0)
    used = np.zeros(len(pat), dtype=bool)
    rows: list[tuple] = []

    def choose(mask: np.ndarray, k: int) -> np.ndarray:
        idx = np.flatnonzero(mask & ~used[pid])
        if idx.size == 0 or k <= 0:
            return np.zeros(0, dtype=np.int64)
        idx = idx[_one_per_patient(pid[idx], rng)]
        pick = idx[_weighted_sample(weight_of[pid[idx]], k, rng)]
        used[pid[pick]] = True
        return pick

    # live births (and stillbirths): a prenatal visit 2–36 weeks before the outcome visit
    late = woman & (day >= 120) & (day <= last - 40) & prev_same & (day - prev_day >= 14) & (day - prev_day <= 250)
    n_still = int(round(n_births * fp.stillbirth))
    for code, k in ((0, n_births), (2, n_still)):
        v = choose(late, k)
        offset = np.clip(np.round(rng.normal(-3.0, fp.due_offset_sd, v.size)), -21, 14).astype(np.int64)
        if code == 2:
            offset = -np.floor(rng.uniform(15, 112, v.size)).astype(np.int64)  # 24–38 weeks
        rows.append((v, day[v] - offset, np.full(v.size, code), day[v]))
    # early losses: outcome at a visit in weeks 7–20 (miscarriage) or 6–12 (termination)
    early = woman & (day <= last)
    for code, share, (g_lo, g_hi) in ((1, fp.miscarriage, (49, 140)), (3, fp.termination, (42, 84))):
        v = choose(early, int(round(n_births * share)))
        g = np.floor(rng.uniform(g_lo, g_hi, v.size)).astype(np.int64)
        rows.append((v, day[v] - g + 280, np.full(v.size, code), day[v]))
    # ongoing at the end: a visit in the last 200 days, due after end
    recent = woman & (day >= last - 200) & (day <= last - 30)
    v = choose(recent, int(round(n_births * fp.ongoing)))
    g_max = np.minimum(200, 279 - (last - day[v]))
    g = np.floor(56 + rng.random(v.size) * np.maximum(g_max - 56, 1)).astype(np.int64)
    rows.append((v, day[v] - g + 280, np.full(v.size, -1), np.full(v.size, NEVER)))

    visit = np.concatenate([r[0] for r in rows])
    due = np.concatenate([r[1] for r in rows]).astype(np.int64)
    outcome = np.concatenate([r[2] for r in rows]).astype(np.int64)
    outcome_day = np.concatenate([r[3] for r in rows]).astype(np.int64)
    mother = pid[visit]
    # prenatal visits: the mother's visits from gestational day `prenatal_from_day` to the outcome
    lmp = due - 280
    by_mother = np.full(len(pat), -1, dtype=np.int64)
    by_mother[mother] = np.arange(len(mother))
    j = by_mother[pid]
    has = j >= 0
    if has.any():
        jj = np.where(has, j, 0)
        end_day = np.where(outcome[jj] >= 0, outcome_day[jj], last + 1)
        prenatal = has & (path.seq >= 1) & (day >= lmp[jj] + fp.prenatal_from_day) & (day < end_day)
    else:
        prenatal = np.zeros(len(pid), dtype=bool)
    births = outcome == 0
    return Pregnancies(
        mother=mother, due_day=due, outcome=outcome, outcome_day=outcome_day,
        outcome_visit=np.where(outcome >= 0, visit, -1),
        caesarean=births & (rng.random(len(mother)) < fp.csection_share),
        prenatal_visits=np.flatnonzero(prenatal),
    )


def make_children(preg: Pregnancies, pat: Patients, cal: ClinicCalendar,
                  params: SynthParams, rng: np.random.Generator) -> Patients:
    """One child patient per live birth.

    The child shares the mother's phone (and its deliverability), region and, with
    probability ``child_referral_inherit_share``, her referral source; it has no
    email, and its marketing consents are the mother's, given (by her, as
    guardian) at the child's registration.
    """
    fp = params.family
    births = np.flatnonzero(preg.outcome == 0)
    mom = preg.mother[births]
    n = len(births)
    birth = preg.outcome_day[births]
    lo, hi = fp.child_first_visit_days
    reg = cal.next_open(birth + lo + np.floor(rng.random(n) * (hi - lo + 1)).astype(np.int64))
    over = reg > cal.last_day
    reg[over] = cal.last_open(np.full(over.sum(), cal.last_day))
    sex = (rng.random(n) < 0.5).astype(np.int8)
    names, surname = draw_names(sex, rng)
    referral = np.where(rng.random(n) < fp.child_referral_inherit_share, pat.referral[mom], -1).astype(np.int8)
    age_band = np.zeros(n, dtype=np.int8)
    main = np.full(n, PEDIATRICS, dtype=np.int8)
    heavy = np.zeros(n, dtype=bool)
    eta = linear_predictor(age_band, sex, main, referral == WOM, heavy, params.returns)
    consent = pat.consent[mom].copy()
    consent[:, CHANNELS.index("email")] = 0  # children have no email address
    return Patients(
        sex=sex, birth_day=birth.astype(np.int64), age_band=age_band, main_dept=main, referral=referral,
        self_pay_heavy=heavy, region=pat.region[mom], reg_day=reg.astype(np.int64), is_child=np.ones(n, bool),
        mother=mom.astype(np.int64), name=names.astype(object), surname=surname.astype(np.int16),
        phone=pat.phone[mom], email=np.full(n, None, dtype=object), kakao_user=pat.kakao_user[mom],
        phone_invalid=pat.phone_invalid[mom], kakao_fail=pat.kakao_fail[mom], sms_soft=pat.sms_soft[mom],
        email_invalid=np.zeros(n, bool), email_soft=np.zeros(n), engagement=pat.engagement[mom],
        consent=consent, consent_day=np.where(consent == 1, reg[:, None], NEVER),
        first_consent_day=np.where(consent == 1, reg[:, None], NEVER),
        opt_out_day=np.full((n, 3), NEVER, np.int64), night_consent=np.zeros(n, bool), eta=eta,
    )
