"""Time the CLV fit (BG/NBD × Gamma-Gamma) and its predictions at 20,000 and 1,000,000 patients.

Prints wall time and peak memory of ``fit`` + ``predict_frame`` on the
per-patient summary, for the fit on sufficient statistics (distinct rows with
multiplicities, the default) and the per-patient Nelder-Mead fit it replaced
(``CLVModel._sufficient = False``), with the distinct rows each evaluates and
the largest relative difference between the two.

    nice -n 10 .venv/bin/python benchmarks/bench_clv.py                 # data/demo and 1M built from it
    .venv/bin/python benchmarks/bench_clv.py --copies 10 --old-timeout 60

What is timed: the model on its per-patient summary (``CLVModel.data_``:
``x``, ``t_x``, ``T``, ``n_z``, ``z_mean``, ``base_per_visit_day``), not the
summary itself, which ``patient_features`` and the spend multipliers build from
the visits (on the 20,000-patient demo 0.2 s; at 1M it scales with the ~21.7M
visits and is timed by ``bench_segmentation.py``). The 20k summary is that of
``data/demo`` as of its last day. The 1M summary is the demo's resampled 50×:
each copy moves every patient's registration and last visit by up to ±3 whole
days (``0 ≤ t_x ≤ T`` kept, patients without a repeat visit keep ``t_x = 0``)
and multiplies the mean spend multiplier and base per visit day by
``exp(N(0, 0.05²))``, so spend stays continuous as in a real clinic. Each case
runs in a fresh process, so each peak (``VmHWM``) is its own; "added" is that
peak minus the resident size with the summary loaded.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("p_alive", "expected_visits", "expected_spend_per_visit", "expected_value")


def _status_mib(field: str) -> float:
    """A size from /proc/self/status (VmRSS: resident now, VmHWM: peak resident of this process image)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child would report its parent's peak
    hwm = _status_mib("VmHWM")
    return hwm if hwm == hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def demo_summary(folder: Path) -> tuple[pd.DataFrame, pd.Timestamp]:
    """The CLV model's per-patient summary of the demo clinic in `folder`, as of its last day."""
    from crm_analysis import load_clinic
    from crm_analysis.value.clv import CLVModel

    as_of = pd.Timestamp(json.loads((folder / "truth.json").read_text(encoding="utf-8"))["end"])
    clinic = load_clinic(folder, as_of=as_of)
    started = time.perf_counter()
    model = CLVModel().fit(clinic, as_of)
    print(f"{folder.name}: {len(model.data_):,} patients as of {as_of:%Y-%m-%d}; summary + fit from the clinic "
          f"{time.perf_counter() - started:.1f} s")
    return model.data_, as_of


