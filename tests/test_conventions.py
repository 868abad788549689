"""The results convention (docs/contributing.md), checked on every class of the package.

- A **fitter** (a class with ``fit``) returns itself from ``fit`` and offers ``summary`` as a
  DataFrame attribute or property (like lifelines' fitters), and an HTML repr.
- A **result** (any other class with ``summary``) has ``summary()`` as a method (like statsmodels'
  results) and an HTML repr, so a notebook cell just displays it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "crm_analysis"


def _classes():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                yield path.relative_to(PACKAGE.parent), node


def _methods(node: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}


def _is_property(func: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in func.decorator_list)


def _assigns_summary(func: ast.FunctionDef) -> bool:
    return any(isinstance(t, ast.Attribute) and t.attr == "summary" and isinstance(t.value, ast.Name)
               and t.value.id == "self" for n in ast.walk(func) if isinstance(n, ast.Assign) for t in n.targets)


def _returns_self(func: ast.FunctionDef) -> bool:
    returns = [n for n in ast.walk(func) if isinstance(n, ast.Return)]
    return bool(returns) and all(isinstance(r.value, ast.Name) and r.value.id == "self" for r in returns)


def test_fitters_return_self_and_offer_a_summary_table():
    wrong = []
    for path, cls in _classes():
        methods = _methods(cls)
        if "fit" not in methods:
            continue
        if not _returns_self(methods["fit"]):
            wrong.append(f"{path}: {cls.name}.fit does not return self")
        summary = methods.get("summary")
        if not (summary is not None and _is_property(summary) or _assigns_summary(methods["fit"])):
            wrong.append(f"{path}: {cls.name} has no summary property (or self.summary set in fit)")
        if "_repr_html_" not in methods:
            wrong.append(f"{path}: {cls.name} has no _repr_html_")
    assert not wrong, "\n".join(wrong)


def test_results_have_a_summary_method_and_an_html_repr():
    wrong = []
    for path, cls in _classes():
        methods = _methods(cls)
        if "fit" in methods or "summary" not in methods:
            continue
        if _is_property(methods["summary"]):
            wrong.append(f"{path}: {cls.name}.summary is a property; a result's summary() is a method")
        if "_repr_html_" not in methods:
            wrong.append(f"{path}: {cls.name} has no _repr_html_")
    assert not wrong, "\n".join(wrong)
