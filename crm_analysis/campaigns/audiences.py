"""Who each built-in campaign is for, and when: one function per audience.

Every audience function takes ``(clinic, campaign, start, end, as_of, lang)`` and
returns a DataFrame with one row per intended message:

``patient_id``
    The patient the message is about.
``recipient_id``
    Whose phone/email, consents and opt-outs apply (the guardian for a child).
``send_at``
    Intended clinic-local send time (the planner still checks windows and rules).
``reason``
    Why this patient is in the audience (plain text key).
``rank``
    Order of preference inside the campaign (lower first; used for capacity).

plus the audience's template fields (:data:`~crm_analysis.campaigns.templates.AUDIENCE_FIELDS`).
Only data known on `as_of` is used; the messages fall in the period
``[start, end]`` (days, inclusive).

VIP and recall audiences use the segmentation and churn modules when they are
installed (``crm_analysis.value.vip.select_vips``, ``crm_analysis.churn.recall_candidates``);
a candidates DataFrame (``patient_id``, ``reason``, ranked best first) can also be
passed in, and without either a simple documented rule is used (VIP: at least
``vip_min_visits_12m`` visits in the last 12 months, ranked by 12-month spend;
recall: last visit ``min_days``–``max_days`` days before `as_of`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from crm_analysis.campaigns.definitions import Campaign
from crm_analysis.distinct import each_distinct
from crm_analysis.schedules import load_prenatal_schedule, pregnancy_weeks, prenatal_content, vaccination_due

__all__ = ["AUDIENCES", "AUDIENCE_COLUMNS", "vip_event", "vip_birthday", "recall", "pregnancy_week",
           "infant_vaccination", "appointment_reminder", "vip_candidates", "recall_candidate_frame",
           "rule_vip_candidates", "rule_recall_candidates", "candidate_source", "source_candidates"]

#: Columns of every audience; ``detail`` says in Korean, for the staff list, why the patient was chosen.
AUDIENCE_COLUMNS = ["patient_id", "recipient_id", "send_at", "reason", "rank", "detail"]


def _at(days: pd.Series | pd.Timestamp, hhmm: str):
    h, m = (int(x) for x in hhmm.split(":"))
    return days + pd.Timedelta(hours=h, minutes=m)


def _empty(extra=()) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "send_at" else object)
                         for c in [*AUDIENCE_COLUMNS, *extra]})


def _per_value(values: pd.Series, fmt: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``fmt(values)`` computed once per distinct value: 10^5 messages share a few thousand times."""
    return pd.Series(each_distinct(values, fmt), index=values.index, name=values.name)


def _per_row(keys: pd.DataFrame, fmt: Callable[[pd.DataFrame], pd.Series]) -> pd.Series:
    """``fmt(keys)`` computed once per distinct row of `keys` (every column's values, missing ones included)."""
    codes = np.zeros(len(keys), np.int64)
    for name in keys.columns:
        column, uniques = pd.factorize(keys[name], use_na_sentinel=False)
        codes = pd.factorize(codes * len(uniques) + column)[0]  # stays below len(keys) * len(uniques)
    first = np.unique(codes, return_index=True)[1]  # each combination's first row, in code order
    return pd.Series(fmt(keys.iloc[first]).to_numpy(dtype=object)[codes], index=keys.index)


def _fmt_day(day: pd.Series | pd.Timestamp, lang: str):
    if isinstance(day, pd.Series):
        return _per_value(day, lambda d: (d.dt.month.astype(str) + "월 " + d.dt.day.astype(str) + "일") if lang == "ko"
                          else d.dt.strftime("%b %d").str.replace(" 0", " ", regex=False))
    return f"{day.month}월 {day.day}일" if lang == "ko" else f"{day:%b} {day.day}"


def _day_of_month(campaign: Campaign, start: pd.Timestamp, end: pd.Timestamp) -> pd.Timestamp:
    day = int(campaign.send.get("day_of_month", 1))
    last = start + pd.offsets.MonthEnd(0)
    target = start.replace(day=min(day, last.day))
    return min(max(target, start), end)


def _visits_known(clinic, as_of) -> pd.DataFrame:
    v = clinic.tables["visits"]
    return v.loc[(v["visit_date"] <= as_of).to_numpy()]


# --------------------------------------------------------------------------- candidates

