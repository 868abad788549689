"""churn_view: localised headers and formats, nothing added or dropped."""

from __future__ import annotations

import pandas as pd

from crm_analysis.churn import churn_view


def test_headers_models_and_percentages():
    table = pd.DataFrame({"model": ["cox", "rule_180d"], "c_index": [0.81, 0.7], "churn_rate": [0.25, 0.5],
                          "patients": [120, 40], "median_days": [6.0, 12.0]})
    html = churn_view(table, "ko").to_html()
    assert "Cox 모형" in html and "180일 고정 규칙" in html and "이탈률" in html and "25.0%" in html
    assert ">6<" in html and "120" in html
    en = churn_view(table, "en").to_html()
    assert "fixed 180-day rule" in en and "churn rate" in en and "C-index" in en
    assert len(churn_view(table, "en").data) == len(table) and list(table["model"]) == ["cox", "rule_180d"]
