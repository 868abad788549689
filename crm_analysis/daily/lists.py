"""The daily staff files: the day's reminder sends and tomorrow's confirmation calls, with Korean headers.

Same format as the monthly staff lists (:mod:`crm_analysis.campaigns.staff_lists`): headers in Korean
whatever the report language (labels ``daily_col_*`` in ``crm_analysis/labels/daily.yaml``), channels and
message types by their Korean names, times as real date-times, the message and reason columns wrapped,
and a blank column for staff to record what happened. :func:`daily_guide` writes the folder's ``안내.txt``.
"""

from __future__ import annotations

import pandas as pd

from crm_analysis.campaigns.message_types import MESSAGE_TYPES
from crm_analysis.campaigns.staff_lists import CHANNEL_NAMES, WRAPPED_COLUMNS
from crm_analysis.i18n import label

__all__ = ["sends_list_name", "calls_list_name", "sends_table", "calls_table", "daily_guide", "WRAPPED_COLUMNS"]

#: Korean names of the message types (SMS, LMS, 알림톡, 친구톡, 이메일), as on the monthly lists.
_TYPE_NAMES = {code: names[0] for code, names in MESSAGE_TYPES.items()}
_CONFIRMATION = {"confirmed": "daily_confirmed", "cancel_requested": "daily_cancel_requested",
                 "unconfirmed": "daily_unconfirmed"}


def _col(key: str) -> str:
    return label(f"daily_col_{key}", "ko")


def sends_list_name(day: pd.Timestamp) -> str:
    """``예약알림_발송_YYYY-MM-DD``."""
    return f"{label('daily_sends_list', 'ko')}_{day:%Y-%m-%d}"


def calls_list_name(day: pd.Timestamp) -> str:
    """``예약확인_전화_YYYY-MM-DD`` (`day`: the appointments' day, the day after the run's)."""
    return f"{label('daily_calls_list', 'ko')}_{day:%Y-%m-%d}"


def _names(patients: pd.DataFrame, ids: pd.Series) -> pd.Series:
    name = patients["name"].astype(object) if "name" in patients else pd.Series("", index=patients.index)
    by_id = pd.Series(name.fillna("").to_numpy(), index=patients["patient_id"].astype(str).to_numpy())
    by_id = by_id[~by_id.index.duplicated()]
    return by_id.reindex(ids.astype(str)).fillna("").reset_index(drop=True)


def sends_table(sends: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """The reminder sends (:func:`~crm_analysis.daily.sends.reminder_sends`) as the staff file's table."""
    s = sends.reset_index(drop=True)
    steps = {k: label(f"daily_step_{k}", "ko") for k in ("3d", "1d", "2h")}
    return pd.DataFrame({
        _col("send_at"): pd.to_datetime(s["send_at"]),
        _col("appointment_id"): s["appointment_id"].astype(str),
        _col("step"): s["step"].map(steps).fillna(s["step"]).astype(object),
        _col("patient_id"): s["recipient_id"].astype(str),
        _col("name"): _names(patients, s["recipient_id"]),
        _col("contact"): s["contact"].astype(str),
        _col("channel"): s["channel"].map(CHANNEL_NAMES).fillna(s["channel"]).astype(object),
        _col("scheduled_at"): pd.to_datetime(s["scheduled_at"]),
        _col("message_type"): s["message_type"].map(_TYPE_NAMES).fillna(s["message_type"]).astype(object),
        _col("message"): s["message"].astype(str),
        _col("detail"): s["detail"].astype(object).fillna(""),
        _col("note"): "",
    })


def calls_table(calls: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """The confirmation calls (:func:`~crm_analysis.daily.calls.confirmation_calls`) as the staff file's table."""
    c = calls.reset_index(drop=True)
    risk = pd.to_numeric(c["no_show_risk"], errors="coerce")
    return pd.DataFrame({
        _col("rank"): c["rank"].astype("int64"),
        _col("appointment_id"): c["appointment_id"].astype(str),
        _col("patient_id"): c["patient_id"].astype(str),
        _col("name"): _names(patients, c["patient_id"]),
        _col("contact"): c["contact"].astype(str),
        _col("scheduled_at"): pd.to_datetime(c["scheduled_at"]),
        _col("department"): c["department"].astype(object).fillna(""),
        _col("confirmation"): c["confirmation"].map({k: label(v, "ko") for k, v in _CONFIRMATION.items()}),
        _col("risk"): risk.round(3).astype(object).where(risk.notna(), ""),
        _col("prior_no_shows"): c["prior_no_shows"].astype("int64"),
        _col("reason"): c["risk_reason"].astype(object).fillna(""),
        _col("call_result"): "",
    })


def daily_guide(day: pd.Timestamp, sends_name: str, n_sends: int, calls_name: str, n_calls: int, *,
                risk_source: str, replies_known: bool, dropped: pd.DataFrame | None = None) -> str:
    """The daily folder's ``안내.txt``: the extract moment, each file, its rows and what to do with it."""
    tomorrow = day + pd.Timedelta(days=1)
    lines = [f"{day:%Y-%m-%d} 일일 실행으로 만든 직원용 명단입니다.",
             f"기준 시각: {day:%Y-%m-%d} 00:00 — 그 전에 접수된 예약과 취소만 반영했습니다 "
             "(오늘 새로 잡힌 예약의 알림은 내일 명단에 들어갑니다).",
             "파일마다 엑셀(.xlsx)과 CSV(.csv)가 있습니다. 개인정보가 들어 있으니 이 폴더 밖으로 옮기거나 공유하지 마세요.", "",
             f"■ {sends_name}.xlsx — {n_sends:,}건, 발송 {day.month}월 {day.day}일",
             "  오늘 보낼 예약 알림(3일 전·1일 전·2시간 전)입니다. 수신 거부한 채널로는 보내지 않고, 08:00–21:00에만 보냅니다. "
             "예약이 취소·변경되면 그 예약의 알림은 보내지 말고 '비고' 칸에 적으세요."]
    for row in (dropped if dropped is not None else pd.DataFrame(columns=["reason", "n"])).itertuples(index=False):
        why = {"no_channel": "연락처가 없거나 모든 채널을 수신 거부", "inactive_or_unknown": "사망·이전 환자",
               "at_or_after_appointment": "발송 가능 시간이 예약 시각 이후"}.get(row.reason, row.reason)
        lines.append(f"  (보내지 않는 알림 {int(row.n):,}건: {why})")
    order = ("노쇼 예측 모형(지난달 말까지 12개월의 결과로 만든 이달의 모형)의 위험도" if risk_source == "noshow_model"
             else "노쇼 예측 모형이 없어 환자의 이전 노쇼 횟수")
    lines += ["", f"■ {calls_name}.xlsx — {n_calls:,}건, {tomorrow.month}월 {tomorrow.day}일 예약",
              f"  내일 예약 확인 전화 명단입니다. 회신으로 취소를 요청했는데 예약이 남아 있는 환자, 확인되지 않은 환자 순이며, "
              f"그 안에서는 {order}가 높은 순입니다. 통화 결과(확인·취소·부재)를 '통화 결과' 칸에 적으세요."]
    if not replies_known:
        lines.append("  예약 알림의 회신 기록(reply)이 자료에 없어 모든 예약을 '미확인'으로 표시했습니다.")
    return "\n".join(lines + [""])
