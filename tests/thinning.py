"""Thin the demo clinic the way real exports are thin: fewer tables, columns, months and patients.

Used by the sufficiency property test (``tests/test_thin_clinics.py``) and by
``benchmarks/bench_thin_clinics.py``, which runs a larger random sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crm_analysis.contract import TABLES

__all__ = ["Thinning", "OPTIONAL_TABLES", "OPTIONAL_COLUMNS", "thin_tables", "write_export"]

OPTIONAL_TABLES = ("appointments", "reminders", "contacts", "pregnancies")
#: Columns an export may lack: the contract's optional columns of patients and visits.
OPTIONAL_COLUMNS = tuple((table, col.name) for table in ("patients", "visits")
                         for col in TABLES[table].columns if not col.required)


@dataclass(frozen=True)
class Thinning:
    """How to thin a clinic: what to drop and how much to keep."""

    months: int = 14
    patients: int = 500
    drop_tables: frozenset = field(default_factory=frozenset)
    drop_columns: frozenset = field(default_factory=frozenset)
    one_department: bool = False
    no_phones: bool = False
    seed: int = 0


def _dates(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_datetime(frame[column], errors="coerce")


def thin_tables(tables: dict[str, pd.DataFrame], how: Thinning, as_of: str) -> dict[str, pd.DataFrame]:
    """A thinned, still consistent copy of `tables` (the contract's tables as the demo generator writes them).

    Keeps the last ``how.months`` calendar months up to `as_of` (bookings ahead stay), ``how.patients``
    patients drawn among those seen in that window, and clears references to patients left out.
    """
    rng = np.random.default_rng(how.seed)
    start = (pd.Timestamp(as_of).to_period("M") - (how.months - 1)).start_time
    visits = tables["visits"]
    visits = visits.loc[(_dates(visits, "visit_date") >= start).to_numpy()]
    seen = visits["patient_id"].astype(str).unique()
    keep = set(rng.choice(np.sort(seen), size=min(how.patients, len(seen)), replace=False))
    mine = lambda frame: frame.loc[frame["patient_id"].astype(str).isin(keep).to_numpy()]  # noqa: E731
    out = {"patients": mine(tables["patients"]).copy(), "visits": mine(visits).copy()}
    for col in ("referred_by", "guardian_id"):
        ref = out["patients"][col]
        out["patients"][col] = ref.where(ref.astype(str).isin(keep), None)
    if "appointments" in tables and "appointments" not in how.drop_tables:
        appts = mine(tables["appointments"])
        out["appointments"] = appts.loc[(_dates(appts, "scheduled_at") >= start).to_numpy()].copy()
        if "reminders" in tables and "reminders" not in how.drop_tables:
            rem = tables["reminders"]
            out["reminders"] = rem.loc[rem["appointment_id"].isin(out["appointments"]["appointment_id"])].copy()
    if "contacts" in tables and "contacts" not in how.drop_tables:
        contacts = mine(tables["contacts"])
        out["contacts"] = contacts.loc[(_dates(contacts, "sent_at") >= start).to_numpy()].copy()
    if "pregnancies" in tables and "pregnancies" not in how.drop_tables:
        out["pregnancies"] = mine(tables["pregnancies"]).copy()
    for table, column in how.drop_columns:
        out[table] = out[table].drop(columns=[column], errors="ignore")
    if how.one_department:
        for name in ("visits", "appointments"):
            if name in out and "department" in out[name].columns:
                out[name]["department"] = "내과"
    if how.no_phones and "phone" in out["patients"].columns:
        out["patients"]["phone"] = None
    return out


def write_export(tables: dict[str, pd.DataFrame], folder: Path) -> Path:
    """Write `tables` as a folder of CSV files named like the contract."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder
