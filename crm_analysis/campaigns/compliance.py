"""Korean messaging rules (정보통신망법 제50조 광고성 정보 전송 규칙), as checks.

Rules enforced (``rules`` section of ``crm_analysis/rules/campaigns.yaml``):

1. **Consent.** An advertising message goes only to a patient with marketing
   consent for that channel, given or reconfirmed less than
   ``consent_valid_days`` (730) days before the send day, and not opted out.
2. **Text.** An advertising message starts with ``(광고)``, carries the sender's
   name and contact, and a free opt-out line (``무료수신거부 080-…``).
3. **Night.** No advertising between ``day_end`` (21:00) and ``day_start``
   (08:00) without a night-time consent (야간 광고 수신동의) given by the send day.
4. **Opt-out.** No message of any kind (appointment reminders included) goes to
   a channel the recipient opted out of.
5. **Frequency cap.** At most ``monthly_cap`` messages per recipient per
   calendar month across all campaigns (appointment reminders exempt), and at
   most each campaign's ``max_per_month``.
6. **Household.** Family campaigns send one message per contact per day.
7. **Holdout.** A patient assigned to a campaign's holdout is never sent it.
8. **No diagnosis.** No message contains a word of ``forbidden_words``.
9. **Status.** Deceased or moved patients are never contacted.

:func:`check_sends` returns every violation as a row; :func:`assert_compliant`
raises. :func:`check_template` runs rule 2 and 8 on a template before anything
is produced.
"""

from __future__ import annotations

import re
from typing import Mapping

import numpy as np
import pandas as pd

from crm_analysis.campaigns.templates import render_sample
from crm_analysis.consent import night_consent, opted_out, valid_consent
from crm_analysis.exceptions import CampaignConfigError

__all__ = ["AD_PREFIX", "in_daytime", "check_text",
           "check_template", "check_sends", "assert_compliant", "VIOLATION_COLUMNS"]

AD_PREFIX = "(광고)"
_OPT_OUT = re.compile(r"무료\s*(?:수신)?\s*거부")
VIOLATION_COLUMNS = ["rule", "campaign_id", "recipient_id", "channel", "send_at", "detail"]


def _minutes(hhmm: str) -> int:
    h, m = str(hhmm).split(":")
    return int(h) * 60 + int(m)


def in_daytime(at: pd.Series, rules: Mapping) -> np.ndarray:
    """Whether each time lies in ``[day_start, day_end)`` (08:00–21:00 by default)."""
    minute = (at.dt.hour * 60 + at.dt.minute).to_numpy()
    return (minute >= _minutes(rules["day_start"])) & (minute < _minutes(rules["day_end"]))


def check_text(text: pd.Series, advertising: np.ndarray, sender: Mapping, rules: Mapping) -> pd.DataFrame:
    """Text rules per message: ``(광고)`` prefix, sender name, contact and opt-out line; no diagnosis.

    Returns
    -------
    DataFrame
        Boolean columns ``no_ad_prefix``, ``no_sender_name``, ``no_sender_contact``,
        ``no_opt_out_line``, ``diagnosis_word`` (True = broken), indexed like `text`.
    """
    text = text.astype(str)
    ad = np.asarray(advertising, bool)
    words = [re.escape(w) for w in rules.get("forbidden_words", [])]
    diagnosis = text.str.contains("|".join(words), case=False).to_numpy(bool) if words else np.zeros(len(text), bool)
    out = pd.DataFrame({name: np.zeros(len(text), bool) for name in
                        ("no_ad_prefix", "no_sender_name", "no_sender_contact", "no_opt_out_line")}, index=text.index)
    out["diagnosis_word"] = diagnosis
    if ad.any():  # the sender and opt-out rules bind advertising only: the other messages are not searched
        t = text[ad]
        names = [sender["name"], sender.get("name_en", sender["name"])]
        has_name = t.str.contains(re.escape(names[0])) | t.str.contains(re.escape(names[1]))
        opt_number = re.sub(r"\D", "", str(sender["opt_out"]))
        digits = t.str.replace(r"\D", "", regex=True)
        has_opt_out = t.str.contains(_OPT_OUT) & digits.str.contains(opt_number, regex=False)
        out.loc[ad, "no_ad_prefix"] = ~t.str.startswith(AD_PREFIX).to_numpy(bool)
        out.loc[ad, "no_sender_name"] = ~has_name.to_numpy(bool)
        out.loc[ad, "no_sender_contact"] = ~t.str.contains(re.escape(str(sender["contact"]))).to_numpy(bool)
        out.loc[ad, "no_opt_out_line"] = ~has_opt_out.to_numpy(bool)
    return out


