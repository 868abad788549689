"""``crm-analysis lookup``: the card in the terminal; unknown numbers exit 1 with a plain message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crm_analysis.profile.lookup_cli import main

CLI = Path(sys.executable).with_name("crm-analysis")


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(["lookup", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_lookup_prints_the_family_cards(demo_dir, tables, tmp_path, capsys):
    p = tables["patients"]
    phones = p["phone"].dropna()
    shared = phones[phones.duplicated(keep=False)].iloc[0]
    ids = p.loc[p["phone"] == shared, "patient_id"].astype(str).tolist()
    log = tmp_path / "access.log"
    code, out, err = run(["--source", str(demo_dir), "--phone", shared.replace("-", ""), "--as-of", "2026-10-31",
                          "--access-log", str(log), "--quick", "--lang", "en"], capsys)
    assert code == 0, err
    assert all(i in out for i in ids)
    assert f"{len(ids)} patients with this number" in out
    assert "not computed" in out  # --quick: the models are said to be skipped, not faked
    assert shared not in out and shared not in log.read_text()
    assert len(log.read_text().splitlines()) == 1


def test_unknown_number_exits_1_with_a_plain_message(demo_dir, tmp_path, capsys):
    log = tmp_path / "access.log"
    code, out, err = run(["--source", str(demo_dir), "--phone", "010-9876-5432", "--access-log", str(log),
                          "--quick"], capsys)
    assert code == 1
    assert "no patient found" in err
    assert "Traceback" not in err + out
    assert len(log.read_text().splitlines()) == 1


def test_invalid_number_is_bad_input(demo_dir, tmp_path, capsys):
    code, out, err = run(["--source", str(demo_dir), "--phone", "12-34", "--access-log", str(tmp_path / "a.log")],
                         capsys)
    assert code == 2
    assert "not a valid Korean phone number" in err and "Traceback" not in err


def _lookup_registered() -> bool:
    if not CLI.exists():
        return False
    help_text = subprocess.run([str(CLI), "--help"], capture_output=True, text=True).stdout
    return "lookup" in help_text


@pytest.mark.skipif(not _lookup_registered(), reason="`crm-analysis lookup` is not wired into cli.py yet")
def test_installed_command(demo_dir, tmp_path):
    log = tmp_path / "access.log"
    done = subprocess.run([str(CLI), "lookup", "--source", str(demo_dir), "--phone", "+82 10-9876-5432",
                           "--access-log", str(log), "--quick"], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "no patient found" in done.stderr and "Traceback" not in done.stderr
    assert len(log.read_text().splitlines()) == 1


def test_a_switched_off_or_moved_access_log_is_said_in_one_line(demo_dir, tables, tmp_path, monkeypatch, capsys):
    """--access-log /dev/null or $CRM_ANALYSIS_ACCESS_LOG: the lookup says where (not) it is recorded (issue 16, 8)."""
    import os

    from crm_analysis.profile.access_log import ENV_VAR

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    base = ["--source", str(demo_dir), "--patient-id", str(tables["patients"]["patient_id"].iloc[0]),
            "--as-of", "2026-10-31", "--quick"]

    def notes(argv: list[str]) -> list[str]:
        code, _, err = run(argv, capsys)
        assert code == 0, err
        return [line for line in err.splitlines() if "access log" in line]

    assert notes(base) == []  # the usual log: nothing to say
    assert (tmp_path / "home" / ".crm_analysis" / "access.log").is_file()
    off = notes([*base, "--access-log", os.devnull])
    print(off)
    assert len(off) == 1 and "switched off" in off[0] and os.devnull in off[0]
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere.log"))
    moved = notes(base)
    print(moved)
    assert len(moved) == 1 and str(tmp_path / "elsewhere.log") in moved[0] and ENV_VAR in moved[0]
    assert (tmp_path / "elsewhere.log").is_file()
    monkeypatch.setenv(ENV_VAR, os.devnull)
    off = notes(base)
    assert len(off) == 1 and "switched off" in off[0] and ENV_VAR in off[0]
