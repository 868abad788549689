"""The risk reasons a receptionist reads: hand-made rows, one per wording, in Korean and English."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analysis.noshow import reason_texts

ROWS = [  # feature, column, value, Korean, English
    ("lead", "lead_days", 0, "당일 예약", "booked the same day"),
    ("lead", "lead_days", 1, "예약 후 1일 뒤 진료", "booked 1 day ahead"),
    ("lead", "lead_days", 45, "예약 후 45일 뒤 진료", "booked 45 days ahead"),
    ("prior_no_shows", "prior_no_shows", 0, "이전 노쇼 없음", "no earlier no-shows"),
    ("prior_no_shows", "prior_no_shows", 1, "이전 노쇼 1회", "1 earlier no-show"),
    ("prior_no_shows", "prior_no_shows", 12, "이전 노쇼 12회", "12 earlier no-shows"),
    ("prior_cancellations", "prior_cancellations", 0, "이전 예약 취소 이력 없음", "never cancelled before"),
    ("prior_cancellations", "prior_cancellations", 3, "이전 예약 취소 3회", "3 earlier cancellations"),
    ("age", "age", 34.0, "34세 환자", "patient aged 34"),
    ("age", "age", np.nan, "나이 정보 없음", "age unknown"),
    ("weekday", "weekday", "Fri", "금요일 진료", "appointment on Friday"),
    ("hour", "hour_band", "late_afternoon", "늦은 오후 진료", "late afternoon appointment"),
    ("department", "department", "피부과", "피부과 진료", "Dermatology appointment"),
    ("department", "department", "이비인후과", "이비인후과 진료", "ENT appointment"),
    # a department departments.yaml does not list is shown as the clinic wrote it
    ("department", "department", "통증클리닉", "통증클리닉 진료", "통증클리닉 appointment"),
    ("department", "department", "unknown", "진료과 미상", "department unknown"),
    ("first_visit", "first_visit", 1.0, "첫 방문", "first visit"),
    ("reminder", "reminder_plan", "none", "알림 발송 예정 없음", "no reminder planned"),
    ("reminder", "reminder_plan", "3d+1d+2h", "알림 예정: 3일 전·1일 전·2시간 전",
     "reminders planned: 3 days before, 1 day before, 2 hours before"),
    ("reminder", "reminder_plan", "pilot", "알림 시범 운영 기간 예약", "booked in the reminder pilot month"),
    ("reminder", "reminder_plan", "from 2025-09-01", "2025-09-01부터의 알림 일정", "reminder schedule from 2025-09-01"),
    (None, "lead_days", 3, "평균보다 높은 위험 요인 없음", "no risk factor above average"),
]


@pytest.mark.parametrize("lang, position", [("ko", 3), ("en", 4)])
def test_each_reason_reads_as_written(lang, position):
    columns = {"lead_days": 5, "prior_no_shows": 0, "prior_cancellations": 0, "age": 40.0, "weekday": "Mon",
               "hour_band": "morning", "department": "내과", "first_visit": 0.0, "reminder_plan": "none"}
    table = pd.DataFrame([columns] * len(ROWS))
    for i, (_, column, value, *_) in enumerate(ROWS):
        table.loc[i, column] = value
    table["department"] = table["department"].astype("category")
    got = reason_texts(table, pd.Series([r[0] for r in ROWS], dtype=object), lang)
    assert got.tolist() == [r[position] for r in ROWS]
