"""Tomorrow's confirmation calls: the next day's appointments, the ones most worth a call first.

:func:`confirmation_calls` lists, for a daily run on ``D`` (extract moment ``D 00:00``), every appointment
scheduled on ``D+1`` that is booked and not cancelled at the moment, ranked for the front desk:

1. appointments whose patient asked by reply to cancel but which are still on the book (fix the booking);
2. then unconfirmed before confirmed ones (a ``confirmed`` reply to a reminder sent before the moment;
   without a ``reply`` column in the reminders table every appointment is unconfirmed);
3. within each, the highest no-show risk first.

The risk comes from :mod:`crm_analysis.noshow` (``score_appointments``) when that package is installed
and can score the clinic, with the **month model** of the run's month (fitted on the outcomes known at the
end of the month before: :mod:`crm_analysis.daily.model_cache`, which keeps it from one day to the next);
only the patients on the list are scored (their own records give the same features as the whole clinic).
Otherwise (``risk_source="prior_no_shows"``) the list is ordered by the patient's
earlier no-shows (before the moment), then their share of no-shows, and the reason says so: no model is
pretended. Deceased and moved patients are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analysis.daily.moment import LIVE, clinic_at, daily_moment
from crm_analysis.i18n import label

__all__ = ["CALL_COLUMNS", "CONFIRMATION_STATES", "confirmation_calls", "reply_state", "noshow_scores"]

#: Columns of :func:`confirmation_calls`.
CALL_COLUMNS = ["rank", "appointment_id", "patient_id", "contact", "scheduled_at", "department", "confirmation",
                "no_show_risk", "prior_no_shows", "prior_appointments", "risk_reason", "risk_source"]
#: Months of known outcomes the month's no-show model is fitted on (before the month's first day).
TRAIN_MONTHS = 12
#: Confirmation states, in call order.
CONFIRMATION_STATES = ("cancel_requested", "unconfirmed", "confirmed")


def reply_state(reminders: pd.DataFrame | None, appointment_ids: pd.Series, moment) -> pd.Series:
    """Each appointment's confirmation state from the replies to reminders sent before `moment`.

    ``cancel_requested`` if any reply asked to cancel, else ``confirmed`` if any confirmed, else
    ``unconfirmed`` (no reply, or the reminders table records no replies).

    Returns
    -------
    Series
        Indexed like `appointment_ids`.
    """
    state = pd.Series("unconfirmed", index=appointment_ids.index, dtype=object)
    if reminders is None or "reply" not in reminders or not len(reminders):
        return state
    ids = appointment_ids.astype(str)
    listed = reminders["appointment_id"].isin(pd.unique(ids)).fillna(False).to_numpy(dtype=bool)  # text ids as they are
    if not listed.any() and len(ids) and not isinstance(reminders["appointment_id"].dtype, pd.StringDtype):
        listed = reminders["appointment_id"].astype(str).isin(ids).to_numpy()  # ids of another type
    r = reminders.loc[listed & (reminders["sent_at"] < pd.Timestamp(moment)).fillna(False).to_numpy()]
    reply = r["reply"].astype(object)
    for value, name in (("confirmed", "confirmed"), ("cancelled", "cancel_requested")):  # the later one wins
        said = r.loc[(reply == value).to_numpy(), "appointment_id"].astype(str)
        state[ids.isin(said).to_numpy()] = name
    return state


def noshow_scores(known, moment, *, train_months: int | None = TRAIN_MONTHS, model=None,
                  patients=None, lang: str = "ko") -> pd.DataFrame | None:
    """``appointment_id``, ``no_show_risk``, ``risk_reason`` from :func:`crm_analysis.noshow.score_appointments`.

    Scored with `model` (fitted), by default the month model of `moment`'s month
    (:func:`~crm_analysis.daily.model_cache.month_model`: the outcomes of the last `train_months` months before
    the month's first day), for the appointments of `patients` (default all) still booked at `moment`. None
    when that package is not installed or cannot score this clinic (too little history, no convergence).
    """
    try:
        from crm_analysis.noshow.scoring import score_appointments
    except ImportError:
        return None
    from crm_analysis.exceptions import CrmAnalysisError

    if model is None:
        from crm_analysis.daily.model_cache import month_model

        model, _ = month_model(known, moment, source=None, folder=None, train_months=train_months)
        if model is None:
            return None
    try:
        scores = score_appointments(known, moment - pd.Timedelta(days=1), model=model, patients=patients, lang=lang)
    except CrmAnalysisError:  # never expected with a fitted model: the list falls back to earlier no-shows
        return None
    if "appointment_id" not in scores.columns:  # indexed by it
        scores = scores.rename_axis("appointment_id").reset_index()
    return scores[["appointment_id", "no_show_risk", "risk_reason"]].assign(
        appointment_id=scores["appointment_id"].astype(str))


def confirmation_calls(clinic, date, *, known=None, scores: pd.DataFrame | None | bool = None,
                       model=None) -> pd.DataFrame:
    """The appointments of the day after `date`, in call order (see the module docstring).

    Parameters
    ----------
    clinic : ClinicData
    date : date-like
        The day of the run (explicit); the appointments listed are those of the next day.
    known : ClinicData, optional
        ``clinic_at(clinic, moment)`` when already made.
    scores : DataFrame or False, optional
        Ready risk scores (``appointment_id``, ``no_show_risk``, ``risk_reason``); default: from
        :func:`noshow_scores`; False: none (order by prior no-shows).
    model : NoShowRiskModel, optional
        The fitted month model to score with (default: fitted here, see :func:`noshow_scores`).

    Returns
    -------
    DataFrame
        :data:`CALL_COLUMNS`; ``rank`` from 1; ``no_show_risk`` is missing when no model scored the
        appointment; ``risk_source`` is ``noshow_model`` or ``prior_no_shows``.
    """
    moment = daily_moment(clinic, date)
    known = clinic_at(clinic, moment) if known is None else known
    if not known.has("appointments"):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CALL_COLUMNS})
    a = known.tables["appointments"]
    tomorrow = moment + pd.Timedelta(days=1)
    day = a.loc[((a["status"] == LIVE) & (a["scheduled_at"] >= tomorrow)
                 & (a["scheduled_at"] < tomorrow + pd.Timedelta(days=1))).to_numpy()]
    patients = known.tables["patients"]
    pidx = patients.assign(patient_id=patients["patient_id"].astype(str)).set_index("patient_id")
    pid = day["patient_id"].astype(str)
    status = pidx["record_status"].astype(object).reindex(pid).to_numpy() if "record_status" in pidx \
        else np.full(len(pid), None)
    active = ~pd.Series(status).isin(["deceased", "moved"]).to_numpy()
    day, pid = day.loc[active], pid[active]
    # earlier outcomes of each patient (known at the moment)
    mine = a["patient_id"].isin(pd.unique(pid)).fillna(False).to_numpy(dtype=bool)  # the listed patients' rows
    if not isinstance(a["patient_id"].dtype, pd.StringDtype):
        mine = a["patient_id"].astype(str).isin(pd.unique(pid)).to_numpy()
    past = a.loc[mine & (a["scheduled_at"] < moment).to_numpy() & a["status"].isin(["attended", "no_show"]).to_numpy()]
    pp = past["patient_id"].astype(str)
    no_shows = pp[(past["status"] == "no_show").to_numpy()].value_counts().reindex(pid).fillna(0).astype(np.int64)
    resolved = pp.value_counts().reindex(pid).fillna(0).astype(np.int64)
    phone = pidx["phone"].astype(object) if "phone" in pidx else pd.Series(None, index=pidx.index, dtype=object)
    guardian = pidx["guardian_id"].astype(object) if "guardian_id" in pidx else pd.Series(None, index=pidx.index)
    own = phone.reindex(pid).to_numpy()
    theirs = phone.reindex(guardian.reindex(pid).to_numpy()).to_numpy()
    out = pd.DataFrame({"appointment_id": day["appointment_id"].astype(str).to_numpy(), "patient_id": pid.to_numpy(),
                        "contact": np.where(pd.isna(own), theirs, own),
                        "scheduled_at": day["scheduled_at"].to_numpy(),
                        "department": day["department"].astype(object).fillna("").to_numpy()
                        if "department" in day else "",
                        "prior_no_shows": no_shows.to_numpy(), "prior_appointments": resolved.to_numpy()})
    out["contact"] = out["contact"].astype(object).where(out["contact"].notna(), "")
    out["confirmation"] = reply_state(known.tables.get("reminders"), out["appointment_id"], moment).to_numpy()
    if scores is None:
        scores = noshow_scores(known, moment, model=model, patients=out["patient_id"].unique()) if len(out) else None
    elif scores is False:
        scores = None
    text = label("daily_reason_prior", "ko").split("{n}")
    before_m, after_m = text[1].split("{m}")
    prior = (text[0] + out["prior_no_shows"].astype(str) + before_m + out["prior_appointments"].astype(str)
             + after_m)
    if scores is not None:
        s = scores.assign(appointment_id=scores["appointment_id"].astype(str)).drop_duplicates("appointment_id")
        s = s.set_index("appointment_id")
        risk = s["no_show_risk"].reindex(out["appointment_id"]).to_numpy(dtype=float)
        reason = s["risk_reason"].astype(object).reindex(out["appointment_id"]).to_numpy()
        scored = ~np.isnan(risk)
        out["no_show_risk"] = risk
        out["risk_reason"] = np.where(scored, reason, prior.to_numpy())
        out["risk_source"] = np.where(scored, "noshow_model", "prior_no_shows")
    else:
        out["no_show_risk"] = np.nan
        out["risk_reason"] = prior.to_numpy()
        out["risk_source"] = "prior_no_shows"
    share = out["prior_no_shows"] / out["prior_appointments"].where(out["prior_appointments"] > 0)
    order = pd.DataFrame({"state": out["confirmation"].map({s: i for i, s in enumerate(CONFIRMATION_STATES)}),
                          "risk": -out["no_show_risk"].fillna(-1.0), "prior": -out["prior_no_shows"],
                          "share": -share.fillna(0.0), "at": out["scheduled_at"], "id": out["appointment_id"]})
    out = out.loc[order.sort_values(list(order.columns), kind="stable").index].reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out[CALL_COLUMNS]
