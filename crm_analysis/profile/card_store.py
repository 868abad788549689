"""Read the card index: a caller's card from ``cards.sqlite`` in milliseconds.

The monthly and daily runs write every patient's card into one SQLite file
(:mod:`crm_analysis.profile.card_index`). This module reads it back, with the
standard library only (``phonenumbers`` is loaded when a phone number is
normalised), so ``crm-analysis lookup`` and ``crm-analysis serve`` answer a
call without importing pandas:

- :class:`CardStore` opens one index read-only and finds patients by any
  spelling of a phone number (a family sharing it comes back together) or by id;
- :func:`find_index` picks the newest index of a source in an outreach folder;
- :func:`first_line`, :func:`card_sections` and :func:`card_text` render a
  record for the desk, in Korean or English.

Examples
--------
>>> with CardStore.open("outreach/2026-10/cards.sqlite") as store:     # doctest: +SKIP
...     records = store.find(phone="+82 10-1234-5678")
...     print(card_text(records, store.meta, lang="en"))
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import threading
from pathlib import Path

from crm_analysis.exceptions import CardIndexError
from crm_analysis.phones import phone_key
from crm_analysis.profile.card_index import INDEX_NAME, SCHEMA, SCHEMA_VERSION, source_identity
from crm_analysis.redaction import redact_url

__all__ = ["CardStore", "CardIndexError", "find_index", "same_source", "first_line", "card_sections", "card_text",
           "not_found_text", "BAD_PHONE_MESSAGE"]

#: What a phone number that is not a usable number gets (never repeating it).
BAD_PHONE_MESSAGE = ("the phone number given is not a valid Korean phone number; "
                     "write it like 010-1234-5678, 01012345678 or +82 10-1234-5678")

#: How much later than its folder's day an index's ``as_of`` may be: the monthly folder YYYY-MM holds the
#: month's last day, a daily folder its own day. :func:`find_index` stops reading older folders past this.
_FOLDER_SLACK = dt.timedelta(days=7)

_NA = "–"

#: Display texts, (Korean, English). Kept here rather than in the YAML labels: reading those needs PyYAML
#: and pandas, which a lookup must not wait for.
_LABELS = {
    "header": ("카드 색인 {as_of} 기준 ({made_by}, {age}일 전)", "Card index as of {as_of} ({made_by}, {age} days old)"),
    "header_no_age": ("카드 색인 {as_of} 기준 ({made_by})", "Card index as of {as_of} ({made_by})"),
    "family": ("이 번호의 환자 {n}명", "{n} patients with this number"),
    "not_found": ("해당 번호의 환자가 없습니다", "no patient found"),
    "notes": ("참고", "notes"),
    "flag_vip": ("VIP", "VIP"),
    "flag_recall": ("재내원 대상", "due for recall"),
    "flag_noshow": ("노쇼 위험 높음", "high no-show risk"),
    "sec_upcoming": ("예정된 예약", "upcoming appointments"),
    "sec_messages": ("이번 달 발송 예정 메시지", "messages planned this month"),
    "sec_children": ("자녀의 다음 예방접종", "children's next vaccinations"),
    "sec_history": ("내원·진료비", "visits and charges"),
    "sec_standing": ("고객 분석", "analytics"),
    "sec_consent": ("수신 동의·거부 (채널별)", "consent and opt-out by channel"),
    "sec_pregnancy": ("임신", "pregnancy"),
    "none": ("없음", "none"),
    "band_low": ("노쇼 위험 낮음", "low no-show risk"),
    "band_medium": ("노쇼 위험 보통", "medium no-show risk"),
    "band_high": ("노쇼 위험 높음", "high no-show risk"),
    "reply_confirmed": ("예약 확인됨", "confirmed"),
    "reply_cancel_requested": ("취소 요청", "cancellation requested"),
    "reply_unconfirmed": ("미확인", "not confirmed"),
    "child_next": ("{child} ({birth}생): {vaccines}, 권장 {due}", "{child} (born {birth}): {vaccines}, recommended {due}"),
    "child_none": ("{child} ({birth}생): 예정된 접종 없음", "{child} (born {birth}): nothing scheduled"),
    "due_from": ("{start}부터", "from {start}"),
    "who": ("환자번호 {pid} · {sex} · {age}", "patient {pid} · {sex} · {age}"),
    "age": ("{age}세", "{age} years"),
    "sex_F": ("여", "female"),
    "sex_M": ("남", "male"),
    "visits_dates": ("초진 {first} · 최근 내원 {last}", "first visit {first} · last visit {last}"),
    "visits": ("내원일수 (전체 / 최근 12개월): {all} / {recent}", "visit days (all / last 12 months): {all} / {recent}"),
    "value": ("진료비 (최근 12개월 / 누적): {recent} / {total}", "charges (last 12 months / lifetime): {recent} / {total}"),
    "no_shows": ("노쇼 이력: 지난 예약 {past}건 중 노쇼 {n}건", "no-shows: {n} in {past} past appointment(s)"),
    "segment": ("고객 세그먼트: {segment}", "segment: {segment}"),
    "vip_yes": ("VIP: 예", "VIP: yes"),
    "vip_no": ("VIP: 아니오", "VIP: no"),
    "vip_reason": ("VIP 사유: {reason}", "VIP reason: {reason}"),
    "p_return": ("재방문 확률 ({days}일 이내): {p}", "chance of returning within {days} days: {p}"),
    "elapsed": ("마지막 내원 후 {elapsed}일 (평소 간격 {usual}일)",
                "{elapsed} days since the last visit (usual interval {usual} days)"),
    "predicted": ("향후 {days}일 예상 진료비: {value}", "expected charges, next {days} days: {value}"),
    "channel_sms": ("문자(SMS)", "SMS"),
    "channel_kakao": ("카카오톡", "KakaoTalk"),
    "channel_email": ("이메일", "email"),
    "channel_night": ("야간 광고", "night-time ads"),
    "consent_valid": ("광고 수신동의 유효", "marketing consent valid"),
    "consent_none": ("광고 수신동의 없음", "no marketing consent"),
    "consent_opted_out": ("수신거부: 어떤 메시지도 보내지 마세요", "opted out: send nothing"),
    "night_yes": ("동의", "consented"),
    "night_no": ("동의 없음", "no consent"),
    "pregnancy": ("임신 {week}주 (분만예정일 {due})", "week {week} of pregnancy (due {due})"),
}

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NEWLINES = re.compile(r"\s*[\r\n]+\s*")


def _label(key: str, lang: str, **values) -> str:
    text = _LABELS[key][0 if lang == "ko" else 1]
    return text.format(**values) if values else text


def _check_lang(lang: str) -> str:
    if lang not in ("ko", "en"):
        raise ValueError(f"lang must be 'ko' or 'en', not {lang!r}")
    return lang


def _text(value) -> str:
    """A value from the index as one line of terminal text: missing as "–", control characters removed
    (a name or message must not move the cursor or change the terminal's colours)."""
    if value is None or value == "":
        return _NA
    return _CONTROL.sub("", _NEWLINES.sub(" / ", str(value))).strip() or _NA


def _day(value) -> str:
    return _text(value)[:10]


def _moment(value) -> str:
    return _text(value)[:16]


def _money(value, lang: str) -> str:
    if value is None:
        return _NA
    return f"{value:,.0f}원" if lang == "ko" else f"KRW {value:,.0f}"


def _count(value) -> str:
    return _NA if value is None else f"{int(value):,}"


def _flag(value) -> bool:
    return bool(value) if value is not None else False


# ---------------------------------------------------------------------------- reading

def _connect(path: Path) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``): a lookup can never change an index."""
    # check_same_thread=False: `serve` answers from several threads; CardStore serialises them with a lock
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)


def _read_meta(con: sqlite3.Connection) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in con.execute("SELECT key, value FROM meta")}


class CardStore:
    """One card index, open read-only.

    Open it with :meth:`open`; use it as a context manager (or call :meth:`close`).

    Attributes
    ----------
    path : Path
    meta : dict of str to str
        The index's ``meta`` table: ``schema_version``, ``as_of``, ``made_by``, ``source``, ``patients``...
    as_of : datetime.date
        The day of the data the cards describe.
    made_by : str
        Which run wrote it: ``monthly 2026-10`` or ``daily 2026-11-03``.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path, meta: dict[str, str], as_of: dt.date):
        self._con = connection
        self._lock = threading.Lock()
        self.path = path
        self.meta = meta
        self.as_of = as_of
        self.made_by = meta.get("made_by", "")

    @classmethod
    def open(cls, path) -> "CardStore":
        """Open the index at `path` read-only.

        Raises
        ------
        CardIndexError
            If the file does not exist or cannot be read, is not a card index, or was written with
            another schema version (the message names both versions).
        """
        path = Path(path).expanduser()
        try:
            if not path.is_file():
                raise CardIndexError(f"no card index at {path}: the monthly run (or crm-analysis daily) writes "
                                     f"one into its outreach folder, e.g. outreach/2026-10/{INDEX_NAME}")
            con = _connect(path)
        except (OSError, sqlite3.Error) as err:
            raise CardIndexError(f"cannot read the card index {path}: {err}") from None
        try:
            tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = [t for t in ("meta", *SCHEMA) if t not in tables]
            if missing:
                raise CardIndexError(f"{path} is not a card index: it has no {', '.join(missing)} table")
            meta = _read_meta(con)
            version = meta.get("schema_version", "")
            if version != str(SCHEMA_VERSION):
                raise CardIndexError(
                    f"the card index {path} has schema version {version or 'none'}, but this version of "
                    f"crm_analysis reads version {SCHEMA_VERSION}: the next monthly or daily run rewrites it")
            try:
                as_of = dt.date.fromisoformat(meta.get("as_of", "")[:10])
            except ValueError:
                raise CardIndexError(f"the card index {path} does not say which day its data describes "
                                     f"(meta as_of {meta.get('as_of')!r})") from None
        except sqlite3.DatabaseError as err:
            con.close()
            raise CardIndexError(f"{path} is not a card index ({err})") from None
        except CardIndexError:
            con.close()
            raise
        con.row_factory = sqlite3.Row
        return cls(con, path, meta, as_of)

    @property
    def source(self) -> str:
        """The data the index was made from (``meta["source"]``, secrets removed)."""
        return self.meta.get("source", "")

    def age_days(self, today: dt.date) -> int:
        """Days from the index's :attr:`as_of` to `today` (a date or datetime)."""
        if isinstance(today, dt.datetime):
            today = today.date()
        return (today - self.as_of).days

    def find(self, *, phone=None, patient_id=None) -> list[dict]:
        """The records of everyone with `phone`, or of `patient_id`; empty if nobody.

        Parameters
        ----------
        phone : str, optional
            Any common spelling (``010-1234-5678``, ``01012345678``, ``+82 10-1234-5678``); keyed with
            :func:`crm_analysis.phones.phone_key`, as the index was. A family sharing it comes back
            whole, in ``patient_id`` order.
        patient_id : str, optional

        Returns
        -------
        list of dict
            ``{"card": {...}, "appointments": [...], "messages": [...], "children": [...]}`` per patient:
            rows of the index's tables as dicts (columns of :data:`~crm_analysis.profile.card_index.SCHEMA`).

        Raises
        ------
        ValueError
            If neither or both are given, or `phone` is not a usable number (the message does not repeat it).
        """
        if (phone is None) == (patient_id is None):
            raise ValueError("give exactly one of phone= or patient_id=")
        with self._lock:
            if phone is not None:
                key = phone_key(phone)
                if key is None:
                    raise ValueError(BAD_PHONE_MESSAGE)
                ids = [pid for (pid,) in self._con.execute(
                    "SELECT DISTINCT patient_id FROM phones WHERE phone_key = ? ORDER BY patient_id", (key,))]
            else:
                ids = [str(patient_id)]
            return [record for pid in ids if (record := self._record(pid)) is not None]

    def _record(self, patient_id: str) -> dict | None:
        card = self._con.execute("SELECT * FROM cards WHERE patient_id = ?", (patient_id,)).fetchone()
        if card is None:
            return None

        def rows(sql: str) -> list[dict]:
            return [dict(r) for r in self._con.execute(sql, (patient_id,))]

        return {"card": dict(card),
                "appointments": rows("SELECT * FROM appointments WHERE patient_id = ? "
                                     "ORDER BY scheduled_at, appointment_id"),
                "messages": rows("SELECT * FROM messages WHERE patient_id = ? ORDER BY planned_at, list_name"),
                "children": rows("SELECT * FROM children WHERE guardian_id = ? ORDER BY birth_date, patient_id")}

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "CardStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CardStore({str(self.path)!r}, as_of={self.as_of}, made_by={self.made_by!r})"


