"""Time the campaign steps on a generated clinic: suppression, plan (all campaigns), evaluation, staff files.

Prints wall time and peak memory (resident set size) per step.

    .venv/bin/python benchmarks/bench_campaigns.py                     # 100,000 patients
    flock /tmp/crm_bench.lock .venv/bin/python benchmarks/bench_campaigns.py --patients 1000000

What is timed: the clinic is generated in memory (not timed) and wrapped in ClinicData without the
loader. VIP and recall audiences use the package's rule-based candidates
(``rule_vip_candidates``, ``rule_recall_candidates``), so the churn model fit (timed by the churn
benchmark) is left out. Steps run in order in one process; the peak memory is the process's peak so far.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    from crm_analysis import synth
    from crm_analysis.campaigns import evaluate_campaigns, plan_campaigns, suppression_list, write_outreach
    from crm_analysis.campaigns.audiences import rule_recall_candidates, rule_vip_candidates
    from crm_analysis.campaigns.outreach import staff_list, _with_names
    from crm_analysis.clinic import ClinicData

    as_of = pd.Timestamp("2026-10-31")
    print(f"patients={args.patients:,} seed={args.seed} python={sys.version.split()[0]}")
    t = time.perf_counter()
    gen = synth.generate_clinic(n_patients=args.patients, seed=args.seed, end=f"{as_of:%Y-%m-%d}")
    clinic = ClinicData(gen.tables, as_of=as_of)
    print(f"{'generate (not part of campaigns)':38s} {time.perf_counter() - t:8.1f} s  peak {peak_mib():8,.0f} MiB  "
          f"rows: {', '.join(f'{k}={len(v):,}' for k, v in gen.tables.items())}")

    def step(name, fn):
        t = time.perf_counter()
        out = fn()
        print(f"{name:38s} {time.perf_counter() - t:8.1f} s  peak {peak_mib():8,.0f} MiB")
        return out

    step("suppression list", lambda: suppression_list(clinic.tables["contacts"], clinic.tables["visits"], as_of))
    vips = step("VIP + recall candidates (rules)", lambda: rule_vip_candidates(clinic, as_of))
    recall = rule_recall_candidates(clinic, as_of)
    plan = step("plan all campaigns (incl. checks)", lambda: plan_campaigns(
        clinic, as_of, candidates={"vip_event": vips, "vip_birthday": vips, "recall": recall}))
    print(f"    messages={len(plan.sends):,} holdout rows={len(plan.holdout):,}")
    step("evaluate all past campaigns", lambda: evaluate_campaigns(clinic, as_of))
    with tempfile.TemporaryDirectory() as tmp:
        lists = {"outreach": staff_list(_with_names(plan, clinic)), "holdout": plan.holdout}
        step("write staff files (CSV + XLSX)", lambda: write_outreach(lists, Path(tmp) / "outreach"))


if __name__ == "__main__":
    main()
