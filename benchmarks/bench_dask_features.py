"""Where one machine ends: the visit features of a million patients on Dask, beside one process.

Computes the visit-based columns of :func:`crm_analysis.features.patient_features`
(first and last visit, distinct visit days in all and in the last 12 months,
insured / self-pay / total charges in all and in the last 12 months, inpatient
days) from the same Parquet visits file four ways, checks that all four give
the same numbers for every patient, and prints wall time and peak memory:

- **package**: ``patient_features`` itself, on the visits read from Parquet (one process, every feature);
- **pandas**: the same columns with a plain pandas ``groupby`` (one process);
- **dask**: ``dask.dataframe.read_parquet`` + ``groupby().agg`` on a ``LocalCluster`` of worker processes
  (one thread each), the way a hospital larger than one machine would spread the same work over a
  cluster (see ``docs/scale.md``);
- **duckdb**: one SQL query over the Parquet file (one process, its own threads).

Each engine runs in a fresh process, so the peak memory it reports is its own (for Dask: the client's and
each worker's, summed).

    flock /tmp/crm_bench.lock nice -n 5 .venv/bin/python benchmarks/bench_dask_features.py     # 1M clinic
    .venv/bin/python benchmarks/bench_dask_features.py --patients 200000 --engines pandas,dask
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_clv import _peak_mib  # noqa: E402  (VmHWM of this process)
from bench_million import default_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("package", "pandas", "dask", "duckdb")
#: The columns compared (named as in patient_features).
COLUMNS = ["first_visit_date", "last_visit_date", "frequency", "visits_12m", "monetary_insured",
           "monetary_self_pay", "monetary_total", "value_12m", "inpatient_days"]
VISIT_COLUMNS = ["patient_id", "visit_date", "inpatient_days", "charge_insured", "charge_self_pay"]


def _as_of(folder: Path):
    import pandas as pd

    end = pd.Timestamp(json.loads((folder / "truth.json").read_text(encoding="utf-8"))["end"])
    return (end.to_period("M") - 1).end_time.normalize()


def _finish(frame):
    """Per-patient sums from per-(patient, day) rows, as patient_features defines them."""
    frame = frame.sort_index()
    frame["monetary_total"] = frame["monetary_insured"] + frame["monetary_self_pay"]
    frame["frequency"] = frame["frequency"].astype("int64")
    frame["visits_12m"] = frame["visits_12m"].astype("int64")
    frame["inpatient_days"] = frame["inpatient_days"].astype("int64")
    return frame[COLUMNS]


def _day_rows(visits, as_of, pd):
    """Visits up to `as_of`, with the columns the aggregation sums (works on pandas and Dask frames alike)."""
    v = visits[visits["visit_date"] <= as_of]
    recent = v["visit_date"] > as_of - pd.DateOffset(years=1)
    charge = v["charge_insured"].fillna(0) + v["charge_self_pay"].fillna(0)
    return v.assign(day=v["visit_date"].dt.normalize(), insured=v["charge_insured"].fillna(0),
                    self_pay=v["charge_self_pay"].fillna(0), inpatient=v["inpatient_days"].fillna(0),
                    recent_value=charge.where(recent, 0.0), recent=recent)


def run_engine(engine: str, folder: Path, workers: int) -> dict:
    import pandas as pd

    as_of = _as_of(folder)
    path = folder / "visits.parquet"
    started = time.perf_counter()
    extra = {}
    if engine == "package":
        from crm_analysis.clinic import ClinicData
        from crm_analysis.features import patient_features

        tables = {"patients": pd.read_parquet(folder / "patients.parquet"), "visits": pd.read_parquet(path)}
        read = time.perf_counter()
        f = patient_features(ClinicData(tables), as_of)
        result = f.loc[f["frequency"] > 0, COLUMNS].copy()
        result.attrs = {}  # (its as_of would go into the Parquet metadata as JSON)
        extra["note"] = f"read {read - started:.1f} s + patient_features {time.perf_counter() - read:.1f} s"
    elif engine == "pandas":
        v = _day_rows(pd.read_parquet(path, columns=VISIT_COLUMNS), as_of, pd)
        g = v.groupby(["patient_id", "day"], observed=True, sort=False)
        days = g.agg(insured=("insured", "sum"), self_pay=("self_pay", "sum"), inpatient=("inpatient", "sum"),
                     recent_value=("recent_value", "sum"), recent=("recent", "max")).reset_index()
        result = _finish(days.groupby("patient_id", sort=False).agg(
            first_visit_date=("day", "min"), last_visit_date=("day", "max"), frequency=("day", "size"),
            visits_12m=("recent", "sum"), monetary_insured=("insured", "sum"), monetary_self_pay=("self_pay", "sum"),
            value_12m=("recent_value", "sum"), inpatient_days=("inpatient", "sum")))
    elif engine == "dask":
        import dask.dataframe as dd
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            began = time.perf_counter()
            v = _day_rows(dd.read_parquet(path, columns=VISIT_COLUMNS), as_of, pd)
            # one row per (patient, day) first: a patient's days may sit in several partitions
            days = v.groupby(["patient_id", "day"], observed=True).agg(
                {"insured": "sum", "self_pay": "sum", "inpatient": "sum", "recent_value": "sum", "recent": "max"},
                split_out=max(workers * 2, 1)).reset_index()
            per = days.groupby("patient_id").agg(
                {"day": ["min", "max", "size"], "recent": "sum", "insured": "sum", "self_pay": "sum",
                 "recent_value": "sum", "inpatient": "sum"}, split_out=max(workers, 1))
            frame = per.compute()
            frame.columns = ["first_visit_date", "last_visit_date", "frequency", "visits_12m", "monetary_insured",
                             "monetary_self_pay", "value_12m", "inpatient_days"]
            result = _finish(frame)
            peaks = client.run(_peak_mib)
            extra["workers_peak_mib"] = sorted(round(p) for p in peaks.values())
            extra["note"] = (f"cluster start {began - started:.1f} s; {workers} worker processes, peaks "
                             f"{', '.join(f'{p:,.0f}' for p in extra['workers_peak_mib'])} MiB")
    elif engine == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute("SET threads TO 2")
        query = f"""
            WITH v AS (
                SELECT patient_id, date_trunc('day', visit_date) AS day,
                       coalesce(charge_insured, 0) AS insured, coalesce(charge_self_pay, 0) AS self_pay,
                       coalesce(inpatient_days, 0) AS inpatient,
                       visit_date > TIMESTAMP '{as_of:%Y-%m-%d}' - INTERVAL 1 YEAR AS recent
                FROM read_parquet('{path}') WHERE visit_date <= TIMESTAMP '{as_of:%Y-%m-%d}'),
            d AS (
                SELECT patient_id, day, sum(insured) AS insured, sum(self_pay) AS self_pay,
                       sum(inpatient) AS inpatient, bool_or(recent) AS recent,
                       sum(CASE WHEN recent THEN insured + self_pay ELSE 0 END) AS recent_value
                FROM v GROUP BY patient_id, day)
            SELECT patient_id, min(day) AS first_visit_date, max(day) AS last_visit_date, count(*) AS frequency,
                   sum(recent::INT) AS visits_12m, sum(insured) AS monetary_insured, sum(self_pay) AS monetary_self_pay,
                   sum(recent_value) AS value_12m, sum(inpatient) AS inpatient_days
            FROM d GROUP BY patient_id"""
        result = _finish(con.execute(query).df().set_index("patient_id"))
    else:
        raise ValueError(f"unknown engine {engine!r}")
    seconds = time.perf_counter() - started
    result.index = result.index.astype(str)
    out_file = Path(f"/tmp/crm_bench/dask_features_{engine}.parquet")
    result.to_parquet(out_file)
    return {"engine": engine, "seconds": seconds, "peak_mib": _peak_mib() + sum(extra.get("workers_peak_mib", [])),
            "patients": len(result), "file": str(out_file), **{k: v for k, v in extra.items() if k == "note"}}


def compare(files: dict[str, str]) -> list[str]:
    """Differences of every engine's columns from the package's (or the first engine's); empty when equal."""
    import numpy as np
    import pandas as pd

    frames = {e: pd.read_parquet(f) for e, f in files.items()}
    ref_name = "package" if "package" in frames else next(iter(frames))
    ref = frames[ref_name]
    problems = []
    for name, frame in frames.items():
        if name == ref_name:
            continue
        if not frame.index.sort_values().equals(ref.index.sort_values()):
            problems.append(f"{name}: {len(frame.index.symmetric_difference(ref.index)):,} patients differ")
            continue
        frame = frame.loc[ref.index]
        for column in COLUMNS:
            a, b = ref[column], frame[column]
            if pd.api.types.is_datetime64_any_dtype(a):
                same = (pd.to_datetime(a).dt.normalize().to_numpy() == pd.to_datetime(b).to_numpy()).all()
            else:
                same = np.allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float), rtol=1e-9, atol=1e-6)
            if not same:
                problems.append(f"{name}: column {column} differs from {ref_name}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, help="Parquet demo clinic (default /tmp/crm_bench/clinic_<size>)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes (one thread each)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.folder or default_folder(args.patients)
    if args.child:
        print(json.dumps(run_engine(args.child, folder, args.workers)))
        return
    if not (folder / "visits.parquet").is_file():
        parser.error(f"{folder} holds no visits.parquet: generate it first with benchmarks/bench_million.py")
    print(f"python={sys.version.split()[0]} cores={os.cpu_count()} folder={folder} as_of={_as_of(folder):%Y-%m-%d}",
          flush=True)
    print(f"{'engine':<9}{'wall s':>8}{'peak MiB':>10}{'patients':>11}   note", flush=True)
    files = {}
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        done = subprocess.run([sys.executable, __file__, "--child", engine, "--folder", str(folder), "--workers",
                               str(args.workers)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        if done.returncode:
            print(f"{engine:<9} failed (exit status {done.returncode})", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        files[engine] = r["file"]
        print(f"{engine:<9}{r['seconds']:>8.1f}{r['peak_mib']:>10,.0f}{r['patients']:>11,}   {r.get('note', '')}",
              flush=True)
    problems = compare(files) if len(files) > 1 else []
    print("same values in every engine: " + ("yes" if not problems else "NO\n  " + "\n  ".join(problems)))
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
