"""Time a hospital of a million patients, step by step: load + validate, snapshot, features, churn, CLV, campaigns.

Prints wall time and peak memory per step against the targets of issue #22.

    # the shared 1,000,000-patient clinic (~21.7M visits); generated once (~2¼ min, ~8 GB) and reused
    flock /tmp/crm_bench.lock nice -n 10 .venv/bin/python benchmarks/bench_million.py
    # a quick run for development (200,000 patients)
    .venv/bin/python benchmarks/bench_million.py --patients 200000 --steps snapshot,features

Each step runs in a fresh process, so the peak memory it reports (``VmHWM``) is its own.

- **load + validate**: ``load_clinic`` on the Parquet demo clinic, as of its last day. The
  validated clinic is then written as the monthly run's validated-clinic cache (not timed),
  next to the Parquet folder, and the other steps load it from there as the monthly run's
  notebooks do (``load_clinic(cache)``, not timed; "before" is the resident size then).
- **snapshot**: ``clinic.snapshot(as_of)`` (default: the last day of the month before the
  data's last day, as a monthly run on a fresh extract takes it). Timed twice: first on the
  clinic as ``load_clinic(parquet)`` gives it, which has to work out which reminders point at an
  appointment in the table, then as a notebook gets it from the cache, which holds that.
- **features** (``patient_features``), **churn** (``ChurnModel().fit``), **CLV**
  (``CLVModel().fit`` + ``predict_frame``) and **campaigns** (``plan_campaigns`` with the
  shipped campaigns and rule-based audiences) each run on the snapshot as the monthly run's
  processes get it: the run's copy of the snapshot (``write_run_copy``, written once next to
  the Parquet folder and not timed), mapped from disk, not a private copy in memory. The peak
  (``VmHWM``) counts the pages of that file a step reads as well as its own memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_clv import _peak_mib, _status_mib  # noqa: E402  (VmHWM: a child's own peak, not its parent's)

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("load+validate", "snapshot", "features", "churn", "clv", "campaigns")
ANALYSES = ("features", "churn", "clv", "campaigns")
#: Targets from issue #22, in seconds; and the peak resident memory allowed, in MiB (6 GB).
TARGET_S = {"load+validate": 60.0, "snapshot": 10.0, "clv": 30.0}
TARGET_ANALYSES_S = 180.0
TARGET_PEAK_MIB = 6e9 / 2**20


def default_folder(patients: int) -> Path:
    """The Parquet clinic shared with the other benchmarks (``/tmp/crm_bench/clinic_1m`` for a million)."""
    size = f"{patients // 1_000_000}m" if patients % 1_000_000 == 0 else f"{patients // 1000}k"
    return Path("/tmp/crm_bench") / f"clinic_{size}"


def cache_folder(folder: Path) -> Path:
    return folder.with_name(folder.name + ".validated")


def run_copy_folder(folder: Path) -> Path:
    """Where the run's copy of the snapshot is kept (``<folder>.run/<as_of>/clinic.cache``)."""
    return folder.with_name(folder.name + ".run")


def _run_copy(folder: Path, as_of) -> Path:
    from crm_analysis.io.forked_load import CACHE_NAME

    return run_copy_folder(folder) / f"{as_of:%Y-%m-%d}" / CACHE_NAME


# --------------------------------------------------------------------------- child process: one step


def _data_end(folder: Path):
    import pandas as pd

    return pd.Timestamp(json.loads((folder / "truth.json").read_text(encoding="utf-8"))["end"])


