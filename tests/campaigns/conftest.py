"""Fixtures for the campaign tests: the demo clinic (seed 7, 1,500 patients) as ClinicData and its plan."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_END

#: Campaign tests plan the month after the demo clinic's end.
AS_OF = DEMO_END


@pytest.fixture(scope="session")
def demo_data(generated_clinic):
    """The demo clinic's generated tables as ClinicData (no loader round trip)."""
    return generated_clinic


@pytest.fixture(scope="session")
def demo_candidates(demo_data):
    """VIP and recall audiences from the segmentation and churn modules, computed once (the churn fit is slow)."""
    from crm_analysis.campaigns.audiences import recall_candidate_frame, vip_candidates

    vips = vip_candidates(demo_data, AS_OF)
    return {"vip_event": vips, "vip_birthday": vips, "recall": recall_candidate_frame(demo_data, AS_OF)}


@pytest.fixture(scope="session")
def demo_plan(demo_data, demo_candidates):
    from crm_analysis.campaigns import plan_campaigns

    return plan_campaigns(demo_data, AS_OF, candidates=demo_candidates)


@pytest.fixture(scope="session")
def demo_plan_en(demo_data, demo_candidates):
    from crm_analysis.campaigns import plan_campaigns

    return plan_campaigns(demo_data, AS_OF, lang="en", candidates=demo_candidates)
