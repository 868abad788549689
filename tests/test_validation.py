"""Bad input gives one clear DataValidationError naming table, column, rows and values.

Each case starts from a tiny valid clinic written as CSV, breaks one thing, and
checks both the library error and the CLI (exit status 2, no traceback).
Row numbers count data rows from 1, header excluded.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_analysis import DataValidationError, load_clinic
from crm_analysis.cli import main

AS_OF = "2024-12-31"

VALID = {
    "patients": [
        {"patient_id": "P1", "name": "김민준", "sex": "M", "birth_date": "1980-01-02", "phone": "010-0123-4567",
         "referral_source": "internet", "referred_by": "", "sms_consent": "true", "sms_consent_date": "2024-01-05"},
        {"patient_id": "P2", "name": "이서연", "sex": "F", "birth_date": "1990-05-06", "phone": "010-0234-5678",
         "referral_source": "word_of_mouth", "referred_by": "P1", "sms_consent": "false", "sms_consent_date": ""},
        {"patient_id": "P3", "name": "박지호", "sex": "M", "birth_date": "2015-03-04", "phone": "010-0234-5678",
         "referral_source": "signage", "referred_by": "", "sms_consent": "false", "sms_consent_date": ""},
    ],
    "visits": [
        {"visit_id": "V1", "patient_id": "P1", "visit_date": "2024-01-05", "department": "내과",
         "visit_type": "outpatient", "inpatient_days": "0", "charge_insured": "12000", "charge_self_pay": "0"},
        {"visit_id": "V2", "patient_id": "P2", "visit_date": "2024-02-05", "department": "내과",
         "visit_type": "inpatient", "inpatient_days": "3", "charge_insured": "150000", "charge_self_pay": "30000"},
        {"visit_id": "V3", "patient_id": "P3", "visit_date": "2024-03-01", "department": "소아청소년과",
         "visit_type": "outpatient", "inpatient_days": "0", "charge_insured": "8000", "charge_self_pay": "0"},
        {"visit_id": "V4", "patient_id": "P1", "visit_date": "2024-04-01", "department": "내과",
         "visit_type": "checkup", "inpatient_days": "0", "charge_insured": "0", "charge_self_pay": "90000"},
    ],
    "appointments": [
        {"appointment_id": "A1", "patient_id": "P1", "booked_at": "2023-12-20 10:00:00",
         "scheduled_at": "2024-01-05 09:30:00", "department": "내과", "status": "attended", "cancelled_at": ""},
        {"appointment_id": "A2", "patient_id": "P2", "booked_at": "2024-01-20 11:00:00",
         "scheduled_at": "2024-01-29 14:00:00", "department": "내과", "status": "no_show", "cancelled_at": ""},
        {"appointment_id": "A3", "patient_id": "P3", "booked_at": "2024-02-01 09:00:00",
         "scheduled_at": "2024-02-10 10:00:00", "department": "소아청소년과", "status": "cancelled",
         "cancelled_at": "2024-02-08 18:00:00"},
        {"appointment_id": "A4", "patient_id": "P1", "booked_at": "2024-12-20 09:00:00",
         "scheduled_at": "2025-01-10 10:00:00", "department": "내과", "status": "booked", "cancelled_at": ""},
    ],
    "reminders": [
        {"reminder_id": "R1", "appointment_id": "A1", "channel": "kakao", "schedule": "1d",
         "sent_at": "2024-01-04 10:00:00", "delivered": "true"},
        {"reminder_id": "R2", "appointment_id": "A2", "channel": "sms", "schedule": "1d",
         "sent_at": "2024-01-28 10:00:00", "delivered": "false"},
    ],
    "pregnancies": [
        {"patient_id": "P2", "due_date": "2025-03-01", "outcome": "", "outcome_date": ""},
    ],
}


def write_clinic_csv(folder: Path, tables: dict[str, list[dict]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False, encoding="utf-8-sig")
    return folder


def _set(table: str, row: int, column: str, value: str):
    """Mutation: set one cell (row counts from 1)."""
    def mutate(tables):
        tables[table][row - 1][column] = value
    return mutate


def _append(table: str, **values):
    def mutate(tables):
        tables[table].append({**tables[table][0], **values})
    return mutate


def _drop_column(table: str, column: str):
    def mutate(tables):
        for row in tables[table]:
            row.pop(column)
    return mutate


# (case id, mutation, table, column, expected first rows, a word the message must contain)
ROW_CASES = [
    ("unparseable_date", _set("visits", 2, "visit_date", "2024-13-45"), "visits", "visit_date", (2,), "date"),
    ("korean_word_as_date", _set("patients", 3, "birth_date", "모름"), "patients", "birth_date", (3,), "date"),
    ("text_in_charge", _set("visits", 3, "charge_insured", "abc"), "visits", "charge_insured", (3,), "number"),
    ("fractional_days", _set("visits", 2, "inpatient_days", "2.5"), "visits", "inpatient_days", (2,), "whole number"),
    ("bad_yes_no", _set("patients", 1, "sms_consent", "maybe"), "patients", "sms_consent", (1,), "yes/no"),
    ("duplicate_patient_id", _set("patients", 3, "patient_id", "P2"), "patients", "patient_id", (2, 3), "duplicate"),
    ("duplicate_visit_id", _set("visits", 4, "visit_id", "V1"), "visits", "visit_id", (1, 4), "duplicate"),
    ("visit_of_unknown_patient", _set("visits", 4, "patient_id", "P9"), "visits", "patient_id", (4,), "not found"),
    ("appointment_of_unknown_patient", _set("appointments", 2, "patient_id", "PX"), "appointments", "patient_id", (2,),
     "not found"),
    ("scheduled_before_booked", _set("appointments", 2, "scheduled_at", "2024-01-10 09:00:00"), "appointments",
     "scheduled_at", (2,), "before they were booked"),
    ("cancelled_before_booked", _set("appointments", 3, "cancelled_at", "2024-01-01 09:00:00"), "appointments",
     "cancelled_at", (3,), "before the booking"),
    ("negative_charge", _set("visits", 1, "charge_self_pay", "-5000"), "visits", "charge_self_pay", (1,), "minimum"),
    ("negative_days", _set("visits", 2, "inpatient_days", "-1"), "visits", "inpatient_days", (2,), "minimum"),
    ("visit_after_as_of", _set("visits", 3, "visit_date", "2025-02-01"), "visits", "visit_date", (3,), "after as_of"),
    ("booking_after_as_of", _set("appointments", 4, "booked_at", "2025-01-02 09:00:00"), "appointments", "booked_at",
     (4,), "after as_of"),
    ("future_outcome", _set("appointments", 4, "status", "attended"), "appointments", "status", (4,), "already marked"),
    ("sex_outside_codes", _set("patients", 2, "sex", "여"), "patients", "sex", (2,), "allowed"),
    ("unknown_status", _set("appointments", 1, "status", "showed"), "appointments", "status", (1,), "allowed"),
    ("unknown_referrer", _set("patients", 2, "referred_by", "P7"), "patients", "referred_by", (2,), "not found"),
    ("self_referral", _set("patients", 2, "referred_by", "P2"), "patients", "referred_by", (2,), "themself"),
    ("missing_patient_id", _set("patients", 3, "patient_id", ""), "patients", "patient_id", (3,), "missing"),
    ("reminder_for_unknown_appointment", _set("reminders", 2, "appointment_id", "A9"), "reminders", "appointment_id",
     (2,), "not found"),
    ("reminder_after_appointment", _set("reminders", 1, "sent_at", "2024-01-06 10:00:00"), "reminders", "sent_at",
     (1,), "after the appointment"),
    ("outcome_without_date", _set("pregnancies", 1, "outcome", "delivered"), "pregnancies", "outcome_date", (1,),
     "together"),
    ("unknown_channel", _set("reminders", 1, "channel", "fax"), "reminders", "channel", (1,), "allowed"),
]


@pytest.fixture
def tables():
    return copy.deepcopy(VALID)


def test_valid_clinic_loads(tmp_path, tables):
    clinic = load_clinic(write_clinic_csv(tmp_path / "ok", tables), as_of=AS_OF)
    assert len(clinic.patients) == 3 and len(clinic.visits) == 4
    assert clinic.patients["phone"].tolist() == ["010-0123-4567", "010-0234-5678", "010-0234-5678"]


@pytest.mark.parametrize("case, mutate, table, column, rows, word", ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_bad_rows_are_named(tmp_path, tables, capsys, case, mutate, table, column, rows, word):
    mutate(tables)
    folder = write_clinic_csv(tmp_path / case, tables)
    with pytest.raises(DataValidationError) as caught:
        load_clinic(folder, as_of=AS_OF)
    matching = [p for p in caught.value.problems if p.table == table and p.column == column]
    assert matching, f"no problem for {table}.{column} in:\n{caught.value}"
    problem = matching[0]
    assert problem.rows == rows
    assert word in problem.message
    if problem.check != "missing":  # a missing value has no example to show
        assert problem.examples, "the problem should show example values"
    text = str(caught.value)
    assert f"[{table}.{column}]" in text and "row(s):" in text

    status = main(["validate", "--source", str(folder), "--as-of", AS_OF])
    out, err = capsys.readouterr()
    assert status == 2
    assert f"[{table}.{column}]" in err and "Traceback" not in err + out


def test_all_problems_reported_at_once(tmp_path, tables):
    for _, mutate, *_ in ROW_CASES[:6]:
        mutate(tables)
    with pytest.raises(DataValidationError) as caught:
        load_clinic(write_clinic_csv(tmp_path / "many", tables), as_of=AS_OF)
    assert len(caught.value.problems) >= 6


STRUCTURAL_CASES = [
    ("missing_required_column", _drop_column("visits", "visit_date"), "visits", "visit_date", "missing"),
    ("missing_id_column", _drop_column("patients", "patient_id"), "patients", "patient_id", "missing"),
]


@pytest.mark.parametrize("case, mutate, table, column, word", STRUCTURAL_CASES, ids=[c[0] for c in STRUCTURAL_CASES])
def test_missing_columns_are_named(tmp_path, tables, capsys, case, mutate, table, column, word):
    mutate(tables)
    folder = write_clinic_csv(tmp_path / case, tables)
    with pytest.raises(DataValidationError) as caught:
        load_clinic(folder)
    problem = next(p for p in caught.value.problems if p.table == table and p.column == column)
    assert word in problem.message and "columns present" in problem.message
    assert main(["validate", "--source", str(folder)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_empty_table(tmp_path, tables):
    folder = write_clinic_csv(tmp_path / "empty", tables)
    (folder / "visits.csv").write_text("visit_id,patient_id,visit_date\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"\[visits\] required table 'visits' has no rows"):
        load_clinic(folder)


def test_empty_file(tmp_path, tables):
    folder = write_clinic_csv(tmp_path / "blank", tables)
    (folder / "patients.csv").write_bytes(b"")
    with pytest.raises(DataValidationError, match=r"\[patients\] the file patients.csv is empty"):
        load_clinic(folder)


def test_undecodable_file(tmp_path, tables):
    folder = write_clinic_csv(tmp_path / "bytes", tables)
    (folder / "visits.csv").write_bytes("visit_id,patient_id\n".encode() + b"V1,\x80\x80\xff\n")
    with pytest.raises(DataValidationError, match=r"\[visits\] cannot decode the file as UTF-8 or CP949.*line 2"):
        load_clinic(folder)


def test_missing_required_table(tmp_path, tables, capsys):
    del tables["visits"], tables["appointments"], tables["reminders"]
    folder = write_clinic_csv(tmp_path / "novisits", tables)
    with pytest.raises(DataValidationError, match=r"\[visits\] required table 'visits'.*missing"):
        load_clinic(folder)
    assert main(["validate", "--source", str(folder)]) == 2


def test_missing_source(tmp_path, capsys):
    with pytest.raises(DataValidationError, match="does not exist"):
        load_clinic(tmp_path / "nowhere")
    assert main(["validate", "--source", str(tmp_path / "nowhere")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_exact_duplicates_are_repaired_and_reported(tmp_path, tables):
    tables["visits"].append(dict(tables["visits"][1]))
    clinic = load_clinic(write_clinic_csv(tmp_path / "dups", tables), as_of=AS_OF)
    assert len(clinic.visits) == 4
    repair = next(p for p in clinic.report.repairs if p.check == "exact_duplicate")
    assert repair.table == "visits" and repair.n_rows == 1 and repair.rows == (5,)


def test_quarantine_sets_bad_rows_aside_and_cascades(tmp_path, tables):
    _set("patients", 3, "birth_date", "모름")(tables)
    clinic = load_clinic(write_clinic_csv(tmp_path / "q", tables), as_of=AS_OF, on_invalid="quarantine")
    assert clinic.patients["patient_id"].tolist() == ["P1", "P2"]
    quarantined = clinic.report.quarantined
    assert quarantined["patients"]["patient_id"].tolist() == ["P3"]
    # P3's visit and appointment pointed at a quarantined patient, so they follow it.
    assert quarantined["visits"]["visit_id"].tolist() == ["V3"]
    assert quarantined["appointments"]["appointment_id"].tolist() == ["A3"]
    assert clinic.report.n_quarantined == 3
    assert "birth_date: type_date" in quarantined["patients"]["problem"].iloc[0]


def test_inputs_are_not_modified_by_validation(tmp_path, tables):
    from crm_analysis.validation import validate_tables

    clinic = load_clinic(write_clinic_csv(tmp_path / "pure", tables), as_of=AS_OF)
    frames = {n: df.copy() for n, df in clinic.tables.items()}
    before = {n: df.copy() for n, df in frames.items()}
    validate_tables(frames, as_of=pd.Timestamp(AS_OF))
    for name in frames:
        pd.testing.assert_frame_equal(frames[name], before[name])


def test_visits_are_not_derived_from_appointments_without_being_asked(tmp_path, tables):
    # Only a mapping's `from_appointments: attended` derives visits (tests/test_bad_input.py); a missing visits
    # file is reported as missing.
    del tables["visits"]
    with pytest.raises(DataValidationError, match=r"required table 'visits' .*missing.*from_appointments: attended"):
        load_clinic(write_clinic_csv(tmp_path / "derive", tables), as_of=AS_OF)


def test_missing_column_does_not_hide_other_problems(tmp_path, tables):
    _drop_column("appointments", "status")(tables)
    _set("patients", 2, "sex", "X")(tables)
    _set("visits", 4, "patient_id", "P9")(tables)
    with pytest.raises(DataValidationError) as caught:
        load_clinic(write_clinic_csv(tmp_path / "mixed", tables), as_of=AS_OF)
    found = {(p.table, p.column) for p in caught.value.problems}
    assert {("appointments", "status"), ("patients", "sex"), ("visits", "patient_id")} <= found


def test_quarantine_cannot_empty_a_required_table(tmp_path, tables):
    for row in tables["visits"]:
        row["visit_date"] = "nonsense"
    with pytest.raises(DataValidationError, match="every row of the required table 'visits' was quarantined"):
        load_clinic(write_clinic_csv(tmp_path / "all_bad", tables), as_of=AS_OF, on_invalid="quarantine")


def test_quarantined_rows_keep_the_values_as_given(tmp_path, tables):
    _set("patients", 3, "birth_date", "1980-13-40")(tables)
    clinic = load_clinic(write_clinic_csv(tmp_path / "raw", tables), as_of=AS_OF, on_invalid="quarantine")
    assert clinic.report.quarantined["patients"]["birth_date"].tolist() == ["1980-13-40"]


def test_non_finite_numbers_are_unreadable(tmp_path, tables):
    _set("visits", 1, "inpatient_days", "inf")(tables)
    _set("visits", 2, "charge_self_pay", "inf")(tables)
    with pytest.raises(DataValidationError) as caught:
        load_clinic(write_clinic_csv(tmp_path / "inf", tables), as_of=AS_OF)
    found = {(p.table, p.column, p.rows) for p in caught.value.problems}
    assert {("visits", "inpatient_days", (1,)), ("visits", "charge_self_pay", (2,))} <= found


def test_two_headers_for_one_column(tmp_path, tables):
    for row in tables["patients"]:
        row["환자번호"] = row["patient_id"]
    with pytest.raises(DataValidationError, match="several columns stand for the same contract column: "
                                                  "patient_id ← patient_id, 환자번호"):
        load_clinic(write_clinic_csv(tmp_path / "dupcols", tables))


def test_empty_optional_file_counts_as_absent(tmp_path, tables):
    folder = write_clinic_csv(tmp_path / "empty_optional", tables)
    (folder / "reminders.csv").write_bytes(b"")
    clinic = load_clinic(folder, as_of=AS_OF)
    assert not clinic.has("reminders")
    assert any(p.check == "empty_optional_table" for p in clinic.report.info)


def test_unreadable_date_cells_in_a_workbook_are_reported(tmp_path, tables):
    import datetime as dt

    with pd.ExcelWriter(tmp_path / "clinic.xlsx") as book:
        patients = pd.DataFrame(tables["patients"])
        patients["birth_date"] = [dt.datetime(1980, 1, 2), dt.datetime(9999, 12, 31), dt.datetime(2015, 3, 4)]
        patients.to_excel(book, sheet_name="patients", index=False)
        pd.DataFrame(tables["visits"]).to_excel(book, sheet_name="visits", index=False)
    with pytest.raises(DataValidationError) as caught:
        load_clinic(tmp_path / "clinic.xlsx", as_of=AS_OF)
    problem = next(p for p in caught.value.problems if p.column == "birth_date")
    assert problem.table == "patients" and problem.rows == (2,)


def test_zoned_moments_become_clinic_local(tmp_path, tables):
    """A database or Parquet file storing UTC instants gives Seoul wall-clock days."""
    reference = load_clinic(write_clinic_csv(tmp_path / "csv", tables), as_of=AS_OF)
    visits = reference.visits.copy()
    visits["visit_date"] = (visits["visit_date"] + pd.Timedelta(minutes=30)).dt.tz_localize("Asia/Seoul").dt.tz_convert("UTC")
    frames = {**reference.tables, "visits": visits}
    folder = tmp_path / "parquet"
    for name, df in frames.items():
        folder.mkdir(exist_ok=True)
        df.to_parquet(folder / f"{name}.parquet", index=False)
    clinic = load_clinic(folder, as_of=AS_OF)
    pd.testing.assert_series_equal(clinic.visits["visit_date"], reference.visits["visit_date"])



CELLS = ["", "P1", "P2", "V1", "A1", "R1", "M", "여", "internet", "kakao", "fax", "attended", "showed", "1d", "0", "-1",
         "2.5", "abc", "2024-01-05", "2024-13-45", "2024-01-05 10:00:00", "true", "maybe"]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(VALID)),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30), st.sampled_from(CELLS)), max_size=3), st.booleans())
def test_quick_column_check_never_passes_what_pandera_refuses(name, edits, repeat_row):
    """The quick check that lets pandera be skipped passes only tables pandera finds nothing wrong with."""
    from crm_analysis.contract import TABLES
    from crm_analysis.validation import _surely_valid, conform_table, contract_schema

    rows = copy.deepcopy(VALID[name])
    for row, col, value in edits:
        record = rows[row % len(rows)]
        record[sorted(record)[col % len(record)]] = value
    if repeat_row:
        rows.append(dict(rows[0]))
    raw = pd.DataFrame(rows, dtype="string[pyarrow]").replace("", None)
    raw.index = pd.RangeIndex(1, len(raw) + 1)
    typed = conform_table(raw, TABLES[name])[0]
    if _surely_valid(TABLES[name], typed):
        contract_schema(name).validate(typed, lazy=True)


def test_valid_tables_skip_pandera():
    from crm_analysis.contract import TABLES
    from crm_analysis.validation import _surely_valid, conform_table

    for name, rows in VALID.items():
        raw = pd.DataFrame(rows, dtype="string[pyarrow]").replace("", None)
        raw.index = pd.RangeIndex(1, len(raw) + 1)
        assert _surely_valid(TABLES[name], conform_table(raw, TABLES[name])[0]), name


ids = st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c"])), max_size=8)


@settings(max_examples=200, deadline=None)
@given(ids, st.lists(st.sampled_from([0.0, 1.0, float("nan")]), min_size=8, max_size=8), st.booleans())
def test_exact_duplicates_are_pandas_duplicated(first, other, sort):
    """Comparing whole rows only where the first column repeats finds what DataFrame.duplicated finds."""
    from crm_analysis.validation import _exact_duplicates

    first = sorted(set(v for v in first if v)) if sort else first
    df = pd.DataFrame({"id": pd.Series(first, dtype="string[pyarrow]"), "x": other[:len(first)]},
                      index=pd.RangeIndex(1, len(first) + 1))
    assert _exact_duplicates(df).tolist() == df.duplicated(keep="first").tolist()


@settings(max_examples=200, deadline=None)
@given(ids, ids)
def test_first_match_is_pandas_map(keys, index):
    """Reminder times looked up by Arrow are what pandas' map of the first row per appointment gives."""
    from crm_analysis.validation import _first_match

    keys = pd.Series(keys, dtype="string[pyarrow]", name="appointment_id")
    appts = pd.DataFrame({"appointment_id": pd.Series(index, dtype="string[pyarrow]"),
                          "scheduled_at": pd.date_range("2024-01-01", periods=len(index), freq="D")})
    expected = keys.map(appts.drop_duplicates("appointment_id").set_index("appointment_id")["scheduled_at"])
    pd.testing.assert_series_equal(_first_match(keys, appts["appointment_id"], appts["scheduled_at"]), expected)


