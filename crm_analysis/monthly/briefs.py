"""Each analysis' management page: one sentence from the published figures and one next step.

A section of the report opens with its brief, then one figure; the tables and
diagnostics follow in the HTML appendix. The brief reads ``kpis.json``'s
sections (:class:`~crm_analysis.monthly.kpi_result.MonthlyKpis`), so a
figure on a section's page is the figure on page 1. Numbers go through
:func:`crm_analysis.number_format.format_number`; the text is escaped.
"""

from __future__ import annotations

from html import escape

from crm_analysis.i18n import check_lang, label
from crm_analysis.monthly.page_one import base_sentence, effect_sentence
from crm_analysis.number_format import format_number

__all__ = ["BRIEFS", "brief_html", "brief_texts"]

#: The analyses that have a brief: name -> the action (staff list audience) its next step points at.
BRIEFS = {"value": "vip_event", "churn": "recall", "reminders": "appointment_reminder", "campaigns": None}


def _action(sections: dict, audience: str | None) -> dict | None:
    rows = (sections.get("actions") or {}).get("rows") or []
    return next((r for r in rows if r.get("audience") == audience), None)


def _count(value, lang: str, min_count: int) -> str:
    return format_number(value, "count", lang, hidden_below=min_count)


def _value_sentence(sections: dict, lang: str, min_count: int) -> str:
    vip = sections.get("vip", {})
    if not vip.get("available"):
        return label("brief_unavailable", lang)
    return label("brief_value", lang).format(count=_count(vip.get("count"), lang, min_count),
                                             entered=_count(vip.get("entered"), lang, min_count),
                                             left=_count(vip.get("left"), lang, min_count),
                                             qualified=_count(vip.get("qualified"), lang, min_count))


def _reminder_sentence(sections: dict, lang: str, min_count: int) -> str:
    text = effect_sentence(sections, lang)
    share = (sections.get("glance") or {}).get("tiles") or []
    reminded = next((t for t in share if t["key"] == "reminded_share"), None)
    if reminded and reminded.get("this") is not None:
        text = (text + " " if text else "") + label("brief_reminded_share", lang).format(
            share=format_number(reminded["this"], "rate", lang))
    replies = sections.get("replies", {})
    rates = {r["reply"]: r.get("no_show_rate") for r in replies.get("rows") or []}
    if replies.get("available") and replies.get("confirmation_rate") is not None \
            and rates.get("confirmed") is not None and rates.get("none") is not None:
        text = (text + " " if text else "") + label("brief_replies", lang).format(
            rate=format_number(replies["confirmation_rate"], "rate", lang),
            confirmed=format_number(rates["confirmed"], "rate", lang), none=format_number(rates["none"], "rate", lang))
    return text or label("brief_unavailable", lang)


def _campaign_sentence(sections: dict, lang: str, min_count: int) -> str:
    block = sections.get("campaigns", {})
    overall = (block.get("last_12m") or {}).get("overall") if block.get("available") else None
    if not overall or overall.get("lift") is None:
        return label("brief_campaigns_none", lang)
    return label("brief_campaigns", lang).format(lift=format_number(overall["lift"], "pp", lang),
                                                 lo=format_number(overall["ci_low"], "pp", lang),
                                                 hi=format_number(overall["ci_high"], "pp", lang),
                                                 sent=_count(overall.get("n_sent"), lang, min_count))


def brief_texts(sections: dict, name: str, lang: str = "ko", min_count: int = 5) -> tuple[str, str]:
    """The sentence and the next step of analysis `name` (a key of :data:`BRIEFS`)."""
    check_lang(lang)
    if name not in BRIEFS:
        raise ValueError(f"no brief named {name!r}; choose from {sorted(BRIEFS)}")
    sentence = {"value": _value_sentence, "churn": lambda s, l, k: base_sentence(s, l, k)
                or label("brief_unavailable", l), "reminders": _reminder_sentence,
                "campaigns": _campaign_sentence}[name](sections, lang, min_count)
    action = _action(sections, BRIEFS[name])
    main = {"value": "vip", "churn": "churn", "reminders": "reminder_effect", "campaigns": "campaigns"}[name]
    if not sections.get(main, {}).get("available") and action is None:
        return sentence, label("brief_next_unavailable", lang)
    if action is not None:
        n = action.get("recipients") if action.get("recipients") is not None else action.get("rows")
        step = label(f"brief_next_{name}", lang).format(count=_count(n, lang, min_count), file=action["file"])
    else:
        step = label(f"brief_next_{name}_general", lang)
    return sentence, step


def brief_html(sections: dict, name: str, lang: str = "ko", min_count: int = 5) -> str:
    """:func:`brief_texts` as HTML: the sentence, then the next step."""
    sentence, step = brief_texts(sections, name, lang, min_count)
    return (f'<p class="brief"><b>{escape(sentence)}</b></p>\n'
            f'<p class="next-step">{escape(label("brief_next", lang))}: {escape(step)}</p>')
