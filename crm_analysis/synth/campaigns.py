"""Past marketing campaigns with randomised holdouts and a known lift.

Campaigns are evaluated *inside* the visit simulation, at their send day ``c``,
for every patient whose current gap spans ``c`` (last visit before ``c``, next
visit after ``c``). An eligible patient (see :class:`~crm_analysis.synth.params.CampaignSpec`)
with a valid marketing consent is assigned to the holdout with probability
``holdout_share``, otherwise sent a message. If the message is delivered the
patient *responds* with probability ``r_i = min(1, response_prob · exp(η_i))``
(η_i the return-model linear predictor, so responsiveness is proportional to
the patient's return hazard ratio and campaign-induced returns do not dilute
the Cox estimates): when the organic next visit would fall after the window
``(c, c + w]``, it is brought forward to an open day drawn uniformly among the
open days of the window. The true lift of a row is therefore

    lift_i = (1 − p0_i) · r_i · P(delivered_i)

where ``p0_i`` is the organic probability of a visit in the window given no
visit up to ``c`` (from the return model). A patient whose next
visit was already brought forward by an earlier campaign is not targeted again
until that visit.
"""

from __future__ import annotations

import numpy as np

from crm_analysis.contract import CHANNELS
from crm_analysis.synth.calendar import ClinicCalendar
from crm_analysis.synth.params import SynthParams
from crm_analysis.synth.population import Patients
from crm_analysis.synth.returns import survival

__all__ = ["CampaignRunner", "campaign_events", "BOUNCE_TYPES"]

BOUNCE_TYPES = ("none", "soft", "hard")
_FIELDS = ("pid", "event", "arm_sent", "channel", "bounce", "p0", "p_deliver", "p_respond", "returned", "responded",
           "induced")


def campaign_events(params: SynthParams, cal: ClinicCalendar) -> dict[str, np.ndarray]:
    """Send events inside the window, sorted by day: ``day``, ``spec`` (index), ``month``, ``window``, ``open``.

    ``open`` is the number of open days in the response window (day, day + window].
    """
    events = []
    for s_idx, spec in enumerate(params.campaigns):
        for date in spec.send_dates:
            day = cal.day_of(date)
            if 0 < day <= cal.last_day:
                events.append((day, s_idx, int(date[5:7]), spec.window_days))
    events.sort()
    cols = list(zip(*events)) if events else [(), (), (), ()]
    out = {k: np.array(v, dtype=np.int64) for k, v in zip(("day", "spec", "month", "window"), cols)}
    out["open"] = cal.n_open_between(out["day"], out["day"] + out["window"])
    return out