def same_source(a, b) -> bool:
    """Whether two spellings of a source name the same data: folders and files by their resolved absolute
    path, database URLs without their secrets (:func:`crm_analysis.redaction.redact_url`)."""
    return source_identity(a) == source_identity(b)


def _folder_day(path: Path) -> dt.date | None:
    """The day an outreach folder is named for: ``YYYY-MM`` its last day, ``daily/YYYY-MM-DD`` that day."""
    name = path.parent.name
    try:
        if len(name) == 7:
            first = dt.date.fromisoformat(f"{name}-01")
            return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        return dt.date.fromisoformat(name)
    except ValueError:
        return None


def find_index(outreach_dir, *, source=None) -> Path | None:
    """The newest card index under `outreach_dir`, or None.

    Looks in the monthly folders (``YYYY-MM/``) and the daily ones (``daily/YYYY-MM-DD/``); hidden folders
    (a run still assembling) are not looked at. Newest means the latest ``as_of``, then a daily index
    before the monthly one of the same day. A file that is not a readable index is passed over; one of
    another schema version is not (:meth:`CardStore.open` then says so).

    Parameters
    ----------
    outreach_dir : str or Path
    source : str or Path, optional
        Only an index made from this source: a folder or file compared as a resolved absolute path, a
        database URL without its secrets (:func:`crm_analysis.redaction.redact_url`).

    Returns
    -------
    Path or None
    """
    root = Path(outreach_dir).expanduser()
    month, day = "[0-9]" * 4 + "-" + "[0-9]" * 2, "[0-9]" * 4 + "-" + "[0-9]" * 2 + "-" + "[0-9]" * 2
    found = [*root.glob(f"{month}/{INDEX_NAME}"), *root.glob(f"daily/{day}/{INDEX_NAME}")]
    dated = sorted(((d, p) for p in found if (d := _folder_day(p)) is not None), reverse=True)
    wanted = None if source is None else source_identity(source)
    best, best_key = None, None
    for folder_day, path in dated:
        if best_key is not None and folder_day + _FOLDER_SLACK < best_key[0]:
            break  # every folder from here on holds older data than the best found
        try:
            con = _connect(path)
            try:
                meta = _read_meta(con)
            finally:
                con.close()
            as_of = dt.date.fromisoformat(meta.get("as_of", "")[:10])
        except (OSError, sqlite3.Error, ValueError):
            continue
        if wanted is not None and source_identity(meta.get("source", "")) != wanted:
            continue
        made_by = meta.get("made_by", "")
        key = (as_of, made_by.startswith("daily"), made_by, str(path))
        if best_key is None or key > best_key:
            best, best_key = path, key
    return best


