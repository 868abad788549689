"""The monthly run: publishes a month only when everything succeeded, atomically and deterministically.

Behaviour tests use tiny fixture notebooks (``notebook_dir=``) on the small
demo clinic, so they do not depend on which analysis notebooks exist; the
end-to-end run with the real notebooks is in ``tests/report/test_report.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from crm_analysis import load_clinic
from crm_analysis.cli import main
from crm_analysis.exceptions import NotebookFailed, PrivacyLeak
from crm_analysis.monthly.notebooks import report_order
from crm_analysis.monthly.publish import LOCK_FILE
from crm_analysis.monthly.run import (month_end, plan_month,
                                      run_month)

SCRIPT = Path(sys.executable).with_name("crm-analysis")


def _notebook(path: Path, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('source = ""\nmapping = ""\nas_of = ""\nout_dir = ""\nlang = "ko"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _slow_notebook(notebooks: Path) -> Path:
    """A notebook that, with CRM_TEST_SLOW set, marks that it started and then sleeps (to be killed)."""
    return _notebook(notebooks / "20_slow.ipynb",
                     "import os, pathlib, time\n"
                     "if os.environ.get('CRM_TEST_SLOW'):\n"
                     "    pathlib.Path(out_dir, 'started').touch()\n"
                     "    time.sleep(120)")


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_first.ipynb", "print('month ends', as_of)")
    _notebook(folder / "10_second.ipynb", "assert lang in ('ko', 'en')\nprint(len(source) > 0)")
    return folder


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _leftovers(folder: Path) -> list[Path]:
    """Hidden entries a run left behind, apart from its (empty, permanent) lock file."""
    return [p for p in folder.glob(".*") if p.name != LOCK_FILE]


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_month_end():
    assert month_end("2026-02") == month_end("2026-02").normalize()
    assert f"{month_end('2024-02'):%Y-%m-%d}" == "2024-02-29"
    for bad in ("2026-13", "202610", "October"):
        with pytest.raises(ValueError, match="must look like 2026-10"):
            month_end(bad)


def test_report_order_puts_the_kpi_page_first():
    paths = [Path(n) for n in ("00_data_quality.ipynb", "10_segmentation.ipynb", "90_monthly_report.ipynb")]
    assert [p.stem for p in report_order(paths)] == ["90_monthly_report", "00_data_quality", "10_segmentation"]


def test_run_publishes_month_report_kpis_and_manifest(tmp_path, notebooks, demo_dir):
    out = tmp_path / "reports"
    result = run_month("2026-10", demo_dir, out=out, outreach_dir=tmp_path / "outreach", notebook_dir=notebooks,
                       progress=False, pdf=False, analysis_hooks=False)
    month = out / "2026-10"
    assert result.out_dir == month
    assert _visible(month) == ["00_first.ipynb", "10_second.ipynb", "kpis.json", "manifest.json", "report.html"]
    manifest = json.loads((month / "manifest.json").read_text())
    assert manifest["parameters"]["as_of"] == "2026-10-31"
    assert manifest["inputs"]["files"]["patients.csv"] and len(manifest["inputs"]["files"]["patients.csv"]) == 64
    assert manifest["packages"]["pandas"] == pd.__version__
    assert set(manifest["timings_seconds"]) >= {"load", "kpis", "00_first", "10_second", "report_html", "privacy_scan"}
    assert manifest["privacy_scan"]["files_scanned"] >= 4
    executed = nbformat.read(month / "00_first.ipynb", as_version=4)
    assert "month ends 2026-10-31" in executed.cells[-1].outputs[0]["text"]
    kpis = json.loads((month / "kpis.json").read_text())
    assert kpis["month"] == "2026-10" and kpis["sections"]["patients"]["active_12m"] > 0
    assert "timings" not in json.dumps(kpis)
    assert not _leftovers(out)  # no temporary folders left behind
    assert oct((tmp_path / "outreach" / "2026-10").stat().st_mode & 0o777) == "0o700"


def test_notebooks_get_the_month_folder_being_built_as_out_dir(tmp_path, demo_dir):
    folder = tmp_path / "nb"
    folder.mkdir()
    # the front matter (90 and up: the KPI page) reads the run's kpis.json, so it runs only after that is complete
    _notebook(folder / "90_writes.ipynb",
              "import json, os, pathlib\npathlib.Path(out_dir, 'extra.txt').write_text('written by the notebook')\n"
              "print(sorted(p.name for p in pathlib.Path(out_dir).iterdir()))\n"
              "print('min_count', json.loads(pathlib.Path(out_dir, 'kpis.json').read_text())['min_count'])\n"
              "print('cwd', os.getcwd())")
    _notebook(folder / "00_other.ipynb", "print(as_of)")
    cwd = os.getcwd()
    run_month("2026-10", demo_dir, out=tmp_path / "r", outreach_dir=tmp_path / "o", notebook_dir=folder,
              progress=False, pdf=False, analysis_hooks=False, min_count=7)
    assert os.getcwd() == cwd, "running notebooks side by side must not change this process's directory"
    assert (tmp_path / "r" / "2026-10" / "extra.txt").read_text() == "written by the notebook"
    executed = nbformat.read(tmp_path / "r" / "2026-10" / "90_writes.ipynb", as_version=4)
    shown = executed.cells[-1].outputs[0]["text"]
    assert "kpis.json" in shown and "min_count 7" in shown  # the run's own kpis.json, complete
    assert f"cwd {folder}" in shown  # kernels start in the notebooks' folder


def test_failed_run_leaves_previous_month_intact(tmp_path, notebooks, demo_dir, capsys):
    out = tmp_path / "reports"
    run_month("2026-10", demo_dir, out=out, outreach_dir=tmp_path / "o", notebook_dir=notebooks, progress=False,
              pdf=False, analysis_hooks=False)
    before = _tree(out / "2026-10")
    _notebook(notebooks / "20_broken.ipynb", "raise RuntimeError('deliberate failure')")
    with pytest.raises(NotebookFailed, match="20_broken.ipynb failed .*RuntimeError: deliberate failure"):
        run_month("2026-10", demo_dir, out=out, outreach_dir=tmp_path / "o", notebook_dir=notebooks, progress=False,
                  pdf=False, analysis_hooks=False)
    assert _tree(out / "2026-10") == before
    failed = out / "2026-10.failed"
    text = (failed / "20_broken.ipynb").read_text()
    assert "An Exception was encountered at" in text and "deliberate failure" in text  # papermill's error banner
    assert not _leftovers(out)
    # the command line: exit status 1 and one line
    code = main(["run", "--month", "2026-10", "--source", str(demo_dir), "--out", str(out), "--outreach-dir",
                 str(tmp_path / "o"), "--notebook-dir", str(notebooks), "--no-pdf", "--no-hooks"])
    err = capsys.readouterr().err
    last = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(last) == 1 and "20_broken.ipynb failed" in last[0] and "Traceback" not in err


def test_a_notebook_showing_personal_data_is_not_published(tmp_path, demo_dir, demo_clinic):
    name = demo_clinic.patients["name"].dropna().iloc[0]
    folder = tmp_path / "nb"
    folder.mkdir()
    _notebook(folder / "00_leaky.ipynb", f"print('call', {name!r})")
    with pytest.raises(PrivacyLeak, match="00_leaky.ipynb, report.html show\\(s\\) personal data .*not published"):
        run_month("2026-10", demo_dir, out=tmp_path / "r", outreach_dir=tmp_path / "o", notebook_dir=folder,
                  progress=False, pdf=False, analysis_hooks=False)
    assert _visible(tmp_path / "r") == ["2026-10.failed"]
    assert not (tmp_path / "o" / "2026-10").exists()


def _recall(clinic, as_of):
    """A tiny outreach producer for the tests: patients whose last visit is 6-12 months old."""
    last = clinic.visits.groupby("patient_id", observed=True)["visit_date"].max()
    due = last[(last <= as_of - pd.Timedelta(days=182)) & (last > as_of - pd.Timedelta(days=365))]
    patients = clinic.patients.set_index("patient_id").loc[due.index.astype(str), ["name", "phone"]]
    return patients.assign(last_visit=due.dt.strftime("%Y-%m-%d").to_numpy()).reset_index().sort_values("patient_id")


def test_same_month_twice_gives_identical_files(tmp_path, notebooks, demo_dir):
    # A styled table and a figure: pandas gives each Styler a random id, and reprs carry memory addresses.
    _notebook(notebooks / "20_styled.ipynb", "import pandas as pd, matplotlib.pyplot as plt\n"
              "styled = pd.DataFrame({'a': [1, 2]}).style.format('{:,}')\ndisplay(styled)\nstyled.data\n"
              "plt.plot([1, 2], [3, 1]); plt.show()\nstyled")
    out, outreach = tmp_path / "reports", tmp_path / "outreach"
    kwargs = dict(out=out, outreach_dir=outreach, notebook_dir=notebooks, progress=False, pdf=True, analysis_hooks=False,
                  producers={"recall": _recall})
    first = run_month("2026-10", demo_dir, **kwargs)
    kpis, lists = (out / "2026-10" / "kpis.json").read_bytes(), _tree(outreach / "2026-10")
    manifest = json.loads((out / "2026-10" / "manifest.json").read_text())
    assert sorted(lists) == ["recall.csv", "recall.xlsx", "안내.txt"] and len(first.outreach_files) == 3
    assert "■ recall.xlsx" in lists["안내.txt"].decode("utf-8-sig")  # the folder explains itself
    assert lists["recall.csv"].startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM for Korean Excel
    expected = _recall(load_clinic(demo_dir).snapshot("2026-10-31"), month_end("2026-10"))
    assert len(pd.read_excel(outreach / "2026-10" / "recall.xlsx")) == len(expected) > 0
    for path in (outreach / "2026-10").iterdir():
        assert oct(path.stat().st_mode & 0o777) == "0o600", path.name
    published = {name: data for name, data in _tree(out / "2026-10").items() if name != "manifest.json"}
    assert {"report.html", "report.pdf", "kpis.json", "20_styled.ipynb"} <= set(published)
    styled = published["20_styled.ipynb"].decode()
    assert "T_n03s0001" in styled and "Styler>" in styled and " at 0x" not in styled and '"start_time"' not in styled
    time.sleep(1.1)  # a later wall-clock second: timestamps must not leak into the files
    run_month("2026-10", demo_dir, **kwargs)
    assert (out / "2026-10" / "kpis.json").read_bytes() == kpis
    assert _tree(outreach / "2026-10") == lists
    again = {name: data for name, data in _tree(out / "2026-10").items() if name != "manifest.json"}
    assert [name for name in published if again[name] != published[name]] == []  # notebooks, report.html/.pdf too
    assert "timings_seconds" in manifest  # timings live in the manifest only


def test_threshold_is_configurable(tmp_path, notebooks, demo_dir):
    run_month("2024-01", demo_dir, out=tmp_path / "r", outreach_dir=tmp_path / "o", notebook_dir=notebooks,
              progress=False, pdf=False, analysis_hooks=False, min_count=100)
    kpis = json.loads((tmp_path / "r" / "2024-01" / "kpis.json").read_text())
    assert kpis["min_count"] == 100
    counts = [row["visits"] for row in kpis["sections"]["revenue_by_department"]["rows"]]
    print("2024-01 department visits with min_count=100:", counts)
    assert all(c is None or c >= 100 for c in counts) and counts.count(None) != 1


def test_sigkill_partway_leaves_previous_month_and_a_rerun_succeeds(tmp_path, notebooks, demo_dir):
    assert SCRIPT.exists(), f"no crm-analysis script beside {sys.executable}"
    out, outreach = tmp_path / "reports", tmp_path / "outreach"
    _slow_notebook(notebooks)
    args = [str(SCRIPT), "run", "--month", "2026-10", "--source", str(demo_dir), "--out", str(out),
            "--outreach-dir", str(outreach), "--notebook-dir", str(notebooks), "--no-pdf", "--no-hooks"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    before, before_outreach = _tree(out / "2026-10"), _tree(outreach / "2026-10")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            env={**os.environ, "CRM_TEST_SLOW": "1"}, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".2026-10.partial-*/started")):
            assert proc.poll() is None, "the run ended before reaching the slow notebook"
            assert time.monotonic() < deadline, "the slow notebook never started"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the kernel it started, if still there
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL
    assert _tree(out / "2026-10") == before and _tree(outreach / "2026-10") == before_outreach
    assert _visible(out) == ["2026-10"], "a partial month folder is visible"
    assert list(out.glob(".2026-10.partial-*")), "expected the killed run's hidden work folder"
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert not _leftovers(out), "the re-run should clean what the killed run left"
    assert _visible(out / "2026-10") == sorted(before)


def test_a_run_killed_between_the_two_renames_of_publish_loses_nothing(tmp_path):
    from crm_analysis.monthly.publish import clean_partials

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a process id that has ended
    (tmp_path / f".2026-10.old-{dead}").mkdir()  # the previous month, moved aside; the new one never arrived
    (tmp_path / f".2026-10.old-{dead}" / "kpis.json").write_text("previous")
    (tmp_path / "2026-09").mkdir()
    (tmp_path / f".2026-09.old-{dead}").mkdir()  # a swap that completed: the old copy is only rubbish
    clean_partials(tmp_path)
    assert _visible(tmp_path) == ["2026-09", "2026-10"] and not list(tmp_path.glob(".*"))
    assert (tmp_path / "2026-10" / "kpis.json").read_text() == "previous"


def test_dry_run_lists_notebooks_and_steps(capsys, tmp_path):
    assert main(["run", "--month", "2026-10", "--source", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    for step in ("as_of 2026-10-31", "00_data_quality.ipynb", "kpis.json", "report.pdf", "privacy_scan", "outreach"):
        assert step in out
    lines = plan_month("2026-10", "postgresql+psycopg://me:secret@db/clinic")
    assert not any("secret" in line for line in lines)


def test_bad_month_exits_2(capsys, tmp_path):
    assert main(["run", "--month", "2026/10", "--source", str(tmp_path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_memory_a_run_may_use_is_a_size_or_a_clear_error(capsys, tmp_path, monkeypatch, demo_dir):
    assert main(["run", "--month", "2026-10", "--source", str(demo_dir), "--memory", "six", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "not a size: 'six'" in err and "Traceback" not in err
    monkeypatch.setenv("CRM_ANALYSIS_MEMORY", "")  # restored after the test: the option sets it for the run
    assert main(["run", "--month", "2026-10", "--source", str(demo_dir), "--memory", "6GB", "--dry-run"]) == 0
    assert os.environ["CRM_ANALYSIS_MEMORY"] == "6GB"


def test_a_run_fails_fast_on_an_outreach_folder_another_run_is_writing(tmp_path, notebooks, demo_dir):
    """Two runs with different --out and the same --outreach-dir: the second stops before it does anything."""
    from crm_analysis.exceptions import RunFailed
    from crm_analysis.monthly.publish import folder_lock

    outreach = tmp_path / "outreach"
    outreach.mkdir(mode=0o700)
    second_out = tmp_path / "clinic_b" / "reports"
    with folder_lock(outreach):  # the first run, still assembling its lists
        with pytest.raises(RunFailed, match=f"another crm-analysis run is writing to {outreach}"):
            run_month("2026-10", demo_dir, out=second_out, outreach_dir=outreach, notebook_dir=notebooks,
                      progress=False, pdf=False, analysis_hooks=False)
    assert [p.name for p in outreach.iterdir()] == [LOCK_FILE], "the second run touched the lists"
    assert not (second_out / "2026-10").exists() and not _leftovers(second_out)
    # the lock held by a run on the reports folder does not block another clinic's folder
    result = run_month("2026-10", demo_dir, out=second_out, outreach_dir=outreach, notebook_dir=notebooks,
                       progress=False, pdf=False, analysis_hooks=False)
    assert result.outreach_dir == outreach / "2026-10" and (outreach / "2026-10").is_dir()


def test_the_default_outreach_folder_sits_beside_out(tmp_path, monkeypatch, capsys):
    from crm_analysis.cli import build_parser
    from crm_analysis.monthly.run import RunContext

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the current folder plays no part once --out is given
    for clinic in ("clinic_a", "clinic_b"):
        ctx = RunContext.make("2026-10", tmp_path, out=tmp_path / clinic / "reports")
        assert ctx.outreach_dir == tmp_path / clinic / "outreach"
        lines = plan_month("2026-10", tmp_path, out=tmp_path / clinic / "reports")
        assert any(f"outreach -> {tmp_path / clinic / 'outreach' / '2026-10'}/" in line for line in lines), lines
    assert RunContext.make("2026-10", tmp_path).outreach_dir == elsewhere / "outreach"  # --out reports: ./outreach
    # Reports folders named after their clinics, side by side, still get lists of their own.
    assert {RunContext.make("2026-10", tmp_path, out=tmp_path / c).outreach_dir for c in ("gangnam", "mapo")} == {
        tmp_path / "gangnam-outreach", tmp_path / "mapo-outreach"}
    assert RunContext.make("2026-10", tmp_path, out="x/reports", outreach_dir="lists").outreach_dir == elsewhere / "lists"
    with pytest.raises(ValueError, match="outreach folder .* reports folder"):
        RunContext.make("2026-10", tmp_path, out=tmp_path / "same", outreach_dir=tmp_path / "same")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    assert "beside --out" in " ".join(capsys.readouterr().out.split())


def test_a_killed_run_leaves_nothing_in_tmpdir_once_the_next_run_is_done(tmp_path, notebooks, demo_dir):
    """Kernel connection files and WeasyPrint's font folder stay in the run's private folder, which the next run
    removes: killed once while a notebook runs and once while the PDF is laid out, then run again."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out, outreach = tmp_path / "reports", tmp_path / "outreach"
    _slow_notebook(notebooks)
    args = [str(SCRIPT), "run", "--month", "2026-10", "--source", str(demo_dir), "--out", str(out),
            "--outreach-dir", str(outreach), "--notebook-dir", str(notebooks), "--no-hooks"]
    env = {**os.environ, "TMPDIR": str(tmp)}

    def kill_when(ready, extra_env) -> None:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                env={**env, **extra_env}, start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while not ready():
                assert proc.poll() is None, "the run ended before the point it was to be killed at"
                assert time.monotonic() < deadline, "the run never reached the point it was to be killed at"
                time.sleep(0.02)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the run and the PDF processes it forked
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

    kill_when(lambda: list(out.glob(".2026-10.partial-*/started")), {"CRM_TEST_SLOW": "1"})
    during_notebooks = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    kill_when(lambda: any(p.is_dir() for p in tmp.rglob("weasyprint-*")), {})
    during_pdf = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    print("in TMPDIR after the kill during the notebooks:", during_notebooks)
    print("in TMPDIR after the kill during the PDF:", during_pdf)
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=env)
    assert done.returncode == 0, done.stderr
    left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    assert left == [f"crm-analysis-{os.getuid()}"], f"left in TMPDIR: {left}"


