"""What happened at each visit: department, visit type, length of stay, charges.

Department: the first visit is in the patient's main department; later visits
stay there with probability ``main_department_share``, otherwise any
department suited to the patient's age and sex. Prenatal and delivery visits
are in 산부인과 (:mod:`crm_analysis.synth.family`).

Spend (Gamma-Gamma): each patient has a spend rate ν_i ~ Gamma(q, rate γ);
each visit's multiplier z ~ Gamma(p, rate ν_i), so E[z | ν_i] = p/ν_i. The
visit's total charge is ``base × z`` (outpatient: department base; check-up:
``checkup_base``; inpatient: ``inpatient_per_diem × days``), floored at 1,000
KRW and split into insured (급여) and self-pay (비급여) parts by a self-pay
share s: 0 for a visit without self-pay items (probability 1 − ``self_pay_any``
of the department, or 1 − ``self_pay_any_heavy``), else Beta with mean
``self_pay_mean`` of the department (at least ``self_pay_mean_heavy`` for a
self-pay-heavy patient) and concentration ``share_concentration``; check-ups:
P(any) 0.5, mean 0.5; inpatient stays: P(any) 0.6, mean 2/7. Amounts are
rounded to 10 KRW.
The first visit of a self-pay-heavy patient has s in [0.55, 1]; every other
patient's first visit has s ≤ 0.45, so the flag can be read off the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_analysis.synth.catalog import DEPARTMENTS
from crm_analysis.synth.family import OBGYN, Pregnancies
from crm_analysis.synth.params import SynthParams
from crm_analysis.synth.population import Patients, department_weights
from crm_analysis.synth.visits import VisitPath

__all__ = ["VisitDetails", "draw_visit_details", "draw_visit_kind", "draw_departments", "VISIT_TYPES"]

VISIT_TYPES = ("outpatient", "inpatient", "checkup")
OUTPATIENT, INPATIENT, CHECKUP = 0, 1, 2


@dataclass
class VisitDetails:
    """Per-visit attributes aligned with a :class:`VisitPath` (internal)."""

    dept: np.ndarray
    vtype: np.ndarray
    inpatient_days: np.ndarray
    charge_insured: np.ndarray
    charge_self_pay: np.ndarray
    spend_rate: np.ndarray  # per patient: ν_i


def draw_departments(pid: np.ndarray, pat: Patients, params: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """Department of a non-first visit (or appointment) for each patient index in `pid`."""
    n = len(pid)
    main = pat.main_dept[pid]
    stay = rng.random(n) < params.visits.main_department_share
    other = np.empty(n, dtype=np.int8)
    u = rng.random(n)
    band, sex = pat.age_band[pid], pat.sex[pid]
    for b in range(4):
        for s in (0, 1):
            m = (band == b) & (sex == s)
            if m.any():
                cdf = np.cumsum(department_weights(b, s, params))
                other[m] = np.minimum(np.searchsorted(cdf, u[m], side="right"), len(cdf) - 1)
    return np.where(stay, main, other).astype(np.int8)


def draw_visit_kind(pid: np.ndarray, day: np.ndarray, first: np.ndarray, pat: Patients, params: SynthParams,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Department and check-up flag of visits (or appointments) before any pregnancy relabelling.

    A first visit is in the main department; an adult's later visit is a check-up
    (in one of ``checkup_departments``) with probability ``checkup_share``.
    Appointments use the same law, so attended and missed ones are comparable.
    """
    vp = params.visits
    n = len(pid)
    dept = draw_departments(pid, pat, params, rng)
    dept[first] = pat.main_dept[pid[first]]
    adult = (day - pat.birth_day[pid]) >= 20 * 365.25
    checkup = ~first & adult & (rng.random(n) < vp.checkup_share)
    cdepts = np.array([DEPARTMENTS.index(d) for d in vp.checkup_departments])
    dept[checkup] = cdepts[np.floor(rng.random(checkup.sum()) * len(cdepts)).astype(np.int64)]
    return dept, checkup


