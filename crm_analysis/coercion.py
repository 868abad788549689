"""Turn raw export values into the contract's types.

Exports arrive as text (CSV), as native values (Parquet, SQL) or as a mix
(Excel). Each ``to_*`` function here takes one raw column and returns the typed
column plus the index labels of values it could not read, so the caller can
report every bad value at once instead of stopping at the first.

Text (ids, strings, categories) that this package's writers escaped against
spreadsheet formulas (``'=...``) is read back without the quote
(:func:`crm_analysis.cells.restore_formulas`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_analysis.cells import restore_formulas

__all__ = ["coerce_column", "isin", "is_arrow_text", "at_midnight", "TRUE_WORDS", "FALSE_WORDS", "DATE_FORMATS",
           "DEFAULT_TIMEZONE", "TEXT"]

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

#: Text columns are Arrow-backed: a tenth of the memory of Python strings on large tables.
TEXT = pd.StringDtype("pyarrow")


def is_arrow_text(values: object) -> bool:
    """Whether `values` (a Series or array) holds Arrow-backed text, such as :data:`TEXT`."""
    dtype = getattr(values, "dtype", None)
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def isin(values: pd.Series, keys: pd.Series | pd.api.extensions.ExtensionArray) -> pd.Series:
    """``values.isin(keys)``, computed by Arrow when both are Arrow-backed text.

    pandas' ``isin`` on Arrow text first turns every key into a Python object;
    pyarrow's ``is_in`` stays in Arrow memory (about 18 times faster on large
    tables). As in pandas, a missing value is found when the keys hold a
    missing value too.

    Parameters
    ----------
    values : pandas.Series
    keys : pandas.Series or array
        Repeated keys are fine.

    Returns
    -------
    pandas.Series
        Plain booleans on the index of `values`.
    """
    if not (is_arrow_text(values) and is_arrow_text(keys)):
        return values.isin(keys)
    values_pa = pa.array(values.array if isinstance(values, pd.Series) else values)
    key_set = pa.array(keys.array if isinstance(keys, pd.Series) else keys)
    if isinstance(key_set, pa.ChunkedArray):
        key_set = key_set.combine_chunks()
    if key_set.type != values_pa.type:
        key_set = key_set.cast(values_pa.type)
    found = pc.is_in(values_pa, value_set=key_set)
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index, dtype=bool)


def _visible_ends(values: pa.Array | pa.ChunkedArray) -> bool:
    """Whether every present value starts and ends with a visible ASCII character, so stripping changes nothing.

    Ids, codes, dates and amounts usually do; checking the first and last
    byte of each value is much cheaper than stripping them all.
    """
    if isinstance(values, pa.ChunkedArray):  # chunk by chunk: joining them would copy the column
        return all(_visible_ends(chunk) for chunk in values.chunks)
    if values.null_count == len(values):
        return True
    offset_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], dtype=offset_type)[values.offset:values.offset + len(values) + 1]
    starts, ends = offsets[:-1], offsets[1:]
    present = values.is_valid().to_numpy(zero_copy_only=False) if values.null_count else slice(None)
    starts, ends = starts[present], ends[present]
    if (ends <= starts).any():  # an empty value: it becomes missing
        return False
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)
    first, last = data[starts], data[ends - 1]
    return bool(((first > 0x20) & (first < 0x7F) & (last > 0x20) & (last < 0x7F)).all())


def _as_text(raw: pd.Series) -> pd.Series:
    """Raw values as stripped text, with blanks as missing."""
    text = raw.astype(TEXT)
    if is_arrow_text(text) and _visible_ends(pa.array(text.array)):
        return text
    text = text.str.strip()
    return text.mask(text == "")


#: ISO days and moments to the second, years 1700-2259 (inside datetime64[ns]), no zone.
_ISO_MOMENT = r"^(?:1[7-9][0-9]{2}|2[01][0-9]{2}|22[0-5][0-9])-[0-9]{2}-[0-9]{2}(?: [0-9]{2}:[0-9]{2}:[0-9]{2})?$"


def _all_match(text: pd.Series, pattern: str) -> pa.Array | None:
    """`text` as an Arrow array when it is Arrow text and every present value matches `pattern`; else None.

    Columns that pass are read by Arrow's own casts, which give exactly what
    pandas gives on such plain values but without a Python object per value.
    """
    if not is_arrow_text(text):
        return None
    values = pa.array(text.array)
    matched = pc.sum(pc.match_substring_regex(values, pattern)).as_py() or 0
    return values if matched == pc.count(values).as_py() else None


def _whole_numbers(text: pd.Series) -> pa.Array | None:
    """`text` as Arrow int64 when it is Arrow text of unsigned whole numbers of at most 15 digits; else None.

    Such numbers are exact in float64 whichever parser reads them, so Arrow's
    cast gives what ``pd.to_numeric`` gives, without a Python object per value.
    """
    if not is_arrow_text(text):
        return None
    values = pa.array(text.array)
    digits_only = pc.sum(pc.ascii_is_decimal(values)).as_py() or 0
    if digits_only != pc.count(values).as_py() or (pc.max(pc.binary_length(values)).as_py() or 0) > 15:
        return None
    return pc.cast(values, pa.int64())


def _bad(parsed: pd.Series, raw_present: pd.Series) -> pd.Index:
    """Labels where a value was given but could not be read."""
    return parsed.index[(parsed.isna() & raw_present).to_numpy()]


def _restore(text: pd.Series) -> pd.Series:
    """:func:`restore_formulas`, skipped when no value starts with a quote (a prefix test, no regex)."""
    if is_arrow_text(text) and not pc.any(pc.starts_with(pa.array(text.array), "'")).as_py():
        return text
    return restore_formulas(text)


def _by_category(raw: pd.Series, convert) -> tuple[pd.Series, pd.Index]:
    """`convert` applied to the categories of a categorical column only, then spread to its rows by code.

    Each category is read once instead of once per row: what ``convert`` gives
    for the category's text is what it would give for every row holding it.
    """
    categories = pd.Series(raw.cat.categories.astype(TEXT), dtype=TEXT)
    converted, _ = convert(categories)
    codes = raw.cat.codes.to_numpy()
    values = pa.array(converted.array).take(pa.array(codes, mask=codes < 0))
    return pd.Series(TEXT.__from_arrow__(values), index=raw.index, name=raw.name), pd.Index([])


def to_id(raw: pd.Series) -> tuple[pd.Series, pd.Index]:
    """Identifiers as text. Whole floats (``123.0``, from Excel) lose their ``.0``; a formula escape (``'=``) its quote."""
    if isinstance(raw.dtype, pd.CategoricalDtype):
        return _by_category(raw, to_id)
    if pd.api.types.is_float_dtype(raw):
        whole = raw.notna() & np.isfinite(raw) & (raw == np.floor(raw))
        text = raw.astype(TEXT)
        text = text.mask(whole, raw[whole].map("{:.0f}".format).astype(TEXT))
        return text, pd.Index([])
    if pd.api.types.is_integer_dtype(raw):
        return raw.astype(TEXT), pd.Index([])
    return _restore(_as_text(raw)), pd.Index([])


def to_string(raw: pd.Series) -> tuple[pd.Series, pd.Index]:
    """Text, stripped, blanks missing; a formula escape (``'=``) loses its quote."""
    if isinstance(raw.dtype, pd.CategoricalDtype):
        return _by_category(raw, to_string)
    return _restore(_as_text(raw)), pd.Index([])


def to_category(raw: pd.Series) -> tuple[pd.Series, pd.Index]:
    """Text of a closed or open set of values, read as :func:`to_id` reads it.

    A categorical column (Parquet's dictionaries) stays categorical, its
    categories read as text (categories that then read alike merged, a blank
    one missing), so no row is turned into text; anything else becomes text.
    The validator checks allowed values, then gives every category column the
    pandas category dtype.
    """
    if not isinstance(raw.dtype, pd.CategoricalDtype):
        return to_id(raw)
    read, _ = to_id(pd.Series(raw.cat.categories.astype(TEXT), dtype=TEXT))
    categories = pd.Index(read.dropna().unique(), dtype=TEXT)
    codes = raw.cat.codes.to_numpy()
    recode = categories.get_indexer(read)  # -1 where a category reads as missing
    if not np.array_equal(recode, np.arange(len(recode))):  # else each category reads as itself: codes kept
        codes = np.append(recode, -1)[codes]  # code -1 looks up the last entry
    return pd.Series(pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories), validate=False),
                     index=raw.index, name=raw.name), pd.Index([])


