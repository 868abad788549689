"""The card index written by the monthly run agrees with the staff lists, for every patient of the demo."""

from __future__ import annotations

import sqlite3
import stat

import pandas as pd
import pytest

from crm_analysis.profile.card_index import INDEX_NAME

pytestmark = pytest.mark.xdist_group("demo_monthly_run")  # on the worker that holds the session's run


@pytest.fixture(scope="module")
def index(demo_monthly_run):
    path = demo_monthly_run.outreach_dir / INDEX_NAME
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        tables = {name: pd.read_sql(f"SELECT * FROM {name}", con)
                  for name in ("meta", "cards", "phones", "appointments", "messages", "children")}
    return path, tables


@pytest.fixture(scope="module")
def staff(demo_monthly_run):
    lists = {}
    for csv in sorted(demo_monthly_run.outreach_dir.glob("*.csv")):
        lists[csv.stem] = pd.read_csv(csv, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    return lists


def test_index_is_published_owner_only_beside_the_lists(index, demo_clinic):
    path, tables = index
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    meta = dict(zip(tables["meta"]["key"], tables["meta"]["value"]))
    assert meta["as_of"] == "2026-10-31" and meta["made_by"] == "monthly 2026-10"
    assert int(meta["patients"]) == len(tables["cards"]) == len(demo_clinic.patients)
    assert set(tables["cards"]["patient_id"]) == set(demo_clinic.patients["patient_id"].astype(str))


def test_every_staff_list_row_is_a_planned_message_on_its_patients_card(index, staff):
    messages = index[1]["messages"]
    assert len(staff) >= 5
    for name, rows in staff.items():
        on_card = messages.loc[messages["list_name"] == name]
        listed = pd.DataFrame({"patient_id": rows["환자번호"], "planned_at": rows["발송일시"], "channel": rows["채널"],
                               "text": rows["메시지"]})
        keys = ["patient_id", "planned_at", "channel", "text"]
        left = listed[keys].sort_values(keys).reset_index(drop=True)
        right = on_card[keys].astype(str).sort_values(keys).reset_index(drop=True)
        print(f"{name}: {len(left)} list rows, {len(right)} card messages")
        pd.testing.assert_frame_equal(left, right, check_dtype=False)
    assert set(messages["list_name"]) <= set(staff)


def test_a_childs_next_vaccination_is_the_one_its_message_names(index, staff):
    children = index[1]["children"].set_index("patient_id")
    rows = next(frame for name, frame in staff.items() if name.startswith("예방접종안내"))
    assert len(rows) > 0
    for _, row in rows.iterrows():
        kid = children.loc[row["아이 환자번호"]]
        assert kid["guardian_id"] == row["환자번호"]
        # the card names every dose planned for the child this month; each message names some of them
        named = row["메시지"].split("안내입니다: ", 1)[1].rsplit(" (권장 시기", 1)[0]
        assert named in kid["vaccines_ko"].split("; "), (kid["vaccines_ko"], row["메시지"])


def test_flags_and_actions_follow_the_lists(index, staff):
    cards = index[1]["cards"].set_index("patient_id")
    recall = set(next(f for n, f in staff.items() if n.startswith("재내원안내"))["환자번호"])
    vip_list = set(next(f for n, f in staff.items() if n.startswith("VIP행사초대"))["환자번호"])
    vaccination = set(next(f for n, f in staff.items() if n.startswith("예방접종안내"))["환자번호"])
    assert set(cards.index[cards["recall_candidate"] == 1]) == recall
    assert vip_list <= set(cards.index[cards["vip"] == 1])
    kinds = cards["action_kind"]
    assert set(kinds.index[kinds == "recall"]) <= recall
    assert set(kinds.index[kinds == "vaccination"]) <= vaccination
    # the precedence: a recall patient without a risky appointment gets the recall action
    calm = cards.loc[list(recall)]
    assert (calm.loc[calm["action_kind"] != "confirm", "action_kind"] == "recall").all()
    assert cards.loc[kinds == "recall", "action_ko"].str.match(r"재내원 안내 대상: 마지막 내원 \d+일 전, 예약 권유").all()
    assert cards["action_ko"].notna().all() and (cards["action_ko"].str.len() > 0).all()
    print(kinds.value_counts().to_dict())


def test_appointments_on_cards_are_the_ones_still_booked_with_their_risk(index, demo_clinic):
    appts = index[1]["appointments"]
    a = demo_clinic.snapshot("2026-10-31").appointments  # as known that day: a later reschedule is not known
    booked = a.loc[(a["status"] == "booked") & (a["scheduled_at"] >= pd.Timestamp("2026-11-01"))]
    assert set(appts["appointment_id"]) == set(booked["appointment_id"].astype(str))
    assert appts["noshow_risk"].between(0, 1).all()
    cards = index[1]["cards"].set_index("patient_id")
    high = set(appts.loc[appts["risk_band"] == "high", "patient_id"])
    assert set(cards.index[cards["high_noshow_risk"] == 1]) == high and high
