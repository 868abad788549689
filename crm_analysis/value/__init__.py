"""Patient value: RFM segments, segment migration, VIP selection, loyalty, lifetime value and referrals.

One module per concept; all take a clinic snapshot (or its patient features)
and an explicit ``as_of``:

- :mod:`~crm_analysis.value.segmentation`: RFM scores and named segments;
- :mod:`~crm_analysis.value.migration`: how patients moved between segments since last month;
- :mod:`~crm_analysis.value.vip`: VIPs selected by rule (``rules/vip.yaml``);
- :mod:`~crm_analysis.value.loyalty`: the loyalty score (frequency, inpatient days, interval, per diem);
- :mod:`~crm_analysis.value.clv`: lifetime value (BG/NBD × Gamma-Gamma) and its back-test;
- :mod:`~crm_analysis.value.referrals`: word of mouth: referral sources and top referrers.
"""

from crm_analysis.value.clv import CLVModel, clv_backtest
from crm_analysis.value.loyalty import loyalty_score, loyalty_tier_summary
from crm_analysis.value.migration import segment_migration
from crm_analysis.value.referrals import referral_source_by_month, referral_value_summary, top_referrers
from crm_analysis.value.segmentation import assign_segments, rfm_scores, segment_summary
from crm_analysis.value.vip import select_vips, vip_summary

__all__ = ["CLVModel", "clv_backtest", "loyalty_score", "loyalty_tier_summary", "segment_migration",
           "referral_source_by_month", "referral_value_summary", "top_referrers", "assign_segments", "rfm_scores",
           "segment_summary", "select_vips", "vip_summary"]
