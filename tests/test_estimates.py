"""The shared frozen Estimate result."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from crm_analysis.estimates import Estimate, estimates_frame


def _rd(**kw):
    base = dict(estimate=-0.05, ci_low=-0.09, ci_high=-0.01, p_value=0.012, method="Newcombe", n=1200,
                scale="risk_difference", estimand="reminder minus none", extras={"rate_control": 0.17})
    return Estimate(**{**base, **kw})


def test_fields_summary_and_contains():
    e = _rd()
    assert e.contains(-0.055) and e.contains(-0.09) and not e.contains(0.0)
    assert e.significant and e.null_value == 0.0
    row = e.summary()
    assert list(row.columns[:9]) == ["estimand", "scale", "estimate", "ci_low", "ci_high", "p_value", "n", "method",
                                     "conf_level"]
    assert row.loc[0, "rate_control"] == 0.17 and row.loc[0, "n"] == 1200 and len(row) == 1


def test_frozen_and_extras_read_only():
    e = _rd()
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.estimate = 0.0
    with pytest.raises(TypeError):
        e.extras["rate_control"] = 0.5


def test_none_becomes_nan_and_not_significant():
    e = _rd(p_value=None, ci_low=None, ci_high=None)
    assert math.isnan(e.p_value) and math.isnan(e.ci_low)
    assert not e.significant
    assert "–" in e._repr_html_()


def test_ratio_null_and_text():
    rr = _rd(estimate=0.7, ci_low=0.5, ci_high=1.1, scale="risk_ratio")
    assert rr.null_value == 1.0 and not rr.significant
    assert "risk_ratio 0.7 (95% CI 0.5 to 1.1, p=0.012; n=1,200; Newcombe)" in str(rr)
    html = _rd()._repr_html_()
    assert "-5.0%" in html and "95% CI" in html and "<table>" in html


@pytest.mark.parametrize("kw, match", [({"scale": "percent"}, "scale must be one of"),
                                       ({"conf_level": 95}, "conf_level must lie between 0 and 1")])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        _rd(**kw)


def test_estimates_frame_stacks_with_names():
    frame = estimates_frame({"pilot": _rd(), "adjusted": _rd(estimate=-0.08, extras={})})
    assert list(frame["name"]) == ["pilot", "adjusted"]
    assert frame.loc[1, "estimate"] == -0.08
    assert pd.isna(frame.loc[1, "rate_control"])
    assert estimates_frame([]).empty
