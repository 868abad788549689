"""Privacy for published reports: small-count suppression and a personal-data scanner.

Reports carry aggregates only. Two tools keep them that way:

- :func:`suppress_small_counts` hides counts from 1 to ``threshold - 1`` (1 to 4
  by default) in a report table, and then hides enough further cells
  (*secondary suppression*) that no hidden count can be worked out again from
  the row and column totals.
- :func:`personal_values` lists the names, phone numbers (with and without
  dashes) and emails of a patients table, and :func:`scan_text` /
  :func:`scan_artefacts` look for any of them in report text: the HTML, the
  PDF's text, executed notebooks and ``kpis.json``. The monthly run refuses to
  publish a month whose own scan finds a hit.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_MIN_COUNT", "check_threshold", "shown_count", "suppress_small_counts", "suppressed_mask", "personal_values", "fixed_report_text",
           "scan_text",
           "scan_artefacts", "artefact_text", "PrivacyHit"]

#: Counts below this (and above 0) are suppressed in report tables.
DEFAULT_MIN_COUNT = 5

#: Names shorter than this are not searched for: two-character strings match ordinary words.
MIN_NAME_LENGTH = 3


def check_threshold(threshold: int) -> int:
    """`threshold` as an int, checked: a whole number of at least 1.

    Raises
    ------
    ValueError
        If `threshold` is not a whole number of at least 1.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or threshold < 1:
        raise ValueError(f"the suppression threshold must be a whole number of at least 1, not {threshold!r} "
                         f"(counts from 1 to threshold - 1 are hidden; the default is {DEFAULT_MIN_COUNT})")
    return int(threshold)


def shown_count(n: int | np.integer, min_count: int = DEFAULT_MIN_COUNT) -> int | None:
    """A count as published: None when it is small enough to single someone out (1 .. min_count - 1).

    The one place where a single count (a KPI, a network figure) is suppressed; tables use
    :func:`suppress_small_counts`, which adds secondary suppression.

    Examples
    --------
    >>> shown_count(3), shown_count(0), shown_count(12)
    (None, 0, 12)
    """
    n = int(n)
    return None if 0 < n < min_count else n


