"""Phone numbers: every common Korean spelling gives one canonical form."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_analysis.phones import are_mobile, is_mobile, normalise_phone, normalise_phones


@pytest.mark.parametrize("spelling", ["010-1234-5678", "01012345678", "+82 10-1234-5678", "+821012345678",
                                      "010 1234 5678", "010.1234.5678", "(010) 1234-5678", "1012345678"])
def test_spellings_of_one_mobile(spelling):
    assert normalise_phone(spelling) == "010-1234-5678"
    assert normalise_phones(pd.Series([spelling]))[0].tolist() == ["010-1234-5678"]


def test_unusable_numbers():
    values = pd.Series(["12", "010-0000-0000", "abc", None, "", "02-123-4567", "+1 415 555 2671"])
    normalised, invalid = normalise_phones(values)
    assert normalised.tolist()[:5] == [pd.NA] * 5
    assert list(invalid) == [0, 1, 2]  # missing and blank values are not invalid, just absent
    assert normalised[5] == "02-123-4567" and not is_mobile(normalised[5])
    assert normalised[6] == "+1 415-555-2671" and not is_mobile(normalised[6])


korean_mobiles = st.builds(lambda prefix, body, sep: prefix + sep + body[:-4] + sep + body[-4:],
                           st.sampled_from(["010", "011", "016", "017", "018", "019"]),
                           st.text("0123456789", min_size=7, max_size=8), st.sampled_from(["", "-", " "]))


@settings(max_examples=300, deadline=None)
@given(st.lists(korean_mobiles, min_size=1, max_size=20))
def test_column_fast_path_agrees_with_libphonenumber(spellings):
    """The column-wise path for plain mobiles gives exactly what parsing each number gives."""
    normalised, invalid = normalise_phones(pd.Series(spellings))
    expected = [normalise_phone(s) for s in spellings]
    assert [None if pd.isna(v) else v for v in normalised] == expected
    assert list(invalid) == [i for i, e in enumerate(expected) if e is None]


def test_are_mobile_on_a_column():
    values = pd.Series(["010-1234-5678", "02-123-4567", "+1 415-555-2671", None, "011-234-5678", "1588-1234",
                        "050-1234-5678", "070-1234-5678"], index=range(10, 18), dtype="string[pyarrow]")
    assert are_mobile(values).tolist() == [True, False, False, False, True, False, False, False]
    assert list(are_mobile(values).index) == list(values.index)


korean_national = st.builds(lambda prefix, body: prefix + body,
                            st.sampled_from(["010", "011", "016", "019", "02", "031", "051", "064", "050", "060",
                                             "070", "080", "15", "16", "18", "30", "+82", "+1", "+44", "+8210"]),
                            st.text("0123456789", min_size=3, max_size=10))


@settings(max_examples=300, deadline=None)
@given(st.lists(korean_national, min_size=1, max_size=30))
def test_are_mobile_agrees_with_libphonenumber(spellings):
    """The column-wise typing from libphonenumber's metadata gives what parsing each number gives."""
    canonical = pd.Series([normalise_phone(s) for s in spellings], dtype="string[pyarrow]")
    expected = [False if pd.isna(number) else is_mobile(number) for number in canonical]
    assert are_mobile(canonical).tolist() == expected
