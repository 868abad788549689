"""Staff outreach lists: what to send to whom and when, written for staff (CSV with BOM and XLSX).

:func:`build_outreach` plans the period after `as_of` and returns three tables:

``outreach``
    The staff list, only the columns staff need: campaign, name, contact
    (phone for KakaoTalk/SMS, email address for email), channel, send time and
    the rendered message. Headers in the report language.
``holdout``
    The holdout assignment (run id, campaign, patient id, arm, planned send
    time) for later evaluation; no names or contact details.
``suppression``
    Who is suppressed on which channel and why (patient id, no contact details).

:func:`write_outreach` writes each as CSV (UTF-8 with a byte-order mark, so
Korean Excel opens it) and XLSX, owner-readable only (files 0600 in a 0700
folder), atomically, with every text cell that would start a spreadsheet formula
escaped by a leading ``'`` (:func:`crm_analysis.cells.neutralise_formulas`). Output is byte-identical for the same inputs: rows are
sorted, times are the plan's, and the XLSX zip carries fixed timestamps and
document properties (never the clock).

The monthly run (:mod:`crm_analysis.monthly.run`) writes the three tables of
the month's plan (:func:`outreach_tables`) as ``campaign_outreach``,
``campaign_holdout`` and ``campaign_suppression``.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path
from typing import Mapping

import pandas as pd

from crm_analysis.campaigns.definitions import CampaignConfig
from crm_analysis.cells import neutralise_formulas
from crm_analysis.campaigns.planner import CampaignPlan, plan_campaigns
from crm_analysis.i18n import check_lang, label
from crm_analysis.io.writing import atomic_write

__all__ = ["STAFF_COLUMNS", "staff_list", "build_outreach", "outreach_tables", "write_outreach"]

#: Staff list columns (label keys ``camp_col_<name>``).
STAFF_COLUMNS = ["campaign", "name", "contact", "channel", "send_at", "message"]
_FIXED_TIME = (2000, 1, 1, 0, 0, 0)
_FIXED_ISO = "2000-01-01T00:00:00Z"


def staff_list(plan: CampaignPlan, lang: str = "ko") -> pd.DataFrame:
    """The plan's messages as the staff list (:data:`STAFF_COLUMNS`, headers in `lang`)."""
    lang = check_lang(lang)
    s = plan.sends
    patients_name = s.get("name")
    out = pd.DataFrame({
        "campaign": s["campaign_id"].astype(str),
        "name": (patients_name if patients_name is not None else pd.Series("", index=s.index)).astype(object),
        "contact": s["contact"].astype(str),
        "channel": s["channel"].map(lambda c: label(f"camp_channel_{c}", lang)),
        "send_at": pd.to_datetime(s["send_at"]).dt.strftime("%Y-%m-%d %H:%M"),  # an empty plan has no dtype
        "message": s["message"].astype(str),
    })
    return out.rename(columns={c: label(f"camp_col_{c}", lang) for c in STAFF_COLUMNS})


def build_outreach(clinic, as_of, *, config: str | Mapping | CampaignConfig | None = None,
                   lang: str = "ko", candidates: Mapping[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """Plan the period after `as_of` and return ``outreach``, ``holdout`` and ``suppression`` tables.

    Parameters
    ----------
    clinic : ClinicData
        The clinic (a snapshot at `as_of` is taken here, so nothing later is used).
    as_of : date-like
        Data date; the plan covers the rest of the month starting the next day.
    config : optional
        Campaign definitions override (:func:`~crm_analysis.campaigns.load_campaigns`).
    lang : {"ko", "en"}
        Language of messages and headers.
    candidates : mapping, optional
        Ready VIP/recall audiences (see :func:`~crm_analysis.campaigns.plan_campaigns`).

    Returns
    -------
    dict of str to DataFrame
    """
    as_of = pd.Timestamp(as_of).normalize()
    if clinic.as_of is None or clinic.as_of != as_of:
        clinic = clinic.snapshot(as_of)
    plan = plan_campaigns(clinic, as_of, config=config, lang=lang, candidates=candidates)
    return outreach_tables(plan, clinic, lang)


def outreach_tables(plan: CampaignPlan, clinic, lang: str = "ko") -> dict[str, pd.DataFrame]:
    """A plan's ``outreach`` (the staff list, with names), ``holdout`` and ``suppression`` tables.

    Parameters
    ----------
    plan : CampaignPlan
        From :func:`~crm_analysis.campaigns.plan_campaigns`.
    clinic : ClinicData
        The clinic the plan was made on (names come from its patients table).
    lang : {"ko", "en"}
        Language of the headers.

    Returns
    -------
    dict of str to DataFrame
    """
    # to_datetime: an empty plan's columns carry no datetime dtype
    holdout = plan.holdout.assign(
        planned_send_at=pd.to_datetime(plan.holdout["planned_send_at"]).dt.strftime("%Y-%m-%d %H:%M"))
    supp = plan.suppression.assign(since=pd.to_datetime(plan.suppression["since"]).dt.strftime("%Y-%m-%d"))
    return {"outreach": staff_list(_with_names(plan, clinic), lang), "holdout": holdout.reset_index(drop=True),
            "suppression": supp.reset_index(drop=True)}


def _with_names(plan: CampaignPlan, clinic) -> CampaignPlan:
    from dataclasses import replace

    patients = clinic.tables["patients"]
    if "name" not in patients.columns:  # an export without names: the list shows ids and phones only
        patients = patients.assign(name="")
    names = patients.assign(patient_id=lambda d: d["patient_id"].astype(str)).set_index("patient_id")["name"]
    sends = plan.sends.assign(name=names.reindex(plan.sends["recipient_id"].astype(str)).fillna("").to_numpy())
    return replace(plan, sends=sends)


def _csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8-sig")


def _xlsx_bytes(df: pd.DataFrame, sheet: str) -> bytes:
    """An XLSX workbook whose bytes depend only on `df` (fixed zip times and document dates)."""
    import datetime as dt

    raw = io.BytesIO()
    with pd.ExcelWriter(raw, engine="openpyxl") as book:
        book.book.properties.creator = "crm_analysis"
        book.book.properties.created = dt.datetime(2000, 1, 1)
        df.astype(object).where(df.notna(), None).to_excel(book, sheet_name=sheet[:31], index=False)
    src = zipfile.ZipFile(io.BytesIO(raw.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name in sorted(src.namelist()):
            data = src.read(name)
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)", rb"\g<1>" + _FIXED_ISO.encode() + rb"\2",
                              data)
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            dst.writestr(info, data)
    return out.getvalue()


def write_outreach(lists: Mapping[str, pd.DataFrame], folder: str | Path) -> list[Path]:
    """Write each table as ``<name>.csv`` (UTF-8 with BOM) and ``<name>.xlsx`` into `folder`.

    The folder is created (and set) 0700 and every file 0600: these lists hold
    personal data, so keep the folder apart from management reports. Text cells
    that would start a formula get a leading ``'`` (the tables given are not modified).

    Returns
    -------
    list of Path
        The files written, sorted.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    written = []
    for name in sorted(lists):
        df = neutralise_formulas(lists[name])
        csv, xlsx = _csv_bytes(df), _xlsx_bytes(df, name)
        written.append(atomic_write(folder / f"{name}.csv", lambda h, b=csv: h.write(b), mode=0o600))
        written.append(atomic_write(folder / f"{name}.xlsx", lambda h, b=xlsx: h.write(b), mode=0o600))
    return sorted(written)
