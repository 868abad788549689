"""Values from the clinic's data, made safe where they are shown: a browser and a spreadsheet.

The data is not ours: a department, a name or an id in an export can hold text that acts when it is
shown. Two places run such text, and each has its helper here, used by every writer:

**HTML** (``report.html``, the executed notebooks). A department named
``피부과<img src=x onerror=...>`` must reach the manager's browser as text, never as an element.

- :func:`escaped_style` is the one way a table from the data becomes a styled HTML table
  (pandas' Styler does not escape by default): every cell, header, index label and axis name is escaped.
- :func:`markdown_text` escapes text for a Markdown output, so ``[x](javascript:...)`` stays text.

Text built by hand into HTML is escaped with :func:`html.escape` where it is built.

**Spreadsheets** (the CSV and XLSX staff lists, and the CSV and XLSX files of
:func:`crm_analysis.io.write_clinic`). A patient named ``=HYPERLINK("http://x/?"&C2,"확인")`` must reach
the receptionist's Excel as a name, never as a formula.

- :func:`neutralise_formulas` puts a single quote before every text cell that starts with a formula
  trigger (``=``, ``+``, ``-``, ``@``, tab, carriage return), as OWASP recommends for CSV injection.
  Numbers, dates and yes/no values are left as they are (a negative amount stays a number), and
  phone numbers stay readable (``010-1234-5678`` starts with a digit; ``+82 10-...`` becomes
  ``'+82 10-...``). The XLSX writer (:mod:`crm_analysis.io.spreadsheets`) writes every text as
  text, never as a formula.
- :func:`restore_formulas` undoes it, so that reading a file this package wrote gives back the
  values it was given (:mod:`crm_analysis.coercion` applies it to text columns on loading).
"""

from __future__ import annotations

import re
from functools import partial
from html import escape
from numbers import Number
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from crm_analysis.number_format import format_number
from crm_analysis.privacy import DEFAULT_MIN_COUNT

__all__ = ["FORMULA_TRIGGERS", "neutralise_formulas", "restore_formulas", "escaped_style", "markdown_text",
           "p_value_text"]

#: Characters that make a spreadsheet read a cell as a formula when they come first.
FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")

#: The triggers as a regular-expression class (plain enough for Arrow's RE2 and Python's re alike).
_TRIGGER_CLASS = r"[=+\-@\t\r]"
_TRIGGERED = "^" + _TRIGGER_CLASS
_ESCAPED = "^'" + _TRIGGER_CLASS
#: Inferred kinds of an object column that can hold text (a column of numbers or dates holds none).
_TEXT_KINDS = frozenset({"string", "mixed", "mixed-integer", "empty"})
#: The characters that start Markdown inline syntax (links, images, autolinks and HTML, entities, emphasis,
#: code, strikethrough, table cells, math, a heading's closing #) and the colon of a bare URL (which GFM
#: links by itself): each is read literally after a backslash.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>!|~&#$:])")
_LINE_BREAK = re.compile(r"\s*[\r\n]+\s*")


def _is_text(values: pd.Series | pd.Index) -> bool:
    """Whether `values` can hold text cells (string dtype, or objects that are not all numbers or dates)."""
    if isinstance(values.dtype, pd.StringDtype):
        return True
    return pd.api.types.is_object_dtype(values.dtype) and pd.api.types.infer_dtype(values, skipna=True) in _TEXT_KINDS


