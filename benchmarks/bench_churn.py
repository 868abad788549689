"""Time the churn analysis on a large clinic: survival data, Cox fit, predictions for every patient, recall.

Prints wall time per step and peak memory (resident set size, this process).

    flock /tmp/crm_bench.lock .venv/bin/python benchmarks/bench_churn.py            # /tmp/crm_bench/clinic_1m
    .venv/bin/python benchmarks/bench_churn.py --generate 100000                      # a generated clinic

The 1,000,000-patient demo clinic is read straight from its Parquet files into
a ClinicData (patients, visits, appointments, contacts; ids as Arrow strings)
instead of through ``load_clinic``, whose validation takes minutes and is timed
by ``bench_demo_data.py``. Loading time is reported separately and is not part
of the churn figures. Run it under ``flock /tmp/crm_bench.lock`` (it needs
more than 2 GiB).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import pandas as pd

TABLES = ("patients", "visits", "appointments", "contacts")


def peak_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def read_parquet_clinic(folder: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from crm_analysis.clinic import ClinicData

    def mapper(t):
        return pd.StringDtype("pyarrow") if t in (pa.string(), pa.large_string()) else None

    tables = {name: pq.read_table(folder / f"{name}.parquet").to_pandas(types_mapper=mapper) for name in TABLES}
    as_of = pd.Timestamp(tables["visits"]["visit_date"].max())
    return ClinicData(tables, as_of=as_of, source=str(folder)), as_of


def step(name: str, started: float, extra: str = "") -> float:
    now = time.perf_counter()
    print(f"{name:<34} {now - started:8.1f} s   peak {peak_mib():>7,} MiB   {extra}", flush=True)
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="/tmp/crm_bench/clinic_1m")
    parser.add_argument("--generate", type=int, default=0, help="generate a clinic of this size instead")
    parser.add_argument("--all-gaps-truth", action="store_true",
                        help="also fit the truth specification on every gap (compressed)")
    args = parser.parse_args()
    print(f"python={sys.version.split()[0]} cores={__import__('os').cpu_count()}")
    t = time.perf_counter()
    if args.generate:
        from crm_analysis import synth
        from crm_analysis.clinic import ClinicData

        sim = synth.generate_clinic(n_patients=args.generate, seed=42)
        as_of = pd.Timestamp("2026-10-31")
        clinic = ClinicData({k: sim.tables[k] for k in TABLES}, as_of=as_of)
        t = step(f"generate {args.generate:,} patients", t)
    else:
        folder = Path(args.folder)
        if not (folder / "truth.json").exists():
            sys.exit(f"{folder} is not a complete demo clinic (no truth.json); see benchmarks/README or the brief")
        clinic, as_of = read_parquet_clinic(folder)
        t = step("read Parquet (not timed below)", t,
                 ", ".join(f"{k} {len(v):,}" for k, v in clinic.tables.items()))
    from crm_analysis.churn import ChurnModel, recall_table, survival_data

    t0 = time.perf_counter()
    gaps = survival_data(clinic, as_of)
    t = step("survival_data (per-gap table)", t0, f"{len(gaps):,} gaps")
    model = ChurnModel().fit(clinic, as_of, gaps=gaps)
    t = step("ChurnModel.fit (prediction spec)", t,
             f"fitted on {model.n_fit_gaps_:,} sampled gaps ({model.n_fit_rows_:,} distinct rows), "
             f"{len(model.cox_.params_)} terms; Weibull on "
             f"{model.weibull_max_gaps:,}; PH test on {model.ph_test_gaps:,}")
    pred = model.predict_return()
    t = step("predict_return (all patients)", t, f"{len(pred):,} patients")
    table = recall_table(clinic, as_of, model=model)
    t = step("recall_table (exclusions, band)", t, f"{int(table['candidate'].sum()):,} candidates")
    print(f"{'TOTAL churn (data build to recall)':<34} {t - t0:8.1f} s   peak {peak_mib():>7,} MiB")
    if args.all_gaps_truth:
        t = time.perf_counter()
        truth = ChurnModel("truth", weibull=False, max_gaps=len(gaps), penalizer=0.0).fit(clinic, as_of, gaps=gaps)
        step("fit truth spec on ALL gaps", t, f"{truth.n_fit_gaps_:,} gaps compressed to {truth.n_fit_rows_:,} weighted rows")
        print(truth.summary[["term", "hazard_ratio", "lower", "upper"]].round(3).to_string(index=False))


if __name__ == "__main__":
    main()