def to_float(raw: pd.Series) -> tuple[pd.Series, pd.Index]:
    """Numbers; thousands separators, spaces and won signs are ignored."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        if raw.dtype == "float64" and not np.isinf(raw.to_numpy()).any():
            return raw.copy(deep=False), pd.Index([])  # nothing to read or clear: the same values, not copied
        parsed = raw.astype("float64")
        present = parsed.notna()
    else:
        text = _as_text(raw)
        present = text.notna()
        whole = _whole_numbers(text)
        if whole is not None:
            parsed = pd.Series(pc.cast(whole, pa.float64()).to_numpy(zero_copy_only=False), index=text.index,
                               name=text.name)
        else:
            parsed = pd.to_numeric(text, errors="coerce").astype("float64")
        noisy = parsed.isna() & present  # thousands separators, won signs: cleaned only where needed
        if noisy.any():
            parsed[noisy.to_numpy()] = pd.to_numeric(text[noisy].str.replace(_MONEY_NOISE, "", regex=True),
                                                     errors="coerce").astype("float64")
    parsed = parsed.where(np.isfinite(parsed))  # inf is not an amount
    return parsed, _bad(parsed, present)


def _exact_integers(raw: pd.Series) -> bool:
    """Whether `raw` holds integers only, each exact in float64, so reading them as numbers changes none."""
    if not pd.api.types.is_integer_dtype(raw):
        return False
    present = raw.dropna()
    return not len(present) or max(abs(int(present.min())), abs(int(present.max()))) < 2**53


def to_int(raw: pd.Series) -> tuple[pd.Series, pd.Index]:
    """Whole numbers (nullable ``Int64``). Fractions are unreadable, not rounded."""
    if not pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
        text = _as_text(raw)
        whole = _whole_numbers(text)
        if whole is not None:
            ints = pd.Series(whole.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get), name=text.name)
            ints.index = text.index
            return ints, _bad(ints, text.notna())
    elif _exact_integers(raw):
        return raw.astype("Int64"), pd.Index([])
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
    yes = text.isin(TRUE_WORDS).fillna(False).to_numpy(dtype=bool)
    no = text.isin(FALSE_WORDS).fillna(False).to_numpy(dtype=bool)  # the two word lists share no word
    result = pd.Series(pd.arrays.BooleanArray(yes, ~(yes | no)), index=raw.index)
    return result, _bad(result, text.notna())


_OFFSET = r"(?:[zZ]|[+-]\d{2}:?\d{2})$"

_DATE_OBJECTS = ("date", "datetime", "datetime64")

#: The time zone clinic-local times are given in when a source stores zoned moments.
DEFAULT_TIMEZONE = "Asia/Seoul"


def _local(values: pd.Series, timezone: str) -> pd.Series:
    """Zoned moments as naive clinic-local moments."""
    return values.dt.tz_convert(timezone).dt.tz_localize(None)


def to_datetime(raw: pd.Series, fmt: str | None = None, timezone: str = DEFAULT_TIMEZONE) -> tuple[pd.Series, pd.Index]:
    """Moments as naive clinic-local ``datetime64[ns]``.

    Zoned values (a database's ``timestamptz``, text ending in ``Z`` or
    ``+09:00``) are converted to `timezone`, the clinic's own zone; values
    without a zone are taken as clinic-local already. A value that was given
    but cannot be read, or lies outside 1677–2262 (placeholders such as
    9999-12-31), is reported as unreadable.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = _local(raw, timezone) if getattr(raw.dt, "tz", None) is not None else raw
        return parsed.astype("datetime64[ns]", copy=False), pd.Index([])  # read only from here on: no copy
    present = raw.notna()
    if pd.api.types.is_object_dtype(raw) and pd.api.types.infer_dtype(raw, skipna=True) in _DATE_OBJECTS:
        # Excel or database cells that already hold dates or moments. A zoned
        # result means some cells carry a zone: read them all as instants.
        parsed = pd.to_datetime(raw, errors="coerce")
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = _local(pd.to_datetime(raw, errors="coerce", utc=True), timezone)
        parsed = parsed.astype("datetime64[ns]")
        return parsed, _bad(parsed, present)
    text = _as_text(raw)
    present = text.notna()
    plain = None if fmt else _all_match(text, _ISO_MOMENT)
    if plain is not None:
        try:
            moments = pc.cast(plain, pa.timestamp("ns"))
        except pa.ArrowInvalid:  # a day that does not exist, such as 30 February: pandas reports it
            pass
        else:
            parsed = pd.Series(moments.to_numpy(zero_copy_only=False), index=text.index, name=text.name)
            return parsed, _bad(parsed, present)
    zoned = text.str.contains(_OFFSET, regex=True).fillna(False)
    if fmt:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    else:
        parsed = pd.to_datetime(text.mask(zoned), format="ISO8601", errors="coerce")
        if zoned.any():
            moments = pd.to_datetime(text[zoned], format="ISO8601", errors="coerce", utc=True)
            parsed = parsed.astype("datetime64[ns]")
            parsed[zoned.to_numpy()] = _local(moments, timezone).astype("datetime64[ns]")
        for candidate in DATE_FORMATS:
            todo = parsed.isna() & present & ~zoned
            if not todo.any():
                break
            parsed = parsed.mask(todo, pd.to_datetime(text[todo], format=candidate, errors="coerce"))
    parsed = parsed.astype("datetime64[ns]")
    return parsed, _bad(parsed, present)