class CampaignRunner:
    """Campaign targeting, delivery and response, applied step by step.

    Parameters
    ----------
    patients : Patients
        All patients (global indices).
    cal : ClinicCalendar
    params : SynthParams
    rng : numpy.random.Generator
        Used for every campaign draw, in step and event order.
    """

    def __init__(self, patients: Patients, cal: ClinicCalendar, params: SynthParams, rng: np.random.Generator):
        self.pat = patients
        self.cal = cal
        self.params = params
        self.rng = rng
        ev = campaign_events(params, cal)
        self.event_day, self.event_spec, self.event_month = ev["day"], ev["spec"], ev["month"]
        origin = np.datetime64(cal.start, "D")
        self.birth_month = ((origin + patients.birth_day.astype("timedelta64[D]")).astype("datetime64[M]")
                            .astype(np.int64) % 12 + 1)
        self._rows: dict[str, list] = {f: [] for f in _FIELDS}

    def set_patients(self, patients: Patients) -> None:
        """Point the runner at an extended patient set (after children are added)."""
        self.pat = patients
        origin = np.datetime64(self.cal.start, "D")
        self.birth_month = ((origin + patients.birth_day.astype("timedelta64[D]")).astype("datetime64[M]")
                            .astype(np.int64) % 12 + 1)

    # ------------------------------------------------------------------ loop
    def apply(self, pid: np.ndarray, day: np.ndarray, n_visits: np.ndarray, nxt: np.ndarray, eta: np.ndarray):
        """Target, send and (maybe) bring forward the next visit for one visit step.

        Parameters
        ----------
        pid : ndarray
            Global patient index of each active gap.
        day : ndarray
            Day of the visit that opens the gap.
        n_visits : ndarray
            Visits so far, including this one.
        nxt : ndarray
            Organic next-visit day (NEVER for a dropout); modified in place.
        eta : ndarray
            Return-model linear predictor.

        Returns
        -------
        induced_event : ndarray of int
            Event index whose response set the next visit, -1 otherwise.
        induced_latent : ndarray of float
            Continuous response time after the send day, in open days, for induced gaps
            (the visit is on open day ``ceil(latent)`` after the send day).
        """
        n = len(pid)
        induced_event = np.full(n, -1, dtype=np.int64)
        induced_latent = np.zeros(n, dtype=np.float64)
        if n == 0 or len(self.event_day) == 0:
            return induced_event, induced_latent
        first = np.searchsorted(self.event_day, day, side="right")
        last = np.searchsorted(self.event_day, np.minimum(nxt, self.cal.last_day + 1), side="left")
        cand = np.flatnonzero(first < last)
        if cand.size == 0:
            return induced_event, induced_latent
        for e in range(int(first[cand].min()), int(last[cand].max())):
            c = int(self.event_day[e])
            spec = self.params.campaigns[self.event_spec[e]]
            sub = cand[(day[cand] < c) & (nxt[cand] > c) & (induced_event[cand] < 0)]
            if sub.size == 0:
                continue
            p = pid[sub]
            since = c - day[sub]
            ok = (since >= spec.min_days_since_visit) & (since <= spec.max_days_since_visit)
            ok &= n_visits[sub] >= spec.min_visits
            if spec.kind == "birthday":
                ok &= self.birth_month[p] == self.event_month[e]
            channel = self._channel(p, c)
            ok &= channel >= 0
            sub, p, channel = sub[ok], p[ok], channel[ok]
            if sub.size == 0:
                continue
            m = sub.size
            sent = self.rng.random(m) >= spec.holdout_share
            bounce, p_del = self._deliver(p, channel)
            delivered = sent & (bounce == 0)
            r_prob = np.minimum(1.0, spec.response_prob * np.exp(eta[sub]))
            responded = delivered & (self.rng.random(m) < r_prob)
            w = spec.window_days
            a = c - day[sub]
            p0 = 1.0 - survival(a + w, eta[sub], self.params.returns) / survival(a, eta[sub], self.params.returns)
            organic_in = nxt[sub] <= c + w
            induce = responded & ~organic_in
            n_open = int(self.cal.n_open_between(np.array([c]), np.array([c + w]))[0])
            latent = self.rng.random(m) * n_open  # response time in open days
            new_day = self.cal.nth_open_after(np.full(m, c), np.maximum(1, np.ceil(latent).astype(np.int64)))
            idx = sub[induce]
            nxt[idx] = new_day[induce]
            induced_event[idx] = e
            induced_latent[idx] = latent[induce]
            returned = nxt[sub] <= c + w
            for f, v in zip(_FIELDS, (p, np.full(m, e), sent, channel, np.where(sent, bounce, -1), p0, p_del,
                                      r_prob, returned, responded, induce)):
                self._rows[f].append(v)
        return induced_event, induced_latent

    def _channel(self, p: np.ndarray, c: int) -> np.ndarray:
        """Preferred channel with a valid marketing consent on day `c` (-1: none)."""
        pat = self.pat
        out = np.full(len(p), -1, dtype=np.int64)
        for j in reversed(range(len(CHANNELS))):  # kakao first wins
            ok = (pat.consent[p, j] == 1) & (pat.first_consent_day[p, j] <= c) & (pat.opt_out_day[p, j] > c)
            out[ok] = j
        return out

    def _deliver(self, p: np.ndarray, channel: np.ndarray):
        """Bounce type code (0 none, 1 soft, 2 hard) and P(delivered) of one message each."""
        pat = self.pat
        kakao, sms = CHANNELS.index("kakao"), CHANNELS.index("sms")
        hard = np.where(channel == CHANNELS.index("email"), pat.email_invalid[p], pat.phone_invalid[p])
        soft_p = np.select([channel == kakao, channel == sms], [pat.kakao_fail[p], pat.sms_soft[p]], pat.email_soft[p])
        soft = ~hard & (self.rng.random(len(p)) < soft_p)
        bounce = np.where(hard, 2, np.where(soft, 1, 0))
        return bounce, (~hard) * (1.0 - soft_p)

    # ----------------------------------------------------------------- after
    def rows(self) -> dict[str, np.ndarray]:
        """All contact rows collected so far, as column arrays."""
        out = {}
        for f in _FIELDS:
            parts = self._rows[f]
            out[f] = np.concatenate(parts) if parts else np.zeros(0)
        if not self._rows["pid"]:
            out = {f: np.zeros(0, dtype=np.int64) for f in _FIELDS}
        return out

    def engagement(self, rows: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """opened / clicked / replied codes (1 yes, 0 no, -1 missing) for each row."""
        cq = self.params.contact
        n = len(rows["pid"])
        e = self.pat.engagement[rows["pid"]]
        delivered = rows["bounce"] == 0
        trackable = rows["channel"] != CHANNELS.index("sms")
        u1, u2, u3 = rng.random(n), rng.random(n), rng.random(n)
        opened = delivered & (u1 < cq.open_base + cq.open_slope * e)
        clicked = opened & (u2 < e)
        replied = delivered & (u3 < cq.reply_slope * e)
        holdout = ~rows["arm_sent"].astype(bool)
        opened_code = np.where(holdout | ~trackable, -1, opened.astype(np.int64))
        return {
            "opened": opened_code,
            "clicked": np.where(holdout, -1, clicked.astype(np.int64)),
            "replied": np.where(holdout, -1, replied.astype(np.int64)),
        }

    def truth(self, rows: dict) -> dict:
        """Per-campaign design, counts and true lifts (from counterfactual probabilities)."""
        out = {}
        for s_idx, spec in enumerate(self.params.campaigns):
            m = self.event_spec[rows["event"].astype(np.int64)] == s_idx if len(rows["event"]) else np.zeros(0, bool)
            sent = rows["arm_sent"][m].astype(bool)
            lift = (1.0 - rows["p0"][m]) * rows["p_respond"][m] * rows["p_deliver"][m]
            ret = rows["returned"][m].astype(bool)
            delivered = sent & (rows["bounce"][m] == 0)

            def mean(x):
                return float(np.mean(x)) if len(x) else None

            out[spec.campaign_id] = {
                "kind": spec.kind,
                "send_dates": list(spec.send_dates),
                "window_days": spec.window_days,
                "holdout_share": spec.holdout_share,
                "response_prob_reference": spec.response_prob,
                "response_model": "P(respond | delivered) = min(1, response_prob_reference * exp(eta_i)); a "
                                  "responder's next visit is brought forward into the window if it was later",
                "mean_response_prob_if_delivered": mean(rows["p_respond"][m]),
                "eligibility": {"min_days_since_last_visit": spec.min_days_since_visit,
                                "max_days_since_last_visit": spec.max_days_since_visit,
                                "min_visits": spec.min_visits,
                                "birth_month_is_send_month": spec.kind == "birthday"},
                "n_targeted": int(m.sum()),
                "n_sent": int(sent.sum()),
                "n_holdout": int((~sent).sum()),
                "n_delivered": int(delivered.sum()),
                "n_responded": int(rows["responded"][m].sum()),
                "n_visits_brought_forward": int(rows["induced"][m].sum()),
                "true_baseline_return_prob": mean(rows["p0"][m]),
                "true_lift_itt": mean(lift),
                "true_lift_sent_arm": mean(lift[sent]),
                "true_lift_among_delivered": mean(((1.0 - rows["p0"][m]) * rows["p_respond"][m])[delivered]),
                "observed_return_rate_sent": mean(ret[sent]),
                "observed_return_rate_holdout": mean(ret[~sent]),
            }
        return out
