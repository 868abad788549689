"""Kernel lanes: notebooks share a kernel in turn without sharing variables, and a failure stops its lane."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from crm_analysis.monthly.notebooks import KernelLanes, execute_notebook, notebook_parameters, report_order
from crm_analysis.monthly.publish import private_workdir
from crm_analysis.report.reproducible import make_reproducible


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('source = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _run_one(out):
    def run(path, km):
        execute_notebook(path, out / path.name, {"source": "x"}, km)
        make_reproducible(out / path.name)
    return run


def test_one_kernel_runs_notebooks_in_turn_with_a_fresh_namespace(tmp_path):
    first = _notebook(tmp_path / "00_a.ipynb", "secret = 42", "print('a ran')")
    second = _notebook(tmp_path / "10_b.ipynb", "assert 'secret' not in globals(), 'a variable leaked'",
                       "import os\nprint(os.getpid())")
    out = tmp_path / "out"
    out.mkdir()
    private = private_workdir()
    gate = threading.Event()
    lanes = KernelLanes([first, second], private, _run_one(out), ready={second: gate}, jobs=1,
                        warm_up="import json").start()
    lanes.go()
    assert lanes.futures[first].result(timeout=120) >= 0
    assert not lanes.futures[second].done()  # it waits for its event
    gate.set()
    assert lanes.futures[second].result(timeout=120) >= 0
    lanes.join()
    b = json.loads((out / "10_b.ipynb").read_text())
    counts = [c["execution_count"] for c in b["cells"] if c["cell_type"] == "code"]
    assert counts == list(range(1, len(counts) + 1)), "cells are numbered from 1 in each notebook"


def test_a_failure_stops_the_rest_of_its_lane(tmp_path):
    import papermill as pm

    broken = _notebook(tmp_path / "00_broken.ipynb", "raise RuntimeError('deliberate')")
    after = _notebook(tmp_path / "20_after.ipynb", "print('never')")
    other = _notebook(tmp_path / "10_other.ipynb", "print('other lane')")
    out = tmp_path / "out"
    out.mkdir()
    lanes = KernelLanes([broken, other, after], private_workdir(), _run_one(out), jobs=2).start()
    assert lanes.lane(0) == [broken, after] and lanes.lane(1) == [other]
    lanes.go()
    with pytest.raises(pm.PapermillExecutionError, match="deliberate"):
        lanes.futures[broken].result(timeout=120)
    with pytest.raises(pm.PapermillExecutionError):
        lanes.futures[after].result(timeout=120)
    assert lanes.futures[other].result(timeout=120) >= 0
    lanes.join()
    assert not (out / "20_after.ipynb").exists()


def _chart_outputs(folder: Path) -> tuple[list, str]:
    """Run a one-chart notebook on a lane with the run's warm-up: the chart cell's outputs, and what the last
    cell printed (how many times the figure was drawn, how many figures are left open)."""
    from crm_analysis.monthly.notebooks import WARM_UP

    chart = _notebook(folder / "00_chart.ipynb",
                      "import matplotlib.figure, matplotlib.pyplot as plt\n"
                      "draws = []\n_draw = matplotlib.figure.Figure.draw\n"
                      "matplotlib.figure.Figure.draw = lambda self, *a, **k: (draws.append(1), _draw(self, *a, **k))[1]",
                      "fig, ax = plt.subplots(); ax.plot([1, 2, 3]);",
                      "print('draws', len(draws), 'open', len(plt.get_fignums()))")
    out = folder / "out"
    out.mkdir()
    lanes = KernelLanes([chart], private_workdir(), _run_one(out), jobs=1, warm_up=WARM_UP).start()
    lanes.go()
    assert lanes.futures[chart].result(timeout=120) >= 0
    lanes.join()
    cells = json.loads((out / "00_chart.ipynb").read_text())["cells"]
    return cells[-2]["outputs"], "".join(cells[-1]["outputs"][0]["text"])


def _assert_shown_once(outputs: list, printed: str) -> None:
    print(printed)
    assert any("image/png" in o.get("data", {}) for o in outputs), "the chart is shown"
    # Two draws make the PNG (bbox_inches="tight" measures, then draws); pyplot's post-cell hook made a third.
    assert int(printed.split()[1]) <= 2 and printed.strip().endswith("open 0")


def test_the_warm_up_imports_and_each_chart_is_drawn_only_for_its_png(tmp_path):
    """The run's warm-up leaves the inline backend showing every chart, without pyplot's extra draw per cell."""
    _assert_shown_once(*_chart_outputs(tmp_path))


def test_a_kernel_forked_from_a_process_whose_pyplot_drew_shows_its_charts(tmp_path):
    """A kernel forked from a process whose pyplot had already drawn with Agg (a test worker's, depending on
    which tests ran there before) inherits that backend; the warm-up switches it to inline. Run in a fresh
    interpreter, so that the kernel is forked (this process has threads) and the parent's pyplot has drawn."""
    code = ("import json, sys\nfrom pathlib import Path\n"
            "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\nplt.close(plt.figure())\n"
            "from crm_analysis.monthly.kernels import can_fork_kernels\nassert can_fork_kernels()\n"
            "from tests.monthly.test_notebooks import _chart_outputs\n"
            "print(json.dumps(_chart_outputs(Path(sys.argv[1]))))\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    _assert_shown_once(*json.loads(done.stdout.strip().splitlines()[-1]))


def test_parameters_and_report_order(tmp_path):
    params = notebook_parameters(source="s", as_of="2026-10-31", out_dir=tmp_path, lang="en", mapping=None)
    assert params["rules"] == "" and params["models"] == "" and params["as_of"] == "2026-10-31"
    paths = [tmp_path / n for n in ("00_a.ipynb", "10_b.ipynb", "90_kpi.ipynb")]
    assert [p.name for p in report_order(paths)] == ["90_kpi.ipynb", "00_a.ipynb", "10_b.ipynb"]
