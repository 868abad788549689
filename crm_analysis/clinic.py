"""The validated bundle of one clinic's tables.

:class:`ClinicData` is what every analysis takes. Its tables follow the data
contract exactly; optional tables the source lacks are simply absent, and
asking for one raises :class:`~crm_analysis.exceptions.MissingTableError` with
a plain explanation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from html import escape
from types import MappingProxyType
from typing import Mapping

import pandas as pd

from crm_analysis.coercion import isin
from crm_analysis.contract import CHANNELS, TABLES
from crm_analysis.exceptions import MissingTableError, Problem, SourceError, quoted
from crm_analysis.findings import ValidationReport

__all__ = ["ClinicData", "RECORDED_EVENTS", "month_end"]

#: The columns whose dates record something that happened, by table: together they give the span of
#: days an extract covers (:meth:`ClinicData.recorded_range`). Appointments also count their
#: ``scheduled_at`` when the appointment took place (attended or missed), never a booking still ahead.
RECORDED_EVENTS = {
    "patients": ("first_visit_date",),
    "visits": ("visit_date",),
    "appointments": ("booked_at", "cancelled_at"),
    "reminders": ("sent_at",),
    "contacts": ("sent_at",),
}
_TOOK_PLACE = ("attended", "no_show")


@dataclass(frozen=True)
class ClinicData:
    """One clinic's data, checked against the contract.

    Attributes
    ----------
    tables : Mapping of str to DataFrame
        The tables present, by contract name.
    as_of : Timestamp or None
        The extraction date the data was checked against, if one was given.
    report : ValidationReport
        Repairs, warnings and quarantined rows from loading.
    source : str
        Where the data came from (passwords removed from database URLs).
    mapping : str or None
        The mapping file used, if any.
    encodings : Mapping of str to str
        The encoding detected for each text file read.
    """

    tables: Mapping[str, pd.DataFrame]
    as_of: pd.Timestamp | None = None
    report: ValidationReport = field(default_factory=ValidationReport)
    source: str = ""
    mapping: str | None = None
    encodings: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tables", MappingProxyType(dict(self.tables)))

    def has(self, name: str) -> bool:
        """Whether the optional table `name` is present."""
        return name in self.tables

    def require(self, name: str, needed_for: str) -> pd.DataFrame:
        """The table `name`, or a MissingTableError saying what needed it."""
        if name not in self.tables:
            raise MissingTableError(name, needed_for)
        return self.tables[name]

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name in TABLES:
            return self.require(name, f"clinic.{name}")
        raise AttributeError(name)

    def row_counts(self) -> pd.DataFrame:
        """Rows per contract table (0 for absent optional tables)."""
        return pd.DataFrame({
            "table": list(TABLES),
            "korean": [t.ko for t in TABLES.values()],
            "present": [n in self.tables for n in TABLES],
            "rows": [len(self.tables[n]) if n in self.tables else 0 for n in TABLES],
        })

    def snapshot(self, as_of: str | pd.Timestamp) -> "ClinicData":
        """The data as it was known at the end of day `as_of`.

        Use this for back-tests and for past months: nothing recorded after
        `as_of` survives, and what was left out is counted in
        ``report.info``.

        - visits, contacts and (sent) reminders after `as_of` are dropped, and
          reminders of dropped appointments with them;
        - appointments booked after `as_of` are dropped; those scheduled after
          it become ``booked`` again unless cancelled (or moved) by `as_of` —
          a cancellation or move without a date counts as not yet made — and
          cancellations made after it are undone;
        - patients are kept if first seen by `as_of` or referred to by a kept
          row (a booking can precede the first visit); ``referred_by`` and
          ``guardian_id`` pointing at patients not yet known are cleared;
        - pregnancies are kept from about six weeks of gestation (due date
          minus 34 weeks); outcomes after `as_of` are unknown again;
        - vaccinations given after `as_of` are dropped;
        - consents dated after `as_of` are treated as not given and opt-outs
          dated after it as not made. Only the latest consent date is stored,
          so a consent reconfirmed after `as_of` counts as not given then: the
          safe side for advertising rules.

        Columns that carry no date cannot be rolled back: ``record_status``
        (deceased, moved) and the engagement outcomes of contacts (opened,
        clicked, replied) keep their current values.

        Raises
        ------
        ValueError
            If `as_of` is later than the data's own ``as_of``.
        """
        as_of = pd.Timestamp(as_of).normalize()
        if self.as_of is not None and as_of > self.as_of:
            raise ValueError(f"cannot take a snapshot at {as_of:%Y-%m-%d}: the data only runs to {self.as_of:%Y-%m-%d}")
        end = as_of + pd.Timedelta(days=1)
        t = dict(self.tables)
        t["visits"] = _before(t["visits"], "visit_date", end)
        if "appointments" in t:
            appts = _before(t["appointments"], "booked_at", end).copy()
            undone = (appts["cancelled_at"] >= end).fillna(False)
            appts.loc[undone, "cancelled_at"] = pd.NaT
            # An appointment still ahead has no outcome yet, unless it was cancelled (or moved) by as_of:
            # that is known then.
            cancelled_by_then = appts["cancelled_at"].notna() & ~undone
            pending = ((appts["scheduled_at"] >= end).fillna(False) & ~cancelled_by_then) | undone
            appts["status"] = appts["status"].astype("object").where(~pending, "booked").astype("category")
            t["appointments"] = appts
        if "reminders" in t:
            rem = t["reminders"]
            keep = ~(rem["sent_at"] >= end).fillna(False)
            if "appointments" in t:
                keep &= isin(rem["appointment_id"], t["appointments"]["appointment_id"])
            t["reminders"] = rem.loc[keep.to_numpy()].reset_index(drop=True)
        if "contacts" in t:
            t["contacts"] = _before(t["contacts"], "sent_at", end)
        if "pregnancies" in t:
            preg = t["pregnancies"].copy()
            late = (preg["outcome_date"] >= end).fillna(False)
            preg.loc[late, "outcome"] = pd.NA
            preg.loc[late, "outcome_date"] = pd.NaT
            known = preg["due_date"] - pd.Timedelta(weeks=34) < end
            t["pregnancies"] = preg.loc[known.to_numpy()].reset_index(drop=True)
        if "vaccinations" in t:
            t["vaccinations"] = _before(t["vaccinations"], "vaccination_date", end)
        t["patients"] = _patients_known(t, end)
        left_out = [f"{name} {len(self.tables[name]) - len(t[name]):,}" for name in t
                    if len(self.tables[name]) != len(t[name])]
        info = [Problem("snapshot", None, f"snapshot as of {as_of:%Y-%m-%d}: rows recorded later were left out ("
                                          + (", ".join(left_out) or "none") + ")", check="snapshot")]
        report = replace(self.report, info=[*self.report.info, *info])
        return replace(self, tables=t, as_of=as_of, report=report)

    def recorded_range(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The first and last day on which the data records something that happened.

        Counted from the dates in :data:`RECORDED_EVENTS`: visits, bookings and cancellations,
        appointments that took place, reminders and outreach messages sent, and patients' first
        visits. Appointments still ahead do not extend the range (an extract taken on 31 October
        holds bookings for November).

        Returns
        -------
        (first, last) : tuple of Timestamp, or None
            Days (midnight), or None when no such date is recorded at all.
        """
        dates = [self.tables[name][col] for name, cols in RECORDED_EVENTS.items() if name in self.tables
                 for col in cols if col in self.tables[name]]
        if "appointments" in self.tables:
            appts = self.tables["appointments"]
            dates.append(appts.loc[appts["status"].isin(_TOOK_PLACE).fillna(False).to_numpy(), "scheduled_at"])
        firsts = [d.min() for d in dates if d.notna().any()]
        lasts = [d.max() for d in dates if d.notna().any()]
        if not firsts:
            return None
        return pd.Timestamp(min(firsts)).normalize(), pd.Timestamp(max(lasts)).normalize()

    def check_month(self, month: str) -> list[str]:
        """Whether the data can report on `month` (``YYYY-MM``), as the monthly run needs.

        Returns
        -------
        list of str
            One warning when the data covers the month only in part (it starts or ends inside
            it), else nothing.

        Raises
        ------
        SourceError
            If the month lies wholly before or after :meth:`recorded_range`, or no visit is
            recorded on or before the month's last day: publishing would show an empty month
            as if it were real.
        """
        period = pd.Period(month, freq="M")
        start, end = period.start_time.normalize(), period.end_time.normalize()
        span = self.recorded_range()
        if span is None:
            raise SourceError("the data records no dated events (no visits, bookings or messages), "
                              f"so there is nothing to report for --month {month}")
        first, last = span
        runs = f"the data runs from {first:%Y-%m-%d} to {last:%Y-%m-%d}"
        visits = self.tables["visits"]["visit_date"] if "visits" in self.tables else pd.Series(dtype="datetime64[ns]")
        first_visit = visits.min() if visits.notna().any() else None
        months = (f"choose a month from {first_visit:%Y-%m} to {last:%Y-%m}"
                  if first_visit is not None and first_visit <= last else "")
        if start > last or end < first:
            newer = "; for a later month, give a newer extract" if start > last else ""
            raise SourceError(f"{runs}; --month {month} lies outside it ({months or 'no visits are recorded'}{newer})")
        if not (visits <= end).any():
            seen = f"the first visit is on {first_visit:%Y-%m-%d}" if first_visit is not None else "there are no visits"
            raise SourceError(f"no visit is recorded on or before {end:%Y-%m-%d}, the last day of --month {month} "
                              f"({seen}), so there is nothing to analyse; {months or 'add the visits table'}")
        missing = [f"before {first:%Y-%m-%d}"] * (first > start) + [f"after {last:%Y-%m-%d}"] * (last < end)
        if missing:
            return [f"{runs}, so --month {month} is only partly covered (nothing recorded {' or '.join(missing)})"]
        return []

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={len(df):,}" for n, df in self.tables.items())
        as_of = f"{self.as_of:%Y-%m-%d}" if self.as_of is not None else "not given"
        return f"ClinicData(source={self.source!r}, as_of={as_of}, {counts})"

    def _repr_html_(self) -> str:
        as_of = f"{self.as_of:%Y-%m-%d}" if self.as_of is not None else "not given"
        n_findings = len(self.report.to_frame())
        return (f"<h4>ClinicData: {escape(self.source)}</h4><p>as of {as_of}; "
                f"{n_findings} data-quality finding(s)</p>" + self.row_counts().to_html(index=False))


