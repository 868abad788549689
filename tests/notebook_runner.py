"""Run and inspect the analysis notebooks from tests.

Notebooks execute through papermill exactly as the monthly run does
(:func:`crm_analysis.monthly.run.run_month`): kernel ``python3``, working
directory = the notebook's folder, parameters injected after the cell tagged
``parameters``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from crm_analysis.monthly.notebooks import notebook_paths

__all__ = ["NOTEBOOKS", "KERNEL", "run_notebook", "parameter_names", "parameter_defaults"]

KERNEL = "python3"

#: The analysis notebooks, in run order (``notebooks/[0-9][0-9]_*.ipynb``).
NOTEBOOKS: list[Path] = notebook_paths()


def run_notebook(path: Path | str, tmp_path: Path, **parameters) -> nbformat.NotebookNode:
    """Execute `path` through papermill and return the executed notebook.

    Parameters
    ----------
    path : Path or str
        The notebook.
    tmp_path : Path
        Folder for the executed copy (``<tmp_path>/<name>``).
    **parameters
        Values for the ``parameters`` cell.

    Returns
    -------
    nbformat.NotebookNode
        The executed notebook, with outputs.

    Raises
    ------
    papermill.PapermillExecutionError
        If a cell fails; the message names the cell and the error.
    """
    import papermill as pm

    path = Path(path).resolve()
    output = Path(tmp_path) / path.name
    pm.execute_notebook(str(path), str(output), parameters=parameters, kernel_name=KERNEL,
                        cwd=str(path.parent), progress_bar=False, log_output=False,
                        request_save_on_cell_execute=False)  # one write at the end, not two per cell
    return nbformat.read(output, as_version=4)


def parameter_names(path: Path | str) -> list[str]:
    """Names declared in the notebook's ``parameters`` cell, in order (via ``papermill.inspect_notebook``)."""
    import papermill as pm

    return list(pm.inspect_notebook(str(path)))


def parameter_defaults(path: Path | str) -> dict[str, dict]:
    """``papermill.inspect_notebook`` output: name -> {inferred_type_name, default, help}."""
    import papermill as pm

    return dict(pm.inspect_notebook(str(path)))
