"""Daily operations: the day's reminder sends and the confirmation call list, published every morning.

The monthly run plans a month of reminders from what was booked by the month's last day, but most
appointments are booked during the month; reminders are a daily job. ``crm-analysis daily --date D``
writes ``outreach/daily/D/`` (beside the monthly ``outreach/YYYY-MM/`` folders):

- :mod:`~crm_analysis.daily.moment` — the extract moment (``D 00:00``) and the clinic as known then;
- :mod:`~crm_analysis.daily.sends` — every reminder step due on ``D``, all reminder rules applied;
- :mod:`~crm_analysis.daily.calls` — tomorrow's appointments ranked for a confirmation call;
- :mod:`~crm_analysis.daily.model_cache` — the month's no-show model, fitted once a month and kept privately;
- :mod:`~crm_analysis.daily.lists` — the staff files (Korean columns) and their ``안내.txt``;
- :mod:`~crm_analysis.daily.run` — load, compute, write and publish atomically (one run at a time).
"""

from crm_analysis.daily.calls import CALL_COLUMNS, confirmation_calls
from crm_analysis.daily.moment import appointments_at, clinic_at, daily_moment
from crm_analysis.daily.run import DailyResult, daily_lists, run_daily
from crm_analysis.daily.sends import ReminderSends, reminder_sends

__all__ = ["daily_moment", "appointments_at", "clinic_at", "ReminderSends", "reminder_sends", "confirmation_calls",
           "CALL_COLUMNS", "daily_lists", "run_daily", "DailyResult"]