# ---------------------------------------------------------------------------- rendering

def not_found_text(lang: str = "ko") -> str:
    """What the desk is told when nobody has the number: "해당 번호의 환자가 없습니다" / "no patient found"."""
    return _label("not_found", _check_lang(lang))


def first_line(record: dict, lang: str = "ko") -> str:
    """The card's first line: who it is (name, birth date, the phone's last digits), flags, what to do.

    Examples
    --------
    >>> first_line({"card": {"name": "김민지", "birth_date": "1988-03-14", "phone_tail": "5678", "vip": 1,
    ...                      "recall_candidate": 1, "action_ko": "재내원 안내 대상: 마지막 내원 142일 전, 예약 권유"}})
    '김민지 · 1988-03-14 · ☎ …5678 · [VIP] [재내원 대상] — 재내원 안내 대상: 마지막 내원 142일 전, 예약 권유'
    """
    lang = _check_lang(lang)
    card = record["card"]
    tail = _text(card.get("phone_tail"))
    parts = [_text(card.get("name")), _day(card.get("birth_date")), f"☎ …{tail}" if tail != _NA else f"☎ {_NA}"]
    flags = [f"[{_label(key, lang)}]" for key, on in (
        ("flag_vip", card.get("vip")),
        # on this month's recall list: "overdue" alone (past the usual interval) is most patients
        ("flag_recall", card.get("recall_candidate")),
        ("flag_noshow", card.get("high_noshow_risk"))) if _flag(on)]
    if flags:
        parts.append(" ".join(flags))
    line = " · ".join(parts)
    action = card.get(f"action_{lang}")
    return f"{line} — {_text(action)}" if action else line