def _prefixed(values: pd.Series) -> pd.Series | None:
    """`values` with ``'`` before each text cell that starts with a trigger, or None when none does."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = pd.Series(values.cat.categories)
        renamed = _prefixed(categories)
        if renamed is None:
            return None
        if renamed.is_unique:  # each category escaped once, not each cell
            return values.cat.rename_categories(renamed.to_numpy())
        return _prefixed(values.astype(object))
    if not _is_text(values):
        return None
    hit = values.str.contains(_TRIGGERED, regex=True, na=False).to_numpy(dtype=bool)
    if not hit.any():
        return None
    out = values.copy()
    out.iloc[np.flatnonzero(hit)] = ("'" + values[hit]).to_numpy()
    return out


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` in which no text cell or column header can act as a spreadsheet formula.

    Every text value that starts with one of :data:`FORMULA_TRIGGERS` gets a leading single quote
    (OWASP's advice against CSV injection): ``=HYPERLINK(...)`` becomes ``'=HYPERLINK(...)``, shown
    as typed. Columns of numbers, dates, times and booleans are left alone, and so is the index
    unless it holds text. Every writer of CSV or XLSX files holding data calls this first.

    Parameters
    ----------
    frame : pandas.DataFrame
        Not modified.

    Returns
    -------
    pandas.DataFrame
        Same shape, index and column order, and the same dtypes (a category column has its
        categories escaped, or becomes ``object`` if two of them would then look alike).

    See Also
    --------
    restore_formulas : The inverse, for reading such a file back.

    Examples
    --------
    >>> frame = pd.DataFrame({"name": ["=1+1", "김민준"], "phone": ["+82 10-1234-5678", "010-1234-5678"],
    ...                       "balance": [-5, 3]})
    >>> neutralise_formulas(frame).to_dict("list")
    {'name': ["'=1+1", '김민준'], 'phone': ["'+82 10-1234-5678", '010-1234-5678'], 'balance': [-5, 3]}
    """
    out = frame.copy(deep=False)
    for position in range(frame.shape[1]):
        escaped = _prefixed(frame.iloc[:, position])
        if escaped is not None:
            out.isetitem(position, escaped)
    headers = _prefixed(pd.Series(frame.columns, dtype=object))
    if headers is not None:
        out.columns = pd.Index(headers.to_numpy(), name=frame.columns.name)
    if not isinstance(frame.index, pd.MultiIndex):
        labels = _prefixed(frame.index.to_series(index=range(len(frame.index))))
        if labels is not None:
            out.index = pd.Index(labels.to_numpy(), name=frame.index.name)
    return out


def restore_formulas(values: pd.Series) -> pd.Series:
    """`values` with the single quote :func:`neutralise_formulas` added taken off again.

    A text value that starts with ``'`` followed by a formula trigger loses the quote; anything
    else is returned as it is.

    Parameters
    ----------
    values : pandas.Series
        Text (a string dtype or objects). Not modified.

    Returns
    -------
    pandas.Series

    Examples
    --------
    >>> restore_formulas(pd.Series(["'=1+1", "'quoted'", "010-1234-5678"])).tolist()
    ['=1+1', "'quoted'", '010-1234-5678']
    """
    if not _is_text(values):
        return values
    hit = values.str.contains(_ESCAPED, regex=True, na=False).to_numpy(dtype=bool)
    if not hit.any():
        return values
    out = values.copy()
    out.iloc[np.flatnonzero(hit)] = values[hit].str.slice(1).to_numpy()
    return out


def escaped_style(frame: pd.DataFrame, formats: Mapping | None = None, *, na_rep: str = "–", lang: str = "ko",
                  counts: Iterable = (), min_count: int = DEFAULT_MIN_COUNT):
    """``frame.style`` with every value from the data HTML-escaped and every number formatted alike.

    The one way a table becomes a styled HTML table in the report: pandas' Styler shows text as
    HTML unless told otherwise. Further ``.format(...)`` calls on the result must pass
    ``escape="html"`` too, or the cells they format are shown raw again.

    Every column without a format of its own is shown through
    :func:`crm_analysis.number_format.format_number`: whole numbers with thousands separators,
    other numbers with at most two decimals, yes/no values as 예/아니오 (Yes/No). The columns
    named in `counts` are counts: a missing one was hidden by
    :func:`crm_analysis.privacy.suppress_small_counts` and reads ``<5`` (``<min_count``), and
    the table lists their positions in its ``data-count-columns`` attribute (``"1 3"``: the
    cells of class ``col1`` and ``col3``), by which the report's tests find every count it
    publishes.

    Parameters
    ----------
    frame : pandas.DataFrame
        Not modified.
    formats : mapping, optional
        Column -> format string or function, as for :meth:`pandas.io.formats.style.Styler.format`;
        every column not named is shown through ``format_number`` (text as it is).
    na_rep : str
        Shown for missing values (not escaped: it comes from the code, not the data).
    lang : {"ko", "en"}
        Language of yes/no values.
    counts : iterable of column labels
        The count columns of `frame` (see above).
    min_count : int
        The suppression threshold a hidden count is shown with.

    Returns
    -------
    pandas.io.formats.style.Styler

    Examples
    --------
    >>> frame = pd.DataFrame({"<b>과</b>": ["<img src=x onerror=alert(1)>"]})
    >>> html = escaped_style(frame).to_html()
    >>> "<img" in html, "&lt;img src=x onerror=alert(1)&gt;" in html, "&lt;b&gt;과&lt;/b&gt;" in html
    (False, True, True)
    >>> frame = pd.DataFrame({"n": pd.array([1234, None], dtype="Int64"), "mean": [43.4, 1 / 3], "vip": [True, False]})
    >>> html = escaped_style(frame, counts=["n"]).to_html()
    >>> [v in html for v in ('data-count-columns="0"', ">1,234<", ">&lt;5<", ">0.33<", ">예<", ">아니오<")]
    [True, True, True, True, True, True]
    """
    shown = frame.rename_axis(index=[_escaped_name(n) for n in frame.index.names],
                              columns=[_escaped_name(n) for n in frame.columns.names])
    styler = shown.style.format(na_rep=na_rep, escape="html")
    formats = dict(formats or {})
    counts = [c for c in counts if c in frame.columns]
    for col in frame.columns.unique():
        if col in formats:
            continue
        if col in counts:
            styler = styler.format(partial(format_number, kind="count", lang=lang), subset=[col],
                                   na_rep=escape(f"<{min_count}"), escape="html")  # na_rep is not escaped
        else:
            kind = _number_kind(frame[col])
            if kind is not None:
                styler = styler.format(partial(_shown_number, kind=kind, lang=lang), subset=[col], na_rep=na_rep,
                                       escape="html")
    for col, fmt in formats.items():  # one column at a time: a dict would reset the columns it does not name
        if col not in frame.columns:
            continue
        styler = styler.format(fmt, subset=[col], na_rep=na_rep, escape="html")
    if counts:
        positions = " ".join(str(p) for p in np.flatnonzero(frame.columns.isin(counts)))
        styler = styler.set_table_attributes(f'data-count-columns="{positions}"')
    return styler.format_index(escape="html", axis=0).format_index(escape="html", axis=1)


