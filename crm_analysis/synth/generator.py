"""Generate the demo clinic: orchestration, seeding and the result object.

Each sub-process draws from its own random stream
(``SeedSequence(seed, spawn_key=(k,))`` with a fixed k per stream), so changing
one part of the model does not reshuffle the others, and the same seed and
parameters always give byte-identical files. Nothing depends on the current
date: the window is the explicit ``start``–``end``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from crm_analysis.synth import truth as T
from crm_analysis.synth.appointments import BOOKED, simulate_appointments
from crm_analysis.synth.calendar import ClinicCalendar
from crm_analysis.synth.campaigns import CampaignRunner, campaign_events
from crm_analysis.synth.charges import draw_visit_details
from crm_analysis.synth.family import make_children, place_pregnancies
from crm_analysis.synth.vaccinations import vaccination_records
from crm_analysis.synth.params import SynthParams
from crm_analysis.synth.population import Patients, draw_population
from crm_analysis.synth.referrals import assign_referrers, assign_status
from crm_analysis.synth.reminders import reminder_rows, reminder_truth
from crm_analysis.synth.tables import TableBuilder
from crm_analysis.synth.visits import VisitPath, simulate_visits
from crm_analysis.synth.writer import write_demo

__all__ = ["SyntheticClinic", "generate_clinic", "GENERATOR_VERSION", "DEFAULT_START", "DEFAULT_END"]

GENERATOR_VERSION = "1.0.0"
DEFAULT_START = "2023-11-01"
DEFAULT_END = "2026-10-31"

_STREAMS = ("population", "gaps", "campaigns", "family", "children", "children_gaps", "filler", "filler_gaps",
            "visit_details", "appointments", "reminders", "contacts", "referrals", "status", "vaccinations", "language")


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAMS.index(stream),)))


@dataclass(frozen=True)
class SyntheticClinic:
    """A generated clinic: contract tables, the truth behind them and the parameters used.

    Attributes
    ----------
    tables : dict of str to DataFrame
        patients, visits, appointments, reminders, contacts, pregnancies, vaccinations.
    truth : dict
        JSON-serialisable description of every generating parameter and true effect.
    params : SynthParams
    """

    tables: dict[str, pd.DataFrame]
    truth: dict[str, Any]
    params: SynthParams = field(repr=False)

    def write(self, out_dir: str | os.PathLike, format: str = "csv") -> dict[str, Path]:
        """Write ``<table>.csv`` (or ``.parquet``) and ``truth.json`` into `out_dir`.

        See :func:`crm_analysis.synth.writer.write_demo`.
        """
        return write_demo(self.tables, self.truth, out_dir, format=format)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={len(v):,}" for k, v in self.tables.items())
        return f"SyntheticClinic(seed={self.truth['seed']}, {counts})"


def generate_clinic(n_patients: int = 20_000, seed: int = 42, start: str = DEFAULT_START, end: str = DEFAULT_END,
                    params: SynthParams | Mapping[str, Any] | None = None) -> SyntheticClinic:
    """Generate a synthetic Korean clinic with known truth.

    Parameters
    ----------
    n_patients : int
        Number of patients, children born during the window included.
    seed : int
        Seed of every random stream.
    start, end : str
        First and last day of the data window (ISO dates). No event lies after
        `end`; only ``booked`` appointments are scheduled after it.
    params : SynthParams or mapping, optional
        Parameters, or nested overrides of the defaults.

    Returns
    -------
    SyntheticClinic

    Examples
    --------
    >>> from crm_analysis import synth
    >>> clinic = synth.generate_clinic(n_patients=500, seed=1)
    >>> sorted(clinic.tables)
    ['appointments', 'contacts', 'patients', 'pregnancies', 'reminders', 'vaccinations', 'visits']
    """
    if n_patients < 1:
        raise ValueError("n_patients must be at least 1")
    if isinstance(params, SynthParams):
        par = params
    else:
        par = SynthParams().with_overrides(params)
    par.validate()
    seed = int(seed)
    cal = ClinicCalendar(start, end)
    n_births = int(round(n_patients * par.family.birth_share)) if n_patients > 1 else 0
    n_births = min(n_births, n_patients - 1)

    base = draw_population(n_patients - n_births, cal, par, _rng(seed, "population"))
    runner = CampaignRunner(base, cal, par, _rng(seed, "campaigns"))
    paths = [simulate_visits(np.arange(len(base)), base.reg_day, base.eta, cal, par.returns, _rng(seed, "gaps"),
                             runner)]
    preg = place_pregnancies(base, paths[0], cal, par, n_births, _rng(seed, "family"))
    pat = base
    short = n_births - int(np.sum(preg.outcome == 0))
    if short > 0:
        filler = draw_population(short, cal, par, _rng(seed, "filler"))
        idx = np.arange(len(pat), len(pat) + short)
        pat = Patients.concat(pat, filler)
        runner.set_patients(pat)
        paths.append(simulate_visits(idx, filler.reg_day, filler.eta, cal, par.returns, _rng(seed, "filler_gaps"),
                                     runner))
    children = make_children(preg, pat, cal, par, _rng(seed, "children"))
    idx = np.arange(len(pat), len(pat) + len(children))
    pat = Patients.concat(pat, children)
    runner.set_patients(pat)
    paths.append(simulate_visits(idx, children.reg_day, children.eta, cal, par.returns, _rng(seed, "children_gaps"),
                                 runner))
    path = VisitPath.concat(*paths)
    del paths, base, children

    det = draw_visit_details(path, pat, preg, par, _rng(seed, "visit_details"))
    app = simulate_appointments(path, det, pat, preg, cal, par, _rng(seed, "appointments"))
    rem = reminder_rows(app, cal, par, _rng(seed, "reminders"))
    crng = _rng(seed, "contacts")
    rows = runner.rows()
    engagement = runner.engagement(rows, crng)
    contact_minute = (10 * 60 + np.floor(crng.random(len(rows["pid"])) * 60)).astype(np.int64)
    referred_by, weight = assign_referrers(pat, par, _rng(seed, "referrals"))
    last_visit = np.full(len(pat), -1, dtype=np.int64)
    np.maximum.at(last_visit, path.pid, path.day)
    keep_active = np.zeros(len(pat), dtype=bool)
    keep_active[app.pid[app.status == BOOKED]] = True
    keep_active[pat.mother[pat.mother >= 0]] = True
    status = assign_status(pat, last_visit, keep_active, cal, par, _rng(seed, "status"))
    shots = vaccination_records(pat, cal, par, _rng(seed, "vaccinations"))

    truth = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n_patients": int(len(pat)),
        "start": start,
        "end": end,
        "params": par.to_dict(),
        "calendar": {"closed_for_appointments": "Sundays and Korean public holidays (catalog.HOLIDAYS, "
                                                "RECURRING_HOLIDAYS); visits on closed days are walk-ins",
                     "hours": "weekdays 09:00-18:00 with lunch 13:00-14:00, Saturdays 09:00-13:00",
                     "slot_minutes": 10, "timezone": "clinic-local, naive"},
        "population": T.population_truth(pat),
        "return_model": T.return_model_truth(par, pat, path),
        "spend": T.spend_truth(par, det),
        "appointments": T.appointment_truth(par, app, len(path), cal),
        "reminders": reminder_truth(app, cal, par),
        "campaigns": runner.truth(rows),
        "pregnancies": T.family_truth(par, preg, pat),
        "referral": T.referral_truth(par, pat, referred_by, weight),
        "record_status": T.status_truth(status),
        "vaccinations": {"coverage_per_dose": par.family.vaccination_coverage,
                         "flu_coverage_per_season": par.family.flu_coverage,
                         "children": int(np.sum(pat.mother >= 0)), "doses_given": int(len(shots["pid"])),
                         "rule": "each scheduled dose given with probability coverage_per_dose within 30 days of "
                                 "the start of its window; doses after the last day are not in the table"},
    }

    # build the tables one by one, freeing the internal arrays each one consumed
    tb = TableBuilder(cal, pat)
    ev = campaign_events(par, cal)
    english = _rng(seed, "language").random(len(pat)) < par.population.english_share
    tables = {"patients": tb.patients(pat, referred_by, status, english)}
    tables["visits"] = tb.visits(path, det)
    del path, det
    tables["appointments"] = tb.appointments(app)
    del app
    tables["reminders"] = tb.reminders(rem)
    del rem
    tables["contacts"] = tb.contacts(rows, engagement, contact_minute, ev["day"],
                                     [par.campaigns[s].campaign_id for s in ev["spec"]])
    tables["pregnancies"] = tb.pregnancies(preg)
    tables["vaccinations"] = tb.vaccinations(shots)
    truth["row_counts"] = T.row_counts(tables)
    truth["contact_quality"] = T.contact_truth(par, pat, tables)
    return SyntheticClinic(tables=tables, truth=truth, params=par)