def _appointment_line(a: dict, lang: str) -> str:
    line = f"{_moment(a.get('scheduled_at'))} {_text(a.get(f'department_{lang}'))}"
    band, risk = a.get("risk_band"), a.get("noshow_risk")
    risk_parts = ([_label(f"band_{band}", lang)] if f"band_{band}" in _LABELS else []) + (
        [f"{risk:.0%}"] if risk is not None else [])
    if risk_parts:
        line += " · " + " ".join(risk_parts)
        reason = a.get(f"risk_reason_{lang}")
        if reason:
            line += f" ({_text(reason)})"
    reply = a.get("reply")
    if reply:
        key = f"reply_{reply}"
        line += " · " + (_label(key, lang) if key in _LABELS else _text(reply))
    return line


def _message_line(m: dict, lang: str) -> str:
    channel = m.get("channel")
    key = f"channel_{channel}"
    channel = _label(key, lang) if key in _LABELS else _text(channel)
    return f"{_text(m.get('list_name'))} · {_moment(m.get('planned_at'))} · {channel} · {_text(m.get('text'))}"


def _child_line(c: dict, lang: str) -> str:
    child, birth = _text(c.get("name")), _day(c.get("birth_date"))
    vaccines = c.get(f"vaccines_{lang}")
    if not vaccines:
        return _label("child_none", lang, child=child, birth=birth)
    start, end = c.get("due_from"), c.get("due_to")
    due = (f"{_day(start)}–{_day(end)}" if start and end else
           _label("due_from", lang, start=_day(start)) if start else _NA)
    return _label("child_next", lang, child=child, birth=birth, vaccines=_text(vaccines), due=due)


