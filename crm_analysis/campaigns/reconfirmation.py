"""Consent reconfirmation notices: the 2-yearly notice that keeps an advertising consent alive.

Korean law (정보통신망법 제50조 제8항, 시행령 제62조의3) requires a sender to tell
every recipient who agreed to advertising, every two years from the consent,
that the consent stands and how to withdraw it. Without the notice the consent
may no longer be relied on, and the planner stops using it once it is
``consent_valid_days`` (730) days old.

:func:`reconfirmation_notices` lists, for a planned period, the patients whose
valid advertising consent on some channel turns ``consent_valid_days`` old in
that period: one notice per patient, sent a month before the earliest such day
(but not before the period starts), by the first of KakaoTalk, SMS and email
on which the consent is valid. The notice is informational, not advertising:
no "(광고)" prefix, and it goes whatever the time of day rules for advertising.
Deceased or moved patients and children under ``min_age_advertising`` get none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.campaigns.templates import render
from crm_analysis.consent import valid_consent
from crm_analysis.contract import CHANNELS
from crm_analysis.features import completed_years

__all__ = ["NOTICE_TEMPLATES", "NOTICE_COLUMNS", "reconfirmation_notices"]

#: The notice, per language; fields: name, sender_name, consent_date, channels, opt_out, sender_contact.
NOTICE_TEMPLATES = {
    "ko": "[{sender_name}] {name}님, {consent_date}에 {channels}(으)로 광고성 정보를 받는 데 동의하셨음을 알려 드립니다"
          " (정보통신망법에 따른 2년마다의 안내). 동의는 그대로 유지되며, 원하지 않으시면 {opt_out}. 문의: {sender_contact}",
    "en": "[{sender_name}] {name}, on {consent_date} you agreed to receive advertising by {channels}; the law asks us to "
          "remind you every two years. Your consent stands; to withdraw it: {opt_out}. Questions: {sender_contact}",
}
_CHANNEL_NAMES = {"kakao": ("카카오톡", "KakaoTalk"), "sms": ("문자", "SMS"), "email": ("이메일", "email")}
#: Columns of :func:`reconfirmation_notices`.
NOTICE_COLUMNS = ["patient_id", "channel", "contact", "send_at", "consent_date", "lapses_on", "channels", "language",
                  "message"]


def _channel_names(lapse: pd.DataFrame, lang: str) -> pd.Series:
    """The channels each row's consent lapses on, by name in `lang` ("카카오톡, 문자"), column by column."""
    names = pd.Series("", index=lapse.index, dtype=object)
    for ch in CHANNELS:
        on = lapse[ch].notna().to_numpy()
        names[on] = names[on] + np.where(names[on] == "", "", ", ") + _CHANNEL_NAMES[ch][lang == "en"]
    return names


def reconfirmation_notices(patients: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, *, rules, sender,
                           time: str = "10:00") -> pd.DataFrame:
    """The consent reconfirmation notices due in ``[start, end]``.

    Parameters
    ----------
    patients : DataFrame
        The patients table (``patient_id`` as text), as known at the planning date.
    start, end : Timestamp
        The period (days, inclusive).
    rules, sender : mapping
        The campaign rules (``consent_valid_days``, ``min_age_advertising``, ``message_lang``) and sender.
    time : str
        ``HH:MM`` of the notices.

    Returns
    -------
    DataFrame
        :data:`NOTICE_COLUMNS`, one row per patient, by send time and patient.
    """
    valid_days = int(rules["consent_valid_days"])
    p = patients.reset_index(drop=True)
    active = ~p["record_status"].astype(object).isin(["deceased", "moved"]).to_numpy() \
        if "record_status" in p else np.ones(len(p), bool)
    adult = ~(completed_years(p["birth_date"], start) < float(rules.get("min_age_advertising", 14))).fillna(False) \
        .to_numpy()
    at = pd.Series(start, index=p.index)
    lapse = pd.DataFrame(index=p.index)
    for ch in CHANNELS:
        ok = valid_consent(p, ch, at, valid_days=valid_days) & active & adult
        due = p[f"{ch}_consent_date"] + pd.Timedelta(days=valid_days)
        lapse[ch] = due.where(ok & (due >= start).to_numpy() & (due <= end).to_numpy())
    first = lapse.min(axis=1)
    rows = first.notna().to_numpy()
    if not rows.any():
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c in ("send_at", "consent_date", "lapses_on")
                                          else object) for c in NOTICE_COLUMNS})
    p, lapse, first = p.loc[rows].reset_index(drop=True), lapse.loc[rows].reset_index(drop=True), \
        first[rows].reset_index(drop=True)
    # the channel of the notice: the first with a valid consent (its contact), and the channels it lapses on
    channel = pd.Series(pd.NA, index=p.index, dtype=object)
    contact = pd.Series(pd.NA, index=p.index, dtype=object)
    for ch in CHANNELS:
        address = p["email"] if ch == "email" else p["phone"]
        take = lapse[ch].notna().to_numpy() & address.notna().to_numpy() & channel.isna().to_numpy()
        channel[take] = ch
        contact[take] = address.astype(object).to_numpy()[take]
    keep = channel.notna().to_numpy()
    p, lapse, first = p.loc[keep].reset_index(drop=True), lapse.loc[keep].reset_index(drop=True), \
        first[keep].reset_index(drop=True)
    channel, contact = channel[keep].reset_index(drop=True), contact[keep].reset_index(drop=True)
    consent_date = (first - pd.Timedelta(days=valid_days))
    send = (first - pd.Timedelta(days=30)).where(first - pd.Timedelta(days=30) >= start, start).dt.normalize()
    h, m = (int(x) for x in time.split(":"))
    language = p["language"].astype(object) if "language" in p else pd.Series(None, index=p.index, dtype=object)
    language = language.where(language.isin(["ko", "en"]), rules.get("message_lang", "ko"))
    out = pd.DataFrame({"patient_id": p["patient_id"].astype(str), "channel": channel, "contact": contact,
                        "send_at": send + pd.Timedelta(hours=h, minutes=m), "consent_date": consent_date,
                        "lapses_on": first, "channels": "", "language": language})
    message = pd.Series("", index=out.index, dtype=object)
    for lang in ("ko", "en"):
        sel = (language == lang).to_numpy()
        if not sel.any():
            continue
        names = _channel_names(lapse.loc[sel], lang)
        day = consent_date[sel]
        fields = pd.DataFrame({"name": p.loc[sel, "name"].astype(object).fillna("") if "name" in p else "",
                               "consent_date": (day.dt.strftime("%Y년 %m월 %d일") if lang == "ko"
                                                else day.dt.strftime("%Y-%m-%d")),
                               "channels": names})
        constants = {"sender_name": sender["name"] if lang == "ko" else sender.get("name_en", sender["name"]),
                     "sender_contact": sender["contact"], "opt_out": sender["opt_out"]}
        message[sel] = render(NOTICE_TEMPLATES[lang], fields, constants).to_numpy()
        out.loc[sel, "channels"] = names.to_numpy()
    out["message"] = message
    return out.sort_values(["send_at", "patient_id"], kind="stable").reset_index(drop=True)[NOTICE_COLUMNS]
