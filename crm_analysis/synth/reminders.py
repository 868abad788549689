"""Reminder messages and the true effects of the reminder programme.

Programme: no reminders before ``rollout_1d`` except in the randomised pilot
month, where eligible appointments are assigned to a 1-day reminder with
probability ``pilot_share``; from ``rollout_1d`` eligible appointments get a
1-day reminder; from ``rollout_full`` they get 3-day, 1-day and 2-hour
reminders. Eligible means booked at least ``min_lead_days`` calendar days ahead.

Each step is sent by KakaoTalk (알림톡) when the patient uses it and has not
opted out, with an SMS fallback (대체발송) when the KakaoTalk message fails; or
by SMS alone. A step counts as delivered when any of its messages arrives.
Sending times: 3d and 1d at ``send_hour`` (+0–30 min) on that day, 2h two hours
before the appointment but not before ``earliest_hour``; never before the
booking, never after ``end`` and never after a cancellation.

Replies (the reminders table's ``reply``): only a delivered message can be
answered. With probability :data:`REPLY_CONFIRM` (by the appointment's outcome)
the patient confirms by answering the appointment's first delivered message, so
confirmed appointments are no-shows less often (selection, not an effect of the
reply); a cancelled appointment's last delivered message before the cancellation
carries a ``cancelled`` reply with probability :data:`REPLY_CANCEL`, and only
cancelled appointments have one. Every other message has ``none``. The draws come
after every other draw of the stream (one per appointment), so the other columns
are those of a generator without replies.
"""

from __future__ import annotations

import numpy as np

from crm_analysis.contract import CHANNELS
from crm_analysis.synth.appointments import ATTENDED, BOOKED, CANCELLED, NO_SHOW, RESCHEDULED, Appointments
from crm_analysis.synth.calendar import ClinicCalendar
from crm_analysis.synth.catalog import SCHEDULES
from crm_analysis.synth.noshow import NoShowModel, expit
from crm_analysis.synth.params import SynthParams

__all__ = ["reminder_rows", "reminder_truth", "schedule_label", "REPLIES", "REPLY_CONFIRM", "REPLY_CANCEL"]

#: Reply values, in the order of their codes.
REPLIES = ("confirmed", "cancelled", "none")
#: Probability that a reminded appointment (a delivered message) is confirmed by reply, by its outcome.
REPLY_CONFIRM = {ATTENDED: 0.60, NO_SHOW: 0.20, RESCHEDULED: 0.30, BOOKED: 0.45, CANCELLED: 0.10}
#: Probability that a cancelled appointment's last delivered message before the cancellation gets a
#: ``cancelled`` reply (it then replaces a confirmation of the same message).
REPLY_CANCEL = 0.60
_STATUS_NAMES = {ATTENDED: "attended", NO_SHOW: "no_show", CANCELLED: "cancelled", RESCHEDULED: "rescheduled",
                 BOOKED: "booked"}

_KAKAO, _SMS = CHANNELS.index("kakao"), CHANNELS.index("sms")


def schedule_label(mask: int) -> str:
    """``"3d+1d+2h"`` style label of a step mask (``"none"`` for 0)."""
    return "+".join(s for b, s in enumerate(SCHEDULES) if mask >> b & 1) or "none"


