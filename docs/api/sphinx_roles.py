"""A griffe extension for the API reference: the docstrings' few reStructuredText habits, as Markdown.

The package's numpydoc docstrings were written for Sphinx: they cross-reference with
roles (``:func:`patient_features```, ``:mod:`~crm_analysis.value.vip```) and list
columns in two-column simple tables (``====  ====``). Markdown would show both
verbatim. Before mkdocstrings renders a docstring, this extension rewrites

- each role to inline code showing what Sphinx would show: the target, or only its
  last part when the target starts with ``~``;
- each two-column simple table to a definition list (term, then its description).

The docstrings in the package are not changed. Loaded by ``mkdocs.yml``
(``plugins > mkdocstrings > handlers > python > options > extensions``); mkdocs does
not copy this file into the site (``exclude_docs``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj|const):`(?P<target>[^`]+)`")
# A simple table's border: two runs of '=' (the second run starts the description column).
_BORDER = re.compile(r"^(?P<indent> *)(?P<first>=+)(?P<gap> +)=+ *$")


def _as_code(match: re.Match[str]) -> str:
    target = match.group("target").strip()
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return f"`{target}`"


def _tables_to_definition_lists(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        border = _BORDER.match(lines[i])
        end = next((j for j in range(i + 1, len(lines)) if lines[j] == lines[i]), None) if border else None
        if border is None or end is None:
            out.append(lines[i])
            i += 1
            continue
        indent = len(border["indent"])
        split = indent + len(border["first"]) + len(border["gap"])
        items: list[tuple[str, list[str]]] = []
        for row in lines[i + 1:end]:
            term, description = row[indent:split].strip(), row[split:].strip()
            if term:
                items.append((term, [description] if description else []))
            elif items and description:
                items[-1][1].append(description)
        if out and out[-1].strip():
            out.append("")
        for term, description in items:
            out += [" " * indent + term, " " * indent + ":   " + " ".join(description), ""]
        i = end + 1
    return "\n".join(out)


class SphinxRolesToCode(griffe.Extension):
    """Rewrite roles to inline code and simple tables to definition lists in every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:  # noqa: D102
        if obj.docstring is None:
            return
        value = obj.docstring.value
        if ":`" in value:
            value = _ROLE.sub(_as_code, value)
        if "==" in value:
            value = _tables_to_definition_lists(value)
        obj.docstring.value = value
