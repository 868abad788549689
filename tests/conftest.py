"""Shared fixtures. Every random seed is explicit and printed, so a failure can be reproduced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "real"
KAGGLE_NOSHOW = SHARED_DATA / "noshow_kaggle_2016.csv.gz"

#: The seed and size of the small demo clinic most tests use.
DEMO_SEED = 7
DEMO_PATIENTS = 1_500
DEMO_END = "2026-10-31"


#: The longest tests (a few minutes each on two cores), started first: with two xdist workers, one that comes
#: last keeps its worker busy while the other idles, and the suite takes minutes longer.
RUN_FIRST = ("tests/network/test_run.py::test_dask_cluster_of_two_workers_matches_a_serial_run",
             "tests/campaigns/test_properties.py::test_no_staff_file_ever_breaks_a_rule")


def pytest_collection_modifyitems(config, items):
    first = [item for item in items if item.nodeid.startswith(RUN_FIRST)]
    if first:
        items[:] = first + [item for item in items if not item.nodeid.startswith(RUN_FIRST)]


def pytest_report_header(config):
    return f"crm_analysis test seeds: demo clinic seed={DEMO_SEED}, patients={DEMO_PATIENTS}"


@pytest.fixture(scope="session")
def demo_synth():
    """A small generated demo clinic (tables and truth), in memory."""
    from crm_analysis import synth

    print(f"\n[demo clinic] seed={DEMO_SEED} patients={DEMO_PATIENTS}")
    return synth.generate_clinic(n_patients=DEMO_PATIENTS, seed=DEMO_SEED, end=DEMO_END)


@pytest.fixture(scope="session")
def generated_clinic(demo_synth):
    """The small demo clinic as ClinicData straight from the generator's tables (no loader round trip).

    One object for the session, shared by the churn and campaign tests (``churn_clinic``, ``demo_data``), so
    the churn model fitted for it once (``crm_analysis.churn.cache``) serves them all. Do not modify it.
    """
    import pandas as pd

    from crm_analysis.clinic import ClinicData

    return ClinicData(demo_synth.tables, as_of=pd.Timestamp(DEMO_END), source="demo seed 7")


@pytest.fixture(scope="session")
def demo_dir(demo_synth, tmp_path_factory) -> Path:
    """The small demo clinic written as a CSV folder with truth.json. Do not modify it."""
    out = tmp_path_factory.mktemp("demo_clinic")
    demo_synth.write(out, format="csv")
    return out


@pytest.fixture(scope="session")
def demo_clinic(demo_dir):
    """The small demo clinic loaded through the public loader."""
    from crm_analysis import load_clinic

    return load_clinic(demo_dir, as_of=DEMO_END)


@pytest.fixture(scope="session")
def demo_monthly_run(demo_dir, tmp_path_factory):
    """The monthly run (every real notebook, HTML, PDF, outreach) of 2026-10 on the small demo clinic, once.

    Shared by the report tests and the notebook tests (each executed notebook is read from it). Do not modify
    what it published.
    """
    from crm_analysis.monthly.run import run_month

    root = tmp_path_factory.mktemp("monthly_run")
    result = run_month("2026-10", demo_dir, out=root / "reports", outreach_dir=root / "outreach", progress=False)
    print(f"\n[monthly run] 2026-10 on the demo clinic: timings {result.timings}")
    return result


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a PostgreSQL database to write to (``.ci/run`` starts one).

    Skips when none is configured, except under CI, where a missing server fails.
    """
    url = os.environ.get("CRM_ANALYSIS_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide CRM_ANALYSIS_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)")
        pytest.skip("no PostgreSQL server: set CRM_ANALYSIS_TEST_POSTGRES_URL (see .ci/postgres.sh)")
    return url
