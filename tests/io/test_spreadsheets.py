"""XLSX rows written column by column hold the very cells XlsxWriter writes one by one."""

from __future__ import annotations

import datetime as dt
import io
import time
import zipfile

import numpy as np
import pandas as pd
import pytest

from crm_analysis.io import spreadsheets
from crm_analysis.io.spreadsheets import xlsx_bytes

HOSTILE_TEXTS = ["=HYPERLINK(\"http://x\")", "<img src=x onerror=alert(1)>", "a & b > c", "  leading", "trailing ",
                 "line\nbreak", "tab\there", "김민수님 예약 안내", "", "😀 emoji", "{=SUM(A1:A2)}",
                 "\"quoted\" 'single'", None]


def _frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    texts = [HOSTILE_TEXTS[i % len(HOSTILE_TEXTS)] for i in range(rows)]
    numbers = rng.normal(size=rows) * 10.0 ** rng.integers(-3, 12, size=rows)
    numbers[::7] = np.nan
    numbers[1::11] = 0.1
    numbers[2::13] = -0.0
    when = pd.Timestamp("2026-11-01 09:30:15.250") + pd.to_timedelta(rng.integers(0, 10 ** 7, size=rows), unit="s")
    when = pd.Series(when).mask(pd.Series(np.arange(rows) % 5 == 0))
    days = pd.Series(pd.Timestamp("1950-01-01") + pd.to_timedelta(rng.integers(0, 40_000, size=rows), unit="D"))
    mixed = pd.Series([np.int64(i) if i % 3 == 0 else f"x{i}" if i % 3 == 1 else None for i in range(rows)],
                      dtype=object)
    return pd.DataFrame({"text": texts, "number": numbers, "count": rng.integers(-5, 10 ** 15, size=rows),
                         "yes": pd.Series([True, False, None] * (rows // 3 + 1), dtype=object)[:rows].to_numpy(),
                         "when": when, "day": days, "mixed": mixed,
                         "message": [f"(광고) 안내 {i} <b>&amp;</b>" for i in range(rows)]})


def _cells(data: bytes) -> list[list[tuple]]:
    import openpyxl

    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    return [[(c.value, c.data_type, c.number_format, bool(c.alignment.wrap_text)) for c in row]
            for row in ws.iter_rows()]


@pytest.fixture(scope="module")
def both_ways():
    frame = _frame(600)
    by_column = xlsx_bytes(frame, "목록", stamp="2026-11-01", wrap=["message"])
    mp = pytest.MonkeyPatch()
    mp.setattr(spreadsheets._Column, "of", classmethod(lambda cls, *args: None))  # every cell through XlsxWriter
    try:
        by_cell = xlsx_bytes(frame, "목록", stamp="2026-11-01", wrap=["message"])
    finally:
        mp.undo()
    return frame, by_column, by_cell


def test_rows_written_column_by_column_read_back_as_the_cells_xlsxwriter_writes(both_ways):
    frame, by_column, by_cell = both_ways
    sheet = zipfile.ZipFile(io.BytesIO(by_column)).read("xl/worksheets/sheet1.xml").decode()
    assert 't="inlineStr"' in sheet and '<dimension ref="A1:H601"/>' in sheet  # the rows were added as XML
    ours, theirs = _cells(by_column), _cells(by_cell)
    assert len(ours) == len(theirs) == len(frame) + 1
    differ = [(i, j, a, b) for i, (r1, r2) in enumerate(zip(ours, theirs)) for j, (a, b) in enumerate(zip(r1, r2))
              if a != b and not (a[0] in ("", None) and b[0] in ("", None))]
    assert differ == []
    texts = [row[0][0] for row in ours[1:]]
    assert "=HYPERLINK(\"http://x\")" in texts and "<img src=x onerror=alert(1)>" in texts
    assert "  leading" in texts and "trailing " in texts  # whitespace kept
    assert all(row[0][1] != "f" for row in ours)  # no text became a formula


def test_the_same_table_gives_the_same_bytes(both_ways):
    frame, by_column, _ = both_ways
    assert xlsx_bytes(frame, "목록", stamp="2026-11-01", wrap=["message"]) == by_column


@pytest.mark.parametrize("value", [float("inf"), "x" * 20_000, dt.time(9, 30), pd.Timestamp("2026-01-01", tz="UTC"),
                                   dt.date(1900, 1, 1), "bell\x07and\x1fus", "_x0041_ literal", "odd \ufffe"])
def test_values_xlsxwriter_checks_itself_are_written_cell_by_cell(value):
    frame = pd.DataFrame({"a": ["x", "y", "z"], "b": [1, value, 2]}, dtype=object)
    try:
        data = xlsx_bytes(frame, "t", stamp="2026-11-01")
    except TypeError as err:  # refused as before: by XlsxWriter (infinite numbers, time zones) or by the writer
        assert any(word in str(err) for word in ("NAN/INF", "timezone", "support", "cannot hold"))
        return
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert 't="inlineStr"' not in sheet


def test_a_large_list_is_written_quickly():
    frame = _frame(60_000)
    started = time.perf_counter()
    data = xlsx_bytes(frame, "t", stamp="2026-11-01", wrap=["message"])
    print(f"60,000 rows x 8 columns in {time.perf_counter() - started:.2f} s, {len(data):,} bytes")
    assert len(_cells(data)) == 60_001