def vip_candidates(clinic, as_of, *, min_visits_12m: int = 10) -> pd.DataFrame:
    """VIP candidates ranked best first: ``patient_id``, ``reason``.

    Uses ``crm_analysis.value.vip.select_vips(patient_features(clinic, as_of), as_of)``
    (the patients it marks ``selected``, in its rank order, reason ``vip_<rule>``)
    when those modules are installed; otherwise the fallback rule in the module
    docstring.
    """
    try:
        from crm_analysis.features import patient_features
        from crm_analysis.value.vip import select_vips
    except ImportError:
        pass
    else:
        vips = select_vips(patient_features(clinic, as_of), as_of)
        if "selected" in vips.columns:
            vips = vips[vips["selected"].astype(bool)]
        if "rank" in vips.columns:
            vips = vips.sort_values("rank", kind="stable")
        ids = vips["patient_id"] if "patient_id" in vips.columns else pd.Series(vips.index, index=vips.index)
        reason = "vip_" + vips["rule"].astype(str) if "rule" in vips.columns else "vip_selected"
        return pd.DataFrame({"patient_id": ids.astype(str).to_numpy(), "reason": np.asarray(reason)})
    return rule_vip_candidates(clinic, as_of, min_visits_12m=min_visits_12m)


def rule_vip_candidates(clinic, as_of, *, min_visits_12m: int = 10) -> pd.DataFrame:
    """The fallback VIP rule: at least `min_visits_12m` visits in the 12 months to `as_of`, by 12-month spend."""
    as_of = pd.Timestamp(as_of)
    v = _visits_known(clinic, as_of)
    v = v.loc[(v["visit_date"] > as_of - pd.DateOffset(years=1)).to_numpy()]
    spend = v["charge_insured"].fillna(0) + v["charge_self_pay"].fillna(0)
    g = v.assign(spend=spend).groupby("patient_id", observed=True)
    agg = pd.DataFrame({"n": g.size(), "spend": g["spend"].sum()})
    agg = agg[agg["n"] >= min_visits_12m].sort_values(["spend", "n"], ascending=False, kind="stable")
    return pd.DataFrame({"patient_id": agg.index.astype(str), "reason": f"visits_12m_{min_visits_12m}_plus"})


def recall_candidate_frame(clinic, as_of, *, min_days: int = 180, max_days: int = 730) -> pd.DataFrame:
    """Lapsed-but-recoverable patients ranked best first: ``patient_id``, ``reason``.

    Uses ``crm_analysis.churn.recall_candidates(clinic, as_of)`` (its ranking, reason
    ``churn_recall_candidate``; it fits the churn model, ~5–20 s on the demo clinic) when installed;
    otherwise: last visit between `min_days` and `max_days` days before `as_of`,
    most recently lapsed first.
    """
    try:
        from crm_analysis.churn import recall_candidates
    except ImportError:
        pass
    else:
        cand = recall_candidates(clinic, as_of)
        ids = cand["patient_id"] if "patient_id" in cand.columns else pd.Series(cand.index, index=cand.index)
        return pd.DataFrame({"patient_id": ids.astype(str).to_numpy(), "reason": "churn_recall_candidate"})
    return rule_recall_candidates(clinic, as_of, min_days=min_days, max_days=max_days)


def rule_recall_candidates(clinic, as_of, *, min_days: int = 180, max_days: int = 730) -> pd.DataFrame:
    """The fallback recall rule: last visit `min_days`–`max_days` days before `as_of`, most recent first."""
    as_of = pd.Timestamp(as_of)
    last = _visits_known(clinic, as_of).groupby("patient_id", observed=True)["visit_date"].max()
    gap = (as_of - last).dt.days
    last = last[(gap >= min_days) & (gap <= max_days)].sort_values(ascending=False, kind="stable")
    return pd.DataFrame({"patient_id": last.index.astype(str), "reason": f"no_visit_{min_days}_{max_days}d"})


def candidate_source(campaign: Campaign) -> tuple | None:
    """The ranked list a VIP or recall audience is built from when no candidates are given.

    ``("vip", min_visits_12m)`` or ``("recall", min_days, max_days)``; None for other audiences.
    Campaigns with the same source share one list (the planner makes it once).
    """
    if campaign.audience in ("vip_event", "vip_birthday"):
        return ("vip", int(campaign.options.get("vip_min_visits_12m", 10)))
    if campaign.audience == "recall":
        opts = dict(campaign.options.get("recall", {}))
        return ("recall", int(opts.get("min_days", 180)), int(opts.get("max_days", 730)))
    return None


