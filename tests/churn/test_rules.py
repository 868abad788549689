"""Churn rules: shipped defaults, overrides by dict and YAML, clear errors."""

from __future__ import annotations

import pytest

from crm_analysis.churn import load_churn_rules
from crm_analysis.exceptions import CrmAnalysisError


def test_defaults_and_overrides(tmp_path):
    rules = load_churn_rules()
    assert rules["churn"]["max_return_probability"] == 0.2 and tuple(rules["recall"]["band"]) == (0.2, 0.6)
    assert load_churn_rules(rules) is rules
    merged = load_churn_rules({"recall": {"band": [0.1, 0.4]}})
    assert tuple(merged["recall"]["band"]) == (0.1, 0.4) and merged["recall"]["contacted_within_days"] == 30
    path = tmp_path / "churn.yaml"
    path.write_text("churn:\n  horizon_days: 90\n", encoding="utf-8")
    assert load_churn_rules(path)["churn"]["horizon_days"] == 90


@pytest.mark.parametrize("override, message", [
    ({"recal": {}}, "unknown churn rule 'recal'"),
    ({"recall": {"band": [0.6, 0.2]}}, "recall.band must have low < high"),
    ({"recall": {"band": [0.2]}}, r"recall.band must be two probabilities"),
    ({"churn": {"max_return_probability": 2}}, "churn.max_return_probability must be a probability"),
    ({"recall": {"rank_by": ["age"]}}, "recall.rank_by must list some of"),
    ({"model": {"covariates": "all"}}, "model.covariates must be 'prediction' or 'truth'"),
    ({"churn": {"max_calibration_error": -0.1}}, "churn.max_calibration_error must be a probability"),
    ({"model": {"tail": "yes"}}, "model.tail must be true or false"),
    ({"model": {"tail_start_quantile": 1}}, "model.tail_start_quantile must be a number between 0 and 1"),
    ({"model": {"tail_min_at_risk": 0}}, "model.tail_min_at_risk must be a whole number of gaps >= 1"),
])
def test_bad_rules_name_the_key(override, message):
    with pytest.raises(CrmAnalysisError, match=message):
        load_churn_rules(override)


def test_missing_file(tmp_path):
    with pytest.raises(CrmAnalysisError, match="does not exist"):
        load_churn_rules(tmp_path / "nope.yaml")
