"""Rule files: reading an analyst's YAML, and shipped defaults with the analyst's overrides merged in.

:func:`read_rule_yaml` is the one reader of rule files (segments, VIP, loyalty,
campaigns, churn, reminders): a path, a mapping or nothing, with the same
errors everywhere (a missing file, invalid YAML, a document that is not a
mapping), each naming the file.

Analyses whose settings are a nested YAML document (``crm_analysis/rules/churn.yaml``,
``reminders.yaml``) load them with :func:`load_rule_file`: ``None`` gives the
defaults, a path or a dict gives overrides merged key by key (so an override
names only what changes), and unknown keys are refused. The result is
read-only (nested mappings become ``MappingProxyType``, lists tuples) and is
marked as loaded, so passing it back in returns it unchanged.
"""

from __future__ import annotations

import copy
import copyreg
import os
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Collection, Mapping

from crm_analysis.exceptions import CrmAnalysisError, RuleFileError, shorten

__all__ = ["load_rule_file", "read_rule_yaml", "parse_yaml"]


def parse_yaml(text: str) -> Any:
    """`text` parsed as YAML, safely, with libyaml's C parser where PyYAML has it (about ten times faster
    than the pure-Python one; the same documents)."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@lru_cache(maxsize=64)
def _parsed_file(path: str, mtime_ns: int, size: int) -> Any:
    """A rule file parsed once per version (the monthly run reads the same files many times)."""
    return parse_yaml(Path(path).read_text(encoding="utf-8-sig"))


def read_rule_yaml(source: str | os.PathLike | Mapping | None, *, what: str,
                   error: type[Exception] = RuleFileError) -> dict[str, Any]:
    """Read one rule file: a YAML path, or the rules themselves as a mapping.

    Parameters
    ----------
    source : str, PathLike, Mapping or None
        A YAML file (UTF-8, with or without a byte-order mark), or a mapping
        (copied); None gives an empty dict.
    what : str
        What the rules are for, e.g. ``"segment"``, used in error messages.
    error : exception class
        Raised with a one-line message (a subclass of ``ValueError`` for bad
        input, so the command line exits with status 2).

    Returns
    -------
    dict
        A new dict (the input is not modified).

    Raises
    ------
    error
        If the file does not exist, is not valid YAML, or does not hold a mapping.
    """
    import yaml

    if source is None:
        return {}
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source))
    path = Path(source)
    if not path.is_file():
        raise error(f"{what} rules file {path} does not exist; pass a YAML file path or a dict")
    try:
        stat = path.stat()
        doc = copy.deepcopy(_parsed_file(str(path.resolve()), stat.st_mtime_ns, stat.st_size))
    except yaml.YAMLError as err:
        raise error(f"{what} rules file {path.name} is not valid YAML: {shorten(' '.join(str(err).split()), 240)}"
                    ) from None
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise error(f"{what} rules file {path.name} must be a YAML mapping (key: value lines), "
                    f"not {type(doc).__name__}")
    return dict(doc)


def read_only(mapping: dict) -> MappingProxyType:
    """`mapping` as a read-only view (how loaded rules are unpickled)."""
    return MappingProxyType(mapping)


def _reduce_mappingproxy(proxy: MappingProxyType):
    return read_only, (dict(proxy),)


# Loaded rules travel with fitted models (the monthly run pickles them); a read-only mapping pickles as one.
copyreg.pickle(MappingProxyType, _reduce_mappingproxy)


def load_rule_file(rules: str | os.PathLike | Mapping | None, *, defaults_path: Path, what: str,
                   check: Callable[[dict], None], open_sections: Collection[str] = ()) -> Mapping[str, Any]:
    """The defaults with `rules` merged in, checked and made read-only.

    Parameters
    ----------
    rules : path, mapping or None
        A YAML file or a dict of overrides; None for the defaults. Rules this
        function returned before are returned unchanged.
    defaults_path : Path
        The shipped defaults (YAML; read once per process, and named in error messages).
    what : str
        What the rules are for, e.g. ``"churn"``, used in error messages.
    check : callable
        Called with the merged rules (a plain dict); raises on a bad value.
    open_sections : collection of str
        Top-level sections whose keys are free (an override adds or replaces
        keys, e.g. message costs per channel) rather than checked against the
        defaults.

    Returns
    -------
    Mapping
        Read-only nested mapping (lists become tuples).

    Raises
    ------
    CrmAnalysisError
        If the file is missing or not a mapping, or a key is unknown.
    """
    if isinstance(rules, MappingProxyType) and rules.get("_loaded"):
        return rules
    override = read_rule_yaml(rules, what=what)
    merged = _merge(_shipped_defaults(Path(defaults_path)), override, "", what=what, defaults_path=defaults_path,
                    open_sections=open_sections)  # _merge copies: the cached defaults stay as read
    check(merged)
    merged["_loaded"] = True
    return _freeze(merged)


@lru_cache(maxsize=None)
def _shipped_defaults(path: Path) -> dict:
    return parse_yaml(path.read_text(encoding="utf-8"))


def _merge(base: dict, override: Mapping, path: str, *, what: str, defaults_path: Path,
           open_sections: Collection[str]) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in base:
            raise CrmAnalysisError(f"unknown {what} rule {path}{key!r}; known: {', '.join(sorted(base))}. "
                                   f"Check the spelling against {defaults_path.name}.")
        if isinstance(base[key], dict) and isinstance(value, Mapping):
            if not path and key in open_sections:
                out[key] = {**base[key], **dict(value)}
            else:
                out[key] = _merge(base[key], value, f"{path}{key}.", what=what, defaults_path=defaults_path,
                                  open_sections=open_sections)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value
