"""Write contract tables to a folder (CSV, Parquet, Excel) or a database.

Files are written under a temporary name in the target folder and moved into
place only when complete, so a killed run never leaves a half-written file.
CSV is UTF-8 with a byte-order mark, which Korean Excel opens correctly.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from crm_analysis.contract import TABLES
from crm_analysis.io.sources import is_database_url

__all__ = ["write_clinic", "atomic_write", "WRITE_FORMATS"]

WRITE_FORMATS = ("csv", "parquet", "xlsx")


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside `path`, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _for_text(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Dates as YYYY-MM-DD, moments as YYYY-MM-DD HH:MM:SS, yes/no as true/false."""
    out = df.copy()
    for col in TABLES[table].columns:
        if col.name not in out:
            continue
        if col.dtype == "date":
            out[col.name] = out[col.name].dt.strftime("%Y-%m-%d")
        elif col.dtype == "datetime":
            out[col.name] = out[col.name].dt.strftime("%Y-%m-%d %H:%M:%S")
        elif col.dtype == "bool":
            out[col.name] = out[col.name].map({True: "true", False: "false"}).astype("object")
    return out


def _for_database(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype("string")
    return out


def write_clinic(tables: Mapping[str, pd.DataFrame], target: str | Path, *, format: str = "csv",
                 encoding: str = "utf-8-sig") -> list[str]:
    """Write contract tables to `target`.

    Parameters
    ----------
    tables : Mapping of str to DataFrame
        Tables by contract name.
    target : str or Path
        A folder, or a SQLAlchemy database URL (tables are replaced).
    format : {"csv", "parquet", "xlsx"}
        File format for a folder target; ``xlsx`` writes one workbook
        ``clinic.xlsx`` with a sheet per table.
    encoding : str
        Text encoding for CSV (``utf-8-sig`` by default; ``cp949`` imitates
        Korean Excel).

    Returns
    -------
    list of str
        The files or database tables written.
    """
    if is_database_url(target):
        import sqlalchemy as sa

        engine = sa.create_engine(str(target))
        try:
            with engine.begin() as conn:
                for name, df in tables.items():
                    _for_database(df).to_sql(name, conn, if_exists="replace", index=False, chunksize=50_000)
        finally:
            engine.dispose()
        return list(tables)
    folder = Path(target)
    folder.mkdir(parents=True, exist_ok=True)
    if format == "xlsx":
        def write_book(tmp: Path) -> None:
            with pd.ExcelWriter(tmp, engine="openpyxl") as book:
                for name, df in tables.items():
                    _for_text(df, name).to_excel(book, sheet_name=name, index=False)
        return [str(atomic_write(folder / "clinic.xlsx", write_book))]
    if format not in WRITE_FORMATS:
        raise ValueError(f"format must be one of {WRITE_FORMATS}, not {format!r}")
    written = []
    for name, df in tables.items():
        if format == "csv":
            text = _for_text(df, name)
            path = atomic_write(folder / f"{name}.csv",
                                lambda tmp, text=text: text.to_csv(tmp, index=False, encoding=encoding, lineterminator="\n"))
        else:
            path = atomic_write(folder / f"{name}.parquet", lambda tmp, df=df: df.to_parquet(tmp, index=False))
        written.append(str(path))
    return written
