"""The daily run: load the extract, plan the day's reminders and tomorrow's calls, publish atomically.

:func:`run_daily` writes ``<outreach>/daily/YYYY-MM-DD/`` — the outreach folder of the monthly run
(``--outreach-dir``, default ``outreach`` beside ``--out``:
:func:`crm_analysis.monthly.run.default_outreach_dir`) — holding

- ``예약알림_발송_YYYY-MM-DD.csv/.xlsx``: every reminder step due that day (:mod:`crm_analysis.daily.sends`);
- ``예약확인_전화_<next day>.csv/.xlsx``: tomorrow's appointments in call order (:mod:`crm_analysis.daily.calls`);
- ``안내.txt``: the extract moment, each file, its rows and what to do;
- ``cards.sqlite``: the caller-ID card index (:mod:`crm_analysis.daily.cards`), read by ``crm-analysis lookup``
  and ``crm-analysis serve``.

With the risk model, the month's no-show model is kept in ``<outreach>/daily/.model/`` (owner-only; see
:mod:`crm_analysis.daily.model_cache`): fitted on the month's first run, read back on its other days.

The folder is assembled in a hidden staging folder beside it and swapped into place in one rename, with
one run at a time writing into ``daily/`` (the lock and publishing of :mod:`crm_analysis.monthly.publish`);
folders 0700, files 0600, formula-safe cells; the same date and data give byte-identical files.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm_analysis.campaigns.outreach import GUIDE_NAME, write_outreach
from crm_analysis.daily.calls import confirmation_calls
from crm_analysis.daily.cards import daily_card_tables
from crm_analysis.daily.lists import calls_list_name, calls_table, daily_guide, sends_list_name, sends_table
from crm_analysis.daily.moment import clinic_at, daily_moment
from crm_analysis.daily.sends import ReminderSends, reminder_sends
from crm_analysis.monthly import publish as pub
from crm_analysis.profile.card_index import INDEX_NAME, index_meta, write_card_index

__all__ = ["DAILY_FOLDER", "DailyLists", "DailyResult", "daily_lists", "run_daily", "daily_folder"]

#: The subfolder of the outreach folder holding one folder per day.
DAILY_FOLDER = "daily"


@dataclass(frozen=True)
class DailyLists:
    """The day's lists, before writing.

    Attributes
    ----------
    day : Timestamp
        The day planned; the extract moment is its 00:00.
    reminders : ReminderSends
    calls : DataFrame
        :data:`~crm_analysis.daily.calls.CALL_COLUMNS`.
    replies_known : bool
        Whether the reminders table records replies.
    """

    day: pd.Timestamp
    reminders: ReminderSends = field(repr=False)
    calls: pd.DataFrame = field(repr=False)
    replies_known: bool = False

    def tables(self, patients: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """The staff files' tables by file name (Korean headers)."""
        return {sends_list_name(self.day): sends_table(self.reminders.sends, patients),
                calls_list_name(self.day + pd.Timedelta(days=1)): calls_table(self.calls, patients)}

    def guide(self) -> str:
        """The folder's ``안내.txt``."""
        source = "noshow_model" if (self.calls["risk_source"] == "noshow_model").any() else "prior_no_shows"
        return daily_guide(self.day, sends_list_name(self.day), len(self.reminders.sends),
                           calls_list_name(self.day + pd.Timedelta(days=1)), len(self.calls), risk_source=source,
                           replies_known=self.replies_known, dropped=self.reminders.dropped)


@dataclass
class DailyResult:
    """What a daily run published: the folder, its files, rows per list and seconds per step."""

    day: pd.Timestamp
    folder: Path
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    risk_source: str = "prior_no_shows"
    #: The month's no-show model: ``"fitted"`` (and cached), ``"reused"`` (from the cache) or ``"none"``.
    model: str = "none"


def daily_lists(clinic, date, *, config=None, scores=None, model=None, known=None) -> DailyLists:
    """The reminder sends of `date` and the confirmation calls for the day after (pure; nothing is written).

    Parameters
    ----------
    clinic : ClinicData
    date : date-like
        The day planned (explicit; never today).
    config : path, mapping or CampaignConfig, optional
        Campaign definitions (the reminder campaign's steps, channels, window, templates).
    scores : DataFrame or False, optional
        No-show risk scores for the call list (see :func:`~crm_analysis.daily.calls.confirmation_calls`).
    model : NoShowRiskModel, optional
        The fitted month model to score the call list with (default: fitted here).
    known : ClinicData, optional
        ``clinic_at(clinic, moment)`` when already made.

    Returns
    -------
    DailyLists
    """
    moment = daily_moment(clinic, date)
    known = clinic_at(clinic, moment) if known is None else known
    rem = known.tables.get("reminders")
    replies = rem is not None and "reply" in rem and bool(rem["reply"].notna().any())
    return DailyLists(day=moment, reminders=reminder_sends(clinic, moment, config=config, known=known),
                      calls=confirmation_calls(clinic, moment, known=known, scores=scores, model=model),
                      replies_known=replies)