def to_date(raw: pd.Series, fmt: str | None = None, timezone: str = DEFAULT_TIMEZONE) -> tuple[pd.Series, pd.Index]:
    """Calendar days: clinic-local moments truncated to midnight."""
    parsed, bad = to_datetime(raw, fmt, timezone)
    if at_midnight(parsed):  # days already, as most sources store them: normalising would only copy
        return parsed, bad
    return parsed.dt.normalize(), bad


_DAY_NS = 86_400 * 10**9
#: Rows a column-wide check reads at a time, where twenty million rows would need large temporaries.
BLOCK_ROWS = 2_000_000


def at_midnight(moments: pd.Series) -> bool:
    """Whether every present moment of a naive ``datetime64[ns]`` column is at midnight (an empty column is;
    another dtype is not): whole days in nanoseconds, without a normalised copy."""
    if moments.dtype != "datetime64[ns]":
        return False
    ns = moments.to_numpy().view(np.int64)
    for start in range(0, len(ns), BLOCK_ROWS):  # in blocks: twenty million moments need no 300 MB of temporaries
        part = ns[start:start + BLOCK_ROWS]
        if (part[part != np.iinfo(np.int64).min] % _DAY_NS).any():
            return False
    return True


_COERCERS = {
    "id": to_id,
    "string": to_string,
    "category": to_category,
    "float": to_float,
    "int": to_int,
    "bool": to_bool,
}


def coerce_column(raw: pd.Series, dtype: str, fmt: str | None = None,
                  timezone: str = DEFAULT_TIMEZONE) -> tuple[pd.Series, pd.Index]:
    """Read one raw column as the contract type `dtype`.

    Parameters
    ----------
    raw : pandas.Series
        Values as they came from the source.
    dtype : str
        A :class:`crm_analysis.contract.Column` dtype.
    fmt : str, optional
        An explicit ``strptime`` format for date and datetime columns.
    timezone : str
        The clinic's time zone, for sources that store zoned moments.

    Returns
    -------
    typed : pandas.Series
        The column in its contract type; unreadable values are missing.
    bad : pandas.Index
        Index labels of values that were given but could not be read.
    """
    if dtype == "date":
        return to_date(raw, fmt, timezone)
    if dtype == "datetime":
        return to_datetime(raw, fmt, timezone)
    return _COERCERS[dtype](raw)
