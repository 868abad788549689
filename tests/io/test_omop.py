"""An OMOP CDM 5.4 export, written here from a small demo clinic, loads through the shipped mapping.

The export is test code (:func:`omop_tables`): the demo clinic's patients become ``person`` (with
``location`` for regions and ``death`` for deceased patients), its visits ``visit_occurrence``
(with ``care_site`` for departments and two ``cost`` rows per visit, plus ``Drug`` cost rows that
must not count). The loaded clinic is compared with values taken from the demo tables themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from crm_analysis import load_clinic, synth
from tests.conftest import DEMO_END, PROJECT_ROOT
from tests.io.test_databases import _drop_postgres_schema, _postgres_schema_url
from tests.monthly_run import run_month_cli

OMOP_MAPPING = PROJECT_ROOT / "data" / "mappings" / "omop_cdm_5.4.yaml"

#: A 27-patient demo clinic; deaths made likelier so that the `death` table is not empty.
OMOP_SEED = 3
OMOP_PATIENTS = 27
OMOP_PARAMS = {"status": {"deceased_60plus": 0.5, "deceased_other": 0.3}}

GENDER = {"M": 8507, "F": 8532}
#: The demo's visit types as OMOP visit concepts; OMOP has no check-up visit concept.
VISIT_CONCEPT = {"outpatient": 9202, "checkup": 9202, "inpatient": 9201}
EMERGENCY, EHR = 9203, 32817
DATE_COLUMNS = {"visit_start_date", "visit_end_date", "death_date"}
DATETIME_COLUMNS = {"birth_datetime", "visit_start_datetime", "visit_end_datetime", "death_datetime"}


@dataclass
class OmopExport:
    tables: dict[str, pd.DataFrame]
    patient_of: dict[str, str]  # person_id (as loaded, text) -> demo patient_id
    visit_of: dict[str, str]  # visit_occurrence_id -> demo visit_id


def _ints(values) -> pd.Series:
    return pd.Series(values, dtype="Int64")


def omop_tables(tables: dict[str, pd.DataFrame]) -> OmopExport:
    """The demo clinic's patients and visits as OMOP CDM 5.4 tables (lowercase names, integer ids)."""
    patients = tables["patients"].reset_index(drop=True).astype({"sex": object, "region": object})
    visits = tables["visits"].reset_index(drop=True).astype({"department": object, "visit_type": object})
    person_id = pd.Series(np.arange(1, len(patients) + 1), index=patients["patient_id"])
    regions = sorted(patients["region"].dropna().unique())
    location_id = {r: i for i, r in enumerate(regions, start=1)}
    birth = patients["birth_date"]
    person = pd.DataFrame({
        "person_id": person_id.to_numpy(),
        "gender_concept_id": patients["sex"].map(GENDER).fillna(0).astype(int),
        "year_of_birth": birth.dt.year.astype("Int64"),
        "month_of_birth": birth.dt.month.astype("Int64"),
        "day_of_birth": birth.dt.day.astype("Int64"),
        "birth_datetime": birth,
        "race_concept_id": 0,
        "ethnicity_concept_id": 0,
        "location_id": _ints(patients["region"].map(location_id)),
        "provider_id": _ints([pd.NA] * len(patients)),
        "care_site_id": _ints([pd.NA] * len(patients)),
        "person_source_value": patients["patient_id"],
        "gender_source_value": patients["sex"],
        "gender_source_concept_id": 0,
        "race_source_value": None,
        "race_source_concept_id": 0,
        "ethnicity_source_value": None,
        "ethnicity_source_concept_id": 0,
    })
    location = pd.DataFrame({
        "location_id": list(location_id.values()), "address_1": None, "address_2": None,
        "city": list(location_id), "state": "서울특별시", "zip": None, "county": None,
        "location_source_value": list(location_id), "country_concept_id": 4330427, "country_source_value": "KR",
        "latitude": np.nan, "longitude": np.nan,
    })
    departments = sorted(visits["department"].dropna().unique())
    care_site_id = {d: i for i, d in enumerate(departments, start=1)}
    care_site = pd.DataFrame({
        "care_site_id": list(care_site_id.values()), "care_site_name": departments,
        "place_of_service_concept_id": 0, "location_id": _ints([pd.NA] * len(departments)),
        "care_site_source_value": departments, "place_of_service_source_value": None,
    })
    visit_id = np.arange(1, len(visits) + 1)
    concept = visits["visit_type"].map(VISIT_CONCEPT)
    concept[(concept == 9202) & (visit_id % 10 == 0)] = EMERGENCY  # some outpatient visits came through the ER
    end = visits["visit_date"] + pd.to_timedelta(visits["inpatient_days"].fillna(0).astype(int), unit="D")
    visit_occurrence = pd.DataFrame({
        "visit_occurrence_id": visit_id,
        "person_id": visits["patient_id"].map(person_id).to_numpy(),
        "visit_concept_id": concept.astype(int),
        "visit_start_date": visits["visit_date"], "visit_start_datetime": visits["visit_date"],
        "visit_end_date": end, "visit_end_datetime": end,
        "visit_type_concept_id": EHR,
        "provider_id": _ints([pd.NA] * len(visits)),
        "care_site_id": _ints(visits["department"].map(care_site_id)),
        "visit_source_value": visits["visit_id"],
        "visit_source_concept_id": 0,
        "admitted_from_concept_id": 0, "admitted_from_source_value": None,
        "discharged_to_concept_id": 0, "discharged_to_source_value": None,
        "preceding_visit_occurrence_id": _ints([pd.NA] * len(visits)),
    })
    deceased = patients.loc[patients["record_status"].eq("deceased").fillna(False).to_numpy(), "patient_id"]
    last_visit = visits.groupby("patient_id")["visit_date"].max()
    death_date = last_visit.reindex(deceased).to_numpy() + pd.Timedelta(days=200)  # deceased: unseen for 365+ days
    death = pd.DataFrame({
        "person_id": person_id[deceased].to_numpy(), "death_date": death_date, "death_datetime": death_date,
        "death_type_concept_id": EHR, "cause_concept_id": 0, "cause_source_value": None,
        "cause_source_concept_id": 0,
    })
    cost = _cost(visit_id, visits)
    return OmopExport(
        tables={"person": person, "location": location, "care_site": care_site, "visit_occurrence": visit_occurrence,
                "death": death, "cost": cost},
        patient_of=dict(zip(person_id.astype(str), person_id.index)),
        visit_of=dict(zip(visit_id.astype(str), visits["visit_id"])),
    )


