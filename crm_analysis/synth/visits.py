"""Visit days: the return process simulated one visit step at a time.

Step k draws, for every patient still active, the continuous time T to the next
visit from the return model (:mod:`crm_analysis.synth.returns`). The next visit
day is ``start_day + max(1, ceil(T))``. It is *not* moved off Sundays and public
holidays: any calendar effect on visit timing would make the baseline hazard
depend on the gap's start day and break proportional hazards in gap time, so
the clinic takes walk-ins on closed days (휴일 진료, no appointments) and those
visits simply have no appointment. Campaigns may bring the next visit forward
(:mod:`crm_analysis.synth.campaigns`). A patient stays active while the
next visit falls on or before ``end``; the first visit after ``end`` is kept
(not as a visit) so that future bookings can be made for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_analysis.synth.calendar import NEVER, ClinicCalendar
from crm_analysis.synth.campaigns import CampaignRunner
from crm_analysis.synth.params import ReturnParams
from crm_analysis.synth.returns import draw_latent_gap

__all__ = ["VisitPath", "simulate_visits"]


@dataclass
class VisitPath:
    """Per-visit arrays sorted by patient then visit number (internal)."""

    pid: np.ndarray            # global patient index
    day: np.ndarray            # visit day
    seq: np.ndarray            # 0 for the first visit
    next_day: np.ndarray       # next visit day (may be after end; NEVER for a dropout)
    latent: np.ndarray         # organic continuous gap T (inf for a dropout)
    induced_event: np.ndarray  # campaign event that set next_day, -1 if organic
    induced_latent: np.ndarray  # response time after the campaign send day

    def __len__(self) -> int:
        return len(self.pid)

    @staticmethod
    def concat(*parts: "VisitPath") -> "VisitPath":
        """Stack paths of disjoint patient sets and re-sort by patient and visit number."""
        cols = {f: np.concatenate([getattr(p, f) for p in parts]) for f in _DTYPES}
        return _sorted(cols)


def simulate_visits(pid: np.ndarray, first_day: np.ndarray, eta: np.ndarray, cal: ClinicCalendar,
                    rp: ReturnParams, rng: np.random.Generator,
                    campaigns: CampaignRunner | None = None) -> VisitPath:
    """Simulate every visit of the given patients, vectorised across patients.

    Parameters
    ----------
    pid : ndarray of int
        Global patient indices.
    first_day : ndarray of int
        Day of each patient's first visit (an open day on or before ``end``).
    eta : ndarray of float
        Return-model linear predictor of each patient.
    cal : ClinicCalendar
    rp : ReturnParams
    rng : numpy.random.Generator
        One uniform is drawn per gap, in step order.
    campaigns : CampaignRunner, optional
        Applied at every step to the gaps that span a campaign send day.

    Returns
    -------
    VisitPath
    """
    n = len(pid)
    last_day = cal.last_day
    act = np.arange(n)
    cur = np.asarray(first_day, dtype=np.int64).copy()
    out = {f: [] for f in ("pid", "day", "seq", "next_day", "latent", "induced_event", "induced_latent")}
    k = 0
    while act.size:
        d = cur[act]
        t = draw_latent_gap(rng.random(act.size), eta[act], rp)
        finite = np.isfinite(t)
        nxt = np.where(finite, d + np.maximum(1, np.ceil(np.where(finite, t, 0))).astype(np.int64), NEVER)
        if campaigns is not None:
            ev, lat = campaigns.apply(pid[act], d, np.full(act.size, k + 1), nxt, eta[act])
        else:
            ev, lat = np.full(act.size, -1, np.int64), np.zeros(act.size)
        for f, v in zip(out, (pid[act], d, np.full(act.size, k, np.int64), nxt, t, ev, lat)):
            out[f].append(v)
        cont = nxt <= last_day
        cur[act[cont]] = nxt[cont]
        act = act[cont]
        k += 1
    cols = {}
    for f in list(out):  # concatenate field by field, freeing the step lists as we go
        parts = out.pop(f)
        cols[f] = (np.concatenate(parts) if parts else np.zeros(0)).astype(_DTYPES[f], copy=False)
        del parts
    return _sorted(cols)


_DTYPES = {"pid": np.int64, "day": np.int64, "seq": np.int32, "next_day": np.int64, "latent": np.float64,
           "induced_event": np.int16, "induced_latent": np.float64}


def _sorted(cols: dict) -> VisitPath:
    order = np.lexsort((cols["seq"], cols["pid"]))
    for f in list(cols):
        cols[f] = cols[f][order]
    return VisitPath(**cols)
