"""Out-of-time back-tests: the risk model against its two baselines, on the demo clinic and on Kaggle."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from crm_analysis.exceptions import InsufficientDataError
from crm_analysis.noshow import auc, brier, decile_table, noshow_backtest

DEMO_SPLIT = "2026-03-01"
KAGGLE_SPLIT = "2016-05-20"


@pytest.fixture(scope="module")
def demo_backtest(ns_table):
    return noshow_backtest(ns_table, DEMO_SPLIT)


@pytest.fixture(scope="module")
def kaggle_backtest(kaggle_clinic):
    return noshow_backtest(kaggle_clinic, KAGGLE_SPLIT, as_of="2016-06-08")


def _show(name, result):
    print(f"\n[{name}] fitted before {result.split_date:%Y-%m-%d} on {result.n_train:,} appointments, scored "
          f"{result.n_test:,} ({result.observed_rate:.1%} no-shows); left out: {dict(result.dropped) or 'none'}")
    print(result.summary().round(4).to_string(index=False))


def _beats_baselines(result):
    t = result.summary().set_index("model")
    for baseline in ("prior_no_shows", "lead_time"):
        assert t.loc["risk_model", "auc"] > t.loc[baseline, "auc"], baseline
        assert t.loc["risk_model", "brier"] < t.loc[baseline, "brier"], baseline


def test_metrics_on_a_hand_computed_example():
    p, y = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
    assert auc(p, y) == pytest.approx(0.75)  # pairs (no-show, attended) ranked right: 3 of 4
    assert auc([0.5] * 4, y) == pytest.approx(0.5)
    assert brier(p, y) == pytest.approx(np.mean([0.01, 0.16, 0.4225, 0.04]))
    d = decile_table(p, y, n_bins=2)
    assert d["n"].tolist() == [2, 2] and d["observed"].tolist() == [0.5, 0.5]
    assert d["predicted"].tolist() == pytest.approx([0.225, 0.6])


def test_spline_model_beats_both_baselines_on_the_demo_clinic(demo_backtest):
    _show("demo clinic, 1,500 patients", demo_backtest)
    _beats_baselines(demo_backtest)
    assert demo_backtest.n_test == int((demo_backtest.summary()["n"]).iloc[0])
    assert not demo_backtest.dropped  # the demo has every feature


def test_only_appointments_with_a_known_outcome_are_scored(demo_backtest, ns_table):
    split = pd.Timestamp(DEMO_SPLIT)
    known = ns_table["no_show"].notna()
    assert demo_backtest.n_test == int((known & (ns_table["scheduled_at"] >= split)).sum())
    assert demo_backtest.n_train == int((known & (ns_table["scheduled_at"] < split)).sum())


def test_deciles_rank_and_calibrate(demo_backtest):
    d = demo_backtest.deciles
    assert d["decile"].tolist() == list(range(1, 11)) and d["n"].sum() == demo_backtest.n_test
    assert d["observed"].iloc[-1] > 3 * d["observed"].iloc[0]
    assert (d["predicted"] - d["observed"]).abs().max() < 0.06


def test_spline_model_beats_both_baselines_on_kaggle(kaggle_backtest):
    _show("Kaggle 2016", kaggle_backtest)
    _beats_baselines(kaggle_backtest)
    # Days only, one clinic department, no cancellations: those features are left out, and said so.
    assert {"hour", "department", "prior_cancellations"} <= set(kaggle_backtest.dropped)
    assert "department" in kaggle_backtest._repr_html_()


@pytest.mark.parametrize("lang, xlabel, ylabel", [("en", "predicted-risk decile (1 = lowest)", "no-show rate (%)"),
                                                  ("ko", "예측 위험 십분위 (1 = 가장 낮음)", "노쇼율 (%)")])
def test_plot_deciles_has_labelled_axes(demo_backtest, lang, xlabel, ylabel):
    import matplotlib.pyplot as plt

    ax = demo_backtest.plot_deciles(lang=lang)
    try:
        assert ax.get_xlabel() == xlabel and ax.get_ylabel() == ylabel
        assert DEMO_SPLIT in ax.get_title()
        assert len(ax.patches) == 10
    finally:
        plt.close(ax.figure)


def test_result_has_summary_and_html(demo_backtest):
    assert list(demo_backtest.summary()["model"]) == ["risk_model", "prior_no_shows", "lead_time"]
    html = demo_backtest._repr_html_()
    assert "<table" in html and "risk_model" in html
    assert demo_backtest.metric("risk_model", "auc") == demo_backtest.summary()["auc"].iloc[0]


def test_a_split_after_the_data_raises(ns_table):
    with pytest.raises(InsufficientDataError, match="choose an earlier split date"):
        noshow_backtest(ns_table, "2027-01-01")
