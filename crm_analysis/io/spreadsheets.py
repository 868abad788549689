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

XlsxWriter lays out the sheet, its header and first row; the other rows are
written column by column as the same cells XlsxWriter writes (texts in line),
which is many times faster than one call per cell: a million-patient month's
lists hold 5.6 million cells. A table with a value XlsxWriter checks or
escapes itself (a control character, a text of over 16,383 characters, an
infinite number, a time zone) is written cell by cell, as before.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
import zipfile
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from xlsxwriter.utility import xl_col_to_name

__all__ = ["xlsx_bytes", "csv_bytes", "write_spreadsheets", "display_widths", "DATETIME_FORMAT", "DATE_FORMAT",
           "MAX_WIDTH"]

#: Excel number formats of date-time and date cells.
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMAT = "yyyy-mm-dd"
#: Widest column (in Excel character units); longer text wraps or is cut off on screen.
MAX_WIDTH = 60
#: Wide (East Asian) characters: Hangul, CJK, full-width forms (an RE2 class, for Arrow's string kernels).
_WIDE_RE2 = (r"[\x{1100}-\x{115f}\x{2e80}-\x{a4cf}\x{ac00}-\x{d7a3}\x{f900}-\x{faff}\x{fe30}-\x{fe4f}"
             r"\x{ff00}-\x{ff60}\x{ffe0}-\x{ffe6}]")


def display_widths(values: pd.Series) -> np.ndarray:
    """How many character cells each value takes on screen: wide (East Asian) characters count two."""
    text = pa.array(values.astype(object).where(values.notna(), "").astype(str).to_numpy(dtype=object),
                    type=pa.large_string())
    wide = pc.count_substring_regex(text, _WIDE_RE2)
    return (pc.utf8_length(text).to_numpy(zero_copy_only=False).astype(np.int64)
            + wide.to_numpy(zero_copy_only=False).astype(np.int64))


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
    prepared = []
    for name in columns:
        values = frame[name]
        date_only = pd.api.types.is_datetime64_any_dtype(values) and _is_date_only(values)
        style = {"num_format": DATE_FORMAT if date_only else DATETIME_FORMAT} \
            if pd.api.types.is_datetime64_any_dtype(values) else {}
        if name in wrap:
            style.update(text_wrap=True, valign="top")
        prepared.append((name, values, style, date_only))
    # the rows after the first column by column, as the same cells; None: a value needs XlsxWriter's own checks
    rest: list | None = [] if len(frame) > 1 and columns else None
    for j, name in enumerate(columns):
        column = _Column.of(frame[name].iloc[1:], j) if rest is not None else None
        rest = None if column is None else rest + [column]
    formats = []
    for j, (name, values, style, date_only) in enumerate(prepared):
        ws.write_string(0, j, str(name), bold)
        cell_format = book.add_format(style) if style else None
        formats.append(cell_format)
        for i, value in enumerate(_cell_values(values if rest is None else values.iloc[:1], date_only), start=1):
            _write_cell(ws, i, j, value.item() if isinstance(value, np.generic) else value, cell_format)
        wrapped = name in wrap
        ws.set_column(j, j, _column_width(str(name), values, wrapped))
    ws.freeze_panes(1, 0)
    if columns:
        ws.autofilter(0, 0, max(len(frame), 1), len(columns) - 1)
    book.close()
    more_rows = None
    if rest is not None:
        styles = [None if f is None else f.xf_index for f in formats]
        more_rows = (len(frame) + 1, len(columns), _sheet_rows(rest, styles, first_row=3))
    return _fixed_times(raw.getvalue(), stamp, more_rows)


#: Above this many characters a text may pass Excel's limit of 32,767 UTF-16 units, which XlsxWriter cuts to:
#: a table holding one is written cell by cell.
_SAFE_TEXT = 16_383
#: Control characters, and texts that look like XlsxWriter's escapes of them (RE2).
_NEEDS_ESCAPES_RE2 = r"[\x{00}-\x{08}\x{0b}-\x{1f}\x{fffe}\x{ffff}]|_x[0-9a-fA-F]{4}_"
#: The first day XlsxWriter gives the serial number :func:`_excel_serial` computes (it treats earlier days apart).
_FIRST_DAY = pd.Timestamp("1900-03-01")
#: Rows joined into XML at a time (the sheet is written into the zip chunk by chunk).
_CHUNK_ROWS = 20_000