def resampled(d: pd.DataFrame, copies: int, time_unit_days: float = 7.0, seed: int = 42) -> pd.DataFrame:
    """`copies` jittered copies of the summary `d` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    idx = np.tile(np.arange(len(d)), copies)
    out = d.iloc[idx].reset_index(drop=True)
    x = out["x"].to_numpy()
    tx = np.rint(out["t_x"].to_numpy() * time_unit_days)
    T = np.rint(out["T"].to_numpy() * time_unit_days)
    T = np.clip(T + rng.integers(-3, 4, len(out)), tx, T.max())
    tx = np.where(x > 0, np.clip(tx + rng.integers(-3, 4, len(out)), 1, T), 0.0)
    out["t_x"], out["T"] = tx / time_unit_days, T / time_unit_days
    for col in ("z_mean", "base_per_visit_day"):
        out[col] = out[col].to_numpy() * np.exp(rng.normal(0.0, 0.05, len(out)))
    out.index = pd.Index([f"P{i:07d}" for i in range(1, len(out) + 1)], name=d.index.name)
    return out


def distinct_counts(d: pd.DataFrame) -> tuple[int, int]:
    """Distinct (x, t_x, T) triples and distinct (n, z̄) pairs of the patients with a charged visit."""
    from crm_analysis.value.clv_fit import distinct_rows

    spend = d[d["n_z"] > 0]
    return (len(distinct_rows(d["x"].to_numpy(), d["t_x"].to_numpy(), d["T"].to_numpy())[0]),
            len(distinct_rows(spend["n_z"].to_numpy(), spend["z_mean"].to_numpy())[0]))


def run_case(summary: Path, sufficient: bool, out: Path) -> None:
    """Child process: fit + predict on the pickled summary; writes timings, memory, parameters, predictions."""
    from crm_analysis.value.clv import CLVModel

    with open(summary, "rb") as fh:
        d, as_of = pickle.load(fh)
    rss0 = _status_mib("VmRSS")
    started = time.perf_counter()
    model = CLVModel()
    model._sufficient = sufficient
    model.as_of_ = as_of
    model.summary = model._fit_data(d)
    fitted = time.perf_counter()
    frame = model.predict_frame()
    done = time.perf_counter()
    peak = _peak_mib()
    with open(out, "wb") as fh:
        pickle.dump({"fit_s": fitted - started, "predict_s": done - fitted, "peak_mib": peak, "added_mib": peak - rss0,
                     "params": model.params_, "converged": model.converged_,
                     "predictions": frame[list(COLUMNS)].to_numpy()}, fh)


def timed(summary: Path, sufficient: bool, timeout: float | None) -> dict | None:
    """Run one case in a fresh process; None if it did not finish within `timeout` seconds."""
    out = summary.with_suffix(f".{'new' if sufficient else 'old'}.pkl")
    cmd = [sys.executable, __file__, "--case", str(summary), "--sufficient", str(int(sufficient)), "--out", str(out)]
    try:
        subprocess.run(cmd, check=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return None
    with open(out, "rb") as fh:
        return pickle.load(fh)


def _line(label: str, r: dict) -> str:
    return (f"  {label:<34} fit {r['fit_s']:6.2f} s + predict {r['predict_s']:5.2f} s = "
            f"{r['fit_s'] + r['predict_s']:6.2f} s   peak {r['peak_mib']:6,.0f} MiB (added {r['added_mib']:5,.0f})"
            f"{'' if r['converged'] else '   NOT CONVERGED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=str(ROOT / "data" / "demo"), help="demo clinic folder (with truth.json)")
    parser.add_argument("--copies", type=int, default=50, help="copies of the demo summary for the large case")
    parser.add_argument("--old-timeout", type=float, default=150.0,
                        help="seconds the per-patient fit may take at the large size before it is extrapolated")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--sufficient", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(Path(args.case), bool(args.sufficient), Path(args.out))
        return

    print(f"python={sys.version.split()[0]} cores={__import__('os').cpu_count()}")
    demo, as_of = demo_summary(Path(args.folder))
    with tempfile.TemporaryDirectory(prefix="bench_clv_") as tmp:
        cases = [("demo", demo)]
        started = time.perf_counter()
        big = resampled(demo, args.copies)
        cases.append((f"{len(big):,} (demo × {args.copies})", big))
        print(f"built the {len(big):,}-patient summary in {time.perf_counter() - started:.1f} s (not timed below)")
        first_old = None
        for label, d in cases:
            path = Path(tmp) / f"{len(d)}.pkl"
            with open(path, "wb") as fh:
                pickle.dump((d, as_of), fh)
            triples, pairs = distinct_counts(d)
            spenders = int((d["n_z"] > 0).sum())
            print(f"\n{label}: {len(d):,} patients; BG/NBD on {triples:,} distinct (x, t_x, T) "
                  f"({triples / len(d):.1%}); Gamma-Gamma on {pairs:,} distinct (n, z̄) of {spenders:,} "
                  f"({pairs / spenders:.1%})")
            new = timed(path, True, None)
            print(_line("sufficient statistics (new)", new), flush=True)
            old = timed(path, False, args.old_timeout)
            if old is None:
                per_patient = (first_old["fit_s"] + first_old["predict_s"]) / first_old["n"]
                print(f"  per patient (old)                  did not finish in {args.old_timeout:.0f} s; "
                      f"extrapolated linearly from the demo: ~{per_patient * len(d):,.0f} s")
                continue
            old["n"] = len(d)
            first_old = first_old or old
            print(_line("per patient, Nelder-Mead (old)", old))
            p_new, p_old = np.array(list(new["params"].values())), np.array(list(old["params"].values()))
            pred = np.abs(new["predictions"] - old["predictions"]) / np.maximum(np.abs(old["predictions"]), 1e-300)
            print(f"  speed-up {(old['fit_s'] + old['predict_s']) / (new['fit_s'] + new['predict_s']):.1f}×; "
                  f"max relative difference new vs old: parameters {np.max(np.abs(p_new / p_old - 1)):.1e}, "
                  f"predictions {np.max(pred):.1e}")
            print("  parameters (new): " + ", ".join(f"{k}={v:.5g}" for k, v in new["params"].items()))


if __name__ == "__main__":
    main()
