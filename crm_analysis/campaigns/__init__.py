"""Campaigns with holdouts, Korean messaging rules, suppression and closed-loop evaluation.

One concept per module:

- :mod:`~crm_analysis.campaigns.definitions`: campaign definitions as YAML (load, merge, validate);
- :mod:`~crm_analysis.campaigns.templates`: message templates and vectorised rendering;
- :mod:`~crm_analysis.campaigns.compliance`: the Korean messaging rules, as checks;
- :mod:`~crm_analysis.campaigns.holdout`: deterministic control-group assignment;
- :mod:`~crm_analysis.campaigns.suppression`: bounces and non-engagement from the contacts log;
- :mod:`~crm_analysis.campaigns.audiences`: who each built-in campaign is for, and when;
- :mod:`~crm_analysis.campaigns.planner`: one compliant send plan for the period;
- :mod:`~crm_analysis.campaigns.evaluation`: sent versus holdout lifts, per campaign and pooled;
- :mod:`~crm_analysis.campaigns.outreach`: staff lists (CSV with BOM, XLSX), written privately;
- :mod:`~crm_analysis.campaigns.views`: aggregate tables for notebook 40.

Importing this package reads no file; the shipped rules are read when first used.
"""

from crm_analysis.campaigns.compliance import assert_compliant, check_sends
from crm_analysis.campaigns.definitions import Campaign, CampaignConfig, load_campaigns
from crm_analysis.campaigns.holdout import assign_holdout
from crm_analysis.campaigns.outreach import build_outreach, write_outreach
from crm_analysis.campaigns.planner import CampaignPlan, plan_campaigns
from crm_analysis.campaigns.suppression import suppression_list
from crm_analysis.exceptions import CampaignConfigError

__all__ = ["Campaign", "CampaignConfig", "CampaignConfigError", "CampaignEvaluation", "CampaignPlan",
           "assert_compliant", "assign_holdout", "build_outreach", "check_sends", "evaluate_campaigns",
           "load_campaigns", "plan_campaigns", "suppression_list", "write_outreach"]


def __getattr__(name: str):
    # The evaluation (statsmodels, scipy.stats) is imported on first use: planning and the staff lists,
    # which the daily run needs, do without it.
    if name in ("CampaignEvaluation", "evaluate_campaigns"):
        from crm_analysis.campaigns import evaluation

        return getattr(evaluation, name)
    raise AttributeError(f"module 'crm_analysis.campaigns' has no attribute {name!r}")
