"""Charts for the reports, with Korean text that renders.

matplotlib's default font has no Hangul, so Korean labels come out as empty
boxes (and a "Glyph ... missing" warning). :func:`use_korean_font` registers
the NanumGothic font shipped in the ``koreanize-matplotlib`` package and makes
it the default. The package is *not* imported (its import changes settings on
its own and imports the deprecated ``distutils``); only its font files are used.

The chart helpers draw on an existing Axes when given one, otherwise on a new
figure, and return the Axes. They change no global settings.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib as mpl
import pandas as pd
from matplotlib import dates as mdates
from matplotlib import font_manager
from matplotlib.ticker import MaxNLocator, PercentFormatter

from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.i18n import check_lang, label

__all__ = ["korean_font_path", "use_korean_font", "use_report_style", "figure_description", "describe_figures",
           "plot_monthly_coverage", "plot_missing_rates"]

_FONT_PACKAGE = "koreanize_matplotlib"
_FONT_FILES = {"regular": "NanumGothic.ttf", "bold": "NanumGothicBold.ttf"}


def korean_font_path(weight: str = "regular") -> Path:
    """Path of the bundled NanumGothic font file.

    The font ships with the ``koreanize-matplotlib`` package (a dependency of
    crm-analysis); the package is located without importing it.

    Parameters
    ----------
    weight : {"regular", "bold"}

    Returns
    -------
    pathlib.Path
        An existing ``.ttf`` file, usable by matplotlib or in a CSS
        ``@font-face`` rule.

    Raises
    ------
    ValueError
        If `weight` is not ``"regular"`` or ``"bold"``.
    CrmAnalysisError
        If the package or the font file is missing.

    See Also
    --------
    use_korean_font : make the font matplotlib's default.
    """
    if weight not in _FONT_FILES:
        raise ValueError(f"weight must be one of {', '.join(map(repr, _FONT_FILES))}, not {weight!r}")
    spec = importlib.util.find_spec(_FONT_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / "fonts" / _FONT_FILES[weight]
        if path.is_file():
            return path
    raise CrmAnalysisError(
        f"the Korean font {_FONT_FILES[weight]} was not found: it comes from the 'koreanize-matplotlib' package "
        f"(searched {', '.join(locations) or 'nowhere: the package is not installed'}). "
        "Reinstall crm-analysis with its dependencies, for example `pip install koreanize-matplotlib==0.1.1`."
    )


def use_korean_font() -> str:
    """Register NanumGothic with matplotlib and make it the default font.

    Sets ``font.family`` to NanumGothic and ``axes.unicode_minus`` to False
    (the font has no Unicode minus sign, so a hyphen is used). Calling it again
    does nothing more. Wrap the call in :func:`matplotlib.rc_context` to limit
    the settings to a block.

    Returns
    -------
    str
        The font family name set (``"NanumGothic"``).

    Raises
    ------
    CrmAnalysisError
        If the font is missing.

    See Also
    --------
    korean_font_path : where the font file is.
    """
    family = None
    for weight in _FONT_FILES:
        path = str(korean_font_path(weight))
        registered = [f for f in font_manager.fontManager.ttflist if f.fname == path]
        if not registered:
            font_manager.fontManager.addfont(path)
            registered = [f for f in font_manager.fontManager.ttflist if f.fname == path]
        if weight == "regular":
            family = registered[0].name
    mpl.rcParams["font.family"] = [family]
    mpl.rcParams["axes.unicode_minus"] = False
    return family


def figure_description(fig) -> str:
    """A chart's text alternative, read from the chart itself: its titles, then each axis' label.

    Parameters
    ----------
    fig : matplotlib.figure.Figure

    Returns
    -------
    str
        For example ``"월별 노쇼율 — x: 월; y: 노쇼율 (%)"``; ``"chart"`` for a chart with no text at all.
    """
    parts = []
    title = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    if title:
        parts.append(title)
    for ax in fig.axes:
        bits = [t for t in (ax.get_title(), ax.get_title("left"), ax.get_title("right")) if t]
        axes = [f"{name}: {text}" for name, text in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())) if text]
        legend = ax.get_legend()
        if legend is not None:
            entries = [t.get_text() for t in legend.get_texts() if t.get_text()]
            if entries:
                axes.append(", ".join(entries[:6]))
        text = " — ".join(t for t in (" / ".join(bits), "; ".join(axes)) if t)
        if text:
            parts.append(text)
    return " | ".join(p for p in parts if p) or "chart"


def describe_figures() -> None:
    """In a notebook: every chart shown from now on carries its :func:`figure_description` as its ``alt``
    (output metadata ``image/png: {alt: ...}``), which the report writes into the image's ``alt`` text.

    Does nothing outside IPython. Calling it again does nothing more.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the notebooks' dependencies
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "_crm_describes_figures", False):
        return
    import matplotlib.pyplot  # noqa: F401 - the inline backend registers its figure formatter on first use
    from matplotlib.figure import Figure

    def wrap(*_args) -> None:
        formatter = shell.display_formatter.formatters["image/png"]
        current = formatter.type_printers.get(Figure)
        if current is None or getattr(current, "describes", False):
            return

        def with_alt(fig):
            data = current(fig)
            return (data, {"alt": figure_description(fig)}) if data else data

        with_alt.describes = True
        formatter.for_type(Figure, with_alt)

    wrap()
    shell.events.register("pre_run_cell", wrap)  # the backend may reset its formatter when it is set up again
    shell._crm_describes_figures = True


