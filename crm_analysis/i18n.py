"""Korean and English labels for report tables and chart text.

Reports are Korean by default; English is the alternative. Labels are data:
one dictionary, :data:`LABELS`, maps a key (usually a DataFrame column name
used by an analysis function) to its Korean and English text. Add keys here
when a new analysis needs them.

Table and column names of the data contract are labelled from
:mod:`crm_analysis.contract` by :func:`table_label` and :func:`column_label`,
so they are never repeated here.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from crm_analysis.contract import TABLES

__all__ = [
    "LANGS",
    "LABELS",
    "check_lang",
    "label",
    "table_label",
    "column_label",
    "localise_columns",
    "localised_view",
]

#: Supported report languages; the first is the default.
LANGS: tuple[str, ...] = ("ko", "en")

#: Key -> {"ko": ..., "en": ...}.
LABELS: Mapping[str, Mapping[str, str]] = {
    # --- table headers: quality.row_counts / missing_rates / findings
    "table": {"ko": "테이블", "en": "table"},
    "column": {"ko": "항목", "en": "column"},
    "present": {"ko": "자료 있음", "en": "present"},
    "rows": {"ko": "행 수", "en": "rows"},
    "quarantined": {"ko": "격리된 행 수", "en": "quarantined rows"},
    "n_rows": {"ko": "행 수", "en": "rows"},
    "n_missing": {"ko": "결측 수", "en": "missing"},
    "missing_rate": {"ko": "결측률", "en": "share missing"},
    "level": {"ko": "구분", "en": "level"},
    "check": {"ko": "점검 항목", "en": "check"},
    "message": {"ko": "내용", "en": "message"},
    # --- quality.monthly_coverage
    "month": {"ko": "월", "en": "month"},
    "new_patients": {"ko": "신환(초진)", "en": "new patients"},
    "visits": {"ko": "내원", "en": "visits"},
    "appointments": {"ko": "예약", "en": "appointments"},
    "reminders": {"ko": "예약알림", "en": "reminders"},
    "contacts": {"ko": "발송이력", "en": "contacts"},
    "pregnancy_outcomes": {"ko": "임신 결과", "en": "pregnancy outcomes"},
    # --- finding levels (values of findings()["level"])
    "quarantined_level": {"ko": "격리", "en": "quarantined"},
    "repaired_level": {"ko": "자동 수정", "en": "repaired"},
    "warning_level": {"ko": "경고", "en": "warning"},
    # --- chart text
    "coverage_title": {"ko": "월별 데이터 건수", "en": "Rows per month"},
    "coverage_ylabel": {"ko": "건수", "en": "rows"},
    "missing_title": {"ko": "항목별 결측률", "en": "Share missing by column"},
    "missing_xlabel": {"ko": "결측률", "en": "share missing"},
    "nothing_missing": {"ko": "결측값이 없습니다", "en": "No missing values"},
    "no_dated_rows": {"ko": "날짜가 있는 자료가 없습니다", "en": "No dated rows"},
    # --- quality summary text
    "summary_title": {"ko": "데이터 품질 요약", "en": "Data quality summary"},
    "as_of": {"ko": "기준일", "en": "as of"},
    "not_given": {"ko": "지정 안 됨", "en": "not given"},
    "tables_present": {"ko": "있는 테이블", "en": "tables present"},
    "tables_absent": {"ko": "없는 테이블", "en": "tables absent"},
    "none": {"ko": "없음", "en": "none"},
    "coverage_span": {"ko": "자료 기간", "en": "months covered"},
    "n_months": {"ko": "{n}개월", "en": "{n} months"},
    "empty_months": {"ko": "내원 자료가 없는 달", "en": "months without visits"},
    "findings": {"ko": "점검 결과", "en": "findings"},
    "empty_columns": {"ko": "전부 비어 있는 항목 수", "en": "columns entirely empty"},
    "most_missing": {"ko": "일부 비어 있는 항목(상위)", "en": "columns partly missing (top)"},
}


def check_lang(lang: str) -> str:
    """Return `lang` if it is supported.

    Raises
    ------
    ValueError
        If `lang` is not one of :data:`LANGS`.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(map(repr, LANGS))}, not {lang!r}")
    return lang


