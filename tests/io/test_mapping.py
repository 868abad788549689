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
    ("two_derivers", "tables:\n  visits:\n    from: v\n    derive:\n      inpatient_days: "
                     "{days_between: [a, b], template: x}\n", "needs exactly one of date_from_parts, days_between"),
    ("days_between_one_column", "tables:\n  visits:\n    from: v\n    derive:\n      inpatient_days: "
                                "{days_between: [a]}\n", "days_between needs two source columns"),
    ("date_parts_without_year", "tables:\n  patients:\n    from: p\n    derive:\n      birth_date: "
                                "{date_from_parts: {month: m}}\n", "date_from_parts needs source columns for year"),
    ("lookup_without_key", "tables:\n  visits:\n    from: v\n    derive:\n      department: "
                           "{lookup: ward, take: name}\n", "lookup needs 'key'"),
    ("lookup_on_read_as_true", "tables:\n  visits:\n    from: v\n    derive:\n      department: "
                               "{lookup: ward, on: id, take: name}\n", "unknown key 'True' .*YAML reads on"),
    ("lookup_take_and_found", "tables:\n  visits:\n    from: v\n    derive:\n      department: "
                              "{lookup: ward, key: id, take: name, found: x}\n", "exactly one of 'take' .* or 'found'"),
    ("lookup_bad_agg", "tables:\n  visits:\n    from: v\n    derive:\n      charge_insured: "
                       "{lookup: bill, key: id, take: paid, agg: median}\n", "agg goes with take and is one of sum"),
    ("lookup_optional_not_bool", "tables:\n  visits:\n    from: v\n    derive:\n      department: "
                                 "{lookup: ward, key: id, take: name, optional: maybe}\n", "optional is true or false"),
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


# ---------------------------------------------------------------------------
# derive: days_between, date_from_parts, lookup (hand-computed tiny hospital export)
# ---------------------------------------------------------------------------

HOSPITAL = {
    "pt": [{"id": "1", "gender": "8507", "yob": "1980", "mob": "3", "dob": "15"},
           {"id": "2", "gender": "8532", "yob": "1990", "mob": "2", "dob": ""},     # day unknown: the 15th
           {"id": "3", "gender": "8507", "yob": "2001", "mob": "", "dob": ""},      # year only: 1 July
           {"id": "4", "gender": "0", "yob": "1975", "mob": "13", "dob": "1"}],     # no such month
    "died": [{"pid": "3", "day": "2024-06-01"}, {"pid": "3", "day": "2024-06-01"}],
    "stay": [{"sid": "10", "pid": "1", "start": "2024-01-05", "end": "2024-01-05", "ward_id": "1"},
             {"sid": "11", "pid": "2", "start": "2024-02-05", "end": "2024-02-08", "ward_id": "2"},
             {"sid": "12", "pid": "3", "start": "2024-03-01", "end": "2024-03-01", "ward_id": ""},
             {"sid": "13", "pid": "1", "start": "2024-04-01", "end": "not a date", "ward_id": "9"}],
    "ward": [{"ward_id": "1", "ward_name": "내과"}, {"ward_id": "2", "ward_name": "정형외과"}],
    "bill": [{"event_id": "10", "domain": "Visit", "payer": "1000", "patient": "200"},
             {"event_id": "10", "domain": "Visit", "payer": "1,500", "patient": "300"},
             {"event_id": "10", "domain": "Drug", "payer": "99999", "patient": "9999"},   # not a visit's cost
             {"event_id": "11", "domain": "Visit", "payer": "", "patient": ""},         # amounts unknown
             {"event_id": "12", "domain": "Visit", "payer": "0", "patient": "700"}],
}

HOSPITAL_MAPPING = """
tables:
  patients:
    from: pt
    columns: {patient_id: id, sex: gender}
    values: {sex: {"8507": M, "8532": F, "0": null}}
    derive:
      birth_date: {date_from_parts: {year: yob, month: mob, day: dob}}
      record_status: {lookup: died, key: {id: pid}, found: deceased, otherwise: active, optional: true}
  visits:
    from: stay
    columns: {visit_id: sid, patient_id: pid, visit_date: start}
    derive:
      inpatient_days: {days_between: [start, end]}
      department: {lookup: ward, key: ward_id, take: ward_name}
      charge_insured: {lookup: bill, key: {sid: event_id}, where: {domain: Visit}, take: payer, agg: sum, optional: true}
      charge_self_pay: {lookup: bill, key: {sid: event_id}, where: {domain: Visit}, take: patient, agg: sum, optional: true}
"""


@pytest.fixture
def hospital(tmp_path) -> tuple[Path, Path]:
    return write_clinic_csv(tmp_path / "hospital", copy.deepcopy(HOSPITAL)), _mapping(tmp_path, HOSPITAL_MAPPING)


