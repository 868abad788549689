"""Mapping files: a clinic's own export onto the data contract, without code.

A mapping is YAML. Every key is optional except ``tables``::

    version: 1
    name: 우리의원 EMR export
    encoding: auto            # or cp949 / utf-8 to force one
    on_invalid: raise         # or quarantine: set bad rows aside and report them
    files:                    # short names for raw inputs (file, sheet or SQL table)
      appts: appointments_2016.csv.gz
    tables:
      patients:
        from: 환자목록          # raw table: a file stem, sheet, SQL table or a `files` key
        columns:              # contract column: source column
          patient_id: 환자번호
          sex: 성별
        values:               # contract column: {source value: contract value}
          sex: {남: M, 여: F}
        formats:              # strptime formats for dates the loader cannot guess
          birth_date: "%Y%m%d"
        constants:            # contract column: fixed value
          record_status: active
        where:                # keep only rows whose source column has one of these values
          구분: [외래, 입원]
        distinct:             # one row per key, for tables built from event-level files
          key: patient_id
          order_by: 예약일      # keep the row with the largest value of this source column
        derive:               # contract columns computed from source columns (crm_analysis.io.derive)
          reminder_id: {template: "R{AppointmentID}"}
          birth_date: {from_age: Age, at: AppointmentDay}
      visits:
        from_appointments: attended   # no visit export: one outpatient visit per attended appointment

``derive`` also computes day differences (``days_between``), dates from
year/month/day columns (``date_from_parts``) and values looked up in another
raw table of the same source, by key, optionally summed (``lookup``); see
:mod:`crm_analysis.io.derive`.

Without a mapping, a raw table named like a contract table (``patients`` or
its Korean name ``환자``) is used, and columns named like contract columns (or
their Korean labels) are recognised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from crm_analysis.coercion import to_id
from crm_analysis.contract import TABLES, get_table
from crm_analysis.exceptions import DataValidationError, MappingError, Problem, quoted, shorten
from crm_analysis.io.derive import LookupReader, check_derive, derive_column, derive_source_columns, rows_where
from crm_analysis.io.sources import Source

__all__ = ["Mapping", "TableMapping", "read_mapping", "default_raw_tables"]

_TOP_KEYS = {"version", "name", "description", "encoding", "on_invalid", "timezone", "files", "tables"}
_TABLE_KEYS = {"from", "columns", "values", "formats", "constants", "where", "distinct", "derive",
               "from_appointments"}


@dataclass(frozen=True)
class TableMapping:
    """How one contract table is built from one raw table."""

    table: str
    source: str | None
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    where: dict[str, list[str]] = field(default_factory=dict)
    distinct: dict[str, str] = field(default_factory=dict)
    derive: dict[str, dict[str, Any]] = field(default_factory=dict)
    from_appointments: str | None = None

    def source_columns(self) -> set[str]:
        """Every source column this mapping reads."""
        used = set(self.columns.values()) | set(self.where)
        if self.distinct.get("order_by"):
            used.add(self.distinct["order_by"])
        for spec in self.derive.values():
            used |= derive_source_columns(spec)
        return used


@dataclass(frozen=True)
class Mapping:
    """A parsed, checked mapping file."""

    tables: dict[str, TableMapping]
    name: str = ""
    description: str = ""
    encoding: str = "auto"
    on_invalid: str | None = None
    timezone: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    path: Path | None = None


def _fail(problems: list[Problem]) -> None:
    if problems:
        raise MappingError(problems)


def _check_str_dict(value: Any, where: str, column: str | None, problems: list[Problem]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(Problem("mapping", column, f"{where} must be a mapping of name: value, not {type(value).__name__}",
                                check="mapping_shape"))
        return {}
    return {str(k): v for k, v in value.items()}


def read_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file.

    Raises
    ------
    MappingError
        Listing every problem: YAML syntax, unknown keys, tables or contract
        columns, and malformed entries.
    """
    path = Path(path)
    if not path.is_file():
        _fail([Problem("mapping", None, f"the mapping file {path} does not exist", check="missing_mapping")])
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        _fail([Problem("mapping", None, f"{path.name} is not valid YAML{where}: {getattr(err, 'problem', err)}",
                       check="mapping_syntax")])
    problems: list[Problem] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict):
        _fail([Problem("mapping", None, f"{path.name} must be a YAML mapping with a 'tables:' section",
                       check="mapping_shape")])
    for key in sorted(set(doc) - _TOP_KEYS):
        problems.append(Problem("mapping", None, f"unknown top-level key '{shorten(key)}'; allowed: {', '.join(sorted(_TOP_KEYS))}",
                                check="mapping_key"))
    if doc.get("timezone") is not None:
        try:
            pd.Timestamp("2024-01-01", tz=str(doc["timezone"]))
        except Exception:  # noqa: BLE001 - any failure means an unknown zone name
            problems.append(Problem("mapping", None, f"unknown timezone {quoted(doc['timezone'])}; use a name such as "
                                                     "Asia/Seoul or UTC", check="mapping_value"))
    if doc.get("on_invalid") not in (None, "raise", "quarantine"):
        problems.append(Problem("mapping", None, f"on_invalid must be raise or quarantine, not {quoted(doc['on_invalid'])}",
                                check="mapping_value"))
    tables = {}
    for table_name, spec in doc["tables"].items():
        if table_name not in TABLES:
            problems.append(Problem("mapping", None, f"unknown table '{shorten(table_name)}'; the contract has {', '.join(TABLES)}",
                                    check="mapping_table"))
            continue
        tables[table_name] = _parse_table(table_name, spec, problems)
    _fail(problems)
    return Mapping(tables=tables, name=str(doc.get("name", path.stem)), description=str(doc.get("description", "")),
                   encoding=str(doc.get("encoding", "auto")), on_invalid=doc.get("on_invalid"),
                   timezone=None if doc.get("timezone") is None else str(doc["timezone"]),
                   files={str(k): str(v) for k, v in (doc.get("files") or {}).items()}, path=path)


