"""The day's card index: the month's cards with today's appointments, risks, replies and reminder sends.

:func:`daily_card_tables` starts from the newest monthly card index of the same source written before the
day (its segments, VIPs, return probabilities, values and planned messages stay as the month computed
them), and replaces what changes every day: the appointments still booked at the extract moment with their
no-show risk (the month's model) and reply state, the reminder sends due today (as messages of the day's
sends list), and the flags and suggested action that follow from them. Without a monthly index it builds the
cards from the extract itself, without the monthly models, and says so in the index's notes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from crm_analysis.daily.calls import reply_state
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.profile.card_index import INDEX_NAME, SCHEMA, SCHEMA_VERSION, source_identity
from crm_analysis.profile.card_tables import upcoming_appointments, with_appointments

__all__ = ["monthly_index", "read_index_tables", "daily_card_tables"]


def _meta(path: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        return dict(con.execute("SELECT key, value FROM meta").fetchall())


def monthly_index(outreach_dir: str | Path, day: pd.Timestamp, source) -> Path | None:
    """The newest monthly card index in `outreach_dir` of `source` whose data ends before `day`."""
    wanted = source_identity(source)
    best, best_as_of = None, ""
    for path in sorted(Path(outreach_dir).glob(f"[0-9][0-9][0-9][0-9]-[0-9][0-9]/{INDEX_NAME}")):
        try:
            meta = _meta(path)
        except sqlite3.Error:  # a damaged or foreign file is not a base; the cards are built afresh
            continue
        as_of = meta.get("as_of", "")
        if (meta.get("schema_version") == str(SCHEMA_VERSION) and meta.get("source") == wanted
                and as_of < f"{day:%Y-%m-%d}" and as_of > best_as_of):
            best, best_as_of = path, as_of
    return best


def read_index_tables(path: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Every table of a card index as DataFrames (dates as text, as stored), and its meta."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        tables = {name: pd.read_sql(f"SELECT * FROM {name}", con).reindex(columns=list(columns))
                  for name, columns in SCHEMA.items()}
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    return tables, meta


def _fresh_tables(known, as_of: pd.Timestamp) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Cards from the extract itself: features, segments and VIPs, no monthly model and no planned message."""
    from crm_analysis.monthly.month import Month
    from crm_analysis.profile.card_tables import card_tables

    tables = card_tables(Month(known, as_of), [], models=False)
    notes = dict(tables.pop("notes"))
    notes["monthly"] = "no monthly card index of this source yet: return probability, value and planned messages " \
                       "come with the first monthly run"
    return tables, notes


def daily_card_tables(clinic, known, moment: pd.Timestamp, *, outreach_dir: str | Path, source, model=None,
                      sends: pd.DataFrame | None = None, sends_list: str = "") -> tuple[dict, dict[str, str]]:
    """The day's card tables and the notes on what they lack.

    Parameters
    ----------
    clinic, known : ClinicData
        The extract as loaded, and as known at `moment` (:func:`~crm_analysis.daily.moment.clinic_at`).
    moment : Timestamp
        The extract moment (the day's 00:00).
    outreach_dir : path
        The outreach folder holding the monthly ``YYYY-MM/`` folders.
    source : str or Path
    model : NoShowRiskModel, optional
        The month's fitted no-show model; None: appointments without a risk.
    sends : DataFrame, optional
        The day's sends list (its staff table, Korean headers) and `sends_list` its name.
    """
    day = moment.normalize()
    base = monthly_index(outreach_dir, day, source)
    if base is not None:
        tables, meta = read_index_tables(base)
        notes = {"monthly": f"segments, values and planned messages from {meta.get('made_by', base.parent.name)} "
                            f"(data of {meta.get('as_of')})"}
    else:
        tables, notes = _fresh_tables(known, day - pd.Timedelta(days=1))
    scores = replies = None
    appts = known.tables.get("appointments")
    if appts is not None:
        ahead = appts.loc[((appts["status"] == "booked") & (appts["scheduled_at"] >= moment)).fillna(False)
                          .to_numpy(dtype=bool)]
        ids = ahead["appointment_id"].astype(str)
        replies = reply_state(known.tables.get("reminders"), ids, moment)
        replies.index = ids.to_numpy()
    if model is not None and appts is not None:
        from crm_analysis.noshow.scoring import score_appointments

        try:  # the booked patients' own records only: the same values as from the whole clinic, in milliseconds
            scores = score_appointments(known, day - pd.Timedelta(days=1), model=model, lang="ko",
                                        patients=ahead["patient_id"].astype(str).unique(), reasons_also=("en",))
        except (CrmAnalysisError, KeyError, ValueError) as err:
            notes["noshow"] = f"no-show risk not scored: {err}"
    elif model is None:
        notes["noshow"] = "the no-show risk model could not be fitted on this data"
    upcoming = upcoming_appointments(appts, moment, scores, replies)
    if sends is not None and len(sends):
        today = pd.DataFrame({"patient_id": sends["환자번호"].astype(str).to_numpy(), "list_name": sends_list,
                              "kind": "appointment_reminder", "planned_at": pd.to_datetime(sends["발송일시"]).dt.strftime("%Y-%m-%d %H:%M").to_numpy(),
                              "channel": sends["채널"].astype(object).to_numpy(),
                              "text": sends["메시지"].astype(object).to_numpy()})
        tables["messages"] = pd.concat([tables["messages"], today], ignore_index=True)
    return with_appointments(tables, upcoming), notes
