"""Write contract tables to a folder (CSV, Parquet, Excel) or a database.

Files are written under a temporary name in the target folder, flushed to
disk, and moved into place only when complete, so a killed run never leaves a
half-written file. CSV is UTF-8 with a byte-order mark (Korean Excel opens it
correctly), dates as ``YYYY-MM-DD``, date-times as ``YYYY-MM-DD HH:MM:SS``,
yes/no as ``true``/``false`` and missing values as empty fields.

In CSV and Excel files, text that would start a spreadsheet formula (``=``,
``+``, ``-``, ``@``, tab, CR) gets a leading ``'``
(:func:`crm_analysis.cells.neutralise_formulas`), so opening the file in Excel
runs nothing; :func:`crm_analysis.load_clinic` takes the quote off again.
Parquet files and databases hold the values as they are.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from crm_analysis.cells import neutralise_formulas
from crm_analysis.contract import TABLES
from crm_analysis.io.sources import is_database_url

__all__ = ["write_clinic", "write_table_csv", "write_table_parquet", "atomic_write", "WRITE_FORMATS"]

WRITE_FORMATS = ("csv", "parquet", "xlsx")
_BOM = b"\xef\xbb\xbf"


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object], *, mode: int = 0o644) -> Path:
    """Call ``write(handle)`` on a temporary binary file beside `path`, then move it into place.

    Parameters
    ----------
    path : str or Path
        The final file. Its folder is created if needed.
    write : callable
        Writes the content to the open binary handle it is given.
    mode : int
        File permissions (``0o600`` for files holding personal data).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _arrow_for_text(name: str, df: pd.DataFrame) -> pa.Table:
    """A contract table as Arrow columns that CSV writes in the documented formats."""
    arrays = []
    for col in TABLES[name].columns:
        arr = pa.array(df[col.name], from_pandas=True)
        if col.dtype == "date":
            arr = arr.cast(pa.timestamp("s")).cast(pa.date32())
        elif col.dtype == "datetime":
            arr = arr.cast(pa.timestamp("s"))
        elif col.dtype in ("category", "id", "string"):
            arr = arr.cast(pa.string())
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, names=TABLES[name].column_names)


def write_table_csv(name: str, df: pd.DataFrame, path: str | Path) -> Path:
    """Write one contract table as UTF-8 CSV with a byte-order mark (formula triggers escaped)."""
    table = _arrow_for_text(name, neutralise_formulas(df))
    header = (",".join(table.column_names) + "\n").encode("utf-8")

    def write(handle: BinaryIO) -> None:
        handle.write(_BOM + header)
        pacsv.write_csv(table, handle, pacsv.WriteOptions(include_header=False, quoting_style="needed"))

    return atomic_write(path, write)


def write_table_parquet(name: str, df: pd.DataFrame, path: str | Path) -> Path:
    """Write one contract table as Parquet (types kept exactly)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    return atomic_write(path, lambda handle: pq.write_table(table, handle, compression="snappy"))


def _for_excel(df: pd.DataFrame, name: str) -> pd.DataFrame:
    out = df.copy()
    for col in TABLES[name].columns:
        if col.dtype == "bool":
            out[col.name] = out[col.name].map({True: "true", False: "false"}).astype("object")
        elif isinstance(out[col.name].dtype, (pd.CategoricalDtype, pd.StringDtype)):
            out[col.name] = out[col.name].astype("object")
    return out


def _for_database(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype("string")
    return out


def write_clinic(tables: Mapping[str, pd.DataFrame], target: str | Path, *, format: str = "csv") -> list[str]:
    """Write contract tables to `target`.

    Parameters
    ----------
    tables : Mapping of str to DataFrame
        Tables by contract name.
    target : str or Path
        A folder, or a SQLAlchemy database URL (its tables are replaced in one
        transaction).
    format : {"csv", "parquet", "xlsx"}
        File format for a folder: one file per table, or for ``xlsx`` one
        workbook ``clinic.xlsx`` with a sheet per table.

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
    if format not in WRITE_FORMATS:
        raise ValueError(f"format must be one of {WRITE_FORMATS}, not {format!r}")
    folder = Path(target)
    if format == "xlsx":
        def write_book(handle: BinaryIO) -> None:
            with pd.ExcelWriter(handle, engine="openpyxl") as book:
                for name, df in tables.items():
                    neutralise_formulas(_for_excel(df, name)).to_excel(book, sheet_name=name, index=False)
        return [str(atomic_write(folder / "clinic.xlsx", write_book))]
    writer = write_table_csv if format == "csv" else write_table_parquet
    return [str(writer(name, df, folder / f"{name}.{format}")) for name, df in tables.items()]
