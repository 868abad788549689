"""Property: however thin the clinic's export, the monthly run publishes and explains what it skipped.

Hypothesis thins the demo clinic (``tests/thinning.py``): it drops optional
tables and optional columns, cuts the history to 1–14 months, shrinks the
clinic to 20–500 patients, and may leave one department or no phone numbers.
Every variant must publish (exit 0, no traceback) with every skipped section
carrying a reason. Each example is a whole monthly run (every notebook), so
CI runs one derandomised example plus the thinnest case;
``benchmarks/bench_thin_clinics.py`` runs a larger random sample.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import DEMO_END
from tests.monthly_run import run_month_cli
from tests.thinning import OPTIONAL_COLUMNS, OPTIONAL_TABLES, Thinning, thin_tables, write_export

thinnings = st.builds(
    Thinning,
    months=st.integers(1, 14),
    patients=st.integers(20, 500),
    drop_tables=st.frozensets(st.sampled_from(OPTIONAL_TABLES)),
    drop_columns=st.frozensets(st.sampled_from(OPTIONAL_COLUMNS), max_size=5),
    one_department=st.booleans(),
    no_phones=st.booleans(),
    seed=st.integers(0, 2**16),
)

THINNEST = Thinning(months=1, patients=20, drop_tables=frozenset(OPTIONAL_TABLES),
                    drop_columns=frozenset({("visits", "charge_insured"), ("visits", "charge_self_pay"),
                                            ("patients", "referral_source")}),
                    one_department=True, no_phones=True, seed=1)


@pytest.mark.slow
@settings(max_examples=1, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@example(how=THINNEST)
@given(how=thinnings)
def test_any_thinned_clinic_publishes_with_reasons(demo_synth, capsys, how):
    print(how)
    folder = Path(tempfile.mkdtemp(prefix="thin-"))  # hypothesis reruns the test body: one folder per example
    try:
        export = write_export(thin_tables(demo_synth.tables, how, DEMO_END), folder / "export")
        run = run_month_cli(capsys, folder, "2026-10", export)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if how.months < 24:
        assert "retention" in run.skipped
    if how.months < 18:
        assert "clv_backtest" in run.skipped
    if "contacts" in how.drop_tables:
        assert "campaigns" in run.skipped and "campaign_lifts" in run.skipped
