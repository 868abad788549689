"""Public names of a package imported on first use (PEP 562), so importing the package stays light.

    __getattr__, __dir__ = lazy_exports(__name__, {"Month": "crm_analysis.monthly.month"}, globals())

Standard library only: the fast paths (``crm-analysis lookup``) import the packages that use it.
"""

from __future__ import annotations

import importlib
from typing import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str],
                 namespace: dict) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of `package` for `exports` (name -> module defining it).

    A name is imported from its module on first use and kept in `namespace` (the package's ``globals()``),
    so later lookups do not come back here.
    """
    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