def test_quick_column_check_knows_every_rule_of_the_schema():
    """The quick check covers dtype, missing, unique, allowed values and minimum: a new kind of rule in
    contract_schema must be added to validation._column_surely_valid too, or pandera would be skipped for it."""
    from crm_analysis.contract import TABLES
    from crm_analysis.validation import contract_schema

    for name in TABLES:
        schema = contract_schema(name)
        assert not schema.checks and schema.unique is None and schema.index is None and not schema.coerce
        for column in schema.columns.values():
            assert {check.name for check in column.checks} <= {"isin", "greater_than_or_equal_to"}
            assert not column.coerce and not column.regex


# --------------------------------------------------------------------------- unbounded echo (issue 16, point 5)

#: One megabyte: what a broken export or a hostile value can put in one cell.
HUGE = "P" + "9" * 1_000_000
#: An error about a huge value stays short: well under this many characters.
SHORT = 4_000

# (case id, mutation, table, column, a row number the message must name)
HUGE_CASES = [
    ("duplicate_patient_id", lambda t: [t["patients"][i].update(patient_id=HUGE) for i in (1, 2)],
     "patients", "patient_id", 3),
    ("visit_of_unknown_patient", _set("visits", 4, "patient_id", HUGE), "visits", "patient_id", 4),
    ("self_referral", lambda t: t["patients"][1].update(patient_id=HUGE, referred_by=HUGE), "patients", "referred_by",
     2),
    ("unreadable_date", _set("visits", 2, "visit_date", HUGE), "visits", "visit_date", 2),
    ("outside_allowed_set", _set("patients", 2, "sex", HUGE), "patients", "sex", 2),
]


