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
#: Then the groups sharing a monthly run (``xdist_group``) and the modules and tests that take 15 s or more on
#: two cores (whole monthly runs, large generated clinics), so that the last minute is left to short tests.
#: The scheduler keeps this order (``--no-loadscope-reorder`` in pyproject.toml).
RUN_EARLY_GROUPS = ("demo_monthly_run", "hostile_run", "secrets_run")
RUN_EARLY = ("tests/test_tour.py", "tests/test_real_exports.py", "tests/monthly/test_run.py",
             "tests/synth/test_synth_truth.py", "tests/network/test_summary.py", "tests/churn/test_calibration.py",
             "tests/test_thin_clinics.py", "tests/report/test_pdf_fonts.py", "tests/reminders/test_rollout.py",
             "tests/test_packaging.py", "tests/io/test_omop.py", "tests/synth/test_synth_speed.py")


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own hook, so its suffix is seen when it took effect
def pytest_collection_modifyitems(config, items):
    _xdist_groups(config, items)

    def rank(item) -> tuple[int, int]:
        first = [i for i, prefix in enumerate(RUN_FIRST) if item.nodeid.startswith(prefix)]
        if first:
            return 0, first[0]
        if any(mark.args and mark.args[0] in RUN_EARLY_GROUPS for mark in item.iter_markers("xdist_group")):
            return 1, 0
        early = [i for i, prefix in enumerate(RUN_EARLY) if item.nodeid.startswith(prefix)]
        return (2, early[0]) if early else (3, 0)

    items.sort(key=rank)  # stable: collection order within each rank


def _xdist_groups(config, items) -> None:
    """``--dist loadgroup``: the unit of work each item belongs to, as the node id suffix ``@NAME``.

    - an item marked ``xdist_group(NAME)``: NAME (tests sharing a session's run, kept on the worker that holds it);
    - an item using a module-scoped fixture: its module, so the fixture is built once, not once per worker;
    - any other item: its own unit (as ``--dist load``).

    pytest-xdist adds the suffix for the marks itself by setting ``item._nodeid``, which pytest 9 no longer reads
    (a node's id is ``item._id``): the suffix was silently lost, every test became its own unit of work, and both
    workers built each shared run (the session's demo monthly run, the hostile and secret runs) and every module
    fixture. Done here in the workers only (the controller schedules by the ids the workers report).
    """
    if not (os.environ.get("PYTEST_XDIST_WORKER") and getattr(config.option, "loadgroup", False)):
        return
    for item in items:
        nodeid = item.nodeid
        names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                        for mark in item.iter_markers("xdist_group")})
        if names:
            suffix = "@" + "_".join(names)
            if nodeid.endswith(suffix):
                continue  # pytest-xdist's own suffix took effect
        elif _uses_module_fixture(item):
            suffix = "@" + nodeid.split("::", 1)[0]
        else:
            continue
        _set_nodeid(item, nodeid + suffix)


def _uses_module_fixture(item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(defs and defs[-1].scope in ("module", "class", "package")
               for name, defs in info.name2fixturedefs.items() if name in info.names_closure)


def _set_nodeid(item, nodeid: str) -> None:
    if hasattr(item, "_id"):  # pytest 9
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(nodeid)
    else:
        item._nodeid = nodeid


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
