"""Parameters: defaults, overrides and validation."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from crm_analysis import synth
from crm_analysis.synth.params import SynthParams


def test_defaults_are_json_and_frozen():
    p = SynthParams()
    json.dumps(p.to_dict(), ensure_ascii=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.returns = None  # type: ignore[misc]


def test_nested_overrides():
    p = SynthParams().with_overrides({"returns": {"dropout_mass": 0.2},
                                      "noshow": {"reminder": {"1d": -0.9}},
                                      "visits": {"checkup_share": 0.1}})
    assert p.returns.dropout_mass == 0.2
    assert p.noshow.reminder == {"3d": -0.20, "1d": -0.9, "2h": -0.25}
    assert p.visits.checkup_share == 0.1
    assert SynthParams().returns.dropout_mass != 0.2  # defaults untouched


def test_unknown_parameter():
    with pytest.raises(ValueError, match=r"unknown parameter params\.returns\.nope"):
        SynthParams().with_overrides({"returns": {"nope": 1}})


def test_invalid_values():
    with pytest.raises(ValueError, match="dropout_mass"):
        SynthParams().with_overrides({"returns": {"dropout_mass": 1.5}}).validate()


def test_params_flow_into_truth():
    c = synth.generate_clinic(n_patients=300, seed=2, params={"returns": {"hazard_ratios": {"sex": {"F": 1.5}}}})
    assert c.params.returns.hazard_ratios["sex"]["F"] == 1.5
    assert c.truth["return_model"]["hazard_ratios"]["sex[F]"] == pytest.approx(1.5)
    assert c.truth["params"]["returns"]["hazard_ratios"]["sex"]["F"] == 1.5


def test_custom_window():
    c = synth.generate_clinic(n_patients=200, seed=1, start="2022-01-01", end="2022-12-31")
    v = c.tables["visits"]
    assert v["visit_date"].min() >= pd.Timestamp("2022-01-01")
    assert v["visit_date"].max() <= pd.Timestamp("2022-12-31")
    with pytest.raises(ValueError, match="must be after"):
        synth.generate_clinic(n_patients=10, start="2022-01-01", end="2021-01-01")
