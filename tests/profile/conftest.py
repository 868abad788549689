"""Fixtures for the patient-card tests: one card context for the demo clinic, built once."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import DEMO_END


@pytest.fixture(scope="session")
def as_of() -> pd.Timestamp:
    return pd.Timestamp(DEMO_END)


@pytest.fixture(scope="session")
def card_ctx(demo_clinic, as_of):
    """The full context (features, segments, VIPs, churn, CLV) of the 1,500-patient demo clinic."""
    from crm_analysis.profile import card_context

    return card_context(demo_clinic, as_of)


@pytest.fixture(scope="session")
def tables(demo_clinic):
    """The demo clinic's tables, as plain pandas (for independent checks)."""
    return {name: df.copy() for name, df in demo_clinic.tables.items()}
