"""The network config: which branches a network run covers.

``crm-analysis run --month YYYY-MM --clinics network.yaml`` reads a file like::

    version: 1
    network: 우리 의원 네트워크          # optional display name
    clinics:
      - id: gangnam                     # letters, digits, _ or -: a folder name
        name: 강남점                     # shown in the reports
        source: ../exports/gangnam      # relative to this file, or a database URL
        mapping: ../mappings/emr.yaml   # optional
        lang: ko                        # optional (default: the run's --lang)

Relative paths are resolved against the config's folder, so the same file
works from any working directory (and, on a shared filesystem, on every
worker of a cluster).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from crm_analysis.i18n import check_lang

__all__ = ["ClinicSpec", "NetworkConfig", "is_network_config", "read_network_config", "NETWORK_DIR"]

#: Folder (under the reports folder) that holds the network summary.
NETWORK_DIR = "network"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class ClinicSpec:
    """One clinic of a network config (paths already resolved)."""

    id: str
    name: str
    source: str
    mapping: str | None = None
    lang: str | None = None


@dataclass(frozen=True)
class NetworkConfig:
    """A parsed network config."""

    name: str
    clinics: tuple[ClinicSpec, ...]
    path: str


def is_network_config(source: object) -> bool:
    """Whether `source` names a network config (a ``.yaml``/``.yml`` file; data sources never are)."""
    return isinstance(source, (str, Path)) and "://" not in str(source) and \
        Path(source).suffix.lower() in (".yaml", ".yml")


def read_network_config(path: str | Path) -> NetworkConfig:
    """Read and check a network config.

    Raises
    ------
    ValueError
        With a message naming the problem and how to fix it: missing file,
        no ``clinics`` list, an entry without ``id`` or ``source``, a bad or
        repeated id, an unknown language.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"network config {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"network config {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    clinics = data.get("clinics") if isinstance(data, dict) else None
    if not isinstance(clinics, list) or not clinics:
        raise ValueError(f"network config {path} needs a non-empty 'clinics:' list (each with id, name, source)")
    specs, seen = [], set()
    for i, entry in enumerate(clinics, 1):
        if not isinstance(entry, dict) or not entry.get("id") or not entry.get("source"):
            raise ValueError(f"network config {path}: clinic #{i} needs at least 'id' and 'source'")
        cid = str(entry["id"])
        if not _ID.match(cid) or cid == NETWORK_DIR:
            raise ValueError(f"network config {path}: clinic id {cid!r} must be letters, digits, '_' or '-' "
                             f"(it becomes a folder name) and not {NETWORK_DIR!r}")
        if cid in seen:
            raise ValueError(f"network config {path}: clinic id {cid!r} appears twice; ids must be unique")
        seen.add(cid)
        lang = entry.get("lang")
        if lang is not None:
            check_lang(str(lang))
        specs.append(ClinicSpec(id=cid, name=str(entry.get("name") or cid), source=_resolve(entry["source"], path),
                                mapping=_resolve(entry["mapping"], path) if entry.get("mapping") else None,
                                lang=None if lang is None else str(lang)))
    return NetworkConfig(name=str(data.get("network") or path.stem), clinics=tuple(specs), path=str(path.resolve()))


def _resolve(value: object, config: Path) -> str:
    text = str(value)
    if "://" in text:
        return text
    candidate = Path(text).expanduser()
    return str(candidate if candidate.is_absolute() else (config.parent / candidate).resolve())
