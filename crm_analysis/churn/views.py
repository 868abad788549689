"""Display helpers for the churn notebook: localised, rounded, aggregate tables.

Result tables of :mod:`crm_analysis.churn` keep plain English column names
(``median_days``, ``churn_rate``, ...). :func:`churn_view` shows them with
the Korean or English labels of ``crm_analysis/labels/churn.yaml`` (keys
``churn_<column>``), probabilities and rates as percentages, and model names
translated. It never adds rows or columns: what is shown is what the table holds.
"""

from __future__ import annotations

import pandas as pd

from crm_analysis.cells import escaped_style
from crm_analysis.i18n import LABELS, check_lang, label

__all__ = ["churn_view"]

_PERCENT_PREFIXES = ("p_return", "churn_rate", "mean_p_return", "calibration_mae", "calibration_max", "observed",
                     "predicted", "mean_predicted")


def _key(column: str) -> str | None:
    if column.startswith("churn_") and column in LABELS:
        return column
    key = f"churn_{column}"
    return key if key in LABELS else None


def churn_view(table: pd.DataFrame, lang: str = "ko"):
    """A display-ready view of a churn result table.

    Parameters
    ----------
    table : DataFrame
        Any table of :mod:`crm_analysis.churn` (curves, hazard ratios, PH
        test, comparison, back-test, churn or recall counts).
    lang : {"ko", "en"}

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    check_lang(lang)
    shown = table.copy()
    for col in ("model",):
        if col in shown.columns:
            shown[col] = shown[col].map(lambda v: _model(v, lang))
    percent = [c for c in shown.columns if str(c).startswith(_PERCENT_PREFIXES)]
    days = [c for c in shown.columns if c not in percent and "days" in str(c) or str(c).startswith("median_")]
    floats = [c for c in shown.columns if c not in percent and c not in days
              and pd.api.types.is_float_dtype(shown[c].dtype)]
    ints = [c for c in shown.columns if pd.api.types.is_integer_dtype(shown[c].dtype)]
    names = {c: (label(_key(str(c)), lang) if _key(str(c)) else str(c)) for c in shown.columns}
    formats = {**{names[c]: "{:.1%}" for c in percent}, **{names[c]: "{:,.0f}" for c in days},
               **{names[c]: "{:.3f}" for c in floats},
               **{names[c]: "{:,}" for c in ints}}
    view = shown.rename(columns=names)
    styler = escaped_style(view, formats)
    if isinstance(view.index, pd.RangeIndex):
        styler = styler.hide(axis="index")
    return styler


def _model(value, lang: str):
    key = f"churn_model_{value}"
    return label(key, lang) if key in LABELS else value