_TEXT_FIXES = {
    "no_ad_prefix": f"an advertising message must start with '{AD_PREFIX}'",
    "no_sender_name": "an advertising message must name the sender: add {sender_name}",
    "no_sender_contact": "an advertising message must give the sender's contact: add {sender_contact}",
    "no_opt_out_line": "an advertising message must carry a free opt-out line such as '무료수신거부 080-000-0000': "
                       "add {opt_out} (sender.opt_out)",
    "diagnosis_word": "a message must never contain a diagnosis; remove the word(s) listed in rules.forbidden_words",
}


def check_template(campaign_id: str, kind: str, templates: Mapping[str, str], sender: Mapping,
                   rules: Mapping) -> None:
    """Render each language's template with sample values and check the text rules.

    Raises
    ------
    CampaignConfigError
        Naming the campaign, the language and every rule the template breaks.
    """
    constants = {"sender_name": sender["name"], "sender_contact": sender["contact"], "opt_out": sender["opt_out"]}
    texts = pd.Series([render_sample(template, constants) for template in templates.values()], dtype=object)
    checked = check_text(texts, np.full(len(texts), kind == "advertising"), sender, rules)  # all languages at once
    for (lang, template), (_, broken) in zip(templates.items(), checked.iterrows()):
        problems = [_TEXT_FIXES[k] for k, v in broken.items() if v]
        if problems:
            raise CampaignConfigError(f"campaign {campaign_id!r}, template {lang!r} breaks the messaging rules: "
                                      + "; ".join(problems) + f". Template: {template!r}")