def _parse_table(name: str, spec: Any, problems: list[Problem]) -> TableMapping:
    contract = get_table(name)
    if not isinstance(spec, dict):
        problems.append(Problem("mapping", None, f"tables.{name} must be a mapping", check="mapping_shape"))
        return TableMapping(name, None)
    for key in sorted(set(spec) - _TABLE_KEYS):
        problems.append(Problem("mapping", None, f"tables.{name}: unknown key '{key}'; allowed: {', '.join(sorted(_TABLE_KEYS))}",
                                check="mapping_key"))
    columns = _check_str_dict(spec.get("columns"), f"tables.{name}.columns", None, problems)
    values = _check_str_dict(spec.get("values"), f"tables.{name}.values", None, problems)
    formats = _check_str_dict(spec.get("formats"), f"tables.{name}.formats", None, problems)
    constants = _check_str_dict(spec.get("constants"), f"tables.{name}.constants", None, problems)
    where = _check_str_dict(spec.get("where"), f"tables.{name}.where", None, problems)
    distinct = _check_str_dict(spec.get("distinct"), f"tables.{name}.distinct", None, problems)
    derive = _check_str_dict(spec.get("derive"), f"tables.{name}.derive", None, problems)
    for section, keys in (("columns", columns), ("values", values), ("formats", formats), ("constants", constants),
                          ("derive", derive)):
        for col in keys:
            if col not in contract.column_names:
                problems.append(Problem("mapping", col, f"tables.{name}.{section}: '{col}' is not a column of {name}; "
                                                        f"columns are {', '.join(contract.column_names)}",
                                        check="mapping_column"))
    for col, table in values.items():
        if not isinstance(table, dict):
            problems.append(Problem("mapping", col, f"tables.{name}.values.{col} must map source values to contract values",
                                    check="mapping_shape"))
    for col, spec_ in derive.items():
        check_derive(spec_, f"tables.{name}.derive.{col}", col, problems)
    if distinct and "key" not in distinct:
        problems.append(Problem("mapping", None, f"tables.{name}.distinct needs 'key' (a contract column)",
                                check="mapping_shape"))
    from_appts = spec.get("from_appointments")
    if from_appts is not None and (name != "visits" or from_appts != "attended"):
        problems.append(Problem("mapping", None, "from_appointments: attended is only for the visits table",
                                check="mapping_value"))
    if spec.get("from") is None and from_appts is None:
        problems.append(Problem("mapping", None, f"tables.{name} needs 'from' (the raw table to read)",
                                check="mapping_shape"))
    return TableMapping(
        table=name, source=None if spec.get("from") is None else str(spec["from"]),
        columns={k: str(v) for k, v in columns.items()},
        values={k: {str(a): b for a, b in v.items()} for k, v in values.items() if isinstance(v, dict)},
        formats={k: str(v) for k, v in formats.items()}, constants=constants,
        where={k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in where.items()},
        distinct={k: str(v) for k, v in distinct.items()}, derive=derive,
        from_appointments=from_appts,
    )


