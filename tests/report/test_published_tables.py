"""Every table of the published ``report.html``: no small count, nothing that gives one back, numbers alike.

Issue #21: one small-count rule (:func:`crm_analysis.privacy.suppress_small_counts`) and one number
formatter (:func:`crm_analysis.number_format.format_number`) for every table of every artefact. These
tests read the HTML a director gets, not the functions behind it, so a table that skips either is
caught whichever notebook shows it.

How a count column is recognised
--------------------------------
:func:`crm_analysis.cells.escaped_style` (the one way a table becomes HTML) lists the positions of the
count columns it was given in the table's ``data-count-columns`` attribute (``"1 3"``: the cells of
class ``col1`` and ``col3``); ``localised_view``, ``value_view`` and ``churn_view`` pass them. A table
without the attribute (one formatted by its producer, such as the reminder tables or the KPI tables of
the monthly report) is read by its headers: a header naming a count (:data:`COUNT_HEADER`, such as
"환자 수", "예약 수", "건수", "발송 대상") and not a rate (:data:`RATE_HEADER`: "비교군 재방문율").

The monthly run is expensive (all notebooks): the tests share the session's run of the demo clinic
(``demo_monthly_run`` in ``tests/conftest.py``, also used by ``test_report.py`` and the notebook tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from bs4 import BeautifulSoup

from crm_analysis.privacy import DEFAULT_MIN_COUNT

#: With pytest-xdist, these tests share the worker that holds the session's monthly run.
pytestmark = pytest.mark.xdist_group("demo_monthly_run")

#: Headers of count columns in tables that do not list their count columns (Korean and English).
COUNT_HEADER = re.compile(r"\s수\b|건수|발송 대상|비교군|남은 환자|계획된 예약"
                          r"|대상자"
                          r"|\b(patients|appointments|visits|bookings|messages|contacts|recipients|rows)\b"
                          r"|^n_", re.IGNORECASE)
#: Headers of rates and shares: hidden beside a hidden count of their row.
RATE_HEADER = re.compile(r"(?<!확)[율률]|비중|\brate\b|\bshare\b", re.IGNORECASE)  # 이탈률, 비율; not 확률
HIDDEN = f"<{DEFAULT_MIN_COUNT}"
MISSING = {"–", "-", ""}
#: A number written with more than two decimals ("43.400000", "0.672").
LONG_DECIMAL = re.compile(r"(?<![\d.])\d[\d,]*\.\d{3,}(?![\d.])")


@dataclass
class Table:
    """One ``<table>`` of the report: its title, headers by column position and rows of cell texts."""

    title: str
    headers: dict[int, str]
    rows: list[dict[int, str]]
    counts_listed: bool
    counts: set[int] = field(default_factory=set)

    def rates(self) -> set[int]:
        return {c for c, h in self.headers.items() if RATE_HEADER.search(h) and c not in self.counts}


def _position(cell) -> int | None:
    """The column position of a Styler cell (its class ``colN``)."""
    match = next((re.fullmatch(r"col(\d+)", c) for c in cell.get("class", []) if re.fullmatch(r"col(\d+)", c)), None)
    return int(match.group(1)) if match else None


def report_tables(html: str) -> list[Table]:
    """Every table of a report's HTML, with its count columns (listed by the table, else by header)."""
    tables = []
    for node in BeautifulSoup(html, "html.parser").find_all("table"):
        heading = node.find_previous(["h1", "h2", "h3", "h4"])
        headers = {}
        for th in node.select("thead th"):
            position = _position(th)
            if position is not None and "col_heading" in th.get("class", []):
                headers[position] = th.get_text(" ", strip=True)
        rows = []
        for tr in node.select("tbody tr"):
            cells = {_position(td): td.get_text(" ", strip=True) for td in tr.find_all("td")}
            cells.pop(None, None)
            if not headers and not cells:  # a table not made by pandas' Styler: every cell by its place
                cells = {i: td.get_text(" ", strip=True) for i, td in enumerate(tr.find_all(["td", "th"]))}
            rows.append(cells)
        listed = node.get("data-count-columns")
        table = Table(heading.get_text(strip=True) if heading else "", headers, rows, listed is not None)
        table.counts = ({int(p) for p in listed.split()} if listed is not None else
                        {c for c, h in headers.items() if COUNT_HEADER.search(h) and not RATE_HEADER.search(h)})
        tables.append(table)
    return tables


def _count_value(text: str) -> int | None:
    """A count cell as a number (None when hidden, missing or not a plain count)."""
    text = text.strip()
    return int(text.replace(",", "")) if re.fullmatch(r"\d{1,3}(,\d{3})*|\d+", text) else None


def small_counts(tables: list[Table]) -> list[str]:
    """Every count cell from 1 to ``DEFAULT_MIN_COUNT - 1``, described."""
    found = []
    for table in tables:
        for i, row in enumerate(table.rows):
            for c in table.counts:
                n = _count_value(row.get(c, ""))
                if n is not None and 1 <= n < DEFAULT_MIN_COUNT:
                    found.append(f"{table.title!r}, row {i + 1}, column {table.headers.get(c, c)!r}: {n}")
    return found


