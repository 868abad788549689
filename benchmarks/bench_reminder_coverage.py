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

and prints per estimator: the 95% CI coverage, the mean bias (estimate −
truth), the RMSE and the mean CI width, plus wall time and peak memory.

    flock /tmp/crm_bench.lock .venv/bin/python benchmarks/bench_reminder_coverage.py --clinics 100 --patients 1500

Not part of the test suite (it takes minutes).
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


def one_clinic(seed: int, n_patients: int, scale: float) -> list[dict]:
    params = {"noshow": {"reminder": {k: v * scale for k, v in BASE.items()}}}
    clinic = synth.generate_clinic(n_patients=n_patients, seed=seed, params=params)
    tr = clinic.truth["reminders"]
    table = appointment_table(ClinicData(clinic.tables), clinic.truth["end"])
    model = ReminderEffectModel().fit(table)
    masks = period_masks(table)
    rows = []

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
    its = interrupted_time_series(table)
    add("ITS level [1d]", its.level_changes["1d"], tr["its"]["1d"]["level_change_vs_no_reminder"])
    add("ITS level [3d+1d+2h]", its.level_changes["3d+1d+2h"], tr["its"]["3d+1d+2h"]["level_change_vs_previous_regime"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinics", type=int, default=100)
    parser.add_argument("--patients", type=int, default=1500)
    parser.add_argument("--seed0", type=int, default=1000)
    parser.add_argument("--csv", default=None, help="also write every run's row to this CSV")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    rows = []
    for i in range(args.clinics):
        rows += one_clinic(args.seed0 + i, args.patients, SCALES[i % len(SCALES)])
        if (i + 1) % 10 == 0:
            print(f"  {i + 1} clinics, {time.perf_counter() - started:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    df["covered"] = (df["ci_low"] <= df["truth"]) & (df["truth"] <= df["ci_high"])
    df["error"] = df["estimate"] - df["truth"]
    df["width"] = df["ci_high"] - df["ci_low"]
    order = list(dict.fromkeys(df["estimator"]))
    table = df.groupby("estimator").agg(clinics=("covered", "size"), coverage=("covered", "mean"),
                                        mean_truth=("truth", "mean"), mean_bias=("error", "mean"),
                                        rmse=("error", lambda e: float(np.sqrt(np.mean(e ** 2)))),
                                        mean_ci_width=("width", "mean")).loc[order]
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nReminder estimators over {args.clinics} simulated clinics of {args.patients:,} patients "
          f"(seeds {args.seed0}-{args.seed0 + args.clinics - 1}; true effects x {', '.join(map(str, SCALES))})")
    with pd.option_context("display.width", 140, "display.float_format", "{:.4f}".format):
        print(table.to_string())
    print(f"\nwall time {seconds:.0f} s, peak memory {peak:.0f} MiB")


if __name__ == "__main__":
    main()
