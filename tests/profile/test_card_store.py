"""The card index's reader and ``crm-analysis lookup`` on it: small hand-made indexes, known answers.

Each index is written with the real writer (:func:`write_card_index`) from a few hand-made rows: a
mother (P1) and her son (P2) share 010-1234-5678, P3 has her own number and no name or birth date.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from crm_analysis.cli import main as cli_main
from crm_analysis.exceptions import CardIndexError
from crm_analysis.profile.card_index import INDEX_NAME, SCHEMA_VERSION, write_card_index
from crm_analysis.profile.card_store import (CardStore, card_sections, card_text, find_index, first_line,
                                             same_source)

SHARED, OWN = "010-1234-5678", "010-2222-3333"
SPELLINGS = ["010-1234-5678", "01012345678", "+82 10-1234-5678"]


def card_tables() -> dict[str, pd.DataFrame]:
    from crm_analysis.phones import phone_key

    cards = pd.DataFrame({
        "patient_id": ["P1", "P2", "P3"], "name": ["김민지", "이서준", None],
        "birth_date": pd.to_datetime(["1988-03-14", "2019-05-02", None]), "sex": ["F", "M", None],
        "phone_tail": ["5678", "5678", "3333"], "age": [38, 7, None],
        "first_visit": pd.to_datetime(["2020-01-01", "2021-01-01", None]),
        "last_visit": pd.to_datetime(["2026-06-11", "2026-10-01", None]),
        "last_department_ko": ["내과", "소아청소년과", None], "last_department_en": ["Internal medicine", "Paediatrics", None],
        "visit_days": [24, 5, 0], "visits_12m": [3, 2, 0], "value_12m": [1_234_000.0, 50_000.0, None],
        "value_lifetime": [5_600_000.0, 90_000.0, None], "segment_ko": ["충성 고객", "신규", None],
        "segment_en": ["Loyal", "New", None], "vip": [1, 0, 0],
        "vip_reason_ko": ["최근 12개월 진료비 상위 5%", None, None], "vip_reason_en": ["top 5% by charges", None, None],
        "p_return": [0.73, 0.5, None], "return_horizon_days": [180, 180, None], "elapsed_days": [142, 30, None],
        "usual_interval_days": [60.0, 90.0, None], "overdue": [1, 0, None], "recall_candidate": [1, 0, None],
        "predicted_value": [800_000.0, None, None], "predicted_horizon_days": [365, 365, None],
        "past_appointments": [5, 1, 0], "no_shows": [2, 0, 0], "high_noshow_risk": [1, 0, 0],
        "pregnancy_week": [24, None, None], "due_date": pd.to_datetime(["2027-02-01", None, None]),
        "sms": ["valid", "none", "opted_out"], "kakao": ["none", "none", "none"],
        "email": ["opted_out", "none", "none"],
        "night_consent": [0, 0, 0], "action_kind": ["recall", "segment", None],
        "action_ko": ["재내원 안내 대상: 마지막 내원 142일 전, 예약 권유", "첫 방문 감사 인사", None],
        "action_en": ["Due for a recall: last visit 142 days ago; offer an appointment", "Thank them", None]})
    # P2 before P1 on purpose: the reader returns a family in patient_id order whatever the table's order
    phones = pd.DataFrame({"phone_key": [phone_key(SHARED), phone_key(SHARED), phone_key(OWN)],
                           "patient_id": ["P2", "P1", "P3"]})
    appointments = pd.DataFrame({
        "patient_id": ["P1"], "appointment_id": ["A1"], "scheduled_at": pd.to_datetime(["2026-11-05 14:30"]),
        "department_ko": ["내과"], "department_en": ["Internal medicine"], "noshow_risk": [0.32], "risk_band": ["high"],
        "risk_reason_ko": ["지난 노쇼 2회"], "risk_reason_en": ["2 earlier no-shows"], "reply": ["unconfirmed"]})
    messages = pd.DataFrame({
        "patient_id": ["P1"], "list_name": ["재내원안내_2026-11"], "kind": ["recall"],
        "planned_at": pd.to_datetime(["2026-11-03 10:00"]), "channel": ["알림톡"],
        "text": ["김민지님, 안녕하세요.\n\x1b[31m재내원 안내"]})
    children = pd.DataFrame({
        "guardian_id": ["P1"], "patient_id": ["P2"], "name": ["이서준"], "birth_date": pd.to_datetime(["2019-05-02"]),
        "due_from": pd.to_datetime(["2026-11-01"]), "due_to": pd.to_datetime(["2026-12-31"]),
        "vaccines_ko": ["DTaP 5차"], "vaccines_en": ["DTaP dose 5"]})
    return {"cards": cards, "phones": phones, "appointments": appointments, "messages": messages,
            "children": children}


def make_index(path: Path, *, as_of: str = "2026-10-31", made_by: str = "monthly 2026-10",
               source: str = "/srv/clinic/data") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_card_index(card_tables(), path, {"as_of": as_of, "made_by": made_by, "source": source,
                                                  "patients": 3})


@pytest.fixture
def index(tmp_path) -> Path:
    return make_index(tmp_path / INDEX_NAME)


@pytest.fixture
def store(index):
    with CardStore.open(index) as s:
        yield s


# ---------------------------------------------------------------------------- the reader

@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_common_spelling_finds_the_whole_family_in_patient_id_order(store, spelling):
    records = store.find(phone=spelling)
    assert [r["card"]["patient_id"] for r in records] == ["P1", "P2"]
    mother = records[0]
    assert mother["card"]["name"] == "김민지" and mother["card"]["value_12m"] == 1_234_000.0
    assert [a["appointment_id"] for a in mother["appointments"]] == ["A1"]
    assert [m["list_name"] for m in mother["messages"]] == ["재내원안내_2026-11"]
    assert [c["patient_id"] for c in mother["children"]] == ["P2"]
    assert records[1]["appointments"] == [] and records[1]["children"] == []


def test_meta_age_and_lookup_by_id(store):
    assert store.as_of == dt.date(2026, 10, 31) and store.made_by == "monthly 2026-10"
    assert store.meta["schema_version"] == str(SCHEMA_VERSION) and store.source == "/srv/clinic/data"
    assert store.age_days(dt.date(2026, 12, 7)) == 37
    assert [r["card"]["patient_id"] for r in store.find(patient_id="P3")] == ["P3"]
    assert store.find(patient_id="P404") == []


def test_unknown_and_invalid_numbers(store):
    assert store.find(phone="010-9876-5432") == []
    with pytest.raises(ValueError, match="not a valid Korean phone number"):
        store.find(phone="12-34")
    with pytest.raises(ValueError, match="exactly one"):
        store.find()
    with pytest.raises(ValueError, match="exactly one"):
        store.find(phone=SHARED, patient_id="P1")


def test_the_index_is_opened_read_only(index):
    before = index.read_bytes()
    with CardStore.open(index) as s:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            s._con.execute("DELETE FROM cards")
    assert index.read_bytes() == before


def test_another_schema_version_is_refused_naming_both(index):
    con = sqlite3.connect(index)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    with pytest.raises(CardIndexError, match=rf"schema version {SCHEMA_VERSION + 1}.*reads version {SCHEMA_VERSION}"):
        CardStore.open(index)


def test_a_missing_file_or_another_file_is_not_an_index(tmp_path):
    with pytest.raises(CardIndexError, match="no card index at"):
        CardStore.open(tmp_path / "nowhere.sqlite")
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database " * 100)
    with pytest.raises(CardIndexError, match="not a card index"):
        CardStore.open(text)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(CardIndexError, match="not a card index: it has no meta"):
        CardStore.open(other)
    assert isinstance(CardIndexError("x"), ValueError)  # bad input: the command exits 2


# ---------------------------------------------------------------------------- finding the newest index

def test_find_index_takes_the_newest_of_the_source(tmp_path):
    out = tmp_path / "outreach"
    make_index(out / "2026-09" / INDEX_NAME, as_of="2026-09-30")
    monthly = make_index(out / "2026-10" / INDEX_NAME, as_of="2026-10-31")
    daily = make_index(out / "daily" / "2026-10-31" / INDEX_NAME, as_of="2026-10-31", made_by="daily 2026-10-31")
    other = make_index(out / "daily" / "2026-11-02" / INDEX_NAME, as_of="2026-11-02", made_by="daily 2026-11-02",
                       source="/srv/other/data")
    make_index(out / ".2026-11.partial" / INDEX_NAME, as_of="2026-11-30")  # a run still assembling
    (out / "daily" / "2026-11-03").mkdir()
    (out / "daily" / "2026-11-03" / INDEX_NAME).write_text("broken")  # passed over
    assert find_index(out) == other
    assert find_index(out, source="/srv/clinic/data") == daily  # a daily index before the monthly of the same day
    assert find_index(out, source="/srv/clinic/data/../data/") == daily
    daily.unlink()
    assert find_index(out, source="/srv/clinic/data") == monthly
    assert find_index(out, source="/srv/nobody") is None
    assert find_index(tmp_path / "no such folder") is None


def test_sources_compare_without_secrets():
    assert same_source("postgresql://me:pw@db/crm?sslpassword=x", "postgresql://me:***@db/crm?sslpassword=***")
    assert not same_source("postgresql://me:pw@db/crm", "postgresql://me:pw@db/other")


# ---------------------------------------------------------------------------- rendering

def test_first_line_confirms_who_and_says_what_to_do(store):
    mother, son = store.find(phone=SHARED)
    assert first_line(mother) == ("김민지 · 1988-03-14 · ☎ …5678 · [VIP] [재내원 대상] [노쇼 위험 높음] — "
                                  "재내원 안내 대상: 마지막 내원 142일 전, 예약 권유")
    assert first_line(mother, "en") == ("김민지 · 1988-03-14 · ☎ …5678 · [VIP] [due for recall] [high no-show risk] — "
                                        "Due for a recall: last visit 142 days ago; offer an appointment")
    assert first_line(son, "en") == "이서준 · 2019-05-02 · ☎ …5678 — Thank them"
    (anonymous,) = store.find(phone=OWN)
    assert first_line(anonymous) == "– · – · ☎ …3333"


def test_sections_in_order_with_formatted_numbers(store):
    mother = store.find(patient_id="P1")[0]
    ko = card_sections(mother)
    assert [title for title, _ in ko] == ["예정된 예약", "이번 달 발송 예정 메시지", "자녀의 다음 예방접종", "내원·진료비",
                                          "고객 분석", "수신 동의·거부 (채널별)", "임신"]
    lines = dict(ko)
    assert lines["예정된 예약"] == ["2026-11-05 14:30 내과 · 노쇼 위험 높음 32% (지난 노쇼 2회) · 미확인"]
    # a message's line breaks and terminal escapes never reach the terminal
    assert lines["이번 달 발송 예정 메시지"] == ["재내원안내_2026-11 · 2026-11-03 10:00 · 알림톡 · 김민지님, 안녕하세요. / [31m재내원 안내"]
    assert "진료비 (최근 12개월 / 누적): 1,234,000원 / 5,600,000원" in lines["내원·진료비"]
    assert "재방문 확률 (180일 이내): 73%" in lines["고객 분석"]
    assert "이메일: 수신거부: 어떤 메시지도 보내지 마세요" in lines["수신 동의·거부 (채널별)"]
    en = dict(card_sections(mother, "en"))
    assert "charges (last 12 months / lifetime): KRW 1,234,000 / KRW 5,600,000" in en["visits and charges"]
    assert en["children's next vaccinations"] == [
        "이서준 (born 2019-05-02): DTaP dose 5, recommended 2026-11-01–2026-12-31"]
    assert en["pregnancy"] == ["week 24 of pregnancy (due 2027-02-01)"]
    bare = dict(card_sections(store.find(patient_id="P3")[0], "en"))
    assert bare["upcoming appointments"] == ["none"] and "children's next vaccinations" not in bare
    assert "charges (last 12 months / lifetime): – / –" in bare["visits and charges"]
    assert "chance of returning within – days: –" in bare["analytics"]


def test_card_text_says_which_index_and_how_old(store):
    text = card_text(store.find(phone=SHARED), store.meta, today=dt.date(2026, 12, 7))
    assert text.splitlines()[:2] == ["카드 색인 2026-10-31 기준 (monthly 2026-10, 37일 전)", "이 번호의 환자 2명"]
    assert text.count("[예정된 예약]") == 2
    en = card_text([], store.meta, "en", today=dt.date(2026, 11, 1))
    assert en.splitlines() == ["Card index as of 2026-10-31 (monthly 2026-10, 1 days old)", "no patient found"]


# ---------------------------------------------------------------------------- the command

def lookup(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli_main(["lookup", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_lookup_with_an_explicit_index(index, tmp_path, capsys):
    log = tmp_path / "access.log"
    code, out, err = lookup(["--index", str(index), "--phone", "+82 10-1234-5678", "--access-log", str(log)], capsys)
    assert code == 0, err
    assert out.splitlines()[0].startswith("카드 색인 2026-10-31 기준 (monthly 2026-10, ")
    assert "김민지 · 1988-03-14 · ☎ …5678 · [VIP]" in out and "이서준 · 2019-05-02" in out
    assert "day(s) old" in err and str(index) in err
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["patient_ids"] == ["P1", "P2"] and entry["as_of"] == "2026-10-31" and entry["query"] == "phone"
    assert "1234" not in log.read_text()  # never the number


def test_lookup_in_the_index_nobody_and_bad_input(index, tmp_path, capsys):
    log = tmp_path / "access.log"
    code, out, err = lookup(["--index", str(index), "--phone", "010-9876-5432", "--access-log", str(log),
                             "--lang", "en"], capsys)
    assert code == 1 and "no patient found" in err and "Traceback" not in err and out == ""
    assert json.loads(log.read_text())["patient_ids"] == []
    code, _, err = lookup(["--index", str(index), "--phone", "12-34", "--access-log", str(log)], capsys)
    assert code == 2 and "not a valid Korean phone number" in err
    code, _, err = lookup(["--index", str(tmp_path / "missing.sqlite"), "--phone", SHARED, "--access-log", str(log)],
                          capsys)
    assert code == 2 and "no card index at" in err
    code, _, err = lookup(["--index", str(index), "--phone", SHARED, "--as-of", "2026-09-30",
                           "--access-log", str(log)], capsys)
    assert code == 2 and "describes 2026-10-31, not --as-of 2026-09-30" in err and "give --source" in err
    code, _, err = lookup(["--phone", SHARED, "--access-log", str(log)], capsys)
    assert code == 2 and "give --source" in err


def test_lookup_finds_the_index_of_the_source_in_the_outreach_folder(tmp_path, capsys):
    data = tmp_path / "clinic"
    data.mkdir()
    outreach = tmp_path / "outreach"
    today = dt.date.today()
    made = make_index(outreach / "daily" / f"{today:%Y-%m-%d}" / INDEX_NAME, as_of=f"{today:%Y-%m-%d}",
                      made_by=f"daily {today:%Y-%m-%d}", source=str(data))
    code, out, err = lookup(["--source", str(data), "--outreach-dir", str(outreach), "--phone", OWN,
                             "--access-log", str(tmp_path / "a.log")], capsys)
    assert code == 0, err
    assert f"card index {made}" in err and "0 day(s) old" in err
    assert "☎ …3333" in out


def test_lookup_falls_back_to_the_data_when_no_index_or_a_stale_one(demo_dir, tmp_path, capsys):
    base = ["--source", str(demo_dir), "--patient-id", "P0000001", "--as-of", "2026-10-31", "--quick",
            "--access-log", str(tmp_path / "a.log")]
    outreach = tmp_path / "outreach"
    code, out, err = lookup([*base, "--outreach-dir", str(outreach)], capsys)
    assert code == 0, err
    notes = [line for line in err.splitlines() if "card index" in line]
    assert notes == [f"note: no card index of this source in {outreach}: reading the data itself (this takes a while)"]
    make_index(outreach / "2026-10" / INDEX_NAME, source=str(demo_dir))  # 2026-10-31: older than 3 days
    code, out, err = lookup([*base, "--outreach-dir", str(outreach), "--max-age-days", "3"], capsys)
    assert code == 0, err
    (note,) = [line for line in err.splitlines() if "card index" in line]
    assert "days old (over --max-age-days 3): reading the data itself" in note
    assert "P0000001" in out and "카드 색인" not in out  # the card computed from the data


def test_default_outreach_folder_is_the_monthly_runs():
    from crm_analysis.monthly.run import default_outreach_dir as monthly_default
    from crm_analysis.profile.lookup_cli import default_outreach_dir

    assert default_outreach_dir() == monthly_default("reports")


def test_the_fast_path_imports_no_data_stack(index, tmp_path):
    """A lookup in the index starts no pandas, numpy, pandera, YAML or model library (the point of the index)."""
    code = f"""
