"""The daily card index: the month's cards with the day's appointments, risks and reminder sends."""

from __future__ import annotations

import shutil
import sqlite3

import pandas as pd
import pytest

from crm_analysis.cli import main
from crm_analysis.profile.card_index import INDEX_NAME

pytestmark = pytest.mark.xdist_group("demo_monthly_run")  # on the worker that holds the session's run

DAY = "2026-11-01"


def _tables(path):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        return {name: pd.read_sql(f"SELECT * FROM {name}", con)
                for name in ("meta", "cards", "appointments", "messages")}


@pytest.fixture(scope="module")
def day_after_the_month(demo_monthly_run, demo_dir, tmp_path_factory):
    """The daily run of the day after the monthly run's month, in a copy of its outreach folder."""
    outreach = tmp_path_factory.mktemp("daily_cards") / "outreach"
    shutil.copytree(demo_monthly_run.outreach_dir.parent, outreach)
    assert main(["daily", "--date", DAY, "--source", str(demo_dir), "--outreach-dir", str(outreach)]) == 0
    folder = outreach / "daily" / DAY
    return _tables(demo_monthly_run.outreach_dir / INDEX_NAME), _tables(folder / INDEX_NAME), folder


def test_the_days_index_keeps_the_months_analyses(day_after_the_month):
    month, day, _ = day_after_the_month
    meta = dict(zip(day["meta"]["key"], day["meta"]["value"]))
    assert meta["made_by"] == f"daily {DAY}" and meta["as_of"] == "2026-10-31"
    assert "monthly 2026-10" in meta["notes"]
    keep = ["patient_id", "segment_ko", "vip", "p_return", "predicted_value", "recall_candidate"]
    pd.testing.assert_frame_equal(day["cards"][keep], month["cards"][keep])


def test_the_days_sends_are_messages_and_its_calls_appointments_on_the_cards(day_after_the_month):
    _, day, folder = day_after_the_month
    sends = pd.read_csv(folder / f"예약알림_발송_{DAY}.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    on_cards = day["messages"].loc[day["messages"]["list_name"] == f"예약알림_발송_{DAY}"]
    assert len(sends) > 0 and len(on_cards) == len(sends)
    assert sorted(zip(on_cards["patient_id"], on_cards["text"])) == sorted(zip(sends["환자번호"], sends["메시지"]))
    calls = pd.read_csv(folder / "예약확인_전화_2026-11-02.csv", encoding="utf-8-sig", dtype=str)
    ids = set(day["appointments"]["appointment_id"])
    assert set(calls["예약번호"]) <= ids
    risky = day["appointments"].loc[day["appointments"]["risk_band"] == "high"]
    cards = day["cards"].set_index("patient_id")
    assert len(risky) and (cards.loc[risky["patient_id"].unique(), "high_noshow_risk"] == 1).all()
    confirm = cards.loc[cards["action_kind"] == "confirm"]
    assert len(confirm) and confirm["action_ko"].str.startswith("예약 확인 전화: ").all()
