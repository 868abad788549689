"""``crm-analysis serve``: the caller-ID page; token, redirect and cookie, headers, escaping, access log, speed.

The server runs in a thread on a free port over a small index written by
:func:`~crm_analysis.profile.card_index.write_card_index` from hand-made frames,
one of whose names is hostile HTML and another a spreadsheet formula.
"""

from __future__ import annotations

import html
import http.client
import json
import os
import stat
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from crm_analysis.profile.card_index import write_card_index
from crm_analysis.profile.index import phone_key

MINJI_PHONE = "010-1234-5678"   # 김민지 and her child (whose name is hostile HTML)
FORMULA_PHONE = "010-2222-3333"  # a patient named like a spreadsheet formula
UNKNOWN_PHONE = "010-9876-5432"
SCRIPT_NAME = "<script>alert(1)</script>"
FORMULA_NAME = '=HYPERLINK("http://evil.example/?x=1","click")'

REQUIRED_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Type": "text/html; charset=utf-8",
}


def card_frames(name: str = "김민지") -> dict[str, pd.DataFrame]:
    """Three patients, two phone numbers, one appointment, one message, one child (columns of card_index.SCHEMA)."""
    cards = pd.DataFrame({
        "patient_id": ["P001", "P002", "P003"],
        "name": [name, SCRIPT_NAME, FORMULA_NAME],
        "birth_date": pd.to_datetime(["1988-03-14", "2024-05-02", "1970-01-20"]),
        "sex": ["F", "M", "M"],
        "phone_tail": ["5678", "5678", "3333"],
        "age": [38, 2, 56],
        "first_visit": pd.to_datetime(["2024-01-05", "2024-06-01", "2025-02-03"]),
        "last_visit": pd.to_datetime(["2026-06-11", "2026-09-30", "2026-10-20"]),
        "last_department_ko": ["산부인과", "소아청소년과", "내과"],
        "last_department_en": ["Obstetrics", "Paediatrics", "Internal medicine"],
        "visit_days": [12, 5, 3], "visits_12m": [4, 3, 3],
        "value_12m": [410_000.0, 95_000.0, 60_000.0], "value_lifetime": [1_250_000.0, 180_000.0, 90_000.0],
        "segment_ko": ["충성 고객", "신규", "신규"], "segment_en": ["Loyal", "New", "New"],
        "vip": [1, 0, 0], "vip_reason_ko": ["12개월 매출 상위", None, None],
        "vip_reason_en": ["top value, 12 months", None, None],
        "p_return": [0.41, 0.9, 0.8], "return_horizon_days": [180, 180, 180], "elapsed_days": [142, 31, 11],
        "usual_interval_days": [60.0, 90.0, None], "overdue": [1, 0, 0], "recall_candidate": [1, 0, 0],
        "predicted_value": [300_000.0, 80_000.0, None], "predicted_horizon_days": [365, 365, 365],
        "past_appointments": [6, 2, 0], "no_shows": [1, 0, 0], "high_noshow_risk": [0, 0, 0],
        "pregnancy_week": [None, None, None], "due_date": [None, None, None],
        "sms": ["valid", "none", "opted_out"], "kakao": ["valid", "none", "none"], "email": ["none"] * 3,
        "night_consent": [0, 0, 0],
        "action_kind": ["recall", "segment", "segment"],
        "action_ko": ["재내원 안내 대상: 마지막 내원 142일 전, 예약 권유", "첫 내원 후 안부", SCRIPT_NAME],
        "action_en": ["recall: last visit 142 days ago, suggest booking", "welcome follow-up", SCRIPT_NAME],
    })
    phones = pd.DataFrame({"phone_key": [phone_key(MINJI_PHONE)] * 2 + [phone_key(FORMULA_PHONE)],
                           "patient_id": ["P001", "P002", "P003"]})
    appointments = pd.DataFrame({
        "patient_id": ["P001"], "appointment_id": ["A1"], "scheduled_at": pd.to_datetime(["2026-11-03 10:30"]),
        "department_ko": ["산부인과"], "department_en": ["Obstetrics"], "noshow_risk": [0.12], "risk_band": ["low"],
        "risk_reason_ko": ["이전 부도 1회"], "risk_reason_en": ["1 earlier no-show"], "reply": [None]})
    messages = pd.DataFrame({
        "patient_id": ["P001"], "list_name": ["recall"], "kind": ["recall"], "planned_at": ["2026-11-04"],
        "channel": ["kakao"], "text": [f"안녕하세요 {SCRIPT_NAME}"]})
    children = pd.DataFrame({
        "guardian_id": ["P001"], "patient_id": ["P002"], "name": [SCRIPT_NAME], "birth_date": ["2024-05-02"],
        "due_from": ["2026-11-02"], "due_to": ["2026-12-02"], "vaccines_ko": ["MMR 2차"], "vaccines_en": ["MMR 2"]})
    return {"cards": cards, "phones": phones, "appointments": appointments, "messages": messages,
            "children": children}


