"""The no-show risk back-test table: AUC and Brier score of the risk model and its two baselines.

    .venv/bin/python benchmarks/bench_noshow.py                  # data/demo (20,000 patients) and Kaggle 2016
    .venv/bin/python benchmarks/bench_noshow.py --no-kaggle
    .venv/bin/python benchmarks/bench_noshow.py --source path/to/export --as-of 2026-10-31 --split 2026-05-01

Out of time (:func:`crm_analysis.noshow.noshow_backtest`): the models are fitted on the appointments
scheduled before the split and score those from it to as_of (attended or no-show; cancelled ones left
out). Baselines: earlier no-shows only, lead time only. Also times one daily scoring
(:func:`crm_analysis.noshow.score_appointments`) on the demo, and the reuse of a fitted model (its pickle
round trip, and scoring only the next day's patients with it). Prints the tables, the risk model's deciles,
wall time per step and peak memory.
"""

from __future__ import annotations

import argparse
import pickle
import resource
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KAGGLE = ROOT.parent / "shared" / "data" / "real" / "noshow_kaggle_2016.csv.gz"
KAGGLE_MAPPING = ROOT / "data" / "mappings" / "kaggle_noshow_2016.yaml"


def _report(name: str, result, seconds: float) -> None:
    print(f"\n== {name}: fitted before {result.split_date:%Y-%m-%d} on {result.n_train:,} appointments, scored "
          f"{result.n_test:,} to {result.as_of:%Y-%m-%d} ({result.observed_rate:.1%} no-shows), {seconds:.1f} s")
    print("features left out:", dict(result.dropped) or "none")
    print(result.summary().round(4).to_string(index=False))
    d = result.deciles
    print("risk model deciles, predicted / observed:",
          " ".join(f"{p:.3f}/{o:.3f}" for p, o in zip(d["predicted"], d["observed"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(ROOT / "data" / "demo"))
    parser.add_argument("--as-of", default="2026-10-31")
    parser.add_argument("--split", default="2026-05-01")
    parser.add_argument("--no-kaggle", action="store_true", help="skip the Kaggle 2016 export")
    args = parser.parse_args()
    import pandas as pd

    from crm_analysis import load_clinic
    from crm_analysis.noshow import fit_noshow_model, noshow_backtest, noshow_table, score_appointments

    started = time.perf_counter()
    t = time.perf_counter()
    clinic = load_clinic(args.source, as_of=args.as_of)
    print(f"load {args.source}: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    table = noshow_table(clinic, args.as_of)
    print(f"noshow_table: {len(table):,} appointments, {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    result = noshow_backtest(table, args.split, as_of=args.as_of)
    _report("demo" if args.source.endswith("demo") else args.source, result, time.perf_counter() - t)
    t = time.perf_counter()
    day = (clinic.as_of or table["scheduled_at"].max()).normalize() - pd.Timedelta(days=1)
    ranked = score_appointments(clinic, day)
    print(f"\nscore_appointments as of {day:%Y-%m-%d}: {len(ranked):,} upcoming appointments scored in "
          f"{time.perf_counter() - t:.1f} s (snapshot, table, fit on every known outcome, predict, reasons)")
    t = time.perf_counter()
    model = fit_noshow_model(clinic, day)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    model = pickle.loads(pickle.dumps(model))
    pickle_s = time.perf_counter() - t
    tomorrow = ranked.loc[ranked["scheduled_at"].dt.normalize() == day + pd.Timedelta(days=1), "patient_id"].unique()
    t = time.perf_counter()
    few = score_appointments(clinic, day, model=model, patients=tomorrow)
    print(f"fit_noshow_model {fit_s:.1f} s; pickle round trip {pickle_s * 1000:.0f} ms; the next day's "
          f"{len(tomorrow):,} patients ({len(few):,} upcoming appointments) scored with it in "
          f"{time.perf_counter() - t:.2f} s (what the daily run does on a later day of the month)")
    if not args.no_kaggle:
        if KAGGLE.is_file():
            t = time.perf_counter()
            kaggle = load_clinic(KAGGLE, mapping=KAGGLE_MAPPING)
            load_s = time.perf_counter() - t
            t = time.perf_counter()
            result = noshow_backtest(kaggle, "2016-05-20", as_of="2016-06-08")
            print(f"\nload Kaggle: {load_s:.1f} s")
            _report("Kaggle 2016", result, time.perf_counter() - t)
        else:
            print(f"\n{KAGGLE} is absent: Kaggle skipped")
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nwall {wall:.1f} s, peak memory {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
