"""The phone index: every common spelling finds the same patients; families are all listed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_analysis.profile import PhoneIndex, phone_key

SPELLINGS = ("{a}-{b}-{c}", "{a}{b}{c}", "+82 {a1}-{b}-{c}", "+82{a1}{b}{c}", "({a}) {b} {c}", "{a}.{b}.{c}")


def spell(canonical: str, pattern: str) -> str:
    a, b, c = canonical.split("-")
    return pattern.format(a=a, a1=a[1:], b=b, c=c)


def test_tiny_index_by_hand():
    patients = pd.DataFrame({"patient_id": ["P1", "P2", "P3", "P4"],
                             "phone": ["010-1234-5678", "01012345678", None, "+1 415 555 2671"]})
    index = PhoneIndex.from_patients(patients)
    assert len(index) == 3
    assert index.patient_ids("+82 10-1234-5678") == ["P1", "P2"]
    assert index.patient_ids("+1 (415) 555-2671") == ["P4"]
    assert index.patient_ids("010-9999-8888") == []
    with pytest.raises(ValueError, match="not a valid Korean phone number"):
        index.rows("12")
    assert patients["phone"].tolist()[1] == "01012345678"  # input untouched


@pytest.mark.parametrize("pattern", SPELLINGS)
def test_every_spelling_finds_the_same_demo_patients(demo_clinic, pattern):
    patients = demo_clinic.tables["patients"]
    index = PhoneIndex.from_patients(patients)
    phones = patients["phone"].dropna()
    shared = phones[phones.duplicated(keep=False)].iloc[0]
    single = phones[~phones.duplicated(keep=False)].iloc[3]
    for canonical in (shared, single):
        expected = patients.loc[patients["phone"] == canonical, "patient_id"].astype(str).tolist()
        assert index.patient_ids(spell(canonical, pattern)) == expected
    assert len(index.patient_ids(shared)) >= 2


def test_index_counts_every_patient_with_a_phone_and_survives_save(demo_clinic, tmp_path):
    patients = demo_clinic.tables["patients"]
    index = PhoneIndex.from_patients(patients)
    assert len(index) == patients["phone"].notna().sum()
    path = index.save(tmp_path / "phones.npz")
    assert (path.stat().st_mode & 0o777) == 0o600
    again = PhoneIndex.load(path)
    np.testing.assert_array_equal(again.keys, index.keys)
    some = patients["phone"].dropna().iloc[10]
    assert again.patient_ids(some) == index.patient_ids(some)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1000_0000, max_value=9999_9999))
def test_key_is_the_same_for_every_spelling(n):
    canonical = f"010-{str(n)[:4]}-{str(n)[4:]}"
    keys = {phone_key(spell(canonical, p)) for p in SPELLINGS}
    if phone_key(canonical) is None:  # placeholders such as 010-1111-1111 are not usable numbers
        assert keys == {None}
    else:
        assert len(keys) == 1
