"""The monthly runner publishes a month only when every notebook succeeded."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from crm_analysis.cli import main
from crm_analysis.pipeline import NotebookFailed, month_end, run_month


def _notebook(path: Path, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('source = ""\nmapping = ""\nas_of = ""\nout_dir = ""\nlang = "ko"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_first.ipynb", "print('month ends', as_of)")
    _notebook(folder / "10_second.ipynb", "assert lang in ('ko', 'en')\nprint(len(source) > 0)")
    return folder


def test_month_end():
    assert month_end("2026-02") == month_end("2026-02").normalize()
    assert f"{month_end('2024-02'):%Y-%m-%d}" == "2024-02-29"
    for bad in ("2026-13", "202610", "October"):
        with pytest.raises(ValueError, match="must look like 2026-10"):
            month_end(bad)


def test_run_publishes_month_and_manifest(tmp_path, notebooks):
    result = run_month("2026-10", tmp_path / "src", out=tmp_path / "reports", notebook_dir=notebooks, progress=False)
    month = tmp_path / "reports" / "2026-10"
    assert result.out_dir == month
    assert sorted(p.name for p in month.iterdir()) == ["00_first.ipynb", "10_second.ipynb", "manifest.json"]
    manifest = json.loads((month / "manifest.json").read_text())
    assert manifest["parameters"]["as_of"] == "2026-10-31"
    executed = nbformat.read(month / "00_first.ipynb", as_version=4)
    assert "month ends 2026-10-31" in executed.cells[-1].outputs[0]["text"]
    assert not list((tmp_path / "reports").glob(".*"))  # no temporary folders left behind


def test_failed_run_leaves_previous_month_intact(tmp_path, notebooks):
    out = tmp_path / "reports"
    run_month("2026-10", tmp_path / "src", out=out, notebook_dir=notebooks, progress=False)
    before = {p.name: p.read_bytes() for p in (out / "2026-10").iterdir()}
    _notebook(notebooks / "20_broken.ipynb", "raise RuntimeError('deliberate failure')")
    with pytest.raises(NotebookFailed, match="20_broken.ipynb failed .*RuntimeError: deliberate failure"):
        run_month("2026-10", tmp_path / "src", out=out, notebook_dir=notebooks, progress=False)
    assert {p.name: p.read_bytes() for p in (out / "2026-10").iterdir()} == before
    failed = out / "2026-10.failed"
    assert (failed / "20_broken.ipynb").exists()
    assert "PapermillExecutionError" in (failed / "20_broken.ipynb").read_text() or \
        "deliberate failure" in (failed / "20_broken.ipynb").read_text()
    assert not list(out.glob(".*"))


def test_dry_run_lists_notebooks(capsys, tmp_path):
    assert main(["run", "--month", "2026-10", "--source", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "as_of 2026-10-31" in out and "00_data_quality.ipynb" in out


def test_bad_month_exits_2(capsys, tmp_path):
    assert main(["run", "--month", "2026/10", "--source", str(tmp_path)]) == 2
    assert "Traceback" not in capsys.readouterr().err
