"""Executed notebooks that are the same bytes on every run of the same inputs.

Papermill and the kernel leave run-specific traces in an executed notebook:
wall-clock timings in the metadata, a random id on the injected-parameters
cell, random ids on pandas' styled tables (``<table id="T_3f2a1">``), and the
paths of the run's temporary folders. :func:`make_reproducible` removes or
fixes them, so a month re-run, or run by another executor (serial or Dask),
gives identical notebooks and an identical report built from them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping

__all__ = ["make_reproducible", "INJECTED_CELL_ID"]

#: The id given to papermill's injected-parameters cell (papermill draws a random one).
INJECTED_CELL_ID = "injected-parameters"
#: Metadata papermill and nbclient write with wall-clock times.
_TIMING_KEYS = ("start_time", "end_time", "duration")
#: pandas' Styler ids: ``T_`` + the first five hex digits of a uuid4, as an HTML id (``id=\"T_…``, escaped
#: in the notebook's JSON) or a CSS selector (``#T_…``); look-alike text elsewhere is left alone.
_STYLER_ID = re.compile(r'(?:(?<=#)|(?<=id=\\"))T_([0-9a-f]{5})(?![0-9A-Za-z])')
#: Default Python reprs carry the object's memory address: ``<pandas...Styler at 0x7f40...>``.
_ADDRESS = re.compile(r"(<[A-Za-z_][\w.]*(?: object)?) at 0x[0-9a-fA-F]+>")


def make_reproducible(path: str | Path, replacements: Mapping[str, str] | None = None, *, id_prefix: str = "") -> Path:
    """Rewrite an executed notebook without its run-specific traces.

    Parameters
    ----------
    path : str or Path
        The executed notebook (rewritten in place).
    replacements : mapping, optional
        Text -> replacement applied to the whole notebook first, e.g. the
        run's temporary folder -> the folder the month is published to.
    id_prefix : str
        Put into the renumbered table ids, so notebooks shown on one page
        (the report) keep distinct ids: ``T_<prefix>s0001``.

    Returns
    -------
    Path
        `path`.

    Notes
    -----
    Removed: ``start_time``, ``end_time`` and ``duration`` (papermill, per
    notebook and per cell) and each cell's ``execution`` timestamps
    (nbclient). Renumbered, in order of appearance: the Styler table ids, as
    ``T_<prefix>s0001``, ``T_<prefix>s0002``, ... Dropped: memory addresses in default reprs
    (``<...Styler at 0x7f...>`` becomes ``<...Styler>``). Fixed: the
    injected-parameters cell's id. Renumbered: the cells' execution counts, from 1 in
    each notebook (a kernel that ran another notebook first counts on).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    for old, new in (replacements or {}).items():
        if old:
            # nbformat writes non-ASCII as is (a Korean folder name), but JSON-escapes quotes and backslashes.
            text = text.replace(json.dumps(old, ensure_ascii=False)[1:-1], json.dumps(new, ensure_ascii=False)[1:-1])
    text = _ADDRESS.sub(r"\1>", _renumber_styler_ids(text, id_prefix))
    notebook = json.loads(text)
    _drop_timings(notebook.get("metadata", {}).get("papermill", {}))
    executed = 0
    for cell in notebook.get("cells", []):
        if cell.get("execution_count") is not None:
            # numbered from 1 in each notebook, whichever kernel (fresh or pooled) ran it
            executed += 1
            cell["execution_count"] = executed
            for output in cell.get("outputs", []):
                if "execution_count" in output:
                    output["execution_count"] = executed
        metadata = cell.get("metadata", {})
        _drop_timings(metadata.get("papermill", {}))
        metadata.pop("execution", None)
        if INJECTED_CELL_ID in metadata.get("tags", []) and "id" in cell:
            cell["id"] = INJECTED_CELL_ID
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _drop_timings(metadata: dict) -> None:
    for key in _TIMING_KEYS:
        metadata.pop(key, None)


def _renumber_styler_ids(text: str, prefix: str) -> str:
    numbers: dict[str, str] = {}

    def renumber(match: re.Match) -> str:
        uid = match.group(1)
        if uid not in numbers:
            numbers[uid] = f"{prefix}s{len(numbers) + 1:04d}"
        return f"T_{numbers[uid]}"

    return _STYLER_ID.sub(renumber, text)
