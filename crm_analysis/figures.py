"""Figures as ``kpis.json`` publishes them: small counts hidden, rates and floats rounded, JSON-ready rows.

Every KPI section (:mod:`crm_analysis.monthly.kpis` and the ``monthly``
module of each analysis package) builds its figures with these, so a count
is hidden the same way everywhere (:func:`crm_analysis.privacy.shown_count`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crm_analysis.privacy import shown_count

__all__ = ["shown_count", "shown_rate", "rounded", "p_value_3g", "records", "month_start", "between"]


def shown_rate(numerator: int, denominator: int, min_count: int) -> float | None:
    """``numerator / denominator`` to 4 decimals; None when either count is hidden or the denominator is 0."""
    if denominator == 0 or shown_count(numerator, min_count) is None or shown_count(denominator, min_count) is None:
        return None
    return round(numerator / denominator, 4)


def rounded(value: Any, digits: int = 4) -> float | None:
    """A float rounded to `digits` decimals; None for missing / NaN / infinite."""
    if value is None or value is pd.NA:
        return None
    value = float(value)
    return round(value, digits) if np.isfinite(value) else None


def p_value_3g(value: Any) -> float | None:
    """A p-value to 3 significant digits (small ones stay visible as 1.23e-07)."""
    value = rounded(value, 300)
    return None if value is None else float(f"{value:.3g}")


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (missing -> None, numpy scalars -> Python)."""
    out = []
    for row in table.to_dict(orient="records"):
        out.append({k: (None if v is pd.NA or (isinstance(v, float) and np.isnan(v)) else
                        v.item() if hasattr(v, "item") else v) for k, v in row.items()})
    return out


def month_start(as_of: pd.Timestamp, months_back: int = 0) -> pd.Timestamp:
    """The first day of `as_of`'s month, or of the month `months_back` months earlier."""
    return (as_of.to_period("M") - months_back).start_time


def between(df: pd.DataFrame, column: str, start: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    """The rows of `df` whose `column` falls on a day from `start` to `as_of` (both included)."""
    end = as_of + pd.Timedelta(days=1)
    values = df[column]
    return df.loc[((values >= start) & (values < end)).fillna(False).to_numpy()]
