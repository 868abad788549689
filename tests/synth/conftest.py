"""Shared demo clinics for the synth tests (generated once per session, seeds printed)."""

from __future__ import annotations

import pytest

from crm_analysis import synth

SMALL_SEED = 7
SMALL_N = 3_000


@pytest.fixture(scope="session")
def small_clinic():
    """A 3,000-patient clinic used by the conformance tests."""
    print(f"\n[synth] small clinic: n_patients={SMALL_N}, seed={SMALL_SEED}")
    return synth.generate_clinic(n_patients=SMALL_N, seed=SMALL_SEED)
