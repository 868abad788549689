"""A validated-clinic cache for the monthly run: validate once, load fast in every notebook.

The monthly run loads and validates the source once, then writes the
validated :class:`~crm_analysis.clinic.ClinicData` (tables *and* its
validation report) to a cache folder in a private temporary location (mode
0700, outside the reports folder, deleted when the run ends: it holds personal
data). Each notebook then loads the cache instead of the source, through the
usual ``load_clinic(source, mapping=mapping or None).snapshot(as_of)``.

Besides the tables, the cache keeps which reminders point at an appointment in the
table, the one fact every snapshot needs that takes hashing every appointment id
(:meth:`ClinicData.snapshot <crm_analysis.clinic.ClinicData.snapshot>`).

A cache folder holds ``clinic.pickle`` and ``cache.json`` (format, version,
the data file's size, the SHA-256 of its pickle stream and where its parts lie). The data file is a pickle
(protocol 5) whose large arrays, dates included, are stored after it, out of
band (:mod:`crm_analysis.io.mapped`), so that writing them copies no array
twice and reading them copies none at all:
:func:`read_snapshot_cache` maps the file into memory copy-on-write and the
tables' arrays are views of that mapping. Every process of a run that reads
the cache (the run itself, its forked model workers, each notebook kernel)
therefore shares one copy of the clinic in the page cache; a process that
writes into an array gets a private copy of that page only, and pages of
columns it never reads stay on disk. It checks the file's size and the
pickle stream's hash before unpickling, so a truncated file or an altered
stream (the part that can run code) is refused.
Pickle runs code when loaded: only ever read caches this run wrote (that is
why they live in a 0700 folder and are never published).

``load_clinic`` recognises a cache with :func:`is_snapshot_cache` and reads
it back without validating again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from crm_analysis._version import __version__
from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.io.mapped import map_file, pickle_parts, unpickle_parts, write_parts

__all__ = ["CACHE_FORMAT", "write_snapshot_cache", "read_snapshot_cache", "is_snapshot_cache"]

#: Marker written into ``cache.json``.
CACHE_FORMAT = "crm_analysis-validated-clinic/4"
_DATA, _META = "clinic.pickle", "cache.json"


def write_snapshot_cache(clinic: ClinicData, folder: str | Path) -> Path:
    """Write `clinic` (already validated) as a cache folder.

    Parameters
    ----------
    clinic : ClinicData
    folder : str or Path
        Created with mode 0700; it must not exist yet or be empty.

    Returns
    -------
    Path
        The cache folder, to pass as ``source`` to ``load_clinic``.
    """
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    state = {"tables": dict(clinic.tables), "as_of": clinic.as_of, "report": clinic.report,
             "source": clinic.source, "mapping": clinic.mapping, "encodings": dict(clinic.encodings)}
    if "reminders" in clinic.tables and "appointments" in clinic.tables:
        # worked out once here rather than by every notebook's first snapshot (see ClinicData._reminders_linked)
        state["reminders_linked"] = clinic._reminders_linked()
    parts = pickle_parts(state)  # the arrays, dates too, out of band: read back as views of the file
    data = folder / _DATA
    data.touch(mode=0o600)
    with data.open("wb") as out:
        layout = write_parts(parts, out)
    size = layout[-1][0] + layout[-1][1]
    meta = {"format": CACHE_FORMAT, "crm_analysis": __version__, "sha256": hashlib.sha256(parts[0]).hexdigest(),
            "size": size, "parts": layout,
            "source": clinic.source, "rows": {name: len(df) for name, df in clinic.tables.items()}}
    (folder / _META).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    (folder / _META).chmod(0o600)
    return folder


def is_snapshot_cache(source: object) -> bool:
    """Whether `source` is a cache folder written by :func:`write_snapshot_cache`."""
    if not isinstance(source, (str, Path)) or "://" in str(source):
        return False
    meta = Path(source) / _META
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("format") == CACHE_FORMAT
    except (OSError, ValueError):
        return False


def read_snapshot_cache(source: str | Path, as_of: str | pd.Timestamp | None = None) -> ClinicData:
    """Load a cache folder back into the validated ClinicData.

    Parameters
    ----------
    source : str or Path
        The cache folder.
    as_of : str or Timestamp, optional
        Must be missing or equal to the ``as_of`` the data was validated
        against (a cache cannot be re-checked against another date).

    Raises
    ------
    CrmAnalysisError
        If the folder is not a cache, its hash does not match, it was written
        by another version of crm_analysis, or `as_of` differs.
    """
    folder = Path(source)
    if not is_snapshot_cache(folder):
        raise CrmAnalysisError(f"{folder} is not a validated-clinic cache (no {_META} with format {CACHE_FORMAT})")
    meta = json.loads((folder / _META).read_text(encoding="utf-8"))
    if meta.get("crm_analysis") != __version__:
        raise CrmAnalysisError(f"the cache in {folder} was written by crm_analysis {meta.get('crm_analysis')}, "
                               f"this is {__version__}: load the original source instead")
    payload = map_file(folder / _DATA)  # the arrays unpickled out of band are views of it
    layout = meta.get("parts") or [[0, len(payload)]]
    start, length = layout[0]
    # Only the pickle stream can run code, so it is what the hash covers; the arrays after it are data, checked
    # by size. Hashing them too would read every page of the file into every process that opens it (3.7 GiB at a
    # million patients), where each process should touch only the columns it uses.
    if len(payload) != meta.get("size", len(payload)) or \
            hashlib.sha256(payload[start:start + length]).hexdigest() != meta.get("sha256"):
        raise CrmAnalysisError(f"the cache in {folder} is damaged (its size or SHA-256 does not match cache.json): "
                               "load the original source instead")
    state = unpickle_parts(payload, layout)
    if as_of is not None:
        wanted = pd.Timestamp(as_of).normalize()
        if state["as_of"] is None or wanted != state["as_of"]:
            raise CrmAnalysisError(f"the cache in {folder} was validated as of {state['as_of']}, not {wanted:%Y-%m-%d}: "
                                   "load the original source to check it against another date")
    linked = state.pop("reminders_linked", None)
    clinic = ClinicData(**state)
    if linked is not None:
        clinic._remember_linked(linked)
    return clinic
