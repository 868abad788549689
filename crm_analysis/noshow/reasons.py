"""Plain-language reasons for an appointment's no-show risk, in Korean or English.

:func:`reason_texts` turns the name of each appointment's main risk feature
(from :meth:`~crm_analysis.noshow.model.NoShowRiskModel.reasons`) and the
appointment's own value of it into a short phrase for the receptionist's
confirmation-call list: ``"이전 노쇼 2회"`` / ``"2 earlier no-shows"``,
``"예약 후 45일 뒤 진료"`` / ``"booked 45 days ahead"``, ``"당일 예약"`` /
``"booked the same day"``, ``"피부과 진료"`` / ``"Dermatology appointment"``,
``"알림 예정: 3일 전·1일 전"`` / ``"reminders planned: 3 days before, 1 day before"`` ...
Texts come from ``crm_analysis/labels/noshow.yaml``; counts of 0 and 1 have their
own wording, and departments are named in English from
``crm_analysis/labels/departments.yaml`` (:func:`crm_analysis.data_labels.department_name`;
one not listed there is shown as the clinic wrote it). The formatting runs once
per distinct value, not per appointment.
"""

from __future__ import annotations

import pandas as pd

from crm_analysis.i18n import check_lang, label

__all__ = ["reason_texts"]


def _count_text(key: str, n: int, lang: str) -> str:
    if n in (0, 1):
        try:
            return label(f"{key}_{'zero' if n == 0 else 'one'}", lang)
        except KeyError:
            pass
    return label(key, lang).format(n=n)


def _department_text(value, lang: str) -> str:
    from crm_analysis.data_labels import department_name

    if pd.isna(value) or str(value) in ("", "unknown"):
        return label("noshow_reason_department_unknown", lang)
    return label("noshow_reason_department", lang).format(value=department_name(str(value), lang))


def _reminder_text(value, lang: str) -> str:
    plan = str(value)
    if plan in ("none", "nan", ""):
        return label("noshow_reason_reminder_none", lang)
    if plan in ("pilot", "sent"):
        return label(f"noshow_reason_reminder_{plan}", lang)
    if plan.startswith("from "):  # a roll-out that names no schedule
        return label("noshow_reason_reminder_from", lang).format(date=plan[5:])
    steps = [_level_text("noshow_step", step, lang) for step in plan.split("+")]
    return label("noshow_reason_reminder", lang).format(value=("·" if lang == "ko" else ", ").join(steps))


def _level_text(prefix: str, value: str, lang: str) -> str:
    try:
        return label(f"{prefix}_{value}", lang)
    except KeyError:
        return value


def _texts_for(feature: str, values: pd.Series, lang: str) -> pd.Series:
    """The phrase of `feature` for each of `values` (the appointment's column value)."""
    if feature in ("lead", "prior_no_shows", "prior_cancellations"):
        fmt = {v: _count_text(f"noshow_reason_{feature}", max(int(v), 0), lang) for v in values.unique()}
    elif feature == "age":
        fmt = {v: (label("noshow_reason_age", lang).format(n=int(v)) if pd.notna(v)
                   else label("noshow_reason_age_unknown", lang)) for v in values.unique()}
    elif feature == "weekday":
        fmt = {v: label("noshow_reason_weekday", lang).format(value=_level_text("noshow_weekday", str(v), lang))
               for v in values.unique()}
    elif feature == "hour":
        fmt = {v: label("noshow_reason_hour", lang).format(value=_level_text("noshow_hour", str(v), lang))
               for v in values.unique()}
    elif feature == "department":
        fmt = {v: _department_text(v, lang) for v in values.unique()}
    elif feature == "first_visit":
        fmt = {v: label("noshow_reason_first_visit", lang) for v in values.unique()}
    elif feature == "reminder":
        fmt = {v: _reminder_text(v, lang) for v in values.unique()}
    else:
        fmt = {v: label("noshow_reason_other", lang).format(value=feature) for v in values.unique()}
    return values.map(fmt)


_COLUMN = {"lead": "lead_days", "prior_no_shows": "prior_no_shows", "prior_cancellations": "prior_cancellations",
           "age": "age", "weekday": "weekday", "hour": "hour_band", "department": "department",
           "first_visit": "first_visit", "reminder": "reminder_plan"}


def reason_texts(table: pd.DataFrame, feature: pd.Series, lang: str = "ko") -> pd.Series:
    """The phrase naming each appointment's main risk feature and its value.

    Parameters
    ----------
    table : DataFrame
        From :func:`~crm_analysis.noshow.features.noshow_table`.
    feature : Series
        Aligned with `table`: the feature name (a key of
        :data:`~crm_analysis.noshow.features.FEATURE_COLUMNS`, another model term, or missing when no
        feature raises the risk above average).
    lang : {"ko", "en"}

    Returns
    -------
    Series of str
        Indexed like `table`, named ``risk_reason``.
    """
    check_lang(lang)
    out = pd.Series(label("noshow_reason_none", lang), index=table.index, name="risk_reason", dtype=object)
    names = feature.to_numpy(dtype=object)
    for name in pd.unique(names[pd.notna(names)]):
        rows = names == name
        column = _COLUMN.get(name)
        if column is None or column not in table:  # a term of a custom formula: its name
            out.loc[rows] = label("noshow_reason_other", lang).format(value=str(name))
            continue
        values = table.loc[rows, column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        out.loc[rows] = _texts_for(name, values, lang).to_numpy()
    return out.astype(str)
