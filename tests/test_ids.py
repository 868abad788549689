"""Tests for :mod:`crm_analysis.ids`: every way an id is looked up finds what pandas' ``map`` finds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ODD_IDS = ["A0x", "Aé", "A1", "A001", "a01", "B01", "C", "A99"]


@st.composite
def id_columns(draw):
    """Sorted, distinct parent ids (a numbered run, maybe with gaps, maybe with odd ones), and keys to look up."""
    start, length = draw(st.integers(0, 95)), draw(st.integers(0, 6))
    run = [f"A{n:02d}" for n in range(start, start + length)]
    index = [i for i in run if not draw(st.booleans())] if draw(st.booleans()) else run
    index = sorted(set(index + draw(st.lists(st.sampled_from(ODD_IDS), max_size=2))))
    pool = run + [f"A{n:02d}" for n in (0, 99)] + ["A0x", "Aé", "B01"]  # keys of one length: the fast path
    pool += ODD_IDS if draw(st.booleans()) else []  # or of several: DuckDB
    keys = draw(st.lists(st.one_of(st.none(), st.sampled_from(pool)), max_size=12))
    return keys, index


@settings(max_examples=100, deadline=None)
@given(id_columns(), st.sampled_from([False, False, False, True]))
def test_id_positions_are_pandas_map_on_every_path(columns, duckdb_always):
    """Where each key is found, by numbers, binary search, subtraction or DuckDB: what pandas' map of the first
    row per id gives (-1 where none)."""
    from crm_analysis import ids

    keys, index = columns
    keys_s = pd.Series(keys, dtype="string[pyarrow]")
    index_s = pd.Series(index, dtype="string[pyarrow]")
    first = pd.Series(range(len(index)), index=pd.Index(index, dtype=object))
    expected = keys_s.astype(object).map(first).fillna(-1).astype("int64").to_numpy()
    old = ids._DUCKDB_FROM
    ids._DUCKDB_FROM = 0
    try:
        if duckdb_always and len(index):
            got = ids._joined_positions(pa.array(keys_s.array), pa.array(index_s.array))
        else:
            got = ids.first_positions(keys_s, index_s)
    finally:
        ids._DUCKDB_FROM = old
    assert got.tolist() == expected.tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=12), st.lists(st.one_of(st.none(), st.integers(0, 45),
                                                                             st.sampled_from(["B07", "A7", "Ax1"])),
                                                                   max_size=12))
def test_numbered_ids_in_any_order_find_their_first_row(numbers, keys):
    """Ids in any order, repeated or not: the numbers path finds each key's first row, as pandas' map does."""
    from crm_analysis import ids

    index = [f"A{n:02d}" for n in numbers]
    keys = [k if k is None or isinstance(k, str) else f"A{k:02d}" for k in keys]
    first = pd.Series(range(len(index)), index=pd.Index(index, dtype=object))
    first = first[~first.index.duplicated()]
    expected = pd.Series(keys, dtype=object).map(first).fillna(-1).astype("int64").tolist()
    got = ids.fixed_width_positions(pa.array(keys, type=pa.string()), pa.array(index, type=pa.large_string()))
    if "A7" in keys:  # a key of another length: declined (a hash look-up does it), or found nowhere
        assert got is None or got.tolist() == expected
    else:
        assert got is not None and got.tolist() == expected


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "object"])
def test_id_positions_with_a_mask(dtype):
    from crm_analysis.ids import id_positions

    values = pd.Series(["b", None, "z", "a", "b"], dtype=dtype)
    ids = pd.Index(["a", "b", "c"], dtype=dtype)
    assert id_positions(values, ids).tolist() == [1, -1, -1, 0, 1]
    mask = np.array([False, True, True, True, False])
    assert id_positions(values, ids, mask).tolist() == [-1, -1, 0]


@pytest.mark.parametrize("values, ids", [
    (["P0000003", "P0000001", "P0000009", "P0000003", "P0000002"], ["P0000001", "P0000002", "P0000003", "P0000002"]),
    (["P0000003", None, "P0000001"], ["P0000001", "P0000003"]),               # a missing id: hash look-up
    (["P0000003", "P000001", "P0000001"], ["P0000001", "P0000003"]),          # another length
    (["P0000003", "Q0000001", "P00000a1"], ["P0000001", "P0000003"]),         # another prefix, a letter
    (["P0000003", "P0000001"], ["P0000001", "P-000003"]),                     # ids of two forms
    (["00012", "00007", "99999"], ["00007", "00012"]),                        # digits only
    (["C9-0001", "C9-0100", "C9-0002"], ["C9-0100", "C9-0001"]),              # digits inside the prefix
    (["P" + "9" * 17, "P" + "0" * 16 + "1"], ["P" + "0" * 16 + "1", "P" + "9" * 17]),  # the widest numbers
    (["P" + "0" * 18], ["P" + "0" * 18]),                                     # too wide for an int64
])
@pytest.mark.parametrize("large", [False, True])
def test_ids_looked_up_by_number_equal_the_hash_look_up(values, ids, large):
    """Ids of one prefix and fixed-width digits are found by number; anything else by Arrow's hash look-up,
    and both give index_in's answer (first position among the ids, -1 if absent or missing)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from crm_analysis.ids import id_positions

    kind = pa.large_string() if large else pa.string()
    id_set = pa.array(ids, type=kind)
    series = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([pa.array(values[:1], type=kind),
                                                                     pa.array(values[1:], type=kind)])))
    expected = pc.index_in(pa.array(values, type=kind), value_set=id_set).fill_null(-1).to_numpy(
        zero_copy_only=False)
    np.testing.assert_array_equal(id_positions(series, id_set), expected)
    mask = np.arange(len(values)) % 2 == 0
    np.testing.assert_array_equal(id_positions(series, id_set, mask), expected[mask])


