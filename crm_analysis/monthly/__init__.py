"""The monthly engine: one clinic's month, from the loaded data to the published report and staff lists.

- :mod:`~crm_analysis.monthly.month`: :class:`Month`, the data as known at ``as_of`` with its rules and
  its models, each fitted once;
- :mod:`~crm_analysis.monthly.rules`: an analyst's rule folder (``--rules DIR``);
- :mod:`~crm_analysis.monthly.kpis`: the registry of KPI sections and ``kpis.json``
  (:mod:`~crm_analysis.monthly.core` holds the core counts, :mod:`~crm_analysis.monthly.kpi_result`
  the result and its report page);
- :mod:`~crm_analysis.monthly.notebooks`: which notebooks, their parameters, the kernels that run them;
- :mod:`~crm_analysis.monthly.publish`: locks, staging folders and atomic publishing;
- :mod:`~crm_analysis.monthly.run`: :func:`run_month`, the whole month.

The engine sits on top of the analysis packages; nothing below imports it. Its public names are imported on
first use, so ``from crm_analysis.monthly import publish`` (the daily run) stays light.
"""

from crm_analysis.lazy_imports import lazy_exports

#: Public name -> the module that defines it. Imported on first use (PEP 562), so that a job needing one
#: module of the engine (the daily run's publishing) does not import every analysis package.
_EXPORTS = {"MonthlyKpis": "kpi_result", "kpis_for_report": "kpis", "monthly_kpis": "kpis", "register_section": "kpis",
            "MODELS": "month", "Month": "month", "fit_models": "month", "RULE_FILES": "rules", "RuleSet": "rules",
            "load_rule_set": "rules", "RunContext": "run", "RunResult": "run", "month_end": "run",
            "plan_month": "run", "run_month": "run"}

__all__ = ["Month", "MODELS", "fit_models", "RuleSet", "RULE_FILES", "load_rule_set", "MonthlyKpis",
           "monthly_kpis", "kpis_for_report", "register_section", "RunContext", "RunResult", "run_month",
           "plan_month", "month_end"]


__getattr__, __dir__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _EXPORTS.items()},
                                    globals())