def _patients_known(tables: dict[str, pd.DataFrame], end: pd.Timestamp) -> pd.DataFrame:
    """Patients first seen before `end` or referred to by a kept row; links to others cleared."""
    patients = tables["patients"]
    keep = ~(patients["first_visit_date"] >= end).fillna(False)
    for name in ("visits", "appointments", "contacts", "pregnancies", "vaccinations"):
        if name in tables:
            keep |= isin(patients["patient_id"], tables[name]["patient_id"])
    patients = patients.loc[keep.to_numpy()].copy()
    for col in ("referred_by", "guardian_id"):
        unknown = patients[col].notna() & ~isin(patients[col], patients["patient_id"])
        patients.loc[unknown, col] = pd.NA
    for channel in CHANNELS:
        _undo_later(patients, f"{channel}_consent", end)
        _undo_later(patients, f"{channel}_opt_out", end)
    _undo_later(patients, "night_ad_consent", end)
    return patients.reset_index(drop=True)


def _undo_later(patients: pd.DataFrame, flag: str, end: pd.Timestamp) -> None:
    late = (patients[f"{flag}_date"] >= end).fillna(False)
    patients.loc[late, flag] = False
    patients.loc[late, f"{flag}_date"] = pd.NaT


def _before(df: pd.DataFrame, column: str, end: pd.Timestamp) -> pd.DataFrame:
    return df.loc[~(df[column] >= end).fillna(False).to_numpy()].reset_index(drop=True)


def month_end(month: str) -> pd.Timestamp:
    """The last day of `month` (``YYYY-MM``).

    Raises
    ------
    ValueError
        If `month` is not ``YYYY-MM``.
    """
    try:
        period = pd.Period(month, freq="M")
    except (ValueError, TypeError):
        raise ValueError(f"month must look like 2026-10, not {quoted(month)}") from None
    if f"{period}" != month:
        raise ValueError(f"month must look like 2026-10, not {quoted(month)}")
    return period.end_time.normalize()