def draw_visit_details(path: VisitPath, pat: Patients, preg: Pregnancies, params: SynthParams,
                       rng: np.random.Generator) -> VisitDetails:
    """Department, type, stay and charges of every visit in `path`."""
    vp, sp = params.visits, params.spend
    n = len(path)
    pid = path.pid
    first = path.seq == 0
    dept, checkup = draw_visit_kind(pid, path.day, first, pat, params, rng)
    vtype = np.zeros(n, dtype=np.int8)
    vtype[checkup] = CHECKUP
    inp_p = np.array([vp.inpatient_share[d] for d in DEPARTMENTS])[dept]
    inpatient = ~first & ~checkup & (rng.random(n) < inp_p)
    vtype[inpatient] = INPATIENT
    days = np.zeros(n, dtype=np.int64)
    days[inpatient] = np.minimum(rng.geometric(1.0 / vp.inpatient_mean_days, inpatient.sum()), vp.inpatient_max_days)

    # pregnancy: prenatal visits and outcome visits in 산부인과
    pre = preg.prenatal_visits
    dept[pre] = OBGYN
    vtype[pre] = OUTPATIENT
    days[pre] = 0
    ov = preg.outcome_visit
    has = ov >= 0
    dept[ov[has]] = OBGYN
    stay = np.isin(preg.outcome[has], (0, 2))  # delivered or stillbirth: an inpatient stay
    los = np.where(preg.caesarean[has], rng.integers(5, 8, has.sum()), rng.integers(2, 4, has.sum()))
    vtype[ov[has]] = np.where(stay, INPATIENT, OUTPATIENT)
    days[ov[has]] = np.where(stay, los, 0)
    # a stay never runs past the next visit
    gap = np.maximum(1, np.minimum(path.next_day - path.day, 10_000))
    days = np.where(vtype == INPATIENT, np.maximum(1, np.minimum(days, gap)), 0)

    # Gamma-Gamma spend
    nu = rng.gamma(sp.gg_q, 1.0 / sp.gg_gamma, len(pat))
    z = rng.gamma(sp.gg_p, 1.0, n) / nu[pid]
    base = np.array([sp.outpatient_base[d] for d in DEPARTMENTS], dtype=np.float64)[dept]
    base = np.where(vtype == CHECKUP, sp.checkup_base, base)
    base = np.where(vtype == INPATIENT, sp.inpatient_per_diem * days, base)
    total = np.maximum(base * z, 1000.0)

    heavy = pat.self_pay_heavy[pid]
    any_p = np.where(heavy, sp.self_pay_any_heavy, np.array([sp.self_pay_any[d] for d in DEPARTMENTS])[dept])
    any_p = np.where(vtype == CHECKUP, 0.5, np.where(vtype == INPATIENT, 0.6, any_p))
    has_sp = rng.random(n) < any_p
    mean = np.array([sp.self_pay_mean[d] for d in DEPARTMENTS])[dept]
    mean = np.where(heavy, np.maximum(mean, sp.self_pay_mean_heavy), mean)
    mean = np.where(vtype == CHECKUP, 0.5, np.where(vtype == INPATIENT, 2.0 / 7.0, mean))
    k = sp.share_concentration
    share = np.where(has_sp, rng.beta(mean * k, (1.0 - mean) * k), 0.0)
    # first visits make the self-pay-heavy flag observable
    fb = rng.beta(2.0, 2.0, n)
    share = np.where(first & heavy, 0.55 + 0.45 * fb, share)
    share = np.where(first & ~heavy, np.where(has_sp, 0.45 * fb, 0.0), share)
    r = sp.round_to
    self_pay = np.round(total * share / r) * r
    insured = np.round(total * (1.0 - share) / r) * r
    return VisitDetails(dept=dept, vtype=vtype, inpatient_days=days, charge_insured=insured,
                        charge_self_pay=self_pay, spend_rate=nu)
