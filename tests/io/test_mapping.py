"""Mapping files: Korean exports, the real Kaggle export, and malformed mappings."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from crm_analysis import DataValidationError, MappingError, load_clinic, read_mapping
from crm_analysis.cli import main
from crm_analysis.io.korean_emr import EMR_FILES, write_korean_emr_export
from tests.conftest import DEMO_END, KAGGLE_NOSHOW, PROJECT_ROOT
from tests.test_validation import AS_OF, VALID, write_clinic_csv

MAPPINGS = PROJECT_ROOT / "data" / "mappings"


def _mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MALFORMED = [
    ("yaml_syntax", "tables:\n  patients:\n    from: [unclosed\n", r"not valid YAML at line \d+"),
    ("not_a_mapping", "- just\n- a list\n", "must be a YAML mapping with a 'tables:' section"),
    ("unknown_table", "tables:\n  customers:\n    from: x\n", "unknown table 'customers'"),
    ("unknown_contract_column", "tables:\n  patients:\n    from: patients\n    columns:\n      shoe_size: 신발\n",
     "'shoe_size' is not a column of patients"),
    ("unknown_key", "tables:\n  patients:\n    from: patients\n    colums: {}\n", "unknown key 'colums'"),
    ("bad_policy", "on_invalid: ignore\ntables:\n  patients:\n    from: patients\n", "on_invalid must be"),
    ("values_not_a_mapping", "tables:\n  patients:\n    from: patients\n    values:\n      sex: [M, F]\n",
     "must map source values"),
    ("no_from", "tables:\n  patients:\n    columns: {patient_id: id}\n", "needs 'from'"),
]


@pytest.mark.parametrize("case, text, pattern", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_mapping(tmp_path, capsys, case, text, pattern):
    path = _mapping(tmp_path, text)
    with pytest.raises(MappingError, match=pattern) as caught:
        read_mapping(path)
    assert all(p.table == "mapping" for p in caught.value.problems)
    folder = write_clinic_csv(tmp_path / "clinic", copy.deepcopy(VALID))
    assert main(["validate", "--source", str(folder), "--mapping", str(path)]) == 2
    err = capsys.readouterr().err
    assert "[mapping" in err and "Traceback" not in err


def test_mapping_problems_are_all_listed(tmp_path):
    path = _mapping(tmp_path, "colour: red\ntables:\n  customers: {}\n  patients:\n    from: p\n    columns: {x: y}\n")
    with pytest.raises(MappingError) as caught:
        read_mapping(path)
    assert len(caught.value.problems) == 3


def test_mapping_reading_absent_columns(tmp_path):
    folder = write_clinic_csv(tmp_path / "clinic", copy.deepcopy(VALID))
    path = _mapping(tmp_path, "tables:\n  patients:\n    from: patients\n    columns:\n      patient_id: 환자번호\n"
                              "  visits:\n    from: visits\n    columns: {visit_id: visit_id, patient_id: patient_id, "
                              "visit_date: visit_date}\n")
    with pytest.raises(MappingError, match="columns missing from 'patients': 환자번호; it has: patient_id"):
        load_clinic(folder, mapping=path)


def test_mapping_from_missing_file(tmp_path):
    folder = write_clinic_csv(tmp_path / "clinic", copy.deepcopy(VALID))
    path = _mapping(tmp_path, "tables:\n  patients:\n    from: 환자정보\n    columns: {patient_id: patient_id}\n")
    with pytest.raises(DataValidationError, match=r"\[환자정보\] '환자정보' was not found in the folder .* it has: "
                                                  r"appointments, patients"):
        load_clinic(folder, mapping=path)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949"])
def test_encodings_are_detected(tmp_path, encoding):
    folder = tmp_path / encoding
    folder.mkdir()
    for name, rows in VALID.items():
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False, encoding=encoding)
    clinic = load_clinic(folder, as_of=AS_OF)
    assert clinic.patients["name"].tolist() == ["김민준", "이서연", "박지호"]
    assert clinic.encodings["patients.csv"] == encoding  # the file with Korean text


def test_korean_headers_without_mapping(tmp_path):
    """Columns named by their contract Korean label are recognised without a mapping."""
    from crm_analysis.contract import get_table

    folder = tmp_path / "korean"
    folder.mkdir()
    for name, rows in VALID.items():
        table = get_table(name)
        frame = pd.DataFrame(rows).rename(columns={c.name: c.ko for c in table.columns})
        frame.to_csv(folder / f"{table.ko}.csv", index=False, encoding="cp949")
    clinic = load_clinic(folder, as_of=AS_OF)
    assert clinic.visits["visit_id"].tolist() == ["V1", "V2", "V3", "V4"]


@pytest.mark.parametrize("fmt", ["parquet", "xlsx"])
def test_parquet_and_workbook_sources(tmp_path, fmt):
    from crm_analysis import write_clinic

    reference = load_clinic(write_clinic_csv(tmp_path / "csv", copy.deepcopy(VALID)), as_of=AS_OF)
    written = write_clinic(reference.tables, tmp_path / fmt, format=fmt)
    source = written[0] if fmt == "xlsx" else tmp_path / fmt
    clinic = load_clinic(source, as_of=AS_OF)
    for name, frame in reference.tables.items():
        pd.testing.assert_frame_equal(clinic.tables[name], frame, check_categorical=False)


def test_korean_emr_export_round_trip(tmp_path, demo_clinic, capsys):
    """A CP949 export with Korean headers and the clinic's own codes maps back onto the contract exactly."""
    written = write_korean_emr_export(demo_clinic.tables, tmp_path / "emr")
    assert {p.stem for p in written} == set(EMR_FILES.values())
    raw = (tmp_path / "emr" / "예약내역.csv").read_bytes()
    raw.decode("cp949")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    mapping = MAPPINGS / "korean_emr_example.yaml"
    clinic = load_clinic(tmp_path / "emr", mapping=mapping, as_of=DEMO_END)
    assert set(clinic.encodings.values()) == {"cp949"}
    spec = read_mapping(mapping)
    for name in ("patients", "visits", "appointments"):
        columns = list(spec.tables[name].columns)
        got = clinic.tables[name][columns].astype("object")
        want = demo_clinic.tables[name][columns].astype("object")
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert main(["validate", "--source", str(tmp_path / "emr"), "--mapping", str(mapping), "--as-of", DEMO_END]) == 0
    assert "cp949" in capsys.readouterr().out


