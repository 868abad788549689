"""Appointments: attended bookings for visits plus missed attempts before them.

Visit days are fixed by the return model. Appointments are laid over them so
that *both* models hold exactly:

* Every visit is an attended appointment (or a walk-in, probability w).
* Missed attempts (no-show, cancelled, rescheduled) form a point process in the
  return model's own time scale with intensity ``h(s | x)·(1 − w)·ψ(z)·m/(1 − m)``
  where h is the visit hazard, ψ the law of the appointment marks z and m the
  miss probability (:mod:`crm_analysis.synth.noshow`). It is simulated by
  thinning: candidates at rate ``K·(1 − w)·h`` with natural marks, each kept
  with probability ``m(z, H) / (E_t[1 − m] · K)``. The attended appointment's
  reminder marks are drawn from their natural law tilted by (1 − m).

Together this is exactly the forward process "book attempts at rate
h/E_t[1 − m]; each attempt is cancelled with probability c, else a no-show with
probability p, else attended" with the reminder pilot truly randomised and
deliveries truly independent of risk. The no-show logit is therefore correctly
specified over all non-cancelled appointments, with H = the patient's earlier
no-shows (by scheduled time), and the visit process is untouched.

Before a first visit the attempt process runs over a booking window of
Exp(mean ``first_booking_window``) open days (success rate 1/mean); for a visit
brought forward by a campaign it runs over the open days of the response
window (uniform response time). Appointments exist only on open days: a visit on a Sunday or
holiday is a walk-in, and attempts falling on closed days, before ``start``,
before the patient's birth or booked after ``end`` are dropped (selection on dates only, so the outcome model is
unaffected). Several attempts on one day get distinct, ordered slots, the
attended one last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_analysis.contract import CHANNELS
from crm_analysis.synth.calendar import NEVER, ClinicCalendar
from crm_analysis.synth.campaigns import campaign_events
from crm_analysis.synth.charges import VisitDetails, draw_visit_kind
from crm_analysis.synth.family import OBGYN, Pregnancies
from crm_analysis.synth.noshow import NoShowModel, expit
from crm_analysis.synth.params import SynthParams
from crm_analysis.synth.population import Patients
from crm_analysis.synth.returns import cumulative_hazard, inverse_cumulative_hazard
from crm_analysis.synth.visits import VisitPath

__all__ = ["Appointments", "simulate_appointments", "STATUSES"]

STATUSES = ("attended", "no_show", "cancelled", "rescheduled", "booked")
ATTENDED, NO_SHOW, CANCELLED, RESCHEDULED, BOOKED = range(5)
_CHUNK = 2_000_000


@dataclass
class Appointments:
    """Column arrays of all appointments (internal, unsorted)."""

    pid: np.ndarray
    day: np.ndarray
    minute: np.ndarray
    booked_day: np.ndarray
    booked_minute: np.ndarray
    dept: np.ndarray
    status: np.ndarray
    cancel_day: np.ndarray     # NEVER when not cancelled (also kept for rescheduled, not exported)
    cancel_minute: np.ndarray
    lead: np.ndarray
    prior: np.ndarray          # min(H, cap)
    eta0: np.ndarray           # logit without reminder terms
    sent: np.ndarray           # steps sent (mask) after pilot randomisation
    programme: np.ndarray      # steps the programme would send (pilot: {1d})
    pilot: np.ndarray          # in the randomised pilot (eligible, pilot month)
    arm: np.ndarray            # pilot treatment arm
    delivered: np.ndarray      # mask of steps delivered
    kakao_ok: np.ndarray
    sms_ok: np.ndarray
    p_kakao: np.ndarray
    p_sms: np.ndarray
    attended_visit: np.ndarray  # bool: the appointment of a visit (or a future visit)

    def __len__(self) -> int:
        return len(self.pid)


# --------------------------------------------------------------------- marks
def _lead_return(n: int, cap: np.ndarray, params: SynthParams, rng: np.random.Generator) -> np.ndarray:
    p0, p1, p26 = params.noshow.lead_return
    u = rng.random(n)
    weeks = np.searchsorted(np.cumsum([0.30, 0.25, 0.15, 0.15, 0.10, 0.05]), rng.random(n), side="right") + 1
    follow = np.clip(weeks * 7 + rng.integers(-2, 3, n), 2, params.noshow.max_lead_days)
    short = rng.integers(2, 7, n)
    lead = np.where(u < p0, 0, np.where(u < p0 + p1, 1, np.where(u < p0 + p1 + p26, short, follow)))
    return np.minimum(lead, cap)


def _lead_first(n: int, rng: np.random.Generator, params: SynthParams) -> np.ndarray:
    p0, p1 = params.noshow.lead_first
    u = rng.random(n)
    return np.where(u < p0, 0, np.where(u < p0 + p1, 1, rng.integers(2, 15, n)))


def _booking_time(day, minute, lead, rng) -> tuple[np.ndarray, np.ndarray]:
    n = len(day)
    same = lead == 0
    bm = np.where(same, minute - 10 * rng.integers(1, 19, n), 8 * 60 + np.floor(rng.random(n) * 780))
    return (day - lead).astype(np.int64), bm.astype(np.int64)


def _channels(pid, day, pat: Patients, has_phone_all: np.ndarray):
    kakao, sms = CHANNELS.index("kakao"), CHANNELS.index("sms")
    has_phone = has_phone_all[pid]
    kakao_ok = pat.kakao_user[pid] & (pat.opt_out_day[pid, kakao] > day)
    sms_ok = has_phone & (pat.opt_out_day[pid, sms] > day)
    valid = ~pat.phone_invalid[pid]
    p_k = np.where(kakao_ok & valid, 1.0 - pat.kakao_fail[pid], 0.0)
    p_s = np.where(sms_ok & valid, 1.0 - pat.sms_soft[pid], 0.0)
    return kakao_ok, sms_ok, p_k, p_s


def _prenatal_dept(pid, day, dept, preg: Pregnancies, params: SynthParams, n_patients: int) -> np.ndarray:
    by_mother = np.full(n_patients, -1, dtype=np.int64)
    by_mother[preg.mother] = np.arange(len(preg.mother))
    j = by_mother[pid]
    has = j >= 0
    if not has.any():
        return np.asarray(dept, dtype=np.int8)
    jj = np.where(has, j, 0)
    lmp = preg.due_day[jj] - 280
    stop = np.where(preg.outcome[jj] >= 0, preg.outcome_day[jj], NEVER)
    inside = has & (day >= lmp + params.family.prenatal_from_day) & (day < stop)
    return np.where(inside, OBGYN, dept).astype(np.int8)


class _Builder:
    """Shared state for drawing appointment marks."""

    def __init__(self, pat, preg, cal, params, model, rng):
        self.pat, self.preg, self.cal, self.params, self.model, self.rng = pat, preg, cal, params, model, rng
        self.has_phone = np.array([x is not None for x in pat.phone], dtype=bool)
        ev = campaign_events(params, cal)
        self.event_day = np.r_[ev["day"], 0]
        self.event_open = np.r_[ev["open"], 1].astype(np.float64)

    def marks(self, pid, day, lead, dept):
        """Appointment marks as compact column arrays."""
        rng = self.rng
        minute = self.cal.random_slot(day, rng)
        booked_day, booked_minute = _booking_time(day, minute, lead, rng)
        prog, pilot = self.model.sent_steps(day, lead)
        kakao_ok, sms_ok, p_k, p_s = _channels(pid, day, self.pat, self.has_phone)
        p_k, p_s = p_k.astype(np.float32), p_s.astype(np.float32)
        delta = (1.0 - (1.0 - p_k.astype(np.float64)) * (1.0 - p_s)).astype(np.float32)
        base = self.model.base_eta(day, lead, dept)
        return dict(pid=pid.astype(np.int32), day=day.astype(np.int32), minute=minute.astype(np.int16),
                    booked_day=booked_day.astype(np.int32), booked_minute=booked_minute.astype(np.int16),
                    dept=dept.astype(np.int8), lead=lead.astype(np.int16), programme=prog.astype(np.int8),
                    pilot=pilot, delta=delta, kakao_ok=kakao_ok, sms_ok=sms_ok, p_kakao=p_k, p_sms=p_s, base=base)


# ---------------------------------------------------------------- successes
def _successes(path: VisitPath, det: VisitDetails, b: _Builder) -> dict:
    pat, cal, params, rng = b.pat, b.cal, b.params, b.rng
    last = cal.last_day
    # the first visit after `end` can already be booked
    is_last = np.r_[path.pid[1:] != path.pid[:-1], True] if len(path) else np.zeros(0, bool)
    fut = is_last & (path.next_day > last) & (path.next_day <= last + params.noshow.future_horizon)
    pid = np.r_[path.pid, path.pid[fut]]
    day = np.r_[path.day, path.next_day[fut]]
    fdept, _ = draw_visit_kind(path.pid[fut], path.next_day[fut], np.zeros(fut.sum(), bool), pat, params, rng)
    fdept = _prenatal_dept(path.pid[fut], path.next_day[fut], fdept, b.preg, params, len(pat))
    dept = np.r_[det.dept, fdept].astype(np.int8)
    first = np.r_[path.seq == 0, np.zeros(fut.sum(), bool)]
    ind_ev = np.r_[np.r_[-1, path.induced_event[:-1]], path.induced_event[fut]]
    ind_ev = np.where(first, -1, ind_ev)
    walk = rng.random(len(pid)) < np.where(first, params.noshow.walk_in_first, params.noshow.walk_in_return)
    walk |= ~cal.is_open(day)  # closed days: walk-ins only (휴일 진료)
    outcome_visit = np.zeros(len(pid), dtype=bool)
    outcome_visit[b.preg.outcome_visit[b.preg.outcome_visit >= 0]] = True
    walk |= outcome_visit  # deliveries and pregnancy losses come unannounced
    keep = ~walk
    pid, day, dept, first, ind_ev = pid[keep], day[keep], dept[keep], first[keep], ind_ev[keep]
    camp_day = np.where(ind_ev >= 0, b.event_day[np.maximum(ind_ev, 0)], -NEVER)
    cap = day - np.maximum(pat.reg_day[pid], camp_day)  # booked after the first visit (and the campaign)
    lead = np.where(first, _lead_first(len(pid), rng, params), _lead_return(len(pid), cap, params, rng))
    out = b.marks(pid, day, lead, dept)
    ok = out["booked_day"] <= last
    return {k: v[ok] for k, v in out.items()}


# ---------------------------------------------------------------- candidates
def _segments(path: VisitPath, b: _Builder, k_bound: float) -> list[dict]:
    """Latent-time segments over which missed attempts can happen."""
    pat, cal, params, rng = b.pat, b.cal, b.params, b.rng
    np_ = params.noshow
    rp = params.returns
    horizon = cal.last_day + np_.future_horizon
    eta = pat.eta[path.pid]
    induced = path.induced_event >= 0
    c = np.where(induced, b.event_day[np.maximum(path.induced_event, 0)], 0)
    s_end = np.where(induced, c - path.day, path.latent)
    s_end = np.minimum(s_end, horizon - path.day)
    lam = cumulative_hazard(s_end, eta, rp)
    regular = dict(pid=path.pid, start=path.day, cap_from=pat.reg_day[path.pid], lam=lam, kind=0, eta=eta,
                   stop=np.where(induced, path.next_day, np.minimum(path.next_day, NEVER)),
                   rate=k_bound * (1 - np_.walk_in_return))
    wi = b.event_open[path.induced_event[induced]]
    lat = path.induced_latent[induced]
    resp = dict(pid=path.pid[induced], start=c[induced], cap_from=c[induced], lam=-np.log1p(-lat / wi), kind=1,
                window=wi, stop=path.next_day[induced], rate=k_bound * (1 - np_.walk_in_return))
    first = path.seq == 0
    e = rng.exponential(np_.first_booking_window, first.sum())  # in open days
    pre = dict(pid=path.pid[first], start=path.day[first], cap_from=np.full(first.sum(), -NEVER),
               lam=e / np_.first_booking_window, kind=2, length=e, stop=path.day[first],
               rate=k_bound * (1 - np_.walk_in_first))
    return [regular, resp, pre]


def _draw_candidates(seg: dict, sl: slice, b: _Builder) -> dict:
    cal, params, rng = b.cal, b.params, b.rng
    lam = seg["lam"][sl]
    count = rng.poisson(seg["rate"] * lam)
    idx = np.repeat(np.arange(len(lam)), count)
    u = rng.random(idx.size)
    start = seg["start"][sl][idx]
    if seg["kind"] == 0:
        s = inverse_cumulative_hazard(u * lam[idx], seg["eta"][sl][idx], params.returns)
        day = start + np.maximum(1, np.ceil(s)).astype(np.int64)
    elif seg["kind"] == 1:  # response window, in open days after the send day
        win = seg["window"][sl][idx]
        r = win * (1.0 - np.exp(-u * lam[idx]))
        day = cal.nth_open_after(start, np.maximum(1, np.ceil(r)).astype(np.int64))
    else:  # booking window before a first visit, in open days
        length = seg["length"][sl][idx]
        day = cal.nth_open_before(start, np.maximum(1, np.ceil(length * (1.0 - u))).astype(np.int64))
    pid = seg["pid"][sl][idx]
    stop = seg["stop"][sl][idx]
    keep = (day <= stop) & (day >= 0) & (day <= cal.last_day + params.noshow.future_horizon)
    keep &= cal.is_open(day)  # no appointments on closed days
    keep &= day > b.pat.birth_day[pid]
    pid, day = pid[keep], day[keep]
    cap_from = seg["cap_from"][sl][idx][keep]
    if seg["kind"] == 2:  # before a first visit: like the first visit itself
        lead = _lead_first(pid.size, rng, params)
        dept = b.pat.main_dept[pid].astype(np.int8)
    else:
        lead = _lead_return(pid.size, day - cap_from, params, rng)
        dept, _ = draw_visit_kind(pid, day, np.zeros(pid.size, bool), b.pat, params, rng)
        dept = _prenatal_dept(pid, day, dept, b.preg, params, len(b.pat))
    out = b.marks(pid, day, lead, dept)
    ok = out["booked_day"] <= cal.last_day
    return {k: v[ok] for k, v in out.items()}


def _thin(cand: dict, b: _Builder, k_bound: float) -> dict:
    """Acceptance (as a miss) and no-show bits for each possible prior count H."""
    model, rng = b.model, b.rng
    n = len(cand["pid"])
    arm, got = model.draw_natural(cand["programme"], cand["delta"], cand["pilot"], rng)
    u1, u2 = rng.random(n), rng.random(n)
    acc_bits = np.zeros(n, dtype=np.int8)
    ns_bits = np.zeros(n, dtype=np.int8)
    law = model.delivery_law(cand["programme"], cand["delta"])
    for h in range(b.params.noshow.prior_cap + 1):
        eta0 = cand["base"] + model.prior_term(h)
        m = model.miss(eta0 + model.gamma[got], got)
        e = model.expected_attend(eta0, cand["programme"], cand["delta"], cand["pilot"], law)
        acc = m / (e * k_bound)
        if np.any(acc > 1.0 + 1e-9):
            raise AssertionError("thinning bound K too small")
        c = model.cancel[got]
        ns = (1.0 - c) * expit(eta0 + model.gamma[got]) / m
        a = u1 < acc
        acc_bits |= (a.astype(np.int8) << h).astype(np.int8)
        ns_bits |= ((a & (u2 < ns)).astype(np.int8) << h).astype(np.int8)
    cand.update(arm=arm, delivered=got.astype(np.int8), acc_bits=acc_bits, ns_bits=ns_bits)
    keep = acc_bits > 0
    return {k: v[keep] for k, v in cand.items()}


def _resolve(cand: dict, cap: int) -> np.ndarray:
    """Prior no-show count H of each candidate, resolving the sequence per patient."""
    pid = cand["pid"]
    n = len(pid)
    idx = np.arange(n)
    prev = np.full(int(pid.max()) + 1 if n else 1, -1, dtype=np.int64)
    level_pos = []
    for h in range(cap):
        sel = idx[((cand["ns_bits"] >> h) & 1).astype(bool) & (idx > prev[pid])]
        upid, first = np.unique(pid[sel], return_index=True)
        pos = np.full_like(prev, NEVER)
        pos[upid] = sel[first]
        level_pos.append(pos)
        prev = np.where(pos < NEVER, pos, NEVER)
    h_of = np.zeros(n, dtype=np.int64)
    for pos in level_pos:
        h_of += pos[pid] < idx
    return h_of


def _spread_same_day(cand: dict, succ: dict, cal: ClinicCalendar, rng: np.random.Generator) -> None:
    """Distinct, ordered time slots when a patient has several appointments on one day.

    Time of day is not in the outcome model, so it is a free mark: the attempts of
    a day get stratified slots in a random order and the attended appointment (if
    any) the last one, matching the order of the underlying attempt process.
    """
    nc = len(cand["pid"])
    pid = np.r_[cand["pid"], succ["pid"]]
    day = np.r_[cand["day"], succ["day"]]
    is_s = np.r_[np.zeros(nc, np.int64), np.ones(len(succ["pid"]), np.int64)]
    o = np.lexsort((rng.random(len(pid)), is_s, day, pid))
    ps, ds = pid[o], day[o]
    new = np.r_[True, (ps[1:] != ps[:-1]) | (ds[1:] != ds[:-1])]
    start = np.flatnonzero(new)
    size = np.diff(np.r_[start, len(o)])
    g_size = np.repeat(size, size)
    rank = np.arange(len(o)) - np.repeat(start, size)
    multi = g_size > 1
    idx = o[multi]
    minute = cal.slot_at(ds[multi], (rank[multi] + rng.random(multi.sum())) / g_size[multi])
    for d, sel, off in ((cand, idx < nc, 0), (succ, idx >= nc, nc)):
        i = idx[sel] - off
        d["minute"][i] = minute[sel]
        same = d["lead"][i] == 0
        d["booked_minute"][i] = np.where(same, d["minute"][i] - 10 * rng.integers(1, 19, i.size), d["booked_minute"][i])


def simulate_appointments(path: VisitPath, det: VisitDetails, pat: Patients, preg: Pregnancies,
                          cal: ClinicCalendar, params: SynthParams, rng: np.random.Generator) -> Appointments:
    """Every appointment of every patient, with outcome and reminder marks.

    Parameters
    ----------
    path : VisitPath
    det : VisitDetails
    pat : Patients
    preg : Pregnancies
    cal : ClinicCalendar
    params : SynthParams
    rng : numpy.random.Generator
    """
    model = NoShowModel(params.noshow, params.reminders, cal)
    b = _Builder(pat, preg, cal, params, model, rng)
    cap = params.noshow.prior_cap
    k_bound = model.max_odds(cal.last_day + params.noshow.future_horizon, 0)
    succ = _successes(path, det, b)
    parts = []
    for seg in _segments(path, b, k_bound):
        n = len(seg["pid"])
        for lo in range(0, n, _CHUNK):
            parts.append(_thin(_draw_candidates(seg, slice(lo, lo + _CHUNK), b), b, k_bound))
    cand = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    _spread_same_day(cand, succ, cal, rng)
    order = np.lexsort((cand["minute"], cand["day"], cand["pid"]))
    cand = {k: v[order] for k, v in cand.items()}
    h = _resolve(cand, cap)
    accepted = ((cand["acc_bits"] >> h) & 1).astype(bool)
    noshow = ((cand["ns_bits"] >> h) & 1).astype(bool)
    cand = {k: v[accepted] for k, v in cand.items()}
    h, noshow = h[accepted], noshow[accepted]

    # prior no-shows of attended appointments: no-shows scheduled before them
    t_c = cand["day"].astype(np.int64) * 1440 + cand["minute"]
    t_s = succ["day"].astype(np.int64) * 1440 + succ["minute"]
    allp = np.r_[cand["pid"], succ["pid"]]
    allt = np.r_[t_c, t_s]
    is_ns = np.r_[noshow, np.zeros(len(t_s), bool)].astype(np.int64)
    o = np.lexsort((allt, allp))
    cum = np.cumsum(is_ns[o]) - is_ns[o]
    starts = np.r_[0, np.flatnonzero(allp[o][1:] != allp[o][:-1]) + 1]
    base_cum = np.repeat(cum[starts], np.diff(np.r_[starts, len(o)]))
    before = np.empty(len(o), dtype=np.int64)
    before[o] = cum - base_cum
    h_s = np.minimum(before[len(t_c):], cap)
    eta0_s = succ["base"] + model.prior_term(h_s)
    arm_s, got_s = model.draw_tilted(eta0_s, succ["programme"], succ["delta"], succ["pilot"], rng)

    # outcomes of missed attempts
    last = cal.last_day
    nc = len(cand["pid"])
    resched = rng.random(nc) < params.noshow.rescheduled_share
    t_book = cand["booked_day"].astype(np.int64) * 1440 + cand["booked_minute"]
    t_cancel = t_book + np.floor(rng.random(nc) * np.maximum(t_c - t_book, 1)).astype(np.int64)
    cancelled = ~noshow
    status_c = np.where(noshow, NO_SHOW, np.where(resched, RESCHEDULED, CANCELLED))
    future = cand["day"] > last
    status_c = np.where(future & (~cancelled | (t_cancel >= (last + 1) * 1440)), BOOKED, status_c)
    shown_cancel = np.isin(status_c, (CANCELLED, RESCHEDULED))
    status_s = np.where(succ["day"] > last, BOOKED, ATTENDED)

    def cat(key):
        return np.r_[succ[key], cand[key]]

    sent_s = np.where(succ["pilot"] & ~arm_s, 0, succ["programme"])
    sent_c = np.where(cand["pilot"] & ~cand["arm"], 0, cand["programme"])
    return Appointments(
        pid=cat("pid"), day=cat("day"), minute=cat("minute"), booked_day=cat("booked_day"),
        booked_minute=cat("booked_minute"), dept=cat("dept"), status=np.r_[status_s, status_c].astype(np.int8),
        cancel_day=np.r_[np.full(len(t_s), NEVER), np.where(shown_cancel, t_cancel // 1440, NEVER)],
        cancel_minute=np.r_[np.full(len(t_s), -1), np.where(shown_cancel, t_cancel % 1440, -1)].astype(np.int16),
        lead=cat("lead"), prior=np.r_[h_s, np.minimum(h, cap)].astype(np.int8),
        eta0=np.r_[eta0_s, cand["base"] + model.prior_term(h)],
        sent=np.r_[sent_s, sent_c].astype(np.int8), programme=cat("programme"), pilot=cat("pilot"),
        arm=np.r_[arm_s, cand["arm"]], delivered=np.r_[got_s, cand["delivered"]].astype(np.int8),
        kakao_ok=cat("kakao_ok"), sms_ok=cat("sms_ok"), p_kakao=cat("p_kakao"), p_sms=cat("p_sms"),
        attended_visit=np.r_[np.ones(len(t_s), bool), np.zeros(nc, bool)],
    )
