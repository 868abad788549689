"""A network's month: every branch run (serially or on Dask), failures isolated, then the summary.

The behaviour tests use a tiny fixture notebook; the Dask test runs the real
notebooks, because what it checks is that a branch's files do not depend on
the executor that ran it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from crm_analysis import synth
from crm_analysis.cli import main
from crm_analysis.network import run_network

from ..conftest import DEMO_END

MONTH = "2026-10"
SCRIPT = Path(sys.executable).with_name("crm-analysis")


def _notebook_dir(root: Path) -> Path:
    folder = root / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('source = ""\nmapping = ""\nas_of = ""\nout_dir = ""\nlang = "ko"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print('month ends', as_of)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "00_first.ipynb")
    return folder


#: Patients of each branch in the Dask test (every branch runs every notebook, serially and on Dask).
BRANCH_PATIENTS = 400


def _broken_copy(demo_dir: Path, target: Path) -> Path:
    """The demo clinic with one impossible visit date: the contract refuses it."""
    shutil.copytree(demo_dir, target)
    visits = target / "visits.csv"
    lines = visits.read_text(encoding="utf-8-sig").splitlines()
    lines[1] = re.sub(r"\d{4}-\d{2}-\d{2}", "2026-13-45", lines[1], count=1)
    visits.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    return target


def _first_difference(serial: dict[str, bytes], dask: dict[str, bytes], names: list[str]) -> str:
    """The first lines that differ in the first differing notebook or JSON file (serial, then Dask), to show why."""
    for name in names:
        if name.endswith((".ipynb", ".json")):
            lines = zip(serial[name].decode("utf-8", "replace").splitlines(),
                        dask[name].decode("utf-8", "replace").splitlines())
            return "\n".join(f"{name}:{i}\n  serial: {a[:300]}\n  dask:   {b[:300]}"
                             for i, (a, b) in enumerate(lines, 1) if a != b)[:3000]
    return ""


def _config(path: Path, branches: dict[str, Path], lang: dict[str, str] | None = None) -> Path:
    lines = ["version: 1", "network: 시험 네트워크", "clinics:"]
    for cid, source in branches.items():
        extra = f", lang: {lang[cid]}" if lang and cid in lang else ""
        lines.append(f"  - {{id: {cid}, name: {cid.upper()}점, source: {source}{extra}}}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _files(root: Path, cid: str) -> dict[str, bytes]:
    """A branch's published files (reports and outreach), without the manifest's timings and how its steps
    shared the memory (a Dask worker fits the models in its own process, so its steps are others)."""
    out = {}
    for kind in ("r", "o"):
        folder = root / kind / cid / MONTH
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):  # the outreach folder has system/
            data = path.read_bytes()
            if path.name == "manifest.json":
                manifest = json.loads(data)
                manifest.pop("timings_seconds")
                manifest.pop("memory")
                data = json.dumps(manifest, sort_keys=True).encode()
            out[f"{kind}/{path.relative_to(folder).as_posix()}"] = data
    return out


def test_serial_network_runs_every_branch_and_reports_the_broken_one(tmp_path, demo_dir, capsys):
    notebooks = _notebook_dir(tmp_path)
    broken = _broken_copy(demo_dir, tmp_path / "broken_clinic")
    config = _config(tmp_path / "network.yaml", {"north": demo_dir, "south": demo_dir, "broken": broken},
                     lang={"south": "en"})
    earlier = tmp_path / "r" / "broken" / MONTH
    earlier.mkdir(parents=True)
    (earlier / "kpis.json").write_text('{"from": "an earlier run"}')
    code = main(["run", "--month", MONTH, "--clinics", str(config), "--out", str(tmp_path / "r"),
                 "--outreach-dir", str(tmp_path / "o"), "--notebook-dir", str(notebooks), "--no-pdf", "--no-hooks"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    reason = re.search(r"error: \[broken\] (.+)", err).group(1)
    print("broken branch:", reason)
    assert "does not meet the contract" in reason and "[visits.visit_date]" in reason
    assert "2026-13-45" not in reason  # the reason reaches the summary: no values from the data
    assert "[network] 2/3 done, 0 running, 1 failed, 0 waiting" in err
    assert (earlier / "kpis.json").read_text() == '{"from": "an earlier run"}'  # earlier output intact
    for cid in ("north", "south"):
        assert (tmp_path / "r" / cid / MONTH / "kpis.json").exists() and (tmp_path / "o" / cid / MONTH).is_dir()
    summary_dir = tmp_path / "r" / "network" / MONTH
    summary = json.loads((summary_dir / "network_kpis.json").read_text())
    north = json.loads((tmp_path / "r" / "north" / MONTH / "kpis.json").read_text())
    rows = {row["id"]: row for row in summary["clinics"]}
    assert set(rows) == {"north", "south"}
    assert rows["north"]["active_12m"] == north["sections"]["patients"]["active_12m"]
    assert "broken" in json.dumps(summary["missing"] if "missing" in summary else summary["failed"])
    manifest = json.loads((summary_dir / "manifest.json").read_text())
    assert manifest["executor"] == "local"
    by_id = {b["clinic_id"]: b for b in manifest["branches"]}
    assert by_id["north"]["ok"] and by_id["north"]["worker"] == "local" and by_id["north"]["seconds"] > 0
    assert not by_id["broken"]["ok"] and by_id["broken"]["reason"] == reason
    assert "NORTH점" in (summary_dir / "network.html").read_text(encoding="utf-8")


def test_network_config_errors_are_plain(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("clinics:\n  - {id: a, source: x}\n  - {id: a, source: y}\n")
    assert main(["run", "--month", MONTH, "--clinics", str(config), "--dry-run"]) == 2
    assert "appears twice" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--source", "x", "--executor", "dask"], "use them with --clinics"),
    (["--clinics", "n.yaml", "--scheduler", "tcp://127.0.0.1:8786"], "--scheduler needs --executor dask"),
    (["--clinics", "n.yaml", "--source", "x"], "not both"),
    ([], "give --source"),
])
def test_executor_options_are_checked(tmp_path, capsys, argv, message):
    assert main(["run", "--month", MONTH, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_dry_run_says_where_the_branches_run(tmp_path, demo_dir, capsys):
    config = _config(tmp_path / "network.yaml", {"a": demo_dir, "b": demo_dir})
    assert main(["run", "--month", MONTH, "--clinics", str(config), "--executor", "dask", "--workers", "3",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "[a] A점" in out and "2 branch(es) on a local Dask cluster of 3 worker process(es)" in out


@pytest.mark.notebook
def test_dask_cluster_of_two_workers_matches_a_serial_run(tmp_path, capsys):
    """Done when (#9): 4 branches, one broken, on 2 Dask worker processes: the 3 good ones are byte-identical
    to a serial run, the broken one is reported, and the exit status is not 0."""
    branches = {}
    for cid, seed in (("gangnam", 7), ("mapo", 8), ("songpa", 9)):  # small branches: seven whole monthly runs
        branches[cid] = tmp_path / f"{cid}_clinic"
        synth.generate_clinic(n_patients=BRANCH_PATIENTS, seed=seed, end=DEMO_END).write(branches[cid], format="csv")
    branches["broken"] = _broken_copy(branches["gangnam"], tmp_path / "broken_clinic")
    config = _config(tmp_path / "network.yaml", branches, lang={"songpa": "en"})
    common = ["run", "--month", MONTH, "--clinics", str(config), "--out", str(tmp_path / "r"),
              "--outreach-dir", str(tmp_path / "o")]

    assert main(common) == 1  # serial (the default executor)
    capsys.readouterr()
    serial = {cid: _files(tmp_path, cid) for cid in ("gangnam", "mapo", "songpa")}
    serial_summary = (tmp_path / "r" / "network" / MONTH / "network_kpis.json").read_bytes()
    assert serial["gangnam"]["r/kpis.json"] != serial["mapo"]["r/kpis.json"]  # three different clinics

    for cid in serial:  # the Dask run must produce these itself
        shutil.rmtree(tmp_path / "r" / cid)
        shutil.rmtree(tmp_path / "o" / cid)
    # As a scheduler runs it: the installed command in its own process (which also keeps the Dask cluster's
    # threads and child processes out of the test process).
    done = subprocess.run([str(SCRIPT), *common, "--executor", "dask", "--workers", "2"], capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)
    code, err = done.returncode, done.stderr
    print(err)
    assert code == 1 and "Traceback" not in err
    assert re.search(r"error: \[broken\] the data does not meet the contract .*\[visits\.visit_date\]", err)
    for cid, files in serial.items():
        dask_files = _files(tmp_path, cid)
        assert sorted(dask_files) == sorted(files)
        differ = [name for name in files if dask_files[name] != files[name]]
        assert differ == [], f"{cid}: {differ}\n{_first_difference(files, dask_files, differ)}"
    assert (tmp_path / "r" / "network" / MONTH / "network_kpis.json").read_bytes() == serial_summary
    manifest = json.loads((tmp_path / "r" / "network" / MONTH / "manifest.json").read_text())
    workers = {b["clinic_id"]: b["worker"] for b in manifest["branches"]}
    print("branch -> worker:", workers)
    assert manifest["executor"] == "dask" and manifest["workers"] == 2 and manifest["retries"] == 2
    assert {b["clinic_id"] for b in manifest["branches"] if b["ok"]} == set(serial)
    assert all(w.startswith("tcp://") for w in workers.values()) and len(set(workers.values())) == 2
    assert all(b["seconds"] > 0 for b in manifest["branches"] if b["ok"])
    assert (tmp_path / "r" / "network" / MONTH / "network.pdf").stat().st_size > 0


def test_a_branch_whose_outputs_this_machine_cannot_read_counts_as_failed(tmp_path):
    from crm_analysis.network.executors import BranchOutcome
    from crm_analysis.network.run import _read_branch_kpis

    done = BranchOutcome("far", True, None, 12.0, "tcp://10.0.0.7:40000")
    checked, _ = _read_branch_kpis(done, tmp_path, MONTH)  # the worker wrote to a folder not shared with us
    assert not checked.ok and "cannot be read here" in checked.reason and "tcp://10.0.0.7:40000" in checked.reason
    (tmp_path / "far" / MONTH).mkdir(parents=True)
    (tmp_path / "far" / MONTH / "kpis.json").write_text("{}")
    assert _read_branch_kpis(done, tmp_path, MONTH) == (done, {})
