"""Combine the campaigns of one period into a compliant send plan.

:func:`plan_campaigns` runs, for the period after `as_of` (by default the
rest of the month that starts the day after `as_of`; for a month-end `as_of`
the whole next month):

1. each campaign's audience (:mod:`crm_analysis.campaigns.audiences`);
2. exclusions: deceased or moved patients and recipients, children under
   ``min_age_advertising`` for advertising, the suppression list;
3. the send time: the campaign's time, moved into its window; advertising to
   patients without night consent is kept inside 08:00–21:00;
4. the channel: the first of the campaign's channels with a contact, no
   opt-out, not suppressed and, for advertising, a valid consent; one message
   per contact per day for family campaigns;
5. the holdout, among those who could be sent a message: advertising
   campaigns (recall, VIP, birthday) split them deterministically
   (:mod:`~crm_analysis.campaigns.holdout`); the assignment is kept, holdout
   patients never reach the send list, and get no advertising from the
   period's other campaigns either (it would blur what the holdout measures);
6. capacity (VIP event): the best-ranked ``capacity`` patients of the sent
   arm, so no seat goes to someone who may not be invited;
7. rendering in each recipient's language (``patients.language``, else the
   rules' ``message_lang``, Korean), never the report's; each message's type
   (SMS, LMS, 알림톡, 친구톡, email) and cost
   (:mod:`~crm_analysis.campaigns.message_types`);
8. across campaigns one message per recipient per day (lowest ``priority``
   wins, cap-exempt reminders aside); then the per-campaign and the overall
   monthly caps (the overall cap also counts messages of the contacts log
   already sent that month), and a final compliance check that raises if any
   rule is broken.

Every drop is counted with its reason (:attr:`CampaignPlan.dropped`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from crm_analysis.campaigns.audiences import AUDIENCE_COLUMNS, AUDIENCES, candidate_source, source_candidates
from crm_analysis.campaigns.compliance import assert_compliant, in_daytime
from crm_analysis.consent import night_consent, opted_out, valid_consent
from crm_analysis.campaigns.definitions import Campaign, CampaignConfig, load_campaigns
from crm_analysis.campaigns.holdout import assign_holdout
from crm_analysis.campaigns.message_types import message_costs, message_types
from crm_analysis.campaigns.reconfirmation import reconfirmation_notices
from crm_analysis.campaigns.suppression import SUPPRESSION_COLUMNS, suppression_list
from crm_analysis.campaigns.templates import render
from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.features import completed_years
from crm_analysis.i18n import check_lang
from crm_analysis.sufficiency import require

__all__ = ["CampaignPlan", "plan_campaigns", "plan_period", "SEND_COLUMNS"]

SEND_COLUMNS = ["campaign_id", "run_id", "kind", "patient_id", "recipient_id", "channel", "contact", "send_at",
                "reason", "detail", "message", "message_type", "cost_krw", "language", "priority", "cap_exempt",
                "family", "max_per_month"]
_DROP_COLUMNS = ["campaign_id", "reason", "n"]


@dataclass(frozen=True)
class CampaignPlan:
    """The send plan of one period.

    Attributes
    ----------
    as_of, start, end : Timestamp
        Data date and the period planned (days, inclusive).
    sends : DataFrame
        One row per message (:data:`SEND_COLUMNS`), sorted by send time, campaign, recipient.
    holdout : DataFrame
        Assignment of every audience member of held-out campaigns: ``run_id``,
        ``campaign_id``, ``patient_id``, ``arm``, ``planned_send_at``.
    dropped : DataFrame
        Messages not planned, counted by campaign and reason.
    suppression : DataFrame
        The suppression list used.
    skipped : dict
        Campaign id -> why it was not planned: its audience needs an analysis
        the data cannot support (e.g. recall needs the churn model).
    reconfirmation : DataFrame
        The consent reconfirmation notices due in the period
        (:func:`~crm_analysis.campaigns.reconfirmation.reconfirmation_notices`), with
        ``message_type`` and ``cost_krw``.
    """

    as_of: pd.Timestamp
    start: pd.Timestamp
    end: pd.Timestamp
    sends: pd.DataFrame
    holdout: pd.DataFrame
    dropped: pd.DataFrame
    suppression: pd.DataFrame
    skipped: dict = field(default_factory=dict)
    reconfirmation: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary(self) -> pd.DataFrame:
        """Messages per campaign and channel, holdout size and drops: aggregates only."""
        sent = self.sends.groupby(["campaign_id", "channel"], observed=True).size().unstack(fill_value=0)
        sent["messages"] = sent.sum(axis=1)
        sent["cost_krw"] = self.sends.groupby("campaign_id")["cost_krw"].sum().round(0)
        held = self.holdout.groupby(["campaign_id", "arm"]).size().unstack(fill_value=0)
        dropped = self.dropped.groupby("campaign_id")["n"].sum().rename("not_sent")
        out = sent.join(held.add_prefix("assigned_"), how="outer").join(dropped, how="outer")
        return out.astype(float).fillna(0).round(0).astype(np.int64).rename_axis("campaign_id").reset_index()

    def _repr_html_(self) -> str:
        return (f"<h4>Campaign plan {self.start:%Y-%m-%d} – {self.end:%Y-%m-%d} (data as of {self.as_of:%Y-%m-%d})"
                f"</h4><p>{len(self.sends):,} messages</p>" + self.summary().to_html(index=False)
                + f"<p>{escape('aggregates only')}</p>")


def plan_period(as_of) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Default period: from the day after `as_of` to the end of that day's month."""
    start = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    return start, start + pd.offsets.MonthEnd(0)


