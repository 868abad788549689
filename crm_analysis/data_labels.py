"""Labels for values that come from the data: department names, campaign kinds and model terms.

A report in English shows departments by their English names
(``정형외과`` → "Orthopaedics") and model terms as words
(``main_department[피부과]`` → "main department: Dermatology"); a report in
Korean shows the clinic's own names. The names live in
``crm_analysis/labels/departments.yaml``; a department not listed there is
shown as the clinic wrote it (it is data, and still HTML-escaped wherever it
is shown).
"""

from __future__ import annotations

import re

import pandas as pd

from crm_analysis.i18n import LABELS, check_lang

__all__ = ["department_name", "department_names", "term_name", "term_names", "campaign_kind_name"]


def department_name(value: object, lang: str = "ko") -> object:
    """A department as the report in `lang` names it; unknown or missing values are returned unchanged."""
    check_lang(lang)
    if not isinstance(value, str):
        return value
    entry = LABELS.get(f"department_{value.strip()}")
    return entry[lang] if entry else value


def department_names(values: pd.Series, lang: str = "ko") -> pd.Series:
    """:func:`department_name` over a column (a new Series; the input is not modified)."""
    check_lang(lang)
    if lang == "ko":
        return values.copy()
    unique = pd.unique(values.dropna())
    mapping = {v: department_name(v, lang) for v in unique}
    return values.map(lambda v: mapping.get(v, v))


def _level(covariate: str, level: str, lang: str) -> str:
    entry = LABELS.get(f"term_{covariate}_{level}")
    if entry:
        return entry[lang]
    named = department_name(level, lang)
    return named if isinstance(named, str) else level


def term_name(term: object, lang: str = "ko") -> object:
    """A model term (``covariate[level]`` or ``covariate``) in words: ``"주 진료과: 피부과"``."""
    check_lang(lang)
    if not isinstance(term, str):
        return term
    covariate, _, rest = term.partition("[")
    entry = LABELS.get(f"term_{covariate}")
    name = entry[lang] if entry else covariate
    if not rest:
        return name
    return f"{name}: {_level(covariate, rest.rstrip(']'), lang)}"


def term_names(values: pd.Series, lang: str = "ko") -> pd.Series:
    """:func:`term_name` over a column (a new Series)."""
    return values.map(lambda v: term_name(v, lang))


def campaign_kind_name(value: object, lang: str = "ko") -> object:
    """A campaign kind (``RECALL``, ``BIRTHDAY``, a campaign id of the rules) or run (``RECALL-2026-05``) by its
    name in `lang` (``재내원 안내 2026-05``); unknown kinds are returned unchanged."""
    check_lang(lang)
    if not isinstance(value, str):
        return value
    entry = LABELS.get(f"campaign_kind_{value.strip()}")
    if entry:
        return entry[lang]
    kind, dated = re.subn(r"-(\d{4}(?:-\d{2})?)$", "", value.strip())  # a run: RECALL-2026-05
    entry = LABELS.get(f"campaign_kind_{kind}") if dated else None
    return f"{entry[lang]} {value.strip()[len(kind) + 1:]}" if entry else value