# ---------------------------------------------------------------------------
# Applying a mapping
# ---------------------------------------------------------------------------

def _resolve(mapping: Mapping, raw_name: str) -> str:
    return mapping.files.get(raw_name, raw_name)


def apply_table_mapping(raw: pd.DataFrame, spec: TableMapping, raw_name: str,
                        read: LookupReader | None = None) -> tuple[pd.DataFrame, list[Problem]]:
    """Rename, filter, recode and derive one raw table onto contract columns.

    Parameters
    ----------
    raw : DataFrame
        The raw table, with its own column names.
    spec : TableMapping
        How it maps onto its contract table.
    raw_name : str
        Its name in the source, for messages.
    read : callable, optional
        ``read(name, optional)``: another raw table of the same source, for
        ``lookup`` entries of ``derive`` (None when an optional one is absent).

    Returns
    -------
    frame : DataFrame
        Contract-named columns, values as the source gave them (typed later).
    notes : list of Problem
        Findings: rows left out or collapsed, values set missing, approximations.
    """
    notes: list[Problem] = []
    check_unique_columns(raw, spec.table)
    missing = sorted(c for c in spec.source_columns() if c not in raw.columns)
    if missing:
        raise MappingError([Problem(spec.table, None,
                                    f"the mapping reads columns missing from '{raw_name}': {', '.join(map(shorten, missing))}; "
                                    f"it has: {', '.join(map(shorten, raw.columns))}", check="mapping_column")])
    frame = raw
    for column, allowed in spec.where.items():
        keep = rows_where(frame, {column: allowed})
        notes.append(Problem(spec.table, None, f"{int(keep.sum()):,} of {len(frame):,} rows of '{raw_name}' kept where "
                                               f"{column} is {' or '.join(allowed)}; {int((~keep).sum()):,} left out "
                                               "as the mapping asks", n_rows=int((~keep).sum()), check="mapping_where"))
        frame = frame.loc[keep.to_numpy()]
    if spec.distinct:
        key = spec.distinct["key"]
        key_source = spec.columns.get(key, key)
        order = spec.distinct.get("order_by")
        ordered = frame.sort_values(order, kind="stable") if order else frame
        mapped_cols = [c for c in spec.columns.values() if c != key_source]
        if mapped_cols:
            varying = ordered.groupby(key_source, sort=False)[mapped_cols].nunique(dropna=False).gt(1).sum()
            for col, n in varying.items():
                if n:
                    notes.append(Problem(spec.table, None, f"{int(n)} {key} values have differing '{shorten(col)}' across "
                                                           f"rows of '{raw_name}'; the {'latest' if order else 'last'} "
                                                           "row was kept", n_rows=int(n), check="conflicting_rows"))
        before = len(frame)
        frame = ordered.drop_duplicates(key_source, keep="last").sort_index()
        notes.append(Problem(spec.table, key, f"{before:,} rows of '{raw_name}' collapsed to {len(frame):,}, one per "
                                              f"{key}, as the mapping asks", n_rows=before - len(frame),
                             check="mapping_distinct"))
    out = pd.DataFrame(index=frame.index)
    for contract_col, source_col in spec.columns.items():
        out[contract_col] = frame[source_col]
    for contract_col, derive in spec.derive.items():
        out[contract_col] = derive_column(frame, derive, spec.table, contract_col, notes, read)
    for contract_col, value in spec.constants.items():
        out[contract_col] = pd.Series(value, index=out.index, dtype="object")
    for contract_col, recode in spec.values.items():
        if contract_col in out:
            text = to_id(out[contract_col])[0].astype("object")  # 8507.0 from a database column with NULLs reads 8507
            out[contract_col] = text.map(recode).where(text.isin(list(recode)), text)
    return out, notes


