"""Fixtures of the churn tests: the shared demo clinic (in memory) and one fitted model."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_END


@pytest.fixture(scope="session")
def churn_clinic(generated_clinic):
    """The 1,500-patient demo clinic (seed 7) as a ClinicData, straight from the generator's tables."""
    return generated_clinic


@pytest.fixture(scope="session")
def churn_gaps(churn_clinic):
    from crm_analysis.churn import survival_data

    return survival_data(churn_clinic, DEMO_END)


@pytest.fixture(scope="session")
def churn_model(churn_clinic, churn_gaps):
    """The default (prediction-specification) model with its Weibull alternative, fitted at the demo's end."""
    from crm_analysis.churn import ChurnModel

    return ChurnModel(weibull_max_gaps=4_000).fit(churn_clinic, DEMO_END, gaps=churn_gaps)


@pytest.fixture(scope="session")
def churn_backtest(churn_clinic):
    """The churn back-test of the small demo: fitted at 2026-04-30, followed for 180 days (to 2026-10-27)."""
    from crm_analysis.churn import backtest

    return backtest(churn_clinic, "2026-04-30", 180, model={"weibull_max_gaps": 4_000})