def test_a_run_with_memory_for_one_step_at_a_time_publishes_the_same_month(tmp_path, notebooks, demo_dir,
                                                                          demo_monthly_run, monkeypatch):
    """On a machine (or in a container) with little memory the heavy steps run one after another, in run order,
    and the month published is the same: its KPIs, staff lists and caller-ID cards, byte for byte."""
    monkeypatch.setenv("CRM_ANALYSIS_MEMORY", "1MB")
    out, outreach = tmp_path / "reports", tmp_path / "outreach"
    result = run_month("2026-10", demo_dir, out=out, outreach_dir=outreach, notebook_dir=notebooks, progress=False,
                       pdf=False)
    print(f"memory: {result.memory}")
    assert result.memory["limited"] and result.memory["most_at_once"] == 1
    manifest = json.loads((out / "2026-10" / "manifest.json").read_text())
    assert manifest["memory"]["limited"] and set(manifest["memory"]["waited_seconds"]) >= {
        "fit:reminders", "kpis", "outreach:cards", "notebook:00_first", "notebook:10_second"}
    reference = demo_monthly_run  # every step at once (the real notebooks: the KPIs and lists do not use them)
    assert (out / "2026-10" / "kpis.json").read_bytes() == (reference.out_dir / "kpis.json").read_bytes()

    def files(folder: Path) -> dict[str, bytes]:
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    ours, theirs = files(outreach / "2026-10"), files(reference.outreach_dir)
    assert sorted(ours) == sorted(theirs) and "cards.sqlite" in ours
    assert [name for name in ours if ours[name] != theirs[name]] == []