def rates_beside_hidden_counts(tables: list[Table]) -> list[str]:
    """Every rate or share shown in a row whose count is hidden, described."""
    found = []
    for table in tables:
        for i, row in enumerate(table.rows):
            if not any(row.get(c, "").strip() == HIDDEN for c in table.counts):
                continue
            for c in table.rates():
                if row.get(c, "").strip() not in MISSING:
                    found.append(f"{table.title!r}, row {i + 1}, column {table.headers.get(c, c)!r}: {row[c]}")
    return found


@pytest.fixture(scope="module")
def tables(demo_monthly_run) -> list[Table]:
    html = (demo_monthly_run.out_dir / "report.html").read_text(encoding="utf-8")
    found = report_tables(html)
    n_cells = sum(len(row) for t in found for row in t.rows)
    listed = [t for t in found if t.counts_listed]
    print(f"\n[report.html] {len(found)} tables, {n_cells} cells; count columns listed by {len(listed)} tables, "
          f"found by header in {len(found) - len(listed)}")
    return found


def test_the_report_has_tables_and_count_columns(tables):
    assert len(tables) >= 20, "every analysis shows its tables in the appendix"
    assert sum(t.counts_listed for t in tables) >= 10, "the package's views list their count columns"
    assert all(t.counts for t in tables if t.counts_listed)


def test_no_table_shows_a_count_from_1_to_4(tables):
    n_checked = sum(len(t.rows) * len(t.counts) for t in tables)
    n_hidden = sum(row.get(c, "").strip() == HIDDEN for t in tables for row in t.rows for c in t.counts)
    print(f"{n_checked} count cells checked in {sum(bool(t.counts) for t in tables)} tables; {n_hidden} read {HIDDEN}")
    found = small_counts(tables)
    assert not found, "small counts published:\n" + "\n".join(found)


def test_no_rate_is_shown_beside_a_hidden_count(tables):
    rows = [(t, row) for t in tables for row in t.rows if any(row.get(c, "").strip() == HIDDEN for c in t.counts)]
    n_rates = sum(len(t.rates()) for t, _ in rows)
    print(f"{len(rows)} rows with a hidden count; {n_rates} rate cells beside them checked")
    found = rates_beside_hidden_counts(tables)
    assert not found, "rates shown beside hidden counts:\n" + "\n".join(found)


def test_numbers_have_at_most_two_decimals_and_yes_no_is_written_out(tables):
    cells = [(t, c, text) for t in tables for row in t.rows for c, text in row.items()]
    long = [f"{t.title!r}, column {t.headers.get(c, c)!r}: {text}" for t, c, text in cells if LONG_DECIMAL.search(text)]
    raw_bools = [f"{t.title!r}, column {t.headers.get(c, c)!r}: {text}" for t, c, text in cells
                 if text.strip().lower() in ("true", "false")]
    print(f"{len(cells)} cells checked for long decimals and True/False")
    assert not long, "numbers with more than two decimals:\n" + "\n".join(long)
    assert not raw_bools, "yes/no shown as True/False (예/아니오, Yes/No):\n" + "\n".join(raw_bools)


# --------------------------------------------------------------------------- the checks themselves

_SAMPLE = """
<h2>A</h2>
<table data-count-columns="1"><thead><tr><th class="blank level0"></th>
<th class="col_heading level0 col0">name</th><th class="col_heading level0 col1">n</th>
<th class="col_heading level0 col2">churn rate</th></tr></thead>
<tbody><tr><th class="row_heading">0</th><td class="data row0 col0">a</td><td class="data row0 col1">3</td>
<td class="data row0 col2">40.0%</td></tr>
<tr><th class="row_heading">1</th><td class="data row1 col0">b</td><td class="data row1 col1">&lt;5</td>
<td class="data row1 col2">12.5%</td></tr></tbody></table>
<h2>B</h2>
<table><thead><tr><th class="col_heading level0 col0">환자 수</th>
<th class="col_heading level0 col1">평균 내원일수</th></tr></thead><tbody><tr><td class="data row0 col0">1,204</td><td class="data row0 col1">2</td></tr>
<tr><td class="data row1 col0">2</td><td class="data row1 col1">43.400000</td></tr></tbody></table>
"""


def test_the_checks_find_what_they_look_for():
    found = report_tables(_SAMPLE)
    assert [t.counts for t in found] == [{1}, {0}], "listed by the table, else by the header (not 내원일수)"
    assert len(small_counts(found)) == 2
    assert rates_beside_hidden_counts(found) == ["'A', row 2, column 'churn rate': 12.5%"]
    assert LONG_DECIMAL.search("43.400000") and not LONG_DECIMAL.search("2026-05-04, 12.25%, 1,234")
