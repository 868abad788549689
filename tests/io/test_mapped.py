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
