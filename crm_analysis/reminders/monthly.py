"""The reminder effect as a KPI section of the monthly report (``kpis.json`` → ``reminder_effect``).

:func:`reminder_effect_kpis` reads the month's reminder evaluation (fitted
once per run, :class:`crm_analysis.monthly.Month`): the adjusted no-show
effect of the current reminder regime with its 95% CI; what it keeps per
booking, cancelled bookings included (extra attended visits, the revenue
outcome, with the extra cancellations beside them; see
:mod:`crm_analysis.reminders.bookings`); and how many of this month's
appointments were reminded. The monthly run registers it in
:mod:`crm_analysis.monthly.kpis`.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import pandas as pd

from crm_analysis.exceptions import CrmAnalysisError, InsufficientDataError
from crm_analysis.figures import month_start, p_value_3g, rounded, shown_count, shown_rate
from crm_analysis.reminders.adjusted import period_masks
from crm_analysis.reminders.evaluation import ReminderEvaluation, evaluate_reminders
from crm_analysis.reminders.replies import reply_summary
from crm_analysis.reminders.rules import load_rules

__all__ = ["reminder_effect_kpis", "reply_kpis", "unfittable_as_thin_data", "REMINDER_EFFECT_FIGURES",
           "REPLY_FIGURES"]

#: The headline figures of the ``replies`` section (``null`` when the reminders record no reply).
REPLY_FIGURES = ("confirmation_rate", "reminded", "confirmed")

#: The headline figures (``null`` in kpis.json when the section is skipped).
REMINDER_EFFECT_FIGURES = ("risk_difference", "ci_low", "ci_high", "p_value", "appointments",
                           "extra_visits_per_booking", "visits_ci_low", "visits_ci_high",
                           "extra_cancellations_per_booking", "bookings")


def _no_comparison() -> InsufficientDataError:
    return InsufficientDataError(
        "reminder_effect",
        "Reminder effect: no analysed appointment up to as_of went without a reminder (or none had one), so there "
        "is nothing to compare; check that the reminders table is complete.",
        "예약 알림 효과: 알림을 받은 예약과 받지 않은 예약이 모두 있어야 비교할 수 있는데 한쪽이 없습니다. "
        "알림 발송 기록이 빠짐없이 들어왔는지 확인하세요.")


@contextlib.contextmanager
def unfittable_as_thin_data() -> Iterator[None]:
    """Turn a reminder model that cannot be fitted on this clinic (:class:`CrmAnalysisError`) into the
    section's :class:`InsufficientDataError`: thin data, so the KPI is skipped with a reason."""
    try:
        yield
    except InsufficientDataError:
        raise
    except CrmAnalysisError as err:
        raise InsufficientDataError("reminder_effect", f"Reminder effect: the reminder model could not be fitted on "
                                                       f"this clinic's data ({err}).",
                                    f"예약 알림 효과: 이 병원 자료로는 알림 효과 모형을 추정할 수 없었습니다 ({err}).") from None


def reminder_effect_kpis(clinic, as_of, min_count: int = 5, *, evaluation: ReminderEvaluation | None = None,
                         rules=None) -> dict:
    """The adjusted no-show effect of the current reminder regime (95% CI) and this month's reminded share.

    Parameters
    ----------
    clinic : ClinicData
        As known at `as_of`.
    as_of : str or Timestamp
        The month's last day.
    min_count : int
        Counts from 1 to ``min_count - 1`` are hidden, and the effect with them.
    evaluation : ReminderEvaluation, optional
        The month's evaluation (:func:`~crm_analysis.reminders.evaluate_reminders`); made here when omitted.
    rules : path, mapping or None
        Reminder rules (the roll-out history defines the current regime).

    Returns
    -------
    dict
        ``regime``, ``regime_since``, ``estimand``, ``risk_difference``, ``ci_low``, ``ci_high``,
        ``p_value``, ``conf_level``, ``rate_with_reminders``, ``rate_without_reminders``,
        ``appointments``, ``patients``, ``method``, ``extra_visits_per_booking``, ``visits_ci_low``,
        ``visits_ci_high``, ``no_shows_avoided_per_booking``, ``extra_cancellations_per_booking``,
        ``cancellations_ci_low``, ``cancellations_ci_high``, ``bookings``, ``slot_refill_rate``,
        ``reminded_month``, ``reminded_share_month``, ``pilot`` and ``sample`` (``{"patients", "of"}`` when the
        clinic was evaluated on a random sample of its patients, whose counts these are; else None).

    Raises
    ------
    InsufficientDataError
        Without appointments, without both reminded and unreminded appointments, or when the
        no-show model cannot be fitted on this clinic's data.
    """
    as_of = pd.Timestamp(as_of).normalize()
    if evaluation is None:
        with unfittable_as_thin_data():
            evaluation = evaluate_reminders(clinic, as_of, rules=rules)
    table, model = evaluation.table, evaluation.model
    analysed = table["analysed"].to_numpy(dtype=bool)
    reminded = analysed & table["reminded"].to_numpy(dtype=bool)
    if not reminded.any() or reminded.sum() == analysed.sum():
        raise _no_comparison()
    r = load_rules(rules)
    periods = {name: mask for name, mask in period_masks(table, r).items() if name != "all" and mask.any()}
    if periods:  # the current regime: the last roll-out period with appointments in the data
        regime, mask = list(periods.items())[-1]
        since = next((f"{pd.Timestamp(x['date']):%Y-%m-%d}" for x in reversed(r["rollouts"] or [])
                      if str(x.get("schedule")) == regime), None)
        group = f"eligible appointments since the roll-out of {regime}"
    else:  # no roll-out history in the rules: the appointments that were reminded
        regime, mask, since, group = "as received", reminded, None, "appointments that received a reminder"
    with unfittable_as_thin_data():
        rd, _ = model.marginal_effect(table, mask, estimand=f"{group}: no-show rate with reminders as received "
                                                            "minus none")
    month = (table["scheduled_at"] >= month_start(as_of)).to_numpy() & analysed
    n_appts, n_patients = int(mask.sum()), int(rd.extras["n_patients"])
    shown = shown_count(n_appts, min_count) is not None and shown_count(n_patients, min_count) is not None
    per_booking = _per_booking_figures(evaluation, regime if periods else "sent", min_count)
    return {"regime": regime, "regime_since": since, "estimand": group,
            "risk_difference": rounded(rd.estimate) if shown else None,
            "ci_low": rounded(rd.ci_low) if shown else None, "ci_high": rounded(rd.ci_high) if shown else None,
            "p_value": p_value_3g(rd.p_value) if shown else None, "conf_level": 0.95,
            "rate_with_reminders": rounded(rd.extras["mean_p_treated"]) if shown else None,
            "rate_without_reminders": rounded(rd.extras["mean_p_control"]) if shown else None,
            "appointments": shown_count(n_appts, min_count), "patients": shown_count(n_patients, min_count),
            "method": rd.method, **per_booking,
            "reminded_month": shown_count(int((month & reminded).sum()), min_count),
            "reminded_share_month": shown_rate(int((month & reminded).sum()), int(month.sum()), min_count),
            "pilot": _pilot_figures(evaluation, min_count),
            "sample": None if evaluation.sample is None else {"patients": evaluation.sample.patients,
                                                              "of": evaluation.sample.of}}


