"""``docs/tour.ipynb``, the analyst's guided tour, runs top to bottom and shows what it says it shows.

The tour generates a 1,500-patient demo clinic into its ``work_dir``, changes the
Champions segment rule and the churn threshold in a rule folder there, compares
two months, and runs ``notebooks/20_churn.ipynb`` through papermill on that rule
folder. Executed here as in JupyterLab (papermill, kernel ``python3``, working
directory ``docs/``), with ``work_dir`` in ``tmp_path`` so the files it writes
can be read back. Its stored form (no outputs, one ``parameters`` cell) is
checked in ``tests/test_notebooks.py``.
"""

from __future__ import annotations

import ast
import html
import re

import nbformat
import pandas as pd
import pytest

from tests.conftest import PROJECT_ROOT
from tests.notebook_runner import KERNEL
from tests.test_notebooks import _personal_values, _shown_text

TOUR = PROJECT_ROOT / "docs" / "tour.ipynb"
#: The churn threshold the tour writes into its churn.yaml (the shipped one is 0.2).
MY_THRESHOLD = "0.35"


def _rows(html_text: str) -> list[list[str]]:
    """The rows of the HTML table(s) in `html_text`, each as a list of cell texts (header cells included)."""
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html_text, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        rows.append([html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells])
    return rows


def _tagged_html(nb: nbformat.NotebookNode, tag: str) -> str:
    """The HTML the cell tagged `tag` displayed."""
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"the tour has {len(cells)} cells tagged {tag!r}; it needs one"
    shown = [o["data"]["text/html"] for o in cells[0].outputs if "text/html" in o.get("data", {})]
    assert shown, f"the cell tagged {tag!r} showed no table"
    return "\n".join(shown)


def _frame(nb: nbformat.NotebookNode, tag: str) -> dict[str, list[str]]:
    """The DataFrame shown by the cell tagged `tag`: row label -> cell texts (the header row under "")."""
    return {row[0]: row[1:] for row in _rows(_tagged_html(nb, tag))}


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    """The executed tour and its work folder."""
    import papermill as pm

    out = tmp_path_factory.mktemp("tour")
    work = out / "work"
    pm.execute_notebook(str(TOUR), str(out / TOUR.name), parameters={"work_dir": str(work)}, kernel_name=KERNEL,
                        cwd=str(TOUR.parent), progress_bar=False, log_output=False,
                        request_save_on_cell_execute=False)
    return nbformat.read(out / TOUR.name, as_version=4), work


def test_tour_defines_no_functions_or_classes():
    for i, cell in enumerate(nbformat.read(TOUR, as_version=4).cells):
        if cell.cell_type == "code":
            for node in ast.walk(ast.parse(cell.source)):
                assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)), \
                    f"tour cell {i} defines {node.name!r}: the tour shows the package, it adds no code"


@pytest.mark.notebook
def test_tour_runs_and_shows_the_changed_rules(tour):
    nb, work = tour
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "some cells of the tour did not run"
    assert not any(o.output_type == "error" for c in code for o in c.outputs)

    # step 3: without the monetary condition, Champions gain patients (from Loyal); every patient is counted once
    segments = _frame(nb, "segment-counts")
    assert segments.pop("") == ["shipped", "mine", "change"]
    counts = {name.split(" (")[0]: [int(_number(v)) for v in values] for name, values in segments.items()}
    assert sum(v[0] for v in counts.values()) == sum(v[1] for v in counts.values()) == 1_500
    shipped_champions, my_champions, _ = counts["Champions"]
    assert my_champions > shipped_champions, counts
    assert counts["Loyal"][1] < counts["Loyal"][0], counts
    assert all(v[2] == v[1] - v[0] for v in counts.values())

    # step 4: a higher threshold on P(return) counts more patients as churned
    churn = _frame(nb, "churn-counts")
    threshold, patients, churned = (churn[k] for k in churn if k)
    assert threshold == ["0.2", MY_THRESHOLD]
    assert patients[0] == patients[1] == "1500"
    shipped_churned, my_churned = (int(_number(v)) for v in churned)
    assert my_churned > shipped_churned > 0

    # step 5: the two months side by side
    assert _frame(nb, "two-months")[""] == ["2026-09", "2026-10"]

    # step 6: notebook 20, run by papermill on the rule folder, shows the changed threshold and segments
    executed = nbformat.read(work / "20_churn.ipynb", as_version=4)
    assert not any(o.output_type == "error" for c in executed.cells for o in c.get("outputs", []))
    churn_cells = [c for c in executed.cells if c.cell_type == "code"
                   and any("이탈의 기준" in o.get("text", "") for o in c.get("outputs", []))]
    assert len(churn_cells) == 1, "notebook 20 should show one churn-by-segment section"
    said = "".join(o["text"] for o in churn_cells[0].outputs if o.get("name") == "stdout")
    assert f"{float(MY_THRESHOLD):.0%} 미만" in said and "180일" in said  # the rule, in the report's language
    tables = [o["data"]["text/html"] for o in churn_cells[0].outputs if "text/html" in o.get("data", {})]
    rows = {row[0]: row[1:] for row in _rows(tables[0])}
    header = rows.pop("segment" if "segment" in rows else "고객군")
    assert len(header) == 4  # patients, churned, churn rate, mean probability of returning
    assert _number(rows["전체"][1]) == my_churned != shipped_churned
    assert _number(rows["최우수 고객"][0]) == my_champions  # lang "ko": the Korean segment names
    assert _rows(_tagged_html(nb, "notebook-20-churn")) == _rows(tables[0]), "the tour shows notebook 20's table"


@pytest.mark.notebook
def test_tour_shows_no_personal_data(tour):
    nb, work = tour
    patients = pd.read_csv(work / "clinic" / "patients.csv", dtype=str)
    personal = _personal_values(patients)
    assert personal
    leaked = sorted(v for v in personal if v in _shown_text(nb))
    assert not leaked, f"the tour shows personal data, e.g. {leaked[:3]}"
