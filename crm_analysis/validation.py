"""Enforce the data contract on loaded tables.

All checks run before anything is raised, so one :class:`DataValidationError`
lists every problem: table, column, row numbers and example values. Column
rules (types, missing values, uniqueness, allowed values, ranges) are pandera
schemas built from :mod:`crm_analysis.contract`; rules that span columns or
tables are vectorised checks here. Every reference (an id pointing at another
table) is looked up once and shared by the rules that need it: sorted ids of
one length by their numbers, other large columns by a DuckDB join, the rest
by Arrow's hash, never row by row in Python.

Two policies exist for bad rows. ``"raise"`` (the default) refuses the data.
``"quarantine"`` removes the offending rows, keeps them in
``report.quarantined`` with the reason, and reports them, so nothing is lost
silently; rows that referred to a quarantined row are quarantined in turn.

Row numbers count data rows from 1 in the order the source gave them, header
excluded.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

import numpy as np
import pandas as pd
import pandera.pandas as pandera
import pyarrow as pa

from crm_analysis.coercion import BLOCK_ROWS, DEFAULT_TIMEZONE, TEXT, at_midnight, coerce_column, is_arrow_text
from crm_analysis.contract import REQUIRED_TABLES, TABLES, Column, Table, get_table
from crm_analysis.exceptions import MAX_EXAMPLES, DataValidationError, Problem, shorten
from crm_analysis.findings import RowIssue, ValidationReport, row_issue
from crm_analysis.ids import first_positions, strictly_increasing

__all__ = [
    "RowIssue",
    "ValidationReport",
    "conform_table",
    "contract_schema",
    "validate_tables",
    "ON_INVALID",
]

ON_INVALID = ("raise", "quarantine")

_SCI_NOTATION_ID = r"^[0-9]+(\.[0-9]+)?[eE][+-]?[0-9]+$"


# ---------------------------------------------------------------------------
# Per-table conformance: columns present, types read
# ---------------------------------------------------------------------------

def conform_table(raw: pd.DataFrame, table: Table | str, *, formats: dict[str, str] | None = None,
                  source: str | None = None,
                  timezone: str = DEFAULT_TIMEZONE) -> tuple[pd.DataFrame, list[Problem], list[RowIssue], list[Problem]]:
    """Give a raw table exactly the contract's columns, in contract types.

    Parameters
    ----------
    raw : pandas.DataFrame
        Columns already renamed to contract names. Its index holds row numbers.
    table : Table or str
        The contract table.
    formats : dict, optional
        Explicit ``strptime`` formats per date/datetime column.
    source : str, optional
        Where the table came from, for messages.
    timezone : str
        The clinic's time zone, for sources that store zoned moments.

    Returns
    -------
    typed : DataFrame
        Contract columns only, in contract order. Missing optional columns are
        added empty; unreadable values are missing.
    structural : list of Problem
        Missing required columns (these always stop loading).
    issues : list of RowIssue
        Unreadable values, by column.
    notes : list of Problem
        Informational findings, such as ignored extra columns.
    """
    table = get_table(table) if isinstance(table, str) else table
    formats = formats or {}
    where = f" in {source}" if source else ""
    structural, issues, notes = [], [], []
    missing = [c for c in table.required_columns if c not in raw.columns]
    for col in missing:
        structural.append(Problem(
            table.name, col,
            f"required column '{col}' ({table.column(col).ko}) is missing{where}; "
            f"columns present: {', '.join(map(shorten, raw.columns)) or 'none'}. Rename the column or map it in the mapping file.",
            check="required_column"))
    extra = [c for c in raw.columns if c not in table.column_names]
    if extra:
        notes.append(Problem(table.name, None, f"ignored columns not in the contract{where}: {', '.join(map(shorten, extra))}",
                             check="extra_columns"))
    out = {}
    for col in table.columns:
        if col.name not in raw.columns:
            out[col.name] = coerce_column(pd.Series(pd.NA, index=raw.index, dtype="object"), col.dtype)[0]
            continue
        typed, bad = coerce_column(raw[col.name], col.dtype, formats.get(col.name), timezone)
        if len(bad):
            kind = {"date": "a date", "datetime": "a date-time", "int": "a whole number", "float": "a number",
                    "bool": "yes/no"}.get(col.dtype, col.dtype)
            issues.append(RowIssue(table.name, col.name, f"type_{col.dtype}",
                                   f"values that cannot be read as {kind}{where}", bad,
                                   tuple(raw[col.name].loc[bad[:MAX_EXAMPLES]].tolist())))
        out[col.name] = typed
    return pd.DataFrame(out, index=raw.index, copy=False), structural, issues, notes  # the typed columns as they are


# ---------------------------------------------------------------------------
# Column rules: pandera schemas from the contract
# ---------------------------------------------------------------------------

#: The pandas dtype each contract type must have after :func:`conform_table` (category columns are checked by value).
_SCHEMA_DTYPES = {"date": "datetime64[ns]", "datetime": "datetime64[ns]", "int": "Int64", "float": "float64",
                  "bool": "boolean", "id": TEXT, "string": TEXT}


@lru_cache(maxsize=None)
def contract_schema(table_name: str) -> pandera.DataFrameSchema:
    """The pandera schema of one contract table (column-level rules).

    Types are enforced for date, datetime and numeric columns; text and
    category columns are checked by value.
    """
    table = get_table(table_name)
    columns = {}
    for col in table.columns:
        checks = []
        if col.allowed:
            checks.append(pandera.Check.isin(list(col.allowed)))
        if col.min_value is not None:
            checks.append(pandera.Check.ge(col.min_value))
        columns[col.name] = pandera.Column(_SCHEMA_DTYPES.get(col.dtype), checks=checks, nullable=col.nullable,
                                           unique=col.unique, required=True)
    return pandera.DataFrameSchema(columns, strict=True, ordered=True, name=table.name)


_CHECK_WORDS = {
    "not_nullable": ("missing", "missing values in a column that must always be filled"),
    "field_uniqueness": ("duplicate_id", "duplicate values where every row needs its own (rows differ in other columns)"),
}


def _surely_valid(table: Table, df: pd.DataFrame) -> bool:
    """True only when :func:`contract_schema` would find nothing wrong with `df`.

    A quick column-by-column check of the same rules, stricter where that is
    simpler (any repeated value of a unique column, missing ones included,
    fails it). pandera, and its report of what is wrong, then runs only on
    tables that may break a rule.
    """
    if list(df.columns) != table.column_names:
        return False
    try:
        return all(_column_surely_valid(col, df[col.name]) for col in table.columns)
    except (TypeError, ValueError):  # values of an unexpected kind: pandera says what is wrong
        return False


def _column_surely_valid(col: Column, values: pd.Series) -> bool:
    expected = _SCHEMA_DTYPES.get(col.dtype)
    if expected is not None and values.dtype != expected:
        return False
    missing = values.isna().to_numpy(dtype=bool)
    if not col.nullable and missing.any():
        return False
    if col.unique and not strictly_increasing(values) and values.duplicated().any():
        return False
    if col.allowed and not (_flag(values.isin(list(col.allowed))) | missing).all():
        return False
    return col.min_value is None or bool((_flag(values >= col.min_value) | missing).all())


def _pandera_issues(table: Table, df: pd.DataFrame) -> list[RowIssue]:
    if _surely_valid(table, df):
        return []
    try:
        contract_schema(table.name).validate(df, lazy=True, inplace=True)  # checks only: no copy
    except pandera.errors.SchemaErrors as err:
        cases = err.failure_cases
    else:
        return []
    issues = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        labels = pd.Index(pd.unique(group["index"].dropna())).astype("int64") if group["index"].notna().any() \
            else pd.Index([], dtype="int64")
        col = table.column(column) if column in table.column_names else None
        if check in _CHECK_WORDS:
            name, message = _CHECK_WORDS[check]
        elif str(check).startswith("isin"):
            name, message = "allowed_values", f"values outside the allowed set {', '.join(col.allowed)}"
        elif str(check).startswith("greater_than_or_equal_to"):
            name, message = "negative", f"values below the minimum of {col.min_value:g}"
        else:
            name, message = str(check), f"failed check {check}"
        examples = tuple(pd.unique(group["failure_case"].dropna())[:MAX_EXAMPLES].tolist())
        issues.append(RowIssue(table.name, column, name, message, labels.sort_values(), examples))
    return issues


# ---------------------------------------------------------------------------
# Rules across columns and tables
# ---------------------------------------------------------------------------

def _flag(condition: pd.Series) -> np.ndarray:
    """A condition as plain booleans, missing counting as False (for any nullable dtype)."""
    return condition.fillna(False).to_numpy(dtype=bool)


def _is_day_precision(values: pd.Series) -> bool:
    """True when every moment is at midnight: the source recorded days only."""
    if values.dtype != "datetime64[ns]":
        present = values.dropna()
        return bool(len(present)) and bool((present == present.dt.normalize()).all())
    return bool(values.notna().any()) and at_midnight(values)


def _first_match(keys: pd.Series, index: pd.Series, values: pd.Series,
                 positions: np.ndarray | None = None) -> pd.Series:
    """``keys.map(values.set_axis(index))``, the first row counting where `index` repeats a value.

    `positions`, when given, are :func:`~crm_analysis.ids.first_positions` of `keys` in `index`, worked out already.
    """
    positions = first_positions(keys, index) if positions is None else positions
    return pd.Series(values.array.take(positions, allow_fill=True), index=keys.index, name=keys.name)


def _reference_positions(tables: dict[str, pd.DataFrame]) -> dict[tuple[str, str], np.ndarray]:
    """:func:`~crm_analysis.ids.first_positions` of every reference column in the column it points at, when that table is there."""
    found = {}
    for name, df in tables.items():
        for col in get_table(name).columns:
            if col.references and col.references.split(".")[0] in tables:
                parent_table, parent_col = col.references.split(".")
                found[name, col.name] = first_positions(df[col.name], tables[parent_table][parent_col])
    return found


def _row_rules(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp | None,
               links: dict[tuple[str, str], np.ndarray] | None = None) -> list[RowIssue]:
    issues: list[RowIssue | None] = []
    if as_of is not None:
        cutoff = as_of.normalize() + pd.Timedelta(days=1)
        for name, df in tables.items():
            for col in get_table(name).columns:
                if col.event_time:
                    issues.append(row_issue(name, col.name, "after_as_of",
                                         f"dates after as_of {as_of:%Y-%m-%d}: the data cannot record them yet",
                                         df, (df[col.name] >= cutoff).fillna(False)))
    patients = tables.get("patients", pd.DataFrame(columns=["patient_id", "referred_by", "guardian_id"]))
    for col in ("referred_by", "guardian_id"):
        issues.append(row_issue("patients", col, "self_reference", f"{col} points at the patient themself",
                             patients, (patients[col] == patients["patient_id"]).fillna(False)))
    if "appointments" in tables:
        appts = tables["appointments"]
        day_only = day_precision = _is_day_precision(appts["scheduled_at"])
        sched = appts["scheduled_at"]
        booked = appts["booked_at"].dt.normalize() if day_only else appts["booked_at"]
        unit = "day" if day_only else "moment"
        issues.append(row_issue("appointments", "scheduled_at", "scheduled_before_booked",
                             f"appointments scheduled before they were booked (compared by {unit})",
                             appts, (sched < booked).fillna(False), ["booked_at", "scheduled_at"]))
        issues.append(row_issue("appointments", "cancelled_at", "cancelled_before_booked",
                             "cancellations recorded before the booking was made",
                             appts, (appts["cancelled_at"] < appts["booked_at"]).fillna(False),
                             ["booked_at", "cancelled_at"]))
        if as_of is not None:
            future = appts["scheduled_at"] >= as_of.normalize() + pd.Timedelta(days=1)
            outcome_known = appts["status"].isin(["attended", "no_show"])
            issues.append(row_issue("appointments", "status", "future_outcome",
                                 f"appointments after as_of {as_of:%Y-%m-%d} already marked attended or no_show",
                                 appts, (future & outcome_known).fillna(False), ["scheduled_at", "status"]))
    if "reminders" in tables and "appointments" in tables:
        rem, appts = tables["reminders"], tables["appointments"]
        when = _first_match(rem["appointment_id"], appts["appointment_id"], appts["scheduled_at"],
                            (links or {}).get(("reminders", "appointment_id")))
        sent = rem["sent_at"]
        if day_precision:
            sent = sent.dt.normalize()
        issues.append(row_issue("reminders", "sent_at", "sent_after_appointment",
                             "reminders sent after the appointment's scheduled time",
                             rem, (sent > when).fillna(False), ["appointment_id", "sent_at"]))
    if "pregnancies" in tables:
        preg = tables["pregnancies"]
        issues.append(row_issue("pregnancies", "outcome_date", "outcome_pairing",
                             "outcome and outcome_date must be given together",
                             preg, preg["outcome"].isna() != preg["outcome_date"].isna(), ["outcome", "outcome_date"]))
        issues.append(row_issue("pregnancies", "due_date", "duplicate_id",
                             "the same patient and due date appear more than once with different details",
                             preg, preg.duplicated(["patient_id", "due_date"], keep=False), ["patient_id", "due_date"]))
    return [i for i in issues if i is not None]


def _foreign_key_issues(tables: dict[str, pd.DataFrame],
                        links: dict[tuple[str, str], np.ndarray] | None = None) -> list[RowIssue]:
    links = _reference_positions(tables) if links is None else links
    issues = []
    for (name, column), positions in links.items():
        df = tables[name]
        parent_table, parent_col = get_table(name).column(column).references.split(".")
        orphan = df[column].notna().to_numpy(dtype=bool) & (positions < 0)
        issue = row_issue(name, column, "unknown_reference",
                          f"values not found in {parent_table}.{parent_col}", df, orphan)
        if issue:
            issues.append(issue)
    return issues


def _may_hold_e(values: pd.Series) -> bool:
    """False only when no byte of the Arrow text is ``e`` or ``E``, which scientific notation needs.

    Scanning the bytes is far cheaper than the regular expression, which then
    runs only on columns that could match it.
    """
    if not is_arrow_text(values):
        return True
    array = pa.array(values.array)
    for chunk in array.chunks if isinstance(array, pa.ChunkedArray) else [array]:
        data = chunk.buffers()[2]
        if data is not None and len(chunk) > chunk.null_count:
            text = bytes(memoryview(data))
            if text.find(b"e") >= 0 or text.find(b"E") >= 0:
                return True
    return False


def _warnings(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp | None,
              first_seen: pd.Series) -> list[Problem]:
    found: list[RowIssue | None] = []
    for name, df in tables.items():
        for col in get_table(name).columns:
            if col.dtype == "id" and _may_hold_e(df[col.name]):
                found.append(row_issue(name, col.name, "id_scientific_notation",
                                    "ids written in scientific notation (a spreadsheet may have damaged them); "
                                    "they are kept as text, so check they still identify the right records",
                                    df, df[col.name].str.fullmatch(_SCI_NOTATION_ID).fillna(False).to_numpy()))
    visits = tables["visits"]
    found.append(row_issue("visits", "inpatient_days", "days_outside_stay",
                        "inpatient days recorded on visits that are not inpatient stays",
                        visits, _flag(visits["inpatient_days"] > 0) & ~_flag(visits["visit_type"] == "inpatient"),
                        ["visit_type", "inpatient_days"]))
    if "appointments" in tables and _is_day_precision(tables["appointments"]["scheduled_at"]):
        found.append(RowIssue("appointments", "scheduled_at", "day_precision",
                              "appointment times hold days only (no time of day): lead times are counted in whole "
                              "days and hour-based reminders (such as 2 hours before) cannot be placed",
                              pd.Index([], dtype="int64")))
    patients = tables["patients"]
    if as_of is not None:
        age = (as_of - patients["birth_date"]).dt.days / 365.25
        found.append(row_issue("patients", "birth_date", "age_over_105", "patients older than 105 years",
                            patients, (age > 105).fillna(False)))
    stated = patients["first_visit_date"]
    later = stated > first_seen
    found.append(row_issue("patients", "first_visit_date", "first_visit_after_visits",
                        "first_visit_date is later than the patient's earliest visit", patients,
                        later.fillna(False).to_numpy(), ["patient_id", "first_visit_date"]))
    for channel in ("sms", "email", "kakao"):
        undated = patients[f"{channel}_consent"].eq(True) & patients[f"{channel}_consent_date"].isna()
        found.append(row_issue("patients", f"{channel}_consent_date", "consent_without_date",
                            "consent recorded without a date; it will be treated as expired", patients,
                            undated.fillna(False).to_numpy(), "patient_id"))
    return [i.to_problem() for i in found if i is not None]


def _exact_duplicates(df: pd.DataFrame) -> np.ndarray:
    """``df.duplicated(keep="first")`` as booleans, narrowed column by column.

    Two equal rows are equal in every column, so only rows whose first
    column repeats can be copies; of those, only rows whose first two columns
    repeat together; and so on. Each column is read only for the rows still
    in question, which on the contract's tables (an id first, or an id soon
    after) leaves few or none after a column or two, instead of hashing every
    row whole.
    """
    if df.empty or not len(df.columns):
        return df.duplicated(keep="first").to_numpy(dtype=bool)
    dup = np.zeros(len(df), dtype=bool)
    if strictly_increasing(df.iloc[:, 0]):  # as exports usually come: every value differs
        return dup
    rows = np.arange(len(df))
    groups = np.zeros(len(df), dtype=np.int64)  # rows in one group agree on every column read so far
    for position in range(df.shape[1]):
        column = df.iloc[:, position] if len(rows) == len(df) else df.iloc[rows, position]  # no copy while all remain
        codes, uniques = pd.factorize(column)  # missing values get -1: equal to each other
        groups, _ = pd.factorize(groups * (len(uniques) + 1) + (codes + 1))
        repeated = pd.Series(groups).duplicated(keep=False).to_numpy()
        rows, groups = rows[repeated], groups[repeated]
        if not len(rows):
            return dup
    dup[rows] = pd.Series(groups).duplicated(keep="first").to_numpy()
    return dup


def _drop_exact_duplicates(tables: dict[str, pd.DataFrame], report: ValidationReport) -> dict[str, pd.DataFrame]:
    out = {}
    for name, df in tables.items():
        dup = _exact_duplicates(df)
        if dup.any():
            report.repairs.append(RowIssue(name, None, "exact_duplicate",
                                           "exact duplicate rows removed (the first copy is kept)",
                                           df.index[dup]).to_problem())
            df = df.loc[~dup]
        out[name] = df
    return out


def _first_seen(visits: pd.DataFrame, patients: pd.DataFrame, positions: np.ndarray | None = None) -> pd.Series:
    """Each patient's earliest visit date (missing without visits), on the index of `patients`.

    `positions`, when given, are :func:`~crm_analysis.ids.first_positions` of the visits' patient ids
    among unique patient ids, so no id is hashed again.
    """
    if positions is None or visits["visit_date"].dtype != "datetime64[ns]":
        earliest = visits.groupby("patient_id", observed=True)["visit_date"].min()
        return patients["patient_id"].map(earliest)
    ns = visits["visit_date"].to_numpy().view(np.int64)
    nat = np.iinfo(np.int64).min
    earliest = np.full(len(patients), np.iinfo(np.int64).max, dtype=np.int64)
    for start in range(0, len(ns), BLOCK_ROWS):  # in blocks: no 20-million-row temporaries
        at, day = positions[start:start + BLOCK_ROWS], ns[start:start + BLOCK_ROWS]
        keep = (at >= 0) & (day != nat)
        np.minimum.at(earliest, at[keep], day[keep])
    earliest[earliest == np.iinfo(np.int64).max] = nat
    return pd.Series(earliest.view("datetime64[ns]"), index=patients.index, name="patient_id")


def _fill_first_visit(tables: dict[str, pd.DataFrame], report: ValidationReport, first_seen: pd.Series) -> None:
    patients = tables["patients"]
    missing = patients["first_visit_date"].isna()
    if not missing.any():
        return
    filled = first_seen[missing]
    n_filled = int(filled.notna().sum())
    if n_filled:
        patients = patients.copy()
        patients.loc[missing, "first_visit_date"] = filled.astype("datetime64[ns]")
        tables["patients"] = patients
        report.repairs.append(Problem("patients", "first_visit_date",
                                      f"first_visit_date was missing and has been taken from visits for {n_filled:,} patients",
                                      n_rows=n_filled, check="derived_first_visit"))


#: Added to the "required table missing" message: the way out when a table is not exported as such.
_MISSING_TABLE_HINTS = {
    "visits": ". Add a visits file (visits or 내원), or, when the export has appointments but no visits, derive one "
              "outpatient visit per attended appointment with a mapping file: 'from_appointments: attended' under "
              "tables: visits: (see docs/mapping.md)",
}


def validate_tables(tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp | None = None,
                    on_invalid: str = "raise", pending: Iterable[RowIssue] = (),
                    structural: Iterable[Problem] = (),
                    report: ValidationReport | None = None,
                    raw: dict[str, pd.DataFrame] | None = None) -> tuple[dict[str, pd.DataFrame], ValidationReport]:
    """Check conformed tables against every contract rule.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Tables from :func:`conform_table`, indexed by source row number.
    as_of : Timestamp, optional
        The extraction date. Event dates after it are errors.
    on_invalid : {"raise", "quarantine"}
        What to do with rows that break a rule.
    pending : iterable of RowIssue
        Row issues already found while reading (unreadable values).
    structural : iterable of Problem
        Problems that stop loading whatever the policy (missing columns, ...).
    report : ValidationReport, optional
        Report to add findings to.
    raw : dict of str to DataFrame, optional
        The tables as the source gave them (same index), so quarantined rows
        keep their original values.

    Returns
    -------
    tables : dict of str to DataFrame
        Valid tables with a fresh 0-based index and category dtypes.
    report : ValidationReport

    Raises
    ------
    DataValidationError
        With every problem found, when the data cannot be used.
    """
    if on_invalid not in ON_INVALID:
        raise ValueError(f"on_invalid must be one of {ON_INVALID}, not {on_invalid!r}")
    report = report or ValidationReport()
    problems = list(structural)
    for name in REQUIRED_TABLES:
        if name not in tables:
            problems.append(Problem(name, None, f"required table '{name}' ({get_table(name).ko}) is missing from the source"
                                                + _MISSING_TABLE_HINTS.get(name, ""), check="missing_table"))
        elif tables[name].empty:
            problems.append(Problem(name, None, f"required table '{name}' has no rows", check="empty_table"))
    # Tables whose structure is broken are left out of the row checks, so that
    # one missing column does not hide the problems elsewhere.
    broken = {p.table for p in problems}
    checkable = {name: df for name, df in tables.items() if name not in broken}

    checkable = _drop_exact_duplicates(checkable, report)
    issues = [i for i in pending if i.table not in broken]
    for name, df in checkable.items():
        issues += _pandera_issues(TABLES[name], df)
    links = _reference_positions(checkable)  # once for both: hashing millions of ids is the costly part
    issues += _row_rules(checkable, as_of, links)
    issues += _foreign_key_issues(checkable, links)

    unplaceable = [i for i in issues if not len(i.labels)]
    if problems or (issues and (on_invalid == "raise" or unplaceable)):
        raise DataValidationError(problems + [i.to_problem() for i in issues])
    tables = checkable
    while issues:
        tables = _quarantine(tables, issues, report, raw)
        issues = _foreign_key_issues(tables)  # rows that pointed at removed rows
    emptied = [name for name in REQUIRED_TABLES if tables[name].empty]
    if emptied:
        raise DataValidationError([Problem(name, None, f"every row of the required table '{name}' was quarantined; "
                                                       "nothing is left to analyse", check="empty_table")
                                   for name in emptied] + report.quarantine_problems)

    unchanged = tables is checkable  # nothing quarantined: the patient ids looked up for the visits still hold
    first_seen = _first_seen(tables["visits"], tables["patients"],
                             links.get(("visits", "patient_id")) if unchanged else None)
    _fill_first_visit(tables, report, first_seen)
    report.warnings += _warnings(tables, as_of, first_seen)
    return {name: _finalise(name, df) for name, df in tables.items()}, report


def _quarantine(tables: dict[str, pd.DataFrame], issues: list[RowIssue], report: ValidationReport,
                raw: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """Move the rows named by `issues` into ``report.quarantined``.

    The quarantined rows hold the values as the source gave them (from `raw`,
    when available), so they can be corrected and loaded again.
    """
    raw = raw or {}
    out = dict(tables)
    for name, df in tables.items():
        mine = [i for i in issues if i.table == name and len(i.labels)]
        if not mine:
            continue
        reason = pd.Series("", index=df.index, dtype="object")
        for issue in mine:
            hit = df.index.isin(issue.labels)
            reason[hit] = reason[hit] + np.where(reason[hit] == "", "", "; ") + f"{issue.column}: {issue.check}"
        removed = reason != ""
        source = raw.get(name)
        if source is not None and source.index.equals(source.index.unique()) and \
                df.index[removed.to_numpy()].isin(source.index).all():
            as_given = source.loc[df.index[removed.to_numpy()]]
        else:
            as_given = df.loc[removed.to_numpy()]
        report.add_quarantined(name, as_given.assign(problem=reason[removed].to_numpy()))
        out[name] = df.loc[~removed.to_numpy()]
    report.quarantine_problems += [i.to_problem() for i in issues if len(i.labels)]
    return out


def _finalise(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """`df` with a fresh 0-based index and category dtypes, sharing the other columns' memory (no copy)."""
    columns = {}
    categories = {col.name for col in get_table(name).columns if col.dtype == "category"}
    for column in df.columns:
        values = df[column]
        columns[column] = (_as_category(values) if column in categories else values).array
    return pd.DataFrame(columns, index=pd.RangeIndex(len(df)), copy=False)


