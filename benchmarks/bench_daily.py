"""Time the daily run (``crm-analysis daily``) on the 20,000-patient demo clinic: first day and a later day.

Two parts, each printing wall time and peak memory (resident set size):

1. **The command**, each run in a fresh process (so its own peak memory): the first day of the month's runs
   (the model fitted), the next day (the model read from ``<outreach>/daily/.model/``), the next day without
   the model, and the two days again from a snapshot-cache source.
2. **Steps**, in this process: importing, loading and validating the CSV extract, loading the same data from
   a validated snapshot cache (:mod:`crm_analysis.io.cache`, what ``load_clinic`` reads when the source is
   one), the clinic as known at the day's 00:00, the day's reminder sends, tomorrow's call list by earlier
   no-shows, the month's no-show model on the month's first run (fitted and kept in the cache) and on a later
   day (read back), the call list scored with it, and a later day's whole run on the loaded clinic. Peak
   memory here only grows (the process's high-water mark).

    .venv/bin/crm-analysis demo-data --out data/demo          # once
    nice -n 10 .venv/bin/python benchmarks/bench_daily.py --source data/demo --date 2026-10-15

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def peak_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def step(name: str, started: float, extra: str = "") -> float:
    now = time.perf_counter()
    print(f"  {name:<40} {now - started:7.2f} s   peak {peak_mib():>6,} MiB   {extra}", flush=True)
    return now


def command(name: str, args: list[str]) -> None:
    """Run ``crm-analysis <args>`` in a fresh process; print its wall time, peak memory and step seconds."""
    run(name, [sys.executable, "-c", "import sys; from crm_analysis.cli import main; sys.exit(main(sys.argv[1:]))",
               *args])


def run(name: str, argv: list[str]) -> None:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=PROJECT_ROOT)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = next((line[len("seconds: "):] for line in output.splitlines() if line.startswith("seconds: ")), "")
    model = next((line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("no-show model")), "-")
    print(f"  {name:<40} {wall:7.2f} s   peak {round(usage.ru_maxrss / 1024):>6,} MiB   exit {proc.returncode}; "
          f"{seconds}; model: {model}", flush=True)
    if proc.returncode:
        print(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(PROJECT_ROOT / "data" / "demo"))
    parser.add_argument("--date", default="2026-10-15", help="the first day (YYYY-MM-DD); the next is the later day")
    parser.add_argument("--no-commands", action="store_true", help="only the in-process steps")
    args = parser.parse_args()
    print(f"python={sys.version.split()[0]} cores={os.cpu_count()} load={os.getloadavg()[0]:.2f} "
          f"source={args.source} date={args.date}")
    import datetime as dt

    day = dt.date.fromisoformat(args.date)
    later = day + dt.timedelta(days=1)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "clinic.cache"
        if not args.no_commands:
            # first, while this process is small: a child forked from a process holding the clinic would
            # count the parent's memory in its own peak
            print("1. the command, each run in a fresh process (wall time and that process's peak memory)")
            run("import crm_analysis.daily.run only", [sys.executable, "-c", "import crm_analysis.daily.run"])
            out = Path(tmp) / "outreach"
            base = ["daily", "--source", args.source, "--outreach-dir", str(out)]
            command(f"first day {day} (model fitted)", [*base, "--date", f"{day}"])
            command(f"later day {later} (model cached)", [*base, "--date", f"{later}"])
            command("later day, --no-risk-model", [*base, "--date", f"{later}", "--no-risk-model"])
            run("(write a snapshot cache of the source)",
                [sys.executable, "-c", "import sys; from crm_analysis import load_clinic; from crm_analysis.io.cache "
                 "import write_snapshot_cache; write_snapshot_cache(load_clinic(sys.argv[1]), sys.argv[2])",
                 args.source, str(cache)])
            base = ["daily", "--source", str(cache), "--outreach-dir", str(Path(tmp) / "outreach2")]
            command("snapshot-cache source, first day", [*base, "--date", f"{day}"])
            command("snapshot-cache source, later day", [*base, "--date", f"{later}"])
        steps(args, day, later, tmp)


def steps(args, day, later, tmp) -> None:
    print("2. steps (one process; the peak only grows)")
    t0 = t = time.perf_counter()
    import pandas as pd

    from crm_analysis import load_clinic
    from crm_analysis.daily import clinic_at, confirmation_calls, daily_moment, reminder_sends
    from crm_analysis.daily.calls import TRAIN_MONTHS
    from crm_analysis.daily.model_cache import MODEL_FOLDER, month_model
    from crm_analysis.daily.run import run_daily
    from crm_analysis.io.cache import write_snapshot_cache

    t = step("import", t)
    clinic = load_clinic(args.source)
    t = step("load + validate (CSV)", t, f"{len(clinic.tables['appointments']):,} appointments")
    cache = write_snapshot_cache(clinic, Path(tmp) / "steps.cache")
    t = step("write a snapshot cache (once)", t)
    cached = load_clinic(cache)
    t = step("load from the snapshot cache", t, f"{len(cached.tables['appointments']):,} appointments")
    del cached
    day, later = pd.Timestamp(day), pd.Timestamp(later)
    moment = daily_moment(clinic, day)
    known = clinic_at(clinic, moment)
    t = step("clinic at the moment", t)
    sends = reminder_sends(clinic, moment, known=known)
    t = step("reminder sends", t, f"{len(sends.sends):,} messages")
    calls = confirmation_calls(clinic, moment, known=known, scores=False)
    t = step("call list (earlier no-shows)", t, f"{len(calls):,} appointments")
    folder = Path(tmp) / "steps" / "daily" / MODEL_FOLDER  # where run_daily(outreach_dir=tmp/steps) keeps it
    model, state = month_model(known, moment, source=args.source, folder=folder, train_months=TRAIN_MONTHS,
                               clinic=clinic)
    t = step("month model, first day (fit + keep)", t, state)
    calls = confirmation_calls(clinic, moment, known=known, model=model)
    t = step("call list (the model's risk)", t, f"source {calls['risk_source'].iloc[0] if len(calls) else '-'}")
    known_later = clinic_at(clinic, later)
    t = step("clinic at the later day's moment", t)
    model, state = month_model(known_later, later, source=args.source, folder=folder,
                               train_months=TRAIN_MONTHS, clinic=clinic)
    t = step("month model, later day (read)", t, state)
    calls = confirmation_calls(clinic, later, known=known_later, model=model)
    t = step("call list (the model's risk), later day", t, f"{len(calls):,} appointments")
    result = run_daily(later, args.source, outreach_dir=Path(tmp) / "steps", clinic=clinic)
    t = step("later day: run_daily on the loaded clinic", t, f"{len(result.files)} files; {result.timings}")
    step("total", t0)


if __name__ == "__main__":
    main()
