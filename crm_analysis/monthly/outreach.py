"""The month's staff lists: recall and the campaign plan, from the month's models, plus registered producers."""

from __future__ import annotations

from typing import Callable, Mapping

from crm_analysis.campaigns.outreach import outreach_tables
from crm_analysis.churn.monthly import recall_outreach
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.monthly.month import Month
from crm_analysis.report.outreach import PRODUCERS, OutreachLists, produce_outreach

__all__ = ["outreach_lists"]


def outreach_lists(month: Month, *, analyses: bool = True,
                   producers: Mapping[str, Callable] | None = None) -> OutreachLists:
    """The month's outreach lists, by name (each becomes ``<name>.csv`` and ``<name>.xlsx``).

    Parameters
    ----------
    month : Month
        Its churn model, recall table and campaign plan are used (fitted once, or loaded from the run).
    analyses : bool
        False: only the `producers` given.
    producers : mapping, optional
        More lists: name -> ``f(clinic, as_of) -> DataFrame``; default (with `analyses`) the ones
        registered in :data:`crm_analysis.report.outreach.PRODUCERS`.

    Returns
    -------
    OutreachLists
        ``recall`` and ``campaign_outreach`` / ``campaign_holdout`` / ``campaign_suppression``, then the
        producers' lists; ``skipped`` names each list the data could not support, with the reason.
    """
    lists = OutreachLists()
    if analyses:
        try:
            lists["recall"] = recall_outreach(month.clinic, month.as_of, candidates=month.recall_candidates())
        except CrmAnalysisError as err:
            lists.skipped["recall"] = getattr(err, "reason", None) or str(err)
        try:
            tables = outreach_tables(month.campaigns, month.clinic, month.lang)
            lists.update({f"campaign_{name}": table for name, table in tables.items()})
        except CrmAnalysisError as err:
            for name in ("outreach", "holdout", "suppression"):
                lists.skipped[f"campaign_{name}"] = getattr(err, "reason", None) or str(err)
    chosen = dict(PRODUCERS) if analyses and producers is None else dict(producers or {})
    if chosen:
        extra = produce_outreach(month.clinic, month.as_of, chosen)
        lists.update(extra)
        lists.skipped.update(extra.skipped)
    return lists
