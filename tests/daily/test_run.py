"""The daily run end to end: the command, its folder, owner-only files, byte-identical re-runs."""

from __future__ import annotations

import stat

import pandas as pd
import pytest

from crm_analysis.cli import main

DAY = "2026-10-20"


@pytest.fixture(scope="module")
def published(demo_dir, tmp_path_factory):
    """The command run twice on the small demo clinic (a CSV folder, loaded through the loader)."""
    root = tmp_path_factory.mktemp("daily_run")
    args = ["daily", "--date", DAY, "--source", str(demo_dir), "--out", str(root / "reports"), "--no-risk-model"]
    first = main(args)
    folder = root / "outreach" / "daily" / DAY
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    second = main(args)
    return first, second, folder, before


def test_the_command_publishes_the_day(published):
    first, second, folder, _ = published
    assert first == second == 0
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["안내.txt", "cards.sqlite", f"예약알림_발송_{DAY}.csv", f"예약알림_발송_{DAY}.xlsx",
                            "예약확인_전화_2026-10-21.csv", "예약확인_전화_2026-10-21.xlsx"])
    sends = pd.read_csv(folder / f"예약알림_발송_{DAY}.csv", encoding="utf-8-sig")
    assert {"예약번호", "알림 단계", "발송일시", "채널", "메시지"} <= set(sends.columns) and len(sends) > 0
    assert (folder / f"예약알림_발송_{DAY}.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert not [p for p in folder.parent.iterdir() if ".partial-" in p.name]


def test_a_rerun_gives_identical_files(published):
    _, _, folder, before = published
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_files_are_owner_only(published):
    _, _, folder, _ = published
    for path in (folder, folder.parent, folder.parent.parent):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize("args, message", [
    (["--date", "2026-13-45"], "not a date"),
    (["--date", "20261020"], "YYYY-MM-DD"),
    (["--date", "2026-12-20"], "too old"),
    (["--date", "2020-01-01"], "before the data's first recorded day"),
])
def test_bad_input_exits_2_without_a_traceback(demo_dir, tmp_path, capsys, args, message):
    code = main(["daily", *args, "--source", str(demo_dir), "--outreach-dir", str(tmp_path / "o"), "--no-risk-model"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o" / "daily").exists() or not any((tmp_path / "o" / "daily").glob("20*"))


def test_a_missing_source_exits_2(tmp_path, capsys):
    code = main(["daily", "--date", DAY, "--source", str(tmp_path / "nowhere"), "--outreach-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "Traceback" not in err


def test_formula_cells_are_neutralised(clinic, tmp_path):
    from dataclasses import replace

    from crm_analysis.daily.run import run_daily

    patients = clinic.tables["patients"].copy()
    patients["name"] = patients["name"].astype(object)
    patients.loc[:, "name"] = "=HYPERLINK(\"x\")"
    evil = replace(clinic, tables={**clinic.tables, "patients": patients})
    result = run_daily(DAY, "evil", outreach_dir=tmp_path, risk_model=False, clinic=evil)
    text = next(result.folder.glob("예약확인_전화_*.csv")).read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text


def test_the_risk_model_ranks_the_calls_when_installed(clinic):
    pytest.importorskip("crm_analysis.noshow")
    from crm_analysis.daily import confirmation_calls

    calls = confirmation_calls(clinic, DAY)
    assert (calls["risk_source"] == "noshow_model").all() and calls["no_show_risk"].between(0, 1).all()
