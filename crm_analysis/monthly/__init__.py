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

Importing this package imports the analysis packages (it sits on top of them); nothing below imports it.
"""

from crm_analysis.monthly.kpi_result import MonthlyKpis
from crm_analysis.monthly.kpis import kpis_for_report, monthly_kpis, register_section
from crm_analysis.monthly.month import MODELS, Month, fit_models
from crm_analysis.monthly.rules import RULE_FILES, RuleSet, load_rule_set
from crm_analysis.monthly.run import RunContext, RunResult, month_end, plan_month, run_month

__all__ = ["Month", "MODELS", "fit_models", "RuleSet", "RULE_FILES", "load_rule_set", "MonthlyKpis",
           "monthly_kpis", "kpis_for_report", "register_section", "RunContext", "RunResult", "run_month",
           "plan_month", "month_end"]
