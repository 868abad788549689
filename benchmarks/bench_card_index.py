"""Time the card index on a large clinic: writing ``cards.sqlite``, then cold ``crm-analysis lookup`` calls.

Prints wall time and peak memory (resident set size) of each step:

1. **Write**: synthetic card tables for N patients (default 1,000,000), written with the real writer
   (:func:`crm_analysis.profile.card_index.write_card_index`); the file is kept in a cache folder under
   /tmp and reused by later runs (``--rebuild`` writes it again, and only then is the write timed).
2. **Lookups**: ``crm-analysis lookup --index P --phone X`` run as a fresh process each time (interpreter
   start, imports, open, query, print, access log), over random numbers of the index in random common
   spellings (010-1234-5678, 01012345678, +82 10-1234-5678): median, p95 and max wall time, and each
   child's peak memory (``os.wait4``; ``getrusage(RUSAGE_CHILDREN)`` gives the largest). Then the same
   lookups in this process (open + find + render), without the interpreter's start.

This process imports only the standard library: the index is written by a child process (``--write``,
with numpy and pandas), and each lookup's peak memory is its own (a child's peak counts the parent's
pages at ``exec``, so a big parent would inflate it).

The index's *content* is synthetic (generated column-wise with numpy: 1M cards, ~1M phones of which about
5% are shared by a parent and a child, ~100k appointments, ~300k planned messages, ~50k children) and
matches :data:`~crm_analysis.profile.card_index.SCHEMA`; the *read path* is the real one. The file is in
the page cache after it is written or first read, as on a desk PC that looks patients up all day.

    nice -n 10 .venv/bin/python benchmarks/bench_card_index.py                     # 1M patients
    nice -n 10 .venv/bin/python benchmarks/bench_card_index.py --patients 20000 --lookups 50
    nice -n 10 .venv/bin/python benchmarks/bench_card_index.py --clinic /tmp/crm_bench/clinic_1m.validated
        # the cards of the generated 1M clinic, made by the real code (no churn/CLV/plan)

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "crm_bench" / "card_index"
AS_OF = "2026-10-31"
KOREAN_MOBILE_BASE = 10**9  # phone_key of 010-0000-0000: 010 + 8 digits → 10xxxxxxxx

FAMILY = "김이박최정강조윤장임한오서신권황안송류홍"
GIVEN = "민서지현수영준우은하도윤예진태연성호"


def peak_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def step(name: str, started: float, extra: str = "") -> float:
    now = time.perf_counter()
    print(f"  {name:<44} {now - started:8.2f} s   peak {peak_mib():>6,} MiB   {extra}", flush=True)
    return now


def days(rng, n: int, start: str, end: str):
    import pandas as pd

    lo, hi = pd.Timestamp(start).value // 86_400_000_000_000, pd.Timestamp(end).value // 86_400_000_000_000
    return (rng.integers(lo, hi + 1, n) * 86_400).astype("datetime64[s]").astype("datetime64[ns]")


def maybe(rng, values, share: float):
    """`values` with about ``1 - share`` of them missing (object column)."""
    import pandas as pd

    out = pd.Series(values, dtype=object)
    return out.where(rng.random(len(out)) < share, None)


def synthetic_tables(n: int, seed: int) -> dict:
    """Card tables for `n` patients, column-wise; about 5% of patients are children sharing a parent's phone."""
    import numpy as np
    import pandas as pd

    as_of = pd.Timestamp(AS_OF)
    family, given = np.array(list(FAMILY)), np.array(list(GIVEN))
    rng = np.random.default_rng(seed)
    ids = pd.Series(np.char.add("P", np.char.zfill(np.arange(1, n + 1).astype(str), 7)))
    # distinct 8-digit subscriber numbers starting 2-9 (valid Korean mobiles), then children copy a parent's
    numbers = np.unique(rng.integers(20_000_000, 100_000_000, int(n * 1.02)))
    numbers = rng.permutation(numbers)[:n]
    kids = rng.choice(n, size=n // 20, replace=False)
    parents = rng.choice(np.setdiff1d(np.arange(n), kids), size=len(kids), replace=True)
    numbers[kids] = numbers[parents]
    keys = KOREAN_MOBILE_BASE + numbers.astype(np.int64)
    tail = pd.Series(numbers % 10_000).astype(str).str.zfill(4)

    names = pd.Series(family[rng.integers(0, len(family), n)]).str.cat(
        [pd.Series(given[rng.integers(0, len(given), n)]), pd.Series(given[rng.integers(0, len(given), n)])])
    birth = days(rng, n, "1940-01-01", "2024-12-31")
    birth[kids] = days(rng, len(kids), "2012-01-01", "2025-06-30")
    first = days(rng, n, "2016-01-01", "2026-10-31")
    last = np.maximum(first, days(rng, n, "2023-01-01", "2026-10-31"))
    segments = np.array(["충성 고객", "신규", "이탈 위험", "휴면", "잠재 VIP", "일반"])
    segments_en = np.array(["Loyal", "New", "At risk", "Dormant", "Potential VIP", "Regular"])
    seg = rng.integers(0, len(segments), n)
    vip = (rng.random(n) < 0.01).astype(int)
    elapsed = ((as_of.to_datetime64() - last) // np.timedelta64(1, "D")).astype(int)
    overdue = (elapsed > 180).astype(int)
    recall = overdue & (rng.random(n) < 0.5)
    value_12m = np.round(rng.lognormal(12.5, 1.0, n), -2)
    pregnant = rng.random(n) < 0.005
    consent = np.array(["valid", "none", "opted_out"])
    cards = pd.DataFrame({
        "patient_id": ids, "name": names, "birth_date": birth, "sex": np.where(rng.random(n) < 0.55, "F", "M"),
        "phone_tail": tail, "age": ((as_of.to_datetime64() - birth) // np.timedelta64(365, "D")).astype(int),
        "first_visit": first, "last_visit": last,
        "last_department_ko": "내과", "last_department_en": "Internal medicine",
        "visit_days": rng.integers(1, 60, n), "visits_12m": rng.integers(0, 12, n),
        "value_12m": value_12m, "value_lifetime": value_12m * rng.uniform(1, 6, n),
        "segment_ko": segments[seg], "segment_en": segments_en[seg], "vip": vip,
        "vip_reason_ko": np.where(vip == 1, "최근 12개월 진료비 상위 1% (2,400,000원 ≥ 기준 2,000,000원), 내원 9일", None),
        "vip_reason_en": np.where(vip == 1, "top 1% by 12-month charges (KRW 2,400,000 ≥ KRW 2,000,000); 9 visit days",
                                  None),
        "p_return": np.round(rng.uniform(0, 1, n), 3), "return_horizon_days": 180, "elapsed_days": elapsed,
        "usual_interval_days": np.round(rng.uniform(20, 200, n)), "overdue": overdue, "recall_candidate": recall,
        "predicted_value": np.round(rng.lognormal(12, 1.0, n), -2), "predicted_horizon_days": 365,
        "past_appointments": rng.integers(0, 20, n), "no_shows": rng.integers(0, 3, n), "high_noshow_risk": 0,
        "pregnancy_week": pd.Series(rng.integers(4, 40, n), dtype="Int64").where(pregnant),
        "due_date": pd.Series(days(rng, n, "2026-11-01", "2027-07-31")).where(pregnant),
        "sms": consent[rng.integers(0, 3, n)], "kakao": consent[rng.integers(0, 3, n)],
        "email": consent[rng.integers(0, 3, n)], "night_consent": (rng.random(n) < 0.1).astype(int),
        "action_kind": np.where(recall == 1, "recall", "segment"),
        "action_ko": np.where(recall == 1, pd.Series(elapsed).astype(str).radd("재내원 안내 대상: 마지막 내원 ") + "일 전, 예약 권유",
                              "정기 검진 안내"),
        "action_en": np.where(recall == 1, pd.Series(elapsed).astype(str).radd("Due for a recall: last visit ")
                              + " days ago; offer an appointment", "Mention the regular check-up"),
    })
    phones = pd.DataFrame({"phone_key": keys, "patient_id": ids})

    n_appt = max(1, n // 10)
    who = rng.integers(0, n, n_appt)
    risk = np.round(rng.beta(2, 8, n_appt), 3)
    band = np.where(risk > 0.4, "high", np.where(risk > 0.2, "medium", "low"))
    appointments = pd.DataFrame({
        "patient_id": ids.to_numpy()[who], "appointment_id": np.char.add("A", np.arange(n_appt).astype(str)),
        "scheduled_at": as_of.to_datetime64() + rng.integers(1, 60 * 24 * 60, n_appt).astype("timedelta64[m]"),
        "department_ko": "내과", "department_en": "Internal medicine", "noshow_risk": risk, "risk_band": band,
        "risk_reason_ko": "지난 예약 노쇼 이력", "risk_reason_en": "earlier no-shows",
        "reply": maybe(rng, np.array(["confirmed", "unconfirmed"])[rng.integers(0, 2, n_appt)], 0.6)})
    high = np.unique(appointments.loc[band == "high", "patient_id"])
    cards["high_noshow_risk"] = cards["patient_id"].isin(high).astype(int)

    n_msg = max(1, (3 * n) // 10)
    who = rng.integers(0, n, n_msg)
    lists = np.array(["재내원안내_2026-11", "생일축하_2026-11", "예방접종안내_2026-11", "VIP행사초대_2026-11"])
    messages = pd.DataFrame({
        "patient_id": ids.to_numpy()[who], "list_name": lists[rng.integers(0, len(lists), n_msg)], "kind": "recall",
        "planned_at": (np.datetime64("2026-11-01T10:00") + rng.integers(0, 30, n_msg).astype("timedelta64[D]")),
        "channel": np.array(["알림톡", "SMS", "LMS"])[rng.integers(0, 3, n_msg)],
        "text": "안녕하세요, OO의원입니다. 마지막 내원 후 시간이 지나 정기 검진을 안내드립니다. 예약: 02-123-4567"})
    children = pd.DataFrame({
        "guardian_id": ids.to_numpy()[parents], "patient_id": ids.to_numpy()[kids], "name": names.to_numpy()[kids],
        "birth_date": birth[kids], "due_from": days(rng, len(kids), "2026-11-01", "2026-12-31"),
        "due_to": days(rng, len(kids), "2027-01-01", "2027-03-31"), "vaccines_ko": "DTaP 5차, IPV 4차",
        "vaccines_en": "DTaP dose 5, IPV dose 4"})
    return {"cards": cards, "phones": phones, "appointments": appointments, "messages": messages,
            "children": children}


def spell(key: int, how: int) -> str:
    digits = f"0{key}"
    a, b, c = digits[:3], digits[3:7], digits[7:]
    return (f"{a}-{b}-{c}", f"{a}{b}{c}", f"+82 {a[1:]}-{b}-{c}")[how]


def command_line() -> list[str]:
    script = Path(sys.executable).with_name("crm-analysis")  # the installed command, as the desk runs it
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from crm_analysis.cli import console_main; console_main()"]


def clinic_tables(folder: Path) -> dict:
    """The card tables of a generated clinic, made by the real code (features, segments, VIPs, appointments;
    without the monthly models and plan, which take minutes at a million patients: see bench_million.py)."""
    import pandas as pd

    from crm_analysis import load_clinic
    from crm_analysis.monthly.month import Month
    from crm_analysis.profile.card_tables import card_tables

    t = time.perf_counter()
    clinic = load_clinic(folder)
    as_of = (clinic.tables["visits"]["visit_date"].max().to_period("M") - 1).end_time.normalize()
    t = step(f"load {folder.name} (validated cache)", t, f"as_of {as_of:%Y-%m-%d}")
    month = Month(clinic.snapshot(as_of), as_of)
    t = step("snapshot", t)
    tables = card_tables(month, [], models=False)
    tables.pop("notes")
    step("card_tables (features, segments, VIPs, appointments)", t)
    return tables


def write(index: Path, patients: int, seed: int, clinic: Path | None = None) -> None:
    """Generate the tables (or make them from `clinic`) and write the index (run as ``--write``, in a child)."""
    import numpy as np  # noqa: F401 - imported before the clock starts
    import pandas as pd  # noqa: F401

    from crm_analysis.profile.card_index import write_card_index

    t = time.perf_counter()
    tables = synthetic_tables(patients, seed) if clinic is None else clinic_tables(clinic)
    rows = ", ".join(f"{name} {len(df):,}" for name, df in tables.items())
    t = step("synthetic tables (numpy/pandas)" if clinic is None else "card tables, in all", t, rows)
    write_card_index(tables, index, {"as_of": AS_OF, "made_by": f"monthly {AS_OF[:7]}", "source": "synthetic",
                                     "patients": patients})
    step("write_card_index", t, f"{index.stat().st_size / 2**20:,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="write the index again even if it is cached")
    parser.add_argument("--clinic", type=Path, default=None,
                        help="make the cards from this validated clinic folder with the real code (e.g. "
                             "/tmp/crm_bench/clinic_1m.validated, made by bench_million.py) instead of synthetic tables")
    parser.add_argument("--write", default=None, help=argparse.SUPPRESS)  # the child that writes the index
    args = parser.parse_args()
    if args.write:
        return write(Path(args.write), args.patients, args.seed, args.clinic)
    print(f"python={sys.version.split()[0]} cores={os.cpu_count()} load={os.getloadavg()[0]:.2f} "
          f"patients={args.patients:,} lookups={args.lookups} seed={args.seed}")
    CACHE.mkdir(parents=True, exist_ok=True, mode=0o700)
    index = CACHE / (f"cards_{args.patients}_{args.seed}.sqlite" if args.clinic is None
                     else f"cards_{args.clinic.name}.sqlite")

    print("1. the index (a child process; its peak memory is its own)")
    if args.rebuild or not index.exists():
        started = time.perf_counter()
        argv = [sys.executable, __file__, "--write", str(index), "--patients", str(args.patients),
                "--seed", str(args.seed), *(["--clinic", str(args.clinic)] if args.clinic else [])]
        pid = os.posix_spawn(sys.executable, argv, os.environ)
        _, status, usage = os.wait4(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("writing the index failed")
        print(f"  {'generate + write, the whole child':<44} {time.perf_counter() - started:8.2f} s   "
              f"peak {usage.ru_maxrss / 1024:>6,.0f} MiB", flush=True)
    else:
        print(f"  reused {index} ({index.stat().st_size / 2**20:,.0f} MiB; --rebuild to time the write)")

    rng = random.Random(args.seed + 1)
    con = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    total = con.execute("SELECT max(rowid) FROM phones").fetchone()[0]
    keys = [con.execute("SELECT phone_key FROM phones WHERE rowid = ?", (rng.randint(1, total),)).fetchone()[0]
            for _ in range(args.lookups)]
    shared = sum(con.execute("SELECT count(*) FROM phones WHERE phone_key = ?", (k,)).fetchone()[0] > 1 for k in keys)
    con.close()
    phones = [spell(k, rng.randrange(3)) for k in keys]
    print(f"  {len(phones)} numbers drawn from the index, {shared} of them shared by a family")

    print(f"2. cold lookups: {command_line()[-1]} lookup --index … --phone …, a fresh process each")
    log = Path(tempfile.mkdtemp(prefix="bench_card_")) / "access.log"
    walls, peaks, found = [], [], 0
    out_file, err_file = log.with_name("stdout.txt"), log.with_name("stderr.txt")
    for phone in phones:
        argv = [*command_line(), "lookup", "--index", str(index), "--phone", phone, "--access-log", str(log)]
        # posix_spawn (vfork-like), not fork: a forked child's peak memory would count this big process's pages
        actions = [(os.POSIX_SPAWN_OPEN, 1, str(out_file), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                   (os.POSIX_SPAWN_OPEN, 2, str(err_file), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)]
        started = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)  # this child's own peak memory
        walls.append(time.perf_counter() - started)
        code = os.waitstatus_to_exitcode(status)
        peaks.append(usage.ru_maxrss / 1024)
        if code != 0:
            print(f"  exit {code}: {err_file.read_text(errors='replace').strip()}")
        found += code == 0
    walls.sort()
    p95 = walls[min(len(walls) - 1, int(round(0.95 * (len(walls) - 1))))]
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the writer too, if it ran
    print(f"  wall: median {statistics.median(walls) * 1000:,.0f} ms, p95 {p95 * 1000:,.0f} ms, "
          f"max {walls[-1] * 1000:,.0f} ms over {len(walls)} lookups ({found} found); "
          f"child peak RSS: median {statistics.median(peaks):,.1f} MiB, max {max(peaks):,.1f} MiB "
          f"(RUSAGE_CHILDREN: {child_peak:,.1f} MiB)")
    print(f"  access log: {len(log.read_text().splitlines())} line(s) in {log}")

    print("3. the same lookups in this process (open + find + render; no interpreter start)")
    from crm_analysis.profile.card_store import CardStore, card_text

    times = []
    for phone in phones:
        started = time.perf_counter()
        with CardStore.open(index) as store:
            card_text(store.find(phone=phone), store.meta, today=dt.date(2026, 12, 7))
        times.append(time.perf_counter() - started)
    times.sort()
    print(f"  median {statistics.median(times) * 1000:,.2f} ms, max {times[-1] * 1000:,.2f} ms")


if __name__ == "__main__":
    main()
