"""Derived columns of a mapping file: contract columns computed from source columns.

A mapping's ``derive`` section names, for a contract column, exactly one way
to compute it::

    derive:
      reminder_id: {template: "R{AppointmentID}"}                  # text built from source columns
      birth_date: {from_age: Age, at: AppointmentDay}               # approximate birth date from an age
      inpatient_days: {days_between: [admitted, discharged]}        # whole days from one date to another
      birth_date: {date_from_parts: {year: yob, month: mob, day: dob}}   # or: from year, month and day
      department:                                                   # a column of another raw table
        lookup: care_site              # raw table of the same source (or a `files` key)
        key: care_site_id              # key column, same name in both; or {this column: lookup column}
        take: care_site_name           # the lookup table's column to take
      charge_insured:
        lookup: cost
        key: {visit_occurrence_id: cost_event_id}
        where: {cost_domain_id: Visit} # only these lookup rows
        take: paid_by_payer
        agg: sum                       # several matching rows: sum, mean, min, max, first or last
        optional: true                 # a source without `cost` still loads; the column is left missing
      record_status:
        lookup: death
        key: person_id
        found: deceased                # instead of take: this value where a matching row exists
        otherwise: active              # rows without a match (default: left missing)
        optional: true

:func:`check_derive` checks one entry when the mapping is read;
:func:`derive_column` computes it when the mapping is applied.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from crm_analysis.coercion import TEXT, to_date, to_float, to_id
from crm_analysis.exceptions import DataValidationError, MappingError, Problem, quoted, shorten

__all__ = ["DERIVERS", "LookupReader", "check_derive", "derive_source_columns", "derive_column", "rows_where"]

#: Each deriver and the keys its entry may hold (the deriver's own key first).
DERIVERS: dict[str, tuple[str, ...]] = {
    "template": ("template",),
    "from_age": ("from_age", "at"),
    "days_between": ("days_between",),
    "date_from_parts": ("date_from_parts",),
    "lookup": ("lookup", "key", "take", "found", "otherwise", "agg", "where", "optional"),
}

#: Aggregations of a lookup's matching rows. The numeric ones read the values as amounts first.
NUMERIC_AGGS = ("sum", "mean", "min", "max")
AGGS = NUMERIC_AGGS + ("first", "last")

#: Stand-ins for the parts a ``date_from_parts`` row lacks: the middle of the year, or of the month.
_MID_YEAR = (7, 1)
_MID_MONTH = 15

#: Reads a raw table of the source by name; None when an optional table is absent.
LookupReader = Callable[[str, bool], "pd.DataFrame | None"]


def _problem(where: str, column: str, message: str, problems: list[Problem], check: str = "mapping_shape") -> None:
    problems.append(Problem("mapping", column, f"{where}: {message}", check=check))


def _key_pair(key: Any) -> tuple[str, str] | None:
    """A lookup's ``key`` as (column of this table, column of the lookup table); None if malformed."""
    if isinstance(key, str):
        return key, key
    if isinstance(key, dict) and len(key) == 1:
        (here, there), = key.items()
        if isinstance(here, str) and isinstance(there, str):
            return here, there
    return None


def check_derive(spec: Any, where: str, column: str, problems: list[Problem]) -> None:
    """Check one ``derive`` entry; append a :class:`Problem` for each fault.

    Parameters
    ----------
    spec : object
        The entry as read from YAML.
    where : str
        Its place in the file, such as ``tables.visits.derive.inpatient_days``.
    column : str
        The contract column it computes.
    problems : list of Problem
        Appended to.
    """
    kinds = set(spec) & set(DERIVERS) if isinstance(spec, dict) else set()
    if len(kinds) != 1:
        _problem(where, column, f"needs exactly one of {', '.join(sorted(DERIVERS))}", problems)
        return
    kind, = kinds
    for key in sorted(set(spec) - set(DERIVERS[kind]), key=str):
        hint = " (YAML reads on, off, yes and no as true/false: quote them)" if isinstance(key, bool) else ""
        _problem(where, column, f"unknown key '{shorten(key)}' for {kind}; allowed: {', '.join(DERIVERS[kind])}{hint}",
                 problems, check="mapping_key")
    value = spec[kind]
    if kind == "from_age" and "at" not in spec:
        _problem(where, column, "from_age needs 'at' (the date the age refers to)", problems)
    elif kind == "days_between" and not (isinstance(value, list) and len(value) == 2
                                         and all(isinstance(v, str) for v in value)):
        _problem(where, column, "days_between needs two source columns, [from, to], such as "
                                "[visit_start_date, visit_end_date]", problems)
    elif kind == "date_from_parts" and not (isinstance(value, dict) and "year" in value
                                            and set(value) <= {"year", "month", "day"}
                                            and all(isinstance(v, str) for v in value.values())):
        _problem(where, column, "date_from_parts needs source columns for year and optionally month and day, "
                                "such as {year: year_of_birth, month: month_of_birth, day: day_of_birth}", problems)
    elif kind == "lookup":
        _check_lookup(spec, where, column, problems)


