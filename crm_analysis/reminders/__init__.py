"""Reminder-effect evaluation: what do the 3-day / 1-day / 2-hour reminders do to no-shows?

Modules, one concept each:

* :mod:`~crm_analysis.reminders.rules` — rules as data (``crm_analysis/rules/reminders.yaml``);
* :mod:`~crm_analysis.reminders.analysis_table` — the appointment-level table;
* :mod:`~crm_analysis.reminders.pilot` — randomised pilot and sample-size planner;
* :mod:`~crm_analysis.reminders.adjusted` — crude, Mantel–Haenszel and standardised logistic estimates;
* :mod:`~crm_analysis.reminders.glm` — the fast logistic GLM fit with patient-clustered errors;
* :mod:`~crm_analysis.reminders.rollout` — interrupted time series;
* :mod:`~crm_analysis.reminders.schedules` — schedule comparison and the value of one step;
* :mod:`~crm_analysis.reminders.bookings` — what reminders keep per booking (visits, no-shows, cancellations);
* :mod:`~crm_analysis.reminders.costs` — monthly cost–benefit, in attended visits;
* :mod:`~crm_analysis.reminders.evaluation` — everything at once, with report tables and the headline.

See ``docs/reminders.md``.
"""

from crm_analysis.reminders.adjusted import ReminderEffectModel, crude_effect, mantel_haenszel, period_masks
from crm_analysis.reminders.analysis_table import appointment_table
from crm_analysis.reminders.bookings import BookingEffectModel, planned_schedule
from crm_analysis.reminders.costs import cost_benefit, revenue_per_visit
from crm_analysis.reminders.evaluation import (ReminderEvaluation, evaluate_reminders, evaluated_patients,
                                               headline_sentence)
from crm_analysis.reminders.pilot import PilotResult, pilot_analysis, plan_pilot
from crm_analysis.reminders.rollout import ITSResult, interrupted_time_series, plot_its, rate_series
from crm_analysis.reminders.rules import load_rules, rules_within
from crm_analysis.reminders.schedules import schedule_comparison, step_value

__all__ = [
    "appointment_table", "load_rules", "pilot_analysis", "plan_pilot", "PilotResult", "crude_effect",
    "mantel_haenszel", "ReminderEffectModel", "period_masks", "interrupted_time_series", "ITSResult", "plot_its",
    "rate_series", "schedule_comparison", "step_value", "cost_benefit", "revenue_per_visit", "evaluate_reminders",
    "evaluated_patients", "ReminderEvaluation", "headline_sentence", "BookingEffectModel", "planned_schedule",
    "rules_within",
]