def card_sections(record: dict, lang: str = "ko") -> list[tuple[str, list[str]]]:
    """The rest of the card after :func:`first_line`: ``[(title, [line, ...]), ...]``, plain text.

    In order: upcoming appointments (with the no-show risk band and reason), the messages planned this
    month, the children's next vaccinations (when there are children), visits and charges, the analytics
    (segment, VIP and why, chance of returning, expected charges), consent per channel, and the week of
    an ongoing pregnancy. Missing values show as "–".
    """
    lang = _check_lang(lang)
    c = record["card"]
    none = [_label("none", lang)]
    out = [(_label("sec_upcoming", lang), [_appointment_line(a, lang) for a in record.get("appointments", [])] or none),
           (_label("sec_messages", lang), [_message_line(m, lang) for m in record.get("messages", [])] or none)]
    if record.get("children"):
        out.append((_label("sec_children", lang), [_child_line(k, lang) for k in record["children"]]))

    sex = _label(f"sex_{c.get('sex')}", lang) if c.get("sex") in ("F", "M") else _NA
    age = _label("age", lang, age=c["age"]) if c.get("age") is not None else _NA
    last = _day(c.get("last_visit"))
    department = c.get(f"last_department_{lang}")
    if last != _NA and department:
        last += f" ({_text(department)})"
    out.append((_label("sec_history", lang), [
        _label("who", lang, pid=_text(c.get("patient_id")), sex=sex, age=age),
        _label("visits_dates", lang, first=_day(c.get("first_visit")), last=last),
        _label("visits", lang, all=_count(c.get("visit_days")), recent=_count(c.get("visits_12m"))),
        _label("value", lang, recent=_money(c.get("value_12m"), lang), total=_money(c.get("value_lifetime"), lang)),
        _label("no_shows", lang, n=_count(c.get("no_shows")), past=_count(c.get("past_appointments"))),
    ]))

    standing = [_label("segment", lang, segment=_text(c.get(f"segment_{lang}")))]
    standing.append(_label("vip_yes" if _flag(c.get("vip")) else "vip_no", lang) if c.get("vip") is not None
                    else f"VIP: {_NA}")
    if c.get(f"vip_reason_{lang}"):
        standing.append(_label("vip_reason", lang, reason=_text(c[f"vip_reason_{lang}"])))
    p = c.get("p_return")
    standing.append(_label("p_return", lang, days=_count(c.get("return_horizon_days")),
                           p=_NA if p is None else f"{p:.0%}"))
    if c.get("elapsed_days") is not None:
        usual = c.get("usual_interval_days")
        standing.append(_label("elapsed", lang, elapsed=_count(c["elapsed_days"]),
                               usual=_NA if usual is None else f"{usual:,.0f}"))
    standing.append(_label("predicted", lang, days=_count(c.get("predicted_horizon_days")),
                           value=_money(c.get("predicted_value"), lang)))
    out.append((_label("sec_standing", lang), standing))

    consent = []
    for channel in ("sms", "kakao", "email"):
        state = c.get(channel)
        key = f"consent_{state}"
        consent.append(f"{_label(f'channel_{channel}', lang)}: "
                       f"{_label(key, lang) if key in _LABELS else _text(state)}")
    night = c.get("night_consent")
    consent.append(f"{_label('channel_night', lang)}: "
                   f"{_NA if night is None else _label('night_yes' if night else 'night_no', lang)}")
    out.append((_label("sec_consent", lang), consent))

    if c.get("pregnancy_week") is not None:
        out.append((_label("sec_pregnancy", lang),
                    [_label("pregnancy", lang, week=c["pregnancy_week"], due=_day(c.get("due_date")))]))
    return out