def _excel_serial(stamps: np.ndarray) -> np.ndarray:
    """Excel's serial day numbers (1900 system) of datetime64[ns] values from 1900-03-01 on, as XlsxWriter
    computes them from datetimes: days since 1899-12-31, plus one for Excel's 29 February 1900."""
    ns = stamps.astype("datetime64[ns]").astype(np.int64)
    days, rest = np.divmod(ns, 86_400 * 10 ** 9)
    seconds = (rest // 10 ** 9).astype(float) + (rest % 10 ** 9 // 1000).astype(float) / 1e6
    return (days + 25_568) + seconds / 86_400 + 1


def _kind(value) -> str:
    """How XlsxWriter writes `value` (``other``: not written column by column here)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dt.datetime) and value.tzinfo is None or type(value) is dt.date:
        return "date"
    return "other"


_KINDS = {"string": "text", "integer": "number", "floating": "number", "mixed-integer-float": "number",
          "boolean": "bool", "datetime64": "date", "datetime": "date", "date": "date"}


@functools.cache
def _whitespace_class() -> str:
    """The characters Python's ``\\s`` matches (XlsxWriter's test for kept whitespace), as an RE2 class."""
    found = (chr(c) for c in range(0x3001) if re.match(r"\s", chr(c)))
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in found) + "]"


class _Column:
    """One column's cells after the first row, as XlsxWriter writes them: :meth:`cells` gives a slice's XML.

    Built with Arrow's string kernels, not a Python call per cell. :meth:`of` returns None when a value needs
    XlsxWriter's own checks or escapes (a control character, a very long text, an infinite number, a time zone, a
    day before 1900-03-01, a type it does not take here)."""

    def __init__(self, letters: str, body) -> None:
        self.letters, self.body = letters, body  # `body`: each cell after its reference and style (null: empty)

    @classmethod
    def of(cls, values: pd.Series, j: int) -> "_Column | None":
        blank = values.isna().to_numpy()
        count = len(values)
        kinds = np.full(count, "none", dtype=object)
        numbers = np.zeros(count)
        raw = values.astype(object).to_numpy()
        if pd.api.types.is_datetime64_any_dtype(values):
            if getattr(values.dtype, "tz", None) is not None:
                return None
            known = values.to_numpy("datetime64[ns]")[~blank]
            if len(known) and known.min() < _FIRST_DAY.to_datetime64():
                return None
            kinds[~blank] = "date"
            numbers[~blank] = _excel_serial(known)
        else:
            present = raw[~blank]
            kind = _KINDS.get(pd.api.types.infer_dtype(present, skipna=False), "mixed") if len(present) else "none"
            each = np.array([_kind(v) for v in present], dtype=object) if kind == "mixed" \
                else np.full(len(present), kind, dtype=object)
            if (each == "other").any():
                return None
            kinds[~blank] = each
            numeric = (kinds == "number") | (kinds == "bool")
            if numeric.any():
                numbers[numeric] = np.asarray([v.item() if isinstance(v, np.generic) else v for v in raw[numeric]],
                                              dtype=float)
            dated = kinds == "date"
            if dated.any():
                stamps = pd.to_datetime(pd.Series(raw[dated], dtype=object)).to_numpy("datetime64[ns]")
                if stamps.min() < _FIRST_DAY.to_datetime64():
                    return None
                numbers[dated] = _excel_serial(stamps)
        if not np.isfinite(numbers).all():
            return None
        body = pa.nulls(count, pa.large_string())
        text = kinds == "text"
        if text.any():
            t = pa.array(np.where(text, raw, None), type=pa.large_string())
            longest = pc.max(pc.utf8_length(t)).as_py() or 0
            if longest > _SAFE_TEXT or pc.any(pc.match_substring_regex(t, _NEEDS_ESCAPES_RE2)).as_py():
                return None
            for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
                t = pc.replace_substring(t, char, entity)
            ws = _whitespace_class()
            preserve = pc.match_substring_regex(t, f"^{ws}|{ws}$")
            opened = pc.if_else(preserve, ' t="inlineStr"><is><t xml:space="preserve">', ' t="inlineStr"><is><t>')
            body = pc.if_else(pa.array(text), _join(pc.cast(opened, pa.large_string()), t, "</t></is></c>"), body)
        value = (kinds == "number") | (kinds == "date")
        if value.any():
            shown = np.full(count, "", dtype=object)
            shown[value] = np.char.mod("%.16G", numbers[value]).astype(object)
            body = pc.if_else(pa.array(value), _join("><v>", pa.array(shown, type=pa.large_string()), "</v></c>"),
                              body)
        boolean = kinds == "bool"
        if boolean.any():
            shown = np.where(numbers != 0, ' t="b"><v>1</v></c>', ' t="b"><v>0</v></c>').astype(object)
            body = pc.if_else(pa.array(boolean), pa.array(shown, type=pa.large_string()), body)
        return cls(xl_col_to_name(j), body)

    def cells(self, start: int, stop: int, rows, style: int | None):
        """The ``<c>`` elements of rows `start` to `stop` (0-based after the first row); `rows`: their numbers as
        an Arrow text array."""
        body = self.body.slice(start, stop - start)
        head = _join(f'<c r="{self.letters}', rows, '"' if style is None else f'" s="{style}"')
        # XlsxWriter writes an empty cell only with a format
        empty = _join(head, "/>") if style is not None else pa.scalar("", pa.large_string())
        return pc.if_else(pc.is_null(body), empty, _join(head, pc.fill_null(body, "")))


def _join(*parts):
    """Texts joined element-wise (Arrow arrays and plain strings, which repeat)."""
    typed = [pa.scalar(part, pa.large_string()) if isinstance(part, str) else part for part in parts]
    return pc.binary_join_element_wise(*typed, pa.scalar("", pa.large_string()))


def _sheet_rows(columns: list[_Column], styles: list, *, first_row: int):
    """The ``<row>`` elements from `first_row` on, as UTF-8 chunks of :data:`_CHUNK_ROWS` rows."""
    count = len(columns[0].body)
    for start in range(0, count, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, count)
        rows = pc.cast(pa.array(np.arange(first_row + start, first_row + stop)), pa.large_string())
        parts = [column.cells(start, stop, rows, style) for column, style in zip(columns, styles)]
        joined = _join('<row r="', rows, f'" spans="1:{len(columns)}">', *parts, "</row>")
        offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)[joined.offset:joined.offset + len(joined) + 1]
        yield joined.buffers()[2].to_pybytes()[int(offsets[0]):int(offsets[-1])]


def _cell_values(values: pd.Series, date_only: bool) -> list:
    """The Python values XlsxWriter is given (None: an empty cell)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return [None if pd.isna(v) else (v.date() if date_only else v.to_pydatetime()) for v in values]
    return values.astype(object).where(values.notna(), None).tolist()


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


def _fixed_times(data: bytes, stamp: pd.Timestamp, more_rows: tuple | None = None) -> bytes:
    """The XLSX zip rewritten with `stamp` as every entry's time and as the document dates; `more_rows`
    (rows in all, columns, the XML of the rows after the first two in chunks of bytes) adds those rows."""
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
            if name == "xl/worksheets/sheet1.xml" and more_rows is not None:
                rows, width, chunks = more_rows
                body = re.sub(rb'<dimension ref="[^"]*"/>',
                              f'<dimension ref="A1:{xl_col_to_name(width - 1)}{rows}"/>'.encode(), body, count=1)
                head, tail = body.split(b"</sheetData>", 1)
                with target.open(entry, "w") as stream:  # the rows chunk by chunk
                    stream.write(head)
                    for chunk in chunks:
                        stream.write(chunk)
                    stream.write(b"</sheetData>" + tail)
            else:
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
