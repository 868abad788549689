"""Every analysis notebook (``notebooks/[0-9][0-9]_*.ipynb``) follows the same rules.

Stored form
    No outputs and no execution counts (outputs are reports, not sources);
    nbformat 4 with the ``python3`` kernel; exactly one cell tagged
    ``parameters``, whose names are exactly those the monthly run injects
    (:func:`crm_analysis.monthly.notebooks.notebook_parameters`), each with a type
    annotation and a comment.

Thin notebooks
    Logic lives in the package, so notebook code cells define no functions or
    classes (``def``/``class``) and import only the package and display
    helpers: a module is allowed when it is, or lies under, one of
    :data:`ALLOWED_IMPORTS`. Checked on the parsed code (``ast``), with
    IPython magics (``%``/``!`` lines) skipped.

Execution and privacy
    Each notebook runs through papermill on the demo clinic (the session's
    monthly run, ``demo_monthly_run`` in ``tests/conftest.py``), every code
    cell ran without error and skipped no section, and nothing it shows
    (text, HTML, errors; images excluded) contains a patient's name, phone
    number or email from the demo patients table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from crm_analysis.monthly.notebooks import notebook_parameters
from crm_analysis.report.sections import skipped_sections
from tests.conftest import DEMO_END, PROJECT_ROOT
from tests.notebook_runner import KERNEL, NOTEBOOKS, parameter_defaults, parameter_names, run_notebook

#: Modules a notebook may import: the package and display helpers.
ALLOWED_IMPORTS = ("crm_analysis", "pandas", "matplotlib", "IPython.display")

_ids = {"ids": lambda p: p.stem}


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code(cell) -> str:
    """A code cell's source without IPython magics and shell escapes."""
    return "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))


def _allowed(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in ALLOWED_IMPORTS)


def _pipeline_parameters(source: str, out_dir: Path) -> dict[str, str]:
    return notebook_parameters(source=source, as_of=pd.Timestamp(DEMO_END), out_dir=out_dir, lang="ko",
                               mapping=None)


def test_notebooks_found():
    assert NOTEBOOKS, "no notebooks/[0-9][0-9]_*.ipynb found"
    assert all(p.parent == PROJECT_ROOT / "notebooks" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, **_ids)
def test_stored_without_outputs(path):
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} has stored outputs: clear them before saving"
            assert cell.execution_count is None, f"cell {i} has an execution count: clear outputs before saving"


@pytest.mark.parametrize("path", NOTEBOOKS, **_ids)
def test_exactly_one_parameters_cell(path):
    tagged = [c for c in _read(path).cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{len(tagged)} cells tagged 'parameters'; there must be exactly one"
    assert tagged[0].cell_type == "code"


@pytest.mark.parametrize("path", NOTEBOOKS, **_ids)
def test_thin_no_definitions_and_only_allowed_imports(path):
    for i, cell in enumerate(_read(path).cells):
        if cell.cell_type != "code":
            continue
        tree = ast.parse(_code(cell))
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)), \
                f"cell {i} defines {node.name!r}: move the logic into crm_analysis"
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""] if node.level == 0 else ["." * node.level]
            else:
                continue
            for module in modules:
                assert _allowed(module), f"cell {i} imports {module!r}; allowed: {', '.join(ALLOWED_IMPORTS)}"


@pytest.mark.parametrize("path", NOTEBOOKS, **_ids)
def test_parameters_match_the_pipeline(path, tmp_path):
    names = parameter_names(path)
    expected = list(_pipeline_parameters("demo", tmp_path))
    assert sorted(names) == sorted(expected), "the parameters cell and monthly.notebooks.notebook_parameters disagree"
    assert len(names) == len(set(names))
    for name, info in parameter_defaults(path).items():
        assert info["inferred_type_name"] == "str", f"{name} needs a ': str' annotation (papermill injects text)"
        assert info["help"], f"{name} needs a comment saying what it is"


# --------------------------------------------------------------------------- execution

def _shown_text(nb: nbformat.NotebookNode) -> str:
    """Everything the executed notebook shows, except images."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts += [v if isinstance(v, str) else str(v) for k, v in out.get("data", {}).items()
                      if not k.startswith("image/")]
            parts += [out.get("evalue", ""), "\n".join(out.get("traceback", []))]
    return "\n".join(parts)


def _personal_values(patients: pd.DataFrame) -> set[str]:
    """Names (3+ characters, to avoid matching ordinary words), phones (with and without dashes) and emails."""
    names = {n for n in patients["name"].dropna().astype(str) if len(n) >= 3}
    phones = set(patients["phone"].dropna().astype(str))
    phones |= {re.sub(r"\D", "", p) for p in phones}
    emails = set(patients["email"].dropna().astype(str))
    return names | {p for p in phones if len(p) >= 9} | emails


@pytest.mark.notebook
@pytest.mark.xdist_group("demo_monthly_run")  # with pytest-xdist: on the worker that holds the session's run
@pytest.mark.parametrize("path", NOTEBOOKS, **_ids)
def test_runs_on_demo_clinic_without_personal_data(path, demo_monthly_run, demo_clinic):
    """Each notebook as the monthly run executed it (papermill, demo clinic, 2026-10; tests/conftest.py)."""
    nb = nbformat.read(demo_monthly_run.out_dir / path.name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "some cells did not run"
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    assert skipped_sections(demo_monthly_run.out_dir / path.name) == [], "the demo clinic supports every section"
    shown = _shown_text(nb)
    personal = _personal_values(demo_clinic.tables["patients"])
    assert personal, "the demo patients table has no names, phones or emails to look for"
    leaked = sorted(v for v in personal if v in shown)
    assert not leaked, f"{path.name} shows personal data, e.g. {leaked[:3]}"


@pytest.mark.notebook
def test_data_quality_notebook_on_tiny_clinic_in_english(tmp_path):
    """The quality notebook also runs on a tiny hand-made clinic, in English, without showing its patients."""
    from tests.test_quality import AS_OF, PERSONAL, TINY, write_csvs

    source = write_csvs(tmp_path / "tiny", TINY)
    path = PROJECT_ROOT / "notebooks" / "00_data_quality.ipynb"
    params = {**_pipeline_parameters(str(source), tmp_path / "reports"), "as_of": AS_OF, "lang": "en"}
    nb = run_notebook(path, tmp_path, **params)
    shown = _shown_text(nb)
    assert "Data quality summary" in shown and "share missing" in shown and "quarantined rows" in shown
    assert sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])) == 2
    assert not [v for v in PERSONAL if v in shown]


def test_tour_stored_like_the_notebooks():
    """docs/tour.ipynb (executed by tests/test_tour.py) is stored the same way: no outputs, one parameters cell."""
    tour = PROJECT_ROOT / "docs" / "tour.ipynb"
    test_stored_without_outputs(tour)
    test_exactly_one_parameters_cell(tour)