def check_sends(sends: pd.DataFrame, patients: pd.DataFrame, config: Mapping,
                holdout: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every rule violation in a send list (empty when compliant).

    Parameters
    ----------
    sends : DataFrame
        The planner's send list: ``campaign_id``, ``run_id``, ``kind``, ``recipient_id``,
        ``patient_id``, ``contact``, ``channel``, ``send_at``, ``message``, ``cap_exempt``,
        ``family``, ``max_per_month``.
    patients : DataFrame
        The patients table (consents, opt-outs, record status).
    config : mapping
        The campaign configuration (``sender``, ``rules``).
    holdout : DataFrame, optional
        Holdout assignment (``run_id``, ``patient_id``, ``arm``).

    Returns
    -------
    DataFrame
        Columns :data:`VIOLATION_COLUMNS`, one row per broken rule per message.
    """
    rules, sender = config["rules"], config["sender"]
    if sends.empty:
        return pd.DataFrame(columns=VIOLATION_COLUMNS)
    s = sends.reset_index(drop=True)
    # positions in the patients table, not a reindexed copy of it: one lookup per id column
    ids = pd.Index(patients["patient_id"])
    rec_pos = ids.get_indexer(s["recipient_id"])
    same = (s["recipient_id"].astype(object) == s["patient_id"].astype(object)).to_numpy(dtype=bool)
    subject_pos = rec_pos.copy()  # most messages are about their recipient: one lookup for both
    subject_pos[~same] = ids.get_indexer(s.loc[~same, "patient_id"])
    rec = pd.DataFrame({c: patients[c].array.take(rec_pos, allow_fill=True) for c in patients.columns
                        if c == "record_status" or c.startswith(("kakao_", "sms_", "email_", "night_ad_"))})
    ad = (s["kind"] == "advertising").to_numpy()
    at = s["send_at"]
    broken: dict[str, np.ndarray] = {}
    consent = np.zeros(len(s), bool)
    out = np.zeros(len(s), bool)
    for channel in ("kakao", "sms", "email"):
        on = (s["channel"] == channel).to_numpy()
        consent |= on & valid_consent(rec, channel, at, valid_days=int(rules["consent_valid_days"]))
        out |= on & opted_out(rec, channel, at)
    broken["ad_without_valid_consent"] = ad & ~consent
    broken["ad_at_night"] = ad & ~in_daytime(at, rules) & ~night_consent(rec, at)
    broken["opted_out_channel"] = out
    status = rec["record_status"].astype(object)
    subject = patients["record_status"].astype(object).to_numpy()[subject_pos]
    subject[subject_pos < 0] = None
    broken["inactive_patient"] = status.isin(["deceased", "moved"]).to_numpy() | pd.Series(subject).isin(
        ["deceased", "moved"]).to_numpy()
    text = check_text(s["message"], ad, sender, rules)
    for col in text.columns:
        broken[col] = text[col].to_numpy()
    month = at.dt.to_period("M")
    keyed = s.assign(month=month, day=at.dt.normalize())
    capped = ~s["cap_exempt"].astype(bool).to_numpy()
    over = np.zeros(len(s), bool)
    if capped.any():
        n_month = keyed.loc[capped].groupby(["recipient_id", "month"], observed=True)["channel"].transform("size")
        over[capped] = n_month.to_numpy() > int(rules["monthly_cap"])
    broken["monthly_cap"] = over
    per_campaign = keyed.groupby(["campaign_id", "recipient_id", "month"], observed=True)["channel"].transform("size")
    broken["campaign_cap"] = (per_campaign > s["max_per_month"]).to_numpy()
    fam = s["family"].astype(bool).to_numpy()
    broken["household_duplicate"] = fam & keyed.duplicated(["campaign_id", "contact", "day"], keep=False).to_numpy()
    if holdout is not None and len(holdout):
        held = holdout.loc[holdout["arm"] == "holdout", ["run_id", "patient_id"]]
        held_key = held["run_id"].astype(str) + "|" + held["patient_id"].astype(str)
        run = s["run_id"].astype(str)
        in_held_run = run.isin(held["run_id"].astype(str)).to_numpy()  # only their rows can match a key
        key = run[in_held_run] + "|" + s.loc[in_held_run, "patient_id"].astype(str)
        broken["holdout_in_send_list"] = np.zeros(len(s), bool)
        broken["holdout_in_send_list"][in_held_run] = key.isin(held_key).to_numpy()
    rows = []
    for rule, mask in broken.items():
        if mask.any():
            hit = s.loc[mask]
            rows.append(pd.DataFrame({"rule": rule, "campaign_id": hit["campaign_id"], "recipient_id": hit["recipient_id"],
                                      "channel": hit["channel"], "send_at": hit["send_at"],
                                      "detail": _TEXT_FIXES.get(rule, rule.replace("_", " "))}))
    if not rows:
        return pd.DataFrame(columns=VIOLATION_COLUMNS)
    return pd.concat(rows, ignore_index=True)[VIOLATION_COLUMNS]


def assert_compliant(sends: pd.DataFrame, patients: pd.DataFrame, config: Mapping,
                     holdout: pd.DataFrame | None = None) -> None:
    """Raise :class:`CampaignConfigError` listing the broken rules if `sends` breaks any."""
    bad = check_sends(sends, patients, config, holdout)
    if len(bad):
        counts = bad.groupby("rule").size().to_dict()
        raise CampaignConfigError(f"the send list breaks the messaging rules: {counts}; nothing was produced")
