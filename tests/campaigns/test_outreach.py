"""Staff lists as the front desk opens them: one Korean-named list per campaign, Excel-ready, private, reproducible."""

from __future__ import annotations

import datetime as dt
import stat

import pandas as pd
import pytest

from crm_analysis.campaigns import build_outreach, load_campaigns, write_outreach
from crm_analysis.campaigns.outreach import outreach_notes, outreach_tables
from crm_analysis.campaigns.staff_lists import OUTCOME_COLUMN, STAFF_FILES
from crm_analysis.io.spreadsheets import DATETIME_FORMAT, display_widths
from tests.campaigns.conftest import AS_OF

#: The columns every staff list has, in order; the vaccination list adds the child after the contact.
HEADERS = ["환자번호", "이름", "연락처", "채널", "발송일시", "메시지 유형", "메시지", "선정 사유"]
CHILD = ["아이 환자번호", "아이 이름"]


def expected_headers(stem: str) -> list[str]:
    outcome = OUTCOME_COLUMN.get(stem, "비고")
    if stem == "예방접종안내":
        return [*HEADERS[:3], *CHILD, *HEADERS[3:], outcome]
    return [*HEADERS, outcome]


@pytest.fixture(scope="module")
def lists(demo_data, demo_candidates):
    return build_outreach(demo_data, AS_OF, candidates=demo_candidates)


@pytest.fixture(scope="module")
def written(tmp_path_factory, lists, demo_data, demo_plan):
    folder = tmp_path_factory.mktemp("outreach") / "2026-10"
    notes = outreach_notes(demo_plan, demo_data)
    return folder, write_outreach(lists, folder, as_of=AS_OF, notes=notes)


def test_one_korean_named_list_per_campaign_holding_exactly_its_messages(lists, demo_plan):
    names = [n for n in lists if not n.startswith("system/")]
    stems = [n.rsplit("_", 1)[0] for n in names]
    assert stems == [stem for stem, _, _ in STAFF_FILES.values()] + ["수신동의확인안내"]
    assert all(n.endswith("_2026-11") for n in names), "named for the month planned"
    by_audience = {c.id: c.audience for c in load_campaigns().campaigns}
    for cid, audience in by_audience.items():
        stem = STAFF_FILES[audience][0]
        sends = demo_plan.sends[demo_plan.sends["campaign_id"] == cid]
        frame = lists[f"{stem}_2026-11"]
        assert list(frame.columns) == expected_headers(stem)
        assert len(frame) == len(sends), cid
        assert sorted(frame["환자번호"]) == sorted(sends["recipient_id"].astype(str)), cid
    assert sum(len(lists[n]) for n in names[:-1]) == len(demo_plan.sends)
    assert set(lists["system/campaign_holdout"].columns) == {"run_id", "campaign_id", "patient_id", "arm",
                                                             "planned_send_at"}
    assert not {"name", "phone", "email", "이름", "연락처"} & set(lists["system/campaign_suppression"].columns)


def test_vaccination_rows_name_the_child_and_go_to_the_guardian(lists, demo_data):
    v = lists["예방접종안내_2026-11"]
    p = demo_data.tables["patients"].assign(patient_id=lambda d: d["patient_id"].astype(str)).set_index("patient_id")
    assert len(v) > 0 and v["아이 이름"].str.len().gt(0).all()
    assert (p["guardian_id"].astype(object).reindex(v["아이 환자번호"]).to_numpy() == v["환자번호"].to_numpy()).all()
    assert (p["name"].reindex(v["아이 환자번호"]).to_numpy() == v["아이 이름"].to_numpy()).all()


def test_every_staff_xlsx_opens_ready_to_work(written, lists):
    """Korean headers, real date-times, a frozen header with a filter, widths that fit, wrapped messages."""
    import openpyxl

    folder, files = written
    staff = [p for p in files if p.suffix == ".xlsx" and p.parent == folder]
    assert len(staff) == len([n for n in lists if not n.startswith("system/")])
    for path in staff:
        ws = openpyxl.load_workbook(path).active
        header = [c.value for c in ws[1]]
        assert header == expected_headers(path.stem.rsplit("_", 1)[0]), path.name
        assert ws.freeze_panes == "A2", path.name
        assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(header))}{max(ws.max_row, 2)}"
        col = {name: i + 1 for i, name in enumerate(header)}
        rows = list(ws.iter_rows(min_row=2))
        frame = lists[path.stem]
        assert len(rows) == len(frame), path.name
        for row in rows:
            when = row[col["발송일시"] - 1]
            assert isinstance(when.value, dt.datetime) and when.number_format == DATETIME_FORMAT, path.name
            assert row[col["메시지"] - 1].alignment.wrap_text
        widths = {j: d.width for d in ws.column_dimensions.values() for j in range(d.min, d.max + 1)}
        for name, i in col.items():  # a <col> element may cover several columns of one width
            width = widths[i]
            shown = frame[name].dt.strftime("%Y-%m-%d %H:%M") if name == "발송일시" else frame[name].astype(str)
            need = int(max(display_widths(shown).max(initial=0), display_widths(pd.Series([name]))[0]))
            assert width >= min(need, 60), (path.name, name, width, need)
        assert ws.cell(1, 1).font.bold


def test_files_are_private_csv_has_bom_and_the_folder_explains_itself(written, lists):
    folder, files = written
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE((folder / "system").stat().st_mode) == 0o700
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    recall = (folder / "재내원안내_2026-11.csv").read_bytes()
    assert recall.startswith(b"\xef\xbb\xbf") and "환자번호".encode() in recall[:40]
    back = pd.read_csv(folder / "재내원안내_2026-11.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert back["발송일시"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d").all()
    guide = (folder / "안내.txt").read_text(encoding="utf-8-sig")
    for name, frame in lists.items():
        if not name.startswith("system/"):
            assert f"■ {name}.xlsx — {len(frame):,}건" in guide, name
    assert "system/" in guide and "대조군" in (folder / "system" / "안내.txt").read_text(encoding="utf-8-sig")
    assert sorted(p.name for p in (folder / "system").iterdir()) == sorted(
        ["안내.txt", *(f"campaign_{n}.{e}" for n in ("holdout", "suppression") for e in ("csv", "xlsx"))])
    assert not list(folder.glob(".*.tmp")), "temporary files left behind"


def test_same_month_twice_gives_byte_identical_files(tmp_path, demo_data, demo_candidates, written):
    folder, first = written
    again = write_outreach(build_outreach(demo_data, AS_OF, candidates=demo_candidates), tmp_path / "b",
                           as_of=AS_OF, notes={k: (folder / k).read_text(encoding="utf-8-sig")
                                               for k in ("안내.txt", "system/안내.txt")})
    assert [p.relative_to(folder) for p in first] == [p.relative_to(tmp_path / "b") for p in again]
    for a, b in zip(first, again):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between runs"


def test_outreach_tables_of_a_plan_are_the_built_lists(demo_data, demo_candidates, demo_plan, lists):
    tables = outreach_tables(demo_plan, demo_data)
    assert list(tables) == list(lists)
    for name in tables:
        pd.testing.assert_frame_equal(tables[name], lists[name])
