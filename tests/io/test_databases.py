"""Round trips through databases: write the demo clinic, load it back, validate it.

DuckDB and SQLite use files under ``tmp_path``. PostgreSQL uses the server in
``CRM_ANALYSIS_TEST_POSTGRES_URL`` (``.ci/postgres.sh`` starts one) with a schema
of its own per run, dropped afterwards, so runs never see each other's tables.
"""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from crm_analysis import load_clinic, write_clinic
from crm_analysis.cli import main
from crm_analysis.contract import TABLES

BACKENDS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def _postgres_schema_url(base_url: str):
    """A fresh schema on the test server, and a URL whose default schema it is."""
    schema = f"crm_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


def _drop_postgres_schema(base_url: str, schema: str) -> None:
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(request, demo_synth, tmp_path_factory):
    """The small demo clinic written into one database; yields its URL."""
    backend = request.param
    schema = None
    if backend == "postgresql":
        base_url = request.getfixturevalue("postgres_url")
        schema, url = _postgres_schema_url(base_url)
    else:
        url = f"{backend}:///{tmp_path_factory.mktemp(backend) / f'demo.{backend}'}"
    written = write_clinic(demo_synth.tables, url)
    assert sorted(written) == sorted(demo_synth.tables)
    yield url
    if schema:
        _drop_postgres_schema(base_url, schema)


def _sorted_by_key(df: pd.DataFrame, table: str) -> pd.DataFrame:
    return df.sort_values(list(TABLES[table].key)).reset_index(drop=True)


def test_database_loads_the_same_clinic_as_the_csv_folder(database_url, demo_clinic):
    loaded = load_clinic(database_url, as_of=demo_clinic.as_of)

    assert sorted(loaded.tables) == sorted(demo_clinic.tables)
    pd.testing.assert_frame_equal(loaded.row_counts(), demo_clinic.row_counts())
    for name, expected in demo_clinic.tables.items():
        got = loaded.tables[name]
        assert list(got.columns) == list(expected.columns), name
        pd.testing.assert_frame_equal(_sorted_by_key(got, name), _sorted_by_key(expected, name), obj=f"table {name}")


def test_cli_validates_a_database(database_url, demo_clinic, capsys):
    status = main(["validate", "--source", database_url, "--as-of", f"{demo_clinic.as_of:%Y-%m-%d}"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out.startswith("OK:")


def test_cli_demo_data_writes_into_duckdb(tmp_path, capsys):
    from crm_analysis import synth

    url = f"duckdb:///{tmp_path / 'cli_demo.duckdb'}"
    seed, patients, start, end = 11, 200, "2024-11-01", "2026-10-31"
    print(f"[cli duckdb demo clinic] seed={seed} patients={patients}")
    assert main(["demo-data", "--out", url, "--patients", str(patients), "--seed", str(seed),
                 "--start", start, "--end", end]) == 0
    assert main(["validate", "--source", url, "--as-of", end]) == 0, capsys.readouterr().err

    expected = synth.generate_clinic(n_patients=patients, seed=seed, start=start, end=end)
    loaded = load_clinic(url)
    assert {name: len(df) for name, df in loaded.tables.items()} == {
        name: len(df) for name, df in expected.tables.items()}
    assert sorted(loaded.patients["patient_id"]) == sorted(expected.tables["patients"]["patient_id"])
