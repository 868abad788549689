"""Data-quality overview: every number checked by hand on a tiny clinic.

The clinic below is small enough to count on paper. Its expected row counts,
monthly coverage and missing-value counts are written out next to it, derived
by hand from the rows (not by running the code). Ids, names, phones and emails
are distinctive strings so the privacy checks cannot pass by accident.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from crm_analysis import load_clinic
from crm_analysis import quality
from crm_analysis.contract import TABLES
from crm_analysis.i18n import LABELS, LANGS, label, localise_columns, localised_view

AS_OF = "2026-03-31"

TINY = {
    "patients": [
        # PAT002's first_visit_date is derived from visits (2026-02-15); PAT003's phone is invalid (set missing).
        {"patient_id": "PAT001", "name": "김가나다", "sex": "M", "phone": "010-1111-2222",
         "email": "kim.ganada@example.com", "first_visit_date": "2026-01-05", "sms_consent": "true",
         "sms_consent_date": ""},
        {"patient_id": "PAT002", "name": "이라마바", "sex": "F", "phone": "",
         "email": "lee.ramaba@example.com", "first_visit_date": "", "sms_consent": "false", "sms_consent_date": ""},
        {"patient_id": "PAT003", "name": "박사아자", "sex": "", "phone": "not-a-phone-xyz",
         "email": "", "first_visit_date": "2026-02-10", "sms_consent": "", "sms_consent_date": ""},
    ],
    "visits": [
        {"visit_id": "VIS001", "patient_id": "PAT001", "visit_date": "2026-01-05", "department": "내과",
         "charge_insured": "10000"},
        {"visit_id": "VIS002", "patient_id": "PAT001", "visit_date": "2026-02-07", "department": "내과",
         "charge_insured": ""},
        {"visit_id": "VIS003", "patient_id": "PAT002", "visit_date": "2026-02-15", "department": "",
         "charge_insured": "5000"},
        {"visit_id": "VIS004", "patient_id": "PAT003", "visit_date": "2026-02-10", "department": "외과",
         "charge_insured": "7000"},
    ],
    "appointments": [
        {"appointment_id": "APT001", "patient_id": "PAT001", "booked_at": "2025-12-20 10:00",
         "scheduled_at": "2026-01-05 10:00", "status": "attended"},
        {"appointment_id": "APT002", "patient_id": "PAT001", "booked_at": "2026-01-10 10:00",
         "scheduled_at": "2026-02-07 09:30", "status": "attended"},
        {"appointment_id": "APT003", "patient_id": "PAT002", "booked_at": "2026-03-01 10:00",
         "scheduled_at": "2026-03-20 14:00", "status": "no_show"},
        # Scheduled after as_of: a booking still ahead, not counted in coverage.
        {"appointment_id": "APT004", "patient_id": "PAT003", "booked_at": "2026-03-15 10:00",
         "scheduled_at": "2026-04-02 11:00", "status": "booked"},
    ],
    "reminders": [
        {"reminder_id": "REM001", "appointment_id": "APT001", "channel": "kakao", "sent_at": "2026-01-04 10:00"},
        {"reminder_id": "REM002", "appointment_id": "APT003", "channel": "sms", "sent_at": "2026-03-19 14:00"},
        {"reminder_id": "REM003", "appointment_id": "APT004", "channel": "", "sent_at": ""},
        {"reminder_id": "REM004", "appointment_id": "APT004", "channel": "kakao", "sent_at": "2026-03-31 11:00"},
    ],
    "contacts": [
        {"contact_id": "CON001", "campaign_id": "CMP1", "patient_id": "PAT001", "sent_at": "2026-02-01 09:00",
         "arm": "sent"},
        {"contact_id": "CON002", "campaign_id": "CMP1", "patient_id": "PAT002", "sent_at": "2026-02-01 09:00",
         "arm": "holdout"},
    ],
    "pregnancies": [
        {"patient_id": "PAT002", "due_date": "2026-01-20", "outcome": "delivered", "outcome_date": "2026-01-18"},
        {"patient_id": "PAT002", "due_date": "2026-12-01", "outcome": "", "outcome_date": ""},
    ],
}

#: Rows per table, by hand.
EXPECTED_ROWS = {"patients": 3, "visits": 4, "appointments": 4, "reminders": 4, "contacts": 2, "pregnancies": 2,
                 "vaccinations": 0}  # the tiny clinic has no vaccinations table

#: Coverage for 2026-01 .. 2026-03, by hand (APT004 and REM003 are not counted).
EXPECTED_COVERAGE = {
    "new_patients": [1, 2, 0],         # PAT001 Jan; PAT003 Feb 10, PAT002 Feb 15 (derived)
    "visits": [1, 3, 0],
    "appointments": [1, 1, 1],         # APT004 is scheduled after as_of
    "reminders": [1, 0, 2],            # REM003 has no sent_at
    "contacts": [0, 2, 0],
    "pregnancy_outcomes": [1, 0, 0],   # by outcome_date; the ongoing pregnancy has none
}

#: Missing values in every column the CSVs provide, by hand. Every other column is absent: all missing.
EXPECTED_MISSING = {
    ("patients", "patient_id"): 0, ("patients", "name"): 0, ("patients", "sex"): 1,
    ("patients", "phone"): 2,            # PAT002 empty, PAT003 invalid -> set missing
    ("patients", "email"): 1, ("patients", "first_visit_date"): 0,  # PAT002 derived from visits
    ("patients", "sms_consent"): 1, ("patients", "sms_consent_date"): 3,
    ("visits", "visit_id"): 0, ("visits", "patient_id"): 0, ("visits", "visit_date"): 0,
    ("visits", "department"): 1, ("visits", "charge_insured"): 1,
    ("appointments", "appointment_id"): 0, ("appointments", "patient_id"): 0, ("appointments", "booked_at"): 0,
    ("appointments", "scheduled_at"): 0, ("appointments", "status"): 0,
    ("reminders", "reminder_id"): 0, ("reminders", "appointment_id"): 0, ("reminders", "channel"): 1,
    ("reminders", "sent_at"): 1,
    ("contacts", "contact_id"): 0, ("contacts", "campaign_id"): 0, ("contacts", "patient_id"): 0,
    ("contacts", "sent_at"): 0, ("contacts", "arm"): 0,
    ("pregnancies", "patient_id"): 0, ("pregnancies", "due_date"): 0, ("pregnancies", "outcome"): 1,
    ("pregnancies", "outcome_date"): 1,
}

PERSONAL = [v for row in TINY["patients"] for k, v in row.items()
            if k in ("patient_id", "name", "phone", "email") and v]


def write_csvs(folder: Path, tables: dict[str, list[dict]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return write_csvs(tmp_path_factory.mktemp("tiny_clinic"), TINY)


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_clinic(tiny_dir, as_of=AS_OF)


def _all_text(frame: pd.DataFrame) -> str:
    return frame.to_csv() + " ".join(map(str, frame.columns)) + " ".join(map(str, frame.index))


# --------------------------------------------------------------------------- row counts

def test_row_counts_by_hand(tiny):
    counts = quality.row_counts(tiny)
    assert list(counts.columns) == ["table", "table_ko", "table_en", "present", "rows", "quarantined"]
    assert counts["table"].tolist() == list(TABLES)
    assert dict(zip(counts["table"], counts["rows"])) == EXPECTED_ROWS
    assert counts["present"].tolist() == [name in tiny.tables for name in TABLES] and (counts["quarantined"] == 0).all()
    assert not counts.set_index("table").loc["vaccinations", "present"]
    assert counts["rows"].dtype == "int64"
    assert counts.loc[counts["table"] == "visits", "table_ko"].item() == "내원"


def test_row_counts_absent_table_and_quarantine(tmp_path):
    tables = copy.deepcopy({k: TINY[k] for k in ("patients", "visits")})
    tables["visits"].append({**tables["visits"][0], "visit_id": "VIS005", "charge_insured": "-100"})
    clinic = load_clinic(write_csvs(tmp_path, tables), as_of=AS_OF, on_invalid="quarantine")
    counts = quality.row_counts(clinic).set_index("table")
    assert counts.loc["visits", "rows"] == 4 and counts.loc["visits", "quarantined"] == 1
    assert not counts.loc["reminders", "present"] and counts.loc["reminders", "rows"] == 0
    assert counts.loc["patients", "quarantined"] == 0


# --------------------------------------------------------------------------- monthly coverage

def test_monthly_coverage_by_hand(tiny):
    coverage = quality.monthly_coverage(tiny)
    expected = pd.DataFrame(EXPECTED_COVERAGE, index=pd.period_range("2026-01", "2026-03", freq="M", name="month"))
    pd.testing.assert_frame_equal(coverage, expected.astype("int64"))


def test_monthly_coverage_without_as_of_counts_every_appointment(tiny_dir):
    coverage = quality.monthly_coverage(load_clinic(tiny_dir))
    assert [str(m) for m in coverage.index] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert coverage["appointments"].tolist() == [1, 1, 1, 1]
    assert coverage["visits"].tolist() == [1, 3, 0, 0]


def test_monthly_coverage_runs_to_as_of_month_and_skips_absent_tables(tmp_path):
    clinic = load_clinic(write_csvs(tmp_path, {k: TINY[k] for k in ("patients", "visits")}), as_of="2026-05-31")
    coverage = quality.monthly_coverage(clinic)
    assert list(coverage.columns) == ["new_patients", "visits"]
    assert coverage["visits"].tolist() == [1, 3, 0, 0, 0]
    assert str(coverage.index[-1]) == "2026-05"


# --------------------------------------------------------------------------- missing rates

def test_missing_rates_by_hand(tiny):
    rates = quality.missing_rates(tiny)
    assert list(rates.columns) == ["table", "table_ko", "table_en", "column", "column_ko", "column_en",
                                   "n_rows", "n_missing", "missing_rate"]
    assert len(rates) == sum(len(TABLES[name].columns) for name in tiny.tables)  # the tables present
    got = rates.set_index(["table", "column"])
    for (table, column), row in got.iterrows():
        n_missing = EXPECTED_MISSING.get((table, column), EXPECTED_ROWS[table])  # not provided: all missing
        assert row["n_rows"] == EXPECTED_ROWS[table], (table, column)
        assert row["n_missing"] == n_missing, (table, column)
        assert row["missing_rate"] == pytest.approx(n_missing / EXPECTED_ROWS[table]), (table, column)
    assert got.loc[("patients", "phone"), "column_ko"] == "휴대전화"
    assert got.loc[("patients", "phone"), "column_en"] == "mobile phone"


def test_missing_rates_sorted_highest_first_ties_in_contract_order(tiny):
    rates = quality.missing_rates(tiny)
    assert rates["missing_rate"].is_monotonic_decreasing
    assert rates.index.equals(pd.RangeIndex(len(rates)))
    order = {(t, c.name): (i, j) for i, (t, table) in enumerate(TABLES.items()) for j, c in enumerate(table.columns)}
    for _, group in rates.groupby("missing_rate", sort=False):
        keys = [order[k] for k in zip(group["table"], group["column"])]
        assert keys == sorted(keys)
    # 2 of 3 patients have no usable phone: the highest share below "never provided".
    partial = rates[(rates["missing_rate"] > 0) & (rates["missing_rate"] < 1)]
    assert (partial.iloc[0]["table"], partial.iloc[0]["column"]) == ("patients", "phone")


# --------------------------------------------------------------------------- findings and privacy

def test_findings_carry_no_example_values(tiny):
    problems = tiny.report.repairs + tiny.report.warnings
    examples = [str(e) for p in problems for e in p.examples]
    # The report itself does hold examples (an invalid phone, a patient id), so the check below means something.
    assert "not-a-phone-xyz" in examples and "PAT001" in examples
    found = quality.findings(tiny)
    assert list(found.columns) == ["level", "table", "table_ko", "table_en", "column", "column_ko", "column_en",
                                   "check", "n_rows", "message", "check_ko", "message_ko", "check_en", "message_en"]
    # the Korean report names each rule and says what it means in Korean; the English keeps the message
    phone = found.set_index("check").loc["invalid_phone"]
    assert phone["check_ko"] == "전화번호 형식" and "전화번호" in phone["message_ko"]
    assert phone["message_en"] == phone["message"]
    assert {"invalid_phone", "consent_without_date", "derived_first_visit"} <= set(found["check"])
    text = _all_text(found)
    for value in examples:
        assert value not in text
    row = found.set_index("check").loc["invalid_phone"]
    assert row["level"] == "repaired" and row["n_rows"] == 1 and row["column_ko"] == "휴대전화"


def test_findings_empty_report_has_the_columns(tiny):
    from dataclasses import replace

    from crm_analysis.validation import ValidationReport

    found = quality.findings(replace(tiny, report=ValidationReport()))
    assert found.empty and "message" in found.columns and found["n_rows"].dtype == "int64"


def test_no_personal_data_in_any_output(tiny):
    result = quality.quality_summary(tiny)
    texts = [_all_text(getattr(result, f)) for f in ("row_counts", "coverage", "missing", "findings")]
    texts += [result.summary(), result._repr_html_(), quality.quality_summary(tiny, "en").summary()]
    blob = "\n".join(texts)
    for value in PERSONAL:
        assert value not in blob, value


# --------------------------------------------------------------------------- purity and the summary object

def _snapshot(clinic):
    return {name: df.copy(deep=True) for name, df in clinic.tables.items()}, clinic.report.to_frame()


def test_inputs_not_modified(tiny):
    tables, report = _snapshot(tiny)
    quality.quality_summary(tiny)
    quality.monthly_coverage(tiny)
    quality.missing_rates(tiny)
    quality.findings(tiny)
    assert set(tiny.tables) == set(tables)
    for name, df in tables.items():
        pd.testing.assert_frame_equal(tiny.tables[name], df)
    pd.testing.assert_frame_equal(tiny.report.to_frame(), report)


def test_quality_summary_object(tiny):
    result = quality.quality_summary(tiny, min_count=1)  # threshold 1: nothing hidden, so the frames are the functions'
    pd.testing.assert_frame_equal(result.coverage, quality.monthly_coverage(tiny), check_dtype=False)
    pd.testing.assert_frame_equal(result.missing, quality.missing_rates(tiny), check_dtype=False)
    with pytest.raises(AttributeError):
        result.lang = "en"
    text = result.summary()
    assert text.splitlines()[0] == "데이터 품질 요약"
    assert "2026-03-31" in text and "2026-01 – 2026-03 (3개월)" in text
    never_provided = sum(len(TABLES[name].columns) for name in tiny.tables) - len(EXPECTED_MISSING)
    assert f"전부 비어 있는 항목 수: {never_provided + 1}" in text  # + sms_consent_date, provided but empty
    assert "내원 자료가 없는 달: 2026-03" in text
    english = quality.quality_summary(tiny, lang="en", min_count=1).summary()
    assert "months without visits: 2026-03" in english
    assert "patients 3" in english and "partly missing (top): patients.mobile phone 67%" in english
    assert "<h4>" in result._repr_html_() and str(result) == text
    with pytest.raises(ValueError, match="lang must be one of"):
        quality.quality_summary(tiny, lang="fr")


def test_quality_summary_hides_small_counts(tiny):
    """The summary's frames are published as they are: counts of 1-4 hidden, with what would reveal them."""
    result = quality.quality_summary(tiny)
    raw = quality.missing_rates(tiny)
    for frame, columns in ((result.row_counts, ["rows", "quarantined"]), (result.coverage, list(result.coverage)),
                           (result.missing, ["n_rows", "n_missing"]), (result.findings, ["n_rows"])):
        values = frame[columns].astype("float64").to_numpy()
        assert not ((values >= 1) & (values < 5)).any(), frame
    present = raw["n_rows"] - raw["n_missing"]
    hidden = (result.missing["n_missing"].isna() | result.missing["n_rows"].isna()).to_numpy()
    assert hidden[((present >= 1) & (present < 5)).to_numpy()].all(), "few values present: a count hidden too"
    assert result.missing["missing_rate"].isna().to_numpy()[hidden].all()
    assert result.coverage.attrs["kinds"] == dict.fromkeys(result.coverage.columns, "count")
    text = quality.quality_summary(tiny, lang="en").summary()
    assert "patients <5" in text and "patients 3" not in text


