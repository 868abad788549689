"""Time patient features, RFM segments, the loyalty score and VIP selection on a large demo clinic.

Prints wall time and peak memory (resident set size) per step.

    # the shared 1,000,000-patient clinic (~21.7M visits); run big benchmarks under the lock
    flock /tmp/crm_bench.lock .venv/bin/python benchmarks/bench_segmentation.py
    # or generate a clinic of any size first (1M: ~2¼ min and ~8 GB for the generator)
    .venv/bin/python benchmarks/bench_segmentation.py --patients 100000 --folder /tmp/clinic_100k

What is timed: the Parquet tables are read straight into a ``ClinicData``
(pyarrow, text as ``string[pyarrow]``, as the loader produces) without the
loader's validation, which on 1M patients takes ~4 minutes and 11 GiB by
itself (see ``bench_demo_data.py``); then ``patient_features`` (visits,
appointments, referrals), ``rfm_scores`` + ``assign_segments``,
``loyalty_score`` and ``select_vips``, each as of the data's last day.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

DEFAULT_FOLDER = Path("/tmp/crm_bench/clinic_1m")
TABLES = ("patients", "visits", "appointments")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def read_clinic(folder: Path):
    """The Parquet tables as a ClinicData, text columns as string[pyarrow] (no validation)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from crm_analysis.clinic import ClinicData

    def mapper(t):
        return pd.StringDtype("pyarrow") if t in (pa.string(), pa.large_string()) else None

    tables = {n: pq.read_table(folder / f"{n}.parquet").to_pandas(types_mapper=mapper) for n in TABLES}
    for name, df in tables.items():     # categories as the loader has them
        for col in ("department", "visit_type", "status", "sex", "region", "referral_source", "record_status"):
            if col in df and not isinstance(df[col].dtype, pd.CategoricalDtype):
                df[col] = df[col].astype("category")
    as_of = pd.Timestamp(json.loads((folder / "truth.json").read_text())["end"])
    return ClinicData(tables, as_of=as_of)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER,
                        help="Parquet demo clinic (with truth.json); generated there if missing")
    parser.add_argument("--patients", type=int, default=1_000_000, help="size when generating")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print(f"python={sys.version.split()[0]} cores={__import__('os').cpu_count()} folder={args.folder}")
    if not (args.folder / "truth.json").is_file():
        from crm_analysis import synth

        t = time.perf_counter()
        synth.generate_clinic(n_patients=args.patients, seed=args.seed).write(args.folder, format="parquet")
        print(f"{'generate+write':<22} {time.perf_counter() - t:8.1f} s   peak {_peak_mib():8.0f} MiB")
        print("(rerun to time the analysis in a fresh process, without the generator's memory)")
        return

    from crm_analysis.features import patient_features
    from crm_analysis.value.loyalty import loyalty_score
    from crm_analysis.value.segmentation import assign_segments, rfm_scores
    from crm_analysis.value.vip import select_vips

    results = []

    def step(name, fn):
        t = time.perf_counter()
        out = fn()
        secs = time.perf_counter() - t
        results.append((name, secs))
        print(f"{name:<22} {secs:8.1f} s   peak {_peak_mib():8.0f} MiB   now {_rss_mib():8.0f} MiB", flush=True)
        return out

    clinic = step("read parquet", lambda: read_clinic(args.folder))
    print("rows: " + ", ".join(f"{n}={len(clinic.tables[n]):,}" for n in TABLES))
    as_of = clinic.as_of
    feats = step("patient_features", lambda: patient_features(clinic, as_of))
    segs = step("rfm + segments", lambda: assign_segments(rfm_scores(feats)))
    step("loyalty_score", lambda: loyalty_score(feats))
    vips = step("select_vips", lambda: select_vips(feats, as_of))
    total = sum(s for n, s in results if n != "read parquet")
    print(f"{'features..VIP total':<22} {total:8.1f} s   peak {_peak_mib():8.0f} MiB (whole process)")
    print(f"patients={len(feats):,} segments={segs['segment'].nunique()} vip_selected={int(vips['selected'].sum())}")


if __name__ == "__main__":
    main()
