"""One fitted default :class:`~crm_analysis.churn.model.ChurnModel` per (clinic, as_of), shared in a process.

Several consumers need the same model on the same data within one process —
the monthly run's churn KPI section and recall outreach list, the campaigns'
recall audience (each recall campaign asks again), ``recall_table`` called
without a model. :func:`fitted_model` fits the default model (default churn
rules) once per (clinic, as_of) and hands the same fitted object to every
caller. They all use the Cox model's predictions only, so its Weibull
alternative and proportional-hazards check are not fitted (about half of the
fit's time); the Cox model and its predictions are those of
``ChurnModel().fit(clinic, as_of)``.

The key is the clinic object itself, held and compared with ``is`` (never
``id(clinic)``: an id can be reused by a new object once the old one is
freed, which would hand back another clinic's model), and the day of `as_of`.
Only the last :data:`MAX_ENTRIES` keys are kept, so at most that many clinics
are kept alive. A clinic changed in place after a fit is not detected: pass a
new snapshot (``clinic.snapshot(as_of)`` returns one) or call :func:`clear`.
"""

from __future__ import annotations

import pandas as pd

from crm_analysis.churn.model import ChurnModel

__all__ = ["fitted_model", "clear", "MAX_ENTRIES"]

#: How many (clinic, as_of) models are remembered.
MAX_ENTRIES = 2
_ENTRIES: list[tuple[object, str, ChurnModel]] = []


def fitted_model(clinic, as_of, gaps: pd.DataFrame | None = None) -> ChurnModel:
    """The default churn model of (`clinic`, `as_of`), fitted on first use and remembered.

    Parameters
    ----------
    clinic : ClinicData
    as_of : str or Timestamp
    gaps : DataFrame, optional
        :func:`~crm_analysis.churn.survival_data` of `clinic` at `as_of`, used when the model has to be
        fitted (a caller that needs them anyway saves building them twice).

    Returns
    -------
    ChurnModel
        Fitted with the default rules, without the Weibull alternative and the PH check
        (``ChurnModel(weibull=False, ph_test=False).fit(clinic, as_of)``). Shared: do not refit it.
    """
    day = f"{pd.Timestamp(as_of).normalize():%Y-%m-%d}"
    for i, (c, d, model) in enumerate(_ENTRIES):
        if c is clinic and d == day:
            _ENTRIES.append(_ENTRIES.pop(i))  # most recently used last
            return model
    model = ChurnModel(weibull=False, ph_test=False).fit(clinic, pd.Timestamp(day), gaps=gaps)
    _ENTRIES.append((clinic, day, model))
    del _ENTRIES[:-MAX_ENTRIES]
    return model


def clear() -> None:
    """Forget every remembered model."""
    _ENTRIES.clear()
