"""Read delimited text exports whatever their encoding.

Korean Excel saves CSV as CP949 (a superset of EUC-KR) unless told otherwise;
newer tools write UTF-8, sometimes with a byte-order mark. The encoding is
detected, not asked for: UTF-8 is tried first (a BOM settles it), and CP949
second. A file that is neither is reported with the first bad byte.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import pandas as pd

from crm_analysis.coercion import TEXT
from crm_analysis.exceptions import DataValidationError, Problem, SourceError

__all__ = ["detect_encoding", "read_text_table", "CANDIDATE_ENCODINGS"]

CANDIDATE_ENCODINGS = ("utf-8", "cp949")


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzipped.

    Raises
    ------
    SourceError
        If a ``.gz`` file is truncated (a copy or download cut short) or not gzip at all.
    """
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as err:  # cut short: EOFError; not gzip: BadGzipFile (an OSError)
            detail = (str(err).splitlines() or [type(err).__name__])[0]
            raise SourceError(f"{path.name} is truncated or corrupt: it cannot be decompressed as gzip ({detail}). "
                              "Copy or export the file again.") from None
    return data


def detect_encoding(data: bytes, *, name: str = "file") -> str:
    """Name the encoding of `data`: ``utf-8-sig``, ``utf-8`` or ``cp949``.

    Raises
    ------
    DataValidationError
        If the bytes are valid in none of them.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    first_error = None
    for encoding in CANDIDATE_ENCODINGS:
        try:
            data.decode(encoding)
        except UnicodeDecodeError as err:
            first_error = first_error or err
            continue
        return encoding
    offset = first_error.start if first_error else 0
    line = data[:offset].count(b"\n") + 1
    raise DataValidationError([Problem(
        name, None,
        f"cannot decode the file as UTF-8 or CP949/EUC-KR (bad byte {data[offset:offset + 1]!r} at byte {offset}, "
        f"line {line}). Save it again from Excel as 'CSV UTF-8' or 'CSV (쉼표로 분리)'.",
        check="undecodable")])


def read_text_table(path: Path, *, encoding: str = "auto", table: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read a CSV/TSV file (optionally gzipped) as text columns.

    Parameters
    ----------
    path : Path
        The file. ``.tsv`` files are tab-separated; others are sniffed between
        comma, semicolon and tab.
    encoding : str
        ``"auto"`` to detect, or a Python codec name to force.
    table : str, optional
        Name to use in error messages (defaults to the file name).

    Returns
    -------
    frame : DataFrame
        Every value as text (``string`` dtype) and blanks as missing; the
        index counts data rows from 1.
    encoding : str
        The encoding used.
    """
    name = table or path.name
    data = _read_bytes(path)
    if encoding == "auto":
        encoding = detect_encoding(data, name=name)
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as err:
        raise DataValidationError([Problem(name, None, f"cannot decode the file as {encoding}: {err}",
                                           check="undecodable")]) from None
    if not text.strip():
        raise DataValidationError([Problem(name, None, f"the file {path.name} is empty (not even a header row)",
                                           check="empty_table")])
    header = text.split("\n", 1)[0]
    sep = "\t" if path.suffix == ".tsv" or header.count("\t") > max(header.count(","), header.count(";")) else (
        ";" if header.count(";") > header.count(",") else ",")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=TEXT, keep_default_na=False,
                            na_values=[""], skipinitialspace=False)
    except pd.errors.ParserError as err:
        raise DataValidationError([Problem(name, None, f"the file {path.name} is not a readable table: {err}",
                                           check="unparseable_file")]) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame, encoding
