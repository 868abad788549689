"""Monthly KPIs: the registry of sections behind ``kpis.json`` and the KPI page that opens the report.

:func:`monthly_kpis` runs every registered *section* on the month
(:class:`~crm_analysis.monthly.month.Month`: the clinic as known at the
month's end, its rules and its models fitted once) and returns a
:class:`~crm_analysis.monthly.kpi_result.MonthlyKpis`.

Each analysis package writes its own section in its ``monthly`` module and
the registry below adds it with a plain import: the core counts
(:mod:`crm_analysis.monthly.core`), the reminder effect
(:mod:`crm_analysis.reminders.monthly`), VIPs and segment moves
(:mod:`crm_analysis.value.monthly`), campaign lifts
(:mod:`crm_analysis.campaigns.monthly`) and churn
(:mod:`crm_analysis.churn.monthly`). An analyst adds one more with
:func:`register_section`::

    @register_section("my_figure", figures=("value",))
    def my_figure(month, min_count):
        return {"value": shown_count(len(month.clinic.patients), min_count)}

A section receives the :class:`Month` and the suppression threshold and
returns a JSON-ready dict. What it needs from the data is declared once in
:data:`crm_analysis.sufficiency.REQUIREMENTS` and checked before it runs; a
section whose data falls short (or that raises
:class:`~crm_analysis.exceptions.InsufficientDataError`) appears as
``{"available": false, "reason": ..., "reason_ko": ...}`` with its declared
figures ``null``, instead of failing the month.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from crm_analysis.campaigns.monthly import CAMPAIGN_FIGURES, campaign_actions, campaign_kpis
from crm_analysis.churn.monthly import CHURN_FIGURES, churn_kpis
from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.monthly import core
from crm_analysis.monthly.glance import glance_kpis
from crm_analysis.monthly.kpi_result import SCHEMA_VERSION, MonthlyKpis
from crm_analysis.monthly.month import Month
from crm_analysis.privacy import DEFAULT_MIN_COUNT, check_threshold
from crm_analysis.reminders.monthly import (REMINDER_EFFECT_FIGURES, REPLY_FIGURES, reminder_effect_kpis, reply_kpis,
                                            unfittable_as_thin_data)
from crm_analysis.sufficiency import REQUIREMENTS, require
from crm_analysis.value.monthly import VIP_FIGURES, vip_kpis

__all__ = ["SCHEMA_VERSION", "SECTIONS", "FIGURES", "CORE_SECTIONS", "ANALYSIS_SECTIONS", "MODEL_SECTIONS",
           "register_section", "monthly_kpis",
           "kpis_for_report", "MonthlyKpis", "KPIS_FILE"]

#: The file the monthly run writes.
KPIS_FILE = "kpis.json"

Section = Callable[[Month, int], dict]

#: Registered sections, in report order: name -> function(month, min_count) -> dict.
SECTIONS: dict[str, Section] = {}
#: The headline figures of each section: ``null`` in kpis.json when the section is skipped.
FIGURES: dict[str, tuple[str, ...]] = {}
#: The sections counted from the core tables alone.
CORE_SECTIONS = ("glance", "patients", "retention", "no_show", "revenue_by_department", "trend")
#: The sections of the analysis packages (they use the month's models).
ANALYSIS_SECTIONS = ("reminder_effect", "replies", "vip", "campaigns", "churn", "actions")
#: The sections that wait for the month's models (the churn model, the reminder evaluation, the plan).
MODEL_SECTIONS = ("reminder_effect", "churn", "actions")


def register_section(name: str, func: Section | None = None, *, replace: bool = False,
                     figures: tuple[str, ...] = ()):
    """Add a KPI section (usable as a decorator).

    Parameters
    ----------
    name : str
        Key of the section in ``kpis.json`` (document it in ``docs/kpis.md``).
    func : callable, optional
        ``func(month, min_count) -> dict`` (`month` a :class:`~crm_analysis.monthly.month.Month`);
        omit to use as a decorator.
    replace : bool
        Allow replacing a section of the same name.
    figures : tuple of str
        Top-level keys the section returns that are shown as ``null`` when the data is insufficient
        (declare the section's needs in :data:`crm_analysis.sufficiency.REQUIREMENTS` under the same name).

    Raises
    ------
    ValueError
        If `name` is taken and `replace` is False.
    """
    def add(f: Section) -> Section:
        if name in SECTIONS and not replace:
            raise ValueError(f"a KPI section named {name!r} is already registered; pass replace=True to replace it")
        SECTIONS[name] = f
        FIGURES[name] = tuple(figures)
        return f

    return add if func is None else add(func)


def _reminder_effect(month: Month, min_count: int) -> dict:
    with unfittable_as_thin_data():
        evaluation = month.reminders
    figures = reminder_effect_kpis(month.clinic, month.as_of, min_count, evaluation=evaluation,
                                   rules=month.rules.reminders)
    return {**figures, "no_show_month": core.no_show_kpis(month.clinic, month.as_of, min_count)["month"]}


# The default sections, in report order.
register_section("glance", lambda m, k: glance_kpis(m.clinic, m.as_of, k), figures=("tiles",))
register_section("patients", lambda m, k: core.patients_kpis(m.clinic, m.as_of, k),
                 figures=("active_12m", "visiting_month", "new_month", "returning_month", "registered"))
register_section("retention", lambda m, k: core.retention_kpis(m.clinic, m.as_of, k), figures=("base", "retained", "rate"))
register_section("no_show", lambda m, k: core.no_show_kpis(m.clinic, m.as_of, k), figures=("month", "last_12m"))
register_section("revenue_by_department", lambda m, k: core.revenue_kpis(m.clinic, m.as_of, k), figures=("rows", "total"))
register_section("trend", lambda m, k: core.trend_kpis(m.clinic, m.as_of, k), figures=("rows",))
register_section("reminder_effect", _reminder_effect, figures=REMINDER_EFFECT_FIGURES)
register_section("replies", lambda m, k: reply_kpis(m.clinic, m.as_of, k), figures=REPLY_FIGURES)
register_section("vip", lambda m, k: vip_kpis(m.clinic, m.as_of, k, features=m.features, vips=m.vips,
                                              segment_rules=m.rules.segments, vip_rule_file=m.rules.vip,
                                              migration=m.migration),
                 figures=VIP_FIGURES)
register_section("campaigns", lambda m, k: campaign_kpis(m.clinic, m.as_of, k, config=m.rules.campaigns),
                 figures=CAMPAIGN_FIGURES)
def _churn_backtest(m: Month):
    """The month's churn back-test, or None when the data cannot support one (the figures then say "not
    checked")."""
    try:
        return m.churn_backtest
    except InsufficientDataError:
        return None


register_section("churn", lambda m, k: churn_kpis(m.clinic, m.as_of, k, model=m.churn, recall=m.recall,
                                                  rules=m.rules.churn, backtest=_churn_backtest(m)),
                 figures=CHURN_FIGURES)
register_section("actions", lambda m, k: campaign_actions(m.campaigns, m.clinic.tables["patients"],
                                                          m.rules.campaigns, k),
                 figures=("rows",))


def monthly_kpis(month: Month | ClinicData, as_of: str | pd.Timestamp | None = None, *,
                 sections: list[str] | None = None, min_count: int = DEFAULT_MIN_COUNT) -> MonthlyKpis:
    """Compute the month's KPIs.

    Parameters
    ----------
    month : Month or ClinicData
        The month (its models are used, and fitted if not yet); a clinic is opened as a :class:`Month`
        at `as_of` with the shipped rules (cut to `as_of` first, so nothing recorded later is used).
    as_of : str or Timestamp, optional
        The report month's last day; required with a clinic, and must match a Month's.
    sections : list of str, optional
        Registered sections to compute (default: all, in registry order).
    min_count : int
        Counts from 1 to ``min_count - 1`` are suppressed.

    Returns
    -------
    MonthlyKpis

    Raises
    ------
    KeyError
        If a requested section is not registered.
    ValueError
        If `as_of` is missing with a clinic, differs from the Month's, or lies after the clinic's data.

    Examples
    --------
    >>> kpis = monthly_kpis(clinic, "2026-10-31")  # doctest: +SKIP
    >>> kpis.to_dict()["sections"]["patients"]["new_month"]  # doctest: +SKIP
    """
    if not isinstance(month, Month):
        if as_of is None:
            raise ValueError("monthly_kpis(clinic, as_of): as_of (the month's last day) is required")
        month = Month(month, as_of)
    elif as_of is not None and pd.Timestamp(as_of).normalize() != month.as_of:
        raise ValueError(f"as_of {as_of} differs from the month's ({month.as_of:%Y-%m-%d})")
    min_count = check_threshold(min_count)
    names = list(SECTIONS) if sections is None else list(sections)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise KeyError(f"unknown KPI sections {unknown}; registered: {list(SECTIONS)}")
    out = {}
    for name in names:
        try:
            if name in REQUIREMENTS:
                require(name, month.clinic, month.as_of)
            out[name] = {"available": True, **SECTIONS[name](month, min_count)}
        except InsufficientDataError as err:
            out[name] = {"available": False, **dict.fromkeys(FIGURES.get(name, ()), None),
                         "reason": err.reason, "reason_ko": err.reason_ko}
    return MonthlyKpis(month=f"{month.as_of:%Y-%m}", as_of=f"{month.as_of:%Y-%m-%d}", min_count=min_count,
                       sections=out)


def kpis_for_report(month: Month, out_dir: str | Path | None = None) -> MonthlyKpis:
    """The KPIs the report shows: the run's own ``kpis.json`` if it is there, else computed now.

    The monthly run computes the KPIs once (with its suppression threshold)
    and writes ``kpis.json`` into the month's folder before the report
    notebook runs, so the report shows exactly the published numbers. Run by
    hand, the notebook computes them with the defaults.

    Parameters
    ----------
    month : Month
    out_dir : str or Path, optional
        The month's folder (the notebooks' ``out_dir`` parameter).

    Returns
    -------
    MonthlyKpis
    """
    if out_dir:
        path = Path(out_dir) / KPIS_FILE
        if path.is_file():
            kpis = MonthlyKpis.read(path)
            if kpis.as_of == f"{month.as_of:%Y-%m-%d}":
                return kpis
    return monthly_kpis(month)
