"""No-show risk per appointment: who to call to confirm tomorrow (issue #19, part 2).

Modules, one concept each:

* :mod:`~crm_analysis.noshow.features` — the appointment table with the features known when the
  reminders are planned (lead time, earlier no-shows and cancellations, age, weekday, hour band,
  department, first visit, planned reminders), built on
  :func:`crm_analysis.reminders.appointment_table`;
* :mod:`~crm_analysis.noshow.model` — :class:`NoShowRiskModel`, a logistic regression with splines
  (``statsmodels`` GLM, patient-clustered errors) with ``predict``, ``summary`` (odds ratios, CIs)
  and ``reasons``;
* :mod:`~crm_analysis.noshow.reasons` — the main reason of each risk in plain Korean or English;
* :mod:`~crm_analysis.noshow.scoring` — :func:`score_appointments`, the daily job's entry point;
* :mod:`~crm_analysis.noshow.backtest` — :func:`noshow_backtest`, out-of-time AUC, Brier score and
  decile calibration against two baselines (earlier no-shows only, lead time only);
* :mod:`~crm_analysis.noshow.plots` — observed no-show rate by risk decile.

Daily use
---------
``score_appointments(clinic, as_of)`` takes a :class:`~crm_analysis.clinic.ClinicData` and an explicit
``as_of`` (the day the list is made) and returns a DataFrame indexed by ``appointment_id`` with one
row per appointment scheduled on a later day and still booked at the end of ``as_of``:

============  ===========================================================================
column        meaning
============  ===========================================================================
patient_id    the patient
scheduled_at  the appointment
department    its department
no_show_risk  float, probability of a no-show (if not cancelled first)
risk_decile   int 1–10, decile among the training appointments' risks (10 = highest)
risk_reason   str, the feature raising the risk most above average, e.g. ``"이전 노쇼 2회"``
============  ===========================================================================

sorted by descending risk. Nothing recorded after ``as_of`` is used. It fits the model on every
appointment with a known outcome (a few seconds on 380,000 appointments); pass ``model=`` a fitted
:class:`NoShowRiskModel` to reuse one (:func:`fit_noshow_model` fits the one it would fit; a fitted model
pickles, e.g. for the daily job's once-a-month model), with ``patients=`` to score only a few patients
quickly, ``lang="en"`` for English reasons.

>>> ranked = score_appointments(clinic, "2026-10-30")     # doctest: +SKIP
>>> ranked.head(20)                                       # doctest: +SKIP

Back-test
---------
>>> result = noshow_backtest(clinic, "2026-05-01")        # doctest: +SKIP
>>> result.summary()                                      # AUC, Brier, n per model
>>> result.plot_deciles(lang="en")
"""

from crm_analysis.noshow.backtest import NoShowBacktest, auc, brier, decile_table, noshow_backtest
from crm_analysis.noshow.features import FEATURE_COLUMNS, noshow_table
from crm_analysis.noshow.model import NoShowRiskModel
from crm_analysis.noshow.plots import plot_deciles
from crm_analysis.noshow.reasons import reason_texts
from crm_analysis.noshow.scoring import fit_noshow_model, score_appointments

__all__ = [
    "noshow_table", "FEATURE_COLUMNS", "NoShowRiskModel", "score_appointments", "fit_noshow_model", "noshow_backtest",
    "NoShowBacktest", "auc", "brier", "decile_table", "plot_deciles", "reason_texts",
]
