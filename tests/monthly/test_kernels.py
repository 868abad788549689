"""Notebook kernels forked warm from the run: they start with the stack imported, draw inline, and end with it.

Forking needs a process with one thread, and pytest (with xdist) has more, so
each test runs its lanes in a fresh Python process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import nbformat

from crm_analysis.monthly.kernels import can_fork_kernels

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from crm_analysis.monthly.kernels import can_fork_kernels
    from crm_analysis.monthly.notebooks import KernelLanes, execute_notebook
    from crm_analysis.monthly.publish import private_workdir

    notebook, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    print(json.dumps({"can_fork": can_fork_kernels(), "pid": os.getpid()}), flush=True)
    lanes = KernelLanes([notebook], private_workdir(), lambda path, km: execute_notebook(path, out, {}, km),
                        jobs=1, fork=mode != "spawn").start()
    if mode == "abandon":  # end without stopping the kernel, as a killed run would
        print(json.dumps({"kernel": lanes._kms[0].provisioner.pid}), flush=True)
        os._exit(0)
    lanes.go()
    lanes.futures[notebook].result(timeout=120)
    lanes.join()
    try:
        os.waitpid(-1, os.WNOHANG)
        left = True
    except ChildProcessError:
        left = False
    print(json.dumps({"children_left": left}), flush=True)
""")


def _notebook(path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import json, os, sys\n"
        "from threadpoolctl import threadpool_info\n"
        "facts = {'preloaded': 'crm_analysis.quality' in sys.modules, 'parent': os.getppid(),\n"
        "         'blas_threads': sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}),\n"
        "         'cwd': os.getcwd()}\n"
        "print(json.dumps(facts))"),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3]);")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _run(tmp_path, mode):
    notebook = _notebook(tmp_path / "00_facts.ipynb")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(notebook), str(tmp_path / "out.ipynb"), mode],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return lines, done.stderr


def _kernel_facts(tmp_path):
    cells = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells
    facts = json.loads(cells[0].outputs[0]["text"])
    shown = any("image/png" in o.get("data", {}) for o in cells[1].outputs)
    return facts, shown


def test_a_forked_kernel_starts_warm_draws_inline_and_is_reaped(tmp_path):
    (run, *_, ended), stderr = _run(tmp_path, "fork")
    assert run["can_fork"], "a fresh process with one thread may fork its kernels"
    facts, shown = _kernel_facts(tmp_path)
    print(facts)
    assert facts["preloaded"], "the kernel started with the analysis stack imported"
    assert facts["parent"] == run["pid"], "the kernel is the run's own child"
    assert facts["blas_threads"] in ([], [1]), "one BLAS thread, as the launch environment asks"
    assert os.path.samefile(facts["cwd"], tmp_path), "the kernel runs in the notebook's folder"
    assert shown, "charts are drawn by the inline backend"
    assert not ended["children_left"], "the kernel was stopped and reaped"
    assert "ipython kernel` entry point" not in stderr, "the kernel knows the run is its parent"


def test_a_kernel_started_as_a_new_interpreter_has_nothing_preloaded(tmp_path):
    _run(tmp_path, "spawn")
    facts, shown = _kernel_facts(tmp_path)
    assert not facts["preloaded"] and shown


def test_a_forked_kernel_ends_when_the_run_is_gone(tmp_path):
    (run, started), _ = _run(tmp_path, "abandon")
    assert run["can_fork"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(started["kernel"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(started["kernel"], 9)
        raise AssertionError("the kernel outlived the run that started it")


def test_this_test_process_does_not_fork_kernels():
    import threading

    assert can_fork_kernels() == (threading.active_count() == 1)