def _read_table(source: Source, raw_name: str, table: str, notes: list[Problem]) -> pd.DataFrame | None:
    """Read a raw table; an empty file for an optional table counts as absent (with a note)."""
    try:
        return source.read(raw_name)
    except DataValidationError as err:
        if get_table(table).required or any(p.check != "empty_table" for p in err.problems):
            raise
        notes.append(Problem(table, None, f"'{raw_name}' is an empty file; the optional table '{table}' is treated "
                                          "as absent", check="empty_optional_table"))
        return None


def mapped_raw_tables(source: Source, mapping: Mapping) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Every raw table the mapping names, on contract column names."""
    tables, notes = {}, []
    cache: dict[str, pd.DataFrame | None] = {}

    def read_lookup(name: str, optional: bool) -> pd.DataFrame | None:
        raw_name = _resolve(mapping, name)
        if raw_name not in cache:
            if optional and not source.has(raw_name):
                return None
            try:
                cache[raw_name] = source.read(raw_name)
            except DataValidationError as err:
                if not optional or any(p.check != "empty_table" for p in err.problems):
                    raise
                cache[raw_name] = None
        return cache[raw_name]

    for name, spec in mapping.tables.items():
        if spec.from_appointments:
            continue
        raw_name = _resolve(mapping, spec.source)
        if raw_name not in cache:
            cache[raw_name] = _read_table(source, raw_name, name, notes)
        if cache[raw_name] is None:
            continue
        tables[name], found = apply_table_mapping(cache[raw_name], spec, raw_name, read_lookup)
        notes += found
    return tables, notes


def _label_lookup(table: str) -> dict[str, str]:
    contract = get_table(table)
    lookup = {}
    for col in contract.columns:
        for alias in (col.name, col.ko, col.en):
            lookup[alias.strip().lower()] = col.name
    return lookup


def default_raw_tables(source: Source) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Raw tables found by contract name, without a mapping.

    Tables are recognised by their English or Korean name and columns by their
    contract name or Korean/English label.
    """
    tables, notes = {}, []
    for name, table in TABLES.items():
        candidates = [n for n in (name, table.ko) if source.has(n)]
        if not candidates:
            continue
        raw = _read_table(source, candidates[0], name, notes)
        if raw is None:
            continue
        lookup = _label_lookup(name)
        # relabelled, not copied (pandas copies every column by default: gigabytes at 20M rows)
        renamed = raw.rename(columns={c: lookup.get(str(c).strip().lower(), c) for c in raw.columns}, copy=False)
        check_unique_columns(renamed, name, raw.columns)
        tables[name] = renamed
    return tables, notes


def check_unique_columns(frame: pd.DataFrame, table: str, original: pd.Index | None = None) -> None:
    """Refuse a table in which two source columns stand for the same contract column."""
    dup = frame.columns[frame.columns.duplicated()].unique()
    if len(dup):
        original = frame.columns if original is None else original
        clashes = [f"{shorten(col)} ← {', '.join(shorten(o) for o, n in zip(original, frame.columns) if n == col)}"
                   for col in dup]
        raise DataValidationError([Problem(table, shorten(dup[0]), "several columns stand for the same contract column: "
                                                               + "; ".join(clashes) + ". Keep one or map it explicitly.",
                                           check="duplicate_column")])


def attended_visits(appointments: pd.DataFrame) -> pd.DataFrame:
    """Visits derived from attended appointments (one outpatient visit each)."""
    attended = appointments.loc[appointments["status"].eq("attended").fillna(False).to_numpy()]
    return pd.DataFrame({
        "visit_id": attended["appointment_id"],
        "patient_id": attended["patient_id"],
        "visit_date": attended["scheduled_at"].dt.normalize(),
        "department": attended["department"],
        "visit_type": pd.Series("outpatient", index=attended.index, dtype="object"),
        "inpatient_days": pd.Series(0, index=attended.index, dtype="Int64"),
        "charge_insured": np.nan,
        "charge_self_pay": np.nan,
    }, index=attended.index)