def _check_lookup(spec: dict, where: str, column: str, problems: list[Problem]) -> None:
    if not isinstance(spec["lookup"], str):
        _problem(where, column, "lookup names a raw table of the source (a file stem, sheet, SQL table or "
                                "`files` key)", problems)
    if _key_pair(spec.get("key")) is None:
        _problem(where, column, "lookup needs 'key': a key column present in both tables, or "
                                "{column of this table: column of the lookup table}", problems)
    if ("take" in spec) == ("found" in spec):
        _problem(where, column, "lookup needs exactly one of 'take' (the lookup column to copy) or 'found' "
                                "(the value for rows with a match)", problems)
    elif "take" in spec and not isinstance(spec["take"], str):
        _problem(where, column, "take names one column of the lookup table", problems)
    if "agg" in spec and ("take" not in spec or spec["agg"] not in AGGS):
        _problem(where, column, f"agg goes with take and is one of {', '.join(AGGS)}, not {quoted(spec['agg'])}", problems,
                 check="mapping_value")
    if not isinstance(spec.get("where", {}), dict):
        _problem(where, column, "where maps lookup columns to the values to keep, e.g. {cost_domain_id: Visit}",
                 problems)
    if not isinstance(spec.get("optional", False), bool):
        _problem(where, column, "optional is true or false", problems, check="mapping_value")


def derive_source_columns(spec: dict) -> set[str]:
    """The columns of the mapped table itself that a ``derive`` entry reads."""
    if "template" in spec:
        return {f for _, f, _, _ in string.Formatter().parse(spec["template"]) if f}
    if "from_age" in spec:
        return {spec["from_age"], spec["at"]}
    if "days_between" in spec:
        return set(spec["days_between"])
    if "date_from_parts" in spec:
        return set(spec["date_from_parts"].values())
    return {_key_pair(spec["key"])[0]}


def rows_where(frame: pd.DataFrame, where: dict[str, Any]) -> pd.Series:
    """Which rows have, in every column of `where`, one of the values listed (compared as text)."""
    keep = pd.Series(True, index=frame.index)
    for column, allowed in where.items():
        allowed = [str(v) for v in (allowed if isinstance(allowed, list) else [allowed])]
        keep &= to_id(frame[column])[0].isin(allowed).fillna(False).astype(bool)
    return keep


# ---------------------------------------------------------------------------
# Computing derived columns
# ---------------------------------------------------------------------------

def derive_column(frame: pd.DataFrame, spec: dict, table: str, column: str, notes: list[Problem],
                  read: LookupReader | None = None) -> pd.Series:
    """Compute the contract column `column` of `table` from the raw rows `frame`.

    Parameters
    ----------
    frame : DataFrame
        Raw rows of the mapped table, already filtered by ``where``/``distinct``.
    spec : dict
        A checked ``derive`` entry (see :func:`check_derive`).
    table, column : str
        The contract table and column, for messages.
    notes : list of Problem
        Findings (values set missing, approximations, absent optional tables) are appended.
    read : callable, optional
        ``read(name, optional)`` returns a raw table of the same source, or None
        when an optional one is absent. Needed by ``lookup`` only.

    Returns
    -------
    pandas.Series
        Indexed like `frame`; the loader then reads it as the contract type.

    Raises
    ------
    MappingError
        When a lookup table lacks a column the entry names, or holds several
        rows for one key without an ``agg``.
    DataValidationError
        When a numeric ``agg`` meets values that are not numbers.
    ValueError
        When a ``lookup`` is computed without `read`.
    """
    if "template" in spec:
        return _template(frame, spec["template"])
    if "from_age" in spec:
        return _from_age(frame, spec["from_age"], spec["at"], table, notes)
    if "days_between" in spec:
        return _days_between(frame, *spec["days_between"], table, column, notes)
    if "date_from_parts" in spec:
        return _date_from_parts(frame, spec["date_from_parts"], table, column, notes)
    return _lookup(frame, spec, table, column, notes, read)


