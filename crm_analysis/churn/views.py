"""Display helpers for the churn notebook: localised, rounded, aggregate tables.

Result tables of :mod:`crm_analysis.churn` keep plain English column names
(``median_days``, ``churn_rate``, ...). :func:`churn_view` shows them with
the Korean or English labels of ``crm_analysis/labels/churn.yaml`` (keys
``churn_<column>``), probabilities and rates as percentages, and model names
translated. It never adds rows or columns: what is shown is what the table holds.

Counts of 1 to 4 are never shown: the churn and recall tables come suppressed
(:func:`~crm_analysis.churn.definition.churn_by_segment`,
:func:`~crm_analysis.churn.recall.recall_counts`), and :func:`churn_view`
suppresses the return-curve tables (patients, gaps, returns and the gaps
without a return) with :func:`crm_analysis.privacy.suppress_small_counts`,
hiding the medians and return shares of a group with a hidden count.
"""

from __future__ import annotations

import pandas as pd

from crm_analysis.cells import escaped_style, p_value_text
from crm_analysis.data_labels import department_names, term_names
from crm_analysis.i18n import LABELS, check_lang, label
from crm_analysis.privacy import DEFAULT_MIN_COUNT, suppress_small_counts

__all__ = ["churn_view"]

_PERCENT_PREFIXES = ("p_return", "churn_rate", "mean_p_return", "calibration_mae", "calibration_max", "observed",
                     "predicted", "mean_predicted")
#: Columns of the churn tables that count patients, gaps or returns.
_COUNTS = frozenset({"n_patients", "n_gaps", "returns", "patients", "churned", "in_band", "future_appointment",
                     "contacted_recently", "opted_out", "record_status", "candidates", "n"})


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

    Notes
    -----
    Model terms (``main_department[피부과]``) are shown in words, departments by their name in `lang`
    (:mod:`crm_analysis.data_labels`), and the ``definition`` / ``calibration`` columns of
    :func:`~crm_analysis.churn.churn_by_segment`, the same on every row, are left out: the report says them
    once (:func:`~crm_analysis.churn.churn_definition_sentence`).
    """
    check_lang(lang)
    shown = _suppressed_curves(table) if {"n_patients", "n_gaps", "returns"} <= set(table.columns) else table.copy()
    for col in ("model",):
        if col in shown.columns:
            shown[col] = shown[col].map(lambda v: _model(v, lang))
    # values from the data or the model in words: model terms, departments, the total row; the churn rule and its
    # calibration are the same on every row, so they are said once beside the table (churn_definition_sentence)
    for col in ("term", "covariate"):
        if col in shown.columns:
            shown[col] = term_names(shown[col], lang)
    for col in ("group", "segment", "main_department", "department"):
        if col in shown.columns:
            shown[col] = department_names(shown[col], lang).map(
                lambda v: label("churn_total", lang) if v == "total" else v)
    shown = shown.drop(columns=[c for c in ("definition", "calibration") if c in shown.columns])
    percent = [c for c in shown.columns if str(c).startswith(_PERCENT_PREFIXES)]
    days = [c for c in shown.columns if c not in percent and "days" in str(c) or str(c).startswith("median_")]
    p_values = [c for c in shown.columns if str(c) in ("p", "p_value")]
    counts = [c for c in shown.columns if str(c) in _COUNTS and pd.api.types.is_integer_dtype(shown[c].dtype)]
    names = {c: (label(_key(str(c)), lang) if _key(str(c)) else str(c)) for c in shown.columns}
    formats = {**{names[c]: "{:.1%}" for c in percent}, **{names[c]: "{:,.0f}" for c in days},
               **{names[c]: p_value_text for c in p_values}}
    view = shown.rename(columns=names)
    styler = escaped_style(view, formats, lang=lang, counts=[names[c] for c in counts])
    if isinstance(view.index, pd.RangeIndex):
        styler = styler.hide(axis="index")
    return styler


def _suppressed_curves(table: pd.DataFrame, min_count: int = DEFAULT_MIN_COUNT) -> pd.DataFrame:
    """A return-curve table with small counts hidden, and the medians and return shares of their groups.

    Each group's gaps are its returns plus the gaps without one, and the groups' gaps add up to
    every gap (the same total in the table by segment and by department), so both the rows and the
    columns are additive; patients are suppressed down their column.
    """
    out = table.assign(no_return=table["n_gaps"] - table["returns"])
    out = suppress_small_counts(out, ["returns", "no_return", "n_gaps"], min_count, total_column="n_gaps")
    out = suppress_small_counts(out, ["n_patients"], min_count, additive="columns")
    hidden = out[["returns", "no_return", "n_gaps", "n_patients"]].isna().any(axis=1).to_numpy()
    derived = [c for c in out.columns if str(c).startswith(("p_return", "median_"))]
    for col in derived:
        out[col] = out[col].astype("Float64").mask(hidden)
    return out.drop(columns="no_return")


def _model(value, lang: str):
    key = f"churn_model_{value}"
    return label(key, lang) if key in LABELS else value
