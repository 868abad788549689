"""CSV reading: pyarrow's fast reader gives exactly what pandas' reader gives, or leaves the file to pandas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_analysis.exceptions import DataValidationError
from crm_analysis.io.encoding import _parse_with_arrow, _parse_with_pandas, read_text_table

PIECES = ["a", "가", " ", ",", ";", '"', "\n", "\r\n", "\r", "\t", "1", "NA", "", "#", "\\", "\x00", "\x01end\x01"]


def _field(draw) -> str:
    text = "".join(draw(st.lists(st.sampled_from(PIECES), max_size=3)))
    how = draw(st.sampled_from(["plain", "plain", "quoted", "quoted then more"]))
    if how == "quoted":
        return '"' + text.replace('"', '""') + '"'
    if how == "quoted then more":
        return '"' + text + '"' + draw(st.sampled_from(["", " ", "x", '"']))
    return text


@st.composite
def delimited_files(draw) -> tuple[str, str]:
    sep = draw(st.sampled_from([",", ";", "\t"]))
    n_cols = draw(st.integers(1, 4))
    header = [_field(draw) if draw(st.booleans()) else f"c{i}" for i in range(n_cols)]
    rows = [[_field(draw) for _ in range(draw(st.sampled_from([n_cols, n_cols, n_cols, n_cols - 1, n_cols + 1])))]
            for _ in range(draw(st.integers(0, 5)))]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    end = draw(st.sampled_from(["", "\n", "\r\n", "\n\n"]))
    return newline.join(sep.join(row) for row in [header, *rows]) + end, sep


@settings(max_examples=600, deadline=None)
@given(delimited_files())
def test_arrow_reads_what_pandas_reads(file):
    """Whenever the fast reader answers, pandas reads the same table (and does not refuse the file)."""
    text, sep = file
    fast = _parse_with_arrow(text.encode("utf-8"), text, sep)
    if fast is None:
        return
    reference = _parse_with_pandas(text, sep, "t", Path("t.csv"))
    pd.testing.assert_frame_equal(fast, reference, check_exact=True)


@pytest.mark.parametrize("text", [
    'a,b\n1,"open\n',             # a quoted value left open: pandas refuses the file
    'a,b\n1,2\n \n3,4\n',          # a line of blanks: pandas skips it
    'a,b\r1,2\r',                  # carriage returns alone
    'a,a\n1,2\n',                  # repeated column names: pandas renames them
    'a,b\n1,2,3\n',                # a row with one field too many
    'a,b\n1\n',                    # a row with one field too few: pandas pads it
    'a,b\n1,x\x00y\n',             # a NUL byte
])
def test_files_left_to_pandas(text):
    assert _parse_with_arrow(text.encode("utf-8"), text, ",") is None


def test_quoted_export_read_by_arrow(tmp_path):
    path = tmp_path / "patients.csv"
    rows = ['patient_id,name,memo', '"P1","김지영","a, ""b"""', '"P2",,""', 'P3,"이\n름",NA']
    path.write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf-8")
    text = path.read_text(encoding="utf-8-sig")
    assert _parse_with_arrow(text.encode("utf-8"), text, ",") is not None
    frame, encoding = read_text_table(path)
    assert encoding == "utf-8-sig" and list(frame.columns) == ["patient_id", "name", "memo"]
    assert list(frame.index) == [1, 2, 3]
    assert frame["memo"].tolist() == ['a, "b"', pd.NA, "NA"]
    assert frame["name"].tolist() == ["김지영", pd.NA, "이\n름"]
    assert all(dtype == "string[pyarrow]" for dtype in frame.dtypes)


def test_unreadable_file_keeps_pandas_message(tmp_path):
    path = tmp_path / "visits.csv"
    path.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"not a readable table: Error tokenizing data. C error: Expected 2 "
                                                  r"fields in line 3, saw 3"):
        read_text_table(path, table="visits")
