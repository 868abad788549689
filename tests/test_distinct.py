"""Tests for :mod:`crm_analysis.distinct`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.distinct import each_distinct


def test_texts_keep_negative_zero_and_nan_as_formatted_one_by_one():
    values = np.array([0.0, -0.0, np.nan, 0.04, -0.04, 1.25, 0.0, np.nan])
    assert each_distinct(values, "{:.1f}").tolist() == [f"{v:.1f}" for v in values]
    assert each_distinct(np.array([3, 1, 3], dtype=np.int64), "{}").tolist() == ["3", "1", "3"]
    assert each_distinct(np.array([], dtype=np.float64), "{:.1f}").tolist() == []


def test_a_vectorised_format_sees_each_distinct_value_once():
    days = pd.Series(pd.to_datetime(["2026-11-03", "2026-11-01", "2026-11-03", None]))
    seen = []
    texts = each_distinct(days, lambda d: seen.append(len(d)) or d.dt.strftime("%m-%d"))
    assert seen == [3] and texts.tolist() == ["11-03", "11-01", "11-03", np.nan]
