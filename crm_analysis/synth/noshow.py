"""The appointment outcome model: no-show logit, cancellations, reminder effects.

For an appointment with lead time ℓ (calendar days from booking to the
appointment), the patient's earlier no-shows H, scheduled day d, department j
and the set D of reminder steps actually delivered:

    logit p = b0 + b_lead·log1p(ℓ) + b_prior·min(H, cap) + month[d] + b_trend·years(d) + dept[j]
              + Σ_{s ∈ D} γ_s

The appointment is first cancelled (or rescheduled) with probability
c(D) = c0 + bump·[D ≠ ∅]; otherwise it is a no-show with probability p and
attended with probability 1 − p. So among non-cancelled appointments the
no-show logit above holds exactly. ``m = c + (1 − c)·p`` is the probability
that an attempt does not end in a visit.

The reminder marks t of an appointment are the pilot arm (pilot month only)
and D. Given the steps S that are sent and the per-step delivery probability
δ, D includes each step of S independently with probability δ.
"""

from __future__ import annotations

import numpy as np

from crm_analysis.synth.calendar import ClinicCalendar
from crm_analysis.synth.catalog import DEPARTMENTS, SCHEDULES
from crm_analysis.synth.params import NoShowParams, ReminderParams

__all__ = ["NoShowModel", "popcount", "expit"]

_POP = np.array([bin(i).count("1") for i in range(8)])


def popcount(mask: np.ndarray) -> np.ndarray:
    """Number of schedule steps in a 3-bit mask."""
    return _POP[np.asarray(mask, dtype=np.int64) & 7]


