"""The churn back-test table: ranking (C-index), calibration (decile errors) and Brier score, per model.

    .venv/bin/python benchmarks/bench_churn_backtest.py                       # data/demo (README command 1)
    .venv/bin/python benchmarks/bench_churn_backtest.py --source path/to/export --as-of 2026-10-31
    .venv/bin/python benchmarks/bench_churn_backtest.py --hangu               # the real Hangu clinic in ../shared

Fits the churn model on the data up to ``as_of − horizon`` and compares each patient's predicted
P(return within the horizon) with what happened next (:func:`crm_analysis.churn.backtest`). Calibration:
patients in deciles of the prediction, the mean and the worst gap between predicted and observed return
rates. Prints the table, the Cox model's deciles, wall time and peak memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _hangu_clinic():
    """The Hangu clinic's visits as a clinic (dates rebuilt from sessions, as tests/test_real_exports.py does)."""
    import tempfile

    import pandas as pd

    from crm_analysis import load_clinic

    sys.path.insert(0, str(ROOT))
    from tests.test_real_exports import _hangu_visits  # noqa: PLC2701 - the tests' date reconstruction

    raw = _hangu_visits()
    folder = Path(tempfile.mkdtemp())
    raw.drop_duplicates("ID")[["ID", "Gender"]].rename(columns={"ID": "patient_id", "Gender": "sex"}).to_csv(
        folder / "patients.csv", index=False)
    pd.DataFrame({"visit_id": [f"V{i}" for i in range(len(raw))], "patient_id": raw["ID"],
                  "visit_date": raw["visit_date"].dt.strftime("%Y-%m-%d")}).to_csv(folder / "visits.csv", index=False)
    return load_clinic(folder, as_of="2019-12-31")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(ROOT / "data" / "demo"))
    parser.add_argument("--as-of", default="2026-10-31")
    parser.add_argument("--horizon", type=int, default=180)
    parser.add_argument("--hangu", action="store_true", help="the real Hangu clinic export in ../shared/data/real")
    args = parser.parse_args()
    from crm_analysis import load_clinic
    from crm_analysis.churn import backtest

    clinic = _hangu_clinic() if args.hangu else load_clinic(args.source, as_of=args.as_of)
    started = time.perf_counter()
    result = backtest(clinic, None, args.horizon)
    wall = time.perf_counter() - started
    print(f"back-test: cut-off {result.cutoff:%Y-%m-%d}, horizon {result.horizon} days, {result.n_patients:,} "
          f"patients, {result.observed_rate:.1%} returned")
    print(result.table.round(4).to_string(index=False))
    cal = result.calibration["cox"]
    print("cox deciles, predicted / observed:",
          " ".join(f"{p:.3f}/{o:.3f}" for p, o in zip(cal["predicted"], cal["observed"])))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"wall {wall:.1f} s, peak memory {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