def run_step(step: str, folder: Path, as_of: str | None, seed: int, patients: int) -> dict:
    """Run `step` in this (fresh) process; the timings, memory and a few counts as a dict."""
    import pandas as pd

    from crm_analysis import load_clinic

    out: dict = {"step": step}
    if step == "generate":
        from crm_analysis import synth

        started = time.perf_counter()
        synth.generate_clinic(n_patients=patients, seed=seed).write(folder, format="parquet")
        out["seconds"] = time.perf_counter() - started
        out["peak_mib"] = _peak_mib()
        return out
    end = _data_end(folder)
    as_of = pd.Timestamp(as_of) if as_of else (end.to_period("M") - 1).end_time.normalize()
    out["as_of"] = f"{as_of:%Y-%m-%d}"
    if step == "load+validate":
        from crm_analysis.io.cache import write_snapshot_cache

        started = time.perf_counter()
        clinic = load_clinic(folder, as_of=end)
        out["seconds"] = time.perf_counter() - started
        out["peak_mib"] = _peak_mib()
        out["rows"] = {name: len(df) for name, df in clinic.tables.items()}
        started = time.perf_counter()
        cache = cache_folder(folder)
        for old in cache.glob("*") if cache.is_dir() else ():
            old.unlink()
        shutil.rmtree(run_copy_folder(folder), ignore_errors=True)  # made from the cache written here
        write_snapshot_cache(clinic, cache)
        out["note"] = f"validated cache written in {time.perf_counter() - started:.1f} s (not timed)"
        return out

    # an analysis reads the run's copy of the snapshot, mapped: pages come in as the step reads them
    clinic = load_clinic(_run_copy(folder, as_of) if step in ANALYSES else cache_folder(folder))
    out["rows"] = {name: len(df) for name, df in clinic.tables.items()}
    if step == "run-copy":
        from crm_analysis.io.cache import is_snapshot_cache
        from crm_analysis.io.forked_load import write_run_copy

        target = _run_copy(folder, as_of)
        if not is_snapshot_cache(target):
            started = time.perf_counter()
            write_run_copy(clinic.snapshot(as_of), target.parent)
            out["note"] = f"the run's copy of the snapshot written in {time.perf_counter() - started:.1f} s"
        return out
    if step == "snapshot":
        fresh = dataclasses.replace(clinic)   # the same tables, without the links the cache held
        out["before_mib"] = _status_mib("VmRSS")
        started = time.perf_counter()
        snap = fresh.snapshot(as_of)
        out["seconds"] = time.perf_counter() - started
        note = next(p.message for p in reversed(snap.report.info) if p.check == "snapshot")
        del snap, fresh
        started = time.perf_counter()
        clinic.snapshot(as_of)
        out["note"] = (f"{time.perf_counter() - started:.1f} s with the reminder links from the cache; "
                       + note.split(": ", 1)[1])
        out["peak_mib"] = _peak_mib()
        return out

    out["before_mib"] = _status_mib("VmRSS")
    started = time.perf_counter()
    if step == "features":
        from crm_analysis.features import patient_features

        result = patient_features(clinic, as_of)
        out["note"] = f"{len(result):,} patients"
    elif step == "churn":
        from crm_analysis.churn import ChurnModel

        model = ChurnModel().fit(clinic, as_of)
        out["note"] = f"fitted on {model.n_fit_gaps_:,} gaps ({model.n_fit_rows_:,} distinct rows)"
    elif step == "clv":
        from crm_analysis.value.clv import CLVModel

        model = CLVModel().fit(clinic, as_of)
        fitted = time.perf_counter()
        frame = model.predict_frame()
        out["note"] = (f"fit {fitted - started:.1f} s + predict_frame {time.perf_counter() - fitted:.1f} s, "
                       f"{len(frame):,} patients, converged={model.converged_}")
    elif step == "campaigns":
        from crm_analysis.campaigns import load_campaigns, plan_campaigns
        from crm_analysis.campaigns.audiences import candidate_source, source_candidates

        # The ranked VIP and recall lists come from other modules (features + VIP rules; the churn fit and the
        # contact response): made first, as the planner would make them, and timed apart within the step.
        made, candidates, list_s = {}, {}, {}
        for camp in load_campaigns(None).campaigns:
            source = candidate_source(camp)
            if source is not None:
                if source not in made:
                    began = time.perf_counter()
                    made[source] = source_candidates(clinic, as_of, source)
                    list_s[source[0]] = time.perf_counter() - began
                candidates[camp.audience] = made[source]
        listed = time.perf_counter()
        plan = plan_campaigns(clinic, as_of, candidates=candidates)
        lists = " + ".join(f"{name} list {s:.1f} s" for name, s in list_s.items())
        out["note"] = (f"{lists} + planning {time.perf_counter() - listed:.1f} s; {len(plan.sends):,} messages, "
                       f"{len(plan.holdout):,} held out")
    else:
        raise ValueError(f"unknown step {step!r}; choose from {', '.join(STEPS)}")
    out["seconds"] = time.perf_counter() - started
    out["peak_mib"] = _peak_mib()
    return out