@pytest.mark.parametrize("case, mutate, table, column, row", HUGE_CASES, ids=[c[0] for c in HUGE_CASES])
def test_a_huge_value_is_cut_in_the_error(tmp_path, tables, capsys, case, mutate, table, column, row):
    mutate(tables)
    folder = write_clinic_csv(tmp_path / case, tables)
    with pytest.raises(DataValidationError) as caught:
        load_clinic(folder, as_of=AS_OF)
    text = str(caught.value)
    print(f"{case}: {len(text):,} characters\n{text[:600]}")
    assert len(text) < SHORT
    assert f"[{table}.{column}]" in text and str(row) in text.split(f"[{table}.{column}]")[1].split("\n")[0]
    assert "9" * 60 in text, "the start of the value is still shown"

    assert main(["validate", "--source", str(folder), "--as-of", AS_OF]) == 2
    err = capsys.readouterr().err
    assert len(err) < SHORT and f"[{table}.{column}]" in err and "Traceback" not in err


def test_a_huge_value_stops_a_run_with_a_short_message(tmp_path, tables, capsys):
    HUGE_CASES[0][1](tables)
    folder = write_clinic_csv(tmp_path / "clinic", tables)
    status = main(["run", "--month", "2024-12", "--source", str(folder), "--out", str(tmp_path / "reports"),
                   "--outreach-dir", str(tmp_path / "outreach"), "--no-pdf", "--no-hooks"])
    out, err = capsys.readouterr()
    print(err[:600])
    assert status == 2
    assert len(out + err) < SHORT and "[patients.patient_id]" in err and "Traceback" not in err
    assert not (tmp_path / "reports" / "2024-12").exists()


