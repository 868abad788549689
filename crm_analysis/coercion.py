"""Turn raw export values into the contract's types.

Exports arrive as text (CSV), as native values (Parquet, SQL) or as a mix
(Excel). Each ``to_*`` function here takes one raw column and returns the typed
column plus the index labels of values it could not read, so the caller can
report every bad value at once instead of stopping at the first.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["coerce_column", "TRUE_WORDS", "FALSE_WORDS", "DATE_FORMATS"]

#: Words read as yes / no in boolean columns (Korean exports use 예/아니오, 동의/미동의, Y/N, O/X).
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0", "예", "네", "동의", "o", "수신", "있음"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0", "아니오", "아니요", "미동의", "거부", "x", "미수신", "없음"})

#: Day formats tried, in order, on values that are not ISO 8601.
DATE_FORMATS = (
    "%Y%m%d",
    "%Y.%m.%d",
    "%Y/%m/%d",
    "%Y. %m. %d",
    "%Y. %m. %d.",
    "%Y년 %m월 %d일",
    "%Y%m%d%H%M",
    "%Y%m%d%H%M%S",
    "%Y.%m.%d %H:%M",
    "%Y.%m.%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
)

_MONEY_NOISE = re.compile(r"[,\s₩원]")


def _as_text(raw: pd.Series) -> pd.Series:
    """Raw values as stripped text, with blanks as missing."""
    text = raw.astype("string").str.strip()
    return text.mask(text == "")


def _bad(parsed: pd.Series, raw_present: pd.Series) -> pd.Index:
    """Labels where a value was given but could not be read."""
    return parsed.index[(parsed.isna() & raw_present).to_numpy()]


def to_id(raw: pd.Series) -> tuple[pd.Series, pd.Index]:
    """Identifiers as text. Whole floats (``123.0``, from Excel) lose their ``.0``."""
    if pd.api.types.is_float_dtype(raw):
        whole = raw.notna() & (raw == np.floor(raw))
        text = raw.astype("string")
        text = text.mask(whole, raw[whole].astype("int64").astype("string"))
        return text, pd.Index([])
    if pd.api.types.is_integer_dtype(raw):
        return raw.astype("string"), pd.Index([])
    return _as_text(raw), pd.Index([])


def to_string(raw: pd.Series) -> tuple[pd.Series, pd.Index]:
    return _as_text(raw), pd.Index([])


def to_category(raw: pd.Series) -> tuple[pd.Series, pd.Index]:
    # Categories stay text here; the validator checks allowed values, then the
    # loader converts to the pandas category dtype.
    return to_id(raw)


def to_float(raw: pd.Series) -> tuple[pd.Series, pd.Index]:
    """Numbers; thousands separators, spaces and won signs are ignored."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64"), pd.Index([])
    text = _as_text(raw)
    parsed = pd.to_numeric(text.str.replace(_MONEY_NOISE, "", regex=True), errors="coerce").astype("float64")
    return parsed, _bad(parsed, text.notna())


def to_int(raw: pd.Series) -> tuple[pd.Series, pd.Index]:
    """Whole numbers (nullable ``Int64``). Fractions are unreadable, not rounded."""
    parsed, bad = to_float(raw)
    fractional = parsed.notna() & (parsed != np.floor(parsed))
    bad = bad.union(parsed.index[fractional.to_numpy()])
    parsed = parsed.mask(fractional)
    return parsed.round().astype("Int64"), bad


def to_bool(raw: pd.Series) -> tuple[pd.Series, pd.Index]:
    """Yes/no values: true/false, 1/0, Y/N, 예/아니오, 동의/미동의, O/X."""
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype("boolean"), pd.Index([])
    text = _as_text(raw).str.lower()
    result = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    result[text.isin(TRUE_WORDS).fillna(False).to_numpy()] = True
    result[text.isin(FALSE_WORDS).fillna(False).to_numpy()] = False
    return result, _bad(result, text.notna())


def to_datetime(raw: pd.Series, fmt: str | None = None) -> tuple[pd.Series, pd.Index]:
    """Moments as naive ``datetime64[ns]``.

    Time-zone-aware values keep their wall-clock time and lose the zone, so a
    day recorded as ``2016-04-29T00:00:00Z`` stays 29 April.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        return parsed.astype("datetime64[ns]"), pd.Index([])
    if pd.api.types.is_object_dtype(raw) and len(raw) and raw.map(lambda v: hasattr(v, "year")).all():
        # Excel cells that already hold dates.
        return to_datetime(pd.to_datetime(raw, errors="coerce"))
    text = _as_text(raw)
    present = text.notna()
    if fmt:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    else:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        parsed = parsed.dt.tz_localize(None)
        for candidate in DATE_FORMATS:
            todo = parsed.isna() & present
            if not todo.any():
                break
            parsed = parsed.mask(todo, pd.to_datetime(text[todo], format=candidate, errors="coerce"))
    parsed = parsed.astype("datetime64[ns]")
    return parsed, _bad(parsed, present)


def to_date(raw: pd.Series, fmt: str | None = None) -> tuple[pd.Series, pd.Index]:
    """Calendar days: moments truncated to midnight."""
    parsed, bad = to_datetime(raw, fmt)
    return parsed.dt.normalize(), bad


_COERCERS = {
    "id": to_id,
    "string": to_string,
    "category": to_category,
    "float": to_float,
    "int": to_int,
    "bool": to_bool,
}


def coerce_column(raw: pd.Series, dtype: str, fmt: str | None = None) -> tuple[pd.Series, pd.Index]:
    """Read one raw column as the contract type `dtype`.

    Parameters
    ----------
    raw : pandas.Series
        Values as they came from the source.
    dtype : str
        A :class:`crm_analysis.contract.Column` dtype.
    fmt : str, optional
        An explicit ``strptime`` format for date and datetime columns.

    Returns
    -------
    typed : pandas.Series
        The column in its contract type; unreadable values are missing.
    bad : pandas.Index
        Index labels of values that were given but could not be read.
    """
    if dtype == "date":
        return to_date(raw, fmt)
    if dtype == "datetime":
        return to_datetime(raw, fmt)
    return _COERCERS[dtype](raw)