def expit(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


class NoShowModel:
    """Vectorised evaluation of the outcome model.

    Parameters
    ----------
    npar : NoShowParams
    rpar : ReminderParams
    cal : ClinicCalendar
    """

    def __init__(self, npar: NoShowParams, rpar: ReminderParams, cal: ClinicCalendar):
        self.np_ = npar
        self.rp = rpar
        self.cal = cal
        self.month = np.array([0.0] + [npar.month[f"{m:02d}"] for m in range(1, 13)])
        self.dept = np.array([npar.department.get(d, 0.0) for d in DEPARTMENTS])
        gam = np.array([npar.reminder.get(s, 0.0) for s in SCHEDULES])
        self.gamma = np.array([sum(gam[b] for b in range(3) if mask >> b & 1) for mask in range(8)])
        self.cancel = np.array([npar.cancel_base] + [npar.cancel_base + npar.cancel_reminder_bump] * 7)
        y, m = (int(x) for x in rpar.pilot_month.split("-"))
        self.pilot_lo = cal.month_start_day(y, m)
        self.pilot_hi = cal.month_start_day(y + (m == 12), m % 12 + 1)
        self.rollout_1d = cal.day_of(rpar.rollout_1d)
        self.rollout_full = cal.day_of(rpar.rollout_full)

    # -------------------------------------------------------------- linear
    def base_eta(self, day: np.ndarray, lead: np.ndarray, dept: np.ndarray) -> np.ndarray:
        """Logit without the prior-no-show and reminder terms."""
        p = self.np_
        return (p.intercept + p.lead * np.log1p(lead) + self.month[self.cal.month(day)]
                + p.trend_per_year * self.cal.years_since_start(day) + self.dept[dept])

    def prior_term(self, prior: np.ndarray | int) -> np.ndarray:
        """b_prior·min(H, cap)."""
        return self.np_.prior * np.minimum(prior, self.np_.prior_cap)

    def miss(self, eta: np.ndarray, mask: np.ndarray | int) -> np.ndarray:
        """m = c(D) + (1 − c(D))·p for a logit that already includes γ(D)."""
        c = self.cancel[mask]
        return c + (1.0 - c) * expit(eta)

    # ------------------------------------------------------------ schedule
    def sent_steps(self, day: np.ndarray, lead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Steps sent by the programme (mask) and whether the day is in the pilot month.

        In the pilot month eligible appointments are randomised later (the mask
        returned is the treatment arm's, {1d}).
        """
        eligible = lead >= self.rp.min_lead_days
        pilot = eligible & (day >= self.pilot_lo) & (day < self.pilot_hi)
        mask = np.where(day >= self.rollout_full, 7, np.where(day >= self.rollout_1d, 2, 0))
        mask = np.where(pilot, 2, np.where(eligible, mask, 0))
        return mask.astype(np.int64), pilot

    @staticmethod
    def delivery_law(mask_s: np.ndarray, delta: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """``[(D, P(D | steps mask_s sent, per-step delivery probability δ)), ...]`` for the D that can occur.

        The programme only ever sends {}, {1d} or {3d, 1d, 2h}, so at most 8 sets D occur.
        """
        mask_s = np.asarray(mask_s)
        full = mask_s == 7
        one = mask_s == 2
        d = np.asarray(delta, dtype=np.float64)
        e = 1.0 - d
        out = [(0, np.where(full, e * e * e, np.where(one, e, 1.0)))]
        if one.any() or full.any():
            out.append((2, np.where(full, d * e * e, np.where(one, d, 0.0))))
        if full.any():
            q = [e * e * e, d * e * e, d * d * e, d * d * d]
            for m in (1, 3, 4, 5, 6, 7):
                out.append((m, np.where(full, q[bin(m).count("1")], 0.0)))
        return out

    def expected_attend(self, eta0: np.ndarray, mask_s: np.ndarray, delta: np.ndarray,
                        pilot: np.ndarray, law: list | None = None) -> np.ndarray:
        """E_t[1 − m] over the reminder marks t (pilot arm and delivered set)."""
        law = self.delivery_law(mask_s, delta) if law is None else law
        tot = np.zeros_like(eta0)
        for d, pd_ in law:
            tot += pd_ * (1.0 - self.miss(eta0 + self.gamma[d], d))
        share = self.rp.pilot_share
        if np.any(pilot):
            none = 1.0 - self.miss(eta0, 0)
            tot = np.where(pilot, share * tot + (1.0 - share) * none, tot)
        return tot

    def expected_noshow(self, eta0: np.ndarray, mask_s: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """E_D[p] when steps `mask_s` are sent (the counterfactual no-show probability)."""
        tot = np.zeros_like(eta0)
        for d, pd_ in self.delivery_law(mask_s, delta):
            tot += pd_ * expit(eta0 + self.gamma[d])
        return tot

    def draw_natural(self, mask_s: np.ndarray, delta: np.ndarray, pilot: np.ndarray,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Untilted marks: pilot arm ~ Bernoulli(pilot_share), each sent step delivered w.p. δ."""
        n = len(mask_s)
        arm = pilot & (rng.random(n) < self.rp.pilot_share)
        sent = np.where(pilot & ~arm, 0, mask_s)
        u = rng.random((3, n))
        got = np.zeros(n, dtype=np.int64)
        for b in range(3):
            got |= ((sent >> b & 1) & (u[b] < delta)).astype(np.int64) << b
        return arm, got

    def draw_tilted(self, eta0: np.ndarray, mask_s: np.ndarray, delta: np.ndarray, pilot: np.ndarray,
                    rng: np.random.Generator, chunk: int = 1_000_000) -> tuple[np.ndarray, np.ndarray]:
        """Marks of an *attended* appointment: natural law × (1 − m(t)), normalised."""
        n = len(mask_s)
        arm = np.zeros(n, dtype=bool)
        got = np.zeros(n, dtype=np.int64)
        share = self.rp.pilot_share
        u_arm, u_d = rng.random(n), rng.random(n)
        for lo in range(0, n, chunk):
            sl = slice(lo, lo + chunk)
            e0, ms, dl, pl = eta0[sl], mask_s[sl], delta[sl], pilot[sl]
            law = self.delivery_law(ms, dl)
            w = [pd_ * (1.0 - self.miss(e0 + self.gamma[d], d)) for d, pd_ in law]
            w1 = np.sum(w, axis=0)
            w0 = 1.0 - self.miss(e0, 0)
            a = pl & (u_arm[sl] * (share * w1 + (1 - share) * w0) < share * w1)
            total = np.where(pl & ~a, w[0], w1)
            target = u_d[sl] * total
            pick = np.zeros(len(e0), dtype=np.int64)
            acc = np.zeros(len(e0))
            done = np.zeros(len(e0), dtype=bool)
            for (d, _), wd in zip(law, w):
                acc = acc + wd
                hit = ~done & (target < acc)
                pick[hit] = d
                done |= hit
            pick[pl & ~a] = 0
            arm[sl], got[sl] = a, pick
        return arm, got

    # --------------------------------------------------------------- bound
    def max_odds(self, max_day: int, min_day: int) -> float:
        """An upper bound of m/E_t[1 − m] over every mark, lead and prior count."""
        p = self.np_
        trend = max(p.trend_per_year * min_day / 365.25, p.trend_per_year * max_day / 365.25)
        eta = (p.intercept + p.lead * np.log1p(p.max_lead_days) + p.prior * p.prior_cap + self.month.max()
               + trend + max(self.dept.max(), 0.0) + max(self.gamma.max(), 0.0))
        c = self.cancel.max()
        m = c + (1 - c) * expit(eta)
        return float(m / (1.0 - m))