def _pilot_figures(evaluation: ReminderEvaluation, min_count: int) -> dict | None:
    """The randomised pilot's effect (reminded arm − control), or None without a pilot or with arms too small
    to show."""
    pilot = evaluation.pilot
    if pilot is None:
        return None
    counts = pilot.arms[["appointments", "no_shows"]].to_numpy().ravel()
    if any(shown_count(int(x), min_count) is None for x in counts):
        return None
    rd = pilot.risk_difference
    return {"month": pilot.month, "analysis": pilot.analysis, "risk_difference": rounded(rd.estimate),
            "ci_low": rounded(rd.ci_low), "ci_high": rounded(rd.ci_high), "p_value": p_value_3g(rd.p_value),
            "appointments": int(pilot.arms["appointments"].sum())}


def _per_booking_figures(evaluation: ReminderEvaluation, plan: str, min_count: int) -> dict:
    """What the regime keeps per booking, cancelled bookings included (``null`` when it could not be estimated
    or the bookings are too few to show)."""
    effects = evaluation.per_booking.get(plan)
    refill = float(evaluation.rules["slot_refill_rate"]) if evaluation.rules else 0.0
    out = dict.fromkeys(("extra_visits_per_booking", "visits_ci_low", "visits_ci_high", "no_shows_avoided_per_booking",
                         "extra_cancellations_per_booking", "cancellations_ci_low", "cancellations_ci_high",
                         "bookings"))
    out["slot_refill_rate"] = refill
    if effects is None:
        return out
    visits, no_shows, cancellations = effects["visits"], effects["no_shows"], effects["cancellations"]
    bookings = shown_count(visits.n, min_count)
    if bookings is None or shown_count(int(visits.extras["n_patients"]), min_count) is None:
        return {**out, "bookings": bookings}
    return {**out, "bookings": bookings, "extra_visits_per_booking": rounded(visits.estimate),
            "visits_ci_low": rounded(visits.ci_low), "visits_ci_high": rounded(visits.ci_high),
            "no_shows_avoided_per_booking": rounded(no_shows.estimate),
            "extra_cancellations_per_booking": rounded(cancellations.estimate),
            "cancellations_ci_low": rounded(cancellations.ci_low),
            "cancellations_ci_high": rounded(cancellations.ci_high)}


def reply_kpis(clinic, as_of, min_count: int = 5) -> dict:
    """The ``replies`` section: this month's confirmation rate and the no-show rate by reply.

    Parameters
    ----------
    clinic : ClinicData
        As known at `as_of`.
    as_of : str or Timestamp
        The month's last day.
    min_count : int
        Counts from 1 to ``min_count - 1`` are hidden, with the rates they would reveal.

    Returns
    -------
    dict
        ``reminded`` (appointments with a delivered reminder), ``confirmed``, ``confirmation_rate`` and
        ``rows``: per reply (``confirmed``, ``none``, ``cancelled``, ``not_reminded``) ``appointments``,
        ``no_shows`` and ``no_show_rate`` (among attended + no-show). A confirmed reply marks patients who meant
        to come: its lower no-show rate is an association, not an effect.

    Raises
    ------
    InsufficientDataError
        When the reminders record no reply (see :func:`~crm_analysis.reminders.replies.reply_summary`).
    """
    summary = reply_summary(clinic, f"{pd.Timestamp(as_of):%Y-%m}", min_count=min_count)
    rows = [{"reply": str(r["reply"]),
             "appointments": None if pd.isna(r["appointments"]) else int(r["appointments"]),
             "no_shows": None if pd.isna(r["no_shows"]) else int(r["no_shows"]),
             "no_show_rate": None if pd.isna(r["no_show_rate"]) else rounded(r["no_show_rate"])}
            for _, r in summary.table.iterrows()]
    return {"reminded": summary.reminded, "confirmed": summary.confirmed,
            "confirmation_rate": rounded(summary.confirmation_rate) if summary.confirmation_rate is not None else None,
            "rows": rows}
