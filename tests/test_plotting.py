"""Korean text renders, and the chart helpers draw what they are given.

The font tests render to PNG with the Agg backend and turn warnings into
errors: matplotlib warns "Glyph ... missing from font(s)" when a character
cannot be drawn, so a Korean label without the Korean font fails the test.
A control test checks that the same figure *does* warn under the default font,
so the detection itself is known to work. Every test restores matplotlib's
settings (``rc_context``).
"""

from __future__ import annotations

import io
import warnings

import matplotlib as mpl
import pandas as pd
import pytest
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from crm_analysis import CrmAnalysisError
from crm_analysis import plotting
from crm_analysis.plotting import korean_font_path, plot_missing_rates, plot_monthly_coverage, use_korean_font

KOREAN = "월별 내원 건수 — 환자 결측률"


def _render_korean_png() -> bytes:
    fig = Figure(figsize=(4, 3))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([-2, -1, 0, 1], [-3, 1, -1, 2])  # negative tick labels: the minus sign must render too
    ax.set_title(KOREAN)
    ax.set_xlabel("진료과")
    ax.legend(["신환"])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def restore_rcparams():
    with mpl.rc_context():
        yield


# --------------------------------------------------------------------------- the font

@pytest.mark.parametrize("weight", ["regular", "bold"])
def test_font_file_exists(weight):
    path = korean_font_path(weight)
    assert path.is_file() and path.suffix == ".ttf"
    assert path.parent.name == "fonts"


def test_font_path_rejects_unknown_weight():
    with pytest.raises(ValueError, match="weight must be one of"):
        korean_font_path("heavy")


def test_missing_font_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(plotting.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CrmAnalysisError, match="koreanize-matplotlib"):
        korean_font_path()
    with pytest.raises(CrmAnalysisError, match="not installed"):
        use_korean_font()


def test_korean_font_renders_without_missing_glyphs():
    assert use_korean_font() == "NanumGothic"
    assert mpl.rcParams["font.family"] == ["NanumGothic"]
    assert mpl.rcParams["axes.unicode_minus"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = _render_korean_png()
    assert png.startswith(b"\x89PNG")


def test_control_default_font_does_warn():
    """Without the Korean font the same figure warns: the test above would catch a regression."""
    mpl.rcParams["font.family"] = ["DejaVu Sans"]
    with pytest.warns(UserWarning, match="Glyph .* missing"):
        _render_korean_png()


def test_use_korean_font_is_idempotent():
    use_korean_font()
    before = len(font_manager.fontManager.ttflist)
    assert use_korean_font() == "NanumGothic"
    assert len(font_manager.fontManager.ttflist) == before
    regular = str(korean_font_path())
    assert font_manager.findfont("NanumGothic", fallback_to_default=False) == regular


# --------------------------------------------------------------------------- chart helpers

COVERAGE = pd.DataFrame({"new_patients": [1, 2, 0], "visits": [1, 3, 0]},
                        index=pd.period_range("2026-01", "2026-03", freq="M", name="month"))

RATES = pd.DataFrame({
    "table": ["patients", "visits", "patients", "visits"],
    "table_ko": ["환자", "내원", "환자", "내원"], "table_en": ["patients", "visits", "patients", "visits"],
    "column": ["phone", "department", "sex", "visit_id"],
    "column_ko": ["휴대전화", "진료과", "성별", "내원번호"],
    "column_en": ["mobile phone", "department", "sex", "visit id"],
    "n_rows": [3, 4, 3, 4], "n_missing": [2, 1, 1, 0], "missing_rate": [2 / 3, 0.25, 1 / 3, 0.0],
})


def _axes():
    fig = Figure()
    FigureCanvasAgg(fig)
    return fig.add_subplot()


@pytest.mark.parametrize("lang, title, legend", [("ko", "월별 데이터 건수", ["신환(초진)", "내원"]),
                                                 ("en", "Rows per month", ["new patients", "visits"])])
def test_plot_monthly_coverage(lang, title, legend):
    ax = _axes()
    assert plot_monthly_coverage(COVERAGE, lang=lang, ax=ax) is ax
    assert ax.get_title() == title
    assert [t.get_text() for t in ax.get_legend().get_texts()] == legend
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[1, 2, 0], [1, 3, 0]]


def test_plot_monthly_coverage_accepts_month_strings_and_empty():
    ax = plot_monthly_coverage(COVERAGE.set_axis(["2026-01", "2026-02", "2026-03"]), lang="en", ax=_axes())
    assert len(ax.get_lines()) == 2
    empty = plot_monthly_coverage(COVERAGE.iloc[:0], lang="en", ax=_axes())
    assert [t.get_text() for t in empty.texts] == ["No dated rows"]


def test_plot_missing_rates_highest_first_without_complete_columns():
    ax = plot_missing_rates(RATES, lang="ko", ax=_axes())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["환자 · 휴대전화", "환자 · 성별", "내원 · 진료과"]
    assert [round(p.get_width(), 4) for p in ax.patches] == [0.6667, 0.3333, 0.25]
    top = plot_missing_rates(RATES, lang="en", ax=_axes(), top=1)
    assert [t.get_text() for t in top.get_yticklabels()] == ["patients · mobile phone"]


def test_plot_missing_rates_nothing_missing():
    ax = plot_missing_rates(RATES.assign(missing_rate=0.0), lang="ko", ax=_axes())
    assert [t.get_text() for t in ax.texts] == ["결측값이 없습니다"]


def test_chart_helpers_change_no_settings_and_reject_unknown_lang():
    before = dict(mpl.rcParams)
    plot_monthly_coverage(COVERAGE, ax=_axes())
    plot_missing_rates(RATES, ax=_axes())
    assert dict(mpl.rcParams) == before
    with pytest.raises(ValueError, match="lang must be one of"):
        plot_monthly_coverage(COVERAGE, lang="fr", ax=_axes())
    with pytest.raises(ValueError, match="lang must be one of"):
        plot_missing_rates(RATES, lang="fr", ax=_axes())


def test_new_figure_when_no_axes_given():
    import matplotlib.pyplot as plt

    ax = plot_missing_rates(RATES, lang="en")
    try:
        assert ax.figure.get_size_inches()[1] > 1
    finally:
        plt.close(ax.figure)