def _template(frame: pd.DataFrame, template: str) -> pd.Series:
    out = pd.Series("", index=frame.index, dtype=TEXT)
    for literal, field_name, _, _ in string.Formatter().parse(template):
        out = out + literal
        if field_name:
            out = out + frame[field_name].astype(TEXT)
    return out


def _rows_note(table: str, column: str, flagged: pd.Series, values: pd.Series, message: str, check: str) -> Problem:
    return Problem(table, column, message, rows=tuple(flagged.index[flagged.to_numpy()][:5]),
                   examples=tuple(values[flagged].head(5).tolist()), n_rows=int(flagged.sum()), check=check)


def _from_age(frame: pd.DataFrame, age_col: str, on_col: str, table: str, notes: list[Problem]) -> pd.Series:
    """Approximate birth dates: `age` years and half a year before the date in `on_col`."""
    age = pd.to_numeric(frame[age_col], errors="coerce")
    on = pd.to_datetime(frame[on_col], format="ISO8601", errors="coerce", utc=True).dt.tz_localize(None).dt.normalize()
    bad = age.isna() | (age < 0)
    given_bad = bad & frame[age_col].notna()
    if given_bad.any():
        notes.append(_rows_note(table, "birth_date", given_bad, frame[age_col],
                                f"{age_col} values that are not valid ages were treated as unknown "
                                "(birth date left missing)", "invalid_age"))
    old = age > 100
    if old.any():
        notes.append(_rows_note(table, "birth_date", old, frame[age_col],
                                f"{age_col} above 100 (kept; check they are real)", "age_over_100"))
    days = (age.where(~bad) * 365.25 + 182).round()
    birth = on - pd.to_timedelta(days, unit="D")
    return birth.dt.normalize().dt.strftime("%Y-%m-%d").astype(TEXT)


def _days_between(frame: pd.DataFrame, first: str, last: str, table: str, column: str,
                  notes: list[Problem]) -> pd.Series:
    """Whole calendar days from the date in `first` to the date in `last` (0 on the same day)."""
    start, bad_start = to_date(frame[first])
    end, bad_end = to_date(frame[last])
    for name, bad in ((first, bad_start), (last, bad_end)):
        if len(bad):
            flagged = pd.Series(frame.index.isin(bad), index=frame.index)
            notes.append(_rows_note(table, column, flagged, frame[name],
                                    f"{name} values that are not dates: {column} left missing on those rows",
                                    "unreadable_date"))
    return (end - start).dt.days.astype("Int64")


def _date_from_parts(frame: pd.DataFrame, parts: dict[str, str], table: str, column: str,
                     notes: list[Problem]) -> pd.Series:
    """A date from year, month and day columns; a missing month or day is approximated."""
    given = {part: to_float(frame[col])[0] for part, col in parts.items()}
    year = given["year"]
    month = given.get("month", pd.Series(np.nan, index=frame.index))
    day = given.get("day", pd.Series(np.nan, index=frame.index))
    guessed = year.notna() & (month.isna() | day.isna())
    filled = pd.DataFrame({"year": year,
                           "month": month.fillna(_MID_YEAR[0]),
                           "day": day.fillna(pd.Series(np.where(month.isna(), _MID_YEAR[1], _MID_MONTH),
                                                       index=frame.index))})
    dates = pd.to_datetime(filled.where(year.notna()), errors="coerce")
    invalid = dates.isna() & pd.concat([frame[c].notna() for c in parts.values()], axis=1).any(axis=1)
    if invalid.any():
        shown = frame[list(parts.values())].astype(TEXT).fillna("").agg("-".join, axis=1)
        notes.append(_rows_note(table, column, invalid, shown,
                                f"{' / '.join(parts.values())} that make no date: {column} left missing on those rows",
                                "invalid_date_parts"))
    guessed &= dates.notna()
    if guessed.any():
        notes.append(Problem(table, column, f"{int(guessed.sum()):,} {column} values approximated from the year alone "
                                            "(1 July) or the year and month (the 15th): the source lacks the rest",
                             rows=tuple(frame.index[guessed.to_numpy()][:5]), n_rows=int(guessed.sum()),
                             check="approximate_date"))
    return dates


