"""Staff lists: one spreadsheet per campaign that the front desk can act on without asking anyone.

:func:`staff_lists` turns a :class:`~crm_analysis.campaigns.planner.CampaignPlan`
into one list per campaign, named in Korean for the month planned
(``VIP행사초대_2026-11``, ``생일축하_…``, ``재내원안내_…``, ``임신주수안내_…``,
``예방접종안내_…``, ``예약알림_…``) plus ``수신동의확인안내_…``, the consent
reconfirmation notices the law requires every two years. Each list holds
exactly the plan's messages, so everything the planner enforces holds row by
row: consent for that channel and its two-year limit, opt-outs, the night
window, the caps, one message per household and day, never a holdout patient,
and children only through their guardian.

Headers are Korean whatever the report's language (the lists are for the
clinic's staff): 환자번호, 이름, 연락처, for vaccinations the child's number and
name, 채널, 발송일시 (a date-time, so Excel sorts and filters it), 메시지 유형
(SMS, LMS, 알림톡, 친구톡, 이메일), 메시지, 선정 사유, and a blank column for
staff to record the outcome (for the VIP event, 참석 여부). The messages
themselves are in each patient's language.

:func:`folder_guide` writes the ``안내.txt`` that explains the folder: each
file, its row count, what to do with it and by when.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from crm_analysis.campaigns.message_types import MESSAGE_TYPES
from crm_analysis.campaigns.planner import CampaignPlan

__all__ = ["StaffList", "STAFF_FILES", "RECONFIRMATION_LIST", "CHANNEL_NAMES", "staff_lists", "folder_guide", "system_guide",
           "OUTCOME_COLUMN", "WRAPPED_COLUMNS"]

#: Per audience: the list's Korean name, its outcome column and what staff do with it.
STAFF_FILES: dict[str, tuple[str, str, str]] = {
    "vip_event": ("VIP행사초대", "참석 여부",
                  "VIP 행사 초대 메시지입니다. 발송 후 회신이나 전화로 참석 여부를 받으면 '참석 여부' 칸에 적으세요. "
                  "명단에 없는 환자는 초대하지 마세요 (효과 측정용 대조군이 빠져 있습니다)."),
    "vip_birthday": ("생일축하", "비고", "VIP 생일 축하 메시지입니다. 발송 결과(반송 등)만 '비고' 칸에 적으세요."),
    "recall": ("재내원안내", "연락 결과",
               "오래 오지 않은 환자에게 보내는 재내원 안내입니다. 전화로 안내할 때도 이 명단만 쓰고, 결과(예약·거절·부재)를 "
               "'연락 결과' 칸에 적으세요. 명단에 없는 환자(대조군, 수신 미동의, 14세 미만)에게는 연락하지 마세요."),
    "pregnancy_week": ("임신주수안내", "비고", "임신 주수별 안내 메시지입니다. 출산·유산 등으로 중단할 분은 '비고' 칸에 적으세요."),
    "infant_vaccination": ("예방접종안내", "접종 예약 여부",
                           "자녀 예방접종 안내로, 보호자에게 보냅니다. 예약이 잡히면 '접종 예약 여부' 칸에 적으세요."),
    "appointment_reminder": ("예약알림", "비고",
                             "예약 알림(3일 전·1일 전·2시간 전)입니다. 예약이 바뀌거나 취소되면 '비고' 칸에 적고 다음 알림을 빼세요."),
}
#: Korean names of the message types.
_TYPE_NAMES = {code: names[0] for code, names in MESSAGE_TYPES.items()}
#: The consent reconfirmation notices' list name.
RECONFIRMATION_LIST = "수신동의확인안내"
_RECONFIRMATION = (RECONFIRMATION_LIST, "비고",
                   "광고 수신에 동의한 지 2년이 되는 환자에게 동의 사실을 알리는 법정 안내(정보통신망법 제50조 제8항)입니다. "
                   "보내지 않으면 그 동의를 더 쓸 수 없습니다. 수신 거부 회신이 오면 '비고' 칸에 적고 환자 기록에 반영하세요.")
#: Channel names on the lists.
CHANNEL_NAMES = {"kakao": "카카오톡", "sms": "문자", "email": "이메일"}
#: The blank column for the outcome, per list (see :data:`STAFF_FILES`).
OUTCOME_COLUMN = {name: outcome for name, outcome, _ in STAFF_FILES.values()}
#: Columns whose text wraps in the XLSX.
WRAPPED_COLUMNS = ("메시지", "선정 사유")


@dataclass(frozen=True)
class StaffList:
    """One staff list: its file name (without extension), the table, what staff do with it, and the audience
    it serves (a key of :data:`STAFF_FILES`, or ``"reconfirmation"``)."""

    name: str
    frame: pd.DataFrame = field(repr=False)
    todo: str = ""
    audience: str = ""

    @property
    def send_days(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The first and last send day, or None for an empty list."""
        days = self.frame["발송일시"] if "발송일시" in self.frame else pd.Series(dtype="datetime64[ns]")
        return None if days.empty else (days.min().normalize(), days.max().normalize())


