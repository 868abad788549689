"""Daily scoring: the no-show risk and its main reason for every upcoming appointment.

:func:`score_appointments` is what the daily job calls to rank tomorrow's
appointments for confirmation calls. It sees the clinic as it was at the end
of `as_of` (``clinic.snapshot(as_of)``), fits the risk model on the
appointments whose outcome is known by then (unless a fitted model is
given), and scores the appointments scheduled on a later day that are still
booked.
"""

from __future__ import annotations

import pandas as pd

from crm_analysis.noshow.features import noshow_table
from crm_analysis.noshow.model import NoShowRiskModel

__all__ = ["score_appointments", "fit_noshow_model"]


def _training_rows(table: pd.DataFrame, as_of: pd.Timestamp, train_months: int | None) -> pd.DataFrame:
    train = table.loc[table["no_show"].notna().to_numpy()]
    if train_months is not None:
        train = train.loc[(train["scheduled_at"] >= as_of - pd.DateOffset(months=train_months)).to_numpy()]
    return train


def fit_noshow_model(clinic, as_of, *, model: NoShowRiskModel | None = None, rules=None,
                     train_months: int | None = None) -> NoShowRiskModel:
    """The risk model :func:`score_appointments` fits for `as_of`: on the appointments whose outcome is known by
    the end of `as_of` (the last `train_months` months of them, or all).

    Fit it once and pass it as ``model=`` to score later days with it (e.g. the daily job fits one model a
    month, at the end of the month before).

    Parameters
    ----------
    clinic : ClinicData
    as_of : str or Timestamp
        The last day whose outcomes are used (its end); nothing recorded after it is used.
    model : NoShowRiskModel, optional
        An unfitted model with other settings (default: ``NoShowRiskModel()``).
    rules : path, mapping or None
        Reminder rules, for the planned reminders.
    train_months : int, optional

    Returns
    -------
    NoShowRiskModel
        Fitted.

    Raises
    ------
    InsufficientDataError
        Too few known outcomes to fit the model.
    """
    as_of = pd.Timestamp(as_of).normalize()
    table = noshow_table(clinic, as_of, rules, include_upcoming=True)
    return (model if model is not None else NoShowRiskModel()).fit(_training_rows(table, as_of, train_months))


def score_appointments(clinic, as_of, *, model: NoShowRiskModel | None = None, rules=None,
                       lang: str = "ko", train_months: int | None = None, patients=None,
                       reasons_also: tuple[str, ...] = ()) -> pd.DataFrame:
    """No-show risk, risk decile and main reason of each appointment still booked after `as_of`.

    Parameters
    ----------
    clinic : ClinicData
        Needs the appointments table; visits, patients and reminders are used when present.
    as_of : str or Timestamp
        The day the list is made (its end): appointments scheduled on later days and booked by then
        are scored; nothing recorded after it is used.
    model : NoShowRiskModel, optional
        A fitted model to score with (e.g. fitted once a month), or an unfitted one to fit here.
        Default: a :class:`NoShowRiskModel` fitted on the appointments with a known outcome by `as_of`.
    rules : path, mapping or None
        Reminder rules (:func:`crm_analysis.reminders.rules.load_rules`), for the planned reminders.
    lang : {"ko", "en"}
        Language of ``risk_reason``.
    train_months : int, optional
        When fitting here: only the last this many months before `as_of` (default: all).
    reasons_also : tuple of str
        More languages of the reason: a column ``risk_reason_<lang>`` each (e.g. ``("en",)``).
    patients : iterable of patient ids, optional
        With a fitted `model` only: score just these patients' appointments, with features built from
        their own records (the same values as from the whole clinic; milliseconds instead of seconds).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``appointment_id``, sorted by descending risk: ``patient_id``, ``scheduled_at``,
        ``department``, ``no_show_risk`` (float, probability of a no-show if not cancelled),
        ``risk_decile`` (1–10, deciles of the training appointments' risk) and ``risk_reason``
        (str, e.g. ``"이전 노쇼 2회"``). Empty (same columns) when nothing is booked ahead.

    Raises
    ------
    MissingTableError
        Without an appointments table.
    InsufficientDataError
        Too few known outcomes to fit the model.

    Examples
    --------
    >>> ranked = score_appointments(clinic, "2026-10-30")                # doctest: +SKIP
    >>> tomorrow = ranked[ranked["scheduled_at"].dt.normalize() == "2026-10-31"]  # doctest: +SKIP
    """
    as_of = pd.Timestamp(as_of).normalize()
    fitted = model is not None and hasattr(model, "params_")
    if patients is not None and not fitted:
        raise ValueError("score_appointments(patients=...) needs a fitted model (fit_noshow_model): the model is "
                         "fitted on the whole clinic, not on a few patients")
    table = noshow_table(clinic, as_of, rules, include_upcoming=True, patients=patients)
    if not fitted:
        model = (model if model is not None else NoShowRiskModel()).fit(_training_rows(table, as_of, train_months))
    ahead = table.loc[table["upcoming"].to_numpy()]
    out = ahead[["appointment_id", "patient_id", "scheduled_at", "department"]].copy()
    out["department"] = out["department"].astype(object)  # text, as before the table's categorical columns
    risk = model.predict(ahead) if len(ahead) else pd.Series(dtype=float)
    out["no_show_risk"] = risk.to_numpy(dtype=float)
    out["risk_decile"] = model.risk_decile(out["no_show_risk"].to_numpy())
    out["risk_reason"] = model.reasons(ahead, lang).to_numpy(dtype=object) if len(ahead) else pd.Series(dtype=object)
    for other in reasons_also:  # the same reasons in another language, from the same table
        out[f"risk_reason_{other}"] = (model.reasons(ahead, other).to_numpy(dtype=object) if len(ahead)
                                       else pd.Series(dtype=object))
    out = out.sort_values(["no_show_risk", "scheduled_at"], ascending=[False, True], kind="stable")
    return out.set_index("appointment_id")
