"""Korean and English labels for report tables and chart text.

Reports are Korean by default; English is the alternative. Labels are data:
:data:`LABELS` maps a key (usually a DataFrame column name used by an
analysis function) to its Korean and English text. The keys live in YAML
files under ``crm_analysis/labels/``, one file per concept; add keys to the
file of the analysis that needs them.

Table and column names of the data contract are labelled from
:mod:`crm_analysis.contract` by :func:`table_label` and :func:`column_label`,
so they are never repeated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path

import pandas as pd

from crm_analysis.cells import escaped_style
from crm_analysis.contract import TABLES
from crm_analysis.number_format import format_number
from crm_analysis.rule_files import parse_yaml

__all__ = [
    "LANGS",
    "LABELS",
    "check_lang",
    "label",
    "table_label",
    "column_label",
    "localise_columns",
    "localised_view",
]

#: Supported report languages; the first is the default.
LANGS: tuple[str, ...] = ("ko", "en")

class _Labels(Mapping):
    """All labels, read once from ``crm_analysis/labels/*.yaml`` on first use.

    One YAML file per concept (``quality.yaml``, ``segmentation.yaml``, ...),
    each ``key: {ko: ..., en: ...}``. A key defined in two files is an error.
    """

    def __init__(self) -> None:
        self._data: dict[str, Mapping[str, str]] | None = None

    def _load(self) -> dict[str, Mapping[str, str]]:
        if self._data is None:
            merged: dict[str, Mapping[str, str]] = {}
            origin: dict[str, str] = {}
            for path in sorted(_LABEL_DIR.glob("*.yaml")):
                entries = parse_yaml(path.read_text(encoding="utf-8")) or {}
                for key, entry in entries.items():
                    key = str(key)
                    if key in merged:
                        raise ValueError(f"label {key!r} is defined in both {origin[key]} and {path.name}")
                    if not isinstance(entry, Mapping) or set(entry) != set(LANGS):
                        raise ValueError(f"label {key!r} in {path.name} needs exactly the languages {LANGS}")
                    merged[key], origin[key] = {lang: str(entry[lang]) for lang in LANGS}, path.name
            self._data = merged
        return self._data

    def __getitem__(self, key: str) -> Mapping[str, str]:
        return self._load()[key]

    def __iter__(self):
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


_LABEL_DIR = Path(__file__).resolve().parent / "labels"

#: Key -> {"ko": ..., "en": ...}, from ``crm_analysis/labels/*.yaml``.
LABELS: Mapping[str, Mapping[str, str]] = _Labels()


def check_lang(lang: str) -> str:
    """Return `lang` if it is supported.

    Raises
    ------
    ValueError
        If `lang` is not one of :data:`LANGS`.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(map(repr, LANGS))}, not {lang!r}")
    return lang


def label(key: str, lang: str = "ko") -> str:
    """The label of `key` in `lang`.

    Parameters
    ----------
    key : str
        A key of :data:`LABELS`.
    lang : {"ko", "en"}
        Language.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If `lang` is not supported.
    KeyError
        If `key` has no label; add it to :data:`LABELS`.

    Examples
    --------
    >>> label("missing_rate", "ko")
    '결측률'
    >>> label("missing_rate", "en")
    'share missing'
    """
    check_lang(lang)
    try:
        return LABELS[key][lang]
    except KeyError:
        raise KeyError(f"no label for {key!r}; add it to a file in crm_analysis/labels/") from None


def table_label(name: str, lang: str = "ko") -> str:
    """The label of contract table `name` (the name itself if it is not a contract table).

    See Also
    --------
    column_label : labels of contract columns.
    """
    check_lang(lang)
    table = TABLES.get(name)
    return getattr(table, lang) if table is not None else name


def column_label(table: str, column: str, lang: str = "ko") -> str:
    """The label of `column` of contract table `table` (the name itself if unknown)."""
    check_lang(lang)
    contract = TABLES.get(table)
    if contract is None or column not in contract.column_names:
        return column
    return getattr(contract.column(column), lang)


def localise_columns(df: pd.DataFrame, lang: str = "ko") -> pd.DataFrame:
    """A copy of `df` with headers in `lang`, ready to display.

    Two rules, kept simple:

    1. **Label pairs.** Analysis functions give contract names in a column
       ``x`` with companions ``x_ko`` and ``x_en`` holding the labels. Only the
       companion in `lang` is kept, under the header ``label(x)``.
    2. **Headers.** Every other column name (and the index and columns names)
       found in :data:`LABELS` is translated; unknown names are kept as they are.

    The input is not modified.

    Parameters
    ----------
    df : pandas.DataFrame
    lang : {"ko", "en"}

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ValueError
        If `lang` is not supported.

    Examples
    --------
    >>> frame = pd.DataFrame({"table": ["visits"], "table_ko": ["내원"], "table_en": ["visits"], "rows": [3]})
    >>> list(localise_columns(frame, "ko").columns)
    ['테이블', '행 수']
    """
    check_lang(lang)
    other = next(x for x in LANGS if x != lang)
    columns = [str(c) for c in df.columns]
    drop, rename = [], {}
    for col in columns:
        if f"{col}_{lang}" in columns and f"{col}_{other}" in columns:
            drop += [col, f"{col}_{other}"]
            rename[f"{col}_{lang}"] = _maybe_label(col, lang)
    for col in columns:
        if col not in drop and col not in rename:
            rename[col] = _maybe_label(col, lang)
    out = df.drop(columns=drop).rename(columns=rename)
    out.index = out.index.rename(_maybe_label(out.index.name, lang) if out.index.name else out.index.name)
    if out.columns.name:
        out.columns.name = _maybe_label(out.columns.name, lang)
    return out


def localised_view(df: pd.DataFrame, lang: str = "ko"):
    """A display-ready view of `df`: localised headers and readable numbers.

    Headers follow :func:`localise_columns`. Numbers go through
    :func:`crm_analysis.number_format.format_number`: columns ending in
    ``_rate`` as percentages with one decimal, whole numbers with thousands
    separators, other numbers with at most two decimals, yes/no as 예/아니오
    (Yes/No), missing values as a dash. A table can name the kind of its columns in
    ``df.attrs["kinds"]`` (column -> a kind of ``format_number``, such as
    ``{"camp_return_sent": "rate"}``).

    Integer columns, and those of kind ``count``, are counts: a missing one
    was hidden by :func:`crm_analysis.privacy.suppress_small_counts` and reads
    ``<5``, and :func:`crm_analysis.cells.escaped_style` marks them for the
    report's checks. Every row is shown (no truncation), a plain 0, 1, 2, ...
    index is hidden, and the values of a ``level`` column (finding levels) are
    translated. Every value, header and label is HTML-escaped.

    Parameters
    ----------
    df : pandas.DataFrame
    lang : {"ko", "en"}

    Returns
    -------
    pandas.io.formats.style.Styler
        Displays as an HTML table in a notebook.
    """
    check_lang(lang)
    shown = df
    if "level" in df.columns:
        shown = df.assign(level=df["level"].map(lambda v: _maybe_label(f"{v}_level", lang, default=v)))
    kinds = {c: "rate" for c in df.columns if str(c).endswith("_rate")}
    kinds.update({c: "count" for c in df.columns if pd.api.types.is_integer_dtype(df[c].dtype)})
    kinds.update(df.attrs.get("kinds", {}))
    view = localise_columns(shown, lang)
    names = {_maybe_label(c, lang): kind for c, kind in kinds.items()}
    counts = [c for c, kind in names.items() if kind == "count" and c in view.columns]
    formats = {c: partial(format_number, kind=kind, lang=lang) for c, kind in names.items()
               if kind != "count" and c in view.columns}
    styler = escaped_style(view, formats, lang=lang, counts=counts)
    if isinstance(view.index, pd.RangeIndex) and view.index.name is None:
        styler = styler.hide(axis="index")
    return styler


def _maybe_label(key: object, lang: str, default: object = None) -> object:
    entry = LABELS.get(str(key))
    if entry is None:
        return key if default is None else default
    return entry[lang]
