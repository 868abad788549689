"""Counting reminded appointments: Arrow's membership test agrees with pandas' ``isin``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.sufficiency import _is_in


@pytest.mark.parametrize("values, keys", [
    (pd.Series(["A1", "A2", None, "A4"], dtype="string[pyarrow]"),
     pd.Series(["A4", "A1", "A9"], dtype="string[pyarrow]")),
    (pd.Series(["A1", "A2", "A3"], dtype="string[pyarrow]"), pd.Series(["A3", "A2"], dtype=object)),
    (pd.Series(["A1", "A2"], dtype=object), pd.Series([], dtype="string[pyarrow]")),
    (pd.Series([1, 2, 3]), pd.Series([3, 5])),
    (pd.Series(["1", 2], dtype=object), pd.Series([2, "3"], dtype=object)),  # mixed types: pandas decides
])
def test_is_in_agrees_with_pandas(values, keys):
    expected = values.astype(object).isin(keys.astype(object)).to_numpy()
    found = _is_in(values, keys)
    assert found.dtype == bool
    np.testing.assert_array_equal(found, expected)