def test_a_huge_column_name_is_cut_in_the_error(tmp_path, tables):
    for row in tables["visits"]:
        row["x" * 1_000_000] = row.pop("visit_date")
    with pytest.raises(DataValidationError) as caught:
        load_clinic(write_clinic_csv(tmp_path / "header", tables), as_of=AS_OF)
    text = str(caught.value)
    assert len(text) < SHORT and "[visits.visit_date]" in text and "columns present" in text


def test_a_huge_argument_is_cut_in_the_error(tmp_path, tables, capsys):
    """The command's last guard: an error from anywhere that quotes a huge value whole is cut when printed."""
    folder = write_clinic_csv(tmp_path / "clinic", tables)
    status = main(["run", "--month", "2024-" + "9" * 1_000_000, "--source", str(folder), "--out",
                   str(tmp_path / "reports"), "--outreach-dir", str(tmp_path / "outreach"), "--no-pdf"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: month") and len(err) < SHORT and "Traceback" not in err



# --------------------------------------------------------------------------- validation that streams (issue 22)
#
# Large sources are checked column by column: categorical (Parquet) columns are read once per category, ids are
# looked up by their numbers when they are of one length and sorted, or by a DuckDB join, and each id column is
# hashed once for every rule that needs it. These tests hold those paths to straightforward pandas references.


def _hostile_tables() -> dict[str, list[dict]]:
    """The tiny clinic with ids of one length and most kinds of damage at once."""
    tables = copy.deepcopy(VALID)
    for row in tables["patients"]:
        row["patient_id"] = row["patient_id"].replace("P", "P0")
        row["referred_by"] = row["referred_by"].replace("P", "P0")
    for name in ("visits", "appointments", "reminders", "pregnancies"):
        for row in tables[name]:
            for key in ("visit_id", "patient_id", "appointment_id", "reminder_id"):
                if row.get(key):
                    row[key] = row[key][0] + "0" + row[key][1:]
    tables["patients"] += [
        {**tables["patients"][0], "patient_id": "P05", "sex": "여", "birth_date": "모름", "referred_by": "P05"},
        {**tables["patients"][1], "patient_id": "P06", "referred_by": "P99", "region": ""},
        {**tables["patients"][2], "patient_id": "", "phone": "02-123-4567"},
        {**tables["patients"][2], "patient_id": "P03", "name": "다른 사람"},          # the same id, other content
        {**tables["patients"][1], "patient_id": "1.5E+10"},                          # a spreadsheet-damaged id
    ]
    tables["visits"] += [
        dict(tables["visits"][1]),                                                   # an exact copy
        {**tables["visits"][0], "visit_id": "V05", "patient_id": "P77", "visit_date": "2024-13-45"},
        {**tables["visits"][0], "visit_id": "V06", "patient_id": "X01", "charge_insured": "-3"},
        {**tables["visits"][0], "visit_id": "V07", "patient_id": "P1", "visit_type": "inpatient"},
        dict(tables["visits"][1]),                                                   # a second copy
    ]
    tables["appointments"] += [
        {**tables["appointments"][1], "appointment_id": "A05", "patient_id": "P06", "status": "showed"},
        {**tables["appointments"][1], "appointment_id": "A07", "patient_id": "P08",
         "scheduled_at": "2024-01-10 09:00:00"},
        dict(tables["appointments"][0]),
    ]
    tables["reminders"] += [
        {**tables["reminders"][0], "reminder_id": "R03", "appointment_id": "A06"},   # between two ids: not one
        {**tables["reminders"][0], "reminder_id": "R04", "appointment_id": "A9"},    # shorter than every id
        {**tables["reminders"][0], "reminder_id": "R05", "appointment_id": "B01"},   # another prefix
        {**tables["reminders"][0], "reminder_id": "R06", "appointment_id": "A0x"},   # not digits
        {**tables["reminders"][0], "reminder_id": "R07", "appointment_id": "A07", "sent_at": "2024-02-01 10:00:00"},
        {**tables["reminders"][1], "reminder_id": "R08", "appointment_id": ""},
    ]
    return tables


def _write_parquet_clinic(folder: Path, tables: dict[str, list[dict]]) -> Path:
    """The clinic as Parquet the way pandas writes it: category columns as dictionaries, blanks missing, and
    numbers, moments and yes/no in their own types wherever every value of the column reads as one."""
    from crm_analysis.contract import TABLES

    moments = lambda v: pd.to_datetime(v, format="ISO8601")  # noqa: E731
    readers = {"int": pd.to_numeric, "float": lambda v: pd.to_numeric(v).astype(float), "date": moments,
               "datetime": moments,
               "bool": lambda v: v.map({"true": True, "false": False, None: None}).astype("boolean")
               if v.isin(["true", "false"]).all() else v.astype(float)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        frame = pd.DataFrame(rows).replace("", None)
        for col in TABLES[name].columns:
            if col.name in frame and col.dtype == "category":
                frame[col.name] = frame[col.name].astype("category")
            elif col.name in frame and col.dtype in readers:
                try:
                    frame[col.name] = readers[col.dtype](frame[col.name])
                except (ValueError, TypeError):
                    pass  # a damaged value: the column stays text, as a text export would give it
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def _outcome(folder: Path, policy: str):
    """Everything loading reports: the problems raised, or the report and tables it gives (folder names left out)."""
    def plain(problems):
        return [dataclasses.astuple(dataclasses.replace(p, message=p.message.replace(str(folder), "SOURCE")))
                for p in problems]

    try:
        clinic = load_clinic(folder, as_of=AS_OF, on_invalid=policy)
    except DataValidationError as err:
        return plain(err.problems), None, None
    report = clinic.report
    found = {level: plain(getattr(report, level)) for level in ("repairs", "warnings", "quarantine_problems")}
    quarantined = {name: (df.iloc[:, 0].astype(str).tolist(), df["problem"].tolist())
                   for name, df in report.quarantined.items()}
    return found, quarantined, clinic.tables


@pytest.mark.parametrize("policy", ["raise", "quarantine"])
def test_parquet_and_fast_lookups_report_what_text_and_hashing_do(tmp_path, monkeypatch, policy):
    """The whole report (table, column, check, rows, examples, repairs, quarantine) is the same whether the
    categories come as Parquet dictionaries and ids are looked up by their numbers or DuckDB, or everything
    comes as text and is looked up by Arrow's hash."""
    from crm_analysis import ids

    tables = _hostile_tables()
    csv, parquet = write_clinic_csv(tmp_path / "csv", tables), _write_parquet_clinic(tmp_path / "pq", tables)
    monkeypatch.setattr(ids, "_DUCKDB_FROM", 10**12)  # the reference: Arrow's index_in only
    expected = _outcome(csv, policy)
    monkeypatch.setattr(ids, "_DUCKDB_FROM", 0)  # every reference by the fast paths, however small
    got = _outcome(parquet, policy)
    assert got[:2] == expected[:2]
    if policy == "raise":
        assert {(p[0], p[1]) for p in got[0]} >= {("visits", "patient_id"), ("reminders", "appointment_id"),
                                                  ("patients", "patient_id"), ("patients", "sex")}
    else:
        assert len(got[1]["reminders"][0]) >= 4 and got[2] is not None
        for name, df in expected[2].items():
            pd.testing.assert_frame_equal(got[2][name], df)


def _reference_problems(tables: dict[str, pd.DataFrame]) -> set[tuple]:
    """Exact duplicates and unknown references found the plain pandas way: ``duplicated`` and ``isin``."""
    from crm_analysis.contract import TABLES

    found = set()
    for name, df in tables.items():
        dup = df.duplicated(keep="first")
        if dup.any():
            found.add((name, None, "exact_duplicate", tuple(df.index[dup][:5])))
        df = df.loc[~dup]
        for col in TABLES[name].columns:
            if col.references and col.references.split(".")[0] in tables:
                parent, key = col.references.split(".")
                orphan = df[col.name].notna() & ~df[col.name].astype(object).isin(
                    set(tables[parent][key].dropna().astype(object)))
                if orphan.any():
                    found.add((name, col.name, "unknown_reference", tuple(df.index[orphan.to_numpy()][:5])))
    return found


def test_duplicates_and_references_are_what_pandas_finds(monkeypatch):
    """validate_tables on conformed hostile tables, with the fast lookups forced, against pandas' own definitions."""
    from crm_analysis import ids, validation
    from crm_analysis.contract import TABLES
    from crm_analysis.validation import conform_table, validate_tables

    typed = {}
    for name, rows in _hostile_tables().items():
        raw = pd.DataFrame(rows, dtype="string[pyarrow]").replace("", None)
        raw.index = pd.RangeIndex(1, len(raw) + 1)
        typed[name] = conform_table(raw, TABLES[name])[0]
    expected = _reference_problems(typed)
    monkeypatch.setattr(ids, "_DUCKDB_FROM", 0)
    with pytest.raises(DataValidationError) as caught:
        validate_tables(typed, as_of=pd.Timestamp(AS_OF))
    repairs = [p for p in caught.value.problems if p.check == "exact_duplicate"]
    assert not repairs  # a repair is reported with the data, not as a problem
    got = {(p.table, p.column, p.check, p.rows) for p in caught.value.problems if p.check == "unknown_reference"}
    assert got == {e for e in expected if e[2] == "unknown_reference"}
    report = validation.ValidationReport()
    validation._drop_exact_duplicates(typed, report)
    assert {(p.table, p.column, p.check, p.rows) for p in report.repairs} == \
        {e for e in expected if e[2] == "exact_duplicate"}
    assert ("visits", None, "exact_duplicate", (5, 9)) in expected  # the reference sees both copies


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["F", "M", " F", "", "'=M", "여", "x"])), max_size=10),
       st.booleans())
