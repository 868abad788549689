"""Reading raw values: Arrow's fast paths give exactly what the pandas readers give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_analysis.coercion import coerce_column, isin

TEXT = "string[pyarrow]"


def _column(values: list) -> pd.Series:
    return pd.Series(values, dtype=TEXT, index=pd.RangeIndex(1, len(values) + 1), name="c")


whole_numbers = st.lists(st.one_of(st.none(), st.text("0123456789", min_size=1, max_size=20)), max_size=8)


@settings(max_examples=150, deadline=None)
@given(whole_numbers)
def test_whole_numbers_read_as_pandas_reads(values):
    text = _column(values)
    expected = pd.to_numeric(text, errors="coerce").astype("float64")
    expected = expected.where(np.isfinite(expected))
    parsed, bad = coerce_column(text, "float")
    pd.testing.assert_series_equal(parsed, expected, check_exact=True)
    assert bad.empty
    if all(v is None or len(v) <= 15 for v in values):
        ints, bad = coerce_column(text, "int")
        pd.testing.assert_series_equal(ints, expected.round().astype("Int64"), check_exact=True)
        assert bad.empty


moments = st.builds(lambda y, m, d, time: f"{y:04d}-{m:02d}-{d:02d}" + time,
                    st.integers(1650, 2300), st.integers(1, 12), st.integers(1, 31),
                    st.one_of(st.just(""), st.builds(lambda h, mi, s: f" {h:02d}:{mi:02d}:{s:02d}",
                                                     st.integers(0, 24), st.integers(0, 59), st.integers(0, 60))))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.none(), moments), max_size=8))
def test_iso_moments_read_as_pandas_reads(values):
    """Days that do not exist, hours past 23 and years outside datetime64[ns] stay unreadable."""
    text = _column(values)
    expected = pd.to_datetime(text, format="ISO8601", errors="coerce").astype("datetime64[ns]")
    parsed, bad = coerce_column(text, "datetime")
    pd.testing.assert_series_equal(parsed, expected, check_exact=True)
    assert list(bad) == list(text.index[(expected.isna() & text.notna()).to_numpy()])
    days, _ = coerce_column(text, "date")
    pd.testing.assert_series_equal(days, expected.dt.normalize(), check_exact=True)


def test_yes_no_words():
    parsed, bad = coerce_column(_column(["true", "N", "예", None, "maybe", "미동의", " Y "]), "bool")
    assert parsed.dtype == "boolean"
    assert parsed.tolist() == [True, False, True, pd.NA, pd.NA, False, True]
    assert list(bad) == [5]


@pytest.mark.parametrize("keys", [["P1", None, "P9"], ["P1", "P1"], [], [None]])
@pytest.mark.parametrize("dtype", [TEXT, "object"])
def test_isin_gives_what_pandas_gives(keys, dtype):
    """The Arrow-native isin matches pandas' own, missing values included."""
    values = pd.Series(["P1", None, "P2", "P9", "P1"], index=[5, 6, 7, 8, 9], dtype=TEXT)
    key_series = pd.Series(keys, dtype=dtype)
    expected = values.isin(key_series)
    got = isin(values, key_series)
    assert got.dtype == bool and got.tolist() == expected.tolist() and got.index.equals(values.index)
    assert isin(values, key_series.array).tolist() == expected.tolist()
