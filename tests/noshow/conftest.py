"""Module fixtures for the no-show risk tests: the small demo clinic's table and fitted models, Kaggle."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_END, KAGGLE_NOSHOW, PROJECT_ROOT

#: The demo generator's true no-show logit, written as a formula on the table's columns (references: 내과 and
#: May, whose true effects are 0).
TRUE_FORM = ("np.log1p(lead_days) + np.minimum(prior_no_shows, 3) + C(department, Treatment('내과'))"
             " + C(month_of_year, Treatment('05')) + years + rem_3d + rem_1d + rem_2h")


@pytest.fixture(scope="session")
def ns_table(generated_clinic):
    from crm_analysis.noshow import noshow_table

    return noshow_table(generated_clinic, DEMO_END)


@pytest.fixture(scope="session")
def ns_model(ns_table):
    from crm_analysis.noshow import NoShowRiskModel

    return NoShowRiskModel().fit(ns_table)


@pytest.fixture(scope="session")
def ns_truth(demo_synth):
    """truth["appointments"]["no_show_model"] of the small demo clinic."""
    return demo_synth.truth["appointments"]["no_show_model"]


@pytest.fixture(scope="session")
def kaggle_clinic():
    if not KAGGLE_NOSHOW.is_file():
        pytest.skip(f"{KAGGLE_NOSHOW} is absent (../shared)")
    from crm_analysis import load_clinic

    return load_clinic(KAGGLE_NOSHOW, mapping=PROJECT_ROOT / "data/mappings/kaggle_noshow_2016.yaml")
