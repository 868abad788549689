"""Spreadsheets for staff: CSV and XLSX files that open ready to work in (Korean) Excel.

:func:`xlsx_bytes` writes one sheet with the header in bold, frozen and with a
filter; columns as wide as their content (Hangul and other wide characters
count double, capped at :data:`MAX_WIDTH`); date-time columns as real Excel
date-times (so they sort and filter as times, not as text), date columns as
dates; and the `wrap` columns wrapped (long messages stay readable on
screen). :func:`csv_bytes` writes UTF-8 with a byte-order mark, which Korean
Excel needs to read Hangul, with times as ``YYYY-MM-DD HH:MM``.

Both are deterministic: the bytes depend only on the table and the `stamp`
given (the XLSX document dates and zip times), never on the clock. Neither
escapes formulas: callers pass tables through
:func:`crm_analysis.cells.neutralise_formulas` first.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["xlsx_bytes", "csv_bytes", "write_spreadsheets", "display_widths", "DATETIME_FORMAT", "DATE_FORMAT",
           "MAX_WIDTH"]

#: Excel number formats of date-time and date cells.
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMAT = "yyyy-mm-dd"
#: Widest column (in Excel character units); longer text wraps or is cut off on screen.
MAX_WIDTH = 60
_WIDE = re.compile("[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]")


def display_widths(values: pd.Series) -> np.ndarray:
    """How many character cells each value takes on screen: wide (East Asian) characters count two."""
    text = values.astype(object).where(values.notna(), "").astype(str)
    return (text.str.len() + text.str.count(_WIDE.pattern)).to_numpy(dtype=np.int64)


def _is_date_only(values: pd.Series) -> bool:
    known = values.dropna()
    return bool(len(known)) and bool((known == known.dt.normalize()).all())


def _column_width(name: str, values: pd.Series, wrapped: bool) -> float:
    if wrapped:
        return float(MAX_WIDTH)
    if pd.api.types.is_datetime64_any_dtype(values):
        content = 10 if _is_date_only(values) else 16
    else:
        content = int(display_widths(values).max()) if len(values) else 0
    header = int(display_widths(pd.Series([name]))[0])
    return float(min(MAX_WIDTH, max(content, header, 4) + 2))


def xlsx_bytes(frame: pd.DataFrame, sheet: str, *, stamp: pd.Timestamp | str, wrap: Iterable[str] = ()) -> bytes:
    """One sheet holding `frame`, formatted for staff, as XLSX bytes that depend only on `frame` and `stamp`.

    Written with XlsxWriter, which never turns a text into a formula, a link or a number here (its
    ``strings_to_*`` options are off): a text cell holds the text as given.

    Parameters
    ----------
    frame : DataFrame
        The table; datetime64 columns become Excel date-times (dates when every value is midnight).
    sheet : str
        Sheet name (cut to Excel's 31 characters).
    stamp : Timestamp or str
        The document's created/modified date and the zip entries' times.
    wrap : iterable of str
        Columns whose text wraps (width :data:`MAX_WIDTH`).

    Returns
    -------
    bytes
    """
    import xlsxwriter

    stamp = pd.Timestamp(stamp).normalize()
    wrap = set(wrap)
    raw = io.BytesIO()
    book = xlsxwriter.Workbook(raw, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                     "strings_to_numbers": False})
    book.set_properties({"author": "crm_analysis", "created": stamp.to_pydatetime()})
    ws = book.add_worksheet(sheet[:31])
    columns = list(frame.columns)
    bold = book.add_format({"bold": True})
    for j, name in enumerate(columns):
        ws.write_string(0, j, str(name), bold)
        values = frame[name]
        wrapped = name in wrap
        if pd.api.types.is_datetime64_any_dtype(values):
            date_only = _is_date_only(values)
            style = {"num_format": DATE_FORMAT if date_only else DATETIME_FORMAT}
            items = [None if pd.isna(v) else (v.date() if date_only else v.to_pydatetime()) for v in values]
        else:
            style = {}
            items = values.astype(object).where(values.notna(), None).tolist()
        if wrapped:
            style.update(text_wrap=True, valign="top")
        cell_format = book.add_format(style) if style else None
        for i, value in enumerate(items, start=1):
            _write_cell(ws, i, j, value.item() if isinstance(value, np.generic) else value, cell_format)
        ws.set_column(j, j, _column_width(str(name), values, wrapped))
    ws.freeze_panes(1, 0)
    if columns:
        ws.autofilter(0, 0, max(len(frame), 1), len(columns) - 1)
    book.close()
    return _fixed_times(raw.getvalue(), stamp)


def _write_cell(ws, row: int, col: int, value, cell_format) -> None:
    """One cell by its Python type. Texts go through ``write_string`` always: XlsxWriter's generic ``write``
    would turn ``{=...}`` into an array formula whatever its options say."""
    if value is None:
        if cell_format is not None:
            ws.write_blank(row, col, None, cell_format)
    elif isinstance(value, str):
        ws.write_string(row, col, value, cell_format)
    elif isinstance(value, bool):
        ws.write_boolean(row, col, value, cell_format)
    elif isinstance(value, (int, float)):
        ws.write_number(row, col, value, cell_format)
    elif isinstance(value, (dt.datetime, dt.date)):
        ws.write_datetime(row, col, value, cell_format)
    else:
        raise TypeError(f"a spreadsheet cell cannot hold a {type(value).__name__} ({value!r})")


def _fixed_times(data: bytes, stamp: pd.Timestamp) -> bytes:
    """The XLSX zip rewritten with `stamp` as every entry's time and as the document dates."""
    fixed = f"{stamp:%Y-%m-%dT00:00:00Z}"
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, \
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name in sorted(source.namelist()):
            body = source.read(name)
            if name == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                              rb"\g<1>" + fixed.encode() + rb"\g<3>", body)
            entry = zipfile.ZipInfo(name, date_time=(stamp.year, stamp.month, stamp.day, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, body)
    return out.getvalue()


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """`frame` as CSV in UTF-8 with a byte-order mark; date-times as ``YYYY-MM-DD HH:MM``, dates as ``YYYY-MM-DD``."""
    out = frame.copy()
    for name in out.columns:
        values = out[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            out[name] = values.dt.strftime("%Y-%m-%d" if _is_date_only(values) else "%Y-%m-%d %H:%M")
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8-sig")


#: A table's name: a file name without extension (any language), optionally in one subfolder (``system/x``).
_FILE_NAME = re.compile(r"^([^\W_][\w\-]*/)?[^\W_][\w\-]*$")


def write_spreadsheets(tables: Mapping[str, pd.DataFrame], folder: str | Path, *, stamp: pd.Timestamp | str,
                       wrap: Mapping[str, Iterable[str]] | None = None,
                       notes: Mapping[str, str] | None = None) -> list[Path]:
    """Write each table as ``<name>.csv`` and ``<name>.xlsx``, and each note as a text file, owner-only.

    The folder (and any subfolder a name gives, ``system/campaign_holdout``) is made 0700 and every file
    0600: staff lists hold personal data. Tables are written as given: escape formulas first
    (:func:`crm_analysis.cells.neutralise_formulas`).

    Parameters
    ----------
    tables : mapping of str to DataFrame
    folder : str or Path
    stamp : Timestamp or str
        The XLSX files' document dates and zip times (deterministic bytes).
    wrap : mapping, optional
        Name -> columns whose text wraps.
    notes : mapping, optional
        File name (with extension, e.g. ``안내.txt``) -> text, written in UTF-8 with a BOM (Windows Notepad).

    Returns
    -------
    list of Path
        The files written, sorted.

    Raises
    ------
    ValueError
        If a name is not a plain file name.
    """
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    files: dict[str, bytes] = {}
    for name, frame in tables.items():
        if not _FILE_NAME.match(name):
            raise ValueError(f"list name {name!r} must be a plain file name (optionally <folder>/<name>)")
        files[f"{name}.csv"] = csv_bytes(frame)
        files[f"{name}.xlsx"] = xlsx_bytes(frame, name.split("/")[-1], stamp=stamp, wrap=(wrap or {}).get(name, ()))
    for name, text in (notes or {}).items():
        if not _FILE_NAME.match(name.rsplit(".", 1)[0]):
            raise ValueError(f"note name {name!r} must be a plain file name")
        files[name] = text.encode("utf-8-sig")
    written = []
    for name, data in files.items():
        path = folder / name
        if path.parent != folder:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            path.parent.chmod(0o700)
        path.touch(mode=0o600)
        path.write_bytes(data)
        path.chmod(0o600)
        written.append(path)
    return sorted(written)
