"""VIPs and segment moves as a KPI section of the monthly report (``kpis.json`` → ``vip``).

The monthly run registers :func:`vip_kpis` in :mod:`crm_analysis.monthly.kpis`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from crm_analysis.features import patient_features
from crm_analysis.figures import records, shown_count
from crm_analysis.privacy import suppress_small_counts
from crm_analysis.value.migration import NOT_REGISTERED, SegmentMigration, previous_month_end, segment_migration
from crm_analysis.value.vip import select_vips, vip_rules

__all__ = ["vip_kpis", "VIP_FIGURES"]

#: The headline figures (``null`` in kpis.json when the section is skipped).
VIP_FIGURES = ("count", "entered", "left", "qualified", "segments")


def _hide_partner(moves: dict) -> dict:
    """Secondary suppression of ``count = count_before + entered - left``: a lone hidden value takes its partner."""
    hidden = [k for k, v in moves.items() if v is None]
    if len(hidden) != 1:
        return moves
    partner = {"count": "count_before", "count_before": "count", "entered": "left", "left": "entered"}[hidden[0]]
    return {**moves, partner: None}


def vip_kpis(clinic, as_of, min_count: int = 5, *, features: pd.DataFrame | None = None,
             vips: pd.DataFrame | None = None, segment_rules: str | Path | Mapping | None = None,
             vip_rule_file: str | Path | Mapping | None = None, migration: SegmentMigration | None = None) -> dict:
    """VIPs now and at the previous month's end, who entered and left, and the RFM segment sizes.

    Parameters
    ----------
    clinic : ClinicData
        As known at `as_of`.
    as_of : str or Timestamp
    min_count : int
        Counts from 1 to ``min_count - 1`` are hidden (with secondary suppression).
    features : DataFrame, optional
        :func:`~crm_analysis.features.patient_features` at `as_of` (made here when omitted).
    vips : DataFrame, optional
        :func:`~crm_analysis.value.vip.select_vips` at `as_of` (made here when omitted).
    segment_rules, vip_rule_file : path, mapping or None
        Segment and VIP rules (None: the shipped ones).
    migration : SegmentMigration, optional
        :func:`~crm_analysis.value.migration.segment_migration` from the previous month's end to `as_of` with
        those rules (made here when omitted).

    Returns
    -------
    dict
        ``before_as_of``, ``count``, ``count_before``, ``entered``, ``left``, ``qualified``, ``capacity``,
        ``segments`` (rows), ``new_patients_since``, ``suppressed_rows``.
    """
    as_of = pd.Timestamp(as_of).normalize()
    before = previous_month_end(as_of)
    if vips is None:
        vips = select_vips(patient_features(clinic, as_of) if features is None else features, as_of,
                           rules=vip_rule_file)
    moves = migration if migration is not None else \
        segment_migration(clinic, before, as_of, rules=segment_rules, vip_rules=vip_rule_file, features_to=features)
    now, entered, left = int(vips["selected"].sum()), len(moves.vip_entered), len(moves.vip_left)
    counts = moves.counts
    old = counts.drop(index=NOT_REGISTERED, errors="ignore")
    table = pd.DataFrame({"patients_before": old.sum(axis=1).reindex(counts.columns, fill_value=0),
                          "patients_now": counts.sum(axis=0),
                          "stayed": pd.Series(np.diag(old.reindex(columns=old.index).to_numpy()), index=old.index)
                          .reindex(counts.columns, fill_value=0)}).astype("int64")
    shown = suppress_small_counts(table, list(table.columns), min_count, additive="columns")
    new_since = int(counts.loc[NOT_REGISTERED].sum()) if NOT_REGISTERED in counts.index else 0
    # count = count_before + entered - left: one hidden number among the four is the others' sum, so its
    # partner is hidden too (secondary suppression).
    moved = _hide_partner({"count": shown_count(now, min_count),
                           "count_before": shown_count(now - entered + left, min_count),
                           "entered": shown_count(entered, min_count), "left": shown_count(left, min_count)})
    return {"before_as_of": f"{before:%Y-%m-%d}", **moved, "qualified": shown_count(len(vips), min_count),
            "capacity": vip_rules(vip_rule_file)["capacity"],
            "segments": records(shown.rename_axis("segment").reset_index()),
            "new_patients_since": shown_count(new_since, min_count),
            "suppressed_rows": int(shown.isna().any(axis=1).sum())}
