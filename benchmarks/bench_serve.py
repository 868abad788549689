"""Time the caller-ID page (``crm-analysis serve``) on the 20,000-patient demo's real card index.

1. **Index**: the monthly run's card index of the demo (``data/demo``, month 2026-10) is built with the real
   code (:func:`crm_analysis.monthly.cards.write_month_cards`: the month's models, staff lists and no-show
   scores) into a cache folder under /tmp, or read from ``--index PATH`` (e.g. ``outreach/2026-10/cards.sqlite``
   after ``crm-analysis run``).
2. **Served cards**: the server runs in this process (:class:`crm_analysis.profile.serve.CardServer`, the
   command's own server, its access log in a temporary folder); a client thread asks for ``--requests`` cards
   by phone (random numbers of the index, in random common spellings, with the token in a header, over one
   connection per request as phone software opens them) and the wall time of each answer is measured from
   the request to the last byte: median, p95, p99 and max. The target is p99 under 100 ms.

    nice -n 10 .venv/bin/python benchmarks/bench_serve.py                 # builds the demo's index first (~30 s)
    nice -n 10 .venv/bin/python benchmarks/bench_serve.py --index outreach/2026-10/cards.sqlite

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import http.client
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "crm_bench" / "serve"


def peak_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def demo_index(source: Path, rebuild: bool) -> Path:
    """The demo's monthly card index, built once with the monthly run's own code."""
    path = CACHE / "cards.sqlite"
    if path.exists() and not rebuild:
        return path
    from crm_analysis.monthly.cards import write_month_cards
    from crm_analysis.monthly.month import Month

    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    month = Month.open(source, "2026-10-31")
    written, notes = write_month_cards(month, CACHE, source=source)
    print(f"  index of {source} built in {time.perf_counter() - started:.1f} s (models fitted here){'; ' if notes else ''}"
          f"{'; '.join(f'{k}: {v}' for k, v in notes.items())}")
    return written


def spellings(key: int) -> list[str]:
    digits = f"0{key}"
    return [digits, f"{digits[:3]}-{digits[3:-4]}-{digits[-4:]}", f"+82 {digits[1:3]}-{digits[3:-4]}-{digits[-4:]}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="a cards.sqlite to serve (default: the demo's, built once)")
    parser.add_argument("--source", type=Path, default=PROJECT_ROOT / "data" / "demo")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rebuild", action="store_true", help="build the demo's index again")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(PROJECT_ROOT))
    from crm_analysis.profile.serve import CardServer

    index = args.index or demo_index(args.source.resolve(), args.rebuild)
    with sqlite3.connect(f"file:{index}?mode=ro", uri=True) as con:
        patients = con.execute("SELECT COUNT(*) FROM cards").fetchone()[0]
        keys = [k for (k,) in con.execute("SELECT DISTINCT phone_key FROM phones")]
    rng = random.Random(args.seed)
    asked = [rng.choice(spellings(rng.choice(keys))) for _ in range(args.requests)]

    log_dir = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    token = "bench-" + "x" * 40
    server = CardServer(index, token=token, port=0, access_log=log_dir / "access.log")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"serving {index} ({patients:,} patients, {len(keys):,} numbers) at {server.base_url}")

    def fetch(phone: str) -> tuple[float, int, int]:
        started = time.perf_counter()
        con = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        con.request("GET", "/card?phone=" + phone.replace("+", "%2B").replace(" ", "%20"),
                    headers={"X-CRM-Token": token})
        response = con.getresponse()
        body = response.read()
        con.close()
        return time.perf_counter() - started, response.status, len(body)

    for phone in asked[:20]:  # warm-up: the first connections and page-cache reads
        fetch(phone)
    times, statuses = [], {}
    started = time.perf_counter()
    for phone in asked:
        seconds, status, _ = fetch(phone)
        times.append(seconds * 1000)
        statuses[status] = statuses.get(status, 0) + 1
    wall = time.perf_counter() - started
    server.shutdown()
    times.sort()

    def pct(q: float) -> float:
        return times[min(len(times) - 1, int(q * len(times)))]

    print(f"  {len(times)} cards served in {wall:.2f} s; statuses {statuses}")
    print(f"  per card: median {statistics.median(times):.1f} ms, p95 {pct(0.95):.1f} ms, p99 {pct(0.99):.1f} ms, "
          f"max {times[-1]:.1f} ms   (target: p99 < 100 ms)")
    print(f"  peak memory of this process (server and client): {peak_mib():,} MiB")
    lines = sum(1 for _ in open(log_dir / "access.log", encoding="utf-8"))
    print(f"  access log: {lines} lines (one per request served, warm-up included)")
    return 0 if pct(0.99) < 100 and set(statuses) == {200} else 1


if __name__ == "__main__":
    sys.exit(main())