def write_index(path: Path, *, name: str = "김민지", as_of: str = "2026-10-31") -> Path:
    return write_card_index(card_frames(name), path, {"as_of": as_of, "made_by": "monthly 2026-10",
                                                      "source": "hand-made", "patients": 3})


class Running:
    """A CardServer serving in a daemon thread; shut down by :meth:`stop`."""

    def __init__(self, index: Path, log: Path, token: str, **kwargs):
        from crm_analysis.profile.serve import CardServer

        self.server = CardServer(index, token=token, port=0, access_log=log, **kwargs)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.token, self.log = token, log

    def get(self, target: str, headers: dict | None = None, method: str = "GET"):
        con = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            con.request(method, target, headers=headers or {})
            response = con.getresponse()
            response.text = response.read().decode("utf-8")
        finally:
            con.close()
        return response

    def authorised(self, target: str, **kw):
        return self.get(target, headers={"X-CRM-Token": self.token}, **kw)

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()] \
            if self.log.exists() else []

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


TOKEN = "test-token-" + "x" * 40


@pytest.fixture
def index(tmp_path) -> Path:
    return write_index(tmp_path / "cards.sqlite")


@pytest.fixture
def running(index, tmp_path):
    run = Running(index, tmp_path / "access.log", TOKEN)
    yield run
    run.stop()


def check_headers(response) -> None:
    for name, value in REQUIRED_HEADERS.items():
        assert response.getheader(name) == value, (response.status, name)
    csp = response.getheader("Content-Security-Policy")
    assert "default-src 'none'" in csp and "form-action 'self'" in csp and "style-src 'nonce-" in csp


def expected_first_line(index: Path, lang: str = "ko") -> str:
    from crm_analysis.profile.card_store import CardStore, first_line

    with CardStore.open(index) as store:
        return first_line(store.find(patient_id="P001")[0], lang)


# --- the token
def test_without_a_token_nothing_is_shown_and_the_refusal_is_logged(running):
    known = running.get(f"/card?phone={MINJI_PHONE}")
    unknown = running.get(f"/card?phone={UNKNOWN_PHONE}")
    wrong = running.get(f"/card?phone={MINJI_PHONE}", headers={"X-CRM-Token": "nope",
                                                               "Cookie": "crm_analysis_token=nope"})
    wrong_url = running.get(f"/card?phone={MINJI_PHONE}&token=nope")
    for response in (known, unknown, wrong, wrong_url, running.get("/")):
        assert response.status == 403
        check_headers(response)
        assert "김민지" not in response.text and "alert" not in response.text and "5678" not in response.text
        assert response.getheader("Set-Cookie") is None
    # no hint whether the number exists: the same page apart from the style nonce
    strip = lambda r: r.text.split("<style", 1)[0] + r.text.split("</style>", 1)[1]  # noqa: E731
    assert strip(known) == strip(unknown)
    lines = running.log_lines()
    assert len(lines) == 5 and all(line["query"] == "refused" and line["patient_ids"] == [] for line in lines)


@pytest.mark.parametrize("header", ["X-CRM-Token", "Authorization"])
def test_the_token_in_a_header_shows_the_card(running, index, header):
    value = f"Bearer {TOKEN}" if header == "Authorization" else TOKEN
    response = running.get(f"/card?phone={MINJI_PHONE.replace('-', '')}", headers={header: value})
    assert response.status == 200
    check_headers(response)
    assert html.escape(expected_first_line(index)) in response.text
    assert "카드 색인 2026-10-31 기준 (" in response.text and "일 전)" in response.text