def label(key: str, lang: str = "ko") -> str:
    """The label of `key` in `lang`.

    Parameters
    ----------
    key : str
        A key of :data:`LABELS`.
    lang : {"ko", "en"}
        Language.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If `lang` is not supported.
    KeyError
        If `key` has no label; add it to :data:`LABELS`.

    Examples
    --------
    >>> label("missing_rate", "ko")
    '결측률'
    >>> label("missing_rate", "en")
    'share missing'
    """
    check_lang(lang)
    try:
        return LABELS[key][lang]
    except KeyError:
        raise KeyError(f"no label for {key!r}; add it to crm_analysis.i18n.LABELS") from None


def table_label(name: str, lang: str = "ko") -> str:
    """The label of contract table `name` (the name itself if it is not a contract table).

    See Also
    --------
    column_label : labels of contract columns.
    """
    check_lang(lang)
    table = TABLES.get(name)
    return getattr(table, lang) if table is not None else name


def column_label(table: str, column: str, lang: str = "ko") -> str:
    """The label of `column` of contract table `table` (the name itself if unknown)."""
    check_lang(lang)
    contract = TABLES.get(table)
    if contract is None or column not in contract.column_names:
        return column
    return getattr(contract.column(column), lang)


def localise_columns(df: pd.DataFrame, lang: str = "ko") -> pd.DataFrame:
    """A copy of `df` with headers in `lang`, ready to display.

    Two rules, kept simple:

    1. **Label pairs.** Analysis functions give contract names in a column
       ``x`` with companions ``x_ko`` and ``x_en`` holding the labels. Only the
       companion in `lang` is kept, under the header ``label(x)``.
    2. **Headers.** Every other column name (and the index and columns names)
       found in :data:`LABELS` is translated; unknown names are kept as they are.

    The input is not modified.

    Parameters
    ----------
    df : pandas.DataFrame
    lang : {"ko", "en"}

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ValueError
        If `lang` is not supported.

    Examples
    --------
    >>> frame = pd.DataFrame({"table": ["visits"], "table_ko": ["내원"], "table_en": ["visits"], "rows": [3]})
    >>> list(localise_columns(frame, "ko").columns)
    ['테이블', '행 수']
    """
    check_lang(lang)
    other = next(x for x in LANGS if x != lang)
    columns = [str(c) for c in df.columns]
    drop, rename = [], {}
    for col in columns:
        if f"{col}_{lang}" in columns and f"{col}_{other}" in columns:
            drop += [col, f"{col}_{other}"]
            rename[f"{col}_{lang}"] = _maybe_label(col, lang)
    for col in columns:
        if col not in drop and col not in rename:
            rename[col] = _maybe_label(col, lang)
    out = df.drop(columns=drop).rename(columns=rename)
    out.index = out.index.rename(_maybe_label(out.index.name, lang) if out.index.name else out.index.name)
    if out.columns.name:
        out.columns.name = _maybe_label(out.columns.name, lang)
    return out


def localised_view(df: pd.DataFrame, lang: str = "ko"):
    """A display-ready view of `df`: localised headers and readable numbers.

    Headers follow :func:`localise_columns`. Columns ending in ``_rate`` are
    shown as percentages, whole numbers with thousands separators, missing
    values as a dash. Every row is shown (no truncation), a plain 0, 1, 2, ...
    index is hidden, and the values of a ``level`` column (finding levels) are
    translated.

    Parameters
    ----------
    df : pandas.DataFrame
    lang : {"ko", "en"}

    Returns
    -------
    pandas.io.formats.style.Styler
        Displays as an HTML table in a notebook.
    """
    check_lang(lang)
    shown = df
    if "level" in df.columns:
        shown = df.assign(level=df["level"].map(lambda v: _maybe_label(f"{v}_level", lang, default=v)))
    rates = [c for c in df.columns if str(c).endswith("_rate")]
    counts = [c for c in df.columns if pd.api.types.is_integer_dtype(df[c].dtype)]
    formats = {**{_maybe_label(c, lang): "{:.1%}" for c in rates},
               **{_maybe_label(c, lang): "{:,}" for c in counts}}
    view = localise_columns(shown, lang)
    formats = {k: v for k, v in formats.items() if k in view.columns}
    styler = view.style.format(formats, na_rep="–")
    if isinstance(view.index, pd.RangeIndex) and view.index.name is None:
        styler = styler.hide(axis="index")
    return styler


def _maybe_label(key: object, lang: str, default: object = None) -> object:
    entry = LABELS.get(str(key))
    if entry is None:
        return key if default is None else default
    return entry[lang]