def test_days_between_dates_from_parts_and_lookups(hospital):
    folder, mapping = hospital
    clinic = load_clinic(folder, mapping=mapping, as_of=AS_OF)
    pats = clinic.patients.set_index("patient_id")
    assert pats["birth_date"].dt.strftime("%Y-%m-%d").fillna("-").to_dict() == {
        "1": "1980-03-15", "2": "1990-02-15", "3": "2001-07-01", "4": "-"}
    assert pats["sex"].astype(object).fillna("-").to_dict() == {"1": "M", "2": "F", "3": "M", "4": "-"}
    assert pats["record_status"].astype(object).to_dict() == {"1": "active", "2": "active", "3": "deceased",
                                                              "4": "active"}
    visits = clinic.visits.set_index("visit_id")
    assert visits["inpatient_days"].astype(object).fillna("-").to_dict() == {"10": 0, "11": 3, "12": 0, "13": "-"}
    assert visits["department"].astype(object).fillna("-").to_dict() == {"10": "내과", "11": "정형외과", "12": "-",
                                                                          "13": "-"}
    # Visit-domain rows summed (thousands separators read); all-unknown amounts stay unknown, not 0.
    assert visits["charge_insured"].fillna(-1).to_dict() == {"10": 2500.0, "11": -1, "12": 0.0, "13": -1}
    assert visits["charge_self_pay"].fillna(-1).to_dict() == {"10": 500.0, "11": -1, "12": 700.0, "13": -1}
    found = {p.check: p for p in clinic.report.repairs + clinic.report.info}
    assert found["approximate_date"].n_rows == 2 and found["approximate_date"].rows == (2, 3)
    assert found["invalid_date_parts"].rows == (4,) and found["invalid_date_parts"].examples == ("1975-13-1",)
    assert found["unreadable_date"].examples == ("not a date",) and found["unreadable_date"].column == "inpatient_days"
    assert "4 of 5 rows of 'bill' used where domain is Visit" in found["mapping_where"].message


def test_optional_lookup_tables_may_be_absent(hospital):
    folder, mapping = hospital
    (folder / "bill.csv").unlink()
    (folder / "died.csv").unlink()
    clinic = load_clinic(folder, mapping=mapping, as_of=AS_OF)
    assert clinic.visits["charge_insured"].isna().all() and clinic.visits["charge_self_pay"].isna().all()
    assert clinic.patients["record_status"].isna().all()  # no death table: unknown, not "active"
    absent = sorted(p.message for p in clinic.report.info if p.check == "empty_optional_table")
    assert absent[0] == "the optional lookup table 'bill' is absent or empty; charge_insured is left missing"
    assert len(absent) == 3


def test_required_lookup_table_must_be_present(hospital):
    folder, mapping = hospital
    (folder / "ward.csv").unlink()
    with pytest.raises(DataValidationError, match=r"'ward' was not found in the folder"):
        load_clinic(folder, mapping=mapping, as_of=AS_OF)


def test_lookup_needs_agg_when_keys_repeat(hospital, tmp_path):
    folder, mapping = hospital
    mapping.write_text(HOSPITAL_MAPPING.replace("take: payer, agg: sum", "take: payer"), encoding="utf-8")
    with pytest.raises(MappingError, match=r"'bill' has several rows for one event_id \(1 keys, e.g. 10\); "
                                           "add agg: first, last or sum"):
        load_clinic(folder, mapping=mapping, as_of=AS_OF)


def test_lookup_reading_absent_columns(hospital):
    folder, mapping = hospital
    mapping.write_text(HOSPITAL_MAPPING.replace("take: ward_name", "take: 병동명"), encoding="utf-8")
    with pytest.raises(MappingError, match=r"the lookup for department reads columns missing from 'ward': 병동명; "
                                           "it has: ward_id, ward_name"):
        load_clinic(folder, mapping=mapping, as_of=AS_OF)


def test_lookup_sum_of_text_is_refused(hospital):
    folder, mapping = hospital
    tables = copy.deepcopy(HOSPITAL)
    tables["bill"][4]["payer"] = "무료"
    write_clinic_csv(folder, tables)
    with pytest.raises(DataValidationError, match=r"\[bill\.payer\] values that cannot be read as a number, so sum "
                                                  r"for visits\.charge_insured cannot be taken") as caught:
        load_clinic(folder, mapping=mapping, as_of=AS_OF)
    assert caught.value.problems[0].rows == (5,)


def test_database_style_keys_and_codes_with_nulls(hospital):
    """Integer columns with NULLs arrive as floats (8507.0, 2.0): codes and keys still match."""
    folder, mapping = hospital
    for name, floats in (("pt", ["gender", "mob", "dob"]), ("stay", ["ward_id"])):
        frame = pd.read_csv(folder / f"{name}.csv", dtype=str)
        frame[floats] = frame[floats].astype(float)
        (folder / f"{name}.csv").unlink()
        frame.to_parquet(folder / f"{name}.parquet")
    clinic = load_clinic(folder, mapping=mapping, as_of=AS_OF)
    assert clinic.patients["sex"].astype(object).fillna("-").tolist() == ["M", "F", "M", "-"]
    assert clinic.visits["department"].astype(object).fillna("-").tolist() == ["내과", "정형외과", "-", "-"]
    assert clinic.patients["birth_date"].dt.strftime("%Y-%m-%d").iloc[0] == "1980-03-15"
