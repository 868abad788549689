"""Wrong or stale input is stopped, not published (issue 14, point 3).

Each case exits 2 from the command line with a plain message naming the problem and no traceback:

- a ``--month`` outside the extract's recorded range, or with no visit by its last day (a month
  covered only in part runs, with one warning line that the manifest lists);
- two files (or a file and a sheet) that claim the same table;
- no visits file, when the mapping does not ask to derive visits from appointments;
- a truncated gzip;
- a visits table too small for any analysis.

The clinic is the tiny valid one of ``tests/test_validation.py``, written to ``tmp_path``; the
month checks happen right after loading, so those runs never start a notebook.
"""

from __future__ import annotations

import copy
import gzip
import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from crm_analysis import DataValidationError, load_clinic
from crm_analysis.cli import main
from crm_analysis.exceptions import SourceError
from crm_analysis.monthly.run import run_month
from tests.test_validation import AS_OF, VALID, write_clinic_csv

#: What the tiny clinic records, from the first booking (A1, 2023-12-20) to the last (A4, 2024-12-20);
#: A4's appointment on 2025-01-10 is still ahead and does not extend the range.
RANGE = "the data runs from 2023-12-20 to 2024-12-20"


@pytest.fixture
def tables():
    return copy.deepcopy(VALID)


@pytest.fixture
def clinic_dir(tmp_path, tables) -> Path:
    return write_clinic_csv(tmp_path / "clinic", tables)


