"""The memory a run may use: sizes as people write them, and the machine's or its control group's room."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_analysis.memory import free_unused_memory, memory_available, parse_size

GiB = 2 ** 30


@pytest.mark.parametrize("text, size", [("6GB", 6 * 10 ** 9), ("6 GiB", 6 * GiB), ("6g", 6 * GiB),
                                        ("512M", 512 * 2 ** 20), ("1.5GiB", int(1.5 * GiB)), ("2000", 2000),
                                        (4096, 4096), (" 3 gb ", 3 * 10 ** 9)])
def test_sizes_are_read_as_people_write_them(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["six GB", "6 GX", "", "-1GB", "0"])
def test_a_size_that_is_none_says_so(text):
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def _meminfo(tmp_path: Path, available_kib: int) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       24683772 kB\nMemFree: 1 kB\nMemAvailable:   {available_kib} kB\n")
    return path


def _room(tmp_path: Path, membership: str, files: dict[str, str], available_gib: int = 16) -> int | None:
    """memory_available() on a control group tree made of `files` (path under the root -> text)."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (tmp_path / "self_cgroup").write_text(membership)
    return memory_available(root, meminfo=_meminfo(tmp_path, available_gib * 2 ** 20),
                            membership=tmp_path / "self_cgroup")


@pytest.fixture(autouse=True)
def _nothing_stated(monkeypatch):
    monkeypatch.delenv("CRM_ANALYSIS_MEMORY", raising=False)


def test_without_a_control_group_limit_the_machines_available_memory_counts(tmp_path):
    assert _room(tmp_path, "4:memory:/job\n1:cpu:/\n",
                 {"memory/job/memory.limit_in_bytes": "9223372036854771712\n"}, available_gib=8) == 8 * GiB  # v1


def test_a_v1_control_group_limits_it_less_what_its_processes_hold(tmp_path):
    # the page cache (5 GiB) is not held: the kernel reclaims it under the limit; a looser limit above
    assert _room(tmp_path, "4:memory:/batch/job\n", {
        "memory/batch/job/memory.limit_in_bytes": f"{6 * GiB}\n",
        "memory/batch/job/memory.stat": f"cache {5 * GiB}\nrss 10\ntotal_cache {5 * GiB}\ntotal_rss {GiB}\n",
        "memory/batch/memory.limit_in_bytes": f"{20 * GiB}\n"}) == 5 * GiB


def test_a_v2_control_group_limits_it(tmp_path):
    assert _room(tmp_path, "0::/system.slice/crm.service\n", {
        "cgroup.controllers": "cpu memory\n", "system.slice/memory.max": "max\n",
        "system.slice/crm.service/memory.max": f"{4 * GiB}\n",
        "system.slice/crm.service/memory.stat": f"anon {GiB // 2}\nfile {GiB}\n"}) == 3.5 * GiB


def test_a_stated_memory_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_ANALYSIS_MEMORY", "6GB")
    assert memory_available(tmp_path, meminfo=_meminfo(tmp_path, 16 * 2 ** 20)) == 6 * 10 ** 9


def test_unknown_where_nothing_can_be_read(tmp_path):
    assert memory_available(tmp_path, meminfo=tmp_path / "none", membership=tmp_path / "none") is None


def test_freeing_unused_memory_is_harmless():
    kept = list(range(1000))
    free_unused_memory()
    assert kept[-1] == 999
