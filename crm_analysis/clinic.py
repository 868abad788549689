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

from crm_analysis.contract import CHANNELS, TABLES
from crm_analysis.exceptions import MissingTableError
from crm_analysis.validation import ValidationReport

__all__ = ["ClinicData"]


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

        Use this for back-tests: nothing recorded after `as_of` survives.

        - visits, reminders and contacts after `as_of` are dropped;
        - appointments booked after `as_of` are dropped; those scheduled after
          it become ``booked`` again, and cancellations made after it are undone;
        - patients first seen after `as_of` are dropped;
        - pregnancy outcomes after `as_of` are unknown again;
        - consents given and opt-outs made after `as_of` are undone.
        """
        as_of = pd.Timestamp(as_of).normalize()
        end = as_of + pd.Timedelta(days=1)
        t = dict(self.tables)
        patients = t["patients"]
        patients = patients.loc[~(patients["first_visit_date"] >= end).fillna(False).to_numpy()].copy()
        for channel in CHANNELS:
            late = (patients[f"{channel}_consent_date"] >= end).fillna(False)
            patients.loc[late, f"{channel}_consent"] = False
            patients.loc[late, f"{channel}_consent_date"] = pd.NaT
            late = (patients[f"{channel}_opt_out_date"] >= end).fillna(False)
            patients.loc[late, f"{channel}_opt_out"] = False
            patients.loc[late, f"{channel}_opt_out_date"] = pd.NaT
        late = (patients["night_ad_consent_date"] >= end).fillna(False)
        patients.loc[late, "night_ad_consent"] = False
        patients.loc[late, "night_ad_consent_date"] = pd.NaT
        t["patients"] = patients.reset_index(drop=True)
        t["visits"] = _before(t["visits"], "visit_date", end)
        if "appointments" in t:
            appts = _before(t["appointments"], "booked_at", end).copy()
            undone = (appts["cancelled_at"] >= end).fillna(False)
            appts.loc[undone, "cancelled_at"] = pd.NaT
            pending = (appts["scheduled_at"] >= end).fillna(False) | undone
            appts["status"] = appts["status"].astype("object").where(~pending, "booked").astype("category")
            t["appointments"] = appts
        if "reminders" in t:
            rem = t["reminders"]
            t["reminders"] = rem.loc[~(rem["sent_at"] >= end).fillna(False).to_numpy()].reset_index(drop=True)
        if "contacts" in t:
            t["contacts"] = _before(t["contacts"], "sent_at", end)
        if "pregnancies" in t:
            preg = t["pregnancies"].copy()
            late = (preg["outcome_date"] >= end).fillna(False)
            preg.loc[late, "outcome"] = pd.NA
            preg.loc[late, "outcome_date"] = pd.NaT
            # A pregnancy is known from about six weeks (due date minus 34 weeks).
            known = preg["due_date"] - pd.Timedelta(weeks=34) < end
            t["pregnancies"] = preg.loc[known.to_numpy()].reset_index(drop=True)
        return replace(self, tables=t, as_of=as_of)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={len(df):,}" for n, df in self.tables.items())
        as_of = f"{self.as_of:%Y-%m-%d}" if self.as_of is not None else "not given"
        return f"ClinicData(source={self.source!r}, as_of={as_of}, {counts})"

    def _repr_html_(self) -> str:
        as_of = f"{self.as_of:%Y-%m-%d}" if self.as_of is not None else "not given"
        n_findings = len(self.report.to_frame())
        return (f"<h4>ClinicData: {escape(self.source)}</h4><p>as of {as_of}; "
                f"{n_findings} data-quality finding(s)</p>" + self.row_counts().to_html(index=False))


def _before(df: pd.DataFrame, column: str, end: pd.Timestamp) -> pd.DataFrame:
    return df.loc[~(df[column] >= end).fillna(False).to_numpy()].reset_index(drop=True)
