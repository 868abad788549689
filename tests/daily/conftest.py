"""Fixtures of the daily-operations tests: the small demo clinic of tests/conftest.py (seed printed there)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def clinic(generated_clinic):
    """The small generated demo clinic (1,500 patients, seed 7, data to 2026-10-31), with reminder replies."""
    return generated_clinic