@pytest.fixture(scope="module")
def kaggle():
    if not KAGGLE_NOSHOW.exists():
        pytest.skip(f"{KAGGLE_NOSHOW} not present")
    return load_clinic(KAGGLE_NOSHOW, mapping=MAPPINGS / "kaggle_noshow_2016.yaml")


def test_kaggle_export_loads_with_quirks_reported(kaggle):
    # Figures from ../shared/data/real/SOURCES.md.
    assert len(kaggle.patients) == 62_299
    appts = kaggle.appointments
    quarantined = kaggle.report.quarantined["appointments"]
    assert len(appts) + len(quarantined) == 110_527
    assert len(quarantined) == 5 and set(quarantined["problem"]) == {"scheduled_at: scheduled_before_booked"}
    assert len(kaggle.reminders) == 35_482
    assert set(kaggle.reminders["channel"]) == {"sms"}
    statuses = pd.concat([appts["status"].astype(str), quarantined["status"].astype(str)])
    assert (statuses == "no_show").sum() == 22_319
    assert len(kaggle.visits) == (appts["status"] == "attended").sum()
    checks = {p.check: p for p in kaggle.report.warnings + kaggle.report.repairs}
    assert checks["id_scientific_notation"].n_rows == 5
    assert "9377952927E-5" in checks["id_scientific_notation"].examples
    assert checks["invalid_age"].examples == ("-1",)
    assert "day_precision" in checks
    assert "age_over_100" in checks
    info = {p.check: p for p in kaggle.report.info}
    assert info["mapping_where"].n_rows == 110_527 - 35_482  # appointments without an SMS
    assert info["mapping_distinct"].n_rows == 110_527 - 62_299  # appointment rows folded into patients


def test_kaggle_cli_validate(capsys):
    if not KAGGLE_NOSHOW.exists():
        pytest.skip(f"{KAGGLE_NOSHOW} not present")
    status = main(["validate", "--source", str(KAGGLE_NOSHOW), "--mapping",
                   str(MAPPINGS / "kaggle_noshow_2016.yaml")])
    out = capsys.readouterr().out
    assert status == 0
    assert "Quarantined:" in out and "scheduled before they were booked" in out