def card_text(records: list[dict], meta: dict, lang: str = "ko", today: dt.date | None = None) -> str:
    """The cards as terminal text: a header saying which index and how old, then each record.

    Parameters
    ----------
    records : list of dict
        :meth:`CardStore.find`'s result.
    meta : dict
        The index's meta (:attr:`CardStore.meta`).
    lang : {"ko", "en"}
    today : datetime.date, optional
        For the index's age (default: today).
    """
    lang = _check_lang(lang)
    as_of = meta.get("as_of", "")[:10] or _NA
    made_by = _text(meta.get("made_by"))
    try:
        age = ((today or dt.date.today()) - dt.date.fromisoformat(as_of)).days
        lines = [_label("header", lang, as_of=as_of, made_by=made_by, age=age)]
    except ValueError:
        lines = [_label("header_no_age", lang, as_of=as_of, made_by=made_by)]
    if meta.get(f"notes_{lang}"):
        lines.append(f"{_label('notes', lang)}: {_text(meta[f'notes_{lang}'])}")
    if len(records) > 1:
        lines.append(_label("family", lang, n=len(records)))
    if not records:
        lines.append(not_found_text(lang))
    for record in records:
        lines += ["", first_line(record, lang)]
        for title, rows in card_sections(record, lang):
            lines.append(f"[{title}]")
            lines += [f"  {row}" for row in rows]
    return "\n".join(lines)