# --------------------------------------------------------------------------- i18n

def test_every_label_has_both_languages():
    for key, entry in LABELS.items():
        assert set(entry) == set(LANGS), key
        assert all(isinstance(v, str) and v for v in entry.values()), key


def test_label_and_unknown_lang():
    assert label("missing_rate") == "결측률"
    assert label("missing_rate", "en") == "share missing"
    with pytest.raises(ValueError, match="lang must be one of"):
        label("missing_rate", "jp")
    with pytest.raises(KeyError, match="add it to"):
        label("no_such_key", "ko")


def test_localise_columns_keeps_the_label_in_lang(tiny):
    rates = quality.missing_rates(tiny)
    ko = localise_columns(rates, "ko")
    assert list(ko.columns) == ["테이블", "항목", "행 수", "결측 수", "결측률"]
    assert ko["테이블"].iloc[0] == "환자"
    en = localise_columns(rates, "en")
    assert list(en.columns) == ["table", "column", "rows", "missing", "share missing"]
    assert en["table"].iloc[0] == "patients"
    assert list(rates.columns)[0] == "table" and "table_ko" in rates  # input untouched
    coverage = localise_columns(quality.monthly_coverage(tiny), "ko")
    assert coverage.index.name == "월" and list(coverage.columns)[0] == "신환(초진)"
    with pytest.raises(ValueError):
        localise_columns(rates, "fr")


def test_localised_view_formats_rates_and_levels(tiny):
    html = localised_view(quality.missing_rates(tiny), "ko").to_html()
    assert "결측률" in html and "66.7%" in html
    html = localised_view(quality.findings(tiny), "ko").to_html()
    assert "자동 수정" in html and "경고" in html
