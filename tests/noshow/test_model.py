"""The risk model: truth recovery on the demo clinic, summary, prediction, reasons, thin data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.noshow import NoShowRiskModel
from tests.noshow.conftest import TRUE_FORM


@pytest.fixture(scope="module")
def truth_model(ns_table):
    return NoShowRiskModel(TRUE_FORM).fit(ns_table)


def test_true_form_covers_the_true_lead_and_prior_effects(truth_model, ns_truth):
    s = truth_model.summary
    rows = {"b_lead": "np.log1p(lead_days)", "b_prior": "np.minimum(prior_no_shows, 3)"}
    for key, term in rows.items():
        est, lo, hi = s.loc[term, ["coef", "lower", "upper"]]
        print(f"\n{key}: truth {ns_truth[key]:.3f}, estimate {est:.3f} (95% CI {lo:.3f} to {hi:.3f})")
        assert lo <= ns_truth[key] <= hi
        assert hi - lo < 0.15


def test_true_form_recovers_the_department_effects(truth_model, ns_truth):
    """Each department's 95 % CI (Bonferroni over the 7) covers the truth, and a joint Wald test does not reject."""
    dept = {k: v for k, v in ns_truth["department"].items() if k != "내과"}
    terms = [f"C(department, Treatment('내과'))[T.{d}]" for d in dept]
    b = truth_model.params_[terms].to_numpy()
    diff = b - np.array(list(dept.values()))
    cov = truth_model.cov_.loc[terms, terms].to_numpy()
    z = stats.norm.ppf(1 - 0.025 / len(terms))
    se = np.sqrt(np.diag(cov))
    for d, e, s, t in zip(dept, b, se, dept.values()):
        print(f"{d}: truth {t:+.2f}, estimate {e:+.3f} ± {z * s:.3f}")
    assert np.all(np.abs(diff) <= z * se)
    wald = float(diff @ np.linalg.solve(cov, diff))
    p = stats.chi2.sf(wald, len(terms))
    print(f"joint Wald test of the department effects against the truth: chi2={wald:.2f}, p={p:.3f}")
    assert p > 0.01


def test_fit_returns_self_with_a_summary(ns_table):
    model = NoShowRiskModel(features=("lead", "prior_no_shows"))
    assert model.fit(ns_table) is model
    s = model.summary
    assert {"coef", "se", "lower", "upper", "p", "odds_ratio", "or_lower", "or_upper"} <= set(s.columns)
    assert np.allclose(s["odds_ratio"], np.exp(s["coef"]))
    assert model.n_ == int(ns_table["no_show"].notna().sum())
    assert "<h4>No-show risk model" in model._repr_html_()


def test_predictions_are_probabilities_with_the_observed_mean(ns_model, ns_table):
    known = ns_table.loc[ns_table["no_show"].notna()]
    p = ns_model.predict(known)
    assert p.index.equals(known.index) and p.between(0, 1).all()
    assert abs(p.mean() - known["no_show"].mean()) < 0.002  # logistic regression: the means match
    deciles = ns_model.risk_decile(p)
    assert deciles.min() == 1 and deciles.max() == 10
    assert np.isfinite(ns_model.summary["se"]).all() and (ns_model.summary["se"] < 5).all()


def test_prediction_copes_with_unseen_levels_and_out_of_range_values(ns_model, ns_table):
    odd = ns_table.head(5).copy()
    odd["department"] = "치과"
    odd["lead_days"] = 400
    odd["log_lead"] = np.log1p(400)
    odd["age"] = np.nan
    p = ns_model.predict(odd)
    assert p.notna().all() and p.between(0, 1).all()


def test_reasons_name_the_feature_that_raises_the_risk_most(ns_model, ns_table):
    known = ns_table.loc[ns_table["no_show"].notna()]
    contrib = ns_model.contributions(known)
    ko, en = ns_model.reasons(known, "ko"), ns_model.reasons(known, "en")
    assert ko.index.equals(known.index) and ko.map(type).eq(str).all()
    many = known.index[(contrib.idxmax(axis=1) == "prior_no_shows") & (contrib.max(axis=1) > 0)
                       & (known["prior_no_shows"] == 2)]
    assert len(many)
    assert set(ko[many]) == {"이전 노쇼 2회"} and set(en[many]) == {"2 earlier no-shows"}
    lead = known.index[(contrib.idxmax(axis=1) == "lead") & (contrib.max(axis=1) > 0)]
    row = lead[0]
    assert ko[row] == f"예약 후 {known.loc[row, 'lead_days']}일 뒤 진료"
    assert en[row] == f"booked {known.loc[row, 'lead_days']} days ahead"
    none = known.index[contrib.max(axis=1) <= 0]
    assert set(en[none]) <= {"no risk factor above average"}
    print("\nreasons, most frequent:\n" + en.value_counts().head(8).to_string())


def test_constant_and_missing_features_are_dropped_and_reported(ns_table):
    t = ns_table.copy()
    t["department"] = "unknown"
    t["hour_band"] = "unknown"
    t["age"] = np.nan
    model = NoShowRiskModel().fit(t)
    assert set(model.dropped_) == {"department", "hour", "age"}
    assert "one value only" in model.dropped_["department"] and "missing" in model.dropped_["age"]
    assert "department" not in model.formula_
    assert ns_table["department"].nunique() > 1  # the input was not modified


def test_thin_data_raises_insufficient_data(ns_table):
    with pytest.raises(InsufficientDataError, match="at least 200 attended or missed appointments"):
        NoShowRiskModel().fit(ns_table.head(150))


def test_unknown_feature_names_are_refused(ns_table):
    with pytest.raises(ValueError, match="unknown features"):
        NoShowRiskModel(features=("weather",)).fit(ns_table)
