"""Time the demo-clinic generator, its CSV/Parquet writer, and load + validate.

Prints wall time and peak memory (resident set size) for each step.

    .venv/bin/python benchmarks/bench_demo_data.py                      # 20,000 patients
    .venv/bin/python benchmarks/bench_demo_data.py --patients 1000000 --format parquet

Each step runs in a fresh subprocess, so the peak memory it reports is that step's own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

STEP = r"""
import json, resource, sys, time
step, n, seed, fmt, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
started = time.perf_counter()
if step == "generate":
    from crm_analysis import synth
    clinic = synth.generate_clinic(n_patients=n, seed=seed)
    rows = {k: len(v) for k, v in clinic.tables.items()}
elif step == "generate+write":
    from crm_analysis import synth
    clinic = synth.generate_clinic(n_patients=n, seed=seed)
    clinic.write(folder, format=fmt)
    rows = {k: len(v) for k, v in clinic.tables.items()}
else:
    from crm_analysis import load_clinic
    clinic = load_clinic(folder, as_of="2026-10-31")
    rows = {k: len(v) for k, v in clinic.tables.items()}
seconds = time.perf_counter() - started
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"step": step, "seconds": round(seconds, 2), "peak_mib": round(peak_mib), "rows": rows}))
"""


def run_step(step: str, n: int, seed: int, fmt: str, folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", STEP, step, str(n), str(seed), fmt, str(folder)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--steps", default="generate,generate+write,load+validate")
    args = parser.parse_args()
    print(f"patients={args.patients:,} seed={args.seed} format={args.format} "
          f"python={sys.version.split()[0]} cores={__import__('os').cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        for step in args.steps.split(","):
            result = run_step(step, args.patients, args.seed, args.format, Path(tmp))
            rows = ", ".join(f"{k} {v:,}" for k, v in result["rows"].items())
            print(f"{step:<16} wall {result['seconds']:>8.2f} s   peak RSS {result['peak_mib']:>7,} MiB   ({rows})")


if __name__ == "__main__":
    main()