def _lookup(frame: pd.DataFrame, spec: dict, table: str, column: str, notes: list[Problem],
            read: LookupReader | None) -> pd.Series:
    """Values of another raw table, matched on a key column (aggregated when asked)."""
    name, optional = spec["lookup"], bool(spec.get("optional", False))
    if read is None:
        raise ValueError(f"the lookup for {table}.{column} needs read=, a reader of the source's raw tables")
    other = read(name, optional)
    if other is None:
        notes.append(Problem(table, column, f"the optional lookup table '{name}' is absent or empty; {column} is "
                                            "left missing", check="empty_optional_table"))
        return pd.Series(pd.NA, index=frame.index, dtype="object")
    here, there = _key_pair(spec["key"])
    where = spec.get("where") or {}
    wanted = [there, *where, *([spec["take"]] if "take" in spec else [])]
    missing = sorted({c for c in wanted if c not in other.columns})
    if missing:
        raise MappingError([Problem(table, column, f"the lookup for {column} reads columns missing from '{name}': "
                                                   f"{', '.join(map(shorten, missing))}; it has: {', '.join(map(shorten, other.columns))}",
                                    check="mapping_column")])
    if where:
        keep = rows_where(other, where)
        note = Problem(table, None, f"{int(keep.sum()):,} of {len(other):,} rows of '{name}' used where "
                                    + " and ".join(f"{c} is {v}" for c, v in where.items()),
                       n_rows=int((~keep).sum()), check="mapping_where")
        if note not in notes:  # said once when several columns look up the same rows
            notes.append(note)
        other = other.loc[keep.to_numpy()]
    keys = to_id(other[there])[0]
    mine = to_id(frame[here])[0]
    if "found" in spec:
        matched = mine.isin(keys.dropna()).fillna(False).astype(bool)
        out = pd.Series(spec["found"], index=frame.index, dtype="object")
    else:
        table_of = _lookup_values(other[spec["take"]], keys, spec.get("agg"), name, there, table, column)
        matched = mine.isin(table_of.index).fillna(False).astype(bool)
        out = mine.map(table_of).astype("object")
    otherwise = spec.get("otherwise")
    return out.where(matched.to_numpy(), otherwise if otherwise is not None else pd.NA)


def _lookup_values(values: pd.Series, keys: pd.Series, agg: str | None, name: str, key: str, table: str,
                   column: str) -> pd.Series:
    """One value per key: the only one, or the aggregate of several."""
    present = keys.notna().to_numpy()
    values, keys = values[present], keys[present]
    if agg is None:
        repeated = keys[keys.duplicated()]
        if len(repeated):
            raise MappingError([Problem(table, column, f"'{name}' has several rows for one {key} "
                                                       f"({repeated.nunique():,} keys, e.g. {shorten(repeated.iloc[0])}); "
                                                       f"add agg: first, last or sum to the lookup for {column}",
                                        check="mapping_lookup_key")])
        return pd.Series(values.to_numpy(), index=keys.to_numpy())
    if agg in NUMERIC_AGGS:
        raw, (values, bad) = values, to_float(values)
        if len(bad):
            raise DataValidationError([Problem(name, shorten(raw.name), f"values that cannot be read as a number, "
                                                                    f"so {agg} for {table}.{column} cannot be taken",
                                               rows=tuple(bad[:5]), examples=tuple(raw.loc[bad[:5]].tolist()),
                                               n_rows=len(bad), check="type_float")])
    grouped = values.groupby(keys.to_numpy(), sort=False)
    # An all-missing group sums to missing, not 0: an unknown amount is not a zero one.
    return grouped.sum(min_count=1) if agg == "sum" else grouped.agg(agg)
