"""The documentation site: ``mkdocs build --strict`` passes and every page is in the nav.

The API reference (``docs/api/``) is generated from the numpydoc docstrings by
mkdocstrings, so the strict build also checks the docstrings: a parameter documented
but not in the signature, an unparseable section or a broken link between pages fails
it. mkdocs and mkdocstrings come with the ``test`` extra (and the ``docs`` extra).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DOCS = PROJECT_ROOT / "docs"
MKDOCS_YML = PROJECT_ROOT / "mkdocs.yml"


def _nav_pages(node) -> set[str]:
    """Every page path in mkdocs.yml's ``nav``, at any depth."""
    if isinstance(node, str):
        return set() if "://" in node else {node}
    if isinstance(node, list):
        return set().union(*(_nav_pages(item) for item in node)) if node else set()
    if isinstance(node, dict):
        return set().union(*(_nav_pages(value) for value in node.values())) if node else set()
    return set()


def test_mkdocs_build_strict_passes(tmp_path):
    assert importlib.util.find_spec("mkdocs") and importlib.util.find_spec("mkdocstrings"), (
        'mkdocs / mkdocstrings are not installed; run: pip install -e ".[test]"')
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's end-of-life banner
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, (
        f"mkdocs build --strict failed (exit {result.returncode}); its warnings:\n"
        + "\n".join(line for line in result.stderr.splitlines() if "WARNING" in line or "ERROR" in line)
        + f"\n\nfull stderr:\n{result.stderr}")
    assert (tmp_path / "site" / "api" / "index.html").exists()


def test_every_docs_page_is_in_the_nav():
    config = yaml.safe_load(MKDOCS_YML.read_text(encoding="utf-8"))
    assert config.get("docs_dir", "docs") == "docs"
    in_nav = _nav_pages(config["nav"])
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    missing = sorted(pages - in_nav)
    assert not missing, f"docs pages missing from mkdocs.yml's nav (add them there): {missing}"
    dangling = sorted(in_nav - pages)
    assert not dangling, f"mkdocs.yml's nav lists pages that do not exist: {dangling}"


def test_docstring_extension_turns_sphinx_markup_into_markdown():
    spec = importlib.util.spec_from_file_location("sphinx_roles", DOCS / "api" / "sphinx_roles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    text = "See :func:`~crm_analysis.features.patient_features` and :class:`ClinicData`."
    assert module._ROLE.sub(module._as_code, text) == "See `patient_features` and `ClinicData`."

    table = "\n".join([
        "Columns:",
        "",
        "=====  ==========",
        "``a``  First line",
        "       and more.",
        "``b``  Second.",
        "=====  ==========",
        "",
        "After.",
    ])
    assert module._tables_to_definition_lists(table) == "\n".join([
        "Columns:",
        "",
        "``a``",
        ":   First line and more.",
        "",
        "``b``",
        ":   Second.",
        "",
        "",
        "After.",
    ])
