"""Module fixtures for the reminder tests: the demo clinic's analysis table, model and evaluation."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_END


@pytest.fixture(scope="session")
def rem_truth(demo_synth):
    """truth["reminders"] of the demo clinic."""
    return demo_synth.truth["reminders"]


@pytest.fixture(scope="session")
def rem_table(demo_clinic):
    from crm_analysis.reminders import appointment_table

    return appointment_table(demo_clinic, DEMO_END)


@pytest.fixture(scope="session")
def rem_model(rem_table):
    from crm_analysis.reminders import ReminderEffectModel

    return ReminderEffectModel().fit(rem_table)


@pytest.fixture(scope="session")
def rem_eval(demo_clinic):
    from crm_analysis.reminders import evaluate_reminders

    return evaluate_reminders(demo_clinic, DEMO_END)