def test_categorical_columns_read_as_their_text(values, unused):
    """A Parquet dictionary column is read per category, and tidied by code at the end: the same values, and the
    same categories, as reading every row as text and converting with astype("category")."""
    from crm_analysis.coercion import coerce_column
    from crm_analysis.validation import _as_category

    text = pd.Series(values, dtype="object")
    categorical = text.astype("category")
    if unused:
        categorical = categorical.cat.add_categories(["unused", "  "])
    via_text, _ = coerce_column(text, "category")
    via_codes, _ = coerce_column(categorical, "category")
    assert via_codes.astype(object).tolist() == via_text.astype(object).tolist()
    pd.testing.assert_series_equal(_as_category(via_codes), via_text.astype("category"))
    for kind in ("id", "string"):
        pd.testing.assert_series_equal(coerce_column(categorical, kind)[0], coerce_column(text, kind)[0])


def test_typed_columns_are_read_as_the_general_path_reads_them():
    """Columns already typed (Parquet, databases) skip the copies, not the rules: infinite amounts are unreadable,
    integers too large for float64 take the float path, and moments become days only when they are not already."""
    from crm_analysis.coercion import coerce_column

    index = pd.RangeIndex(1, 5)
    amounts = pd.Series([1.5, float("inf"), None, -2.0], index=index)
    parsed, bad = coerce_column(amounts, "float")
    assert parsed.tolist()[::3] == [1.5, -2.0] and parsed.isna().tolist() == [False, True, True, False]
    assert bad.tolist() == [2]
    finite = pd.Series([1.5, None, 3.0, 0.0], index=index)
    pd.testing.assert_series_equal(coerce_column(finite, "float")[0], finite)
    for ints in (pd.Series([0, 3, -7, 12], index=index), pd.Series([2**60 + 1, 1, 2, 3], index=index)):
        expected = ints.astype("float64").round().astype("Int64")
        got, bad = coerce_column(ints, "int")
        pd.testing.assert_series_equal(got, expected)
        assert not len(bad)
    days = pd.Series(pd.to_datetime(["2024-01-05", None, "2024-02-29", "1969-12-31"]), index=index)
    pd.testing.assert_series_equal(coerce_column(days, "date")[0], days)
    moments = days + pd.Timedelta(hours=15)
    pd.testing.assert_series_equal(coerce_column(moments, "date")[0], moments.dt.normalize())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.sampled_from([0.0, 1.0, float("nan")]),
                          st.sampled_from(["x", "y", None]), st.sampled_from([pd.NaT, pd.Timestamp("2024-01-01")])),
                max_size=12))
def test_exact_duplicates_narrowed_by_column_are_pandas_duplicated(rows):
    """Narrowing column by column, with missing values in every column and a categorical one, finds exactly the
    rows DataFrame.duplicated finds (the first copy kept)."""
    from crm_analysis.validation import _exact_duplicates

    df = pd.DataFrame(rows, columns=["id", "amount", "kind", "when"], index=pd.RangeIndex(1, len(rows) + 1))
    df = df.astype({"id": "string[pyarrow]", "kind": "category", "amount": "float64", "when": "datetime64[ns]"})
    assert _exact_duplicates(df).tolist() == df.duplicated(keep="first").tolist()
