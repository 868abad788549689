"""The month's staff lists: one per campaign from the month's plan, the system files, and registered producers.

The folder ``outreach/YYYY-MM/`` then holds, for the month after ``YYYY-MM``:

- one list per campaign, named in Korean (``재내원안내_2026-11`` …) and the consent reconfirmation
  notices (:mod:`crm_analysis.campaigns.staff_lists`): exactly the plan's messages, so the recall call list
  and the recall messages are the same patients, and no holdout patient is on any list;
- ``안내.txt``: each file, its rows, what to do with it and by when;
- ``system/``: the holdout assignment and the suppression list (ids only), with their own ``안내.txt``;
- the lists of registered producers (:data:`crm_analysis.report.outreach.PRODUCERS`), if any.
"""

from __future__ import annotations

from typing import Callable, Mapping

from crm_analysis.campaigns.outreach import GUIDE_NAME, SYSTEM_FOLDER, outreach_notes, outreach_tables
from crm_analysis.campaigns.staff_lists import WRAPPED_COLUMNS, folder_guide, staff_lists
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.monthly.month import Month
from crm_analysis.report.outreach import PRODUCERS, OutreachLists, produce_outreach

__all__ = ["outreach_lists"]


def outreach_lists(month: Month, *, analyses: bool = True,
                   producers: Mapping[str, Callable] | None = None) -> OutreachLists:
    """The month's outreach lists, by name (each becomes ``<name>.csv`` and ``<name>.xlsx``), with the read-mes.

    Parameters
    ----------
    month : Month
        Its campaign plan (with the recall audience from its churn model) is used, fitted once or loaded from
        the run.
    analyses : bool
        False: only the `producers` given.
    producers : mapping, optional
        More lists: name -> ``f(clinic, as_of) -> DataFrame``; default (with `analyses`) the ones
        registered in :data:`crm_analysis.report.outreach.PRODUCERS`.

    Returns
    -------
    OutreachLists
        The staff lists, ``system/campaign_holdout`` and ``system/campaign_suppression``, then the producers'
        lists; ``skipped`` names each list the data could not support, with the reason; ``notes`` holds
        ``안내.txt`` and ``system/안내.txt``.
    """
    lists = OutreachLists()
    plan = None
    if analyses:
        try:
            plan = month.campaigns
        except CrmAnalysisError as err:
            lists.skipped["campaigns"] = getattr(err, "reason", None) or str(err)
        else:
            staff = staff_lists(plan, month.clinic.tables["patients"], month.rules.campaigns)  # made once
            lists.update(outreach_tables(plan, month.clinic, month.rules.campaigns, staff=staff))
            lists.wrap.update({name: WRAPPED_COLUMNS for name in lists if not name.startswith(SYSTEM_FOLDER)})
    chosen = dict(PRODUCERS) if analyses and producers is None else dict(producers or {})
    extra = produce_outreach(month.clinic, month.as_of, chosen) if chosen else OutreachLists()
    lists.update(extra)
    lists.skipped.update(extra.skipped)
    others = {name: len(frame) for name, frame in extra.items()}
    if plan is not None:
        lists.notes.update(outreach_notes(plan, month.clinic, month.rules.campaigns, others=others,
                                          skipped=lists.skipped, staff=staff))
        lists.skipped.update(plan.skipped)
    elif others or lists.skipped:
        lists.notes[GUIDE_NAME] = folder_guide([], f"{month.as_of:%Y-%m}", system_folder=SYSTEM_FOLDER,
                                               others=others, skipped=lists.skipped)
    return lists