def p_value_text(p: float) -> str:
    """A p-value as the report tables show it: two decimals, ``<0.01`` below that, a dash when missing.

    Examples
    --------
    >>> p_value_text(0.2403), p_value_text(0.0004), p_value_text(float("nan"))
    ('0.24', '<0.01', '–')
    """
    if p is None or p != p:
        return format_number(None)
    return "<0.01" if p < 0.01 else f"{p:.2f}"


def _number_kind(values: pd.Series | pd.DataFrame) -> str | None:
    """How :func:`format_number` shows a column: "bool", "auto" (numbers, or numbers among text), or None."""
    if isinstance(values, pd.DataFrame):  # a duplicated column label
        return "auto"
    if pd.api.types.is_bool_dtype(values.dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(values.dtype):
        return "auto"
    if pd.api.types.is_object_dtype(values.dtype):
        return "auto"  # numbers and yes/no among text; text is left as it is
    return None


def _shown_number(value: object, kind: str, lang: str) -> object:
    """`value` through :func:`format_number` if it is a number or yes/no, else as it is."""
    if isinstance(value, (bool, np.bool_)):
        return format_number(bool(value), "bool", lang)
    if isinstance(value, (Number, np.number)):
        return format_number(value, kind if kind != "bool" else "auto", lang)
    return value


def _escaped_name(name: object) -> object:
    """An axis name as the Styler shows it (it does not escape axis names itself)."""
    return escape(name) if isinstance(name, str) else name


def markdown_text(text: str) -> str:
    r"""`text` for a Markdown output, shown as it is: no link, image, HTML or markup can form from it.

    The characters that start Markdown's inline syntax (``\ ` * _ [ ] < > ! | ~ & # $``) and the
    colon of a bare URL are escaped with a backslash, so ``[x](javascript:alert(1))``, ``<script>``
    and ``https://...`` stay text, while letters, digits, dots, dashes, brackets and ``%`` are left
    as they are: ``010-1234-5678`` and ``6.3%p (95%)`` read the same in the Markdown source, so the
    privacy scan still finds a phone number there. Line breaks become spaces: the text stays on its
    line (a heading, a list item). Use it for any text from the data or the rules in
    ``IPython.display.Markdown``.

    Parameters
    ----------
    text : str

    Returns
    -------
    str

    Examples
    --------
    >>> print(markdown_text("[x](javascript:alert(1)) <b>6.3%p</b>"))
    \[x\](javascript\:alert(1)) \<b\>6.3%p\</b\>
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _LINE_BREAK.sub(" ", str(text)))
