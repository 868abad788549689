"""Time the daily run (``crm-analysis daily``) on the 20,000-patient demo clinic.

Prints wall time and peak memory (resident set size of this process) per step: loading and validating
the extract, the clinic as known at the day's 00:00, the day's reminder sends, tomorrow's call list
(with the no-show model fitted on the last 12 months, and without), writing the staff files, and the
whole published run as the command does it.

    .venv/bin/crm-analysis demo-data --out data/demo          # once
    nice -n 10 .venv/bin/python benchmarks/bench_daily.py --source data/demo --date 2026-10-15

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def peak_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def step(name: str, started: float, extra: str = "") -> float:
    now = time.perf_counter()
    print(f"{name:<36} {now - started:8.2f} s   peak {peak_mib():>6,} MiB   {extra}", flush=True)
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(PROJECT_ROOT / "data" / "demo"))
    parser.add_argument("--date", default="2026-10-15", help="the day planned (YYYY-MM-DD)")
    args = parser.parse_args()
    print(f"python={sys.version.split()[0]} cores={os.cpu_count()} source={args.source} date={args.date}")
    t0 = t = time.perf_counter()
    from crm_analysis import load_clinic
    from crm_analysis.daily import clinic_at, confirmation_calls, daily_moment, reminder_sends
    from crm_analysis.daily.run import run_daily

    t = step("import", t)
    clinic = load_clinic(args.source)
    t = step("load + validate", t, f"{len(clinic.tables['appointments']):,} appointments")
    moment = daily_moment(clinic, args.date)
    known = clinic_at(clinic, moment)
    t = step("clinic at the moment", t)
    sends = reminder_sends(clinic, moment, known=known)
    t = step("reminder sends", t, f"{len(sends.sends):,} messages")
    calls = confirmation_calls(clinic, moment, known=known, scores=False)
    t = step("call list (earlier no-shows)", t, f"{len(calls):,} appointments")
    calls = confirmation_calls(clinic, moment, known=known)
    t = step("call list (no-show model)", t, f"source {calls['risk_source'].iloc[0] if len(calls) else '-'}")
    with tempfile.TemporaryDirectory() as out:
        result = run_daily(args.date, args.source, outreach_dir=out, clinic=clinic, risk_model=False)
        t = step("lists + write + publish (no model)", t, f"{len(result.files)} files")
        result = run_daily(args.date, args.source, outreach_dir=out, clinic=clinic)
        t = step("lists + write + publish (model)", t, f"{len(result.files)} files")
    step("total", t0)


if __name__ == "__main__":
    main()
