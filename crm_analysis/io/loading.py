"""``load_clinic``: from any supported source to one validated bundle."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crm_analysis.clinic import ClinicData
from crm_analysis.coercion import DEFAULT_TIMEZONE
from crm_analysis.contract import TABLES
from crm_analysis.exceptions import DataValidationError, Problem, SourceError
from crm_analysis.io.mapping import Mapping, attended_visits, default_raw_tables, mapped_raw_tables, read_mapping
from crm_analysis.io.sources import DatabaseSource, Source, open_source
from crm_analysis.phones import are_mobile, normalise_phones
from crm_analysis.findings import RowIssue, ValidationReport
from crm_analysis.validation import conform_table, validate_tables

__all__ = ["load_clinic"]


def load_clinic(source: str | Path, mapping: str | Path | Mapping | None = None, as_of: str | pd.Timestamp | None = None,
                *, on_invalid: str | None = None, timezone: str | None = None) -> ClinicData:
    """Load and validate one clinic's data.

    Parameters
    ----------
    source : str or Path
        A folder of CSV (UTF-8, UTF-8 with BOM, or CP949/EUC-KR: detected),
        TSV, gzipped CSV, Parquet or Excel files; a single such file; an Excel
        workbook with a sheet per table; or a SQLAlchemy URL such as
        ``duckdb:///clinic.duckdb``, ``sqlite:///clinic.db`` or
        ``postgresql+psycopg://user@host/db``. A validated snapshot cache
        written by the monthly run (:mod:`crm_analysis.io.cache`) is read
        back as it is, without validating again.
    mapping : str, Path or Mapping, optional
        A mapping file that maps the clinic's own export onto the contract.
        Without one, tables and columns must carry contract names (English or
        Korean).
    as_of : str or Timestamp, optional
        The extraction date. When given, anything recorded after it is an error.
    on_invalid : {"raise", "quarantine"}, optional
        What to do with rows that break a rule: refuse the data (default), or
        set the rows aside in ``report.quarantined`` and report them. A mapping
        file may set its own default.
    timezone : str, optional
        The clinic's time zone (default ``Asia/Seoul``, or the mapping's
        ``timezone``). Zoned moments in the source are converted to it; moments
        without a zone are taken as clinic-local already.

    Returns
    -------
    ClinicData

    Raises
    ------
    DataValidationError
        Listing every problem (table, column, rows, example values).
    MappingError
        If the mapping file is malformed or does not fit the source.
    SourceError
        If the source cannot be read as given: two files claim one table (``patients.csv`` and
        ``patients.parquet``, or ``patients.csv`` and ``환자.csv``), or a gzipped file is truncated.

    Examples
    --------
    >>> from crm_analysis import load_clinic, synth  # doctest: +SKIP
    >>> clinic = load_clinic("data/demo", as_of="2026-10-31")  # doctest: +SKIP
    """
    from crm_analysis.io.cache import is_snapshot_cache, read_snapshot_cache

    if is_snapshot_cache(source):  # the monthly run's private copy, validated once already
        return read_snapshot_cache(source, as_of=as_of)
    if mapping is not None and not isinstance(mapping, Mapping):
        mapping = read_mapping(mapping)
    as_of = None if as_of is None else pd.Timestamp(as_of).normalize()
    policy = on_invalid or (mapping.on_invalid if mapping else None) or "raise"
    zone = timezone or (mapping.timezone if mapping else None) or DEFAULT_TIMEZONE
    opened = open_source(source, encoding=mapping.encoding if mapping else "auto")
    try:
        if mapping is not None:
            raw_tables, notes = mapped_raw_tables(opened, mapping)
        else:
            _check_one_name_per_table(opened)
            raw_tables, notes = default_raw_tables(opened)
    finally:
        if isinstance(opened, DatabaseSource):
            opened.dispose()

    report = ValidationReport()
    for note in notes:
        if note.check in _INFO_CHECKS:
            report.info.append(note)
        elif note.check in _WARNING_CHECKS:
            report.warnings.append(note)
        else:
            report.repairs.append(note)
    typed, structural, pending = {}, [], []
    keep_raw = policy == "quarantine"  # the source's values are kept only to show quarantined rows as given
    for name in list(raw_tables):
        raw = raw_tables[name] if keep_raw else raw_tables.pop(name)
        formats = mapping.tables[name].formats if mapping and name in mapping.tables else {}
        frame, missing_cols, unreadable, extra = conform_table(raw, TABLES[name], formats=formats,
                                                               source=opened.description, timezone=zone)
        typed[name], structural, pending = frame, structural + missing_cols, pending + unreadable
        report.warnings += extra
    # Visits come from appointments only when the mapping says so: a visits file that is simply missing
    # is reported as missing (with the mapping key as the way out), never quietly replaced.
    wants_derived = bool(mapping and "visits" in mapping.tables and mapping.tables["visits"].from_appointments)
    if wants_derived:
        if "appointments" not in typed:
            structural.append(Problem("visits", None, "visits are to be derived from appointments, "
                                                      "but the mapping has no appointments table", check="missing_table"))
        elif not any(p.table == "appointments" for p in structural):
            typed["visits"] = attended_visits(typed["appointments"])
            report.info.append(Problem("visits", None, f"no visit export: {len(typed['visits']):,} visits derived from "
                                                       "attended appointments (one outpatient visit each; charges unknown)",
                                       n_rows=len(typed["visits"]), check="derived_visits"))
    if "patients" in typed and not any(p.table == "patients" for p in structural):
        _normalise_phone_column(typed, report)
    raw_for_quarantine = raw_tables if keep_raw else None
    try:
        tables, report = validate_tables(typed, as_of=as_of, on_invalid=policy, pending=pending,
                                         structural=structural, report=report, raw=raw_for_quarantine)
    except DataValidationError as err:
        err.source = opened.description
        raise
    if any(p.check == "derived_visits" for p in report.info) and "appointments" in report.quarantined:
        _drop_visits_of_quarantined_appointments(tables, report)
    return ClinicData(tables=tables, as_of=as_of, report=report, source=opened.description,
                      mapping=str(mapping.path) if mapping and mapping.path else None,
                      encodings=dict(opened.encodings))


def _check_one_name_per_table(source: Source) -> None:
    """Without a mapping a table is found by its English or its Korean name (``patients`` or ``환자``); a source
    holding both is refused rather than one of them read silently."""
    for name, table in TABLES.items():
        found = [raw for raw in (name, table.ko) if source.has(raw)]
        if len(found) > 1:
            both = " and ".join(source.origin(raw) for raw in found)
            raise SourceError(f"{both} in {source.description} are both the table '{name}' ({table.ko}), so it is not "
                              "clear which one holds the data; keep only one of them in the source (or name the one "
                              "to read in a mapping file)")


_INFO_CHECKS = {"mapping_where", "mapping_distinct", "empty_optional_table"}
_WARNING_CHECKS = {"age_over_100", "conflicting_rows"}


def _drop_visits_of_quarantined_appointments(tables: dict[str, pd.DataFrame], report: ValidationReport) -> None:
    """Visits derived from appointments follow their appointment into quarantine."""
    visits = tables["visits"]
    gone = visits["visit_id"].isin(report.quarantined["appointments"]["appointment_id"])
    if gone.any():
        report.add_quarantined("visits", visits.loc[gone.to_numpy()].assign(problem="derived from a quarantined appointment"))
        report.quarantine_problems.append(Problem("visits", None, "visits derived from quarantined appointments removed",
                                                  n_rows=int(gone.sum()), check="derived_from_quarantined"))
        tables["visits"] = visits.loc[~gone.to_numpy()].reset_index(drop=True)


def _normalise_phone_column(typed: dict[str, pd.DataFrame], report: ValidationReport) -> None:
    """Phones to 010-XXXX-XXXX; unusable numbers are set missing and reported."""
    patients = typed["patients"]
    normalised, invalid = normalise_phones(patients["phone"])
    changed = int((normalised.fillna("") != patients["phone"].fillna("")).sum()) - len(invalid)
    if changed:
        report.repairs.append(Problem("patients", "phone", f"{changed:,} phone numbers rewritten as 010-XXXX-XXXX",
                                      n_rows=changed, check="phone_format"))
    if len(invalid):
        issue = RowIssue("patients", "phone", "invalid_phone",
                         "values that are not valid Korean phone numbers were set to missing "
                         "(these patients cannot be reached by SMS or KakaoTalk)",
                         invalid, tuple(patients.loc[invalid[:5], "phone"].tolist()))
        report.repairs.append(issue.to_problem())
    not_mobile = normalised.notna() & ~are_mobile(normalised)
    if not_mobile.any():
        report.warnings.append(RowIssue("patients", "phone", "not_mobile",
                                        "numbers that are not Korean mobile numbers (landlines or foreign numbers "
                                        "cannot receive SMS or KakaoTalk)", patients.index[not_mobile.to_numpy()],
                                        ()).to_problem())
    typed["patients"] = patients.assign(phone=normalised)
