"""Outreach lists: who the front desk should contact this month, kept apart from the reports.

An *outreach producer* is a function ``producer(clinic, as_of) -> DataFrame``
that returns one row per patient to contact (it may include names and phone
numbers: these lists are for staff, not management). Producers are
registered by name with :func:`register_producer`; the monthly run calls every
registered producer after the notebooks, on the clinic as known at the
month's end, and writes each list as ``<name>.csv`` (UTF-8 with BOM, for
Korean Excel) and ``<name>.xlsx`` into ``outreach/YYYY-MM/``: a folder with
owner-only permissions (0700, files 0600), published atomically, separate from
``reports/``. No cell can act as a formula: text starting with ``=``, ``+``,
``-``, ``@``, tab or CR gets a leading ``'`` (:func:`crm_analysis.cells.neutralise_formulas`).

No producer is registered by default: the campaign module (issue #6) and the
churn module's recall list register theirs when they land, for example::

    from crm_analysis.report.outreach import register_producer

    @register_producer("recall")
    def _recall(clinic, as_of):
        return recall_candidates(clinic, as_of)[["patient_id", "name", "phone", "reason"]]

Files are deterministic: the same month run twice gives byte-identical lists
(the XLSX carries the month's end as its timestamps, not the time of writing).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from crm_analysis.cells import neutralise_formulas
from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import InsufficientDataError


class OutreachLists(dict):
    """Name -> list (DataFrame), plus :attr:`skipped` (name -> the reason a list could not be made),
    :attr:`wrap` (name -> columns whose text wraps in the XLSX) and :attr:`notes` (file name -> text, such as
    the folder's ``안내.txt``). A name may start with ``system/``: the list goes to that subfolder."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped: dict[str, str] = {}
        self.wrap: dict[str, tuple[str, ...]] = {}
        self.notes: dict[str, str] = {}

__all__ = ["PRODUCERS", "OutreachLists", "register_producer", "produce_outreach", "write_outreach_lists"]

Producer = Callable[[ClinicData, pd.Timestamp], pd.DataFrame]

#: Registered producers, in run order: list name -> function(clinic, as_of) -> DataFrame.
PRODUCERS: dict[str, Producer] = {}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


def register_producer(name: str, func: Producer | None = None, *, replace: bool = False):
    """Register an outreach-list producer (usable as a decorator).

    Parameters
    ----------
    name : str
        The list's file name without extension (letters, digits, ``_``, ``-``).
    func : callable, optional
        ``func(clinic, as_of) -> DataFrame``; omit to use as a decorator.
    replace : bool
        Allow replacing a producer of the same name.

    Raises
    ------
    ValueError
        If `name` is not a plain file name, or is taken and `replace` is False.
    """
    if not _NAME.match(name):
        raise ValueError(f"outreach list name {name!r} must be letters, digits, '_' or '-' (it becomes a file name)")

    def add(f: Producer) -> Producer:
        if name in PRODUCERS and not replace:
            raise ValueError(f"an outreach producer named {name!r} is already registered; pass replace=True")
        PRODUCERS[name] = f
        return f

    return add if func is None else add(func)


def produce_outreach(clinic: ClinicData, as_of: str | pd.Timestamp,
                     producers: Mapping[str, Producer] | None = None) -> dict[str, pd.DataFrame]:
    """Run the producers on the clinic as known at `as_of`.

    Parameters
    ----------
    clinic : ClinicData
        Cut to `as_of` first (``clinic.snapshot``), so lists never use later data.
    as_of : str or Timestamp
    producers : mapping, optional
        Name -> producer; default: the registered :data:`PRODUCERS`.

    Returns
    -------
    OutreachLists
        Name -> DataFrame. A list whose producer found the data too thin
        (:class:`~crm_analysis.exceptions.InsufficientDataError`) is left out
        and named in ``.skipped`` with the reason.

    Raises
    ------
    TypeError
        If a producer does not return a DataFrame.
    """
    as_of = pd.Timestamp(as_of).normalize()
    producers = PRODUCERS if producers is None else producers
    lists = OutreachLists()
    if not producers:
        return lists
    snap = clinic if clinic.as_of is not None and clinic.as_of == as_of else clinic.snapshot(as_of)
    for name, producer in producers.items():
        if not _NAME.match(name):
            raise ValueError(f"outreach list name {name!r} must be letters, digits, '_' or '-'")
        try:
            frame = producer(snap, as_of)
        except InsufficientDataError as err:  # e.g. no churn model on thin data: no recall list this month
            lists.skipped[name] = err.reason
            continue
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"outreach producer {name!r} returned {type(frame).__name__}, not a DataFrame")
        lists[name] = frame
    return lists


def write_outreach_lists(lists: Mapping[str, pd.DataFrame], folder: str | Path, *,
                         as_of: str | pd.Timestamp) -> list[Path]:
    """Write each list as CSV (UTF-8 with BOM) and XLSX, owner-only (0600), into `folder` (made 0700).

    Text cells that would start a spreadsheet formula are escaped with a leading ``'``
    (:func:`crm_analysis.cells.neutralise_formulas`); the lists given are not modified. The XLSX has a
    bold, frozen header with a filter, fitted column widths and real date-times
    (:func:`crm_analysis.io.spreadsheets.write_spreadsheets`). An :class:`OutreachLists` also brings the
    columns to wrap and its notes (text files such as ``안내.txt``).

    Parameters
    ----------
    lists : mapping of str to DataFrame
        Name -> list; a name ``system/<name>`` goes to the ``system`` subfolder (also 0700).
    folder : str or Path
        Usually the run's private staging folder, published as ``outreach/YYYY-MM``.
    as_of : str or Timestamp
        Stamped into the XLSX files instead of the time of writing (deterministic bytes).

    Returns
    -------
    list of Path
    """
    from crm_analysis.io.spreadsheets import write_spreadsheets

    safe = {name: neutralise_formulas(frame) for name, frame in lists.items()}
    return write_spreadsheets(safe, folder, stamp=pd.Timestamp(as_of).normalize(), wrap=getattr(lists, "wrap", {}),
                              notes=getattr(lists, "notes", {}))