def daily_folder(outreach_dir: str | Path) -> Path:
    """``<outreach_dir>/daily``: where the daily folders go."""
    return Path(outreach_dir) / DAILY_FOLDER


def run_daily(date, source: str | Path, *, mapping: str | Path | None = None, out: str | Path = "reports",
              outreach_dir: str | Path | None = None, rules: str | Path | None = None, risk_model: bool = True,
              clinic=None) -> DailyResult:
    """Run the day `date` on `source` and publish ``<outreach>/daily/YYYY-MM-DD/`` atomically.

    Parameters
    ----------
    date : str or date-like
        ``YYYY-MM-DD``, the day planned (explicit: a cron job passes ``$(date +%F)``).
    source : str or Path
        Clinic data, as for :func:`crm_analysis.load_clinic` (a validated cache folder is read without
        validating again).
    mapping : str or Path, optional
    out : str or Path
        The monthly run's reports folder; only used to find the default outreach folder beside it.
    outreach_dir : str or Path, optional
        The outreach folder (default: :func:`~crm_analysis.monthly.run.default_outreach_dir` of `out`).
    rules : str or Path, optional
        The analyst's rule folder; its ``campaigns.yaml`` (if any) defines the reminder campaign.
    risk_model : bool
        Rank the call list by :mod:`crm_analysis.noshow`'s risk, with the month's model (fitted on the month's
        first run on the last :data:`~crm_analysis.daily.calls.TRAIN_MONTHS` months before the month, then read
        from ``<outreach>/daily/.model/``: :mod:`crm_analysis.daily.model_cache`); False: by earlier no-shows.
    clinic : ClinicData, optional
        Already loaded data (then `source` and `mapping` only name it).

    Returns
    -------
    DailyResult

    Raises
    ------
    SourceError
        The date is not a day, or the data does not reach the day before it (nothing is written).
    DataValidationError
        The source breaks the data contract (nothing is written).
    RunFailed
        Another daily run is writing into the same outreach folder.
    """
    from crm_analysis.io import load_clinic
    from crm_analysis.monthly.rules import load_rule_set
    from crm_analysis.monthly.run import default_outreach_dir

    timings: dict[str, float] = {}
    started = time.perf_counter()
    day = _parse_day(date)
    config = load_rule_set(rules).campaigns
    root = Path(outreach_dir).resolve() if outreach_dir else default_outreach_dir(out)
    if clinic is None:
        clinic = load_clinic(source, mapping=mapping)
    timings["load"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    moment = daily_moment(clinic, day)  # SourceError before anything is written
    known = clinic_at(clinic, moment)
    folder = daily_folder(pub.ensure_private(root))
    pub.ensure_private(folder)
    timings["moment"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    model, model_state = None, "none"
    if risk_model:
        from crm_analysis.daily.calls import TRAIN_MONTHS
        from crm_analysis.daily.model_cache import MODEL_FOLDER, month_model

        model, model_state = month_model(known, moment, source=source, folder=folder / MODEL_FOLDER,
                                         train_months=TRAIN_MONTHS, clinic=clinic)
        timings["model"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
    lists = daily_lists(clinic, day, config=config, known=known,
                        scores=False if not risk_model or model is None else None, model=model)
    tables = lists.tables(clinic.tables["patients"])
    timings["lists"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    cards, card_notes = daily_card_tables(clinic, known, moment, outreach_dir=root, source=source, model=model,
                                          sends=tables[sends_list_name(day)], sends_list=sends_list_name(day))
    timings["cards"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    name = f"{day:%Y-%m-%d}"
    final = folder / name
    with pub.folder_lock(folder):
        pub.clean_partials(folder, None)
        staging = pub.staging_folder(folder, name)
        try:
            written = write_outreach(tables, staging, as_of=day, notes={GUIDE_NAME: lists.guide()})
            meta = index_meta(day - pd.Timedelta(days=1), f"daily {name}", source, len(cards["cards"]), card_notes)
            written.append(write_card_index(cards, staging / INDEX_NAME, meta))
            pub.publish(staging, final, mode=0o700)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    timings["write"] = round(time.perf_counter() - started, 2)
    source_kind = "noshow_model" if (lists.calls["risk_source"] == "noshow_model").any() else "prior_no_shows"
    return DailyResult(day=day, folder=final, files=[final / p.relative_to(staging) for p in written],
                       rows={k: len(v) for k, v in tables.items()}, timings=timings, risk_source=source_kind,
                       model=model_state)


def _parse_day(date) -> pd.Timestamp:
    from crm_analysis.exceptions import SourceError

    if isinstance(date, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date.strip()):
        raise SourceError(f"--date {date!r} must be a day written YYYY-MM-DD, e.g. 2026-10-15 (the run plans the "
                          "whole day)")
    try:
        day = pd.Timestamp(date)
    except (TypeError, ValueError):
        raise SourceError(f"--date {date!r} is not a date (use YYYY-MM-DD, e.g. 2026-10-15)") from None
    if day != day.normalize():
        raise SourceError(f"--date {date!r} must be a day without a time (the run plans the whole day)")
    return day
