"""Numbers as the reports show them: one function, so every table, tile and sentence reads the same.

- counts with thousands separators (``13,612``);
- rates as percentages with one decimal (``9.4%``), differences of rates in
  percentage points (``-10.6%p``);
- money in won without decimals (``1,398,140,250원`` / ``KRW 1,398,140,250``),
  or compactly on a tile (``13.98억원`` / ``KRW 1.40bn``);
- other numbers with at most two decimals, whole ones without;
- yes / no as 예 / 아니오 (Yes / No);
- a missing value as a dash, a hidden small count as ``<5``.
"""

from __future__ import annotations

import math
from numbers import Number
from typing import Any

__all__ = ["format_number", "KINDS", "MISSING"]

#: What :func:`format_number` can show.
KINDS = ("auto", "count", "rate", "pp", "krw", "krw_compact", "number", "bool")
#: Shown for a missing value.
MISSING = "–"

_YES_NO = {"ko": ("예", "아니오"), "en": ("Yes", "No")}


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pd.NA (raises) and NaT
    except TypeError:
        return True


def format_number(value: Any, kind: str = "auto", lang: str = "ko", *, hidden_below: int | None = None) -> str:
    """`value` as text for a report.

    Parameters
    ----------
    value : number, bool or None
    kind : str
        One of :data:`KINDS`. ``auto``: booleans as yes / no, whole numbers as counts, others with at most
        two decimals.
    lang : {"ko", "en"}
    hidden_below : int, optional
        The suppression threshold: a missing *count* is then shown as ``<hidden_below`` (it was hidden),
        not as a dash.

    Returns
    -------
    str

    Examples
    --------
    >>> format_number(13612), format_number(0.0939, "rate"), format_number(-0.1057, "pp")
    ('13,612', '9.4%', '-10.6%p')
    >>> format_number(43.4), format_number(True), format_number(None, "count", hidden_below=5)
    ('43.4', '예', '<5')
    >>> format_number(1398140250, "krw_compact"), format_number(1398140250, "krw", "en")
    ('13.98억원', 'KRW 1,398,140,250')
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if isinstance(value, bool) or (kind == "bool" and not _missing(value)):
        yes, no = _YES_NO.get(lang, _YES_NO["en"])
        return yes if bool(value) else no
    if _missing(value):
        return f"<{hidden_below}" if hidden_below and kind in ("count", "auto") else MISSING
    if not isinstance(value, Number):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return str(value)
    value = float(value) if not isinstance(value, int) else value
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if kind == "rate":
        return f"{value:.1%}"
    if kind == "pp":
        return f"{value * 100:+.1f}%p"
    if kind == "krw":
        return f"{value:,.0f}원" if lang == "ko" else f"KRW {value:,.0f}"
    if kind == "krw_compact":
        if lang == "ko":
            if abs(value) >= 1e8:
                return f"{value / 1e8:,.2f}억원"
            if abs(value) >= 1e4:
                return f"{value / 1e4:,.0f}만원"
            return f"{value:,.0f}원"
        for size, unit in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
            if abs(value) >= size:
                return f"KRW {value / size:,.2f}{unit}"
        return f"KRW {value:,.0f}"
    if kind == "count" or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else f"{value:,.0f}"
