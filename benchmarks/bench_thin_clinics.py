"""Run the monthly job on many randomly thinned demo clinics: every one must publish and explain its skips.

    .venv/bin/python benchmarks/bench_thin_clinics.py                 # 20 random thinnings
    .venv/bin/python benchmarks/bench_thin_clinics.py --examples 50 --seed 3

The test suite runs one derandomised example and the thinnest case of the same property
(``tests/test_thin_clinics.py``); this script runs a larger random sample. Each
example thins the 1,500-patient demo clinic (``tests/thinning.py``: optional
tables and columns dropped, 1–14 months, 20–500 patients, maybe one department
or no phones) and runs ``crm-analysis run --month 2026-10 --no-pdf`` in a fresh
process. It prints each example's wall time, peak memory and skipped sections,
and exits 1 if any run did not publish, printed a traceback, or skipped a
section without a reason.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.thinning import OPTIONAL_COLUMNS, OPTIONAL_TABLES, Thinning, thin_tables, write_export  # noqa: E402

SCRIPT = Path(sys.executable).with_name("crm-analysis")


def random_thinning(rng: random.Random) -> Thinning:
    return Thinning(months=rng.randint(1, 14), patients=rng.randint(20, 500),
                    drop_tables=frozenset(t for t in OPTIONAL_TABLES if rng.random() < 0.4),
                    drop_columns=frozenset(rng.sample(OPTIONAL_COLUMNS, rng.randint(0, 5))),
                    one_department=rng.random() < 0.3, no_phones=rng.random() < 0.3, seed=rng.randint(0, 2**16))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from crm_analysis import synth

    rng = random.Random(args.seed)
    tables = synth.generate_clinic(n_patients=1_500, seed=7, end="2026-10-31").tables
    failures = 0
    started_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="thin-bench-") as tmp:
        for i in range(args.examples):
            how = random_thinning(rng)
            folder = Path(tmp) / f"ex{i}"
            export = write_export(thin_tables(tables, how, "2026-10-31"), folder / "export")
            started = time.perf_counter()
            done = subprocess.run([str(SCRIPT), "run", "--month", "2026-10", "--source", str(export), "--no-pdf",
                                   "--out", str(folder / "reports"), "--outreach-dir", str(folder / "outreach")],
                                  capture_output=True, text=True)
            wall = time.perf_counter() - started
            ok = done.returncode == 0 and "Traceback" not in done.stdout + done.stderr
            skipped = []
            if ok:
                manifest = json.loads((folder / "reports/2026-10/manifest.json").read_text(encoding="utf-8"))
                skipped = sorted({s["analysis"] for s in manifest["skipped_sections"]})
                ok = all(s["reason"] for s in manifest["skipped_sections"])
            failures += not ok
            print(f"{i:3d} {'ok  ' if ok else 'FAIL'} {wall:6.1f} s  {how}\n     skipped: {', '.join(skipped) or '-'}")
            if not ok:
                print("     " + (done.stderr.strip().splitlines() or ["(no output)"])[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{args.examples - failures}/{args.examples} published; {time.perf_counter() - started_all:.0f} s in all; "
          f"peak memory of one run {peak:,.0f} MiB")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
