"""The installed ``crm-analysis`` command, run as a user runs it: a real process.

The script is the one installed beside the interpreter running the tests (the
virtual environment's ``bin/``), so these tests also check the entry point.
"""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("crm-analysis")
SEED, PATIENTS = 3, 300


def crm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert SCRIPT.exists(), f"no crm-analysis script beside {sys.executable}: is the package installed (pip install -e .)?"
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL,
                          timeout=600)


@pytest.fixture(scope="module")
def demo_twice(tmp_path_factory) -> tuple[Path, Path]:
    """The same small demo clinic generated twice, into two folders."""
    print(f"\n[cli demo clinic] seed={SEED} patients={PATIENTS}")
    root = tmp_path_factory.mktemp("cli_demo")
    folders = root / "first", root / "second"
    for folder in folders:
        result = crm("demo-data", "--out", str(folder), "--patients", str(PATIENTS), "--seed", str(SEED), cwd=root)
        assert result.returncode == 0, result.stderr
    return folders


def test_help_lists_the_commands(tmp_path):
    result = crm("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("demo-data", "validate", "run", "data-dictionary"):
        assert command in result.stdout


def test_demo_data_writes_a_folder_that_validates(demo_twice, tmp_path):
    folder = demo_twice[0]
    assert (folder / "patients.csv").exists() and (folder / "visits.csv").exists()
    assert (folder / "truth.json").exists()
    result = crm("validate", "--source", str(folder), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK:"), result.stdout


def test_same_seed_gives_byte_identical_files(demo_twice):
    first, second = demo_twice
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(first, second, names, shallow=False)
    assert mismatch == [] and errors == [], f"files differ between two runs with seed {SEED}: {mismatch + errors}"


@pytest.mark.parametrize("args, says", [
    (("validate", "--source", "no/such/folder"), "no/such/folder"),
    (("run", "--month", "2026-13", "--source", "no/such/folder", "--dry-run"), "2026-13"),
], ids=["missing-folder", "bad-month"])
def test_bad_input_exits_2_with_a_message_and_no_traceback(args, says, tmp_path):
    result = crm(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error:") and says in result.stderr, result.stderr


def test_run_help_lists_the_monthly_run_options(tmp_path):
    result = crm("run", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for option in ("--month", "--source", "--mapping", "--lang", "--out", "--outreach-dir", "--min-count",
                   "--no-pdf", "--dry-run"):
        assert option in result.stdout


def test_run_dry_run_of_a_network_config_lists_each_clinic(demo_twice, tmp_path):
    config = tmp_path / "network.yaml"
    config.write_text("clinics:\n"
                      f"  - {{id: first, name: 첫째, source: {demo_twice[0]}}}\n"
                      f"  - {{id: second, name: 둘째, source: {demo_twice[1]}}}\n", encoding="utf-8")
    result = crm("run", "--month", "2026-10", "--source", str(config), "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[first] 첫째" in result.stdout and "[second] 둘째" in result.stdout
    assert str(Path("reports") / "first" / "2026-10") in result.stdout and "network" in result.stdout
    assert not (tmp_path / "reports").exists(), "a dry run writes nothing"


def test_the_command_ends_at_once_with_its_status_and_runs_the_exit_handlers(tmp_path):
    """console_main skips the interpreter's teardown (os._exit) but not its exit handlers or buffered output."""
    marker = tmp_path / "handler-ran"
    code = ("import atexit, sys; from pathlib import Path\n"
            f"atexit.register(lambda: Path({str(marker)!r}).write_text('ran'))\n"
            "sys.argv = ['crm-analysis', 'validate', '--source', 'no/such/folder']\n"
            "print('buffered line', end='')\n"
            "from crm_analysis.cli import console_main\nconsole_main()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stdout == "buffered line" and "no/such/folder" in result.stderr
    assert marker.read_text() == "ran"


def test_a_run_stopped_by_a_bad_option_leaves_no_copy_of_the_data(demo_twice, tmp_path):
    """The command starts loading the clinic in a child before it checks every option; a bad one (the
    outreach folder is the reports folder) exits 2, and neither the child nor its private copy is left."""
    import os

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    result = subprocess.run([str(SCRIPT), "run", "--month", "2026-10", "--source", str(demo_twice[0]),
                             "--out", "same", "--outreach-dir", "same"], capture_output=True, text=True,
                            cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=600, env={**os.environ, "TMPDIR": str(tmp)})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    private = tmp / f"crm-analysis-{os.getuid()}"
    print(result.stderr, sorted(p.name for p in private.iterdir()) if private.exists() else "no private root")
    assert not private.exists() or list(private.glob("run-*")) == []