# --------------------------------------------------------------------------- parent: steps in fresh processes


def in_child(step: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", step, "--folder", str(args.folder), "--seed", str(args.seed),
           "--patients", str(args.patients)] + (["--as-of", args.as_of] if args.as_of else [])
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if done.returncode:
        return {"step": step, "error": f"exit status {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _target(step: str) -> str:
    return f"≤ {TARGET_S[step]:.0f} s" if step in TARGET_S else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000, help="clinic size (generated once, then reused)")
    parser.add_argument("--folder", type=Path, help="Parquet demo clinic (default /tmp/crm_bench/clinic_<size>)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    parser.add_argument("--as-of", help="snapshot day (default: last day of the month before the data's end)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.folder = args.folder or default_folder(args.patients)
    if args.child:
        print(json.dumps(run_step(args.child, args.folder, args.as_of, args.seed, args.patients)))
        return
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown step(s) {', '.join(unknown)}; choose from {', '.join(STEPS)}")
    print(f"python={sys.version.split()[0]} cores={__import__('os').cpu_count()} patients={args.patients:,} "
          f"folder={args.folder}", flush=True)
    if not (args.folder / "truth.json").is_file():
        r = in_child("generate", args)
        if "error" in r:
            sys.exit(f"generating the clinic failed ({r['error']})")
        print(f"generated and wrote the clinic in {r['seconds']:.0f} s "
              f"(peak {r['peak_mib']:,.0f} MiB; not timed below)")
    from crm_analysis.io.cache import is_snapshot_cache

    if "load+validate" not in steps and not is_snapshot_cache(cache_folder(args.folder)):
        steps.insert(0, "load+validate")   # the other steps read the validated cache it writes
        print("no validated cache yet: running load+validate first")
    results = []
    print(f"\n{'step':<15} {'wall s':>8} {'peak MiB':>9} {'before':>8}  {'target':<9} note", flush=True)
    copied = False
    for step in [s for s in STEPS if s in steps]:
        if step in ANALYSES and not copied:   # after load+validate, which clears it when it runs
            r = in_child("run-copy", args)
            if "error" in r:
                sys.exit(f"writing the run's copy of the snapshot failed ({r['error']})")
            copied = True
        r = in_child(step, args)
        results.append(r)
        if "error" in r:
            print(f"{step:<15} FAILED ({r['error']})", flush=True)
            continue
        before = f"{r['before_mib']:8,.0f}" if "before_mib" in r else " " * 8
        print(f"{step:<15} {r['seconds']:8.1f} {r['peak_mib']:9,.0f} {before}  {_target(step):<9} "
              f"{r.get('note', '')}", flush=True)
    ok = [r for r in results if "error" not in r]
    if ok:
        rows = ok[0].get("rows", {})
        print("\nrows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
        print(f"snapshot as of {next((r['as_of'] for r in ok if 'as_of' in r), '?')}")
    print("\ntargets (issue #22):")
    for r in ok:
        if r["step"] in TARGET_S:
            met = r["seconds"] <= TARGET_S[r["step"]]
            print(f"  {r['step']:<28} {r['seconds']:7.1f} s  {_target(r['step']):<9} {'met' if met else 'NOT met'}")
    analyses = [r for r in ok if r["step"] in ANALYSES]
    if analyses:
        total = sum(r["seconds"] for r in analyses)
        partial = "" if len(analyses) == len(ANALYSES) else f" (only {', '.join(r['step'] for r in analyses)})"
        print(f"  {'analyses together':<28} {total:7.1f} s  ≤ {TARGET_ANALYSES_S:.0f} s   "
              f"{'met' if total <= TARGET_ANALYSES_S else 'NOT met'}{partial}")
    if ok:
        worst = max(ok, key=lambda r: r["peak_mib"])
        met = "met" if worst["peak_mib"] <= TARGET_PEAK_MIB else "NOT met"
        print(f"  {'peak memory (' + worst['step'] + ')':<28} {worst['peak_mib']:7,.0f} MiB "
              f"≤ {TARGET_PEAK_MIB:,.0f} MiB (6 GB) {met}")


if __name__ == "__main__":
    main()
