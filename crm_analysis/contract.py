"""The data contract: every table and column crm_analysis understands.

This module is the single source of truth. The loaders coerce raw exports to
these types, :mod:`crm_analysis.validation` enforces the rules, and
``docs/data_dictionary.md`` is rendered from here (a test keeps the two in sync).

Only ``patients`` and ``visits`` are required. The other tables are optional:
an analysis that needs one says so plainly when it is absent.

Time columns come in two kinds. ``date`` columns hold calendar days
(``datetime64[ns]`` normalised to midnight); ``datetime`` columns hold a moment
in clinic-local time without a time zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_analysis.exceptions import quoted

__all__ = [
    "Column",
    "Table",
    "TABLES",
    "REQUIRED_TABLES",
    "CHANNELS",
    "get_table",
    "render_data_dictionary",
]

#: Outreach channels, in the order clinics usually prefer them.
CHANNELS: tuple[str, ...] = ("kakao", "sms", "email")


@dataclass(frozen=True)
class Column:
    """One column of a contract table.

    Parameters
    ----------
    name : str
        Canonical (English, snake_case) column name.
    dtype : {"id", "string", "category", "date", "datetime", "int", "float", "bool"}
        Logical type. ``id`` is a string identifier.
    ko : str
        Korean label, as used in reports and Korean exports.
    en : str
        English label.
    description : str
        What the column means.
    required : bool
        Whether a source must provide the column. Optional columns missing from
        a source are added empty (all missing).
    nullable : bool
        Whether missing values are allowed in the column.
    allowed : tuple of str, optional
        The closed set of values for a ``category`` column.
    min_value : float, optional
        Smallest allowed value for numeric columns.
    unique : bool
        Whether values must be unique within the table.
    references : str, optional
        ``"table.column"`` that this column points at (a foreign key).
    event_time : bool
        True for dates recording something that has already happened when the
        data was extracted, so a value after ``as_of`` is impossible.
    """

    name: str
    dtype: str
    ko: str
    en: str
    description: str
    required: bool = False
    nullable: bool = True
    allowed: tuple[str, ...] | None = None
    min_value: float | None = None
    unique: bool = False
    references: str | None = None
    event_time: bool = False


@dataclass(frozen=True)
class Table:
    """One contract table: its columns and what it means."""

    name: str
    ko: str
    en: str
    description: str
    columns: tuple[Column, ...]
    required: bool = False
    key: tuple[str, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {quoted(name)}")


def _consent_columns() -> tuple[Column, ...]:
    labels = {"sms": ("문자(SMS)", "SMS"), "email": ("이메일", "email"), "kakao": ("카카오톡", "KakaoTalk")}
    cols: list[Column] = []
    for channel in CHANNELS:
        ko, en = labels[channel]
        cols += [
            Column(f"{channel}_consent", "bool", f"{ko} 마케팅 수신동의", f"{en} marketing consent",
                   f"Patient agreed to receive advertising by {en}. Missing means no consent."),
            Column(f"{channel}_consent_date", "date", f"{ko} 수신동의일", f"{en} consent date",
                   "Date the consent was given or last reconfirmed (Korean law requires reconfirmation every 2 years).",
                   event_time=True),
            Column(f"{channel}_opt_out", "bool", f"{ko} 수신거부", f"{en} opt-out",
                   f"Patient refused all messages by {en}, transactional ones included. An opt-out overrides "
                   "any consent."),
            Column(f"{channel}_opt_out_date", "date", f"{ko} 수신거부일", f"{en} opt-out date",
                   "Date of the opt-out.", event_time=True),
        ]
    cols += [
        Column("night_ad_consent", "bool", "야간 광고 수신동의", "night-time advertising consent",
               "Separate consent to advertising between 21:00 and 08:00."),
        Column("night_ad_consent_date", "date", "야간 광고 수신동의일", "night-time consent date",
               "Date the night-time consent was given.", event_time=True),
    ]
    return tuple(cols)


REFERRAL_SOURCES = ("word_of_mouth", "internet", "signage", "advertisement", "other_clinic", "walk_in", "other")

PATIENTS = Table(
    "patients", "환자", "patients",
    "One row per patient registered at the clinic.",
    required=True,
    key=("patient_id",),
    columns=(
        Column("patient_id", "id", "환자번호", "patient id", "The clinic's own patient number.",
               required=True, nullable=False, unique=True),
        Column("name", "string", "성명", "name", "Full name. Personal data: never shown in reports."),
        Column("sex", "category", "성별", "sex", "F or M.", allowed=("F", "M")),
        Column("birth_date", "date", "생년월일", "birth date", "Date of birth.", event_time=True),
        Column("phone", "string", "휴대전화", "mobile phone",
               "Mobile number, normalised by the loader to 010-XXXX-XXXX. Personal data."),
        Column("email", "string", "이메일", "email", "Email address. Personal data."),
        Column("region", "category", "지역", "region", "Area of residence (시/구 level)."),
        Column("first_visit_date", "date", "초진일", "first visit date",
               "Date of the first visit. Derived from visits when a source lacks it.", event_time=True),
        Column("referral_source", "category", "내원경로", "referral source",
               "How the patient first came: word of mouth (지인소개), internet, signage, advertisement, "
               "another clinic, walk-in or other.", allowed=REFERRAL_SOURCES),
        Column("referred_by", "id", "소개환자번호", "referred by",
               "patient_id of the patient who referred this one.", references="patients.patient_id"),
        Column("guardian_id", "id", "보호자 환자번호", "guardian id",
               "patient_id of the guardian, for children.", references="patients.patient_id"),
        Column("language", "category", "안내 언어", "message language",
               "Language of the messages sent to the patient: ko (Korean) or en (English). Missing means the "
               "clinic's default (Korean). Reports follow their own language setting, never this.",
               allowed=("ko", "en")),
        Column("record_status", "category", "환자상태", "record status",
               "active, deceased or moved. Deceased and moved patients are never contacted.",
               allowed=("active", "deceased", "moved")),
        *_consent_columns(),
    ),
)

VISITS = Table(
    "visits", "내원", "visits",
    "One row per visit (outpatient visit, inpatient stay or health check-up).",
    required=True,
    key=("visit_id",),
    columns=(
        Column("visit_id", "id", "내원번호", "visit id", "Unique visit number.",
               required=True, nullable=False, unique=True),
        Column("patient_id", "id", "환자번호", "patient id", "Who visited.",
               required=True, nullable=False, references="patients.patient_id"),
        Column("visit_date", "date", "내원일자", "visit date", "Day of the visit (admission day for a stay).",
               required=True, nullable=False, event_time=True),
        Column("department", "category", "진료과", "department", "Department seen."),
        Column("visit_type", "category", "내원구분", "visit type", "outpatient (외래), inpatient (입원) or checkup (검진).",
               allowed=("outpatient", "inpatient", "checkup")),
        Column("inpatient_days", "int", "입원일수", "inpatient days", "Days in hospital; 0 for outpatient visits.",
               min_value=0),
        Column("charge_insured", "float", "급여 진료비", "insured charge (KRW)",
               "Charges covered by National Health Insurance (급여), in won.", min_value=0),
        Column("charge_self_pay", "float", "비급여 진료비", "self-pay charge (KRW)",
               "Charges not covered by insurance (비급여), in won.", min_value=0),
    ),
)

APPOINTMENT_STATUSES = ("attended", "no_show", "cancelled", "rescheduled", "booked")

APPOINTMENTS = Table(
    "appointments", "예약", "appointments",
    "One row per booked appointment, whatever became of it.",
    key=("appointment_id",),
    columns=(
        Column("appointment_id", "id", "예약번호", "appointment id", "Unique appointment number.",
               required=True, nullable=False, unique=True),
        Column("patient_id", "id", "환자번호", "patient id", "Who booked.",
               required=True, nullable=False, references="patients.patient_id"),
        Column("booked_at", "datetime", "예약접수일시", "booked at", "When the booking was made.",
               required=True, nullable=False, event_time=True),
        Column("scheduled_at", "datetime", "예약일시", "scheduled at",
               "When the appointment is (or was) to take place. May lie after as_of.",
               required=True, nullable=False),
        Column("department", "category", "진료과", "department", "Department booked."),
        Column("status", "category", "예약상태", "status",
               "attended (내원), no_show (노쇼), cancelled (취소), rescheduled (변경), or booked (still ahead).",
               required=True, nullable=False, allowed=APPOINTMENT_STATUSES),
        Column("cancelled_at", "datetime", "취소일시", "cancelled at", "When a cancellation was made.",
               event_time=True),
        Column("reminder_arm", "category", "알림 배정군", "reminder arm",
               "For a randomised reminder pilot: the arm the appointment was allocated to, reminder (알림군) or "
               "control (대조군), whatever was then sent; missing outside the pilot. With it the pilot is "
               "compared by allocation (intention to treat); without it the arms are read from the reminders "
               "sent (per protocol).", allowed=("reminder", "control")),
    ),
)

REMINDERS = Table(
    "reminders", "예약알림", "reminders",
    "One row per reminder message sent for an appointment.",
    key=("reminder_id",),
    columns=(
        Column("reminder_id", "id", "알림번호", "reminder id", "Unique reminder number.",
               required=True, nullable=False, unique=True),
        Column("appointment_id", "id", "예약번호", "appointment id", "The appointment reminded of.",
               required=True, nullable=False, references="appointments.appointment_id"),
        Column("channel", "category", "채널", "channel", "kakao (알림톡), sms or email.", allowed=CHANNELS),
        Column("schedule", "category", "발송시점", "schedule label",
               "Which step of the schedule this message was, such as 3d, 1d or 2h (days or hours before the "
               "appointment); 'unknown' when the export does not say."),
        Column("sent_at", "datetime", "발송일시", "sent at", "When it was sent; missing when the export does not say.",
               event_time=True),
        Column("delivered", "bool", "수신성공", "delivered", "Whether delivery succeeded; missing when unknown."),
        Column("reply", "category", "회신", "reply",
               "The patient's answer to this message: confirmed (예약 확인), cancelled (취소 요청) or none (no "
               "reply); missing, or the column absent, when the export does not record replies.",
               allowed=("confirmed", "cancelled", "none")),
    ),
)

CONTACTS = Table(
    "contacts", "발송이력", "contacts",
    "The outreach log: one row per patient per campaign, for sent and held-out patients alike.",
    key=("contact_id",),
    columns=(
        Column("contact_id", "id", "발송번호", "contact id", "Unique row id.",
               required=True, nullable=False, unique=True),
        Column("campaign_id", "id", "캠페인", "campaign id", "Which campaign.", required=True, nullable=False),
        Column("patient_id", "id", "환자번호", "patient id", "Who was targeted.",
               required=True, nullable=False, references="patients.patient_id"),
        Column("channel", "category", "채널", "channel", "kakao, sms or email.", allowed=CHANNELS),
        Column("sent_at", "datetime", "발송일시", "sent at",
               "When the message went out (for holdout rows: when it would have).", required=True,
               nullable=False, event_time=True),
        Column("arm", "category", "군", "arm", "sent (발송군) or holdout (대조군).",
               required=True, nullable=False, allowed=("sent", "holdout")),
        Column("delivered", "bool", "수신성공", "delivered", "Delivery succeeded."),
        Column("bounce_type", "category", "반송유형", "bounce type", "none, soft or hard.",
               allowed=("none", "soft", "hard")),
        Column("opened", "bool", "열람", "opened", "Opened (not trusted as engagement on its own)."),
        Column("clicked", "bool", "클릭", "clicked", "Clicked a link."),
        Column("replied", "bool", "회신", "replied", "Replied or called back."),
    ),
)

PREGNANCIES = Table(
    "pregnancies", "임신", "pregnancies",
    "One row per pregnancy followed by the clinic.",
    key=("patient_id", "due_date"),
    columns=(
        Column("patient_id", "id", "환자번호", "patient id", "The expectant mother.",
               required=True, nullable=False, references="patients.patient_id"),
        Column("due_date", "date", "분만예정일", "due date", "Estimated date of delivery (40+0 weeks).",
               required=True, nullable=False),
        Column("outcome", "category", "결과", "outcome",
               "Missing while ongoing; otherwise delivered, miscarriage, stillbirth or termination.",
               allowed=("delivered", "miscarriage", "stillbirth", "termination")),
        Column("outcome_date", "date", "결과일", "outcome date", "Date of the outcome.", event_time=True),
    ),
)

VACCINATIONS = Table(
    "vaccinations", "예방접종", "vaccinations",
    "One row per vaccine dose given, recorded by the clinic or reported by the guardian. With it, vaccination "
    "reminders skip the doses already given; without it they follow the schedule alone.",
    key=("patient_id", "vaccine", "dose", "vaccination_date"),
    columns=(
        Column("patient_id", "id", "환자번호", "patient id", "Who was vaccinated (the child, not the guardian).",
               required=True, nullable=False, references="patients.patient_id"),
        Column("vaccine", "string", "백신", "vaccine",
               "Vaccine code as in the vaccination schedule: BCG, HepB, DTaP, IPV, Hib, PCV, RV, MMR, VAR, HepA, "
               "IJEV, Tdap, HPV, or IIV for seasonal influenza.", required=True, nullable=False),
        Column("dose", "int", "차수", "dose", "Dose number (1, 2, …); 0 for a seasonal vaccine.",
               required=True, nullable=False, min_value=0),
        Column("vaccination_date", "date", "접종일", "vaccination date", "Day the dose was given.",
               required=True, nullable=False, event_time=True),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (PATIENTS, VISITS, APPOINTMENTS, REMINDERS, CONTACTS, PREGNANCIES, VACCINATIONS)
}
REQUIRED_TABLES: tuple[str, ...] = tuple(name for name, t in TABLES.items() if t.required)


def get_table(name: str) -> Table:
    """Return the contract table called `name`.

    Raises
    ------
    KeyError
        If there is no such table; the message lists the known tables.
    """
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {quoted(name)}; the contract has {', '.join(TABLES)}") from None


_TYPE_DOC = {
    "id": "text id",
    "string": "text",
    "category": "category",
    "date": "date",
    "datetime": "date-time",
    "int": "integer",
    "float": "number",
    "bool": "yes/no",
}


def render_data_dictionary() -> str:
    """Render the contract as the Markdown of ``docs/data_dictionary.md``."""
    lines = [
        "# Data dictionary (데이터 사전)",
        "",
        "<!-- Generated from crm_analysis/contract.py by `crm-analysis data-dictionary`. Do not edit by hand. -->",
        "",
        "This is the data contract every clinic export is mapped onto. Only **patients** and **visits** are",
        "required; an analysis that needs a missing optional table says so and the rest still runs.",
        "Optional columns that a source lacks are added empty. Types: *date* is a calendar day, *date-time*",
        "a clinic-local moment. Columns marked *event* record something that already happened, so a value",
        "after `as_of` is rejected.",
        "",
    ]
    for table in TABLES.values():
        need = "required" if table.required else "optional"
        lines += [
            f"## `{table.name}` — {table.ko} ({need})",
            "",
            table.description + (f" Key: `{', '.join(table.key)}`." if table.key else ""),
            "",
            "| column | 한국어 | English | type | required | missing allowed | rules | meaning |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for col in table.columns:
            rules = []
            if col.unique:
                rules.append("unique")
            if col.allowed:
                rules.append("one of " + ", ".join(f"`{v}`" for v in col.allowed))
            if col.min_value is not None:
                rules.append(f"≥ {col.min_value:g}")
            if col.references:
                rules.append(f"→ `{col.references}`")
            if col.event_time:
                rules.append("event (≤ as_of)")
            lines.append(
                f"| `{col.name}` | {col.ko} | {col.en} | {_TYPE_DOC[col.dtype]} | "
                f"{'yes' if col.required else 'no'} | {'yes' if col.nullable else 'no'} | "
                f"{'; '.join(rules)} | {col.description} |"
            )
        lines.append("")
    lines += [
        "## Cross-table rules",
        "",
        "- Every id marked → must exist in the table it points to.",
        "- `appointments.scheduled_at` is not before `booked_at` (compared by day when the source records only days);",
        "  `cancelled_at` is not before `booked_at`.",
        "- An appointment scheduled after `as_of` can only be `booked`, `cancelled` or `rescheduled`.",
        "- `visits.inpatient_days` is 0 unless `visit_type` is `inpatient`.",
        "- A reminder is not sent after its appointment's scheduled time.",
        "- `pregnancies.outcome_date` is present exactly when `outcome` is.",
        "- Exact duplicate rows are repaired (dropped and counted); duplicate ids with different content are errors.",
        "",
    ]
    return "\n".join(lines)