def source_candidates(clinic, as_of, source: tuple) -> pd.DataFrame:
    """The candidate list of a :func:`candidate_source`: ``patient_id``, ``reason``, best first."""
    if source[0] == "vip":
        return vip_candidates(clinic, as_of, min_visits_12m=source[1])
    return recall_candidate_frame(clinic, as_of, min_days=source[1], max_days=source[2])


def _given_detail(out: pd.DataFrame, default: pd.Series) -> pd.Series:
    """The candidates' own ``detail`` where they give one, else `default`."""
    if "detail" not in out.columns:
        return default
    given = out["detail"].astype(object)
    return given.where(given.notna() & (given.astype(str) != ""), default)


def _ranked(cand: pd.DataFrame) -> pd.DataFrame:
    cand = cand.drop_duplicates("patient_id").reset_index(drop=True)
    return cand.assign(rank=np.arange(len(cand)), recipient_id=cand["patient_id"])


# --------------------------------------------------------------------------- audiences

def vip_event(clinic, campaign: Campaign, start, end, as_of, lang="ko", candidates=None) -> pd.DataFrame:
    """VIP event invitation: the best-ranked VIPs (capacity is applied by the planner after the holdout)."""
    cand = candidates if candidates is not None else source_candidates(clinic, as_of, candidate_source(campaign))
    if cand.empty:
        return _empty(("event_name", "event_date"))
    out = _ranked(cand)
    ev = dict(campaign.options.get("event", {}))
    month_start = start.replace(day=1)
    weekday, nth = int(ev.get("weekday", 5)), int(ev.get("nth", 3))
    first = month_start + pd.Timedelta(days=(weekday - month_start.weekday()) % 7)
    event_day = first + pd.Timedelta(weeks=nth - 1)
    out["send_at"] = _at(_day_of_month(campaign, start, end), campaign.send["time"])
    out["event_name"] = ev.get(lang, ev.get("ko", ""))
    out["event_date"] = _fmt_day(event_day, lang)
    out["detail"] = _given_detail(out, "VIP 분석 순위 " + (out["rank"] + 1).astype(str) + "위")
    return out[[*AUDIENCE_COLUMNS, "event_name", "event_date"]]


def vip_birthday(clinic, campaign: Campaign, start, end, as_of, lang="ko", candidates=None) -> pd.DataFrame:
    """Birthday greeting, on the birthday, for VIPs whose birthday falls in the period (Feb 29 → Feb 28)."""
    cand = candidates if candidates is not None else source_candidates(clinic, as_of, candidate_source(campaign))
    if cand.empty:
        return _empty()
    out = _ranked(cand)
    p = clinic.tables["patients"]
    birth = pd.Series(p["birth_date"].to_numpy(), index=p["patient_id"]).reindex(out["patient_id"]).to_numpy()
    birth = pd.Series(pd.to_datetime(birth))
    days = []
    for year in range(start.year, end.year + 1):
        leap = pd.Timestamp(year=year, month=1, day=1).is_leap_year
        day = birth.dt.day.where(~((birth.dt.month == 2) & (birth.dt.day == 29)) | leap, 28)
        days.append(pd.to_datetime(pd.DataFrame({"year": year, "month": birth.dt.month, "day": day}), errors="coerce"))
    bday = pd.concat(days, axis=1)
    bday = bday.where((bday >= start) & (bday <= end)).min(axis=1)
    out["send_at"] = _at(bday, campaign.send["time"]).to_numpy()
    out = out[out["send_at"].notna()]
    out = out.assign(detail="VIP 생일 " + _fmt_day(pd.to_datetime(out["send_at"]), "ko"))
    return out.assign(reason="birthday_" + out["reason"].astype(str))[AUDIENCE_COLUMNS]


def recall(clinic, campaign: Campaign, start, end, as_of, lang="ko", candidates=None) -> pd.DataFrame:
    """Recall of lapsed-but-recoverable patients, on ``send.day_of_month``."""
    cand = candidates if candidates is not None else source_candidates(clinic, as_of, candidate_source(campaign))
    if cand.empty:
        return _empty()
    out = _ranked(cand)
    out["send_at"] = _at(_day_of_month(campaign, start, end), campaign.send["time"])
    out["detail"] = _given_detail(out, "재내원 안내 대상 (순위 " + (out["rank"] + 1).astype(str) + "위)")
    return out[AUDIENCE_COLUMNS]


