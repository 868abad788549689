"""The patient card result: what the front desk sees when a patient calls.

:class:`PatientCard` holds one patient's figures (frozen); it shows as a card
in JupyterLab (``_repr_html_``) and as text (``str(card)`` or
:meth:`PatientCard.to_text`), in Korean or English. :class:`PatientCards` is
the result of one lookup: every patient sharing the phone number (a family),
one card each.

Fields an analysis could not provide are ``None`` and the reason is in
``notes``; they display as "unavailable" with that note, never as a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Iterator, Mapping

import pandas as pd

from crm_analysis.contract import CHANNELS
from crm_analysis.i18n import check_lang, label

__all__ = ["PatientCard", "PatientCards"]


def _day(value) -> str:
    return "" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d}"


def _moment(value) -> str:
    return "" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M}"


def _krw(value, lang: str) -> str:
    if value is None or pd.isna(value):
        return label("profile_unavailable", lang)
    return f"{value:,.0f}원" if lang == "ko" else f"KRW {value:,.0f}"


def _flag(value, lang: str) -> str:
    if value is None or pd.isna(value):
        return "–"
    return label("profile_yes" if bool(value) else "profile_no", lang)


@dataclass(frozen=True, eq=False)
class PatientCard:
    """One patient's card at ``as_of``.

    Attributes
    ----------
    patient_id, name : str
    sex, age_band, record_status : str or None
    age : int or None
        Completed years at ``as_of``.
    first_visit, last_visit : Timestamp or None
    last_department : str or None
        Department of the last visit.
    visit_days, visits_12m : int
        Distinct visit days, all and in the 12 months to ``as_of``.
    value_12m, value_lifetime : float
        Charges (insured + self-pay, KRW) in the last 12 months and in total.
    predicted_value : float or None
        Expected charges over ``predicted_horizon_days`` (lifetime-value model).
    segment : str or None
        RFM segment name; ``segment_ko`` its Korean name, ``segment_action``
        the suggested approach ``{"en": ..., "ko": ...}``, ``rfm`` the scores.
    vip_status : {"selected", "over_capacity", "no"} or None
    vip_reason : dict
        ``{"ko": ..., "en": ...}``: why (or why not) a VIP.
    p_return : float or None
        Probability of returning within ``return_horizon_days`` given the days
        already elapsed (churn model).
    overdue_ratio : float or None
        Days since the last visit divided by the patient's usual interval
        (``elapsed_days``, ``usual_interval_days``); 2 = twice as long as usual.
    recall_candidate : bool or None
    upcoming : DataFrame
        Appointments still ahead: ``appointment_id``, ``scheduled_at``, ``department``.
    past_appointments, no_shows : int
        Appointments scheduled on or before ``as_of``, and how many were no-shows;
        ``last_no_show`` the latest no-show's time.
    consent : DataFrame
        One row per channel (kakao, sms, email): ``consent``, ``consent_date``,
        ``consent_valid`` (given, dated, under 2 years old, not opted out),
        ``opt_out``, ``opt_out_date``.
    night_ad_consent : bool
        Separate consent to advertising at night (``night_ad_consent_date``).
    campaigns : DataFrame
        The last campaigns, newest first: ``campaign_id``, ``sent_at``,
        ``channel``, ``arm``, ``delivered``, ``opened``, ``clicked``,
        ``replied``, ``returned`` (visit within ``campaign_window_days``; missing
        while the window is open) and ``revenue``.
    pregnancy_week : int or None
        Completed weeks of an ongoing pregnancy at ``as_of`` (``due_date``).
    children : DataFrame
        Children with this patient as guardian: ``patient_id``, ``name``,
        ``birth_date``, ``due_from``, ``due_to``, ``vaccines_ko``, ``vaccines_en``
        (the next doses by the national schedule; missing if none).
    notes : dict
        Field → why it is unavailable.
    as_of : Timestamp
    lang : {"ko", "en"}
        Default display language.
    """

    patient_id: str
    name: str | None
    as_of: pd.Timestamp
    sex: str | None = None
    age: int | None = None
    age_band: str | None = None
    record_status: str | None = None
    first_visit: pd.Timestamp | None = None
    last_visit: pd.Timestamp | None = None
    last_department: str | None = None
    visit_days: int = 0
    visits_12m: int = 0
    value_12m: float | None = None
    value_lifetime: float | None = None
    predicted_value: float | None = None
    predicted_horizon_days: int = 365
    segment: str | None = None
    segment_ko: str | None = None
    segment_action: Mapping[str, str] = field(default_factory=dict)
    rfm: str | None = None
    vip_status: str | None = None
    vip_reason: Mapping[str, str] = field(default_factory=dict)
    p_return: float | None = None
    return_horizon_days: int = 180
    overdue_ratio: float | None = None
    elapsed_days: int | None = None
    usual_interval_days: float | None = None
    recall_candidate: bool | None = None
    upcoming: pd.DataFrame = field(default_factory=pd.DataFrame)
    past_appointments: int = 0
    no_shows: int = 0
    last_no_show: pd.Timestamp | None = None
    consent: pd.DataFrame = field(default_factory=pd.DataFrame)
    night_ad_consent: bool = False
    night_ad_consent_date: pd.Timestamp | None = None
    campaigns: pd.DataFrame = field(default_factory=pd.DataFrame)
    campaign_window_days: int = 30
    pregnancy_week: int | None = None
    due_date: pd.Timestamp | None = None
    children: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: Mapping[str, str] = field(default_factory=dict)
    lang: str = "ko"

    # ------------------------------------------------------------------ content
    def sections(self, lang: str | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
        """The card as ``[(section title, [(label, text), ...]), ...]`` in `lang`.

        Both the text and the HTML display are rendered from this.
        """
        lang = check_lang(lang or self.lang)
        L = lambda key, **kw: label(key, lang).format(**kw)  # noqa: E731
        na = L("profile_unavailable")

        def unavailable(part: str) -> str:
            note = self.notes.get(part)
            return f"{na} ({note})" if note else na

        status = ""
        if self.record_status in ("deceased", "moved"):
            status = L(f"profile_status_{self.record_status}")
        sex = L(f"profile_sex_{self.sex}") if self.sex in ("F", "M") else "–"
        who = [(L("profile_sex_age"), f"{sex} · {self.age_band or '–'}")]
        if status:
            who.append((L("profile_record_status"), status))
        last = (f"{_day(self.last_visit)} ({self.last_department or '–'})" if self.last_visit is not None
                else L("profile_no_visit"))
        history = [
            (L("profile_first_visit"), _day(self.first_visit) or "–"),
            (L("profile_last_visit"), last),
            (L("profile_visits"), f"{self.visit_days:,} / {self.visits_12m:,}"),
            (L("profile_value"), f"{_krw(self.value_12m, lang)} / {_krw(self.value_lifetime, lang)}"),
            (L("profile_predicted_value", days=self.predicted_horizon_days),
             _krw(self.predicted_value, lang) if self.predicted_value is not None else unavailable("clv")),
        ]
        if self.segment is not None:
            seg = (self.segment_ko if lang == "ko" and self.segment_ko else self.segment) + (
                f" (RFM {self.rfm})" if self.rfm else "")
            action = self.segment_action.get(lang, "")
        else:
            seg, action = unavailable("segments"), ""
        standing = [(L("profile_segment"), seg)]
        if action:
            standing.append((L("profile_segment_action"), action))
        if self.vip_status is None:
            standing.append((L("profile_vip"), unavailable("vips")))
        else:
            capacity = self.vip_reason.get("capacity", "")
            standing.append((L("profile_vip"), L(f"profile_vip_{self.vip_status}", capacity=capacity)))
            if self.vip_reason.get(lang):
                standing.append((L("profile_vip_reason"), self.vip_reason[lang]))
        if self.p_return is None:
            standing.append((L("profile_return", days=self.return_horizon_days), unavailable("churn")))
        else:
            standing.append((L("profile_return", days=self.return_horizon_days), f"{self.p_return:.0%}"))
            if self.overdue_ratio is not None and pd.notna(self.overdue_ratio):
                standing.append((L("profile_overdue", elapsed=self.elapsed_days, usual=f"{self.usual_interval_days:g}"),
                                 f"{self.overdue_ratio:.1f}"))
            standing.append((L("profile_recall_candidate"), _flag(self.recall_candidate, lang)))

        booking = [(L("profile_upcoming"), row) for row in self._upcoming_lines()] or \
            [(L("profile_upcoming"), L("profile_none"))]
        ns = L("profile_no_show_summary", n=self.no_shows, past=self.past_appointments)
        if self.last_no_show is not None:
            ns += "; " + L("profile_last_no_show", day=_day(self.last_no_show))
        booking.append((L("profile_no_shows"), ns))

        contact = []
        for row in self.consent.itertuples():
            if row.opt_out:
                text = L("profile_opt_out", day=_day(row.opt_out_date) or "–")
            elif row.consent_valid:
                text = L("profile_consent_valid", day=_day(row.consent_date))
            elif row.consent:
                text = L("profile_consent_expired", day=_day(row.consent_date) or "–")
            else:
                text = L("profile_consent_none")
            contact.append((L(f"profile_channel_{row.Index}"), text))
        night = (L("profile_night_yes", day=_day(self.night_ad_consent_date)) if self.night_ad_consent
                 else L("profile_night_no"))
        contact.append((L("profile_channel_night"), night))

        campaigns = [(f"{_day(r.sent_at)} {r.campaign_id}", self._campaign_text(r, lang))
                     for r in self.campaigns.itertuples()] or [(L("profile_campaigns"), L("profile_none"))]

        family = []
        if self.pregnancy_week is not None:
            family.append((L("profile_pregnancy"),
                           L("profile_pregnancy_week", week=self.pregnancy_week, due=_day(self.due_date))))
        for r in self.children.itertuples():
            child = f"{r.name or ''} {r.patient_id}".strip()
            vaccines = getattr(r, f"vaccines_{lang}")
            text = (L("profile_child_next", child=child, birth=_day(r.birth_date), vaccines=vaccines,
                      start=_day(r.due_from), end=_day(r.due_to)) if isinstance(vaccines, str) and vaccines
                    else L("profile_child_none", child=child, birth=_day(r.birth_date)))
            family.append((L("profile_children"), text))
        if len(self.children):
            family.append((L("profile_notes"), L("profile_children_note")))

        out = [("", who), (L("profile_section_history"), history), (L("profile_section_standing"), standing),
               (L("profile_section_booking"), booking), (L("profile_consent"), contact),
               (L("profile_campaigns"), campaigns)]
        if family:
            out.append((L("profile_section_family"), family))
        return out

    def _upcoming_lines(self) -> list[str]:
        return [f"{_moment(r.scheduled_at)} {r.department if pd.notna(r.department) else ''}".strip()
                for r in self.upcoming.itertuples()]

    def _campaign_text(self, r, lang: str) -> str:
        arm = label(f"profile_arm_{r.arm}", lang) if r.arm in ("sent", "holdout") else str(r.arm)
        channel = label(f"profile_channel_{r.channel}", lang) if r.channel in CHANNELS else "–"
        days = self.campaign_window_days
        if pd.isna(r.returned):
            outcome = label("profile_outcome_open", lang)
        else:
            outcome = label("profile_outcome_returned" if r.returned else "profile_outcome_not_returned",
                            lang).format(days=days)
        text = f"{channel}, {arm}: {outcome}"
        if r.arm == "sent":
            text += " — " + label("profile_engagement", lang).format(
                delivered=_flag(r.delivered, lang), opened=_flag(r.opened, lang),
                clicked=_flag(r.clicked, lang), replied=_flag(r.replied, lang))
        return text

    def summary(self) -> pd.DataFrame:
        """The card's key figures as a one-row DataFrame (no display formatting)."""
        keys = ("patient_id", "age_band", "first_visit", "last_visit", "last_department", "visit_days",
                "visits_12m", "value_12m", "value_lifetime", "predicted_value", "segment", "vip_status",
                "p_return", "overdue_ratio", "recall_candidate", "no_shows", "pregnancy_week")
        return pd.DataFrame([{k: getattr(self, k) for k in keys}]).set_index("patient_id")

    # ------------------------------------------------------------------ display
    def _header(self, lang: str) -> str:
        return f"{self.name or ''} [{self.patient_id}]".strip()

    def to_text(self, lang: str | None = None) -> str:
        """The card as plain text for a terminal."""
        lang = check_lang(lang or self.lang)
        head = f"{label('profile_card_title', lang)}: {self._header(lang)} — {label('profile_as_of', lang)} {_day(self.as_of)}"
        lines = [head, "=" * min(len(head) + 4, 80)]
        for title, rows in self.sections(lang):
            if title:
                lines.append(f"[{title}]")
            for name, text in rows:
                lines.append(f"  {name}: {text}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self, lang: str | None = None) -> str:
        lang = check_lang(lang or self.lang)
        parts = [
            '<div style="border:1px solid #bbb;border-radius:8px;padding:8px 12px;margin:6px 0;max-width:760px">',
            f"<h4 style='margin:2px 0 6px 0'>{escape(label('profile_card_title', lang))}: "
            f"{escape(self._header(lang))} <small style='color:#666'>{escape(label('profile_as_of', lang))} "
            f"{_day(self.as_of)}</small></h4>",
            "<table style='border-collapse:collapse'>",
        ]
        for title, rows in self.sections(lang):
            if title:
                parts.append(f"<tr><th colspan='2' style='text-align:left;background:#f3f3f3;padding:3px 6px'>"
                             f"{escape(title)}</th></tr>")
            for name, text in rows:
                parts.append(f"<tr><td style='text-align:left;color:#444;padding:2px 10px 2px 6px'>{escape(name)}</td>"
                             f"<td style='text-align:left;padding:2px 6px'>{escape(text)}</td></tr>")
        parts.append("</table></div>")
        return "".join(parts)

    def __repr__(self) -> str:
        return f"PatientCard({self.patient_id}, as_of={_day(self.as_of)})"


@dataclass(frozen=True, eq=False)
class PatientCards:
    """The result of one lookup: one :class:`PatientCard` per patient found.

    A phone number shared by a family gives several cards. Iterate over it,
    index it (``cards[0]``), or display it whole.

    Attributes
    ----------
    cards : tuple of PatientCard
    as_of : Timestamp
    query : {"phone", "patient_id"}
        How the lookup was made (the number itself is not kept).
    """

    cards: tuple[PatientCard, ...]
    as_of: pd.Timestamp
    query: str
    lang: str = "ko"

    def __len__(self) -> int:
        return len(self.cards)

    def __iter__(self) -> Iterator[PatientCard]:
        return iter(self.cards)

    def __getitem__(self, i: int) -> PatientCard:
        return self.cards[i]

    @property
    def patient_ids(self) -> list[str]:
        """Ids of the patients shown, in card order."""
        return [c.patient_id for c in self.cards]

    def card(self, patient_id: str) -> PatientCard:
        """The card of `patient_id`."""
        for c in self.cards:
            if c.patient_id == patient_id:
                return c
        raise KeyError(f"{patient_id!r} is not among the cards of this lookup: {self.patient_ids}")

    def summary(self) -> pd.DataFrame:
        """Key figures, one row per card."""
        return pd.concat([c.summary() for c in self.cards]) if self.cards else pd.DataFrame()

    def to_text(self, lang: str | None = None) -> str:
        lang = check_lang(lang or self.lang)
        texts = [c.to_text(lang) for c in self.cards]
        if len(texts) > 1:
            texts.insert(0, label("profile_cards_title", lang).format(n=len(texts)))
        return "\n\n".join(texts)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        head = (f"<p><b>{escape(label('profile_cards_title', self.lang).format(n=len(self.cards)))}</b></p>"
                if len(self.cards) > 1 else "")
        return head + "".join(c._repr_html_(self.lang) for c in self.cards)

    def __repr__(self) -> str:
        return f"PatientCards({self.patient_ids}, as_of={_day(self.as_of)}, query={self.query!r})"

