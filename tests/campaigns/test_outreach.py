"""Staff lists: only the needed columns, CSV with BOM and XLSX, private permissions, byte-identical re-runs."""

from __future__ import annotations

import stat

import pandas as pd
import pytest

from crm_analysis.campaigns import build_outreach, write_outreach
from crm_analysis.i18n import label
from tests.campaigns.conftest import AS_OF


@pytest.fixture(scope="module")
def lists(demo_data, demo_candidates):
    return build_outreach(demo_data, AS_OF, candidates=demo_candidates)


def test_staff_list_has_only_what_staff_need(lists, demo_plan):
    out = lists["outreach"]
    assert list(out.columns) == [label(f"camp_col_{c}", "ko") for c in
                                 ("campaign", "name", "contact", "channel", "send_at", "message")]
    assert len(out) == len(demo_plan.sends)
    assert out[label("camp_col_name", "ko")].str.len().gt(0).all()
    assert set(lists["holdout"].columns) == {"run_id", "campaign_id", "patient_id", "arm", "planned_send_at"}
    assert not {"name", "phone", "email"} & set(lists["suppression"].columns)


def test_same_month_twice_gives_byte_identical_files(tmp_path, demo_data, demo_candidates, lists):
    first = write_outreach(lists, tmp_path / "a" / "outreach" / "2026-11")
    again = write_outreach(build_outreach(demo_data, AS_OF, candidates=demo_candidates),
                           tmp_path / "b" / "outreach" / "2026-11")
    assert [p.name for p in first] == [p.name for p in again] == sorted(
        f"{n}.{e}" for n in ("holdout", "outreach", "suppression") for e in ("csv", "xlsx"))
    for a, b in zip(first, again):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between runs"


def test_files_are_private_csv_has_bom_and_xlsx_reads_back(tmp_path, lists):
    folder = tmp_path / "outreach"
    files = write_outreach(lists, folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    csv = (folder / "outreach.csv").read_bytes()
    assert csv.startswith(b"\xef\xbb\xbf") and "캠페인".encode() in csv[:40]
    back = pd.read_excel(folder / "outreach.xlsx", dtype=str)
    assert back.shape == lists["outreach"].shape
    assert back.iloc[:, 5].tolist() == lists["outreach"].iloc[:, 5].tolist()
    assert not list(folder.glob(".*.tmp")), "temporary files left behind"


def test_english_headers(demo_data, demo_candidates):
    out = build_outreach(demo_data, AS_OF, lang="en", candidates=demo_candidates)["outreach"]
    assert list(out.columns) == ["campaign", "name", "contact", "channel", "send time", "message"]


def test_outreach_tables_of_a_plan_are_the_built_lists(demo_data, demo_candidates):
    from crm_analysis.campaigns import plan_campaigns
    from crm_analysis.campaigns.outreach import outreach_tables

    built = build_outreach(demo_data, AS_OF, lang="en", candidates=demo_candidates)
    plan = plan_campaigns(demo_data, AS_OF, lang="en", candidates=demo_candidates)
    tables = outreach_tables(plan, demo_data, "en")
    assert list(tables) == ["outreach", "holdout", "suppression"]
    for name in tables:
        pd.testing.assert_frame_equal(tables[name], built[name])

