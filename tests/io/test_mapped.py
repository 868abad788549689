"""Mapped pickles: arrays read back as views of the file, dates included; damaged files refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.io import mapped


def _frame(n: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"day": pd.date_range("2020-01-01", periods=n, freq="h"),
                         "wait": pd.to_timedelta(rng.integers(0, 100, n), unit="D"),
                         "charge": rng.normal(size=n), "n": np.arange(n),
                         "dept": pd.Categorical(rng.choice(["내과", "소아과"], n)),
                         "id": pd.array([f"P{i:06d}" for i in range(n)], dtype="string[pyarrow]")})


def _owner(array: np.ndarray):
    while isinstance(getattr(array, "base", None), np.ndarray):
        array = array.base
    return array.base


def test_round_trip_reads_every_array_as_a_writable_view_of_the_file(tmp_path):
    frame = _frame()
    path = mapped.dump({"table": frame, "note": "x"}, tmp_path / "f.pkl")
    assert path.stat().st_mode & 0o077 == 0
    back = mapped.load(path)
    pd.testing.assert_frame_equal(back["table"], frame, check_exact=True)
    assert back["note"] == "x"
    for column in ("day", "wait", "charge", "n"):
        values = back["table"][column].array
        values = getattr(values, "_ndarray", None) if hasattr(values, "_ndarray") else values.to_numpy()
        assert not isinstance(_owner(values), bytes), f"{column} was copied out of the pickle stream"
        assert not values.flags.owndata and values.flags.writeable
    back["table"].loc[0, "charge"] = 99.0  # copy-on-write: the file keeps its value
    assert mapped.load(path)["table"].loc[0, "charge"] == frame.loc[0, "charge"]


def test_a_read_only_date_array_comes_back_writable(tmp_path):
    days = np.arange(10).astype("datetime64[D]").astype("datetime64[ns]")
    days.flags.writeable = False
    back = mapped.load(mapped.dump(days, tmp_path / "d.pkl"))
    assert back.flags.writeable and (back == days).all()


def test_files_it_did_not_write_or_cut_short_are_refused(tmp_path):
    other = tmp_path / "other.pkl"
    other.write_bytes(b"not a mapped pickle at all")
    with pytest.raises(CrmAnalysisError, match="not written by"):
        mapped.load(other)
    path = mapped.dump(_frame(), tmp_path / "f.pkl")
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(CrmAnalysisError, match="cut short"):
        mapped.load(path)


def _text(n: int, start: int = 0):
    import pyarrow as pa

    return pa.array([None if i % 97 == 0 else f"P{i:07d}" for i in range(start, start + n)], type=pa.large_string())


def test_text_chunks_sliced_from_shared_buffers_are_written_once_and_read_back_as_they_were(tmp_path):
    import pyarrow as pa

    parent = _text(60_000)   # as a Parquet reader hands a column back: chunks sliced from one buffer
    chunked = pa.chunked_array([parent.slice(i, 10_000) for i in range(0, 60_000, 10_000)])
    frame = pd.DataFrame({"id": pd.arrays.ArrowStringArray(chunked),
                          "n": pd.array(np.arange(60_000), dtype=pd.ArrowDtype(pa.int64()))})
    path = mapped.dump(frame, tmp_path / "f.pkl")
    one_copy = parent.get_total_buffer_size() + 60_000 * 8
    assert path.stat().st_size < 1.2 * one_copy, "a shared buffer was written once per chunk"
    back = mapped.load(path)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back["id"].dtype == frame["id"].dtype and back["n"].dtype == frame["n"].dtype
    # pandas' own pickling joins the chunks into one new array (a copy of the whole column)
    assert frame["id"].array._pa_array.chunk(5).offset == 50_000   # still slices of one array when written
    assert back["id"].array._pa_array.num_chunks == 6


def test_a_small_slice_of_a_large_arrow_array_is_written_with_its_rows_only(tmp_path):
    import pyarrow as pa

    piece = pd.DataFrame({"id": pd.arrays.ArrowStringArray(pa.chunked_array([_text(200_000).slice(1000, 50)]))})
    path = mapped.dump(piece, tmp_path / "f.pkl")
    assert path.stat().st_size < 20_000, "the whole 2.4 MB array was written for 50 of its rows"
    pd.testing.assert_frame_equal(mapped.load(path), piece, check_exact=True)


def test_an_arrow_text_index_round_trips(tmp_path):
    import pyarrow as pa

    index = pd.Index(pd.arrays.ArrowStringArray(pa.chunked_array([_text(500)])), name="patient_id")
    series = pd.Series(np.arange(500.0), index=index)
    back = mapped.load(mapped.dump(series, tmp_path / "f.pkl"))
    pd.testing.assert_series_equal(back, series, check_exact=True)