def _as_category(values: pd.Series) -> pd.Series:
    """``values.astype("category")``: categories sorted, each one used.

    A column :func:`conform_table` kept categorical (text categories, maybe
    unused or unsorted after rows were dropped) is tidied by its codes rather
    than read again row by row.
    """
    if not (isinstance(values.dtype, pd.CategoricalDtype) and isinstance(values.cat.categories.dtype, pd.StringDtype)
            and values.cat.categories.dtype.storage == "pyarrow"):
        return values.astype("category")
    categories, codes = values.cat.categories, values.cat.codes.to_numpy()
    counts = np.zeros(len(categories) + 1, dtype=np.int64)
    for start in range(0, len(codes), BLOCK_ROWS):  # in blocks: the codes are int8, their 64-bit copy would not be
        counts += np.bincount(codes[start:start + BLOCK_ROWS].astype(np.intp) + 1, minlength=len(categories) + 1)
    used = counts[1:] > 0  # missing (-1) counts at 0
    if used.all() and categories.is_monotonic_increasing:
        return values
    kept = categories[used]
    order = kept.argsort()
    # in the codes' own width; the last entry is where code -1 looks
    recode = np.full(len(categories) + 1, -1, dtype=codes.dtype)
    recode[np.flatnonzero(used)[order]] = np.arange(len(kept))
    return pd.Series(pd.Categorical.from_codes(recode[codes], dtype=pd.CategoricalDtype(kept[order]), validate=False),
                     index=values.index, name=values.name)
