"""Time the monthly run end to end, as README command 1 runs it, with per-step timings.

    .venv/bin/python benchmarks/bench_monthly_run.py                  # 20,000 patients, the notebooks present now
    .venv/bin/python benchmarks/bench_monthly_run.py --patients 1500 --repeat 2
    # a clinic already on disk, e.g. bench_million.py's million patients, without the PDF
    flock /tmp/crm_bench.lock .venv/bin/python benchmarks/bench_monthly_run.py \
        --source /tmp/crm_bench/clinic_1m --month 2026-11 --no-pdf
    # ...on a machine of 6 GB: the run in a memory control group limited to 6 GB (Linux, as root)
    flock /tmp/crm_bench.lock .venv/bin/python benchmarks/bench_monthly_run.py \
        --source /tmp/crm_bench/clinic_1m --month 2026-11 --no-pdf --memory-limit 6GB

The demo clinic is generated into a temporary folder first (not timed). Then
``crm-analysis run --month 2026-10 --source <folder>`` runs as a user runs it,
in a fresh process: the wall time includes interpreter start-up and imports.
CPU is the run's own, its model workers' and its notebook kernels' user and
system time together (RUSAGE_CHILDREN covers every finished child). Memory is
reported twice: the largest resident set of any one process, and the peak of
the whole process tree's proportional set size (PSS, sampled every 0.2 s from
``/proc/PID/smaps_rollup``): pages that several processes share, such as the
memory-mapped run copy of the clinic, count once in all, so that sum is the
physical memory the run needs. With ``--memory-limit`` the run is started in a
memory control group of that size (cgroup v1 or v2, as a container or systemd's
``MemoryMax`` would limit it): the run sees the limit and keeps its processes
within it, and the group reports its peak, the anonymous part of it (the
processes' own memory; the rest is page cache the kernel reclaims under the
limit), and whether the kernel had to kill a process. The per-step timings come from
the run's own ``manifest.json``; steps overlap (the models are fitted while the
kernels start, the notebooks run while the lists are written), so they add up
to more than the wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from crm_analysis.memory import parse_size

SCRIPT = Path(sys.executable).with_name("crm-analysis")


#: Additions in :func:`reference_loop`.
REFERENCE_LOOP = 20_000_000


def reference_loop() -> float:
    """Seconds a fixed pure-Python loop takes here now: how fast this (shared, virtual) machine is running."""
    started, total = time.perf_counter(), 0
    for i in range(REFERENCE_LOOP):
        total += i
    return time.perf_counter() - started


def _children(pid: int) -> list[int]:
    """`pid` and every process below it, now."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        # the command name is in parentheses and may hold spaces: the parent pid is the 2nd field after it
        parents.setdefault(int(text[text.rindex(")") + 2:].split()[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += parents.get(tree[-1], [])
    return tree


def _pss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


class TreeMemory:
    """Samples the summed PSS of a process and all its descendants until stopped; `peak_mib` is the largest sum."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid, self.every, self.peak_mib = pid, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.peak_mib = max(self.peak_mib, sum(_pss_mib(p) for p in _children(self.pid)))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mib


class MemoryGroup:
    """A memory control group limited to `limit` bytes, for the run and its children (cgroup v1 or v2; needs
    the right to create one, e.g. root). :meth:`enter` is called in the child before it executes the run."""

    def __init__(self, limit: int) -> None:
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        self.v1 = not v2.exists()
        root = Path("/sys/fs/cgroup/memory") if self.v1 else Path("/sys/fs/cgroup")
        self.path = root / f"crm_bench_{os.getpid()}"
        self.path.mkdir()
        (self.path / ("memory.limit_in_bytes" if self.v1 else "memory.max")).write_text(str(limit))
        if not self.v1:
            (self.path / "memory.swap.max").write_text("0")
        self.limit, self.peak_anon = limit, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def enter(self) -> None:
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def _stat(self) -> dict[str, int]:
        lines = (self.path / "memory.stat").read_text().splitlines()
        return {k: int(v) for k, v in (line.split() for line in lines)}

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            stat = self._stat()
            self.peak_anon = max(self.peak_anon, stat.get("total_rss", stat.get("anon", 0)))

    def start(self) -> None:
        self._thread.start()

    def report(self) -> str:
        self._stop.set()
        self._thread.join()
        if self.v1:
            peak = int((self.path / "memory.max_usage_in_bytes").read_text())
            kills = dict(line.split() for line in (self.path / "memory.oom_control").read_text().splitlines())
            killed = int(kills.get("oom_kill", 0))
        else:
            peak_file = self.path / "memory.peak"
            peak = int(peak_file.read_text()) if peak_file.exists() else 0
            events = dict(line.split() for line in (self.path / "memory.events").read_text().splitlines())
            killed = int(events.get("oom_kill", 0))
        mib = 2 ** 20
        return (f"  memory control group limited to {self.limit / mib:,.0f} MiB: peak {peak / mib:,.0f} MiB (page "
                f"cache included), of it the processes' own memory at most {self.peak_anon / mib:,.0f} MiB (sampled);"
                f" processes killed for memory: {killed}")

    def remove(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.path.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--month", default="2026-10")
    parser.add_argument("--repeat", type=int, default=1, help="run the month this many times (the last is reported)")
    parser.add_argument("--no-pdf", action="store_true")
    parser.add_argument("--source", help="run on this clinic instead of a generated demo (a folder of CSV or "
                                         "Parquet files; --patients and --seed are then ignored)")
    parser.add_argument("--memory-limit", type=parse_size, help="run in a memory control group of this size, "
                                                                  "e.g. 6GB (Linux; needs the right to create one)")
    args = parser.parse_args()
    group = MemoryGroup(args.memory_limit) if args.memory_limit else None
    notebooks = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    clinic = f"source={args.source}" if args.source else f"patients={args.patients:,} seed={args.seed}"
    print(f"{clinic} month={args.month} python={sys.version.split()[0]} "
          f"cores={os.cpu_count()} load={os.getloadavg()[0]:.1f}\nnotebooks: {', '.join(notebooks)}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = Path(args.source).resolve() if args.source else tmp / "demo"
        if not args.source:
            subprocess.run([str(SCRIPT), "demo-data", "--out", str(source), "--patients", str(args.patients),
                            "--seed", str(args.seed)], check=True, capture_output=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_before = before.ru_utime + before.ru_stime  # the demo generation above is not timed
        walls, speeds, tree_peaks = [], [], []
        for i in range(args.repeat):
            speeds.append(reference_loop())
            started = time.perf_counter()
            run = subprocess.Popen([str(SCRIPT), "run", "--month", args.month, "--source", str(source),
                                    *(["--no-pdf"] if args.no_pdf else [])],
                                   cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=None if group is None else group.enter)
            memory = TreeMemory(run.pid)
            if group is not None and i == 0:
                group.start()
            stdout, stderr = run.communicate()
            done = subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr)
            wall = time.perf_counter() - started
            tree_peaks.append(memory.stop())
            walls.append(wall)
            if done.returncode != 0:
                if group is not None:
                    print(group.report())
                    group.remove()
                lines = done.stderr.strip().splitlines() or [f"ended by signal {-done.returncode}"]
                sys.exit(f"run failed (exit {done.returncode}): {lines[-1]}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak = usage.ru_maxrss / 1024
        cpu = (usage.ru_utime + usage.ru_stime - cpu_before) / args.repeat
        manifest = json.loads((tmp / "reports" / args.month / "manifest.json").read_text())
        print(f"end to end   wall {wall:7.1f} s (last run)   CPU {cpu:6.1f} s (run, workers and kernels; mean of "
              f"runs)   peak RSS (largest process) {peak:,.0f} MiB   load after {os.getloadavg()[0]:.1f}")
        print(f"  peak memory of the whole run (its processes' summed PSS, sampled): {tree_peaks[-1]:,.0f} MiB"
              + (f" (runs: {', '.join(f'{m:,.0f}' for m in tree_peaks)})" if len(tree_peaks) > 1 else ""))
        if group is not None:
            print(group.report())
            group.remove()
        if len(walls) > 1:
            print(f"  {len(walls)} runs: wall min {min(walls):.1f} s, median {statistics.median(walls):.1f} s, "
                  f"max {max(walls):.1f} s: " + ", ".join(f"{w:.1f}" for w in walls))
        print(f"  machine speed before each run (a fixed pure-Python loop, {REFERENCE_LOOP:,} additions): "
              + ", ".join(f"{s:.2f} s" for s in speeds) + " (the same machine varies: compare runs by it)")
        for step, seconds in manifest["timings_seconds"].items():
            print(f"  {step:<22} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