def _names(patients: pd.DataFrame) -> pd.Series:
    ids = patients["patient_id"].astype(str)
    name = patients["name"].astype(object) if "name" in patients else pd.Series("", index=patients.index)
    return pd.Series(name.fillna("").to_numpy(), index=ids.to_numpy())


def _table(sends: pd.DataFrame, names: pd.Series, outcome: str, child: bool) -> pd.DataFrame:
    sends = sends.sort_values(["send_at", "recipient_id", "patient_id"], kind="stable").reset_index(drop=True)
    recipient = sends["recipient_id"].astype(str)
    out = {"환자번호": recipient, "이름": names.reindex(recipient).fillna("").to_numpy(),
           "연락처": sends["contact"].astype(str)}
    if child:
        kid = sends["patient_id"].astype(str)
        out.update({"아이 환자번호": kid, "아이 이름": names.reindex(kid).fillna("").to_numpy()})
    out.update({"채널": sends["channel"].map(CHANNEL_NAMES).fillna(sends["channel"]).astype(object),
                "발송일시": pd.to_datetime(sends["send_at"]),
                "메시지 유형": sends["message_type"].map(_TYPE_NAMES).fillna(sends["message_type"]).astype(object),
                "메시지": sends["message"].astype(str), "선정 사유": sends["detail"].astype(object).fillna(""),
                outcome: ""})
    return pd.DataFrame(out)


def staff_lists(plan: CampaignPlan, patients: pd.DataFrame, config=None) -> list[StaffList]:
    """The plan's staff lists, one per campaign planned (even with no message), plus the consent
    reconfirmation notices.

    Parameters
    ----------
    plan : CampaignPlan
    patients : DataFrame
        The patients table of the clinic planned (names of recipients and children).
    config : path, mapping or CampaignConfig, optional
        The campaign definitions the plan was made with (default: the shipped ones). A campaign the plan
        skipped (:attr:`CampaignPlan.skipped`) gets no list.

    Returns
    -------
    list of StaffList
        In the order of :data:`STAFF_FILES`, then the reconfirmation notices; names end with the planned month
        (``_2026-11``). Two campaigns of one audience get their campaign id in the name.
    """
    from crm_analysis.campaigns.definitions import load_campaigns

    month = f"{plan.start:%Y-%m}"
    names = _names(patients)
    by_campaign = {c.id: c.audience for c in load_campaigns(config).campaigns if c.id not in plan.skipped}
    counts = pd.Series(list(by_campaign.values()), dtype=object).value_counts()
    order = {a: i for i, a in enumerate(STAFF_FILES)}
    lists = []
    for cid, audience in sorted(by_campaign.items(), key=lambda kv: (order.get(kv[1], len(order)), kv[0])):
        stem, outcome, todo = STAFF_FILES.get(audience, (cid, "비고", "캠페인 메시지입니다."))
        name = f"{stem}_{month}" if counts.get(audience, 0) == 1 else f"{stem}_{cid}_{month}"
        sends = plan.sends.loc[plan.sends["campaign_id"] == cid]
        lists.append(StaffList(name, _table(sends, names, outcome, audience == "infant_vaccination"), todo, audience))
    notices = plan.reconfirmation
    stem, outcome, todo = _RECONFIRMATION
    if notices is not None and "patient_id" in notices:
        table = _table(notices.assign(recipient_id=notices["patient_id"],
                                      detail="동의일 " + pd.to_datetime(notices["consent_date"]).dt.strftime("%Y-%m-%d")
                                      + " (" + notices["channels"].astype(str) + "), 2년 되는 날 "
                                      + pd.to_datetime(notices["lapses_on"]).dt.strftime("%Y-%m-%d")),
                       names, outcome, False)
        lists.append(StaffList(f"{stem}_{month}", table, todo, "reconfirmation"))
    return lists


