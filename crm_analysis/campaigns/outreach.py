"""Staff outreach files from a plan: one list per campaign, the system files and the read-mes.

:func:`outreach_tables` turns a :class:`~crm_analysis.campaigns.planner.CampaignPlan`
into the tables of the outreach folder:

- one staff list per campaign, named in Korean for the month planned
  (``재내원안내_2026-11`` …), and the consent reconfirmation notices
  (:mod:`crm_analysis.campaigns.staff_lists`): exactly the plan's messages;
- ``system/campaign_holdout``: the holdout assignment (run id, campaign, patient id, arm, planned send
  time) for later evaluation, no names or contact details;
- ``system/campaign_suppression``: who is suppressed on which channel and why (patient ids only).

:func:`build_outreach` plans the period after `as_of` and returns them;
:func:`write_outreach` writes each as CSV (UTF-8 with a byte-order mark, so Korean Excel opens it) and
XLSX (:mod:`crm_analysis.io.spreadsheets`: frozen header with a filter, fitted widths, real date-times,
wrapped messages), with the folder's ``안내.txt`` and ``system/안내.txt``, owner-readable only (files
0600 in 0700 folders), every text cell that would start a spreadsheet formula escaped by a leading
``'`` (:func:`crm_analysis.cells.neutralise_formulas`). Output is byte-identical for the same inputs.

The monthly run (:mod:`crm_analysis.monthly.outreach`) writes the same tables for the month's plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from crm_analysis.campaigns.definitions import CampaignConfig, load_campaigns
from crm_analysis.campaigns.planner import CampaignPlan, plan_campaigns
from crm_analysis.campaigns.staff_lists import (STAFF_FILES, WRAPPED_COLUMNS, StaffList, folder_guide, staff_lists,
                                                system_guide)
from crm_analysis.cells import neutralise_formulas

__all__ = ["SYSTEM_FOLDER", "GUIDE_NAME", "build_outreach", "outreach_tables", "outreach_notes", "write_outreach"]

#: The subfolder of the system files (holdout assignment, suppression list).
SYSTEM_FOLDER = "system"
#: The folders' read-me.
GUIDE_NAME = "안내.txt"


def build_outreach(clinic, as_of, *, config: str | Mapping | CampaignConfig | None = None,
                   candidates: Mapping[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """Plan the period after `as_of` and return its outreach tables (:func:`outreach_tables`).

    Parameters
    ----------
    clinic : ClinicData
        The clinic (a snapshot at `as_of` is taken here, so nothing later is used).
    as_of : date-like
        Data date; the plan covers the rest of the month starting the next day.
    config : optional
        Campaign definitions override (:func:`~crm_analysis.campaigns.load_campaigns`).
    candidates : mapping, optional
        Ready VIP/recall audiences (see :func:`~crm_analysis.campaigns.plan_campaigns`).

    Returns
    -------
    dict of str to DataFrame
    """
    as_of = pd.Timestamp(as_of).normalize()
    if clinic.as_of is None or clinic.as_of != as_of:
        clinic = clinic.snapshot(as_of)
    plan = plan_campaigns(clinic, as_of, config=config, candidates=candidates)
    return outreach_tables(plan, clinic, config)


def outreach_tables(plan: CampaignPlan, clinic, config: str | Mapping | CampaignConfig | None = None, *,
                    staff: list[StaffList] | None = None) -> dict[str, pd.DataFrame]:
    """A plan's staff lists (by their Korean names) and its ``system/`` files.

    Parameters
    ----------
    plan : CampaignPlan
        From :func:`~crm_analysis.campaigns.plan_campaigns`.
    clinic : ClinicData
        The clinic the plan was made on (names come from its patients table).
    config : optional
        The campaign definitions the plan was made with.
    staff : list of StaffList, optional
        The plan's :func:`~crm_analysis.campaigns.staff_lists.staff_lists`, when already made.

    Returns
    -------
    dict of str to DataFrame
    """
    staff = staff_lists(plan, clinic.tables["patients"], config) if staff is None else staff
    tables = {item.name: item.frame for item in staff}
    # to_datetime: an empty plan's columns carry no datetime dtype
    tables[f"{SYSTEM_FOLDER}/campaign_holdout"] = plan.holdout.assign(
        planned_send_at=pd.to_datetime(plan.holdout["planned_send_at"])).reset_index(drop=True)
    tables[f"{SYSTEM_FOLDER}/campaign_suppression"] = plan.suppression.assign(
        since=pd.to_datetime(plan.suppression["since"])).reset_index(drop=True)
    return tables


def outreach_notes(plan: CampaignPlan, clinic, config: str | Mapping | CampaignConfig | None = None, *,
                   others: Mapping[str, int] | None = None, skipped: Mapping[str, str] | None = None,
                   staff: list[StaffList] | None = None) -> dict[str, str]:
    """The read-mes of the outreach folder: ``안내.txt`` (each staff list, its rows, what to do and by when)
    and ``system/안내.txt``; `staff`: the plan's staff lists, when already made."""
    lists = staff_lists(plan, clinic.tables["patients"], config) if staff is None else staff
    month = f"{plan.as_of:%Y-%m}"
    # a campaign the plan skipped is named by its list, as staff know it
    stems = {c.id: STAFF_FILES.get(c.audience, (c.id,))[0] for c in load_campaigns(config).campaigns}
    missing = {f"{stems.get(cid, cid)}_{plan.start:%Y-%m}": reason for cid, reason in plan.skipped.items()}
    return {GUIDE_NAME: folder_guide(lists, month, system_folder=SYSTEM_FOLDER, others=dict(others or {}),
                                     skipped={**missing, **{k: v for k, v in dict(skipped or {}).items()
                                                            if k not in plan.skipped}}),
            f"{SYSTEM_FOLDER}/{GUIDE_NAME}": system_guide()}


def write_outreach(lists: Mapping[str, pd.DataFrame], folder: str | Path, *, as_of: str | pd.Timestamp = "2000-01-01",
                   notes: Mapping[str, str] | None = None) -> list[Path]:
    """Write each table as ``<name>.csv`` (UTF-8 with BOM) and ``<name>.xlsx``, and the `notes`, into `folder`.

    The folder is created (and set) 0700 and every file 0600: these lists hold personal data, so keep the
    folder apart from management reports. Text cells that would start a formula get a leading ``'`` (the
    tables given are not modified); the message and reason columns wrap.

    Parameters
    ----------
    lists : mapping of str to DataFrame
        From :func:`outreach_tables` (a name ``system/<name>`` goes to that subfolder).
    folder : str or Path
    as_of : date-like
        Stamped into the XLSX files (deterministic bytes).
    notes : mapping, optional
        Text files, e.g. :func:`outreach_notes`.

    Returns
    -------
    list of Path
        The files written, sorted.
    """
    from crm_analysis.io.spreadsheets import write_spreadsheets

    safe = {name: neutralise_formulas(frame) for name, frame in lists.items()}
    wrap = {name: [c for c in WRAPPED_COLUMNS if c in frame.columns] for name, frame in safe.items()}
    return write_spreadsheets(safe, folder, stamp=as_of, wrap=wrap, notes=notes)
