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

from crm_analysis.lazy_imports import lazy_exports

#: Public name -> the module defining it. Imported on first use (PEP 562), so that a job needing only the
#: segments (the daily card index) does not import the lifetime-value model's SciPy stack.
_EXPORTS = {"CLVModel": "clv", "clv_backtest": "clv", "loyalty_score": "loyalty", "loyalty_tier_summary": "loyalty",
            "segment_migration": "migration", "referral_source_by_month": "referrals",
            "referral_value_summary": "referrals", "top_referrers": "referrals", "assign_segments": "segmentation",
            "rfm_scores": "segmentation", "segment_summary": "segmentation", "select_vips": "vip",
            "vip_summary": "vip"}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _EXPORTS.items()},
                                    globals())