def _stable_order(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The row order of ``frame.sort_values(columns, kind="stable")`` (missing values last).

    Each column is replaced by the sorted codes of its distinct values, so 10^5 text ids are compared once per
    distinct id, not at every step of a sort.
    """
    keys = []
    for name in reversed(columns):  # np.lexsort sorts by its last key first
        codes, uniques = pd.factorize(frame[name], sort=True)
        keys.append(np.where(codes < 0, len(uniques), codes))
    return np.lexsort(keys) if keys else np.arange(len(frame))


def _drops(df: pd.DataFrame, mask, reason: str) -> pd.DataFrame:
    mask = np.asarray(mask, bool)
    if not mask.any():
        return pd.DataFrame(columns=_DROP_COLUMNS)
    ids, n = np.unique(df["campaign_id"].to_numpy()[mask], return_counts=True)
    return pd.DataFrame({"campaign_id": ids, "reason": reason, "n": n.astype(np.int64)})[_DROP_COLUMNS]


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _into_window(at: pd.Series, window: tuple[str, str]) -> pd.Series:
    """Move times before the window to its start, after it to the next day's start."""
    day = at.dt.normalize()
    lo, hi = _minutes(window[0]), _minutes(window[1])
    minute = at.dt.hour * 60 + at.dt.minute
    start = day + pd.to_timedelta(lo, unit="min")
    return at.where(minute >= lo, start).where(minute < hi, start + pd.Timedelta(days=1))


def plan_campaigns(clinic, as_of, *, config: str | Mapping | CampaignConfig | None = None, lang: str = "ko",
                   start=None, end=None, candidates: Mapping[str, pd.DataFrame] | None = None) -> CampaignPlan:
    """Plan every configured campaign for the period after `as_of`.

    Parameters
    ----------
    clinic : ClinicData
        Use ``clinic.snapshot(as_of)`` so nothing after `as_of` is seen.
    as_of : date-like
        The data date (explicit; never today).
    config : path, dict or CampaignConfig, optional
        Override of the shipped campaign definitions (:func:`load_campaigns`).
    lang : {"ko", "en"}
        Language of the reasons given for campaigns left out (:attr:`CampaignPlan.skipped`). Messages
        follow each recipient's own language, not this.
    start, end : date-like, optional
        The period (default :func:`plan_period`).
    candidates : mapping of str to DataFrame, optional
        Ready audiences by audience name (``vip_event``, ``vip_birthday``,
        ``recall``): ``patient_id``, ``reason``, best first.

    Returns
    -------
    CampaignPlan

    Raises
    ------
    CampaignConfigError
        For an invalid configuration or template, or (never expected) if the
        plan would break a messaging rule.
    """
    lang = check_lang(lang)
    cfg = load_campaigns(config)
    as_of = pd.Timestamp(as_of).normalize()
    d_start, d_end = plan_period(as_of)
    start = pd.Timestamp(start).normalize() if start is not None else d_start
    end = pd.Timestamp(end).normalize() if end is not None else d_end
    if start <= as_of:
        raise ValueError(f"the period must start after as_of ({as_of:%Y-%m-%d}); got start {start:%Y-%m-%d}")
    require("campaign_plan", clinic, as_of)
    # the patients with text ids, made once: every campaign, the compliance check and the notices look them up
    patients = clinic.tables["patients"]
    patients = patients.assign(patient_id=patients["patient_id"].astype(str))
    people = _People(patients)
    if clinic.has("contacts"):
        supp = suppression_list(clinic.tables["contacts"], clinic.tables["visits"], as_of, rules=cfg.suppression)
    else:
        supp = pd.DataFrame(columns=SUPPRESSION_COLUMNS)
    candidates = dict(candidates or {})
    frames, holdouts, drops, skipped = [], [], [], {}
    made = {}  # candidate lists by source: the VIP event and birthday campaigns share one
    for camp in cfg.campaigns:
        try:
            cand = candidates.get(camp.audience)
            source = candidate_source(camp)
            if cand is None and source is not None:
                if source not in made:
                    made[source] = source_candidates(clinic, as_of, source)
                cand = made[source]
            aud = AUDIENCES[camp.audience](clinic, camp, start, end, as_of, "ko", candidates=cand)
        except InsufficientDataError as err:  # this campaign's audience needs more data; plan the others
            skipped[camp.id] = err.reason_in(lang)
            continue
        if aud.empty:
            continue
        aud = aud.assign(campaign_id=camp.id, run_id=camp.run_id(start)).reset_index(drop=True)
        aud["recipient_id"] = aud["recipient_id"].astype(object)

        def english(camp=camp, cand=cand) -> pd.DataFrame:  # the same audience, its text in English
            return AUDIENCES[camp.audience](clinic, camp, start, end, as_of, "en", candidates=cand).reset_index(
                drop=True)

        frames.append(_one_campaign(aud, camp, cfg, people, supp, start, end, holdouts, drops, english))
    sends = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else \
        pd.DataFrame(columns=SEND_COLUMNS)
    holdout = pd.concat(holdouts, ignore_index=True) if holdouts else pd.DataFrame(
        columns=["run_id", "campaign_id", "patient_id", "arm", "planned_send_at"])
    # a patient held out of one campaign gets no advertising from the others either: it would blur what the
    # holdout measures
    held = holdout.loc[holdout["arm"] == "holdout", "patient_id"].astype(str)
    elsewhere = np.zeros(len(sends), bool)
    if len(sends):
        ad = (sends["kind"] == "advertising").to_numpy()
        elsewhere[ad] = sends.loc[ad, "recipient_id"].astype(str).isin(held).to_numpy()
    drops.append(_drops(sends, elsewhere, "held_out_of_another_campaign"))
    sends = sends.loc[~elsewhere]
    prior = _sent_this_month(clinic, as_of, start)
    sends = _across_campaigns(sends, cfg, drops, prior)
    sends = sends.take(_stable_order(sends, ["send_at", "campaign_id", "recipient_id", "patient_id"]))
    sends = sends.reset_index(drop=True)[SEND_COLUMNS]
    holdout = holdout.sort_values(["run_id", "patient_id"], kind="stable").reset_index(drop=True)
    dropped = pd.concat([d for d in drops if len(d)], ignore_index=True) if any(len(d) for d in drops) else \
        pd.DataFrame(columns=_DROP_COLUMNS)
    dropped = dropped.groupby(["campaign_id", "reason"], as_index=False)["n"].sum()
    assert_compliant(sends, patients, cfg, holdout)
    notices = reconfirmation_notices(patients, start, end, rules=cfg.rules, sender=cfg.sender)
    notices["message_type"] = message_types(notices["message"], notices["channel"],
                                            pd.Series("transactional", index=notices.index))
    notices["cost_krw"] = message_costs(notices["message_type"], cfg.message_cost_krw)
    return CampaignPlan(as_of=as_of, start=start, end=end, sends=sends, holdout=holdout, dropped=dropped,
                        suppression=supp, skipped=skipped, reconfirmation=notices)


class _People:
    """The patients table looked up by text id: positions instead of one reindexed copy per use."""

    def __init__(self, patients: pd.DataFrame):
        self.table = patients
        self.index = pd.Index(patients["patient_id"].to_numpy(dtype=object))
        self.inactive = patients["record_status"].astype(object).isin(["deceased", "moved"]).to_numpy()

    def positions(self, ids: pd.Series) -> np.ndarray:
        """Row of each id in the table, -1 where unknown or missing."""
        return self.index.get_indexer(ids)

    def rows(self, pos: np.ndarray) -> pd.DataFrame:
        """The rows at `pos` (all known), indexed 0..n-1; only the columns the rules read are copied."""
        t = self.table
        return pd.DataFrame({c: t[c].array.take(pos) for c in t.columns
                             if c in _RECIPIENT_COLUMNS or c.startswith(_CONSENT_PREFIXES)},
                            index=pd.RangeIndex(len(pos)))


#: What the planner reads of a recipient: contacts, language, name, and the consent, opt-out and night-time
#: consent columns (by their prefixes).
_RECIPIENT_COLUMNS = ("email", "phone", "language", "name")
_CONSENT_PREFIXES = ("kakao_", "sms_", "email_", "night_ad_")


def _one_campaign(aud: pd.DataFrame, camp: Campaign, cfg: CampaignConfig, people: _People, supp: pd.DataFrame,
                  start: pd.Timestamp, end: pd.Timestamp, holdouts: list, drops: list,
                  english: Callable[[], pd.DataFrame] | None = None) -> pd.DataFrame:
    """One campaign's sends, every rule applied; `english()`: the same audience with its text fields in English
    (asked for only when a recipient reads English).

    Eligibility (status, age, suppression, send time, channel with consent, household) comes first, so the
    holdout is drawn from patients who could be sent a message and the VIP event's seats are filled, in rank
    order, only by patients who may be invited.
    """
    rules = cfg.rules
    aud = aud.assign(_row=np.arange(len(aud)))
    pos_p = people.positions(aud["patient_id"])
    same = (aud["recipient_id"].astype(object) == aud["patient_id"].astype(object)).to_numpy(dtype=bool)
    pos_r = pos_p.copy()
    pos_r[~same] = people.positions(aud.loc[~same, "recipient_id"])
    gone = (pos_r < 0) | np.where(pos_r >= 0, people.inactive[pos_r], False) \
        | np.where(pos_p >= 0, people.inactive[pos_p], False) | pd.isna(aud["recipient_id"]).to_numpy()
    drops.append(_drops(aud, gone, "inactive_or_unknown"))
    aud, pos_r = aud.loc[~gone].reset_index(drop=True), pos_r[~gone]
    if camp.advertising:
        birth = people.table["birth_date"].take(pos_r).reset_index(drop=True)
        child = (completed_years(birth, start) < float(rules.get("min_age_advertising", 14))).fillna(False).to_numpy()
        drops.append(_drops(aud, child, "under_age"))
        aud, pos_r = aud.loc[~child].reset_index(drop=True), pos_r[~child]
        blocked = supp.loc[(supp["scope"] == "advertising") & (supp["channel"] == "all"), "patient_id"]
        sup = aud["recipient_id"].isin(blocked).to_numpy()
        drops.append(_drops(aud, sup, "suppressed_no_engagement"))
        aud, pos_r = aud.loc[~sup].reset_index(drop=True), pos_r[~sup]
    # send time inside the campaign window
    at = _into_window(pd.to_datetime(aud["send_at"]), camp.send["window"])
    rec = people.rows(pos_r)
    if camp.advertising:
        night = ~in_daytime(at, rules) & ~night_consent(rec, at)
        at = at.where(~night, _into_window(at, (rules["day_start"], rules["day_end"])))
    aud["send_at"] = at
    late = (at >= end + pd.Timedelta(days=1)).to_numpy()  # moved past the period by a window
    drops.append(_drops(aud, late, "outside_period"))
    aud = aud.loc[~late].reset_index(drop=True)
    rec = rec.loc[~late].reset_index(drop=True)
    at = aud["send_at"]
    # channel: first in order with contact, no opt-out, not suppressed, consent for advertising
    hard = supp.loc[supp["scope"] == "all"]
    recipient = aud["recipient_id"].astype(str)
    channel = np.full(len(aud), pd.NA, dtype=object)
    contact = np.full(len(aud), pd.NA, dtype=object)
    for ch in camp.channels:
        address = rec["email"] if ch == "email" else rec["phone"]
        ok = address.notna().to_numpy() & ~opted_out(rec, ch, at)
        ok &= ~recipient.isin(hard.loc[hard["channel"].astype(str) == ch, "patient_id"].astype(str)).to_numpy()
        if camp.advertising:
            ok &= valid_consent(rec, ch, at, valid_days=int(rules["consent_valid_days"]))
        take = ok & pd.isna(channel)
        channel[take] = ch
        contact[take] = address.astype(object).to_numpy()[take]
    no_channel = pd.isna(channel)
    drops.append(_drops(aud, no_channel, "no_consent_or_channel" if camp.advertising else "no_channel"))
    language = rec["language"].astype(object) if "language" in rec else pd.Series(None, index=rec.index, dtype=object)
    aud = aud.assign(channel=channel, contact=contact, name=rec["name"].astype(object).to_numpy(),
                     language=language.where(language.isin(["ko", "en"]), rules.get("message_lang", "ko")).to_numpy())
    aud = aud.loc[~no_channel].reset_index(drop=True)
    if camp.family:
        day = aud["send_at"].dt.normalize()
        dup = aud.assign(day=day).sort_values(["day", "rank"], kind="stable").duplicated(["contact", "day"])
        dup = dup.reindex(aud.index).to_numpy()
        drops.append(_drops(aud, dup, "same_household"))
        aud = aud.loc[~dup].reset_index(drop=True)
    if camp.holdout_share > 0:  # drawn among those who could be sent a message
        aud = assign_holdout(aud, aud["run_id"].iloc[0] if len(aud) else camp.run_id(start), camp.holdout_share)
        if "capacity" in camp.options:
            # capacity counts sent invitations; the holdout is drawn from the same top of the ranking
            cap = int(camp.options["capacity"])
            aud = aud.sort_values("rank", kind="stable").reset_index(drop=True)
            is_sent = (aud["arm"] == "sent").astype(np.int64)
            keep = (is_sent.cumsum() - is_sent) < cap  # up to and including the cap-th sent invitation
            drops.append(_drops(aud, ~keep.to_numpy(), "over_capacity"))
            aud = aud.loc[keep.to_numpy()].reset_index(drop=True)
        holdouts.append(pd.DataFrame({"run_id": aud["run_id"], "campaign_id": camp.id, "patient_id": aud["patient_id"],
                                      "arm": aud["arm"], "planned_send_at": aud["send_at"]}))
        held = (aud["arm"] == "holdout").to_numpy()
        drops.append(_drops(aud, held, "holdout"))
        aud = aud.loc[~held].reset_index(drop=True)
    aud = _in_own_language(aud, english)
    aud["message"] = _render(aud, camp, cfg)
    aud["message_type"] = message_types(aud["message"], aud["channel"], pd.Series(camp.kind, index=aud.index))
    aud["cost_krw"] = message_costs(aud["message_type"], cfg.message_cost_krw)
    return aud.drop(columns="_row").assign(kind=camp.kind, priority=camp.priority, cap_exempt=camp.cap_exempt,
                                           family=camp.family, max_per_month=camp.max_per_month)


def _in_own_language(aud: pd.DataFrame, english: Callable[[], pd.DataFrame] | None) -> pd.DataFrame:
    """The audience's text fields in English for the rows whose recipient reads English."""
    rows = (aud["language"] == "en").to_numpy()
    if english is None or not rows.any():
        return aud
    english = english()
    fields = [c for c in english.columns if c not in AUDIENCE_COLUMNS and c in aud.columns]
    aud = aud.copy()
    for name in fields:
        aud.loc[rows, name] = english[name].to_numpy()[aud.loc[rows, "_row"].to_numpy()]
    return aud


def _render(aud: pd.DataFrame, camp: Campaign, cfg: CampaignConfig) -> pd.Series:
    """Each message in its recipient's language (:attr:`Campaign.templates`)."""
    out = pd.Series("", index=aud.index, dtype=object)
    for lang in ("ko", "en"):
        rows = (aud["language"] == lang).to_numpy()
        if not rows.any():
            continue
        sender_name = cfg.sender["name"] if lang == "ko" else cfg.sender.get("name_en", cfg.sender["name"])
        constants = {"sender_name": sender_name, "sender_contact": cfg.sender["contact"],
                     "opt_out": cfg.sender["opt_out"]}
        part = aud.loc[rows]
        out[rows] = render(camp.templates[lang], part.assign(name=part["name"].fillna("")), constants).to_numpy()
    return out


def _sent_this_month(clinic, as_of: pd.Timestamp, start: pd.Timestamp) -> pd.Series:
    """Messages already sent (contacts log) per patient in the month the period starts, up to `as_of`."""
    if not clinic.has("contacts"):
        return pd.Series(dtype=np.int64)
    c = clinic.tables["contacts"]
    month_start = start.replace(day=1)
    m = (c["arm"] == "sent").to_numpy() & (c["sent_at"] >= month_start).to_numpy() \
        & (c["sent_at"] < as_of + pd.Timedelta(days=1)).to_numpy()
    return c.loc[m, "patient_id"].astype(str).value_counts()


def _across_campaigns(sends: pd.DataFrame, cfg: CampaignConfig, drops: list,
                      prior: pd.Series | None = None) -> pd.DataFrame:
    if sends.empty:
        return sends
    # recipients as integer codes: the duplicate and cap counts group 10^5 rows by them
    s = sends.assign(day=sends["send_at"].dt.normalize(), month=sends["send_at"].dt.to_period("M"),
                     _recipient=pd.factorize(sends["recipient_id"])[0])
    s = s.take(_stable_order(s, ["priority", "send_at", "campaign_id", "rank"]))
    capped = ~s["cap_exempt"].astype(bool)
    same_day = capped & s.duplicated(["_recipient", "day", "cap_exempt"])
    drops.append(_drops(s, same_day.to_numpy(), "lower_priority_same_day"))
    s = s.loc[~same_day.to_numpy()]
    n_camp = s.groupby(["campaign_id", "_recipient", "month"], observed=True).cumcount() + 1
    over_camp = (n_camp > s["max_per_month"]).to_numpy()
    drops.append(_drops(s, over_camp, "campaign_cap"))
    s = s.loc[~over_camp]
    capped = ~s["cap_exempt"].astype(bool)
    n_all = s[capped].groupby(["_recipient", "month"], observed=True).cumcount() + 1
    if prior is not None and len(prior):
        first_month = s["send_at"].min().to_period("M")
        same = (s.loc[capped, "month"] == first_month).to_numpy()
        n_all = n_all + same * prior.reindex(s.loc[capped, "recipient_id"].astype(str)).fillna(0).to_numpy(np.int64)
    over = np.zeros(len(s), bool)
    over[capped.to_numpy()] = (n_all > int(cfg.rules["monthly_cap"])).to_numpy()
    drops.append(_drops(s, over, "monthly_cap"))
    return s.loc[~over].drop(columns=["day", "month", "_recipient"])
