"""A clinic loaded by a forked child: the same snapshot as loading it here, its errors raised here, and no
fork where it is not safe. The fork runs in a fresh interpreter (a test process has threads)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pandas as pd

from crm_analysis.io.forked_load import ForkedLoad
from tests.conftest import DEMO_END

SCRIPT = r"""
import json, sys, tempfile
from pathlib import Path
import pandas as pd
from crm_analysis.io import load_clinic
from crm_analysis.io.forked_load import ForkedLoad

source, month, mode = sys.argv[1:4]
as_of = pd.Period(month, "M").end_time.normalize()
folder = Path(tempfile.mkdtemp())
early = ForkedLoad.start(source, mapping=None, month=month, as_of=as_of, folder=folder)
assert early is not None, "one thread: the child is forked"
if mode == "cancel":
    early.cancel()
    print(json.dumps({"cancelled": True}))
    sys.exit(0)
try:
    snapshot, warnings = early.result()
except Exception as err:
    print(json.dumps({"error": type(err).__name__, "message": str(err)}))
    sys.exit(0)
direct = load_clinic(source).snapshot(as_of)
same = {}
for name, table in direct.tables.items():
    try:
        pd.testing.assert_frame_equal(snapshot.tables[name], table)
        same[name] = True
    except AssertionError as err:
        same[name] = str(err)[:300]
print(json.dumps({"same": same, "source": snapshot.source == direct.source, "warnings": warnings,
                  "as_of": str(snapshot.as_of), "cache": (folder / "clinic.cache").is_dir()}))
"""


def _run(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_child_gives_the_snapshot_loading_here_gives(demo_dir):
    got = _run(str(demo_dir), DEMO_END[:7], "load")
    print(got)
    assert got["same"] and all(v is True for v in got["same"].values()), got["same"]
    assert got["source"] and got["cache"] and got["as_of"].startswith(DEMO_END)


def test_an_error_in_the_child_is_raised_here_as_loading_raises_it(tmp_path):
    missing = tmp_path / "no-such-folder"
    got = _run(str(missing), "2026-10", "load")
    print(got)
    try:
        from crm_analysis.io import load_clinic

        load_clinic(missing)
    except Exception as err:  # noqa: BLE001 - the error loading here raises
        expected = err
    assert got["error"] == type(expected).__name__ and got["message"] == str(expected)


def test_a_cancelled_child_is_gone(demo_dir):
    assert _run(str(demo_dir), DEMO_END[:7], "cancel") == {"cancelled": True}


def test_no_fork_in_a_process_with_threads(tmp_path):
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert ForkedLoad.start("x", mapping=None, month="2026-10", as_of=pd.Timestamp("2026-10-31"),
                                folder=tmp_path) is None
    finally:
        stop.set()
        thread.join()
