"""Time the monthly run end to end, as README command 1 runs it, with per-step timings.

    .venv/bin/python benchmarks/bench_monthly_run.py                  # 20,000 patients, the notebooks present now
    .venv/bin/python benchmarks/bench_monthly_run.py --patients 1500 --repeat 2

The demo clinic is generated into a temporary folder first (not timed). Then
``crm-analysis run --month 2026-10 --source <folder>`` runs as a user runs it,
in a fresh process: the wall time includes interpreter start-up and imports.
CPU is the run's own, its model workers' and its notebook kernels' user and
system time together (RUSAGE_CHILDREN covers every finished child). Peak
memory is the largest resident set among them. The per-step timings come from
the run's own ``manifest.json``; steps overlap (the models are fitted while the
kernels start, the notebooks run while the lists are written), so they add up
to more than the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("crm-analysis")


#: Additions in :func:`reference_loop`.
REFERENCE_LOOP = 20_000_000


def reference_loop() -> float:
    """Seconds a fixed pure-Python loop takes here now: how fast this (shared, virtual) machine is running."""
    started, total = time.perf_counter(), 0
    for i in range(REFERENCE_LOOP):
        total += i
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--month", default="2026-10")
    parser.add_argument("--repeat", type=int, default=1, help="run the month this many times (the last is reported)")
    parser.add_argument("--no-pdf", action="store_true")
    args = parser.parse_args()
    notebooks = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    print(f"patients={args.patients:,} seed={args.seed} month={args.month} python={sys.version.split()[0]} "
          f"cores={os.cpu_count()} load={os.getloadavg()[0]:.1f}\nnotebooks: {', '.join(notebooks)}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([str(SCRIPT), "demo-data", "--out", str(tmp / "demo"), "--patients", str(args.patients),
                        "--seed", str(args.seed)], check=True, capture_output=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_before = before.ru_utime + before.ru_stime  # the demo generation above is not timed
        walls, speeds = [], []
        for i in range(args.repeat):
            speeds.append(reference_loop())
            started = time.perf_counter()
            done = subprocess.run([str(SCRIPT), "run", "--month", args.month, "--source", str(tmp / "demo"),
                                   *(["--no-pdf"] if args.no_pdf else [])],
                                  cwd=tmp, capture_output=True, text=True)
            wall = time.perf_counter() - started
            walls.append(wall)
            if done.returncode != 0:
                sys.exit(f"run failed: {done.stderr.strip().splitlines()[-1]}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak = usage.ru_maxrss / 1024
        cpu = (usage.ru_utime + usage.ru_stime - cpu_before) / args.repeat
        manifest = json.loads((tmp / "reports" / args.month / "manifest.json").read_text())
        print(f"end to end   wall {wall:7.1f} s (last run)   CPU {cpu:6.1f} s (run, workers and kernels; mean of "
              f"runs)   peak RSS (largest process) {peak:,.0f} MiB   load after {os.getloadavg()[0]:.1f}")
        if len(walls) > 1:
            print(f"  {len(walls)} runs: wall min {min(walls):.1f} s, median {statistics.median(walls):.1f} s, "
                  f"max {max(walls):.1f} s: " + ", ".join(f"{w:.1f}" for w in walls))
        print(f"  machine speed before each run (a fixed pure-Python loop, {REFERENCE_LOOP:,} additions): "
              + ", ".join(f"{s:.2f} s" for s in speeds) + " (the same machine varies: compare runs by it)")
        for step, seconds in manifest["timings_seconds"].items():
            print(f"  {step:<22} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