def pregnancy_week(clinic, campaign: Campaign, start, end, as_of, lang="ko", candidates=None) -> pd.DataFrame:
    """Weekly prenatal information on the first day of each gestational week, until any outcome.

    The content names the tests due that week (prenatal schedule), never a diagnosis.
    """
    if not clinic.has("pregnancies"):
        return _empty(("week", "content"))
    schedule = load_prenatal_schedule(campaign.options.get("schedule"))
    weeks = pregnancy_weeks(clinic.tables["pregnancies"], start, end, first_week=schedule["first_week"],
                            last_week=schedule["last_week"])
    if weeks.empty:
        return _empty(("week", "content"))
    out = pd.DataFrame({"patient_id": weeks["patient_id"].astype(str), "recipient_id": weeks["patient_id"].astype(str),
                        "send_at": _at(weeks["week_start"], campaign.send["time"]),
                        "reason": "gestational_week_" + weeks["week"].astype(str), "rank": np.arange(len(weeks)),
                        "week": weeks["week"].astype(str), "content": prenatal_content(weeks["week"], schedule, lang)})
    out["detail"] = "임신 " + out["week"] + "주차 (분만예정일 " + weeks["due_date"].dt.strftime("%Y-%m-%d") + ")"
    return out[[*AUDIENCE_COLUMNS, "week", "content"]]


def infant_vaccination(clinic, campaign: Campaign, start, end, as_of, lang="ko", candidates=None) -> pd.DataFrame:
    """Vaccination reminders for children, sent to the guardian, ``days_before`` each dose's window; doses the
    ``vaccinations`` table shows as given by `as_of` are left out."""
    p = clinic.tables["patients"]
    kids = p.loc[p["guardian_id"].notna().to_numpy() & (p["birth_date"] > start - pd.DateOffset(years=13)).fillna(False)
                 .to_numpy(), ["patient_id", "guardian_id", "birth_date", "sex"]]
    given = clinic.tables.get("vaccinations")
    if given is not None:  # what was known when the plan is made
        given = given.loc[(given["vaccination_date"] < pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1))
                          .fillna(False).to_numpy()]
    due = vaccination_due(kids, start, end, days_before=int(campaign.options.get("days_before", 7)),
                          schedule=campaign.options.get("schedule"), given=given)
    if due.empty:
        return _empty(("vaccines", "due_date", "due_from"))
    g = due.groupby(["patient_id", "send_date"], sort=True)
    per = pd.DataFrame({"vaccines": _joined(due, g, lang, ", "), "due_from": g["due_from"].min(),
                        "detail": "예방접종: " + _joined(due, g, "ko", ", "),
                        "reason": "vaccination_" + _joined(due, g, "vaccine", "+")}).reset_index()
    late = due.loc[due["kind"] == "catch_up"].groupby(["patient_id", "send_date"]).size()
    per["reason"] = per["reason"].where(~per.set_index(["patient_id", "send_date"]).index.isin(late.index),
                                        per["reason"].str.replace("vaccination_", "vaccination_catch_up_", n=1))
    guardian = kids.set_index("patient_id")["guardian_id"].astype(str)
    out = pd.DataFrame({"patient_id": per["patient_id"].astype(str),
                        "recipient_id": guardian.reindex(per["patient_id"]).to_numpy(),
                        "send_at": _at(per["send_date"], campaign.send["time"]), "reason": per["reason"],
                        "rank": np.arange(len(per)), "detail": per["detail"] + " (권장 시기 "
                        + per["due_from"].dt.strftime("%Y-%m-%d") + "부터)", "vaccines": per["vaccines"],
                        "due_date": _fmt_day(per["due_from"], lang), "due_from": per["due_from"]})
    return out[[*AUDIENCE_COLUMNS, "vaccines", "due_date", "due_from"]]


