"""The validated-clinic cache the monthly run gives its notebooks."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.io.cache import is_snapshot_cache, read_snapshot_cache, write_snapshot_cache


def test_round_trip_keeps_tables_and_report(demo_clinic, tmp_path):
    folder = write_snapshot_cache(demo_clinic, tmp_path / "cache")
    assert is_snapshot_cache(folder) and not is_snapshot_cache(tmp_path) and not is_snapshot_cache("sqlite:///x.db")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    back = read_snapshot_cache(folder)
    assert set(back.tables) == set(demo_clinic.tables)
    for name, df in demo_clinic.tables.items():
        pd.testing.assert_frame_equal(back.tables[name], df)
    assert back.report.summary() == demo_clinic.report.summary()
    assert back.source == demo_clinic.source and back.as_of == demo_clinic.as_of
    snap = back.snapshot("2026-09-30")
    assert snap.visits["visit_date"].max() <= pd.Timestamp("2026-09-30")


def test_damaged_or_foreign_cache_is_refused(demo_clinic, tmp_path):
    folder = write_snapshot_cache(demo_clinic, tmp_path / "cache")
    data = folder / "clinic.pickle"
    whole = data.read_bytes()
    data.write_bytes(whole[:-10])  # cut short
    with pytest.raises(CrmAnalysisError, match="damaged"):
        read_snapshot_cache(folder)
    stream_start = json.loads((folder / "cache.json").read_text())["parts"][0][0]
    altered = bytearray(whole)
    altered[stream_start + 20] ^= 0xFF  # the pickle stream, which could run code, changed
    data.write_bytes(bytes(altered))
    with pytest.raises(CrmAnalysisError, match="damaged"):
        read_snapshot_cache(folder)
    data.write_bytes(whole)
    meta = json.loads((folder / "cache.json").read_text())
    (folder / "cache.json").write_text(json.dumps({**meta, "crm_analysis": "0.0.0"}))
    with pytest.raises(CrmAnalysisError, match="written by crm_analysis 0.0.0"):
        read_snapshot_cache(folder)
    with pytest.raises(CrmAnalysisError, match="not a validated-clinic cache"):
        read_snapshot_cache(tmp_path)


def test_as_of_must_match(demo_clinic, tmp_path):
    folder = write_snapshot_cache(demo_clinic, tmp_path / "cache")
    assert read_snapshot_cache(folder, as_of="2026-10-31").as_of == pd.Timestamp("2026-10-31")
    with pytest.raises(CrmAnalysisError, match="validated as of"):
        read_snapshot_cache(folder, as_of="2026-09-30")


def test_load_clinic_reads_the_cache_without_validating_again(demo_clinic, tmp_path, monkeypatch):
    from crm_analysis import load_clinic
    from crm_analysis.io import loading

    folder = write_snapshot_cache(demo_clinic, tmp_path / "cache")
    monkeypatch.setattr(loading, "validate_tables", None)  # would fail if called
    loaded = load_clinic(folder)
    assert loaded.row_counts().equals(demo_clinic.row_counts())


def test_tables_read_back_are_ordinary_writable_frames(demo_clinic, tmp_path):
    """Arrays come back out of band, in memory of their own: they can be changed like any loaded table's."""
    back = read_snapshot_cache(write_snapshot_cache(demo_clinic, tmp_path / "cache"))
    visits = back.tables["visits"]
    assert visits["visit_date"].to_numpy().flags.writeable and visits["charge_insured"].to_numpy().flags.writeable
    visits.loc[0, "charge_insured"] = -1.0
    assert visits.loc[0, "charge_insured"] == -1.0 and demo_clinic.tables["visits"].loc[0, "charge_insured"] != -1.0
    expected, got = demo_clinic.snapshot("2026-06-30"), back.snapshot("2026-06-30")
    for name in ("appointments", "reminders", "patients"):
        pd.testing.assert_frame_equal(got.tables[name], expected.tables[name])


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
def test_reading_maps_the_file_copy_on_write_so_processes_share_it(demo_clinic, tmp_path):
    """The run, its model workers and every notebook kernel read the same cache: its arrays are views of a
    private mapping of the file (pages shared through the page cache), not copies; a process brings in only
    the columns it reads; and writing into one changes neither the file nor another reader."""
    folder = write_snapshot_cache(demo_clinic, tmp_path / "cache")
    data = (folder / "clinic.pickle").resolve()
    size = data.stat().st_size
    first = read_snapshot_cache(folder)

    def mapped_kib() -> int:  # resident KiB of mappings of the cache file in this process
        total, inside = 0, False
        for line in Path("/proc/self/smaps").read_text().splitlines():
            if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):  # a mapping's first line: address range ... path
                inside = line.rstrip().endswith(str(data))
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
        return total

    untouched = mapped_kib()
    # reading touches only the pickle stream: pages of columns this process never reads stay on disk
    assert untouched * 1024 < 0.2 * size, (untouched, size)
    charges = first.visits["charge_insured"].to_numpy()
    charges.sum()
    assert mapped_kib() * 1024 >= untouched * 1024 + 0.9 * charges.nbytes  # the column is read from the mapping
    days = first.visits["visit_date"].to_numpy()
    assert not days.flags.owndata and days.flags.writeable
    original = days[0]
    days[0] = days[0] + np.timedelta64(1, "D")  # a private copy of that page only
    second = read_snapshot_cache(folder)  # the hash still matches: the file is untouched
    assert second.visits["visit_date"].iloc[0] == original != first.visits["visit_date"].iloc[0]


def _root(array: np.ndarray):
    while isinstance(getattr(array, "base", None), np.ndarray):
        array = array.base
    return array.base


def test_date_columns_are_views_of_the_file_too(demo_clinic, tmp_path):
    """numpy keeps date arrays inside the pickle stream, which would give every reader a private copy of every
    date column (0.9 GiB per process at a million patients): they are written as int64, out of band, and read
    back as views of the mapping like the other columns, writable, with the same values."""
    back = read_snapshot_cache(write_snapshot_cache(demo_clinic, tmp_path / "cache"))
    for name in ("visits", "appointments", "reminders", "patients"):
        for column in back.tables[name].select_dtypes("datetime").columns:
            days = back.tables[name][column].array._ndarray
            assert not isinstance(_root(days), bytes), f"{name}.{column} was copied out of the pickle stream"
            assert days.flags.writeable
        pd.testing.assert_frame_equal(back.tables[name], demo_clinic.tables[name])
