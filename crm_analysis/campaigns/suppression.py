"""Suppression list from the contacts log (발송이력): who must not be messaged again, and why.

Three reasons, each per patient and channel (``channel`` = ``all`` for the last):

``hard_bounce``
    Any hard bounce on the channel (invalid number or address).
``soft_bounce_repeated``
    The last ``soft_bounce_run`` (3) messages on the channel all soft-bounced and
    they span more than ``soft_bounce_span_days`` (14) days.
``no_engagement``
    The patient's last ``no_engagement_after`` (5) sent messages drew no click, no
    reply and no visit after the first of them. Opens alone are not trusted
    (mail clients and previews open messages automatically). Applies to
    advertising only: appointment reminders and information still go out.

Only rows of the ``sent`` arm count; holdout rows were never sent.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["SUPPRESSION_COLUMNS", "suppression_list"]

SUPPRESSION_COLUMNS = ["patient_id", "channel", "reason", "scope", "since", "n_messages"]


def suppression_list(contacts: pd.DataFrame, visits: pd.DataFrame, as_of, *,
                     rules: Mapping | None = None) -> pd.DataFrame:
    """Contacts to suppress, with a reason per contact.

    Parameters
    ----------
    contacts : DataFrame
        The contacts log (``patient_id``, ``channel``, ``sent_at``, ``arm``,
        ``bounce_type``, ``clicked``, ``replied``).
    visits : DataFrame
        ``patient_id``, ``visit_date`` (a visit counts as engagement).
    as_of : date-like
        Only messages and visits up to the end of this day are used.
    rules : mapping, optional
        ``soft_bounce_run``, ``soft_bounce_span_days``, ``no_engagement_after``
        (defaults 3, 14, 5; the ``suppression`` section of the campaign config).

    Returns
    -------
    DataFrame
        Columns :data:`SUPPRESSION_COLUMNS`: ``scope`` is ``all`` (no message on
        that channel) or ``advertising``; ``since`` the date the rule was met;
        ``n_messages`` the messages behind the decision. Sorted by patient,
        channel, reason.
    """
    rules = {"soft_bounce_run": 3, "soft_bounce_span_days": 14, "no_engagement_after": 5, **(rules or {})}
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    c = contacts.loc[(contacts["arm"] == "sent").to_numpy() & (contacts["sent_at"] < end).fillna(False).to_numpy()
                     & contacts["patient_id"].notna().to_numpy(),
                     ["patient_id", "channel", "sent_at", "bounce_type", "clicked", "replied"]]
    # patients as integer codes in id order: sorting and grouping 10^6 contacts by an integer, not by text
    code, ids = pd.factorize(c["patient_id"], sort=True)
    c = c.assign(patient_id=code, channel=c["channel"].astype(str),
                 bounce=c["bounce_type"].astype(object).fillna("none"))
    c = c.sort_values(["patient_id", "channel", "sent_at"], kind="stable").reset_index(drop=True)
    parts = []

    hard = c[c["bounce"] == "hard"].groupby(["patient_id", "channel"], observed=True)
    parts.append(hard["sent_at"].min().rename("since").reset_index().assign(
        reason="hard_bounce", scope="all", n_messages=hard.size().to_numpy()))

    run, span = int(rules["soft_bounce_run"]), int(rules["soft_bounce_span_days"])
    last = c.groupby(["patient_id", "channel"], observed=True).tail(run)
    last = last.assign(is_soft=(last["bounce"] == "soft").astype(np.int64))
    g = last.groupby(["patient_id", "channel"], observed=True)
    soft = pd.DataFrame({"n": g.size(), "n_soft": g["is_soft"].sum(),
                         "first": g["sent_at"].min(), "last": g["sent_at"].max()})
    soft = soft[(soft["n"] >= run) & (soft["n_soft"] == soft["n"]) & ((soft["last"] - soft["first"]).dt.days > span)]
    parts.append(soft.reset_index().assign(reason="soft_bounce_repeated", scope="all", since=soft["last"].to_numpy(),
                                           n_messages=soft["n"].to_numpy())
                 [["patient_id", "channel", "since", "reason", "scope", "n_messages"]])

    n_after = int(rules["no_engagement_after"])
    by_p = c.sort_values(["patient_id", "sent_at"], kind="stable").groupby("patient_id").tail(n_after)
    engaged = by_p["clicked"].fillna(False).astype(bool) | by_p["replied"].fillna(False).astype(bool)
    g = by_p.assign(engaged=engaged).groupby("patient_id")
    eng = pd.DataFrame({"n": g.size(), "engaged": g["engaged"].any(), "first": g["sent_at"].min(),
                        "last": g["sent_at"].max()})
    eng = eng[(eng["n"] >= n_after) & ~eng["engaged"]]
    eng_ids = pd.Index(ids.take(eng.index.to_numpy()))
    v = visits.loc[(visits["visit_date"] < end).fillna(False).to_numpy() & _is_in(visits["patient_id"], eng_ids),
                   ["patient_id", "visit_date"]]
    last_visit = v.groupby("patient_id")["visit_date"].max().reindex(eng_ids).to_numpy()
    eng = eng[~(last_visit > eng["first"].dt.normalize().to_numpy())]
    parts.append(pd.DataFrame({"patient_id": eng.index, "channel": "all", "since": eng["last"].to_numpy(),
                               "reason": "no_engagement", "scope": "advertising", "n_messages": eng["n"].to_numpy()}))
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else \
        pd.DataFrame(columns=SUPPRESSION_COLUMNS)
    out["since"] = pd.to_datetime(out["since"]).dt.normalize()
    out["n_messages"] = out["n_messages"].astype(np.int64)
    out["patient_id"] = pd.Series(ids.take(out["patient_id"].to_numpy(np.int64)), index=out.index).astype(str) \
        if len(out) else out["patient_id"].astype(str)
    return out[SUPPRESSION_COLUMNS].sort_values(["patient_id", "channel", "reason"], kind="stable").reset_index(drop=True)


def _is_in(values: pd.Series, keys: pd.Index) -> np.ndarray:
    """``values.isin(keys)`` as an array; by Arrow for Arrow text (pandas walks Arrow keys in Python)."""
    if not isinstance(values.array, pd.arrays.ArrowExtensionArray):
        return values.isin(keys).to_numpy()
    values_pa = pa.array(values.array)
    try:
        keys_pa = pa.array(keys.array).cast(values_pa.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):  # keys of another type
        return values.isin(keys).to_numpy()
    if not (pa.types.is_string(values_pa.type) or pa.types.is_large_string(values_pa.type)):
        return values.isin(keys).to_numpy()
    return np.asarray(pc.is_in(values_pa, value_set=keys_pa).to_numpy(zero_copy_only=False), dtype=bool)