@pytest.fixture
def notebook_dir(tmp_path) -> Path:
    """One notebook, so the run gets as far as loading (it is never executed in these tests)."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("raise RuntimeError('the run should have stopped before the notebooks')")]
    nbformat.write(nb, folder / "00_never.ipynb")
    return folder


def _run(source: Path, month: str, tmp_path: Path, notebook_dir: Path, *extra: str) -> int:
    return main(["run", "--month", month, "--source", str(source), "--out", str(tmp_path / "reports"),
                 "--outreach-dir", str(tmp_path / "outreach"), "--notebook-dir", str(notebook_dir), "--no-pdf",
                 "--no-hooks", *extra])


def _error(capsys) -> str:
    """The one error line of a failed command (and no traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return err[err.index("error:"):]


# --------------------------------------------------------------------------- the month and the data's range

def test_recorded_range_counts_what_happened_not_bookings_ahead(clinic_dir):
    clinic = load_clinic(clinic_dir, as_of=AS_OF)
    first, last = clinic.recorded_range()
    assert (f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}") == ("2023-12-20", "2024-12-20")
    assert clinic.appointments["scheduled_at"].max() > last  # the booking ahead (A4, 2025-01-10) is left out


@pytest.mark.parametrize("month, message", [
    ("2025-02", f"{RANGE}; --month 2025-02 lies outside it (choose a month from 2024-01 to 2024-12; "
                "for a later month, give a newer extract)"),
    ("2023-06", f"{RANGE}; --month 2023-06 lies outside it (choose a month from 2024-01 to 2024-12)"),
    # inside the range, but before the first visit (bookings came first): nothing to analyse
    ("2023-12", "no visit is recorded on or before 2023-12-31, the last day of --month 2023-12 (the first visit is "
                "on 2024-01-05), so there is nothing to analyse; choose a month from 2024-01 to 2024-12"),
], ids=["after-the-data", "before-the-data", "before-the-first-visit"])
def test_a_month_the_data_cannot_show_is_refused(clinic_dir, month, message):
    clinic = load_clinic(clinic_dir, as_of=AS_OF)
    with pytest.raises(SourceError) as caught:
        clinic.check_month(month)
    assert str(caught.value) == message


def test_a_month_the_data_covers_gives_no_warning_and_one_covered_in_part_gives_one(clinic_dir):
    clinic = load_clinic(clinic_dir, as_of=AS_OF)
    assert clinic.check_month("2024-06") == []
    assert clinic.check_month("2024-12") == [f"{RANGE}, so --month 2024-12 is only partly covered "
                                             "(nothing recorded after 2024-12-20)"]


def test_run_for_a_month_after_the_data_exits_2_and_leaves_earlier_months_intact(clinic_dir, tmp_path, notebook_dir,
                                                                                capsys):
    earlier = tmp_path / "reports" / "2024-06"
    earlier.mkdir(parents=True)
    (earlier / "kpis.json").write_text('{"month": "2024-06"}', encoding="utf-8")
    assert _run(clinic_dir, "2026-10", tmp_path, notebook_dir) == 2
    assert f"error: {RANGE}; --month 2026-10 lies outside it" in _error(capsys)
    # no month folder, no .failed folder, no hidden work folder; the earlier month as it was
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [".crm-analysis.lock", "2024-06"]
    assert (earlier / "kpis.json").read_text(encoding="utf-8") == '{"month": "2024-06"}'
    assert not (tmp_path / "outreach" / "2026-10").exists()
    assert [p.name for p in (tmp_path / "outreach").iterdir()] == [".crm-analysis.lock"]  # locked as reports/ is


def test_run_for_a_month_before_the_first_visit_exits_2(clinic_dir, tmp_path, notebook_dir, capsys):
    assert _run(clinic_dir, "2023-12", tmp_path, notebook_dir) == 2
    assert "no visit is recorded on or before 2023-12-31" in _error(capsys)
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [".crm-analysis.lock"]


def test_a_month_covered_in_part_runs_with_one_warning_listed_in_the_manifest(clinic_dir, tmp_path, notebook_dir,
                                                                            monkeypatch, capsys):
    # Only the plumbing is tested here: the analysis steps are replaced, so nothing but the manifest is published.
    monkeypatch.setattr("crm_analysis.monthly.run._run_steps", lambda *args, **kwargs: 0)
    result = run_month("2024-12", clinic_dir, out=tmp_path / "reports", outreach_dir=tmp_path / "outreach",
                       notebook_dir=notebook_dir, pdf=False, analysis_hooks=False, progress=False)
    expected = f"{RANGE}, so --month 2024-12 is only partly covered (nothing recorded after 2024-12-20)"
    assert result.warnings == [expected]
    assert capsys.readouterr().err.splitlines() == [f"warning: {expected}"]
    manifest = json.loads((tmp_path / "reports" / "2024-12" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["warnings"] == [expected]


# --------------------------------------------------------------------------- two files for one table

def _second_patients_file(kind: str):
    def add(folder: Path) -> str:
        patients = pd.read_csv(folder / "patients.csv", dtype=str, encoding="utf-8-sig")
        if kind == "parquet":
            patients.to_parquet(folder / "patients.parquet")
            return "patients.parquet"
        if kind == "gzip":
            (folder / "patients.csv.gz").write_bytes(gzip.compress((folder / "patients.csv").read_bytes(), mtime=0))
            return "patients.csv.gz"
        if kind == "korean":
            shutil.copy(folder / "patients.csv", folder / "환자.csv")
            return "환자.csv"
        patients.to_excel(folder / "clinic.xlsx", sheet_name="patients", index=False)
        return "sheet 'patients' of clinic.xlsx"
    return add


@pytest.mark.parametrize("kind", ["parquet", "gzip", "korean", "sheet"])
def test_two_files_claiming_one_table_are_refused_naming_both(clinic_dir, kind, capsys):
    second = _second_patients_file(kind)(clinic_dir)
    with pytest.raises(SourceError, match="it is not clear which one holds the data") as caught:
        load_clinic(clinic_dir)
    assert "patients.csv" in str(caught.value) and second in str(caught.value)
    assert main(["validate", "--source", str(clinic_dir)]) == 2
    message = _error(capsys)
    assert message.startswith("error: patients.csv and ") and second in message


def test_the_parquet_twin_no_longer_wins_silently_in_a_run(clinic_dir, tmp_path, notebook_dir, capsys):
    _second_patients_file("parquet")(clinic_dir)
    assert _run(clinic_dir, "2024-06", tmp_path, notebook_dir) == 2
    assert "error: patients.csv and patients.parquet in " in _error(capsys)
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [".crm-analysis.lock"]


def test_a_mapping_can_name_the_one_file_to_read(clinic_dir, tables):
    _second_patients_file("parquet")(clinic_dir)
    mapping = {"version": 1, "tables": {
        name: {"from": f"{name}.csv", "columns": {c: c for c in tables[name][0]}}
        for name in ("patients", "visits")}}
    path = clinic_dir.parent / "pick.yaml"
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    clinic = load_clinic(clinic_dir, mapping=path, as_of=AS_OF)
    assert len(clinic.patients) == 3


# --------------------------------------------------------------------------- visits only when asked for

def _identity_mapping(tables: dict, path: Path, **visits) -> Path:
    mapping = {"version": 1, "tables": {
        name: {"from": name, "columns": {c: c for c in tables[name][0]}} for name in ("patients", "appointments")}}
    if visits:
        mapping["tables"]["visits"] = visits
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    return path


def test_no_visits_file_is_an_error_that_suggests_the_mapping_key(tmp_path, tables, capsys):
    del tables["visits"]
    folder = write_clinic_csv(tmp_path / "appointments_only", tables)
    for mapping in (None, _identity_mapping(tables, tmp_path / "no_visits.yaml")):
        with pytest.raises(DataValidationError, match=r"\[visits\] required table 'visits' \(내원\) is missing "
                                                      r"from the source\..*'from_appointments: attended'"):
            load_clinic(folder, mapping=mapping, as_of=AS_OF)
    assert main(["validate", "--source", str(folder)]) == 2
    assert "from_appointments: attended" in capsys.readouterr().err


def test_visits_are_derived_from_appointments_when_the_mapping_asks(tmp_path, tables):
    del tables["visits"]
    folder = write_clinic_csv(tmp_path / "derive", tables)
    mapping = _identity_mapping(tables, tmp_path / "derive.yaml", from_appointments="attended")
    clinic = load_clinic(folder, mapping=mapping, as_of=AS_OF)
    assert clinic.visits["visit_id"].tolist() == ["A1"]  # the one attended appointment
    assert any(p.check == "derived_visits" for p in clinic.report.info)


# --------------------------------------------------------------------------- truncated or corrupt gzip

@pytest.mark.parametrize("damage", ["truncated", "not_gzip"])
def test_a_damaged_gzip_exits_2_naming_the_file(clinic_dir, tmp_path, notebook_dir, damage, capsys):
    packed = gzip.compress((clinic_dir / "visits.csv").read_bytes(), mtime=0)
    (clinic_dir / "visits.csv").unlink()
    (clinic_dir / "visits.csv.gz").write_bytes(packed[: len(packed) // 2] if damage == "truncated" else b"visit_id\n")
    with pytest.raises(SourceError, match=r"^visits.csv.gz is truncated or corrupt: it cannot be decompressed"):
        load_clinic(clinic_dir)
    # a single-file source (as the Kaggle export is) too
    with pytest.raises(SourceError, match=r"^visits.csv.gz is truncated or corrupt"):
        load_clinic(clinic_dir / "visits.csv.gz")
    assert main(["validate", "--source", str(clinic_dir)]) == 2
    assert _error(capsys).startswith("error: visits.csv.gz is truncated or corrupt")
    assert _run(clinic_dir, "2024-06", tmp_path, notebook_dir) == 2
    assert _error(capsys).startswith("error: visits.csv.gz is truncated or corrupt")


# --------------------------------------------------------------------------- too few visits

def test_a_visits_table_without_rows_exits_2(clinic_dir, tmp_path, notebook_dir, capsys):
    (clinic_dir / "visits.csv").write_text(",".join(VALID["visits"][0]) + "\n", encoding="utf-8")
    assert main(["validate", "--source", str(clinic_dir)]) == 2
    assert "[visits] required table 'visits' has no rows" in _error(capsys)
    assert _run(clinic_dir, "2024-06", tmp_path, notebook_dir) == 2
    assert "[visits] required table 'visits' has no rows" in _error(capsys)
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [".crm-analysis.lock"]
