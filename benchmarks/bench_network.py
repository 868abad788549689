"""Time a clinic network's month: the branches one after another, then on a local Dask cluster.

    .venv/bin/python benchmarks/bench_network.py                       # 8 branches of 2,000 patients, 2 workers
    .venv/bin/python benchmarks/bench_network.py --branches 4 --patients 1500 --workers 2

The branches are demo clinics with different seeds, generated into a temporary
folder first (not timed). Each executor then runs the whole network as a user
does, in a fresh process:
``crm-analysis run --month 2026-10 --clinics network.yaml [--executor dask --workers N]``,
so the wall time includes start-up, the cluster's start and stop, and the
network summary. Both runs write into the same folders and are checked to give
byte-identical branch files. Peak memory is the largest resident set of any
process the run started (the run itself, Dask workers, notebook kernels).
Needs about 2 GiB per worker: run it under ``flock /tmp/crm_bench.lock``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("crm-analysis")


def branch_files(reports: Path, outreach: Path, ids: list[str], month: str) -> dict[str, bytes]:
    """Every published branch file except the manifests (which hold timings and worker names)."""
    files = {}
    for cid in ids:
        for root in (reports, outreach):
            for path in sorted((root / cid / month).iterdir()):
                if path.name != "manifest.json":
                    files[f"{root.name}/{cid}/{path.name}"] = path.read_bytes()
    return files


def run(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([str(SCRIPT), *argv], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"run failed ({done.returncode}): {done.stderr.strip().splitlines()[-1]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branches", type=int, default=8)
    parser.add_argument("--patients", type=int, default=2_000, help="patients per branch")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--month", default="2026-10")
    parser.add_argument("--no-pdf", action="store_true")
    args = parser.parse_args()
    print(f"branches={args.branches} patients/branch={args.patients:,} workers={args.workers} month={args.month} "
          f"python={sys.version.split()[0]} cores={os.cpu_count()} load={os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ids = [f"branch{i:02d}" for i in range(1, args.branches + 1)]
        lines = ["version: 1", "network: 벤치마크 네트워크", "clinics:"]
        for i, cid in enumerate(ids, 1):
            subprocess.run([str(SCRIPT), "demo-data", "--out", str(tmp / cid), "--patients", str(args.patients),
                            "--seed", str(100 + i)], check=True, capture_output=True)
            lines.append(f"  - {{id: {cid}, name: {i}호점, source: {tmp / cid}}}")
        (tmp / "network.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        common = ["run", "--month", args.month, "--clinics", "network.yaml", *(["--no-pdf"] if args.no_pdf else [])]

        serial = run(common, tmp)
        serial_files = branch_files(tmp / "reports", tmp / "outreach", ids, args.month)
        print(f"serial (one after another)   wall {serial:7.1f} s   ({serial / args.branches:.1f} s per branch)")
        dask = run([*common, "--executor", "dask", "--workers", str(args.workers)], tmp)
        print(f"dask ({args.workers} worker processes)    wall {dask:7.1f} s   ({dask / args.branches:.1f} s per branch)")
        print(f"speed-up serial / dask       {serial / dask:5.2f}x")
        dask_files = branch_files(tmp / "reports", tmp / "outreach", ids, args.month)
        differ = sorted(name for name in serial_files if dask_files.get(name) != serial_files[name])
        print(f"branch files identical: {not differ} ({len(serial_files)} files)" + (f"; differ: {differ}" if differ else ""))
        manifest = json.loads((tmp / "reports" / "network" / args.month / "manifest.json").read_text())
        per_worker: dict[str, list[float]] = {}
        for branch in manifest["branches"]:
            per_worker.setdefault(branch["worker"], []).append(branch["seconds"])
        for worker, seconds in sorted(per_worker.items()):
            print(f"  {worker}: {len(seconds)} branch(es), {sum(seconds):.1f} s busy")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS (largest process) {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