def test_ids_by_number_on_a_generated_clinic_equal_the_hash_look_up():
    import pyarrow.compute as pc

    from crm_analysis import synth
    from crm_analysis.ids import arrow_text, fixed_width_positions, id_positions

    tables = synth.generate_clinic(n_patients=400, seed=5).tables
    id_set = arrow_text(tables["patients"]["patient_id"].iloc[::-1])  # not in number order
    for name in ("visits", "appointments"):
        values = arrow_text(tables[name]["patient_id"], combine=False)
        assert fixed_width_positions(values, id_set) is not None, name  # the fast path is taken
        expected = pc.index_in(values, value_set=id_set).fill_null(-1)
        expected = np.concatenate([c.to_numpy(zero_copy_only=False) for c in getattr(expected, "chunks", [expected])])
        np.testing.assert_array_equal(id_positions(tables[name]["patient_id"], id_set), expected)


@pytest.mark.parametrize("block", [1, 3, 7, 1000])
def test_keys_looked_up_in_blocks_give_the_same_positions(block, monkeypatch):
    """Keys are read a block at a time (KEY_BLOCK): blocks of any size, missing keys and wholly missing blocks
    included, give index_in's answer."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from crm_analysis import ids

    monkeypatch.setattr(ids, "KEY_BLOCK", block)
    rng = np.random.default_rng(block)
    index = pa.array([f"R{n:06d}" for n in rng.permutation(50)], type=pa.large_string())
    numbers = rng.integers(0, 60, size=40)
    keys = [None if i in (4, 5, 6, 7, 8, 9) or n % 11 == 0 else f"R{n:06d}" for i, n in enumerate(numbers)]
    keys = pa.chunked_array([pa.array(keys[:13], type=pa.string()), pa.array(keys[13:], type=pa.string())])
    expected = pc.index_in(keys, value_set=index).fill_null(-1).to_numpy(zero_copy_only=False)
    got = ids.fixed_width_positions(keys, index)
    assert got is not None and got.tolist() == expected.tolist()
    # one key of another length anywhere: declined, whichever block it falls in
    odd = pa.array([f"R{n:06d}" for n in numbers[:-1]] + ["R1"], type=pa.string())
    assert ids.fixed_width_positions(odd, index) is None
