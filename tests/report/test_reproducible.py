"""Executed notebooks without run-specific traces: timings, random table ids, addresses, temporary paths."""

from __future__ import annotations

import json

import nbformat

from crm_analysis.report.reproducible import INJECTED_CELL_ID, make_reproducible


def _executed(tmp_path, uid: str, address: str, work: str):
    nb = nbformat.v4.new_notebook()
    injected = nbformat.v4.new_code_cell(f'out_dir = "{work}"')
    injected.metadata["tags"] = ["injected-parameters"]
    injected.metadata["papermill"] = {"start_time": "2026-11-24T13:16:13", "end_time": "x", "duration": 0.01,
                                      "status": "completed"}
    injected.metadata["execution"] = {"iopub.status.busy": "2026-11-24T13:16:13.877949Z"}
    table = nbformat.v4.new_code_cell("styled")
    table.id = "table"  # stored notebooks keep their cell ids; only the injected cell gets a new random one
    html = (f'<style>#T_{uid}_row0_col0 {{color: red}}</style><table id="T_{uid}">'
            f'<td id="T_{uid}_row0_col0">T_abcde is text, not an id: T_abcdef</td></table>')
    table.outputs = [nbformat.v4.new_output("execute_result", {"text/html": html,
                                                               "text/plain": f"<pandas.io.formats.style.Styler at {address}>"},
                                            execution_count=2)]
    nb.cells = [injected, table]
    nb.metadata["papermill"] = {"start_time": "a", "end_time": "b", "duration": 3.2, "output_path": f"{work}/nb.ipynb"}
    path = tmp_path / f"{uid}.ipynb"
    nbformat.write(nb, path)
    return path


def test_two_runs_give_the_same_bytes(tmp_path):
    first = make_reproducible(_executed(tmp_path, "32002", "0x7f405fa208d0", "/r/.2026-10.partial-ab12"),
                              {"/r/.2026-10.partial-ab12": "/r/2026-10"})
    second = make_reproducible(_executed(tmp_path, "176af", "0x7fdd65fdb350", "/r/.2026-10.partial-zz99"),
                               {"/r/.2026-10.partial-zz99": "/r/2026-10"})
    assert first.read_bytes() == second.read_bytes()
    nb = json.loads(first.read_text(encoding="utf-8"))
    nbformat.validate(nbformat.reads(first.read_text(encoding="utf-8"), as_version=4))
    injected, table = nb["cells"]
    assert injected["id"] == INJECTED_CELL_ID and "".join(injected["source"]) == 'out_dir = "/r/2026-10"'
    assert injected["metadata"]["papermill"] == {"status": "completed"} and "execution" not in injected["metadata"]
    assert set(nb["metadata"]["papermill"]) == {"output_path"} and nb["metadata"]["papermill"]["output_path"] == "/r/2026-10/nb.ipynb"
    html = "".join(table["outputs"][0]["data"]["text/html"])
    # The id is renumbered everywhere it appears (CSS and table), and only the id: look-alike text is kept.
    assert '#T_s0001_row0_col0' in html and 'id="T_s0001"' in html and 'id="T_s0001_row0_col0"' in html
    assert "T_abcde is text, not an id: T_abcdef" in html
    assert "".join(table["outputs"][0]["data"]["text/plain"]) == "<pandas.io.formats.style.Styler>"


def test_non_ascii_folders_and_object_reprs(tmp_path):
    work, final = "/보고서/.2026-10.partial-k3j2", "/보고서/2026-10"
    path = _executed(tmp_path, "9f9f9", "0x7f00", work)
    text = path.read_text(encoding="utf-8").replace("<pandas.io.formats.style.Styler at 0x7f00>",
                                                    "<object object at 0x7f1234>")
    path.write_text(text, encoding="utf-8")
    done = make_reproducible(path, {work: final}, id_prefix="n07").read_text(encoding="utf-8")
    assert work not in done and "".join(json.loads(done)["cells"][0]["source"]) == f'out_dir = "{final}"'
    assert "<object object>" in done and "0x7f1234" not in done
    assert "T_n07s0001_row0_col0" in done and "T_9f9f9" not in done


def test_rewriting_twice_changes_nothing(tmp_path):
    path = make_reproducible(_executed(tmp_path, "0a1b2", "0xdeadbeef", "/w"), {"/w": "/final"})
    once = path.read_bytes()
    assert make_reproducible(path, {"/w": "/final"}).read_bytes() == once