import sys
from crm_analysis.cli import main
code = main(['lookup', '--index', {str(index)!r}, '--phone', '010-1234-5678',
             '--access-log', {str(tmp_path / 'a.log')!r}])
heavy = sorted(m for m in ('pandas', 'numpy', 'pandera', 'yaml', 'lifelines', 'statsmodels', 'matplotlib', 'scipy',
                           'pyarrow', 'sqlalchemy') if m in sys.modules)
print('HEAVY', heavy, 'CODE', code)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONWARNINGS": "error"})
    assert done.returncode == 0, done.stderr
    assert "HEAVY [] CODE 0" in done.stdout, done.stdout + done.stderr


def test_writing_in_batches_of_rows_gives_the_same_index(tmp_path, monkeypatch):
    """Each batch is written as the whole table would be: a date-time column whose only time of day is in
    the last row keeps its times in the first batch too."""
    import sqlite3

    from crm_analysis.profile import card_index

    tables = card_tables()
    tables["cards"].loc[2, "last_visit"] = pd.Timestamp("2026-10-02 09:30")

    def dump(path):
        with sqlite3.connect(path) as con:
            return {name: con.execute(f"SELECT * FROM {name}").fetchall() for name in card_index.SCHEMA}

    whole = write_card_index(tables, tmp_path / "whole.sqlite", {"as_of": "2026-10-31"})
    monkeypatch.setattr(card_index, "WRITE_BATCH", 1)
    batched = write_card_index(tables, tmp_path / "batched.sqlite", {"as_of": "2026-10-31"})
    assert dump(batched) == dump(whole)
    first = dump(whole)["cards"][0]
    assert "2026-06-11 00:00" in first   # written with its time, as the column has one