def use_report_style() -> str:
    """:func:`use_korean_font`, and :func:`describe_figures`: what every report notebook calls first."""
    family = use_korean_font()
    describe_figures()
    return family


def _new_axes(ax, figsize: tuple[float, float]):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def plot_monthly_coverage(coverage: pd.DataFrame, lang: str = "ko", ax=None):
    """Line chart of rows per month, one line per table.

    Parameters
    ----------
    coverage : pandas.DataFrame
        From :func:`crm_analysis.quality.monthly_coverage`: monthly
        ``PeriodIndex`` (or month strings such as ``"2026-01"``), one count
        column per table.
    lang : {"ko", "en"}
        Language of the title, axis labels and legend.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If `lang` is not supported.
    """
    check_lang(lang)
    ax = _new_axes(ax, (9, 4))
    index = coverage.index
    x = index.to_timestamp() if isinstance(index, pd.PeriodIndex) else pd.to_datetime(pd.Index(index).astype(str))
    for column in coverage.columns:
        ax.plot(x, coverage[column].to_numpy(), marker="o", markersize=3, linewidth=1.5,
                label=_label_or_name(column, lang))
    if coverage.empty:
        ax.text(0.5, 0.5, label("no_dated_rows", lang), ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(loc="upper left", frameon=False, ncols=min(3, len(coverage.columns)))
    ax.set_title(label("coverage_title", lang))
    ax.set_xlabel(label("month", lang))
    ax.set_ylabel(label("coverage_ylabel", lang))
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    # About a dozen ticks: every 1..60 months, then whole decades for exports reaching back further.
    step = next((s for s in (1, 2, 3, 6, 12, 24, 60) if len(coverage) <= 12 * s), 120 * -(-len(coverage) // 1440))
    ax.xaxis.set_major_locator(mdates.MonthLocator(bymonth=range(1, 13, step)) if step < 12
                               else mdates.YearLocator(base=step // 12))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_missing_rates(rates: pd.DataFrame, lang: str = "ko", ax=None, top: int = 25):
    """Horizontal bars of the columns with the most missing values.

    Columns with nothing missing are left out.

    Parameters
    ----------
    rates : pandas.DataFrame
        From :func:`crm_analysis.quality.missing_rates` (needs ``missing_rate``
        and the label columns ``table_<lang>`` and ``column_<lang>``).
    lang : {"ko", "en"}
        Language of the labels.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.
    top : int
        Show at most this many columns, the most missing first.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If `lang` is not supported.
    """
    check_lang(lang)
    shown = rates[rates["missing_rate"] > 0].nlargest(top, "missing_rate", keep="first")
    ax = _new_axes(ax, (8, 1.2 + 0.28 * max(len(shown), 1)))
    names = (shown[f"table_{lang}"].astype(str) + " · " + shown[f"column_{lang}"].astype(str)).to_numpy()
    ax.barh(range(len(shown)), shown["missing_rate"].to_numpy(), color="#4C72B0")
    ax.set_yticks(range(len(shown)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(label("missing_xlabel", lang))
    ax.set_title(label("missing_title", lang))
    ax.grid(axis="x", alpha=0.3)
    if shown.empty:
        ax.text(0.5, 0.5, label("nothing_missing", lang), ha="center", va="center", transform=ax.transAxes)
    return ax


def _label_or_name(key: object, lang: str) -> str:
    try:
        return label(str(key), lang)
    except KeyError:
        return str(key)
