"""Prenatal and infant-vaccination schedules as dates.

The schedules themselves are data, shipped with the package and citing their
source: ``crm_analysis/rules/prenatal_schedule.yaml`` (Korean prenatal
check-ups by gestational week) and ``crm_analysis/rules/vaccination_schedule.yaml``
(질병관리청 표준예방접종일정표). This module turns them into concrete dates.

Gestational week
    ``week = floor((280 − (due_date − day)) / 7)``, i.e. *completed* weeks,
    the usual obstetric convention: on the due date the week is 40, one day
    earlier 39 (39+6). Week ``w`` therefore starts on ``due_date − 280 + 7·w``.

Vaccination ages
    ``"<n>d"``, ``"<n>w"``, ``"<n>m"`` or ``"<n>y"`` after the birth date, months
    and years as calendar offsets (2 months after 2026-09-15 is 2026-11-15; after
    2026-12-31 it is 2027-02-28).
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from crm_analysis.rule_files import parse_yaml, read_rule_yaml

__all__ = [
    "RULES_DIR",
    "load_prenatal_schedule",
    "load_vaccination_schedule",
    "gestational_week",
    "week_start",
    "pregnancy_weeks",
    "prenatal_content",
    "age_offset",
    "vaccination_due",
    "SEASONAL_GIVEN_DAYS",
]

RULES_DIR = Path(__file__).resolve().parent / "rules"
_AGE = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$")


def _read_yaml(path: str | Path | Mapping | None, default: str) -> dict:
    if path is None:  # the shipped file: parsed once per process, a copy handed out
        return copy.deepcopy(_shipped(default))
    return read_rule_yaml(path, what=default.removesuffix(".yaml").replace("_", " "))


@lru_cache(maxsize=None)
def _shipped(name: str) -> dict:
    return parse_yaml((RULES_DIR / name).read_text(encoding="utf-8")) or {}


def load_prenatal_schedule(path: str | Path | Mapping | None = None) -> dict[str, Any]:
    """The prenatal schedule: ``source``, ``first_week``, ``last_week``, ``general`` and ``items``.

    ``items`` is a DataFrame with columns ``key``, ``week_from``, ``week_to``,
    ``ko``, ``en`` (weeks inclusive).

    Raises
    ------
    ValueError
        If a field is missing or a week range is empty or outside 0–42.
    """
    raw = _read_yaml(path, "prenatal_schedule.yaml")
    missing = [k for k in ("source", "first_week", "last_week", "general", "items") if k not in raw]
    if missing:
        raise ValueError(f"prenatal schedule lacks {missing}; see crm_analysis/rules/prenatal_schedule.yaml")
    items = pd.DataFrame(raw["items"], columns=["key", "week_from", "week_to", "ko", "en"])
    bad = items[(items["week_from"] > items["week_to"]) | (items["week_from"] < 0) | (items["week_to"] > 42)]
    if len(bad):
        raise ValueError(f"prenatal schedule: week ranges of {list(bad['key'])} must satisfy 0 ≤ week_from ≤ week_to ≤ 42")
    return {"source": raw["source"], "first_week": int(raw["first_week"]), "last_week": int(raw["last_week"]),
            "general": dict(raw["general"]), "items": items}


def age_offset(text: str) -> pd.DateOffset:
    """``"2m"`` → ``DateOffset(months=2)``; units d, w, m, y.

    Raises
    ------
    ValueError
        If `text` is not ``<number><unit>``.
    """
    m = _AGE.match(str(text))
    if not m:
        raise ValueError(f"age {text!r} must look like 0d, 4w, 2m or 4y")
    n, unit = int(m.group(1)), m.group(2)
    return pd.DateOffset(**{{"d": "days", "w": "weeks", "m": "months", "y": "years"}[unit]: n})


def load_vaccination_schedule(path: str | Path | Mapping | None = None) -> dict[str, Any]:
    """The vaccination schedule: ``source``, ``doses`` and ``seasonal`` DataFrames.

    ``doses``: ``vaccine``, ``dose``, ``from``, ``to``, ``sex`` (F or M for a dose given to one sex only,
    else missing), ``ko``, ``en``;
    ``seasonal``: ``vaccine``, ``from``, ``to``, ``seasonal_month``, ``ko``, ``en``.

    Raises
    ------
    ValueError
        If a field is missing or an age cannot be read.
    """
    raw = _read_yaml(path, "vaccination_schedule.yaml")
    if "source" not in raw or "doses" not in raw:
        raise ValueError("vaccination schedule needs 'source' and 'doses'; see crm_analysis/rules/vaccination_schedule.yaml")
    doses = pd.DataFrame(raw["doses"], columns=["vaccine", "dose", "from", "to", "sex", "ko", "en"])
    odd = sorted({str(x) for x in doses["sex"].dropna()} - {"F", "M"})
    if odd:
        raise ValueError(f"vaccination schedule: sex must be F or M, not {', '.join(odd)}")
    seasonal = pd.DataFrame(raw.get("seasonal") or [], columns=["vaccine", "from", "to", "seasonal_month", "ko", "en"])
    for text in [*doses["from"], *doses["to"], *seasonal["from"], *seasonal["to"]]:
        age_offset(text)
    return {"source": raw["source"], "doses": doses, "seasonal": seasonal}


def gestational_week(due_date, day) -> np.ndarray:
    """Completed weeks of gestation on `day`: ``floor((280 − (due_date − day)) / 7)``.

    Parameters
    ----------
    due_date, day : date-like or array-like of dates
        Broadcast against each other.

    Examples
    --------
    >>> int(gestational_week(pd.Timestamp("2026-12-31"), pd.Timestamp("2026-12-31")))
    40
    >>> int(gestational_week(pd.Timestamp("2026-12-31"), pd.Timestamp("2026-12-30")))
    39
    """
    due = pd.to_datetime(pd.Series(np.atleast_1d(due_date))).to_numpy("datetime64[D]")
    d = pd.to_datetime(pd.Series(np.atleast_1d(day))).to_numpy("datetime64[D]")
    days_to_due = (due - d).astype(np.int64)
    return np.floor_divide(280 - days_to_due, 7)


def week_start(due_date, week) -> pd.Series:
    """First day of gestational week `week`: ``due_date − 280 + 7·week`` days."""
    due = pd.to_datetime(pd.Series(due_date)).reset_index(drop=True)
    weeks = pd.Series(week).reset_index(drop=True).astype(int)
    return due + pd.to_timedelta(7 * weeks - 280, unit="D")


def pregnancy_weeks(pregnancies: pd.DataFrame, start, end, *, first_week: int = 4,
                    last_week: int = 40) -> pd.DataFrame:
    """Every gestational week that starts in ``[start, end]`` for ongoing pregnancies.

    A pregnancy with any recorded ``outcome`` (delivery, miscarriage, stillbirth,
    termination) gets nothing: messages stop at delivery or any outcome.

    Parameters
    ----------
    pregnancies : DataFrame
        Columns ``patient_id``, ``due_date``, ``outcome``.
    start, end : date-like
        The period (inclusive days).
    first_week, last_week : int
        Weeks that get a message.

    Returns
    -------
    DataFrame
        ``patient_id``, ``due_date``, ``week``, ``week_start`` (one row per week),
        sorted by ``week_start``, ``patient_id``.
    """
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    ongoing = pregnancies.loc[pregnancies["outcome"].isna(), ["patient_id", "due_date"]].reset_index(drop=True)
    cols = ["patient_id", "due_date", "week", "week_start"]
    if ongoing.empty:
        return pd.DataFrame(columns=cols)
    lmp = ongoing["due_date"] - pd.Timedelta(days=280)
    # first week starting on or after `start`
    w0 = np.ceil((start - lmp).dt.days.to_numpy() / 7).astype(np.int64)
    n_weeks = (end - start).days // 7 + 2
    rows = []
    for k in range(n_weeks):
        w = w0 + k
        ws = lmp + pd.to_timedelta(7 * w, unit="D")
        ok = (ws >= start) & (ws <= end) & (w >= first_week) & (w <= last_week)
        rows.append(pd.DataFrame({"patient_id": ongoing["patient_id"][ok], "due_date": ongoing["due_date"][ok],
                                  "week": w[ok.to_numpy()], "week_start": ws[ok]}))
    out = pd.concat(rows, ignore_index=True)
    return out.sort_values(["week_start", "patient_id"], kind="stable").reset_index(drop=True)[cols]


def prenatal_content(weeks, schedule: Mapping | None = None, lang: str = "ko") -> pd.Series:
    """Message content for each gestational week: the schedule items due that week, else the general text.

    Items overlapping a week (e.g. late tests and GBS in weeks 35–36) are joined by a space.
    """
    schedule = schedule or load_prenatal_schedule()
    weeks = pd.Series(np.asarray(weeks, dtype=np.int64))
    items = schedule["items"]
    parts = pd.Series([""] * len(weeks), dtype=object)
    for _, item in items.iterrows():
        hit = (weeks >= item["week_from"]) & (weeks <= item["week_to"])
        parts = parts.where(~hit, parts + np.where(parts == "", "", " ") + item[lang])
    return parts.where(parts != "", schedule["general"][lang])


#: A seasonal vaccine given this many days before its reminder's send day counts as this season's.
SEASONAL_GIVEN_DAYS = 180


def vaccination_due(children: pd.DataFrame, start, end, *, days_before: int = 7,
                    schedule: Mapping | None = None, given: pd.DataFrame | None = None,
                    catch_up_days: int = 30) -> pd.DataFrame:
    """Vaccination reminders whose send day falls in ``[start, end]``, for doses not yet given.

    The send day is ``days_before`` days before the start of the dose's
    recommended window (``birth_date + from``); seasonal vaccines are sent on the
    1st of ``seasonal_month`` to children whose age that day lies in ``[from, to)``.
    A dose for one sex only (``sex`` in the schedule) goes to children of that
    sex; a child whose sex is not recorded gets none of them.

    With the doses already given (`given`), a dose is never reminded of once
    given, and a dose still not given ``catch_up_days`` after its window closed
    gets one catch-up reminder that day (``kind`` ``catch_up``). Without them
    nothing is known about what was given, so reminders follow the schedule
    alone (``kind`` ``window``).

    Parameters
    ----------
    children : DataFrame
        ``patient_id``, ``birth_date``; ``sex`` for the doses given to one sex only.
    given : DataFrame, optional
        Doses already given (the ``vaccinations`` table: ``patient_id``,
        ``vaccine``, ``dose``, ``vaccination_date``), cut to what was known when
        the reminders are planned. A dose given is never reminded of; a
        seasonal vaccine counts as given when a dose of it was given within
        :data:`SEASONAL_GIVEN_DAYS` days before the send day. Vaccine codes are
        compared without regard to case.
    catch_up_days : int
        Days after a dose's window closes (``birth_date + to``) on which a dose
        still not given is reminded of once more (only with `given`).
    start, end : date-like
        The period (inclusive days).
    days_before : int
        Days between the reminder and the start of the window.
    schedule : mapping, optional
        From :func:`load_vaccination_schedule` (default: the shipped schedule).

    Returns
    -------
    DataFrame
        ``patient_id``, ``vaccine``, ``dose``, ``due_from``, ``due_to``,
        ``send_date``, ``kind`` (``window`` or ``catch_up``), ``ko``, ``en``
        (a catch-up's say the dose is overdue); sorted by send date, patient,
        vaccine, dose.
    """
    schedule = schedule or load_vaccination_schedule()
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    kids = children.loc[children["birth_date"].notna(), ["patient_id", "birth_date"]].reset_index(drop=True)
    sex = (children.loc[children["birth_date"].notna(), "sex"].astype(object).reset_index(drop=True)
           if "sex" in children else pd.Series(None, index=kids.index, dtype=object))
    cols = ["patient_id", "vaccine", "dose", "due_from", "due_to", "send_date", "kind", "ko", "en"]
    parts = []
    birth = kids["birth_date"]
    offsets: dict[str, pd.Series] = {}  # doses share ages ("2m", "4m", ...): each computed once

    def dates(age: str) -> pd.Series:
        if age not in offsets:
            offsets[age] = birth + age_offset(age)
        return offsets[age]

    for _, d in schedule["doses"].iterrows():
        due_from = dates(d["from"])
        send = due_from - pd.Timedelta(days=days_before)
        sex_ok = (sex == d["sex"]).fillna(False) if pd.notna(d["sex"]) else True
        ok = (send >= start) & (send <= end) & sex_ok
        if ok.any():
            parts.append(pd.DataFrame({"patient_id": kids["patient_id"][ok], "vaccine": d["vaccine"],
                                       "dose": int(d["dose"]), "due_from": due_from[ok],
                                       "due_to": dates(d["to"])[ok],
                                       "send_date": send[ok], "kind": "window", "ko": d["ko"], "en": d["en"]}))
        if given is not None:  # one more reminder when the window has closed and the dose is still not given
            late = dates(d["to"]) + pd.Timedelta(days=catch_up_days)
            ok = (late >= start) & (late <= end) & sex_ok
            if ok.any():
                parts.append(pd.DataFrame({"patient_id": kids["patient_id"][ok], "vaccine": d["vaccine"],
                                           "dose": int(d["dose"]), "due_from": due_from[ok],
                                           "due_to": dates(d["to"])[ok], "send_date": late[ok], "kind": "catch_up",
                                           "ko": f"{d['ko']} (접종 시기 지남)", "en": f"{d['en']} (overdue)"}))
    for _, s in schedule["seasonal"].iterrows():
        for year in range(start.year, end.year + 1):
            day = pd.Timestamp(year=year, month=int(s["seasonal_month"]), day=1)
            if not start <= day <= end:
                continue
            ok = (dates(s["from"]) <= day) & (dates(s["to"]) > day)
            if ok.any():
                parts.append(pd.DataFrame({"patient_id": kids["patient_id"][ok], "vaccine": s["vaccine"], "dose": 0,
                                           "due_from": day + pd.Timedelta(days=days_before),
                                           "due_to": day + pd.Timedelta(days=days_before + 60),
                                           "send_date": day, "kind": "window", "ko": s["ko"], "en": s["en"]}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c in ("due_from", "due_to", "send_date")
                                          else object) for c in cols})
    out = pd.concat(parts, ignore_index=True)[cols]
    if given is not None and len(given):
        out = out.loc[~_already_given(out, given)]
    return out.sort_values(["send_date", "patient_id", "vaccine", "dose"], kind="stable").reset_index(drop=True)


def _already_given(due: pd.DataFrame, given: pd.DataFrame) -> np.ndarray:
    """Whether each due row's dose was given: the same dose of a scheduled vaccine, or a seasonal vaccine
    within :data:`SEASONAL_GIVEN_DAYS` days before the send day."""
    def keys(frame: pd.DataFrame) -> pd.Series:
        return (frame["patient_id"].astype(str) + "\x1f" + frame["vaccine"].astype(str).str.strip().str.upper()
                + "\x1f" + frame["dose"].astype("int64").astype(str))

    done = due["dose"].to_numpy() > 0
    hit = np.zeros(len(due), dtype=bool)
    hit[done] = keys(due.loc[done]).isin(keys(given)).to_numpy()
    seasonal = due.loc[~done, ["patient_id", "vaccine", "send_date"]].reset_index()
    if len(seasonal):
        shots = pd.DataFrame({"patient_id": given["patient_id"].astype(str),
                              "vaccine": given["vaccine"].astype(str).str.strip().str.upper(),
                              "day": pd.to_datetime(given["vaccination_date"])})
        pairs = seasonal.assign(patient_id=seasonal["patient_id"].astype(str),
                                vaccine=seasonal["vaccine"].astype(str).str.upper()).merge(shots,
                                                                                           on=["patient_id", "vaccine"])
        recent = (pairs["day"] <= pairs["send_date"]) & (
            pairs["day"] > pairs["send_date"] - pd.Timedelta(days=SEASONAL_GIVEN_DAYS))
        hit[pairs.loc[recent, "index"].unique()] = True
    return hit
