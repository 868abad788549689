"""Read delimited text exports whatever their encoding.

Korean Excel saves CSV as CP949 (a superset of EUC-KR) unless told otherwise;
newer tools write UTF-8, sometimes with a byte-order mark. The encoding is
detected, not asked for: UTF-8 is tried first (a BOM settles it), and CP949
second. A file that is neither is reported with the first bad byte.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from crm_analysis.coercion import TEXT
from crm_analysis.exceptions import MAX_SHOWN_LINE, DataValidationError, Problem, SourceError, shorten

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
            detail = shorten((str(err).splitlines() or [type(err).__name__])[0], MAX_SHOWN_LINE)
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
    frame = _read_with_arrow(data, encoding, path)
    if frame is None:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as err:
            raise DataValidationError([Problem(name, None, f"cannot decode the file as {encoding}: "
                                                     f"{shorten(err, MAX_SHOWN_LINE)}",
                                               check="undecodable")]) from None
        if not text.strip():
            raise DataValidationError([Problem(name, None, f"the file {path.name} is empty (not even a header row)",
                                               check="empty_table")])
        frame = _parse_with_pandas(text, _delimiter(path, _first_line(text)), name, path)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame, encoding


#: How much of a UTF-8 file is decoded to find its header (the rest is left to pyarrow, which checks it).
_HEAD_BYTES = 1 << 16


def _first_line(text: str) -> str:
    end = text.find("\n")  # not split(): that copies the whole file
    return text if end < 0 else text[:end]


def _delimiter(path: Path, header: str) -> str:
    """Tab for ``.tsv`` files; else whichever of tab, semicolon and comma the header line holds most of."""
    if path.suffix == ".tsv" or header.count("\t") > max(header.count(","), header.count(";")):
        return "\t"
    return ";" if header.count(";") > header.count(",") else ","


def _read_with_arrow(data: bytes, encoding: str, path: Path) -> pd.DataFrame | None:
    """The table read by :func:`_parse_with_arrow`, or None to leave the file (and any error) to pandas.

    A UTF-8 file is handed to pyarrow as it is, with only its beginning
    decoded here: pyarrow checks the rest is valid UTF-8. Other encodings are
    decoded, then encoded as UTF-8 for pyarrow.
    """
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        return None
    try:
        if codec in ("utf-8", "utf-8-sig"):
            whole = len(data) <= _HEAD_BYTES
            head = codecs.getincrementaldecoder(codec)().decode(data[:_HEAD_BYTES], final=whole)
            raw = data[len(codecs.BOM_UTF8):] if codec == "utf-8-sig" and data.startswith(codecs.BOM_UTF8) else data
        else:
            head = data.decode(encoding)
            whole, raw = True, head.encode("utf-8")
    except UnicodeDecodeError:
        return None
    if not head.strip() or ("\n" not in head and not whole):
        return None  # blank so far, or a header longer than the head: pandas' way
    return _parse_with_arrow(raw, head, _delimiter(path, _first_line(head)))


def _parse_with_pandas(text: str, sep: str, name: str, path: Path) -> pd.DataFrame:
    """The reference reader: every value as text, only blanks missing; ragged rows are padded or refused."""
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=TEXT, keep_default_na=False,
                           na_values=[""], skipinitialspace=False)
    except pd.errors.ParserError as err:
        raise DataValidationError([Problem(name, None, f"the file {path.name} is not a readable table: "
                                                 f"{shorten(err, MAX_SHOWN_LINE)}",
                                           check="unparseable_file")]) from None


def _same_for_both_readers(data: bytes, sep: str, n_columns: int) -> bool:
    """False if `data` holds a NUL byte or a lone carriage return, or, with one column, a line starting with a
    blank (pandas skips lines of blanks; with more columns pyarrow refuses such a line, so pandas reads the file)."""
    if b"\x00" in data or (b"\r" in data and data.count(b"\r") != data.count(b"\r\n")):
        return False
    if n_columns > 1:
        return True
    byte = np.frombuffer(data, dtype=np.uint8)
    first = byte[np.concatenate([[0], np.flatnonzero(byte[:-1] == ord("\n")) + 1])] if len(byte) else byte
    blank = (first == ord(" ")) | ((first == ord("\t")) & (sep != "\t"))
    return not blank.any()


def _parse_with_arrow(data: bytes, head: str, sep: str) -> pd.DataFrame | None:
    """The same table as :func:`_parse_with_pandas`, read by pyarrow's CSV reader (several times faster).

    Parameters
    ----------
    data : bytes
        The file as UTF-8 (pyarrow reads UTF-8 only), without a byte-order mark.
    head : str
        The decoded file, or its beginning: enough for the header row.
    sep : str
        The delimiter.

    Returns
    -------
    DataFrame or None
        None wherever the two readers could differ, so that pandas decides:
        rows with too few or too many fields, blank or repeated column names
        (pandas renames them), in a one-column file a line starting with a
        blank (pandas skips lines of blanks), a carriage return not followed
        by a line feed, a NUL byte (pandas ends the value there), a quoted
        value left open at the end of the file (pandas refuses it), text that
        is not UTF-8, or any other file pyarrow refuses.
    """
    try:
        header = next(csv.reader(io.StringIO(head), delimiter=sep))
    except (StopIteration, csv.Error):
        return None
    if not header or len(set(header)) < len(header) or any(not n for n in header) \
            or not _same_for_both_readers(data, sep, len(header)):
        return None
    # A last row of markers: it is read as a row of its own only if the file does not end inside quotes.
    marker = "\x01end\x01"
    closing = ("\n" + sep.join([marker] * len(header)) + "\n").encode("utf-8")
    try:
        table = pacsv.read_csv(
            io.BytesIO(data + closing),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=max(1 << 20, min(len(data) + 1024, 1 << 26))),
            parse_options=pacsv.ParseOptions(delimiter=sep, quote_char='"', double_quote=True, escape_char=False,
                                             newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in header}, null_values=[""],
                                                 strings_can_be_null=True, quoted_strings_can_be_null=True))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.column_names != header or any(t != pa.string() for t in table.schema.types) or not table.num_rows:
        return None
    last = table.slice(table.num_rows - 1)
    if any(column.to_pylist() != [marker] for column in last.columns):
        return None
    return table.slice(0, table.num_rows - 1).to_pandas(types_mapper={pa.string(): TEXT}.get)
