"""Report sections: thin data skips a section with its reason; any other error still fails."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402

from crm_analysis.exceptions import InsufficientDataError  # noqa: E402
from crm_analysis.report import sections  # noqa: E402
from crm_analysis.report.sections import METADATA_KEY, section, skip_note, skipped_sections  # noqa: E402


def _thin() -> InsufficientDataError:
    return InsufficientDataError("clv", "Lifetime value (CLV): not enough data — it needs 6 months.",
                                 "생애가치(CLV): 자료가 부족해 분석하지 못했습니다 — 6개월 필요.")


def test_thin_data_is_shown_instead_of_raised_and_half_drawn_charts_are_dropped(capsys):
    sections._SHOWN.clear()
    before = set(plt.get_fignums())
    with section("en"):
        plt.figure()
        raise _thin()
    assert set(plt.get_fignums()) == before
    assert "Section skipped: Lifetime value (CLV): not enough data" in capsys.readouterr().out


def test_any_other_error_still_fails_the_section():
    with pytest.raises(KeyError), section("ko"):
        raise KeyError("a bug")
    with pytest.raises(ValueError, match="lang"), section("fr"):
        pass


def test_skipped_sections_are_read_back_from_an_executed_notebook(tmp_path):
    data, meta = skip_note(_thin(), "ko")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("display_data", data=data, metadata=meta),
        nbformat.v4.new_output("display_data", data=data, metadata=meta)])])  # the same reason twice: listed once
    path = tmp_path / "10_segmentation.ipynb"
    nbformat.write(nb, path)
    assert skipped_sections(path) == [{"notebook": "10_segmentation.ipynb", "analysis": "clv",
                                       "reason": "Lifetime value (CLV): not enough data — it needs 6 months."}]
    assert meta[METADATA_KEY]["reason_ko"].startswith("생애가치")
