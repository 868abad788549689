"""The month's card index: every patient's caller-ID card, written beside the staff lists.

:func:`write_month_cards` is the monthly run's last outreach step. It uses the
month's own models (loaded, never fitted twice) and its staff lists, fits the
no-show risk model of the coming month (the appointments booked ahead get
their risk), and writes :data:`~crm_analysis.profile.card_index.INDEX_NAME`
into the outreach staging folder, so it is published with the lists, owner-only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crm_analysis.campaigns.staff_lists import staff_lists
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.monthly.month import Month
from crm_analysis.profile.card_index import INDEX_NAME, index_meta, write_card_index
from crm_analysis.profile.card_tables import card_tables
from crm_analysis.reminders import evaluated_patients

__all__ = ["write_month_cards", "month_scores", "FIT_HERE"]

#: Months of known outcomes the no-show model behind the cards is fitted on (as the daily job's).
TRAIN_MONTHS = 12
#: Patients whose appointments booked ahead are scored together, when the model is fitted on a sample.
SCORE_BATCH = 50_000
#: :func:`write_month_cards` fits the no-show model and scores the appointments itself (:func:`month_scores`).
FIT_HERE = "fit here"


def month_scores(clinic, as_of: pd.Timestamp, rules=None) -> pd.DataFrame | None:
    """No-show risk of the appointments booked after `as_of`, from a model fitted on the last
    :data:`TRAIN_MONTHS` months of outcomes; None when the data cannot support the model.

    `rules`: the reminder rules. Above their ``model.max_patients`` the model is fitted on the reminder
    evaluation's random sample of patients (:func:`~crm_analysis.reminders.evaluated_patients`) and scores
    every appointment booked ahead, from its own patient's records."""
    from crm_analysis.noshow.scoring import fit_noshow_model, score_appointments

    try:
        sampled, sample = evaluated_patients(clinic, rules)
        if sample is None:  # fitted and scored on one appointment table
            return score_appointments(clinic, as_of, lang="ko", train_months=TRAIN_MONTHS, reasons_also=("en",))
        model = fit_noshow_model(sampled, as_of, train_months=TRAIN_MONTHS)
        ahead = _booked_ahead(clinic, as_of)
        # scored in batches of patients: each batch's table holds only its patients' histories
        parts = [score_appointments(clinic, as_of, model=model, lang="ko", reasons_also=("en",),
                                    patients=ahead.iloc[start:start + SCORE_BATCH])
                 for start in range(0, max(len(ahead), 1), SCORE_BATCH)]
        scores = pd.concat(parts) if len(parts) > 1 else parts[0]
        return scores.sort_values(["no_show_risk", "scheduled_at"], ascending=[False, True], kind="stable")
    except (CrmAnalysisError, KeyError, ValueError):
        return None


def _booked_ahead(clinic, as_of: pd.Timestamp) -> pd.Series:
    """The patients with an appointment scheduled after `as_of`'s day and booked by its end."""
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    appts = clinic.tables["appointments"]
    ahead = ((appts["scheduled_at"] >= end) & (appts["booked_at"] < end)).fillna(False).to_numpy()
    return pd.Series(appts.loc[ahead, "patient_id"].dropna().unique())


def write_month_cards(month: Month, folder: str | Path, *, source,
                      scores: pd.DataFrame | None | str = FIT_HERE) -> tuple[Path, dict[str, str]]:
    """Write the month's card index into `folder`; returns its path and the card fields left empty (why).

    Parameters
    ----------
    month : Month
        With its models (saved by the run, or fitted here when used alone).
    folder : path
        The outreach staging folder.
    source : str or Path
        The data source, recorded without secrets so ``lookup`` finds the index of its own source.
    scores : DataFrame or None, optional
        The no-show risk of the appointments booked ahead, :func:`month_scores` of the same month, when it was
        computed elsewhere (the monthly run scores them in another process while the lists are written;
        None: the model could not be fitted); by default (:data:`FIT_HERE`) computed here.
    """
    try:
        plan = month.campaigns
    except CrmAnalysisError:
        plan = None
    staff = [] if plan is None else staff_lists(plan, month.clinic.tables["patients"], month.rules.campaigns)
    if isinstance(scores, str):
        scores = month_scores(month.clinic, month.as_of, month.rules.reminders) \
            if "appointments" in month.clinic.tables else None
    tables = card_tables(month, staff, scores=scores)
    notes = dict(tables.pop("notes"))
    if scores is None:
        notes["noshow"] = "the no-show risk model could not be fitted on this data"
    if plan is None:
        notes["campaigns"] = "no campaign plan this month"
    meta = index_meta(month.as_of, f"monthly {month.as_of:%Y-%m}", source, len(tables["cards"]), notes)
    return write_card_index(tables, Path(folder) / INDEX_NAME, meta), notes
