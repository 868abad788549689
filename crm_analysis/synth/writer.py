"""Write a generated clinic to disk: its tables, and ``truth.json`` beside them.

The tables go through :func:`crm_analysis.io.writing.write_clinic` (atomic,
UTF-8 CSV with a byte-order mark, or Parquet); this module adds the truth file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import pandas as pd

from crm_analysis.io.writing import atomic_write
from crm_analysis.io.writing import write_clinic as write_tables

__all__ = ["write_demo", "write_truth", "FORMATS"]

FORMATS = ("csv", "parquet")


def write_truth(truth: Mapping, path: Path) -> Path:
    """Write ``truth.json`` (sorted keys, indent 2, UTF-8, non-ASCII kept)."""
    data = (json.dumps(truth, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(data))


def write_demo(tables: Mapping[str, pd.DataFrame], truth: Mapping, out_dir: str | os.PathLike,
                 format: str = "csv") -> dict[str, Path]:
    """Write every table and ``truth.json`` into `out_dir` (created if needed).

    Parameters
    ----------
    tables : mapping of str to DataFrame
    truth : mapping
    out_dir : path
    format : {"csv", "parquet"}

    Returns
    -------
    dict
        File path per table name, plus ``"truth"``.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    paths = write_tables(tables, out_dir, format=format)
    written = {name: Path(p) for name, p in zip(tables, paths)}
    written["truth"] = write_truth(truth, Path(out_dir) / "truth.json")
    return written
