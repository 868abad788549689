"""Referral chains and end-of-window record status.

Referrals: every patient who is not a child born in the window has a referral
propensity w = 1 + Lomax(alpha), capped at ``referrer_max_weight``, so a few patients refer many others.
A word-of-mouth patient's referrer is drawn among the patients whose first
visit was *strictly earlier*, with probability ∝ w; it is recorded in
``referred_by`` with probability ``referrer_recorded_share``.

Status: a patient not seen for ``deceased_min_lapse_days`` is recorded as
deceased with probability ``deceased_60plus`` (60+ at ``end``) or
``deceased_other``; one not seen for ``moved_min_lapse_days`` as moved with
probability ``moved``; patients with a future booking and guardians stay active. Status has
no dates and changes nothing else in the data.
"""

from __future__ import annotations

import numpy as np

from crm_analysis.synth.calendar import ClinicCalendar
from crm_analysis.synth.params import SynthParams
from crm_analysis.synth.population import WOM, Patients

__all__ = ["assign_referrers", "assign_status", "STATUSES"]

STATUSES = ("active", "deceased", "moved")


def assign_referrers(pat: Patients, params: SynthParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Referrer index of each patient (-1 when none or not recorded) and each patient's propensity."""
    pp = params.population
    n = len(pat)
    weight = np.minimum(rng.pareto(pp.referrer_pareto_alpha, n) + 1.0, pp.referrer_max_weight)
    weight[pat.is_child] = 0.0
    order = np.lexsort((np.arange(n), pat.reg_day))
    order = order[~pat.is_child[order]]
    reg_sorted = pat.reg_day[order]
    cum = np.cumsum(weight[order])
    out = np.full(n, -1, dtype=np.int64)
    who = np.flatnonzero((pat.referral == WOM) & ~pat.is_child & (rng.random(n) < pp.referrer_recorded_share))
    n_before = np.searchsorted(reg_sorted, pat.reg_day[who], side="left")
    has = n_before > 0
    who, n_before = who[has], n_before[has]
    target = rng.random(who.size) * cum[n_before - 1]
    pos = np.minimum(np.searchsorted(cum, target, side="right"), n_before - 1)
    out[who] = order[pos]
    return out, weight


def assign_status(pat: Patients, last_visit: np.ndarray, keep_active: np.ndarray, cal: ClinicCalendar,
                  params: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """record_status code per patient (index into :data:`STATUSES`).

    `keep_active` marks patients who must stay active (a future booking, a child's guardian).
    """
    sp = params.status
    n = len(pat)
    lapse = cal.last_day - last_visit
    age_end = (cal.last_day - pat.birth_day) / 365.25
    base = ~pat.is_child & ~keep_active
    p_dead = np.where(age_end >= 60, sp.deceased_60plus, sp.deceased_other)
    dead = base & (lapse >= sp.deceased_min_lapse_days) & (rng.random(n) < p_dead)
    moved = base & ~dead & (lapse >= sp.moved_min_lapse_days) & (rng.random(n) < sp.moved)
    status = np.zeros(n, dtype=np.int8)
    status[dead] = 1
    status[moved] = 2
    return status
