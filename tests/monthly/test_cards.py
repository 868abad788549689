"""The month's no-show scores behind the caller-ID cards, for a clinic above the sampling limit too."""

from __future__ import annotations

import pandas as pd

from crm_analysis.monthly.cards import month_scores
from tests.conftest import DEMO_END


def test_a_model_fitted_on_a_patient_sample_still_scores_every_appointment_ahead(demo_clinic):
    full = month_scores(demo_clinic, pd.Timestamp(DEMO_END))
    n = len(demo_clinic.patients)
    sampled = month_scores(demo_clinic, pd.Timestamp(DEMO_END), rules={"model": {"max_patients": n // 2}})
    assert full is not None and sampled is not None and len(full) > 100
    assert set(sampled.index) == set(full.index) and list(sampled.columns) == list(full.columns)
    both = full[["no_show_risk"]].join(sampled[["no_show_risk"]], rsuffix="_sampled")
    rank = both.corr(method="spearman").iloc[0, 1]
    print(f"{len(full):,} appointments ahead; risks from the half-sample's model vs all patients': Spearman {rank:.3f}, "
          f"mean {both['no_show_risk_sampled'].mean():.4f} vs {both['no_show_risk'].mean():.4f}")
    assert rank > 0.9
    assert abs(both["no_show_risk_sampled"].mean() - both["no_show_risk"].mean()) < 0.02
    assert sampled["risk_decile"].between(1, 10).all() and sampled["risk_reason"].str.len().gt(0).all()


def test_scoring_in_batches_of_patients_gives_the_same_scores(demo_clinic, monkeypatch):
    from crm_analysis.monthly import cards

    n = len(demo_clinic.patients)
    whole = month_scores(demo_clinic, pd.Timestamp(DEMO_END), rules={"model": {"max_patients": n // 2}})
    monkeypatch.setattr(cards, "SCORE_BATCH", 17)  # many batches of a few patients
    batched = month_scores(demo_clinic, pd.Timestamp(DEMO_END), rules={"model": {"max_patients": n // 2}})
    pd.testing.assert_frame_equal(batched.sort_index(), whole.sort_index())
    assert batched["no_show_risk"].is_monotonic_decreasing