def test_the_token_in_the_url_is_swapped_for_a_cookie(running, index):
    first = running.get(f"/card?phone=01012345678&lang=en&token={TOKEN}")
    assert first.status == 303
    check_headers(first)
    location = first.getheader("Location")
    assert location == "/card?phone=01012345678&lang=en"  # the token is out of the address bar and history
    cookie = first.getheader("Set-Cookie")
    assert cookie.startswith(f"crm_analysis_token={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "김민지" not in first.text
    card = running.get(location, headers={"Cookie": "other=1; " + cookie.split(";")[0]})
    assert card.status == 200
    check_headers(card)
    assert html.escape(expected_first_line(index, "en")) in card.text
    assert "Card index as of 2026-10-31" in card.text
    # the redirect never leaves this server, whatever the path asked
    assert running.get(f"//evil.example/x?token={TOKEN}").getheader("Location") == "/"
    assert [line["query"] for line in running.log_lines()] == ["phone"]  # the redirect itself shows nobody


# --- headers, escaping, pages
def test_every_response_carries_the_headers(running):
    responses = [
        (200, running.authorised("/")),
        (303, running.get(f"/?token={TOKEN}")),
        (400, running.authorised("/card?phone=12-34")),
        (403, running.get("/card?phone=01012345678")),
        (404, running.authorised("/nothing-here")),
        (404, running.get("/favicon.ico")),  # asked by browsers on their own: neither refused nor logged
        (501, running.authorised("/card", method="POST")),
    ]
    for status, response in responses:
        assert response.status == status
        check_headers(response)
    assert responses[0][1].text.count('<form method="get" action="/card"') == 1


def test_hostile_names_are_text_not_markup(running):
    response = running.authorised(f"/card?phone={MINJI_PHONE}")
    assert response.status == 200
    assert "<script" not in response.text.lower()
    assert html.escape(SCRIPT_NAME) in response.text
    assert "이 번호의 환자 2명" in response.text
    formula = running.authorised(f"/card?phone={FORMULA_PHONE}")
    assert html.escape(FORMULA_NAME) in formula.text and FORMULA_NAME not in formula.text  # quotes escaped
    unencoded_plus = running.authorised("/card?phone=+821012345678")  # as phone software writes it
    assert unencoded_plus.status == 200 and "김민지" in unencoded_plus.text
    by_id = running.authorised("/card?patient_id=P003&lang=en")
    assert by_id.status == 200 and html.escape(FORMULA_NAME) in by_id.text


def test_unknown_and_invalid_numbers(running):
    unknown = running.authorised(f"/card?phone={UNKNOWN_PHONE}")
    assert unknown.status == 200 and "등록된 환자가 없습니다" in unknown.text
    invalid = running.authorised("/card?phone=12-34")
    assert invalid.status == 400 and "전화번호 형식이 올바르지 않습니다" in invalid.text
    assert running.authorised("/card").status == 400
    assert running.authorised("/card?phone=01012345678&patient_id=P001").status == 400
    assert running.authorised("/card?patient_id=P999").status == 200
    english = running.authorised(f"/card?phone={UNKNOWN_PHONE}&lang=en")
    assert "No patient is registered with this number" in english.text and '<html lang="en">' in english.text


def test_the_access_log_has_kinds_and_ids_never_the_number(running):
    running.authorised(f"/card?phone={MINJI_PHONE}")
    running.authorised(f"/card?phone=+82 10-2222-3333".replace(" ", "%20"))
    running.authorised(f"/card?phone={UNKNOWN_PHONE}")
    running.authorised("/card?phone=12-34")
    running.authorised("/card?patient_id=P003")
    running.get(f"/card?phone={MINJI_PHONE}")
    lines = running.log_lines()
    assert [(line["query"], line["patient_ids"]) for line in lines] == [
        ("phone", ["P001", "P002"]), ("phone", ["P003"]), ("phone", []), ("phone", []), ("patient_id", ["P003"]),
        ("refused", [])]
    assert all(line["as_of"] == "2026-10-31" for line in lines[:5])
    raw = running.log.read_text(encoding="utf-8")
    for number in (MINJI_PHONE, FORMULA_PHONE, UNKNOWN_PHONE):
        digits = number.replace("-", "")
        assert number not in raw and digits not in raw and digits[1:] not in raw and digits[-8:] not in raw
    assert TOKEN not in raw
    assert stat.S_IMODE(os.stat(running.log).st_mode) == 0o600


def test_an_unwritable_log_shows_no_card(index, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    run = Running(index, blocked, TOKEN)  # a folder, not a file: every write fails
    try:
        response = run.authorised(f"/card?phone={MINJI_PHONE}")
    finally:
        run.stop()
    assert response.status == 500 and "김민지" not in response.text
    check_headers(response)


# --- the index file
def test_a_replaced_index_is_served_and_a_missing_one_is_said(running, index):
    assert "김민지" in running.authorised(f"/card?phone={MINJI_PHONE}").text
    write_index(index, name="박서연", as_of="2026-11-03")  # the daily run replaces the file atomically
    response = running.authorised(f"/card?phone={MINJI_PHONE}")
    assert "박서연" in response.text and "김민지" not in response.text
    assert "카드 색인 2026-11-03 기준" in response.text
    index.unlink()
    gone = running.authorised(f"/card?phone={MINJI_PHONE}")
    assert gone.status == 503 and "카드 색인을 열 수 없습니다" in gone.text
    check_headers(gone)


def test_an_outreach_folder_serves_its_newest_index(tmp_path):
    outreach = tmp_path / "outreach"
    (outreach / "2026-10").mkdir(parents=True)
    write_index(outreach / "2026-10" / "cards.sqlite")
    run = Running(outreach, tmp_path / "access.log", TOKEN)
    run.server.rescan_seconds = 0  # look again on every request
    try:
        assert "김민지" in run.authorised(f"/card?phone={MINJI_PHONE}").text
        (outreach / "daily" / "2026-11-03").mkdir(parents=True)
        write_index(outreach / "daily" / "2026-11-03" / "cards.sqlite", name="박서연", as_of="2026-11-03")
        response = run.authorised(f"/card?phone={MINJI_PHONE}")
    finally:
        run.stop()
    assert "박서연" in response.text and "카드 색인 2026-11-03 기준" in response.text


@pytest.mark.xdist_group("serve_browser")  # not beside the headless browser starting on the other worker
def test_p99_latency(running):
    target = f"/card?phone={MINJI_PHONE}"

    def p99_ms() -> float:
        took = []
        for _ in range(200):
            started = time.perf_counter()
            assert running.authorised(target).status == 200
            took.append(time.perf_counter() - started)
        took.sort()
        print(f"served card: p50 {1000 * took[100]:.1f} ms, p99 {1000 * took[197]:.1f} ms over 200 requests")
        return 1000 * took[197]

    # the target is 100 ms on the 20,000-patient demo; loose here, and a second round when the first met a
    # burst of load on this shared machine (a slow server is slow in both)
    first = p99_ms()
    assert first < 250 or p99_ms() < 250


# --- token file, host, command line
def test_the_token_file(tmp_path, monkeypatch):
    from crm_analysis.profile.serve import TOKEN_ENV_VAR, load_or_create_token

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(TOKEN_ENV_VAR, raising=False)
    token, path, created = load_or_create_token()
    assert created and path == tmp_path / "home" / ".crm_analysis" / "serve_token"
    assert len(token) >= 43 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token() == (token, path, False)
    monkeypatch.setenv(TOKEN_ENV_VAR, str(tmp_path / "elsewhere"))
    other, where, _ = load_or_create_token()
    assert where == tmp_path / "elsewhere" and other != token
    os.chmod(where, 0o644)
    with pytest.raises(ValueError, match="can be read by other users.*delete the file"):
        load_or_create_token()
    (tmp_path / "empty").write_text("\n")
    os.chmod(tmp_path / "empty", 0o600)
    with pytest.raises(ValueError, match="holds no usable token"):
        load_or_create_token(tmp_path / "empty")


@pytest.mark.parametrize("argv, message", [
    (["--host", "0.0.0.0"], "not a loopback address"),
    (["--host", "192.168.0.10"], "not a loopback address"),
    (["--index-missing"], "cards.sqlite"),
])
def test_bad_input_exits_2_in_one_line(index, tmp_path, capsys, argv, message):
    from crm_analysis.cli import main

    where = str(tmp_path / "missing" / "cards.sqlite") if argv == ["--index-missing"] else str(index)
    extra = [] if argv == ["--index-missing"] else argv
    code = main(["serve", "--index", where, "--token-file", str(tmp_path / "token"), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_the_command_serves_until_interrupted(index, tmp_path):
    import signal
    import subprocess
    import sys

    cli = Path(sys.executable).with_name("crm-analysis")
    env = {**os.environ, "CRM_ANALYSIS_SERVE_TOKEN_FILE": str(tmp_path / "token")}
    proc = subprocess.Popen([str(cli), "serve", "--index", str(index), "--port", "0", "--access-log",
                             str(tmp_path / "access.log")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        url = next(line.strip() for line in proc.stdout if "?token=" in line)
        token = (tmp_path / "token").read_text().strip()
        assert url.endswith(f"/?token={token}") and url.startswith("http://127.0.0.1:")
        host, port = url.split("/")[2].split(":")
        con = http.client.HTTPConnection(host, int(port), timeout=10)
        con.request("GET", "/card?patient_id=P001", headers={"Authorization": f"Bearer {token}"})
        response = con.getresponse()
        assert response.status == 200 and "김민지" in response.read().decode("utf-8")
        con.close()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "P001" not in err  # console lines: method, path, status only
    assert "/card 200" in err
