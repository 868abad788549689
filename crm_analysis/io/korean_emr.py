"""Write contract tables the way a typical Korean EMR exports them.

The files are CP949 CSV (what Korean Excel saves by default) with Korean
headers, the clinic's own codes (남/여, 외래/입원/검진, 내원/노쇼/취소 ...),
``YYYYMMDD`` days, ``YYYY.MM.DD HH:MM`` moments, amounts with thousands
separators and phone numbers without dashes. ``data/mappings/korean_emr_example.yaml``
maps such an export back onto the contract: use the pair to try mapping files,
and as a template for a real clinic's export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from crm_analysis.cells import neutralise_formulas
from crm_analysis.io.writing import atomic_write

__all__ = ["write_korean_emr_export", "EMR_FILES", "EMR_COLUMNS", "EMR_CODES"]

#: Export file name (without .csv) per contract table.
EMR_FILES = {"patients": "환자정보", "visits": "내원내역", "appointments": "예약내역"}

#: Korean header per contract column, per table.
EMR_COLUMNS = {
    "patients": {
        "patient_id": "환자번호", "name": "성명", "sex": "성별", "birth_date": "생년월일", "phone": "휴대폰",
        "email": "이메일", "region": "주소지", "first_visit_date": "초진일자", "referral_source": "내원경로",
        "referred_by": "소개자번호", "guardian_id": "보호자번호", "sms_consent": "문자수신동의",
        "sms_consent_date": "문자동의일", "kakao_consent": "카톡수신동의", "kakao_consent_date": "카톡동의일",
        "sms_opt_out": "문자수신거부",
    },
    "visits": {
        "visit_id": "접수번호", "patient_id": "환자번호", "visit_date": "진료일자", "department": "진료과",
        "visit_type": "진료구분", "inpatient_days": "입원일수", "charge_insured": "급여총액",
        "charge_self_pay": "비급여총액",
    },
    "appointments": {
        "appointment_id": "예약번호", "patient_id": "환자번호", "booked_at": "접수일시", "scheduled_at": "예약일시",
        "department": "진료과", "status": "예약상태", "cancelled_at": "취소일시",
    },
}

#: The clinic's own codes per contract column (contract value: clinic code).
EMR_CODES = {
    "sex": {"M": "남", "F": "여"},
    "visit_type": {"outpatient": "외래", "inpatient": "입원", "checkup": "검진"},
    "status": {"attended": "내원", "no_show": "노쇼", "cancelled": "취소", "rescheduled": "변경", "booked": "예약"},
    "referral_source": {"word_of_mouth": "지인소개", "internet": "인터넷", "signage": "간판", "advertisement": "광고",
                        "other_clinic": "타병원의뢰", "walk_in": "직접내원", "other": "기타"},
}

_DAY, _MOMENT = "%Y%m%d", "%Y.%m.%d %H:%M"


def _export_column(values: pd.Series, column: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        fmt = _MOMENT if column.endswith("_at") else _DAY
        return values.dt.strftime(fmt)
    if column in EMR_CODES:
        return values.astype("object").map(EMR_CODES[column])
    if column == "phone":
        return values.astype("string").str.replace("-", "", regex=False)
    if column.startswith("charge_"):
        return values.map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
    if pd.api.types.is_bool_dtype(values):
        return values.map({True: "Y", False: "N"}).astype("object")
    return values


def write_korean_emr_export(tables: Mapping[str, pd.DataFrame], out_dir: str | Path,
                            encoding: str = "cp949") -> list[Path]:
    """Write patients, visits and appointments as a Korean EMR export.

    Parameters
    ----------
    tables : Mapping of str to DataFrame
        Contract tables (at least patients and visits).
    out_dir : str or Path
        Folder to write ``환자정보.csv``, ``내원내역.csv`` and ``예약내역.csv`` into.
    encoding : str
        ``cp949`` by default, as Korean Excel saves.

    Returns
    -------
    list of Path
        The files written.
    """
    written = []
    for table, file_stem in EMR_FILES.items():
        if table not in tables:
            continue
        df = tables[table]
        export = neutralise_formulas(pd.DataFrame({korean: _export_column(df[col], col)
                                                   for col, korean in EMR_COLUMNS[table].items()}))
        path = Path(out_dir) / f"{file_stem}.csv"
        text = export.to_csv(index=False, lineterminator="\r\n")
        written.append(atomic_write(path, lambda handle, text=text: handle.write(text.encode(encoding))))
    return written
