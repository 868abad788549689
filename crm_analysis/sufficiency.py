"""What each analysis needs from a clinic's data, declared once, and the check against it.

Every clinic's export is thinner, shorter or odder than the demo clinic. Each
analysis of the monthly run declares here what it needs — tables, columns
that must hold values, months of visit history, minimum counts — as one
:class:`Requirement` in :data:`REQUIREMENTS`. :func:`check` compares a clinic
with it and says, in one plain sentence per language, what is missing and what
would make the analysis work; :func:`require` raises that as
:class:`~crm_analysis.exceptions.InsufficientDataError`, which the monthly run
turns into a skipped section (the report keeps the section with the sentence,
``kpis.json`` gives ``null`` figures with the reason, and the run goes on).

The same declarations give the README's table (:func:`requirements_table`).

Examples
--------
>>> from crm_analysis.sufficiency import check
>>> check("clv_backtest", clinic, "2016-05-31").reason("en")  # doctest: +SKIP
'CLV back-test: needs 18 months of visit history up to 2016-05-31; the data has 1.'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_analysis.contract import TABLES
from crm_analysis.exceptions import InsufficientDataError

__all__ = ["Requirement", "MinCount", "REQUIREMENTS", "Sufficiency", "check", "require", "requirements_table",
           "history_months", "SHORT_OF_DATA"]

#: How a reason says "not enough data", by language: ``"<title>: <this><what is missing>."``.
SHORT_OF_DATA = {"en": "not enough data — ", "ko": "자료가 부족해 분석하지 못했습니다 — "}


# --------------------------------------------------------------------------- what can be counted

def _known_rows(frame: pd.DataFrame, column: str, as_of: pd.Timestamp) -> np.ndarray:
    """Which rows of `frame` are dated on or before `as_of` (by `column`; a missing date is not)."""
    return (frame[column] < as_of + pd.Timedelta(days=1)).to_numpy(dtype=bool, na_value=False)


def _up_to(frame: pd.DataFrame, column: str, as_of: pd.Timestamp, columns=None) -> pd.DataFrame:
    """The rows dated up to `as_of`, only `columns` of them (all by default): a counter copies what it reads."""
    keep = _known_rows(frame, column, as_of)
    part = frame if columns is None else frame[[c for c in columns if c in frame.columns]]
    return part if keep.all() else part.loc[keep]


def _visits(clinic, as_of, columns=("patient_id", "visit_date")) -> pd.DataFrame:
    """The visits up to `as_of`, only `columns` of them (``None``: all)."""
    if "visits" not in clinic.tables:
        return pd.DataFrame({"patient_id": [], "visit_date": pd.Series([], dtype="datetime64[ns]")})
    return _up_to(clinic.tables["visits"], "visit_date", as_of, columns)


def history_months(clinic, as_of) -> int:
    """Whole months from the first visit to `as_of` (0 without visits): how much history the data holds."""
    if "visits" not in clinic.tables:
        return 0
    dates = clinic.tables["visits"]["visit_date"]
    dates = dates[_known_rows(clinic.tables["visits"], "visit_date", pd.Timestamp(as_of))]
    if dates.isna().all():
        return 0
    first, as_of = dates.min().to_period("M"), pd.Timestamp(as_of).to_period("M")
    return int((as_of - first).n) + 1


def _patients_seen(clinic, as_of) -> int:
    ids = _visits(clinic, as_of)["patient_id"]
    if isinstance(ids.array, pd.arrays.ArrowStringArray):  # pandas' nunique factorizes Arrow text slowly
        return int(pc.count_distinct(ids.array._pa_array).as_py())
    return int(ids.nunique())


def _returning_patients(clinic, as_of) -> int:
    """Patients with visits on two or more days (they give a return, a gap, a repeat purchase)."""
    v = _visits(clinic, as_of)
    if v.empty:
        return 0
    # integer codes of (patient, day) rather than a drop_duplicates over text ids and timestamps
    who = _codes(v["patient_id"])
    day = v["visit_date"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    known = (who >= 0) & ~v["visit_date"].isna().to_numpy()
    who, day = who[known], day[known]
    if not len(who):
        return 0
    _, day = np.unique(day, return_inverse=True)
    pairs = np.unique(who * (int(day.max()) + 1) + day)
    days_per_patient = np.bincount(pairs // (int(day.max()) + 1))
    return int((days_per_patient >= 2).sum())


def _codes(values: pd.Series) -> np.ndarray:
    """Integer code of each value (-1 where missing); by Arrow for Arrow text (pandas factorizes it slowly)."""
    if isinstance(values.array, pd.arrays.ArrowStringArray):
        indices = pc.dictionary_encode(values.array._pa_array).combine_chunks().indices
        return indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64)


def _charged_visits(clinic, as_of) -> int:
    charges = [c for c in ("charge_insured", "charge_self_pay") if c in clinic.tables.get("visits", ())]
    v = _visits(clinic, as_of, charges)
    if not charges or v.empty:
        return 0
    total = sum(np.nan_to_num(v[c].to_numpy(dtype="float64", na_value=np.nan)) for c in charges)
    return int((total > 0).sum())


def _resolved_appointments(clinic, as_of) -> int:
    if "appointments" not in clinic.tables:
        return 0
    a = _up_to(clinic.tables["appointments"], "scheduled_at", as_of, ["status"])
    return int(a["status"].astype("object").isin(["attended", "no_show"]).sum())


def _reminded_appointments(clinic, as_of) -> int:
    if "appointments" not in clinic.tables or "reminders" not in clinic.tables:
        return 0
    a = _up_to(clinic.tables["appointments"], "scheduled_at", as_of, ["appointment_id"])
    return int(_is_in(a["appointment_id"], clinic.tables["reminders"]["appointment_id"]).sum())


def _is_in(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """``values.isin(keys)`` as an array, by Arrow when both are text (pandas' ``isin`` on Arrow text loops in
    Python over the keys: seconds for a few 100,000 reminders)."""
    try:
        values_pa, keys_pa = pa.array(values.array), pa.array(keys.array)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types
        values_pa = keys_pa = None
    if values_pa is None or not (_is_text(values_pa.type) and _is_text(keys_pa.type)):
        return values.isin(keys).to_numpy()
    return pc.is_in(values_pa, value_set=keys_pa.cast(values_pa.type)).to_numpy(zero_copy_only=False)


def _is_text(arrow_type) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _holdout_contacts(clinic, as_of) -> int:
    if "contacts" not in clinic.tables:
        return 0
    c = _up_to(clinic.tables["contacts"], "sent_at", as_of, ["arm"])
    return int((c["arm"].astype("object") == "holdout").sum())


def _sent_contacts(clinic, as_of) -> int:
    if "contacts" not in clinic.tables:
        return 0
    c = _up_to(clinic.tables["contacts"], "sent_at", as_of, ["arm"])
    return int((c["arm"].astype("object") == "sent").sum())


def _patients_known(clinic, as_of) -> pd.DataFrame:
    """Patients first seen by `as_of` (the rows an analysis as of that day may use)."""
    p = clinic.tables["patients"]
    return _up_to(p, "first_visit_date", as_of) if "first_visit_date" in p.columns else p


def _referral_sources(clinic, as_of) -> int:
    p = _patients_known(clinic, as_of)
    return int(p["referral_source"].notna().sum()) if "referral_source" in p.columns else 0


@dataclass(frozen=True)
class MinCount:
    """A minimum count: ``counter(clinic, as_of) >= minimum``, described in both languages."""

    what_en: str
    what_ko: str
    minimum: int
    counter: Callable[[object, pd.Timestamp], int] = field(repr=False, compare=False)


RETURNING = ("patients with visits on two or more days", "2일 이상 내원한 환자", _returning_patients)
PATIENTS = ("patients with a visit", "내원한 환자", _patients_seen)
CHARGED = ("visits with a charge", "진료비가 있는 내원", _charged_visits)
RESOLVED = ("attended or missed appointments", "내원 또는 노쇼로 끝난 예약", _resolved_appointments)
REMINDED = ("appointments with a reminder", "알림을 보낸 예약", _reminded_appointments)
HOLDOUT = ("campaign contacts in a holdout (대조군)", "캠페인 대조군 연락", _holdout_contacts)
SENT = ("campaign contacts sent", "캠페인 발송 연락", _sent_contacts)
REFERRALS = ("patients with a referral source (내원경로)", "내원경로가 있는 환자", _referral_sources)


def _min(kind: tuple, minimum: int) -> MinCount:
    return MinCount(kind[0], kind[1], minimum, kind[2])


# --------------------------------------------------------------------------- the declarations

@dataclass(frozen=True)
class Requirement:
    """What one analysis needs.

    Attributes
    ----------
    name : str
        Key of the analysis (the name in ``kpis.json`` and the manifest).
    title_en, title_ko : str
        The analysis as a reader knows it.
    tables : tuple of str
        Contract tables that must be present.
    columns : tuple of str
        ``"table.column"`` entries that must hold at least one value;
        ``"table.a|table.b"`` means either.
    months : int
        Months of visit history up to ``as_of`` (the report month counts).
    counts : tuple of MinCount
        Minimum counts up to ``as_of``.
    """

    name: str
    title_en: str
    title_ko: str
    tables: tuple[str, ...] = ("patients", "visits")
    columns: tuple[str, ...] = ()
    months: int = 1
    counts: tuple[MinCount, ...] = ()

    def title(self, lang: str) -> str:
        return self.title_ko if lang == "ko" else self.title_en


def _req(name, en, ko, tables=("patients", "visits"), columns=(), months=1, counts=()) -> Requirement:
    return Requirement(name, en, ko, tuple(tables), tuple(columns), months, tuple(counts))


_CHARGES = "visits.charge_insured|visits.charge_self_pay"
_APPTS = ("patients", "visits", "appointments")

#: Every analysis of the monthly run, in report order: name -> Requirement.
REQUIREMENTS: dict[str, Requirement] = {r.name: r for r in (
    # KPI page (kpis.json sections)
    _req("glance", "The month at a glance", "이달의 핵심 지표"),
    _req("patients", "Patient counts", "환자 수"),
    _req("retention", "12-month retention", "12개월 재방문율", months=24, counts=[_min(PATIENTS, 1)]),
    _req("no_show", "No-show rate", "노쇼율", tables=_APPTS, counts=[_min(RESOLVED, 1)]),
    _req("revenue_by_department", "Charges by department", "진료과별 진료비", columns=[_CHARGES]),
    _req("trend", "12-month trend", "최근 12개월 추이"),
    _req("reminder_effect", "Reminder effect", "예약 알림 효과", tables=_APPTS + ("reminders",),
         counts=[_min(RESOLVED, 100), _min(REMINDED, 30)]),
    _req("replies", "Reminder replies", "예약 알림 회신", tables=_APPTS + ("reminders",)),
    _req("vip", "VIPs and segment migration", "VIP와 고객군 이동", columns=[_CHARGES], months=2,
         counts=[_min(PATIENTS, 20)]),
    _req("churn", "Churn and recall", "이탈과 리콜", months=6, counts=[_min(RETURNING, 30)]),
    _req("campaigns", "Campaign lifts", "캠페인 효과", tables=("patients", "visits", "contacts"),
         counts=[_min(SENT, 1), _min(HOLDOUT, 1)]),
    _req("actions", "Next month's staff lists", "다음 달 할 일", counts=[_min(PATIENTS, 1)]),
    # notebook sections
    _req("segments", "RFM segments", "RFM 고객군", counts=[_min(PATIENTS, 5)]),
    _req("migration", "Segment migration", "고객군 이동", months=2, counts=[_min(PATIENTS, 5)]),
    _req("vip_selection", "VIP selection", "VIP 선정", columns=[_CHARGES], counts=[_min(PATIENTS, 20)]),
    _req("loyalty", "Loyalty score", "충성도 점수", counts=[_min(PATIENTS, 5)]),
    _req("clv", "Lifetime value (CLV)", "생애가치(CLV)", columns=[_CHARGES], months=6,
         counts=[_min(PATIENTS, 20), _min(RETURNING, 10), _min(CHARGED, 20)]),
    _req("clv_backtest", "CLV back-test", "생애가치 백테스트", columns=[_CHARGES], months=18,
         counts=[_min(PATIENTS, 20), _min(RETURNING, 10), _min(CHARGED, 20)]),
    _req("referrals", "Word of mouth", "입소문", columns=["patients.referral_source"],
         counts=[_min(REFERRALS, 1)]),
    _req("return_curves", "Return curves", "재방문 곡선", counts=[_min(RETURNING, 10)]),
    _req("churn_model", "Churn model (hazard ratios, calibration)", "이탈 모형 (위험비, 보정)", months=6,
         counts=[_min(RETURNING, 30)]),
    _req("churn_backtest", "Churn back-test", "이탈 모형 과거 시점 검증", months=12, counts=[_min(RETURNING, 30)]),
    _req("reminders", "Reminder evaluation", "예약 알림 평가", tables=_APPTS + ("reminders",),
         counts=[_min(RESOLVED, 100), _min(REMINDED, 30)]),
    _req("noshow_risk", "No-show risk model", "노쇼 위험 예측", tables=_APPTS, counts=[_min(RESOLVED, 200)]),
    _req("campaign_plan", "Campaign plan", "캠페인 발송 계획", counts=[_min(PATIENTS, 1)]),
    _req("campaign_lifts", "Campaign lifts", "캠페인 효과", tables=("patients", "visits", "contacts"),
         counts=[_min(SENT, 1), _min(HOLDOUT, 1)]),
)}


# --------------------------------------------------------------------------- the check

@dataclass(frozen=True)
class Sufficiency:
    """The result of :func:`check`: what one analysis lacks on one clinic (empty: nothing)."""

    requirement: Requirement
    as_of: pd.Timestamp
    missing_en: tuple[str, ...] = ()
    missing_ko: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing_en

    def reason(self, lang: str = "ko") -> str:
        """One sentence: the analysis, what it lacks, what would make it work ('' when nothing lacks)."""
        if self.ok:
            return ""
        missing = self.missing_ko if lang == "ko" else self.missing_en
        return f"{self.requirement.title(lang)}: {SHORT_OF_DATA['ko' if lang == 'ko' else 'en']}" \
            + "; ".join(missing) + "."

    def error(self) -> InsufficientDataError:
        return InsufficientDataError(self.requirement.name, self.reason("en"), self.reason("ko"))

    def _repr_html_(self) -> str:
        return f"<p>{escape(self.reason('en') or self.requirement.title_en + ': enough data.')}</p>"


#: Counts already taken, per (clinic, day): ``[(clinic, day, {counter: value})]``, compared with ``is`` (an id
#: can be reused by a new object). Several analyses ask for the same counts of the same clinic in one run.
#: A value known only to be at least something is stored under ``(counter, "at_least")``.
_COUNTED: list[tuple[object, pd.Timestamp, dict]] = []

#: Row counts of the first rows a minimum is tried on before a whole table is counted (see :func:`_count`).
_PREFIXES: tuple[int, ...] = (1 << 16, 1 << 20)


class _FirstRows:
    """The first `rows` rows of each table of a clinic: what a counter needs to see (``tables``) and no more."""

    def __init__(self, clinic, rows: int):
        self.tables = {name: frame.iloc[:rows] for name, frame in clinic.tables.items()}


def _count(counter: Callable, clinic, as_of: pd.Timestamp, minimum: int | None = None) -> int:
    """``counter(clinic, as_of)``, or when `minimum` is given possibly a smaller count that already reaches it.

    Every counter counts rows or distinct things in rows, so it can only grow with more rows: a count on
    the first rows of each table that reaches `minimum` proves the whole clinic does, without reading a
    million patients' twenty million visits. Only a count that falls short is taken on the whole
    clinic, so the number a reason quotes is always exact.
    """
    for c, day, counts in _COUNTED:
        if c is clinic and day == as_of:
            break
    else:
        counts = {}
        _COUNTED.append((clinic, as_of, counts))
        del _COUNTED[:-2]
    if counter in counts:
        return counts[counter]
    if minimum is not None:
        if counts.get((counter, "at_least"), -1) >= minimum:
            return counts[(counter, "at_least")]
        longest = max((len(t) for t in clinic.tables.values()), default=0)
        for rows in _PREFIXES:
            if rows >= longest:
                break
            seen = counter(_FirstRows(clinic, rows), as_of)
            if seen >= minimum:
                counts[(counter, "at_least")] = max(seen, counts.get((counter, "at_least"), -1))
                return seen
    counts[counter] = counter(clinic, as_of)
    return counts[counter]


def _column_holds_values(clinic, spec: str, as_of: pd.Timestamp) -> bool:
    """Whether any row known by `as_of` holds a value in one of the ``table.column`` alternatives of `spec`."""
    dated = {"visits": "visit_date", "patients": "first_visit_date"}
    for alternative in spec.split("|"):
        table, column = alternative.split(".")
        if table not in clinic.tables or column not in clinic.tables[table].columns:
            continue
        frame = clinic.tables[table]
        has = frame[column].notna().to_numpy(dtype=bool)
        if table in dated and dated[table] in frame.columns:  # only the rows known by as_of
            has &= _known_rows(frame, dated[table], as_of)
        if has.any():
            return True
    return False


def check(name: str, clinic, as_of) -> Sufficiency:
    """Compare `clinic` (data up to `as_of`) with what analysis `name` needs.

    Parameters
    ----------
    name : str
        A key of :data:`REQUIREMENTS`.
    clinic : ClinicData
    as_of : str or Timestamp
        Only data up to this day counts.

    Returns
    -------
    Sufficiency

    Raises
    ------
    KeyError
        If `name` is not declared.
    """
    req = REQUIREMENTS[name]
    as_of = pd.Timestamp(as_of).normalize()
    en: list[str] = []
    ko: list[str] = []
    absent = [t for t in req.tables if t not in clinic.tables]
    if absent:
        en.append(f"the source has no {', '.join(absent)} table; add it to the source or the mapping file")
        ko.append(f"자료에 {', '.join(f'{TABLES[t].ko}({t})' for t in absent)} 자료가 없습니다 "
                  "(자료나 매핑 파일에 추가하세요)")
        return Sufficiency(req, as_of, tuple(en), tuple(ko))
    for spec in req.columns:
        if not _column_holds_values(clinic, spec, as_of):
            columns = [alt.split(".") for alt in spec.split("|")]
            named_en = " or ".join(f"{TABLES[t].column(c).en} ({t}.{c})" for t, c in columns)
            named_ko = " 또는 ".join(f"{TABLES[t].column(c).ko}({c})" for t, c in columns)
            en.append(f"the data has no {named_en}; export it and map it")
            ko.append(f"{named_ko} 값이 없습니다 (내보내기와 매핑에 넣으세요)")
    if req.months > 1:
        have = _count(history_months, clinic, as_of)
        if have < req.months:
            en.append(f"it needs {req.months} months of visit history up to {as_of:%Y-%m-%d}, the data has {have}")
            ko.append(f"{as_of:%Y-%m-%d}까지 {req.months}개월의 내원 기록이 필요한데 {have}개월뿐입니다")
    for need in req.counts:
        have = _count(need.counter, clinic, as_of, need.minimum)
        if have < need.minimum:
            en.append(f"it needs at least {need.minimum:,} {need.what_en}, the data has {have:,}")
            ko.append(f"{need.what_ko}이(가) {need.minimum:,}건 이상 필요한데 {have:,}건뿐입니다")
    return Sufficiency(req, as_of, tuple(en), tuple(ko))


def require(name: str, clinic, as_of) -> None:
    """Raise :class:`~crm_analysis.exceptions.InsufficientDataError` if `clinic` falls short for `name`."""
    result = check(name, clinic, as_of)
    if not result.ok:
        raise result.error()


def requirements_table(lang: str = "en") -> pd.DataFrame:
    """Every declared analysis with its tables, columns, minimum history and minimum counts (the README's table)."""
    rows = []
    for req in REQUIREMENTS.values():
        rows.append({"analysis": req.title(lang), "key": req.name, "tables": ", ".join(req.tables),
                     "columns": ", ".join(c.replace("|", " or ") for c in req.columns) or "–",
                     "min_history_months": req.months if req.months > 1 else np.nan,
                     "min_counts": "; ".join(f"{c.minimum:,} {c.what_en if lang != 'ko' else c.what_ko}"
                                             for c in req.counts) or "–"})
    table = pd.DataFrame(rows)
    table["min_history_months"] = table["min_history_months"].astype("Int64")
    return table