def suppressed_mask(table: pd.DataFrame, columns: Sequence[str], threshold: int = DEFAULT_MIN_COUNT, *,
                    total_row: object | None = None, total_column: str | None = None,
                    additive: str = "both", row_groups: Sequence | None = None,
                    hidden: pd.DataFrame | np.ndarray | None = None) -> pd.DataFrame:
    """Which cells of ``table[columns]`` to hide: primary and secondary suppression.

    Parameters
    ----------
    table : pandas.DataFrame
        A report table of counts.
    columns : sequence of str
        The count columns to protect. Each row of these columns, and each
        column, is taken to add up to a total that is (or could be) published.
    threshold : int
        Counts ``1 <= n < threshold`` are hidden (primary suppression).
    total_row : label, optional
        Index label of a total row in `table`; it takes part as the total of
        each column and may itself be hidden.
    total_column : str, optional
        A total column (one of `columns`); it takes part as the total of each row.
    additive : {"both", "columns", "rows"}
        Which groups add up to a total: both the rows and the columns (a
        cross-table such as department x age band; the safe default), only the
        columns (a table of different measures per row, such as patients and
        visits per department), or only the rows.
    row_groups : sequence, optional
        One label per row: the rows sharing a label add up, column by column,
        to a subtotal published elsewhere (the messages of one campaign, whose
        total another table shows). Each such set of cells is a group too.
    hidden : DataFrame or array of bool, optional
        Cells already hidden for another reason (shaped like ``table[columns]``),
        such as those another table of the same report hides; they count as
        hidden when the groups are checked.

    Returns
    -------
    pandas.DataFrame
        Booleans, shaped like ``table[columns]``; True means hide.

    Notes
    -----
    Secondary suppression: every group of cells that adds up to a known total
    (a row across `columns`, a column down the rows) must hide either no cell
    or at least two; otherwise the one hidden cell is the total minus the
    others. When a group hides exactly one cell, the smallest other positive
    cell of the group is hidden too (a zero if there is none, the total as a
    last resort), and this repeats until every group is safe. Report tables
    are small, so the loop runs over groups, not patients.
    """
    threshold = check_threshold(threshold)
    if additive not in ("both", "columns", "rows"):
        raise ValueError(f"additive must be 'both', 'columns' or 'rows', not {additive!r}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in the table; it has {list(table.columns)}")
    values = table[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    hide = (values >= 1) & (values < threshold)
    if hidden is not None:
        hide |= np.asarray(hidden, dtype=bool)
    if not hide.any():
        return pd.DataFrame(hide, index=table.index, columns=list(columns))
    n_rows, n_cols = values.shape
    total_r = None if total_row is None else table.index.get_loc(total_row)
    total_c = None if total_column is None else list(columns).index(total_column)
    groups = [[(r, c) for c in range(n_cols)] for r in range(n_rows)] if additive != "columns" else []
    groups += [[(r, c) for r in range(n_rows)] for c in range(n_cols)] if additive != "rows" else []
    if row_groups is not None:
        keys = pd.Series(list(row_groups), dtype=object)
        if len(keys) != n_rows:
            raise ValueError(f"row_groups has {len(keys)} labels for {n_rows} rows")
        for rows in keys.groupby(keys, sort=False).indices.values():
            groups += [[(int(r), c) for r in rows] for c in range(n_cols)] if len(rows) > 1 else []
    changed = True
    while changed:
        changed = False
        for cells in groups:
            shut = [cell for cell in cells if hide[cell]]
            if len(shut) != 1:
                continue
            candidates = [cell for cell in cells if not hide[cell] and not np.isnan(values[cell])]
            if not candidates:
                continue
            is_total = [(cell[0] == total_r) or (cell[1] == total_c) for cell in candidates]
            ranked = sorted(zip(candidates, is_total), key=lambda x: (x[1], values[x[0]] == 0, values[x[0]], x[0]))
            hide[ranked[0][0]] = True
            changed = True
    return pd.DataFrame(hide, index=table.index, columns=list(columns))


def suppress_small_counts(table: pd.DataFrame, columns: Sequence[str] | None = None,
                          threshold: int = DEFAULT_MIN_COUNT, *, linked: dict[str, str] | None = None,
                          total_row: object | None = None, total_column: str | None = None,
                          additive: str = "both", row_groups: Sequence | None = None,
                          hidden: pd.DataFrame | np.ndarray | None = None) -> pd.DataFrame:
    """A copy of `table` with small counts, and what would reveal them, set missing.

    Parameters
    ----------
    table : pandas.DataFrame
        A report table. It is not modified.
    columns : sequence of str, optional
        Count columns to protect (default: every integer column).
    threshold : int
        Counts from 1 to ``threshold - 1`` are hidden; 5 by default, so 1-4.
    linked : dict of str to str, optional
        ``{value_column: count_column}``: a value column (such as revenue) is
        hidden wherever its count column is, since a department's revenue with
        two patients tells about those two.
    total_row, total_column, additive, row_groups, hidden
        Totals, which groups add up and cells already hidden, as in :func:`suppressed_mask`.

    Returns
    -------
    pandas.DataFrame
        Protected columns become nullable (``Int64`` / ``Float64``) with
        ``<NA>`` where hidden. Show ``<NA>`` as "<5" or a dash.

    Raises
    ------
    ValueError
        If `threshold` is not a whole number of at least 1.
    KeyError
        If a named column is missing.

    See Also
    --------
    suppressed_mask : which cells are hidden, and why.

    Examples
    --------
    >>> t = pd.DataFrame({"patients": [2, 30, 41], "visits": [9, 80, 120]}, index=["a", "b", "c"])
    >>> suppress_small_counts(t)["patients"].tolist()
    [<NA>, <NA>, 41]
    """
    if columns is None:
        columns = [c for c in table.columns if pd.api.types.is_integer_dtype(table[c].dtype)]
    mask = suppressed_mask(table, columns, threshold, total_row=total_row, total_column=total_column,
                           additive=additive, row_groups=row_groups, hidden=hidden)
    out = table.copy()
    for col in columns:
        out[col] = _nullable(out[col]).mask(mask[col].to_numpy())
    for value_col, count_col in (linked or {}).items():
        if count_col not in mask.columns:
            raise KeyError(f"linked column {value_col!r} follows {count_col!r}, which is not a protected count column")
        out[value_col] = _nullable(out[value_col]).mask(mask[count_col].to_numpy())
    return out


def _nullable(series: pd.Series) -> pd.Series:
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.astype("Int64")
    if pd.api.types.is_float_dtype(series.dtype):
        return series.astype("Float64")
    return series


# --------------------------------------------------------------------------- the scanner

def personal_values(patients: pd.DataFrame, *, min_name_length: int = MIN_NAME_LENGTH,
                    fixed_text: str = "") -> list[str]:
    """Names, phone numbers and emails of a patients table, as strings to search for.

    Phones are listed as stored (``010-1234-5678``) and as digits only
    (``01012345678``), and digits-only also catches spaced or dotted forms
    through :func:`scan_text`. Names shorter than `min_name_length`
    characters are skipped: two-character strings match ordinary words.

    Parameters
    ----------
    patients : pandas.DataFrame
        The contract's patients table (columns ``name``, ``phone``, ``email``;
        any that is missing is skipped).
    min_name_length : int
        Shorter names are not searched for.
    fixed_text : str
        The report's own fixed wording (see :func:`fixed_report_text`). A
        name that occurs in it is not searched for: a patient called 최우수
        shares the name of the "최우수 고객" (best customers) segment, and the
        word in the report comes from the package, not from the data.

    Returns
    -------
    list of str
        Sorted, without duplicates.
    """
    found: set[str] = set()
    if "name" in patients.columns:
        names = patients["name"].dropna().astype(str).str.strip()
        names = set(names[names.str.len() >= min_name_length])
        found |= names - _windows(fixed_text, names) if fixed_text else names
    if "phone" in patients.columns:
        phones = patients["phone"].dropna().astype(str).str.strip()
        digits = phones.str.replace(r"\D", "", regex=True)
        found |= set(phones[digits.str.len() >= 9]) | set(digits[digits.str.len() >= 9])
    if "email" in patients.columns:
        emails = patients["email"].dropna().astype(str).str.strip()
        found |= set(emails[emails.str.contains("@", regex=False)])
    return sorted(v for v in found if v)


def _windows(text: str, words: set[str]) -> set[str]:
    """Every substring of `text` as long as some word of `words` and starting with a first letter of one."""
    lengths = {len(w) for w in words}
    first = {w[0] for w in words}
    starts = [i for i, ch in enumerate(text) if ch in first]
    return {text[i:i + n] for n in lengths for i in starts}


def fixed_report_text(notebooks: Iterable[str | Path] = ()) -> str:
    """The wording the report can contain regardless of the data.

    The text of the package's own files (``crm_analysis/**/*.py`` and
    ``*.yaml``: labels, rules, segment names) and the markdown cells of the
    notebooks (as stored; code cells are left out, so a notebook cannot
    whitelist a value by printing it literally). A name found in this text is
    a word of the report, not evidence of a leak.
    """
    package = Path(__file__).resolve().parent
    parts = [p.read_text(encoding="utf-8", errors="replace") for pattern in ("*.py", "*.yaml")
             for p in sorted(package.rglob(pattern))]
    for path in notebooks:
        try:
            cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            continue
        parts += ["".join(c.get("source", "")) if isinstance(c.get("source"), list) else str(c.get("source", ""))
                  for c in cells if c.get("cell_type") == "markdown"]
    return "\n".join(parts)


@dataclass(frozen=True)
class PrivacyHit:
    """A personal value found in a report artefact."""

    artefact: str
    kind: str
    value: str

    def masked(self) -> str:
        """The value with all but its first character hidden, safe to print in an error."""
        return self.value[:1] + "*" * (len(self.value) - 1)


def _kind(value: str) -> str:
    if "@" in value:
        return "email"
    return "phone" if re.fullmatch(r"[\d\-\s.+()]+", value) else "name"


#: Runs of digits with a separator between them (a space, a mark, or a mark with a space either side):
#: "010-1234-5678", "010 - 1234 - 5678", "(010) 1234.5678", "+82 10-1234-5678", "010/1234/5678".
#: Three or more spaces end a run (the padding between the columns of a printed table).
_DIGIT_RUN = re.compile(r"[0-9](?:\s?[.\-()/]?\s?[0-9]){8,}")


class _Needles:
    """Personal values prepared for fast search (sets, not one substring search per value)."""

    def __init__(self, values: Iterable[str]) -> None:
        self.names: dict[int, set[str]] = {}
        self.phones: set[str] = set()
        self.emails: set[str] = set()
        for value in values:
            kind = _kind(value)
            if kind == "email":
                self.emails.add(value.lower())
            elif kind == "phone":
                digits = re.sub(r"[^0-9]", "", unicodedata.normalize("NFKC", value))
                self.phones.add(digits)
                if digits.startswith("0"):  # the international form: +82 10-1234-5678
                    self.phones.add("82" + digits[1:])
            else:
                self.names.setdefault(len(value), set()).add(value)
        self.phone_lengths = sorted({len(p) for p in self.phones})
        self.first_chars = {name[0] for names in self.names.values() for name in names}
        # emails are found around each "@" (a regex for the whole address would miss one glued to the
        # surrounding words, as PDF text extraction often does)
        self.email_parts = sorted({(e.index("@"), len(e) - e.index("@") - 1) for e in self.emails})

    def find(self, text: str) -> list[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        if self.emails and "@" in text:
            lower = text.lower()
            for at in (m.start() for m in re.finditer("@", lower)):
                for before, after in self.email_parts:
                    if at >= before and lower[at - before:at + after + 1] in self.emails:
                        found.add(("email", text[at - before:at + after + 1]))
        for match in _DIGIT_RUN.finditer(unicodedata.normalize("NFKC", text)):
            digits = re.sub(r"[^0-9]", "", match.group(0))
            for n in self.phone_lengths:
                for i in range(len(digits) - n + 1):
                    if digits[i:i + n] in self.phones:
                        found.add(("phone", digits[i:i + n]))
        if self.names:
            starts = [i for i, ch in enumerate(text) if ch in self.first_chars]
            for n, names in self.names.items():
                for i in starts:
                    if text[i:i + n] in names:
                        found.add(("name", text[i:i + n]))
        return sorted(found)


def scan_text(text: str, values: Iterable[str] | _Needles, artefact: str = "text") -> list[PrivacyHit]:
    """Personal values that occur in `text`.

    Names and emails are matched exactly (emails ignoring case, also when glued
    to the words around them); phone numbers in any formatting: digits with a
    space, dot, dash, slash or bracket (with a space either side) between them, full-width
    digits, and the international form ``+82 10-...`` of a ``010-...`` number. The search uses sets, so scanning a report for every patient of a
    large clinic stays fast.

    Parameters
    ----------
    text : str
    values : iterable of str
        From :func:`personal_values`.
    artefact : str
        Name shown in the hits.

    Returns
    -------
    list of PrivacyHit
    """
    needles = values if isinstance(values, _Needles) else _Needles(values)
    if not text:
        return []
    return [PrivacyHit(artefact, kind, value) for kind, value in needles.find(text)]


_DATA_URI = re.compile(r"data:[\w/+.\-]+;base64,[A-Za-z0-9+/=\s]+")


def artefact_text(path: str | Path) -> str:
    """The text of a report artefact, as a reader or a search would see it.

    HTML, JSON, CSV and notebooks are read as text (a notebook's JSON holds
    every output); a PDF's text is extracted with PDFium (``pypdfium2``, fifteen times faster than pure-Python
    readers); Korean text inside JSON escapes is decoded, and so are HTML character references (a name
    shown escaped, such as ``O&#x27;Brien`` or ``&#44608;``, is still that name). Embedded base64 images
    (pictures, not text) are left out.
    """
    path = Path(path)
    if path.suffix.lower() == ".pdf":
        import pypdfium2

        document = pypdfium2.PdfDocument(str(path))
        try:
            return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
        finally:
            document.close()
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if path.suffix.lower() in (".json", ".ipynb"):
        try:
            data = json.loads(text)
        except ValueError:
            return _DATA_URI.sub("data:", text)
        if path.suffix.lower() == ".ipynb":
            _drop_images(data)
            return html.unescape(json.dumps(data, ensure_ascii=False))  # HTML outputs escape what they show
        return json.dumps(data, ensure_ascii=False)
    text = _DATA_URI.sub("data:", text)
    return html.unescape(text) if path.suffix.lower() in (".html", ".htm") else text


def _drop_images(notebook: dict) -> None:
    """Remove base64 image payloads (pictures, not text) from a notebook's JSON, in place."""
    for cell in notebook.get("cells", []):
        cell.pop("attachments", None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            for key in [k for k in data if k.startswith("image/") and k != "image/svg+xml"]:
                data[key] = ""


def scan_artefacts(paths: Iterable[str | Path], values: Iterable[str]) -> list[PrivacyHit]:
    """Scan every file in `paths` (see :func:`artefact_text`) for `values`.

    Returns
    -------
    list of PrivacyHit
        Empty when nothing personal was found.
    """
    needles = _Needles(values)
    hits: list[PrivacyHit] = []
    for path in paths:
        hits += scan_text(artefact_text(path), needles, artefact=Path(path).name)
    return hits
