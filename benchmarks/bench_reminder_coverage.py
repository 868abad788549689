"""Coverage study of the reminder estimators over many simulated clinics.

For each of N demo clinics (different seeds; the true reminder effects are
scaled by 0.5, 1.0 or 1.5 in turn through ``params={"noshow": {"reminder": ...}}``)
it runs the pilot analysis, the adjusted (standardised GLM) estimates, the
crude comparison and the interrupted time series, and compares each with the
generator's truth:

=====================  ==========================================================
estimator              truth key (``truth["reminders"]``)
=====================  ==========================================================
pilot RD               ``pilot.risk_difference``
adjusted RD [1d]       ``rollout_periods["1d"].risk_difference``
adjusted RD [full]     ``rollout_periods["3d+1d+2h"].risk_difference``
adjusted RD [reminded] ``crude.true_effect_among_reminded``
crude RD               ``crude.true_effect_among_reminded`` (same population)
ITS level [1d]         ``its["1d"].level_change_vs_no_reminder``
ITS level [full]       ``its["3d+1d+2h"].level_change_vs_previous_regime``
=====================  ==========================================================

The ITS rows are the default model (``its.model: logistic``, appointment-level);
the "ITS series" rows are the earlier monthly-rate model (``its.model: series``)
on the same clinics, for comparison. It prints per estimator: the 95% CI
coverage, the mean bias (estimate − truth), the RMSE and the mean CI width,
plus wall time and peak memory.

    flock /tmp/crm_bench.lock .venv/bin/python benchmarks/bench_reminder_coverage.py --clinics 100 --patients 1500
    nice -n 10 .venv/bin/python benchmarks/bench_reminder_coverage.py --only its --clinics 100   # ITS only, ~3 min

``--only its`` skips the GLM-based estimators and the pilot (the GLM is most
of the time). Not part of the test suite (it takes minutes);
``tests/reminders/test_rollout.py`` runs a 12-clinic version of the ITS study.
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
import pandas as pd

from crm_analysis import synth
from crm_analysis.clinic import ClinicData
from crm_analysis.reminders import (ReminderEffectModel, appointment_table, crude_effect, interrupted_time_series,
                                    period_masks, pilot_analysis)

SCALES = (0.5, 1.0, 1.5)
BASE = {"3d": -0.20, "1d": -0.50, "2h": -0.25}


#: The earlier ITS model, shown beside the default for comparison.
SERIES_RULES = {"its": {"model": "series"}}


def simulated_clinic(seed: int, n_patients: int, scale: float):
    """A demo clinic whose true reminder effects are BASE x `scale`: (its analysis table, truth["reminders"])."""
    params = {"noshow": {"reminder": {k: v * scale for k, v in BASE.items()}}}
    clinic = synth.generate_clinic(n_patients=n_patients, seed=seed, params=params)
    return appointment_table(ClinicData(clinic.tables), clinic.truth["end"]), clinic.truth["reminders"]


def its_rows(table, truth: dict, rules=None, label: str = "ITS level") -> list[dict]:
    """The ITS level change of each roll-out against its truth: estimator, estimate, ci_low, ci_high, truth."""
    its = interrupted_time_series(table, rules)
    keys = {"1d": "level_change_vs_no_reminder", "3d+1d+2h": "level_change_vs_previous_regime"}
    return [{"estimator": f"{label} [{name}]", "estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high,
             "truth": truth["its"][name][keys[name]]} for name, e in its.level_changes.items()]


def one_clinic(seed: int, n_patients: int, scale: float, only: str = "all") -> list[dict]:
    table, tr = simulated_clinic(seed, n_patients, scale)
    rows = []
    if only == "its":
        for row in its_rows(table, tr) + its_rows(table, tr, SERIES_RULES, "ITS series level"):
            rows.append({"seed": seed, "scale": scale, **row})
        return rows
    model = ReminderEffectModel().fit(table)
    masks = period_masks(table)

    def add(name, est, truth):
        rows.append({"seed": seed, "scale": scale, "estimator": name, "estimate": est.estimate, "ci_low": est.ci_low,
                     "ci_high": est.ci_high, "truth": truth})

    add("pilot RD", pilot_analysis(table).risk_difference, tr["pilot"]["risk_difference"])
    for key in ("1d", "3d+1d+2h"):
        rd, _ = model.marginal_effect(table, masks[key])
        add(f"adjusted RD [{key}]", rd, tr["rollout_periods"][key]["risk_difference"])
    reminded = (table["analysed"] & table["reminded"] & (table["scheduled_at"] >= "2024-09-01")).to_numpy()
    rd, _ = model.marginal_effect(table, reminded)
    add("adjusted RD [reminded]", rd, tr["crude"]["true_effect_among_reminded"])
    add("crude RD [reminded]", crude_effect(table, since="2024-09-01"), tr["crude"]["true_effect_among_reminded"])
    for row in its_rows(table, tr) + its_rows(table, tr, SERIES_RULES, "ITS series level"):
        rows.append({"seed": seed, "scale": scale, **row})
    return rows


def coverage_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per estimator (in first-seen order): clinics, coverage, mean truth, mean bias, RMSE, mean CI width."""
    df = df.assign(covered=(df["ci_low"] <= df["truth"]) & (df["truth"] <= df["ci_high"]),
                   error=df["estimate"] - df["truth"], width=df["ci_high"] - df["ci_low"])
    order = list(dict.fromkeys(df["estimator"]))
    return df.groupby("estimator").agg(clinics=("covered", "size"), coverage=("covered", "mean"),
                                       mean_truth=("truth", "mean"), mean_bias=("error", "mean"),
                                       rmse=("error", lambda e: float(np.sqrt(np.mean(e ** 2)))),
                                       mean_ci_width=("width", "mean")).loc[order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinics", type=int, default=100)
    parser.add_argument("--patients", type=int, default=1500)
    parser.add_argument("--seed0", type=int, default=1000)
    parser.add_argument("--csv", default=None, help="also write every run's row to this CSV")
    parser.add_argument("--only", choices=("all", "its"), default="all",
                        help="its: the interrupted time series only (both models), without the GLM")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    rows = []
    for i in range(args.clinics):
        rows += one_clinic(args.seed0 + i, args.patients, SCALES[i % len(SCALES)], args.only)
        if (i + 1) % 10 == 0:
            print(f"  {i + 1} clinics, {time.perf_counter() - started:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    table = coverage_table(df)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nReminder estimators over {args.clinics} simulated clinics of {args.patients:,} patients "
          f"(seeds {args.seed0}-{args.seed0 + args.clinics - 1}; true effects x {', '.join(map(str, SCALES))})")
    with pd.option_context("display.width", 140, "display.float_format", "{:.4f}".format):
        print(table.to_string())
    print(f"\nwall time {seconds:.0f} s, peak memory {peak:.0f} MiB")


if __name__ == "__main__":
    main()