def reminder_rows(app: Appointments, cal: ClinicCalendar, params: SynthParams,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One row per message: ``app`` (appointment index), ``channel``, ``step``, ``t`` (minutes), ``delivered``,
    ``reply`` (code into :data:`REPLIES`)."""
    rp = params.reminders
    reach = app.kakao_ok | app.sms_ok
    rows = {k: [] for k in ("app", "channel", "step", "t", "delivered")}
    t_sched = app.day * 1440 + app.minute
    t_book = app.booked_day * 1440 + app.booked_minute
    t_limit = np.minimum((cal.last_day + 1) * 1440 - 1, t_sched)
    t_limit = np.where(app.cancel_day < 2**39, np.minimum(t_limit, app.cancel_day * 1440 + app.cancel_minute), t_limit)
    delta = 1.0 - (1.0 - app.p_kakao) * (1.0 - app.p_sms)
    for b in range(3):
        idx = np.flatnonzero(((app.sent >> b) & 1).astype(bool) & reach)
        n = idx.size
        if b < 2:
            days_before = 3 if b == 0 else 1
            t = (app.day[idx] - days_before) * 1440 + rp.send_hour * 60 + np.floor(rng.random(n) * 31)
        else:
            t = np.maximum(t_sched[idx] - 120, app.day[idx] * 1440 + rp.earliest_hour * 60)
        t = np.maximum(t, t_book[idx] + 1 + np.floor(rng.random(n) * 10)).astype(np.int64)
        got = ((app.delivered[idx] >> b) & 1).astype(bool)
        k_ok, s_ok = app.kakao_ok[idx], app.sms_ok[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            p_k_given = np.where(s_ok, app.p_kakao[idx] / delta[idx], 1.0)
        k_del = got & (rng.random(n) < np.nan_to_num(p_k_given, nan=1.0))
        # KakaoTalk message
        km = k_ok
        # SMS: alone, or fallback after a failed KakaoTalk message
        sm = s_ok & (~k_ok | ~k_del)
        for mask, ch, dt, dl in ((km, _KAKAO, 0, k_del), (sm, _SMS, np.where(k_ok, 1, 0), got)):
            rows["app"].append(idx[mask])
            rows["channel"].append(np.full(mask.sum(), ch))
            rows["step"].append(np.full(mask.sum(), b))
            rows["t"].append((t + dt)[mask])
            rows["delivered"].append(dl[mask])
    dtypes = {"app": np.int64, "channel": np.int8, "step": np.int8, "t": np.int64, "delivered": bool}
    out = {k: np.concatenate(v).astype(dtypes[k], copy=False) for k, v in rows.items()}
    ok = out["t"] <= t_limit[out["app"]]
    out = {k: v[ok] for k, v in out.items()}
    out["reply"] = _replies(app.status, out, rng)
    return out


def _replies(status: np.ndarray, rows: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Reply codes (:data:`REPLIES`) of the messages `rows`; one draw per appointment, after all others."""
    u = rng.random(len(status))
    code = np.full(len(rows["t"]), REPLIES.index("none"), dtype=np.int8)
    got = np.flatnonzero(rows["delivered"])
    if not got.size:
        return code
    order = got[np.lexsort((rows["channel"][got], rows["t"][got], rows["app"][got]))]  # by appointment, then time
    app = rows["app"][order]
    first = order[np.r_[True, app[1:] != app[:-1]]]
    last = order[np.r_[app[1:] != app[:-1], True]]
    p_confirm = np.zeros(int(status.max(initial=0)) + 1)
    for value, p in REPLY_CONFIRM.items():
        if value < p_confirm.size:
            p_confirm[value] = p
    a_first = rows["app"][first]
    code[first[u[a_first] < p_confirm[status[a_first]]]] = REPLIES.index("confirmed")
    a_last = rows["app"][last]
    code[last[(status[a_last] == CANCELLED) & (u[a_last] >= 1.0 - REPLY_CANCEL)]] = REPLIES.index("cancelled")
    return code


def _rd(p1: np.ndarray, p0: np.ndarray) -> dict:
    if len(p1) == 0:
        return {"n": 0, "risk_difference": None, "risk_ratio": None, "mean_p1": None, "mean_p0": None}
    return {"n": int(len(p1)), "mean_p1": float(p1.mean()), "mean_p0": float(p0.mean()),
            "risk_difference": float((p1 - p0).mean()), "risk_ratio": float(p1.mean() / p0.mean())}


def _per_booking(model: NoShowModel, eta0: np.ndarray, programme: np.ndarray, delta: np.ndarray,
                 m: np.ndarray) -> dict:
    """What the programme keeps per booking (cancelled bookings included), over the bookings `m`.

    With the programme's steps sent (averaging over delivery) and without any reminder: attended visits
    E[(1 − c(D))(1 − p(D))], no-shows E[(1 − c(D))·p(D)] and cancellations E[c(D)] per booking.
    """
    if not m.any():
        return {"n": 0}
    e0, law = eta0[m], model.delivery_law(programme[m], delta[m])
    rows = {"attended": (sum(w * (1 - model.miss(e0 + model.gamma[d], d)) for d, w in law), 1 - model.miss(e0, 0)),
            "no_shows": (sum(w * (1 - model.cancel[d]) * expit(e0 + model.gamma[d]) for d, w in law),
                         (1 - model.cancel[0]) * expit(e0)),
            "cancellations": (sum(w * model.cancel[d] for d, w in law), np.full(len(e0), model.cancel[0]))}
    out = {"n": int(m.sum())}
    for key, (with_, without) in rows.items():
        out[f"{key}_planned"], out[f"{key}_none"] = float(with_.mean()), float(without.mean())
    out["extra_visits"] = out["attended_planned"] - out["attended_none"]
    out["no_shows_avoided"] = out["no_shows_none"] - out["no_shows_planned"]
    out["extra_cancellations"] = out["cancellations_planned"] - out["cancellations_none"]
    out["estimand"] = ("per resolved eligible booking of the period (cancelled ones included), the programme's "
                       "schedule sent (averaging over delivery) against no reminder; extra_visits = no_shows_avoided "
                       "- extra_cancellations; a share rho of cancelled slots refilled adds rho * extra_cancellations")
    return out


def reminder_truth(app: Appointments, cal: ClinicCalendar, params: SynthParams) -> dict:
    """The programme's design and its true effects in this clinic (see docs/demo_clinic.md)."""
    rp, npar = params.reminders, params.noshow
    model = NoShowModel(npar, rp, cal)
    nc = np.isin(app.status, (ATTENDED, NO_SHOW)) & (app.day <= cal.last_day)
    eta0 = app.eta0
    delta = 1.0 - (1.0 - app.p_kakao) * (1.0 - app.p_sms)
    p_act = expit(eta0 + model.gamma[app.delivered])
    p_none = expit(eta0)
    eligible = app.lead >= rp.min_lead_days
    observed = (app.status == NO_SHOW).astype(np.float64)

    combos = {}
    for mask in range(1, 8):
        g = float(model.gamma[mask])
        combos[schedule_label(mask)] = {"log_odds": g, "odds_ratio": float(np.exp(g))}

    pil = nc & app.pilot
    p1 = model.expected_noshow(eta0[pil], np.full(pil.sum(), 2), delta[pil])
    pilot = _rd(p1, p_none[pil])
    arm = app.arm[pil]
    pilot.update({
        "month": rp.pilot_month, "share_assigned_reminder": rp.pilot_share,
        "estimand": "mean over eligible non-cancelled pilot appointments of p1 - p0, p1 = E[p | assigned 1d "
                    "reminder] (averaging over delivery), p0 = p without reminder; risk_ratio = mean(p1)/mean(p0)",
        "n_reminder_arm": int(arm.sum()), "n_control_arm": int((~arm).sum()),
        "observed_no_show_rate_reminder_arm": float(observed[pil][arm].mean()) if arm.any() else None,
        "observed_no_show_rate_control_arm": float(observed[pil][~arm].mean()) if (~arm).any() else None,
    })

    r1, rf = model.rollout_1d, model.rollout_full
    resolved = np.isin(app.status, (ATTENDED, NO_SHOW, CANCELLED, RESCHEDULED)) & (app.day <= cal.last_day)
    periods = {}
    for name, lo, hi in (("1d", r1, rf), ("3d+1d+2h", rf, cal.last_day + 1)):
        m = nc & eligible & (app.day >= lo) & (app.day < hi)
        est = _rd(model.expected_noshow(eta0[m], app.programme[m], delta[m]), p_none[m])
        reminded = m & (app.delivered > 0)
        est["start"] = cal.iso(lo)
        est["att_among_reminded"] = float((p_act - p_none)[reminded].mean()) if reminded.any() else None
        est["per_booking"] = _per_booking(model, eta0, app.programme, delta,
                                          resolved & eligible & (app.day >= lo) & (app.day < hi))
        periods[name] = est

    def month_key(day):
        d = np.datetime64(cal.start, "D") + day.astype("timedelta64[D]")
        return d.astype("datetime64[M]").astype(np.int64)

    mk = month_key(app.day)
    months = {}
    for key in np.unique(mk[nc]):
        m = nc & (mk == key)
        label = str(np.datetime64(int(key), "M"))
        months[label] = {"n_non_cancelled": int(m.sum()), "observed_no_show_rate": float(observed[m].mean()),
                         "mean_p_actual": float(p_act[m].mean()), "mean_p_no_reminder": float(p_none[m].mean())}
    its = {}
    for name, r_day, prev_mask in (("1d", r1, None), ("3d+1d+2h", rf, 2)):
        start_key = month_key(np.array([r_day]))[0]
        m = nc & (mk >= start_key) & (mk < start_key + rp.its_months)
        entry = {"date": cal.iso(r_day), "months": rp.its_months,
                 "level_change_vs_no_reminder": float((p_act - p_none)[m].mean()) if m.any() else None}
        if prev_mask is None:
            entry["level_change_vs_previous_regime"] = entry["level_change_vs_no_reminder"]
        else:
            s_prev = np.where(eligible[m], prev_mask, 0)
            p_prev = model.expected_noshow(eta0[m], s_prev, delta[m])
            entry["level_change_vs_previous_regime"] = float((p_act[m] - p_prev).mean()) if m.any() else None
        its[name] = entry

    after = nc & (app.day >= r1)
    rem = after & (app.delivered > 0)
    non = after & (app.delivered == 0)
    crude = {
        "population": "non-cancelled appointments scheduled on or after rollout_1d",
        "reminded": "at least one reminder step delivered",
        "observed_no_show_rate_reminded": float(observed[rem].mean()) if rem.any() else None,
        "observed_no_show_rate_not_reminded": float(observed[non].mean()) if non.any() else None,
        "baseline_risk_reminded": float(p_none[rem].mean()) if rem.any() else None,
        "baseline_risk_not_reminded": float(p_none[non].mean()) if non.any() else None,
        "true_effect_among_reminded": float((p_act - p_none)[rem].mean()) if rem.any() else None,
    }
    if rem.any() and non.any():
        crude["crude_difference"] = (crude["observed_no_show_rate_reminded"]
                                     - crude["observed_no_show_rate_not_reminded"])

    return {
        "programme": {"pilot_month": rp.pilot_month, "pilot_share": rp.pilot_share, "rollout_1d": rp.rollout_1d,
                      "rollout_full": rp.rollout_full, "min_lead_days": rp.min_lead_days,
                      "schedules": {"before rollout_1d": "none (pilot month: 1d, randomised)",
                                    "rollout_1d": "1d", "rollout_full": "3d+1d+2h"},
                      "channels": "kakao when available (sms fallback when the kakao message fails), else sms"},
        "effect_per_delivered_schedule": combos,
        "pilot": pilot,
        "rollout_periods": periods,
        "its": {**its, "baseline": {
            "definition": "monthly no-show rate = no_show / (attended + no_show) by scheduled month; level change = "
                          "mean(p_actual - p_counterfactual) over non-cancelled appointments scheduled in the first "
                          "`months` calendar months from the roll-out date",
            "month_effects_logit": dict(npar.month), "trend_per_year_logit": npar.trend_per_year}},
        "monthly": months,
        "crude": crude,
        "replies": {
            "values": list(REPLIES),
            "p_confirmed_by_outcome": {_STATUS_NAMES[k]: v for k, v in REPLY_CONFIRM.items()},
            "p_cancelled_reply_if_cancelled": REPLY_CANCEL,
            "rule": "only delivered messages are answered; a confirmation answers the appointment's first delivered "
                    "message, a 'cancelled' reply its last delivered message before the cancellation (cancelled "
                    "appointments only; it replaces a confirmation of the same message); one uniform draw per "
                    "appointment u: confirmed if u < p_confirmed_by_outcome, cancelled if u >= 1 - p_cancelled. "
                    "Confirmation marks patients who come (selection), it does not change the no-show risk.",
            "expected_no_show_rate_confirmed_vs_not": "lower among confirmed: P(no_show | confirmed) uses 0.20 for "
                                                      "no-shows against 0.60 for attended appointments",
        },
    }
