"""The card index's tables, column-wise, from the month's own models and staff lists.

:func:`card_tables` turns a :class:`~crm_analysis.monthly.month.Month` (its
features, segments, VIP selection, recall table and lifetime-value model,
fitted once by the run) and the month's staff lists into the tables of
:mod:`crm_analysis.profile.card_index`. The card therefore says what the
reports and lists say: a planned message on the card *is* a row of a staff
list, and a child's next vaccination is the one the vaccination message names.

:func:`with_appointments` replaces the upcoming appointments (and the flags and
action that depend on them) from a newer extract: the daily run uses it on the
month's cards.

The card's first line ends with one suggested action (:func:`suggested_actions`),
the first that applies of:

1. ``confirm``: an upcoming appointment with a high no-show risk, not confirmed;
2. ``recall``: on this month's recall list (the churn model's candidates, less the holdout and those
   without consent);
3. ``vaccination``: a child's vaccination message planned this month;
4. ``pregnancy``: an ongoing pregnancy;
5. ``vip``: a VIP;
6. ``appointment``: any upcoming appointment;
7. ``segment``: the segment's own suggestion.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from crm_analysis.consent import opted_out, valid_consent
from crm_analysis.contract import CHANNELS
from crm_analysis.data_labels import department_names

__all__ = ["card_tables", "with_appointments", "suggested_actions", "upcoming_appointments", "HIGH_RISK_DECILE"]

#: Appointments in this risk decile of the training appointments or above count as high risk.
HIGH_RISK_DECILE = 9


def _by_id(frame: pd.DataFrame | pd.Series | None, ids: pd.Index):
    """`frame` (indexed by patient id) reindexed on `ids`; None stays None."""
    if frame is None:
        return None
    out = frame.copy()
    out.index = out.index.astype(str)
    return out.reindex(ids)


def _tail(phones: pd.Series) -> pd.Series:
    digits = phones.astype("string").str.replace(r"\D", "", regex=True)
    return digits.str[-4:].where(digits.str.len() >= 4)


def _when_ko(at: pd.Series) -> pd.Series:
    return (at.dt.month.astype("Int64").astype(str) + "월 " + at.dt.day.astype("Int64").astype(str) + "일 "
            + at.dt.strftime("%H:%M"))


def _when_en(at: pd.Series) -> pd.Series:
    return at.dt.strftime("%d %b %H:%M").str.lstrip("0")


def upcoming_appointments(appointments: pd.DataFrame | None, moment: pd.Timestamp,
                          scores: pd.DataFrame | None = None, replies: pd.Series | None = None) -> pd.DataFrame:
    """Appointments still booked and scheduled at or after `moment`, with their no-show risk.

    Parameters
    ----------
    appointments : DataFrame or None
        The contract's appointments table (as known at `moment`).
    moment : Timestamp
    scores : DataFrame, optional
        :func:`crm_analysis.noshow.score_appointments` output (indexed by ``appointment_id``), in Korean;
        ``risk_reason_en`` is used when present.
    replies : Series, optional
        Appointment id → reply state (``confirmed``, ``cancel_requested``, ``unconfirmed``).

    Returns
    -------
    DataFrame
        The ``appointments`` columns of the card index.
    """
    cols = ["patient_id", "appointment_id", "scheduled_at", "department_ko", "department_en", "noshow_risk",
            "risk_band", "risk_reason_ko", "risk_reason_en", "reply"]
    if appointments is None or appointments.empty:
        return pd.DataFrame(columns=cols)
    a = appointments
    ahead = ((a["status"].astype("object") == "booked").to_numpy()
             & (a["scheduled_at"] >= moment).to_numpy(dtype=bool, na_value=False))
    a = a.loc[ahead]
    out = pd.DataFrame({"patient_id": a["patient_id"].astype(str).to_numpy(),
                        "appointment_id": a["appointment_id"].astype(str).to_numpy(),
                        "scheduled_at": a["scheduled_at"].to_numpy(),
                        "department_ko": department_names(a["department"], "ko").astype(object).to_numpy(),
                        "department_en": department_names(a["department"], "en").astype(object).to_numpy()})
    if scores is not None and len(scores):
        s = scores.copy()
        s.index = s.index.astype(str)
        s = s.reindex(out["appointment_id"])
        decile = pd.to_numeric(s["risk_decile"], errors="coerce").to_numpy()
        band = np.where(decile >= HIGH_RISK_DECILE, "high", np.where(decile >= 6, "medium", "low"))
        out["noshow_risk"] = pd.to_numeric(s["no_show_risk"], errors="coerce").to_numpy()
        out["risk_band"] = np.where(np.isnan(decile), None, band)
        out["risk_reason_ko"] = s["risk_reason"].astype(object).to_numpy()
        out["risk_reason_en"] = (s["risk_reason_en"] if "risk_reason_en" in s else s["risk_reason"]).astype(
            object).to_numpy()
    out["reply"] = None if replies is None else replies.reindex(out["appointment_id"]).astype(object).to_numpy()
    return out.reindex(columns=cols).sort_values(["patient_id", "scheduled_at", "appointment_id"],
                                                 kind="stable").reset_index(drop=True)


def _messages(staff: Iterable) -> pd.DataFrame:
    """One row per staff-list row: who receives it, which list, when, how and what."""
    parts = []
    for lst in staff:
        f = lst.frame
        if f.empty:
            continue
        parts.append(pd.DataFrame({"patient_id": f["환자번호"].astype(str).to_numpy(), "list_name": lst.name,
                                   "kind": lst.audience, "planned_at": pd.to_datetime(f["발송일시"]).to_numpy(),
                                   "channel": f["채널"].astype(object).to_numpy(),
                                   "text": f["메시지"].astype(object).to_numpy(),
                                   "child_id": (f["아이 환자번호"].astype(str).to_numpy() if "아이 환자번호" in f
                                                else None)}))
    cols = ["patient_id", "list_name", "kind", "planned_at", "channel", "text", "child_id"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def _children(patients: pd.DataFrame, as_of: pd.Timestamp, planned: pd.DataFrame,
              given: pd.DataFrame | None) -> pd.DataFrame:
    """Each patient's children with their next vaccinations: the planned message's doses when one is planned
    this month (the same audience function made it), else the next doses of the national schedule."""
    from crm_analysis.profile.context import next_vaccinations

    kids = patients.loc[patients["guardian_id"].notna().to_numpy()]
    cols = ["guardian_id", "patient_id", "name", "birth_date", "due_from", "due_to", "vaccines_ko", "vaccines_en"]
    if kids.empty:
        return pd.DataFrame(columns=cols)
    nxt = next_vaccinations(kids, as_of, given)
    out = pd.DataFrame({"guardian_id": kids["guardian_id"].astype(str).to_numpy(),
                        "patient_id": kids["patient_id"].astype(str).to_numpy(),
                        "name": kids["name"].astype(object).to_numpy() if "name" in kids else None,
                        "birth_date": kids["birth_date"].to_numpy(),
                        "due_from": nxt["due_from"].to_numpy(), "due_to": nxt["due_to"].to_numpy(),
                        "vaccines_ko": nxt["vaccines_ko"].to_numpy(), "vaccines_en": nxt["vaccines_en"].to_numpy()})
    if len(planned):
        # every dose planned this month, in the order of their messages (a catch-up and the next dose may both be)
        g = planned.sort_values(["child_id", "due_from"], kind="stable").groupby("child_id", sort=False)
        first = pd.DataFrame({"due_from": g["due_from"].min(), "due_to": g["due_to"].max(),
                              "vaccines_ko": g["vaccines_ko"].agg("; ".join),
                              "vaccines_en": g["vaccines_en"].agg("; ".join)}).reindex(out["patient_id"])
        have = first["due_from"].notna().to_numpy()
        for c in ("due_from", "due_to", "vaccines_ko", "vaccines_en"):
            out[c] = np.where(have, first[c].to_numpy(), out[c].to_numpy())
    return out


def _planned_vaccinations(month, messages: pd.DataFrame) -> pd.DataFrame:
    """The doses named by this month's vaccination messages, per child: from the planner's own audience."""
    from crm_analysis.campaigns.audiences import infant_vaccination
    from crm_analysis.campaigns.definitions import load_campaigns
    from crm_analysis.campaigns.planner import plan_period

    cols = ["child_id", "due_from", "due_to", "vaccines_ko", "vaccines_en"]
    sent = messages.loc[messages["kind"] == "infant_vaccination"]
    if sent.empty:
        return pd.DataFrame(columns=cols)
    start, end = plan_period(month.as_of)
    rows = []
    for camp in load_campaigns(month.rules.campaigns).campaigns:
        if camp.audience != "infant_vaccination":
            continue
        ko = infant_vaccination(month.clinic, camp, start, end, month.as_of, lang="ko")
        en = infant_vaccination(month.clinic, camp, start, end, month.as_of, lang="en")
        both = ko.assign(vaccines_en=en["vaccines"].to_numpy(), send_day=pd.to_datetime(ko["send_at"]))
        rows.append(both)
    if not rows:
        return pd.DataFrame(columns=cols)
    aud = pd.concat(rows, ignore_index=True)
    # only the doses whose message is on a list (consent, caps and holdouts decide that)
    on_list = pd.MultiIndex.from_arrays([sent["child_id"].astype(str), pd.to_datetime(sent["planned_at"])])
    keep = pd.MultiIndex.from_arrays([aud["patient_id"].astype(str), aud["send_day"]]).isin(on_list)
    aud = aud.loc[keep]
    return pd.DataFrame({"child_id": aud["patient_id"].astype(str).to_numpy(), "due_from": aud["due_from"].to_numpy(),
                         "due_to": pd.NaT, "vaccines_ko": aud["vaccines"].to_numpy(),
                         "vaccines_en": aud["vaccines_en"].to_numpy()})


def _consent_states(patients: pd.DataFrame, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
    """Per channel: ``opted_out``, ``valid`` (may receive advertising) or ``none``."""
    end = pd.Series(as_of + pd.Timedelta(days=1), index=patients.index)
    out = {}
    for ch in CHANNELS:
        valid = np.asarray(valid_consent(patients, ch, end), dtype=bool)
        out_ = np.asarray(opted_out(patients, ch, end), dtype=bool)
        out[ch] = np.where(out_, "opted_out", np.where(valid, "valid", "none"))
    return out


def suggested_actions(cards: pd.DataFrame, appointments: pd.DataFrame, children: pd.DataFrame,
                      messages: pd.DataFrame) -> pd.DataFrame:
    """``action_kind``, ``action_ko`` and ``action_en`` of every card (aligned with `cards`); see the module."""
    ids = cards["patient_id"].astype(str)
    appts = appointments.sort_values(["patient_id", "scheduled_at"], kind="stable")
    first = appts.drop_duplicates("patient_id").set_index("patient_id").reindex(ids)
    risky = appts.loc[(appts["risk_band"] == "high").to_numpy() & (appts["reply"].astype(object) != "confirmed")
                      .to_numpy()].drop_duplicates("patient_id").set_index("patient_id").reindex(ids)
    vacc_msg = messages.loc[messages["kind"] == "infant_vaccination"].sort_values("planned_at", kind="stable")
    kid = children.set_index("patient_id")
    vacc = vacc_msg.drop_duplicates("patient_id").set_index("patient_id").reindex(ids)
    child_name = kid["name"].reindex(vacc["child_id"].astype(object)).fillna("자녀").to_numpy() \
        if len(kid) else np.full(len(ids), "자녀", dtype=object)
    child_vacc_ko = kid["vaccines_ko"].reindex(vacc["child_id"].astype(object)).to_numpy() if len(kid) else None
    child_vacc_en = kid["vaccines_en"].reindex(vacc["child_id"].astype(object)).to_numpy() if len(kid) else None

    risky_at = pd.to_datetime(risky["scheduled_at"])
    first_at = pd.to_datetime(first["scheduled_at"])
    conditions = {
        "confirm": risky["appointment_id"].notna().to_numpy(),
        "recall": cards["recall_candidate"].fillna(0).astype(bool).to_numpy() & cards["elapsed_days"].notna().to_numpy(),
        "vaccination": vacc["child_id"].notna().to_numpy(),
        "pregnancy": cards["pregnancy_week"].notna().to_numpy(),
        "vip": cards["vip"].fillna(0).astype(bool).to_numpy(),
        "appointment": first["appointment_id"].notna().to_numpy(),
    }

    def texts(kind: str, rows: np.ndarray) -> tuple[pd.Series, pd.Series]:
        """The Korean and English texts of `kind` for the cards at positions `rows`: made only for the cards
        that show it (a million cards, each text of each kind, took GiBs of Python strings)."""
        def s(values) -> pd.Series:  # the rows of a card-aligned array, as text ("" for missing)
            values = np.full(len(ids), None, dtype=object) if values is None else np.asarray(values, dtype=object)
            return pd.Series(values[rows]).fillna("").astype(str)

        def t(values: pd.Series) -> pd.Series:  # already the rows, as text
            return values.reset_index(drop=True).astype(object).fillna("").astype(str)

        def number(column: str, rounded: bool) -> pd.Series:
            values = pd.to_numeric(cards[column], errors="coerce").iloc[rows]
            return t((values.round() if rounded else values).astype("Int64").astype(str))

        if kind == "confirm":
            when = risky_at.iloc[rows]
            return ("예약 확인 전화: " + t(_when_ko(when)) + " 예약, 노쇼 위험 높음 (" + s(risky["risk_reason_ko"]) + ")",
                    "Confirm the appointment on " + t(_when_en(when)) + ": high no-show risk ("
                    + s(risky["risk_reason_en"]) + ")")
        if kind == "recall":
            elapsed = number("elapsed_days", rounded=True)
            return ("재내원 안내 대상: 마지막 내원 " + elapsed + "일 전, 예약 권유",
                    "Due for a recall: last visit " + elapsed + " days ago; offer an appointment")
        if kind == "vaccination":
            return ("자녀 예방접종 안내: " + s(child_name) + " " + s(child_vacc_ko) + ", 접종 예약 권유",
                    "Child vaccination due: " + s(child_name) + " " + s(child_vacc_en) + "; offer a booking")
        if kind == "pregnancy":
            week = number("pregnancy_week", rounded=False)
            return "임신 " + week + "주: 다음 검진 일정 안내", "Pregnancy week " + week + ": tell her the next check-up"
        if kind == "vip":
            return (pd.Series("VIP 환자: 감사 인사, 이달 행사·초대 안내", index=range(len(rows))),
                    pd.Series("VIP patient: thank them; mention this month's event and invitations",
                              index=range(len(rows))))
        when = first_at.iloc[rows]  # "appointment"
        return ("예약 안내: " + t(_when_ko(when)) + " " + s(first["department_ko"]),
                "Appointment: " + t(_when_en(when)) + " " + s(first["department_en"]))

    kinds = list(conditions)
    kind = np.select([conditions[k] for k in kinds], kinds, default="segment")
    ko = cards["segment_action_ko"].astype(object).fillna("").to_numpy(dtype=object, copy=True)
    en = cards["segment_action_en"].astype(object).fillna("").to_numpy(dtype=object, copy=True)
    for k in kinds:  # the first condition that holds picks a card's action
        rows = np.flatnonzero(kind == k)
        if len(rows):
            made_ko, made_en = texts(k, rows)
            ko[rows], en[rows] = made_ko.to_numpy(dtype=object), made_en.to_numpy(dtype=object)
    return pd.DataFrame({"action_kind": kind, "action_ko": ko, "action_en": en}, index=cards.index)


def _vip_reasons(vips: pd.DataFrame, ids: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """The selection reason of each selected VIP in both languages (the profile card's own sentences)."""
    from crm_analysis.i18n import label

    cfg = vips.attrs.get("rules", {})
    threshold = float(vips.attrs.get("threshold", np.inf))
    pct = f"{round(cfg.get('top_value_share', 0) * 100, 2):g}"
    chosen = vips.loc[vips["selected"].astype(bool)]
    if "patient_id" in chosen.columns:
        chosen = chosen.set_index(chosen["patient_id"].astype(str))
    out = {}
    for lang in ("ko", "en"):
        money = (lambda v: f"{v:,.0f}원") if lang == "ko" else (lambda v: f"KRW {v:,.0f}")
        top, ref = label("profile_vip_top", lang), label("profile_vip_referral", lang)
        out[lang] = pd.Series([  # the VIPs only: a few hundred rows
            (top if str(r.rule) == "top_value" else ref).format(
                value=money(float(r.value_12m)), threshold=money(threshold), visits=int(r.visits_12m), pct=pct,
                refs=int(getattr(r, "referral_count", 0) or 0), score=money(float(getattr(r, "score", 0) or 0)))
            for r in chosen.itertuples()], index=chosen.index.astype(str), dtype=object)
    return out["ko"].reindex(ids).to_numpy(), out["en"].reindex(ids).to_numpy()


def _pregnancy_weeks(pregnancies: pd.DataFrame | None, ids: pd.Index, as_of: pd.Timestamp):
    from crm_analysis.schedules import gestational_week

    weeks = pd.Series(np.nan, index=ids)
    due = pd.Series(pd.NaT, index=ids, dtype="datetime64[ns]")
    if pregnancies is None or pregnancies.empty:
        return weeks, due
    ongoing = pregnancies.loc[pregnancies["outcome"].isna().to_numpy() & pregnancies["due_date"].notna().to_numpy()]
    w = gestational_week(ongoing["due_date"].to_numpy(), np.full(len(ongoing), as_of))
    ok = (w >= 0) & (w <= 42)
    cur = pd.DataFrame({"patient_id": ongoing["patient_id"].astype(str).to_numpy()[ok], "week": w[ok],
                        "due": ongoing["due_date"].to_numpy()[ok]}).sort_values("due").drop_duplicates(
        "patient_id", keep="last").set_index("patient_id")
    return cur["week"].reindex(ids), cur["due"].reindex(ids)


def card_tables(month, staff: Iterable, *, scores: pd.DataFrame | None = None,
                replies: pd.Series | None = None, models: bool = True) -> dict[str, pd.DataFrame]:
    """The card index's tables for `month` (see :mod:`crm_analysis.profile.card_index`).

    Parameters
    ----------
    month : Month
        The month's data and models; an analysis the data cannot support leaves its card fields empty.
    staff : iterable of StaffList
        The month's staff lists (:func:`crm_analysis.campaigns.staff_lists.staff_lists`): the planned messages.
    scores : DataFrame, optional
        No-show risk of the appointments booked ahead (:func:`crm_analysis.noshow.score_appointments`).
    replies : Series, optional
        Appointment id → reply state.
    models : bool
        False: leave out the return probability and expected value (the churn and lifetime-value models are
        the monthly run's; a card made without them says so).

    Returns
    -------
    dict of str to DataFrame
        ``cards``, ``phones``, ``appointments``, ``messages``, ``children``; and ``notes``: analysis → why
        its fields are empty.
    """
    from crm_analysis.exceptions import CrmAnalysisError
    from crm_analysis.profile.index import PhoneIndex

    clinic, as_of = month.clinic, month.as_of
    p = clinic.tables["patients"]
    ids = pd.Index(p["patient_id"].astype(str).to_numpy(), name="patient_id")
    notes: dict[str, str] = {}

    def attempt(name, compute):
        try:
            return compute()
        except (CrmAnalysisError, ValueError, KeyError) as err:
            notes[name] = getattr(err, "reason", None) or str(err)
            return None

    f = _by_id(attempt("features", lambda: month.features), ids)
    seg = attempt("segments", lambda: month.segments())
    vips = attempt("vips", lambda: month.vips)
    recall = clv = None
    if models:
        recall = _by_id(attempt("churn", lambda: month.recall), ids)
        clv = _by_id(attempt("clv", lambda: month.clv.predict_value()), ids)
    else:
        notes["churn"] = notes["clv"] = "not computed here: the monthly run's models"

    cards = pd.DataFrame({"patient_id": ids.to_numpy(),
                          "name": p["name"].astype(object).to_numpy() if "name" in p else None,
                          "birth_date": p["birth_date"].to_numpy(),
                          "sex": p["sex"].astype(object).to_numpy() if "sex" in p else None,
                          "phone_tail": _tail(p["phone"]).astype(object).to_numpy() if "phone" in p else None})
    if f is not None:
        cards = cards.assign(age=f["age"].to_numpy(), first_visit=f["first_visit_date"].to_numpy(),
                             last_visit=f["last_visit_date"].to_numpy(),
                             last_department_ko=department_names(f["last_department"], "ko").astype(object).to_numpy(),
                             last_department_en=department_names(f["last_department"], "en").astype(object).to_numpy(),
                             visit_days=f["frequency"].to_numpy(), visits_12m=f["visits_12m"].to_numpy(),
                             value_12m=f["value_12m"].to_numpy(), value_lifetime=f["monetary_total"].to_numpy(),
                             past_appointments=f["appointments"].to_numpy(), no_shows=f["no_show_count"].to_numpy())
    rules = {}
    if seg is not None:
        from crm_analysis.value.segmentation import segment_names, segment_rules

        rules = segment_rules(month.rules.segments)
        by_name = {r["name"]: r for r in [*rules["segments"], rules["catch_all"]]}
        key = _by_id(seg.astype(object), ids)
        for lang in ("ko", "en"):
            names = segment_names(month.rules.segments, lang=lang)
            cards[f"segment_{lang}"] = key.map(names).to_numpy()
            action = {n: (r.get("action") or {}) for n, r in by_name.items()}
            text = {n: (a.get(lang, "") if isinstance(a, dict) else str(a)) for n, a in action.items()}
            cards[f"segment_action_{lang}"] = key.map(text).to_numpy()
    for lang in ("ko", "en"):
        cards[f"segment_action_{lang}"] = cards.get(f"segment_action_{lang}", pd.Series("", index=cards.index))
    if vips is not None:
        v = vips.set_index(vips["patient_id"].astype(str)) if "patient_id" in vips.columns else vips
        chosen = pd.Series(v["selected"].astype(bool).to_numpy(), index=v.index.astype(str))
        cards["vip"] = chosen.reindex(ids, fill_value=False).astype(int).to_numpy()
        cards["vip_reason_ko"], cards["vip_reason_en"] = _vip_reasons(vips, ids)
    if recall is not None:
        from crm_analysis.churn import load_churn_rules

        churn_rules = load_churn_rules(month.rules.churn)
        cards = cards.assign(p_return=recall["p_return"].to_numpy(), elapsed_days=recall["elapsed_days"].to_numpy(),
                             usual_interval_days=recall["usual_interval_days"].to_numpy(),
                             overdue=recall["overdue"].astype("boolean").fillna(False).astype(int).to_numpy(),
                             return_horizon_days=int(churn_rules["recall"]["horizon_days"]))
    if clv is not None:
        cards = cards.assign(predicted_value=clv.to_numpy(dtype="float64"),
                             predicted_horizon_days=int(getattr(month.clv, "horizon_days", 365)))
    week, due = _pregnancy_weeks(clinic.tables.get("pregnancies"), ids, as_of)
    cards["pregnancy_week"], cards["due_date"] = week.to_numpy(), due.to_numpy()
    for ch, state in _consent_states(p, as_of).items():
        cards[ch] = state
    night = p["night_ad_consent"] if "night_ad_consent" in p else pd.Series(False, index=p.index)
    cards["night_consent"] = night.astype("boolean").fillna(False).astype(int).to_numpy()

    messages = _messages(staff)
    # a recall is suggested to the patients on the recall list only: not to the holdout, nor without consent
    cards["recall_candidate"] = ids.isin(messages.loc[messages["kind"] == "recall", "patient_id"]).astype(int)
    planned = attempt("vaccinations", lambda: _planned_vaccinations(month, messages))
    children = _children(p, as_of, planned if planned is not None else pd.DataFrame(columns=["child_id"]),
                         clinic.tables.get("vaccinations"))
    phones = PhoneIndex.from_patients(p)
    tables = {"cards": cards, "phones": pd.DataFrame({"phone_key": phones.keys, "patient_id": phones.ids[phones.positions]}),
              "messages": messages, "children": children}
    tables = with_appointments(tables, upcoming_appointments(clinic.tables.get("appointments"),
                                                             as_of + pd.Timedelta(days=1), scores, replies))
    tables["notes"] = notes
    return tables


def with_appointments(tables: dict, appointments: pd.DataFrame) -> dict:
    """`tables` with `appointments` as the upcoming appointments, and the cards' risk flag and action redone."""
    for name in ("recall_candidate", "vip", "elapsed_days", "pregnancy_week", "segment_action_ko",
                 "segment_action_en"):
        if name not in tables["cards"]:
            tables = {**tables, "cards": tables["cards"].assign(**{name: None})}
    cards = tables["cards"].copy()
    high = appointments.loc[(appointments["risk_band"] == "high").to_numpy(), "patient_id"].astype(str)
    cards["high_noshow_risk"] = cards["patient_id"].astype(str).isin(set(high)).astype(int).to_numpy()
    actions = suggested_actions(cards, appointments, tables["children"], tables["messages"])
    cards[["action_kind", "action_ko", "action_en"]] = actions
    return {**tables, "cards": cards, "appointments": appointments}