def _day(day: pd.Timestamp) -> str:
    return f"{day.month}월 {day.day}일"


def folder_guide(lists: list[StaffList], month: str, *, system_folder: str = "system",
                 others: dict[str, int] | None = None, skipped: dict[str, str] | None = None) -> str:
    """The folder's ``안내.txt``: each list, its rows, what to do and by when.

    Parameters
    ----------
    lists : list of StaffList
    month : str
        The month the run covers (``YYYY-MM``); the lists plan the month after it.
    system_folder : str
        The subfolder holding the system files.
    others : dict, optional
        Other lists in the folder (name -> rows), e.g. registered producers'.
    skipped : dict, optional
        Lists the data could not support: name -> reason.
    """
    lines = [f"{month} 월간 실행으로 만든 직원용 명단입니다 (다음 달 발송 계획).",
             "파일마다 엑셀(.xlsx)과 CSV(.csv)가 있습니다. 개인정보가 들어 있으니 이 폴더 밖으로 옮기거나 공유하지 마세요.",
             "메시지 발송은 예약된 시각에 시스템이 합니다. 직원은 회신·전화 결과를 마지막 칸에 적습니다.", ""]
    for staff in lists:
        days = staff.send_days
        when = "발송 없음" if days is None else "발송 " + (
            f"{_day(days[0])}" if days[0] == days[1] else f"{_day(days[0])} ~ {_day(days[1])}")
        lines += [f"■ {staff.name}.xlsx — {len(staff.frame):,}건, {when}", f"  {staff.todo}", ""]
    for name, rows in (others or {}).items():
        lines += [f"■ {name}.xlsx — {rows:,}행", ""]
    for name, reason in (skipped or {}).items():
        lines += [f"■ {name}: 이번 달에는 만들지 못했습니다 — {reason}", ""]
    lines += [f"{system_folder}/ 폴더는 효과 측정과 발송 제외 관리를 위한 시스템 파일입니다. 직원이 쓸 명단이 아닙니다.", ""]
    return "\n".join(lines)


def system_guide() -> str:
    """The ``system/안내.txt``: what the holdout and suppression files are for."""
    return "\n".join([
        "시스템 파일입니다. 직원이 연락할 명단이 아닙니다.",
        "",
        "■ campaign_holdout — 광고 캠페인(VIP 행사, 생일, 재내원)의 무작위 배정입니다. arm이 holdout인 환자는 효과를 재기 위한 "
        "대조군이라 일부러 연락하지 않습니다. 이 파일로 연락하면 효과 측정이 깨집니다. 다음 달 평가에 그대로 쓰이니 "
        "고치거나 지우지 마세요.",
        "■ campaign_suppression — 반송이 잦거나 반응이 없어 발송에서 빼는 환자와 채널, 그 이유입니다. 연락처를 고치면 "
        "다음 달 계산에서 풀립니다.",
        "",
    ])
