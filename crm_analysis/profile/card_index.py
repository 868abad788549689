"""The card index: every patient's caller-ID card, precomputed, in one SQLite file.

The monthly run and ``crm-analysis daily`` write it beside the outreach lists
(owner-only, like them); ``crm-analysis lookup`` and ``crm-analysis serve``
read it (:mod:`crm_analysis.profile.card_store`), so answering a phone call
opens one small file instead of loading and analysing the whole clinic.

Tables (:data:`SCHEMA`; every date is ISO text, every flag 0/1, display texts
in both languages so one index serves a Korean and an English desk):

``meta``          ``key``/``value``: ``schema_version``, ``as_of`` (the data's
                  day), ``made_by`` (``monthly 2026-10`` / ``daily 2026-11-03``),
                  ``source`` (secrets removed), ``patients``, ``notes_ko``/``notes_en``.
``cards``         one row per patient (:data:`CARD_COLUMNS`), primary key ``patient_id``.
``phones``        ``phone_key`` (:func:`crm_analysis.profile.index.phone_key`) → ``patient_id``.
``appointments``  booked appointments from ``as_of`` on, with the no-show risk.
``messages``      the messages planned for the patient: one row per staff-list row
                  (``child_id``: the child a vaccination message is about).
``children``      the patient's children and their next vaccinations.

The writer takes plain DataFrames and writes them column-wise
(``executemany`` over the columns), into a temporary file renamed into place
when complete; the reader needs only the standard library.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Mapping

__all__ = ["SCHEMA", "SCHEMA_VERSION", "CARD_COLUMNS", "INDEX_NAME", "write_card_index", "source_identity", "index_meta"]

#: Incremented when a table or column changes; the reader refuses other versions.
SCHEMA_VERSION = 1

#: File name of the index inside an outreach folder.
INDEX_NAME = "cards.sqlite"

#: Column → SQLite type, per table (``meta`` is key/value text).
SCHEMA: dict[str, dict[str, str]] = {
    "cards": {
        "patient_id": "TEXT PRIMARY KEY", "name": "TEXT", "birth_date": "TEXT", "sex": "TEXT",
        "phone_tail": "TEXT", "age": "INTEGER",
        "first_visit": "TEXT", "last_visit": "TEXT", "last_department_ko": "TEXT", "last_department_en": "TEXT",
        "visit_days": "INTEGER", "visits_12m": "INTEGER", "value_12m": "REAL", "value_lifetime": "REAL",
        "segment_ko": "TEXT", "segment_en": "TEXT",
        "vip": "INTEGER", "vip_reason_ko": "TEXT", "vip_reason_en": "TEXT",
        "p_return": "REAL", "return_horizon_days": "INTEGER", "elapsed_days": "INTEGER",
        "usual_interval_days": "REAL", "overdue": "INTEGER", "recall_candidate": "INTEGER",
        "predicted_value": "REAL", "predicted_horizon_days": "INTEGER",
        "past_appointments": "INTEGER", "no_shows": "INTEGER", "high_noshow_risk": "INTEGER",
        "pregnancy_week": "INTEGER", "due_date": "TEXT",
        "sms": "TEXT", "kakao": "TEXT", "email": "TEXT", "night_consent": "INTEGER",
        "segment_action_ko": "TEXT", "segment_action_en": "TEXT",
        "action_kind": "TEXT", "action_ko": "TEXT", "action_en": "TEXT",
    },
    "phones": {"phone_key": "INTEGER", "patient_id": "TEXT"},
    "appointments": {
        "patient_id": "TEXT", "appointment_id": "TEXT", "scheduled_at": "TEXT",
        "department_ko": "TEXT", "department_en": "TEXT",
        "noshow_risk": "REAL", "risk_band": "TEXT", "risk_reason_ko": "TEXT", "risk_reason_en": "TEXT",
        "reply": "TEXT",
    },
    "messages": {
        "patient_id": "TEXT", "list_name": "TEXT", "kind": "TEXT", "planned_at": "TEXT", "channel": "TEXT",
        "text": "TEXT", "child_id": "TEXT",
    },
    "children": {
        "guardian_id": "TEXT", "patient_id": "TEXT", "name": "TEXT", "birth_date": "TEXT",
        "due_from": "TEXT", "due_to": "TEXT", "vaccines_ko": "TEXT", "vaccines_en": "TEXT",
    },
}

CARD_COLUMNS: tuple[str, ...] = tuple(SCHEMA["cards"])

#: Decimals kept of every REAL value (probabilities to 0.01 percentage point, KRW to 0.0001 won).
_DECIMALS = 4
#: Rows of a table turned into Python values and inserted at a time.
WRITE_BATCH = 100_000

#: Secondary indexes: how each table is searched.
_INDEXES = {"phones": "phone_key", "appointments": "patient_id", "messages": "patient_id",
            "children": "guardian_id"}

#: Row order inside each table, so the same data gives the same file.
_ORDER = {"cards": ["patient_id"], "phones": ["phone_key", "patient_id"],
          "appointments": ["patient_id", "scheduled_at", "appointment_id"],
          "messages": ["patient_id", "planned_at", "list_name"],
          "children": ["guardian_id", "birth_date", "patient_id"]}


def source_identity(source) -> str:
    """How an index names its data source: a database URL without its secrets, a file or folder as its absolute
    path (so ``lookup --source data/demo`` finds the index whichever folder it is run from)."""
    text = str(source)
    if "://" in text:
        from crm_analysis.redaction import redact_url

        return redact_url(text)
    return str(Path(text).expanduser().resolve())


def index_meta(as_of, made_by: str, source, patients: int, notes: dict[str, str]) -> dict[str, str]:
    """The ``meta`` rows of an index: the data's day, who wrote it, the source (no secret) and what is missing."""
    return {"as_of": f"{as_of:%Y-%m-%d}", "made_by": made_by, "source": source_identity(source),
            "patients": str(patients),
            "notes": "; ".join(f"{name}: {why}" for name, why in sorted(notes.items()))}


