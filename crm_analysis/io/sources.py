"""Where raw tables come from: a folder, a file, a workbook or a database.

Every source answers two questions: which raw tables it holds (``names``) and
what one of them contains (``read``). Raw tables come back with their own
column names and an index counting data rows from 1, so errors can point at
the row a person sees in the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm_analysis.coercion import TEXT
from crm_analysis.exceptions import MAX_SHOWN_LINE, DataValidationError, Problem, SourceError, shorten
from crm_analysis.io.encoding import read_text_table
from crm_analysis.redaction import HIDDEN, SECRET_NAME, redact_secrets, redact_url  # noqa: F401 (their old home)

__all__ = ["Source", "FolderSource", "WorkbookSource", "DatabaseSource", "open_source", "is_database_url", "redact_url",
           "redact_secrets"]

TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def is_database_url(source: object) -> bool:
    """Whether `source` is a SQLAlchemy URL such as ``sqlite:///clinic.db``."""
    return isinstance(source, str) and "://" in source


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(TEXT_SUFFIXES + PARQUET_SUFFIXES + EXCEL_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _one_based(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame`, just read by this module, with stripped column names and rows numbered from 1 (as a spreadsheet
    numbers them). Relabelled in place: the frame is the reader's own, and a copy costs seconds at 20M rows."""
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    """Parquet with text kept in Arrow memory (no Python string objects)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    text_types = {pa.string(): TEXT, pa.large_string(): TEXT}
    # each column's Arrow memory is let go of as it is converted (the table is not used again): a 20M-row
    # table is never held twice
    return pq.read_table(path).to_pandas(types_mapper=text_types.get, split_blocks=True, self_destruct=True)


def _unreadable(path: Path, err: Exception) -> DataValidationError:
    first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
    return DataValidationError([Problem(_stem(path), None, f"cannot read {path.name}: "
                                                          f"{shorten(first_line, MAX_SHOWN_LINE)}",
                                        check="unreadable_file")])


def _listed(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items)


def _missing(name: str, where: str, available: list[str]) -> DataValidationError:
    listed = ", ".join(map(shorten, available)) if available else "nothing"
    return DataValidationError([Problem(name, None, f"'{name}' was not found in {where}; it has: {listed}",
                                        check="missing_table")])


@dataclass
class Source:
    """Base class. ``description`` names the source in messages and manifests."""

    description: str
    encodings: dict[str, str] = field(default_factory=dict, init=False)

    def names(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, name: str) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def has(self, name: str) -> bool:
        """Whether the source holds a raw table called `name`."""
        return name in self.names()

    def origin(self, name: str) -> str:
        """Where the raw table `name` is, for messages: its file (or files), sheet or database table."""
        return f"the table '{name}'"

    def files(self) -> list[Path]:
        """Files the source reads (for input hashes); empty for databases."""
        return []

    def fingerprint(self) -> dict[str, str]:
        """SHA-256 of every input file, by file name."""
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(self.files())}


@dataclass
class FolderSource(Source):
    """A folder of CSV/TSV (optionally gzipped), Parquet or Excel files; or one such file.

    A raw table is named by its file name without extension (``patients.csv``
    is ``patients``); the full file name works too. An Excel workbook adds its
    sheets as raw tables. Reading a name that two files (or sheets) share, such
    as ``patients.csv`` beside ``patients.parquet``, raises
    :class:`~crm_analysis.exceptions.SourceError` naming both: neither silently
    wins.
    """

    path: Path = Path(".")
    encoding: str = "auto"

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.is_file():
            paths = [self.path]
        else:
            paths = sorted(p for p in self.path.iterdir() if p.is_file())
        self._files: dict[str, Path] = {}
        self._claims: dict[str, list[str]] = {}  # raw name -> every file or sheet that answers to it
        self._workbooks: list[Path] = []
        self._sheet_index: dict[str, tuple[Path, str]] | None = None
        self._unreadable_workbook = False
        for p in paths:
            lower = p.name.lower()
            if lower.endswith(TEXT_SUFFIXES + PARQUET_SUFFIXES):
                self._files[_stem(p)] = p
                self._files[p.name] = p
                self._claims.setdefault(_stem(p), []).append(p.name)
            elif lower.endswith(EXCEL_SUFFIXES) and not p.name.startswith("~$"):
                self._workbooks.append(p)

    @property
    def _sheets(self) -> dict[str, tuple[Path, str]]:
        # Workbooks are opened only when a sheet is asked for: an unrelated
        # workbook in the folder does not get in the way of the CSV files.
        if self._sheet_index is None:
            self._sheet_index = {}
            for path in self._workbooks:
                try:
                    sheets = pd.ExcelFile(path).sheet_names
                except Exception as err:  # noqa: BLE001 - any reader error means an unreadable file
                    raise _unreadable(path, err) from None
                for sheet in sheets:
                    self._sheet_index[sheet] = (path, sheet)
                    self._claims.setdefault(sheet, []).append(f"sheet '{sheet}' of {path.name}")
        return self._sheet_index

    def has(self, name: str) -> bool:
        return name in self._files or name in self._sheets

    def names(self) -> list[str]:
        stems = {n for n, p in self._files.items() if n != p.name}
        return sorted(stems | set(self._sheets))

    def files(self) -> list[Path]:
        return sorted(set(self._files.values()) | set(self._workbooks))

    def origin(self, name: str) -> str:
        if name in self._files and self._files[name].name == name:
            return name  # a full file name is one file
        self._workbook_sheets_if_readable()
        return _listed(self._claims.get(name, [])) or f"'{name}'"

    def _workbook_sheets_if_readable(self) -> None:
        """Index the workbooks' sheets, to see whether one shares a name with a file; an unreadable
        workbook is left alone here (it is reported if a table is read from it)."""
        if self._workbooks and self._sheet_index is None and not self._unreadable_workbook:
            try:
                self._sheets
            except DataValidationError:
                self._sheet_index, self._unreadable_workbook = None, True
                self._claims = {n: [c for c in claims if not c.startswith("sheet '")]
                                for n, claims in self._claims.items()}

    def _check_one_claim(self, name: str) -> None:
        if name in self._files and self._files[name].name == name:
            return
        self._workbook_sheets_if_readable()
        claims = self._claims.get(name, [])
        if len(claims) > 1:
            which = "both" if len(claims) == 2 else "all"
            example = "" if claims[0].startswith("sheet '") else f", as in 'from: {claims[0]}'"
            raise SourceError(f"{_listed(claims)} in {self.path} are {which} read as '{name}', so it is not clear "
                              "which one holds the data; keep only one of them in the source (or name the one to "
                              f"read in a mapping file{example})")

    def read(self, name: str) -> pd.DataFrame:
        self._check_one_claim(name)
        if name not in self._files and name in self._sheets:
            path, sheet = self._sheets[name]
            try:
                frame = pd.read_excel(path, sheet_name=sheet, dtype=object)
            except Exception as err:  # noqa: BLE001
                raise _unreadable(path, err) from None
            if frame.columns.empty:
                raise DataValidationError([Problem(name, None, f"sheet '{sheet}' of {path.name} is empty",
                                                   check="empty_table")])
            return _one_based(frame)
        if name not in self._files:
            raise _missing(name, f"the folder {self.path}", self.names())
        path = self._files[name]
        if path.name.lower().endswith(PARQUET_SUFFIXES):
            try:
                return _one_based(_read_parquet(path))
            except Exception as err:  # noqa: BLE001
                raise _unreadable(path, err) from None
        frame, used = read_text_table(path, encoding=self.encoding, table=name)
        self.encodings[path.name] = used
        return frame


@dataclass
class WorkbookSource(FolderSource):
    """One Excel workbook with a sheet per table."""


@dataclass
class DatabaseSource(Source):
    """Any database SQLAlchemy can reach (DuckDB, SQLite, PostgreSQL, ...)."""

    url: str = field(default="", repr=False)  # may hold secrets: shown only as `description`
    schema: str | None = None

    def __post_init__(self) -> None:
        import sqlalchemy as sa

        try:
            self._engine = sa.create_engine(self.url)
            with self._engine.connect():
                pass
        except Exception as err:  # noqa: BLE001 - any driver error means we cannot read the source
            # A driver's message may quote the URL back (SQLite's does, query string and all).
            first = redact_secrets((str(err).splitlines() or [""])[0], self.url)
            raise DataValidationError([Problem("source", None, f"cannot open the database {self.description}: "
                                                               f"{type(err).__name__}: {shorten(first, MAX_SHOWN_LINE)}",
                                               check="unreachable_source")]) from None

    def names(self) -> list[str]:
        import sqlalchemy as sa

        return sorted(sa.inspect(self._engine).get_table_names(schema=self.schema))

    def origin(self, name: str) -> str:
        return f"the database table '{name}'"

    def read(self, name: str) -> pd.DataFrame:
        import sqlalchemy as sa

        if name not in self.names():
            raise _missing(name, f"the database {self.description}", self.names())
        # SELECT * without reflecting the table: duckdb-engine's reflection queries
        # pg_catalog tables DuckDB does not have.
        query = sa.select(sa.literal_column("*")).select_from(sa.table(name, schema=self.schema))
        with self._engine.connect() as conn:
            frame = pd.read_sql(query, conn)
        return _one_based(frame)

    def dispose(self) -> None:
        self._engine.dispose()


def open_source(source: str | Path, *, encoding: str = "auto") -> Source:
    """Open `source`: a folder, a single file, an Excel workbook, or a SQLAlchemy URL.

    Raises
    ------
    DataValidationError
        If the path does not exist or the database cannot be reached.
    """
    if is_database_url(source):
        return DatabaseSource(description=redact_url(str(source)), url=str(source))
    path = Path(source)
    if not path.exists():
        raise DataValidationError([Problem("source", None, f"the source {path} does not exist", check="missing_source")])
    if path.is_file() and path.name.lower().endswith(EXCEL_SUFFIXES):
        return WorkbookSource(description=str(path), path=path, encoding=encoding)
    return FolderSource(description=str(path), path=path, encoding=encoding)
