"""A random sample of a clinic's patients keeps every row of the patients it keeps, the same ones every time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from crm_analysis.sampling import PatientSample, patient_sample


def _as_text(values: pd.Series) -> set:
    return set(values.dropna().astype(str))


def test_a_clinic_within_the_limit_is_itself(demo_clinic):
    n = len(demo_clinic.patients)
    for most in (None, n, n + 1):
        same, sample = patient_sample(demo_clinic, most)
        assert same is demo_clinic and sample is None
    with pytest.raises(ValueError, match="at least 1"):
        patient_sample(demo_clinic, 0)


def test_the_sample_keeps_all_rows_of_its_patients_and_only_theirs(demo_clinic):
    before = {name: t.copy() for name, t in demo_clinic.tables.items()}
    n = len(demo_clinic.patients)
    sampled, sample = patient_sample(demo_clinic, n // 4)
    assert sample == PatientSample(n // 4, n) and sample.fraction == pytest.approx(0.25, abs=0.01)
    chosen = _as_text(sampled.patients["patient_id"])
    assert len(chosen) == n // 4
    for name, table in demo_clinic.tables.items():
        if "patient_id" in table.columns:
            theirs = table["patient_id"].astype(object).isin(chosen).to_numpy()
            pd.testing.assert_frame_equal(sampled.tables[name], table.loc[theirs])
            print(f"{name}: {len(sampled.tables[name]):,} of {len(table):,} rows")
    kept = _as_text(sampled.appointments["appointment_id"])
    reminders = demo_clinic.reminders
    pd.testing.assert_frame_equal(sampled.reminders,
                                  reminders.loc[reminders["appointment_id"].astype(object).isin(kept).to_numpy()])
    # about a quarter of each table, as a random quarter of the patients would hold
    share = len(sampled.appointments) / len(demo_clinic.appointments)
    assert 0.22 < share < 0.28
    for name, table in demo_clinic.tables.items():  # the input is not modified
        pd.testing.assert_frame_equal(table, before[name])


def test_the_same_patients_every_time_whatever_the_row_order(demo_clinic):
    n = len(demo_clinic.patients)
    sampled, _ = patient_sample(demo_clinic, n // 5)
    again, _ = patient_sample(demo_clinic, n // 5)
    shuffled = demo_clinic.patients.sample(frac=1.0, random_state=np.random.default_rng(7))
    reordered, _ = patient_sample(replace(demo_clinic, tables={**demo_clinic.tables, "patients": shuffled}), n // 5)
    ids = _as_text(sampled.patients["patient_id"])
    assert ids == _as_text(again.patients["patient_id"]) == _as_text(reordered.patients["patient_id"])
    # a larger sample holds the smaller one: patients are ranked once by the hash of their id
    assert ids < _as_text(patient_sample(demo_clinic, n // 2)[0].patients["patient_id"])