def _with_time(values) -> bool:
    """Whether a date-time column holds a time of day anywhere (else it is written as dates)."""
    return bool(((values.dt.hour != 0) | (values.dt.minute != 0)).fillna(False).any())


def _column_values(frame, column: str, sql_type: str, with_time: bool | None = None) -> list:
    """One column as plain Python values (None for missing), converted column-wise.

    `with_time`: for a date-time column, whether it is written with its times (default: whether `frame`'s
    values have any); given when `frame` is one batch of a larger table, so that every batch is written alike.
    """
    import numpy as np
    import pandas as pd

    if column not in frame.columns:
        return [None] * len(frame)
    s = frame[column]
    if sql_type.startswith("INTEGER"):
        values = pd.to_numeric(s.astype("object").where(s.notna(), None), errors="coerce")
        out = values.astype("Int64").astype("object")
    elif sql_type.startswith("REAL"):
        # rounded: the last bits of a model's float may differ between processes, the file must not
        out = pd.to_numeric(s, errors="coerce").astype("float64").round(_DECIMALS).astype("object")
    elif pd.api.types.is_datetime64_any_dtype(s):
        with_time = _with_time(s) if with_time is None else with_time
        out = s.dt.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d").astype("object")
    else:
        out = s.astype("object")
    out = out.where(pd.notna(out), None)
    values = out.tolist()
    if sql_type.startswith("TEXT"):
        values = [None if v is None else str(v) for v in values]
    elif sql_type.startswith("INTEGER"):
        values = [None if v is None else int(v) for v in values]
    elif sql_type.startswith("REAL"):
        values = [None if v is None or np.isnan(v) else float(v) for v in values]
    return values


def write_card_index(tables: Mapping[str, object], path: str | os.PathLike, meta: Mapping[str, object]) -> Path:
    """Write the card index to `path` (mode 0600), atomically.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        ``cards``, ``phones``, ``appointments``, ``messages``, ``children`` with the
        columns of :data:`SCHEMA` (a missing column is written as NULL; a missing
        table as empty). Extra columns are not written.
    path : path
        The index file; its folder must exist.
    meta : mapping
        Written to ``meta`` as text, with ``schema_version`` added.

    Returns
    -------
    Path
    """
    import pandas as pd

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # private before any byte is written
    os.close(fd)
    try:
        con = sqlite3.connect(tmp)
        try:
            con.execute("PRAGMA journal_mode=OFF")
            con.execute("PRAGMA synchronous=OFF")
            con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            rows = {**{str(k): None if v is None else str(v) for k, v in meta.items()},
                    "schema_version": str(SCHEMA_VERSION)}
            con.executemany("INSERT INTO meta VALUES (?, ?)", sorted(rows.items()))
            for name, columns in SCHEMA.items():
                con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
                frame = tables.get(name)
                if frame is None or len(frame) == 0:
                    continue
                order = [c for c in _ORDER[name] if c in frame.columns]
                frame = frame.sort_values(order, kind="stable") if order else frame
                with_time = {c: _with_time(frame[c]) for c in columns
                             if c in frame.columns and pd.api.types.is_datetime64_any_dtype(frame[c])}
                marks = ", ".join("?" * len(columns))
                # in batches of rows: a million cards as Python values at once take gigabytes
                for start in range(0, len(frame), WRITE_BATCH):
                    batch = frame.iloc[start:start + WRITE_BATCH]
                    values = [_column_values(batch, c, t, with_time.get(c)) for c, t in columns.items()]
                    con.executemany(f"INSERT INTO {name} VALUES ({marks})", zip(*values))
            for name, column in _INDEXES.items():
                con.execute(f"CREATE INDEX {name}_{column} ON {name} ({column})")
            con.commit()
        finally:
            con.close()
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
