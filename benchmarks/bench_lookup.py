"""Time the front-desk patient card on a large clinic: the one-off build, then single lookups.

Prints wall time and peak memory (resident set size of this process) per step,
then the time per lookup (median, p99, max) over random phone lookups written
in random common spellings (010-1234-5678, 01012345678, +82 10-1234-5678).

    flock /tmp/crm_bench.lock .venv/bin/python benchmarks/bench_lookup.py           # /tmp/crm_bench/clinic_1m
    flock /tmp/crm_bench.lock .venv/bin/python benchmarks/bench_lookup.py --full    # also churn + CLV models
    .venv/bin/python benchmarks/bench_lookup.py --generate 20000                     # a generated clinic

The 1,000,000-patient demo clinic is read straight from its Parquet files into
a ClinicData (patients, visits, appointments, contacts, pregnancies; ids as
Arrow strings) instead of through ``load_clinic``, whose validation takes
minutes and is timed by ``bench_demo_data.py``. Reading is reported but not
part of the build figure. Without ``--full`` the context holds the phone
index, the per-patient history indexes, campaign outcomes, consent flags,
next vaccinations, features, segments and VIPs, and the cards show the churn
and lifetime-value fields as "not computed"; ``--full`` also fits those two
models once (the lookup time is the same either way: a lookup only reads
precomputed rows). Every lookup writes its line to an access log in a
temporary folder, as in real use. Needs more than 2 GiB: run it under
``flock /tmp/crm_bench.lock``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TABLES = ("patients", "visits", "appointments", "contacts", "pregnancies")


def peak_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def read_parquet_clinic(folder: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from crm_analysis.clinic import ClinicData

    def mapper(t):
        return pd.StringDtype("pyarrow") if t in (pa.string(), pa.large_string()) else None

    tables = {name: pq.read_table(folder / f"{name}.parquet").to_pandas(types_mapper=mapper)
              for name in TABLES if (folder / f"{name}.parquet").exists()}
    as_of = pd.Timestamp(tables["visits"]["visit_date"].max())
    return ClinicData(tables, as_of=as_of, source=str(folder)), as_of


def step(name: str, started: float, extra: str = "") -> float:
    now = time.perf_counter()
    print(f"{name:<40} {now - started:8.1f} s   peak {peak_mib():>7,} MiB   {extra}", flush=True)
    return now


def spell(canonical: str, how: int) -> str:
    a, b, c = canonical.split("-")
    return (f"{a}-{b}-{c}", f"{a}{b}{c}", f"+82 {a[1:]}-{b}-{c}")[how]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="/tmp/crm_bench/clinic_1m")
    parser.add_argument("--generate", type=int, default=0, help="generate a clinic of this size instead")
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--full", action="store_true", help="also fit the churn and lifetime-value models")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"python={sys.version.split()[0]} cores={os.cpu_count()} full={args.full} seed={args.seed}")
    t = time.perf_counter()
    if args.generate:
        from crm_analysis import synth
        from crm_analysis.clinic import ClinicData

        sim = synth.generate_clinic(n_patients=args.generate, seed=42)
        as_of = pd.Timestamp("2026-10-31")
        clinic = ClinicData({k: sim.tables[k] for k in TABLES}, as_of=as_of, source="generated")
        t = step(f"generate {args.generate:,} patients", t)
    else:
        folder = Path(args.folder)
        if not (folder / "truth.json").exists():
            sys.exit(f"{folder} is not a complete demo clinic (no truth.json)")
        clinic, as_of = read_parquet_clinic(folder)
        t = step("read Parquet (not part of the build)", t,
                 ", ".join(f"{k} {len(v):,}" for k, v in clinic.tables.items()))

    from crm_analysis.profile import PatientNotFoundError, card_context, patient_card

    t0 = time.perf_counter()
    ctx = card_context(clinic, as_of, churn=args.full, clv=args.full)
    for part, secs in ctx.timings.items():
        print(f"  {part:<38} {secs:8.1f} s")
    step("one-off build (CardContext)", t0, f"unavailable: {sorted(ctx.notes)}")

    phones = clinic.tables["patients"]["phone"].dropna().astype(str).to_numpy()
    rng = np.random.default_rng(args.seed)
    picks = rng.choice(len(phones), size=args.lookups, replace=False)
    spellings = rng.integers(0, 3, size=args.lookups)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "access.log"
        times, cards = [], 0
        for i, how in zip(picks, spellings):
            t1 = time.perf_counter()
            try:
                found = patient_card(clinic, phone=spell(phones[i], int(how)), as_of=as_of, context=ctx,
                                     access_log=log)
                text = found.to_text()  # include rendering, as the terminal command does
                cards += len(found)
            except PatientNotFoundError:
                text = ""
            times.append(time.perf_counter() - t1)
        t2 = time.perf_counter()
        for _ in range(100):
            try:
                patient_card(clinic, phone="010-9876-5432", as_of=as_of, context=ctx, access_log=log)
            except PatientNotFoundError:
                pass
        miss = (time.perf_counter() - t2) / 100
        lines = len(log.read_text().splitlines())
    ms = np.array(times) * 1000
    print(f"{args.lookups:,} phone lookups ({cards:,} cards, {lines:,} log lines): "
          f"median {np.median(ms):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms; "
          f"unknown number {miss * 1000:.2f} ms")
    print(f"peak memory (whole process): {peak_mib():,} MiB")
    del text


if __name__ == "__main__":
    main()
