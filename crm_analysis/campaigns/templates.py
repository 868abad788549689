"""Message templates: fields, sample values and vectorised rendering (Korean or English).

A template is text with fields in braces, e.g. ``"{name}님, 임신 {week}주차 안내입니다."``.
The fields every template may use are the sender's (``sender_name``,
``sender_contact``, ``opt_out``) and the recipient's ``name``; each audience adds
its own (:data:`AUDIENCE_FIELDS`). Rendering splits the template once and
concatenates whole columns, so it costs a few vector operations per field, not
a Python call per message.
"""

from __future__ import annotations

import re
from typing import Mapping

import pandas as pd

from crm_analysis.exceptions import CampaignConfigError  # re-exported: its old home

__all__ = ["CampaignConfigError", "COMMON_FIELDS", "AUDIENCE_FIELDS", "SAMPLE_VALUES", "template_fields",
           "render", "render_sample"]

_FIELD = re.compile(r"\{(\w+)\}")


#: Fields every template may use.
COMMON_FIELDS = ("name", "sender_name", "sender_contact", "opt_out")

#: Fields each audience supplies, in addition to :data:`COMMON_FIELDS`.
AUDIENCE_FIELDS: dict[str, tuple[str, ...]] = {
    "vip_event": ("event_name", "event_date"),
    "vip_birthday": (),
    "recall": (),
    "pregnancy_week": ("week", "content"),
    "infant_vaccination": ("vaccines", "due_date"),
    "appointment_reminder": ("appt_time", "department"),
}

#: Values used to render a template once when it is checked.
SAMPLE_VALUES: dict[str, str] = {
    "name": "홍길동", "event_name": "건강 강좌", "event_date": "11월 21일", "week": "12",
    "content": "목덜미 투명대(NT) 초음파 검사 시기입니다.", "vaccines": "DTaP 1차", "due_date": "11월 15일",
    "appt_time": "11월 3일 10:30", "department": "내과",
}


def template_fields(template: str) -> list[str]:
    """Field names used in `template`, in order of first use."""
    return list(dict.fromkeys(_FIELD.findall(template)))


def render(template: str, fields: pd.DataFrame, constants: Mapping[str, str] | None = None) -> pd.Series:
    """Fill `template` for every row of `fields`.

    Parameters
    ----------
    template : str
        Text with ``{field}`` placeholders.
    fields : DataFrame
        One column per row-specific field (converted to text; missing → empty).
    constants : mapping, optional
        Values that are the same for every row (sender name, contact, opt-out).

    Returns
    -------
    Series of str
        Indexed like `fields`.

    Raises
    ------
    CampaignConfigError
        If the template uses a field found in neither `fields` nor `constants`.
    """
    constants = dict(constants or {})
    pieces = _FIELD.split(template)  # literal, field, literal, field, ...
    out = pd.Series(pieces[0], index=fields.index, dtype=object)
    for i in range(1, len(pieces), 2):
        name = pieces[i]
        if name in fields.columns:
            value = fields[name].astype(object).where(fields[name].notna(), "").astype(str)
        elif name in constants:
            value = str(constants[name])
        else:
            raise CampaignConfigError(
                f"template field {{{name}}} is unknown; available: {sorted([*fields.columns, *constants])}. "
                "Fix the spelling or remove the field from the template.")
        out = out + value + pieces[i + 1]
    return out


def render_sample(template: str, constants: Mapping[str, str]) -> str:
    """`template` filled with :data:`SAMPLE_VALUES` and `constants` (for checking rules before a run)."""
    # one text: the same filling as render(), without building columns for it
    values = {**{k: str(v) for k, v in constants.items()}, **SAMPLE_VALUES}
    pieces = _FIELD.split(template)
    out = pieces[0]
    for i in range(1, len(pieces), 2):
        if pieces[i] not in values:
            raise CampaignConfigError(
                f"template field {{{pieces[i]}}} is unknown; available: {sorted([*SAMPLE_VALUES, *constants])}. "
                "Fix the spelling or remove the field from the template.")
        out += values[pieces[i]] + pieces[i + 1]
    return out