def _joined(frame: pd.DataFrame, groups, column: str, sep: str) -> pd.Series:
    """``groups[column].agg(sep.join)``, without making a Series of each group: a slice of the values per group."""
    number = groups.ngroup().to_numpy(dtype=float)  # a group's rank in key order; NaN where a key is missing
    rows = np.flatnonzero(~np.isnan(number))
    values = frame[column].to_numpy(dtype=object)[rows[np.argsort(number[rows], kind="stable")]]
    size = groups.size()
    ends = np.cumsum(size.to_numpy())
    return pd.Series([sep.join(values[a:b]) for a, b in zip(ends - size.to_numpy(), ends)], index=size.index,
                     dtype=object)


def appointment_reminder(clinic, campaign: Campaign, start, end, as_of, lang="ko", candidates=None) -> pd.DataFrame:
    """Concrete send times for every step (3d / 1d / 2h by default) of the period's booked appointments.

    A step is kept when its time is after the booking, in the period (from the
    start of `start`) and before the appointment. ``days_before`` steps go at
    their ``time``; ``hours_before`` steps are moved up to ``earliest`` (08:00)
    if they would be earlier.
    """
    if not clinic.has("appointments"):
        return _empty(("appt_time", "department"))
    a = clinic.tables["appointments"]
    a = a.loc[(a["status"] == "booked").to_numpy() & (a["scheduled_at"] >= start).to_numpy()
              & (a["scheduled_at"] < end + pd.Timedelta(days=1 + 3)).to_numpy()
              & (a["booked_at"] < as_of + pd.Timedelta(days=1)).to_numpy()]
    ids = pd.DataFrame({"patient_id": a["patient_id"].astype(str), "appointment_id": a["appointment_id"].astype(str),
                        "department": a["department"].astype(object)})  # converted once for every step
    parts = []
    for step in campaign.options.get("steps", []):
        if "days_before" in step:
            at = _at(a["scheduled_at"].dt.normalize() - pd.Timedelta(days=int(step["days_before"])),
                     str(step.get("time", campaign.send["time"])))
        else:
            at = a["scheduled_at"] - pd.Timedelta(hours=float(step["hours_before"]))
            earliest = _at(at.dt.normalize(), str(step.get("earliest", "08:00")))
            at = at.where(at >= earliest, earliest)
        ok = (at > a["booked_at"]) & (at >= start) & (at < end + pd.Timedelta(days=1)) & (at < a["scheduled_at"])
        sub = ids[ok.to_numpy()]
        parts.append(pd.DataFrame({"patient_id": sub["patient_id"], "recipient_id": sub["patient_id"],
                                   "send_at": at[ok.to_numpy()], "reason": "appointment_" + str(step["label"]),
                                   "appointment_id": sub["appointment_id"],
                                   "scheduled_at": a.loc[ok.to_numpy(), "scheduled_at"],
                                   "department": sub["department"]}))
    out = pd.concat(parts, ignore_index=True) if parts else _empty()
    if out.empty:
        return _empty(("appt_time", "department"))
    # by send time, then appointment id: a stable lexsort on the ids' sorted codes sorts no text per row
    id_rank = pd.factorize(out["appointment_id"], sort=True)[0]
    out = out.take(np.lexsort((id_rank, out["send_at"].to_numpy()))).reset_index(drop=True)
    when = out["scheduled_at"]
    out["appt_time"] = _per_value(when, lambda w: _fmt_day(w, lang) + " " + w.dt.strftime("%H:%M"))
    out["department"] = out["department"].fillna("")
    out["rank"] = np.arange(len(out))

    def detail(k: pd.DataFrame) -> pd.Series:  # once per appointment time, department and step
        step = k["reason"].str.replace("appointment_", "", n=1, regex=False)
        return ("예약 " + k["scheduled_at"].dt.strftime("%Y-%m-%d %H:%M") + " " + k["department"].astype(str) + " · "
                + step.str.replace("d", "일", regex=False).str.replace("h", "시간", regex=False) + " 전 알림")

    out["detail"] = _per_row(out[["scheduled_at", "department", "reason"]], detail)
    return out[[*AUDIENCE_COLUMNS, "appt_time", "department"]]


#: Audience name → function.
AUDIENCES: dict[str, Callable[..., pd.DataFrame]] = {
    "vip_event": vip_event,
    "vip_birthday": vip_birthday,
    "recall": recall,
    "pregnancy_week": pregnancy_week,
    "infant_vaccination": infant_vaccination,
    "appointment_reminder": appointment_reminder,
}
