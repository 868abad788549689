"""Where ids are: the look-ups behind every link between the clinic's tables.

A clinic's tables link by text ids (a visit's ``patient_id``, a reminder's
``appointment_id``), and at a million patients there are tens of millions
of them to find. :func:`first_positions` finds each key's first row in an
id column, with pandas ``map`` semantics, and picks the fastest way the data
allows:

- ids of one length under one prefix, as exports number them (``P0000001``),
  are read as numbers straight from Arrow's bytes and found by subtraction
  (consecutive ids) or binary search: no hashing at all;
- millions of other keys in distinct ids: a DuckDB join, which hashes and
  probes on every core;
- anything else: Arrow's ``index_in``, without the Python objects pandas
  makes.

:func:`id_positions` does the same for ids known to be distinct (a
patient's rows among the patients), with a row mask. :func:`arrow_text`
gives a pandas text column's Arrow array, zero-copy where it can. Validation and the features build on this module; it imports
nothing of the package but :mod:`crm_analysis.coercion`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_analysis.coercion import is_arrow_text

__all__ = ["id_positions", "first_positions", "fixed_width_positions", "strictly_increasing", "arrow_text"]


def arrow_text(values: pd.Series, combine: bool = True) -> pa.Array | pa.ChunkedArray:
    """A pandas text column as pyarrow (zero-copy for ``string[pyarrow]``); large strings when not text."""
    arr = getattr(values.array, "_pa_array", None)
    if arr is None:
        arr = values.astype("string[pyarrow]").array._pa_array
    if combine and isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    return arr


def id_positions(values: pd.Series, ids, mask: np.ndarray | None = None) -> np.ndarray:
    """Position of each text id in `values` (only the rows in `mask`, if given) among `ids`; -1 if absent or missing.

    Numbered ids (:func:`fixed_width_positions`) are found without hashing; others by an Arrow hash
    look-up, much faster than pandas' ``isin``/``get_indexer``/``groupby`` on Arrow text ids.

    Parameters
    ----------
    values : Series
        Text ids (Arrow or object strings).
    ids : pyarrow array, Index, Series or array-like
        The ids to find, each once (a pyarrow string array is used as it is: convert once, look up often).
    mask : array of bool, optional
        Look up only these rows of `values`.

    Returns
    -------
    ndarray of int64
        One position per (masked) row.
    """
    id_set = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else arrow_text(pd.Series(ids))
    if isinstance(id_set, pa.ChunkedArray):
        id_set = id_set.combine_chunks()
    arr = arrow_text(values, combine=False)
    numbered = fixed_width_positions(arr, id_set) if len(id_set) and not id_set.null_count else None
    if numbered is not None:
        return numbered if mask is None else numbered[mask]
    if mask is not None:
        arr = arr.filter(pa.array(mask))
    value_set = id_set if id_set.type == arr.type else id_set.cast(arr.type)
    codes = pc.index_in(arr, value_set=value_set)
    if codes.null_count:
        codes = codes.fill_null(-1)
    if isinstance(codes, pa.ChunkedArray):
        parts = [c.to_numpy(zero_copy_only=False) for c in codes.chunks]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    return codes.to_numpy(zero_copy_only=False).astype(np.int64)


#: From how many keys a reference is looked up by DuckDB, which hashes and probes on every core.
_DUCKDB_FROM = 2_000_000


def first_positions(keys: pd.Series, index: pd.Series) -> np.ndarray:
    """Where each key first occurs in `index`, as int64 positions; -1 where it does not.

    As in pandas' ``map``, a missing key finds a missing value of `index`.
    When `index` is distinct and sorted (an exported id column), ids of one
    length are found by their numbers (:func:`fixed_width_positions`, no
    hashing at all), and millions of other keys by a DuckDB join, which
    hashes and probes on every core (about 4 times faster than Arrow for 19M
    reminders in 18.5M appointments). Anything else is matched by Arrow
    (``index_in``), without the Python objects pandas makes.
    """
    if not (is_arrow_text(keys) and is_arrow_text(index)):
        first = pd.DataFrame({"key": index, "at": np.arange(len(index))}).drop_duplicates("key").set_index("key")["at"]
        return keys.map(first).fillna(-1).to_numpy(dtype=np.int64)
    key_array, value_set = pa.array(keys.array), pa.array(index.array)
    if value_set.type != key_array.type:
        value_set = value_set.cast(key_array.type)
    if strictly_increasing(index):  # unique and never missing
        found = fixed_width_positions(key_array, value_set)
        if found is not None:
            return found
        if len(key_array) >= _DUCKDB_FROM:
            return _joined_positions(key_array, value_set)
    if isinstance(value_set, pa.ChunkedArray):
        value_set = value_set.combine_chunks()
    return pc.index_in(key_array, value_set=value_set).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _fixed_width(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray] | None:
    """Present values as rows of a byte matrix, when every one has the same length; and where they are.

    Missing values take no bytes in Arrow, so the bytes of the others lie
    back to back: the matrix is a view, nothing is copied.
    """
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    width, rows, present = None, [], []
    for chunk in chunks:
        if len(chunk) == chunk.null_count:
            rows.append(None)
            present.append(np.zeros(len(chunk), dtype=bool))
            continue
        offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=offset_type)[chunk.offset:chunk.offset + len(chunk) + 1]
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)
        lengths = np.diff(offsets)
        width = width if width is not None else int(lengths[valid][0])
        if width == 0 or (lengths[valid] != width).any() or lengths[~valid].any():  # Arrow lets a null hold bytes
            return None
        data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
        rows.append(data.reshape(-1, width))
        present.append(valid)
    if width is None:
        return None
    return np.concatenate([np.zeros((0, width), np.uint8) if r is None else r for r in rows]), np.concatenate(present)


#: Keys looked up at a time by :func:`fixed_width_positions`: their byte rows and numbers stay small (a
#: million-patient clinic has twenty million reminders to find among its appointments).
KEY_BLOCK = 2_000_000


def fixed_width_positions(keys: pa.Array | pa.ChunkedArray, index: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """Where each key first occurs in `index`, for ids of one length under one prefix (as exports number them);
    None when `index` is not such ids, or the keys are not all of one length (a hash look-up is then the way).

    Past the prefix every id shares, the rest read as a number (its digits,
    or else its at most 8 bytes, most significant first) sorts as the text
    does, so each key is found by subtraction when the ids are consecutive,
    by binary search when they increase, and else by binary search among the
    distinct numbers with the first position of each. No hashing at all.
    Keys of another length, prefix or kind are not ids of the index, and
    missing keys are not ids either: -1. The keys are read :data:`KEY_BLOCK`
    at a time.

    Parameters
    ----------
    keys, index : pyarrow string arrays
        `index` without missing values.

    Returns
    -------
    numpy.ndarray of int64 or None
    """
    index_bytes = _fixed_width(index)
    if index_bytes is None or not index_bytes[1].all():
        return None
    if keys.null_count == len(keys):  # no key at all (or none present): nothing to find
        return np.full(len(keys), -1, dtype=np.int64)
    index_rows = index_bytes[0]
    width = index_rows.shape[1]
    prefix = 0  # the leading bytes every id shares (column by column: no n x width temporary)
    while prefix < width and (index_rows[:, prefix] == index_rows[0, prefix]).all():
        prefix += 1
    # up to 18 digits fit an int64
    digits = width - prefix <= 18 and bool(_digit_rows(index_rows[:, prefix:]).all())
    if not digits and width - prefix > 8:
        return None
    index_numbers = _tail_numbers(index_rows[:, prefix:], digits)
    shared = index_rows[0, :prefix].copy()
    # the byte rows may be copies (one per chunk, put together): gone before the positions are made
    del index_bytes, index_rows
    first, last = index_numbers[0], index_numbers[-1]
    increasing = bool((index_numbers[1:] > index_numbers[:-1]).all())
    consecutive = increasing and int(last) - int(first) == len(index_numbers) - 1
    if not increasing:  # in any order, maybe repeated: the first row of each distinct number
        distinct, first_row = np.unique(index_numbers, return_index=True)
    out = np.full(len(keys), -1, dtype=np.int64)
    for start in range(0, len(keys), KEY_BLOCK):
        block = keys.slice(start, KEY_BLOCK)
        if block.null_count == len(block):
            continue
        keys_bytes = _fixed_width(block)
        if keys_bytes is None or keys_bytes[0].shape[1] != width:
            return None
        key_rows, key_present = keys_bytes
        key_numbers = _tail_numbers(key_rows[:, prefix:], digits)
        comparable = (key_rows[:, :prefix] == shared).all(axis=1)
        if digits:  # a key with another byte there is not one of these ids
            comparable &= _digit_rows(key_rows[:, prefix:])
        if consecutive:  # the id says where it is
            found = comparable & (key_numbers >= first) & (key_numbers <= last)
            key_numbers -= first
            where = key_numbers
        elif increasing:
            where = np.searchsorted(index_numbers, key_numbers)
            found = comparable & (index_numbers[np.minimum(where, len(index_numbers) - 1)] == key_numbers)
        else:
            at = np.minimum(np.searchsorted(distinct, key_numbers), len(distinct) - 1)
            found = comparable & (distinct[at] == key_numbers)
            where = first_row[at]
        out[start + np.flatnonzero(key_present)[found]] = where[found]
    return out


def _digit_rows(rows: np.ndarray) -> np.ndarray:
    """Whether each row of `rows` holds only ASCII digits, column by column (no n x width temporary)."""
    ok = np.ones(len(rows), dtype=bool)
    for i in range(rows.shape[1]):
        ok &= (rows[:, i] - 48) <= 9  # uint8: below '0' wraps
    return ok


def _tail_numbers(tail: np.ndarray, digits: bool) -> np.ndarray:
    """Byte rows as numbers that sort as the text does: digits (up to 18) as decimal numbers (a byte that is
    not a digit gives some number: check :func:`_digit_rows`), other bytes (up to 8) as unsigned integers,
    most significant first."""
    if not digits:
        return _big_endian(tail)
    numbers = np.zeros(len(tail), dtype=np.int64)
    for i in range(tail.shape[1]):  # one column at a time, in place: no n x width integers
        np.multiply(numbers, 10, out=numbers)
        np.add(numbers, tail[:, i] - 48, out=numbers, casting="unsafe")
    return numbers


def _big_endian(rows: np.ndarray) -> np.ndarray:
    """Byte rows of at most 8 bytes as unsigned integers, most significant byte first."""
    padded = np.zeros((len(rows), 8), dtype=np.uint8)
    padded[:, 8 - rows.shape[1]:] = rows
    return padded.view(">u8").ravel().astype(np.uint64)


def _joined_positions(keys: pa.Array | pa.ChunkedArray, unique_index: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """:func:`first_positions` in distinct values, by a DuckDB join (rows come back in any order: numbered first)."""
    import duckdb

    probe = pa.table({"k": keys, "i": pa.array(np.arange(len(keys), dtype=np.int64))})
    build = pa.table({"k": unique_index, "j": pa.array(np.arange(len(unique_index), dtype=np.int64))})
    with duckdb.connect() as con:
        con.register("probe", probe)
        con.register("build", build)
        pairs = con.sql("SELECT probe.i, build.j FROM probe JOIN build ON probe.k = build.k").fetchnumpy()
    out = np.full(len(keys), -1, dtype=np.int64)
    out[np.asarray(pairs["i"], dtype=np.int64)] = np.asarray(pairs["j"], dtype=np.int64)
    return out




def strictly_increasing(values: pd.Series) -> bool:
    """Whether Arrow text has no missing value and each value sorts after the one before (so none repeats)."""
    if not is_arrow_text(values):
        return False
    array = pa.array(values.array)
    return array.null_count == 0 and (len(array) < 2 or bool(pc.all(pc.greater(array[1:], array[:-1])).as_py()))
