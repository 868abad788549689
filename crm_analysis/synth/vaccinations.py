"""Vaccine doses given to the demo clinic's children.

Each child born in the data (a patient with a mother) receives each dose of the
shipped national schedule (:func:`~crm_analysis.schedules.load_vaccination_schedule`)
with probability ``family.vaccination_coverage``, on a day drawn uniformly in
the 30 days from the start of the dose's window; a dose for one sex only goes
to children of that sex. Each October and November a child aged 6 months to 13
years gets the seasonal influenza vaccine with probability
``family.flu_coverage``. Only doses given by the last day of the data are kept,
so the doses still due and not given are exactly the schedule's doses missing
from the table (what the vaccination reminders must still send).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.schedules import age_offset, load_vaccination_schedule
from crm_analysis.synth.calendar import ClinicCalendar
from crm_analysis.synth.params import SynthParams
from crm_analysis.synth.population import Patients

__all__ = ["vaccination_records"]

#: Days after the start of a dose's window within which it is given.
_GIVEN_WITHIN_DAYS = 30


def vaccination_records(pat: Patients, cal: ClinicCalendar, params: SynthParams,
                        rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Doses given: ``pid`` (patient index), ``vaccine``, ``dose`` (0 for influenza), ``day`` (day index).

    Parameters
    ----------
    pat : Patients
        All patients; children are those with a mother (``pat.mother >= 0``).
    cal : ClinicCalendar
    params : SynthParams
        ``family.vaccination_coverage`` and ``family.flu_coverage``.
    rng : numpy.random.Generator
    """
    fp = params.family
    kids = np.flatnonzero(pat.mother >= 0)
    day0 = cal.to_datetime64(np.zeros(1, dtype=np.int64))[0]
    birth = pd.Series(cal.to_datetime64(pat.birth_day[kids]))
    female = pat.sex[kids] == 1
    schedule = load_vaccination_schedule()
    parts = []

    def add(who: np.ndarray, vaccine: str, dose: int, day: pd.Series) -> None:
        day_index = ((day.to_numpy() - day0) // np.timedelta64(1, "D")).astype(np.int64)
        keep = who & (day_index <= cal.last_day)
        parts.append((kids[keep], vaccine, dose, day_index[keep]))

    for _, d in schedule["doses"].iterrows():
        start = birth + age_offset(d["from"])
        when = start + pd.to_timedelta(np.floor(rng.random(len(kids)) * _GIVEN_WITHIN_DAYS), unit="D")
        who = rng.random(len(kids)) < fp.vaccination_coverage
        if pd.notna(d["sex"]):
            who &= female == (d["sex"] == "F")
        add(who, str(d["vaccine"]), int(d["dose"]), when)
    for _, s in schedule["seasonal"].iterrows():
        first, last = cal.to_datetime64(np.array([0, cal.last_day]))
        for year in range(pd.Timestamp(first).year, pd.Timestamp(last).year + 1):
            season = pd.Timestamp(year=year, month=int(s["seasonal_month"]), day=1)
            when = season + pd.to_timedelta(np.floor(rng.random(len(kids)) * 61), unit="D")
            of_age = ((birth + age_offset(s["from"])) <= season) & ((birth + age_offset(s["to"])) > season)
            add(of_age.to_numpy() & (rng.random(len(kids)) < fp.flu_coverage), str(s["vaccine"]), 0,
                pd.Series(when))
    if not parts:
        return {"pid": np.zeros(0, np.int64), "vaccine": np.zeros(0, object), "dose": np.zeros(0, np.int64),
                "day": np.zeros(0, np.int64)}
    return {"pid": np.concatenate([p[0] for p in parts]),
            "vaccine": np.concatenate([np.full(len(p[0]), p[1], dtype=object) for p in parts]),
            "dose": np.concatenate([np.full(len(p[0]), p[2], dtype=np.int64) for p in parts]),
            "day": np.concatenate([p[3] for p in parts])}
