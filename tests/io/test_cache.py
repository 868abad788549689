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
    data.write_bytes(data.read_bytes()[:-10])
    with pytest.raises(CrmAnalysisError, match="damaged"):
        read_snapshot_cache(folder)
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
    private mapping of the file (pages shared through the page cache), not copies, and writing into one
    changes neither the file nor another reader."""
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

    days = first.visits["visit_date"].to_numpy()
    assert mapped_kib() * 1024 >= 0.5 * size  # the tables live in the mapping, not in copies
    assert not days.flags.owndata and days.flags.writeable
    original = days[0]
    days[0] = days[0] + np.timedelta64(1, "D")  # a private copy of that page only
    second = read_snapshot_cache(folder)  # the hash still matches: the file is untouched
    assert second.visits["visit_date"].iloc[0] == original != first.visits["visit_date"].iloc[0]
