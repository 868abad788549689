"""Small-count suppression (with secondary suppression) and the personal-data scanner."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from crm_analysis.privacy import (DEFAULT_MIN_COUNT, artefact_text, fixed_report_text, personal_values,
                                  scan_artefacts, scan_text,
                                  suppress_small_counts, suppressed_mask)


# --------------------------------------------------------------------------- suppression, by hand

def test_primary_and_secondary_suppression_by_hand():
    table = pd.DataFrame({"patients": [3, 40, 25, 60]}, index=["피부과", "내과", "안과", "정형외과"])
    shown = suppress_small_counts(table, ["patients"], additive="columns")
    # 3 is hidden; alone it could be recomputed from the total 128, so the next smallest (25) goes too
    assert shown["patients"].isna().tolist() == [True, False, True, False]
    assert table["patients"].tolist() == [3, 40, 25, 60], "the input must not be modified"


def test_row_groups_and_cells_hidden_elsewhere_take_part():
    """Rows of one campaign add up to its total published in another table; cells hidden there count here."""
    t = pd.DataFrame({"campaign": ["A", "A", "B", "B", "C"], "n": [111, 2, 40, 50, 60]})
    mask = suppressed_mask(t, ["n"], row_groups=t["campaign"], additive="rows")["n"].tolist()
    assert mask == [True, True, False, False, False], "A's other line goes: A's total minus 111 is 2"
    elsewhere = np.array([[False], [False], [True], [True], [False]])
    out = suppress_small_counts(t, ["n"], additive="columns", row_groups=t["campaign"], hidden=elsewhere)
    assert out["n"].isna().tolist() == [True, True, True, True, False]
    with pytest.raises(ValueError, match="row_groups has 2 labels for 5 rows"):
        suppressed_mask(t, ["n"], row_groups=["A", "B"])


def test_zero_is_not_small_and_threshold_is_configurable():
    table = pd.DataFrame({"n": [0, 5, 9, 12]})
    assert suppress_small_counts(table)["n"].isna().sum() == 0  # 0 and 5+ are shown by default
    hidden = suppress_small_counts(table, threshold=10)["n"]
    assert hidden.isna().tolist() == [False, True, True, False]  # 5 and 9 are below 10; two hidden: safe
    with pytest.raises(ValueError, match="threshold must be a whole number of at least 1"):
        suppress_small_counts(table, threshold=0)


def test_linked_values_follow_their_count():
    table = pd.DataFrame({"visits": [2, 50, 70], "revenue": [10_000.0, 900_000.0, 1_300_000.0]})
    shown = suppress_small_counts(table, ["visits"], linked={"revenue": "visits"}, additive="columns")
    assert shown["revenue"].isna().tolist() == shown["visits"].isna().tolist() == [True, True, False]


def test_cross_table_rows_and_columns_both_protected():
    table = pd.DataFrame({"a": [1, 10, 10], "b": [10, 10, 10], "c": [10, 10, 10]})
    mask = suppressed_mask(table, ["a", "b", "c"])
    assert mask.to_numpy().sum() >= 4  # a rectangle: two in the row of the 1, two in its column
    for groups in (mask.to_numpy(), mask.to_numpy().T):
        for line in groups:
            assert line.sum() != 1


def test_a_total_row_takes_part():
    table = pd.DataFrame({"n": [2, 30, 32]}, index=["small", "big", "total"])
    mask = suppressed_mask(table, ["n"], total_row="total", additive="columns")
    assert mask["n"].tolist() == [True, True, False]  # hide 'big' rather than the total


# --------------------------------------------------------------------------- suppression, properties

@settings(max_examples=150, deadline=None)
@given(arrays(np.int64, st.tuples(st.integers(1, 6), st.integers(1, 5)), elements=st.integers(0, 40)),
       st.integers(2, 12), st.sampled_from(["both", "columns", "rows"]))
def test_suppression_properties(values, threshold, additive):
    table = pd.DataFrame(values, columns=[f"c{i}" for i in range(values.shape[1])])
    original = table.copy()
    mask = suppressed_mask(table, list(table.columns), threshold, additive=additive).to_numpy()
    small = (values >= 1) & (values < threshold)
    assert not (small & ~mask).any(), "a small count is visible"
    groups = []
    if additive != "columns":
        groups += list(mask)
    if additive != "rows":
        groups += list(mask.T)
    for line in groups:
        # exactly one hidden cell in a group would be revealed by the group's total (unless it is the whole group)
        assert line.sum() != 1 or line.size == 1, f"one hidden cell in a group: {line}"
    shown = suppress_small_counts(table, threshold=threshold, additive=additive)
    pd.testing.assert_frame_equal(table, original)
    assert shown.isna().to_numpy().sum() == mask.sum()


# --------------------------------------------------------------------------- the scanner

PATIENTS = pd.DataFrame({"name": ["김민수", "이서", "Park Jiwoo", None],
                         "phone": ["010-1234-5678", None, "010-9876-5432", "010-5555-0000"],
                         "email": [None, "seo@example.com", None, "x@example.org"]})


def test_personal_values_lists_names_phones_emails():
    values = personal_values(PATIENTS)
    assert "김민수" in values and "Park Jiwoo" in values
    assert "이서" not in values  # two-character names match ordinary words
    assert {"010-1234-5678", "01012345678", "seo@example.com"} <= set(values)


@pytest.mark.parametrize("text, kind", [
    ("환자 김민수님께 연락", "name"),
    ("전화 010-1234-5678", "phone"),
    ("전화 01012345678", "phone"),
    ("전화 010 1234 5678", "phone"),
    ("전화 010.9876.5432", "phone"),
    ("메일 SEO@example.com", "email"),
    ("<td>Park Jiwoo</td>", "name"),
    ("전화 (010) 1234-5678", "phone"),
    ("전화 010 - 1234 - 5678", "phone"),
    ("tel +82 10-1234-5678", "phone"),
    ("전화 ０１０-１２３４-５６７８", "phone"),
    ("전화 010/9876/5432", "phone"),
    ("mailseo@example.comPatients", "email"),
], ids=["name", "dashed", "digits", "spaced", "dotted", "email-case", "latin-name", "brackets", "spaced-dashes",
        "international", "full-width", "slashes", "email-glued"])
def test_scan_finds_every_form(text, kind):
    hits = scan_text(text, personal_values(PATIENTS))
    assert [h.kind for h in hits] == [kind]
    assert hits[0].masked()[0] == hits[0].value[0] and "*" in hits[0].masked()


def test_scan_ignores_aggregates_and_other_numbers():
    text = "활성 환자 1,031명, 매출 100,185,830원, 노쇼율 9.7%, 이서 지역, 010-0000-1111, 12345678901"
    assert scan_text(text, personal_values(PATIENTS)) == []


def test_scan_reads_notebooks_without_their_images(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "AAAA01012345678AAAA",
                                                                 "text/plain": "<Figure>"}),
                    nbformat.v4.new_output("stream", name="stdout", text="연락처 010-9876-5432\n")]
    nb.cells = [cell]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    hits = scan_artefacts([path], personal_values(PATIENTS))
    assert [(h.artefact, h.value) for h in hits] == [("x.ipynb", "01098765432")]
    assert "AAAA01012345678" not in artefact_text(path)


def test_scan_reads_json_with_korean_escapes(tmp_path):
    path = tmp_path / "kpis.json"
    path.write_text(json.dumps({"who": "김민수"}, ensure_ascii=True))
    assert "\\uae40" in path.read_text()
    assert [h.value for h in scan_artefacts([path], personal_values(PATIENTS))] == ["김민수"]


def test_scan_reads_names_shown_escaped_in_html(tmp_path):
    """Escaping a value for HTML must not hide it from the scan: character references are read as characters."""
    patients = pd.DataFrame({"name": ["O'Brien <Kim>", "김민수"], "phone": [None, None], "email": [None, None]})
    page = tmp_path / "report.html"
    page.write_text("<td>O&#x27;Brien &lt;Kim&gt;</td><h3>&#44608;&#48124;&#49688;</h3>", encoding="utf-8")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": "<td>O&#x27;Brien &lt;Kim&gt;</td>"})]
    nb.cells = [cell]
    nbformat.write(nb, tmp_path / "x.ipynb")
    hits = scan_artefacts([page, tmp_path / "x.ipynb"], personal_values(patients))
    assert sorted((h.artefact, h.value) for h in hits) == [("report.html", "O'Brien <Kim>"), ("report.html", "김민수"),
                                                           ("x.ipynb", "O'Brien <Kim>")]


def test_scan_reads_pdf_text(tmp_path):
    from crm_analysis.report.pdf import font_face_css, write_pdf

    pdf = write_pdf(f"<html><head><style>{font_face_css()} body {{ font-family: NanumGothic; }}</style></head>"
                    "<body><p>담당 김민수</p></body></html>", tmp_path / "x.pdf")
    assert [h.value for h in scan_artefacts([pdf], personal_values(PATIENTS))] == ["김민수"]


def test_default_threshold_is_five():
    assert DEFAULT_MIN_COUNT == 5


def test_names_that_are_words_of_the_report_are_not_flagged(tmp_path):
    """A patient called 최우수 shares the name of the '최우수 고객' segment: that word is the report's own."""
    patients = pd.DataFrame({"name": ["최우수", "김민수"], "phone": [None, None], "email": [None, None]})
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("세그먼트: 최우수 · 충성 · 신규")]
    path = tmp_path / "10_x.ipynb"
    nbformat.write(nb, path)
    fixed = fixed_report_text([path])
    assert "최우수" in fixed and "def personal_values" in fixed  # the notebooks' and the package's own text
    values = personal_values(patients, fixed_text=fixed)
    assert values == ["김민수"]
    assert [h.value for h in scan_text("최우수 고객 120명; 김민수", values)] == ["김민수"]