def _cost(visit_id: np.ndarray, visits: pd.DataFrame) -> pd.DataFrame:
    """Each visit's charges split over two Visit cost rows, and Drug cost rows that share its event id."""
    insured, self_pay = visits["charge_insured"].to_numpy(), visits["charge_self_pay"].to_numpy()
    first_insured, first_self = np.floor(insured / 3), np.floor(self_pay / 3)
    parts = [(first_insured, first_self, "Visit"), (insured - first_insured, self_pay - first_self, "Visit"),
             (np.full(len(visits), 99_000.0), np.full(len(visits), 11_000.0), "Drug")]
    rows = []
    for payer, patient, domain in parts:
        rows.append(pd.DataFrame({"cost_event_id": visit_id, "cost_domain_id": domain,
                                  "cost_type_concept_id": EHR, "currency_concept_id": 44818598,  # Korean won
                                  "total_charge": payer + patient, "total_cost": np.nan, "total_paid": payer + patient,
                                  "paid_by_payer": payer, "paid_by_patient": patient}))
    cost = pd.concat(rows, ignore_index=True)
    cost.insert(0, "cost_id", np.arange(1, len(cost) + 1))
    return cost


def write_omop_csv(export: OmopExport, folder: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """The export as the CDM's CSV files (person.csv, visit_occurrence.csv, ...)."""
    folder.mkdir(parents=True)
    for name, frame in export.tables.items():
        if name not in leave_out:
            frame.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    return folder


@pytest.fixture(scope="module")
def omop_demo():
    """The 27-patient demo clinic (its tables) and its OMOP export."""
    print(f"\n[OMOP demo clinic] seed={OMOP_SEED} patients={OMOP_PATIENTS} params={OMOP_PARAMS}")
    demo = synth.generate_clinic(n_patients=OMOP_PATIENTS, seed=OMOP_SEED, end=DEMO_END, params=OMOP_PARAMS)
    return demo.tables, omop_tables(demo.tables)


@pytest.fixture(scope="module")
def omop_csv(omop_demo, tmp_path_factory) -> Path:
    return write_omop_csv(omop_demo[1], tmp_path_factory.mktemp("omop") / "cdm")


def _expected_patients(demo: dict[str, pd.DataFrame]) -> pd.DataFrame:
    p = demo["patients"]
    return pd.DataFrame({
        "patient_id": p["patient_id"].astype("object"),
        "sex": p["sex"].astype("object"),
        "birth_date": p["birth_date"],
        "region": p["region"].astype("object"),
        # OMOP knows only who died: moved patients are active there.
        "record_status": np.where(p["record_status"].eq("deceased"), "deceased", "active").astype(object),
    }).set_index("patient_id").sort_index()


def _expected_visits(demo: dict[str, pd.DataFrame]) -> pd.DataFrame:
    v = demo["visits"]
    return pd.DataFrame({
        "visit_id": v["visit_id"].astype("object"),
        "patient_id": v["patient_id"].astype("object"),
        "visit_date": v["visit_date"],
        "visit_type": v["visit_type"].astype("object").replace({"checkup": "outpatient"}),
        "inpatient_days": v["inpatient_days"].astype("int64"),
        "department": v["department"].astype("object"),
        "charge_insured": v["charge_insured"].astype(float),
        "charge_self_pay": v["charge_self_pay"].astype(float),
    }).set_index("visit_id").sort_index()


def _assert_same_clinic(clinic, demo, export: OmopExport) -> None:
    want_p, want_v = _expected_patients(demo), _expected_visits(demo)
    pats = clinic.patients.assign(patient_id=clinic.patients["patient_id"].map(export.patient_of))
    got_p = pats.set_index("patient_id")[list(want_p.columns)].astype(
        {"sex": object, "region": object, "record_status": object}).sort_index()
    assert len(got_p) == OMOP_PATIENTS
    pd.testing.assert_frame_equal(got_p, want_p, check_index_type=False)

    visits = clinic.visits.assign(visit_id=clinic.visits["visit_id"].map(export.visit_of),
                                  patient_id=clinic.visits["patient_id"].map(export.patient_of))
    got_v = visits.set_index("visit_id")[list(want_v.columns)].astype(
        {"patient_id": object, "visit_type": object, "department": object, "inpatient_days": "int64"}).sort_index()
    assert len(got_v) == len(demo["visits"])
    assert (got_v["visit_type"] == "inpatient").sum() > 0 and (got_v["inpatient_days"] > 0).sum() > 0
    pd.testing.assert_frame_equal(got_v, want_v, check_index_type=False, check_exact=False, rtol=1e-12)


def test_omop_csv_export_loads_as_the_demo_clinic(omop_csv, omop_demo):
    demo, export = omop_demo
    assert {p.name for p in omop_csv.iterdir()} == {"person.csv", "location.csv", "care_site.csv",
                                                   "visit_occurrence.csv", "death.csv", "cost.csv"}
    clinic = load_clinic(omop_csv, mapping=OMOP_MAPPING, as_of=DEMO_END)
    _assert_same_clinic(clinic, demo, export)
    assert (clinic.patients["record_status"] == "deceased").sum() >= 1
    used = {p.message for p in clinic.report.info if p.check == "mapping_where"}
    assert any("of 'cost' used where cost_domain_id is Visit" in m for m in used)


def test_omop_without_cost_death_care_site_or_location_still_loads(omop_demo, tmp_path):
    demo, export = omop_demo
    folder = write_omop_csv(export, tmp_path / "cdm", leave_out=("cost", "death", "care_site", "location"))
    clinic = load_clinic(folder, mapping=OMOP_MAPPING, as_of=DEMO_END)
    assert len(clinic.patients) == OMOP_PATIENTS and len(clinic.visits) == len(demo["visits"])
    for column in ("charge_insured", "charge_self_pay", "department"):
        assert clinic.visits[column].isna().all(), column
    assert clinic.patients["record_status"].isna().all() and clinic.patients["region"].isna().all()
    absent = [p.message for p in clinic.report.info if p.check == "empty_optional_table"]
    assert any("'cost' is absent or empty" in m for m in absent)
    assert any("'death' is absent or empty" in m for m in absent)
    # Still the same visits.
    got = clinic.visits["inpatient_days"].astype("int64").sum()
    assert got == demo["visits"]["inpatient_days"].sum()


def _write_omop_database(export: OmopExport, url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for name, frame in export.tables.items():
                types = {c: sa.Date() for c in frame.columns if c in DATE_COLUMNS}
                types |= {c: sa.DateTime() for c in frame.columns if c in DATETIME_COLUMNS}
                frame.to_sql(name, conn, index=False, dtype=types)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_omop_postgres_schema_loads_as_the_demo_clinic(omop_demo, postgres_url):
    demo, export = omop_demo
    schema, url = _postgres_schema_url(postgres_url)
    try:
        _write_omop_database(export, url)
        clinic = load_clinic(url, mapping=OMOP_MAPPING, as_of=DEMO_END)
        _assert_same_clinic(clinic, demo, export)
    finally:
        _drop_postgres_schema(postgres_url, schema)


@pytest.mark.notebook
def test_monthly_run_on_the_omop_export(omop_csv, tmp_path, capsys):
    """``crm-analysis run --month 2026-10 --source <OMOP CSV> --mapping omop_cdm_5.4.yaml`` publishes."""
    run = run_month_cli(capsys, tmp_path, "2026-10", omop_csv, "--mapping", str(OMOP_MAPPING))
    # OMOP has no appointments, reminders or outreach log: those sections say so instead of failing.
    assert "appointments" in run.skipped["no_show"] and "contacts" in run.skipped["campaigns"]
    assert run.kpis["sections"]["patients"]["active_12m"] > 0
