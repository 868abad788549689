"""Run the whole reminder evaluation on one clinic and present it for managers.

:func:`evaluate_reminders` builds the analysis table and runs every analysis
the data allows: randomised pilot, crude / Mantel–Haenszel / adjusted
estimates, interrupted time series, schedule comparison, what reminders keep
per booking (attended visits, no-shows avoided and the cancellations they
cause) and the monthly cost–benefit counted in attended visits. What cannot be estimated (no pilot month, no roll-out date, no
charges) is skipped with a plain note instead of an error. Programme dates of
the rules that fall outside the data's window are ignored (with a note), so
the defaults, written for the demo clinic, do no harm on other data.

The result, :class:`ReminderEvaluation`, is frozen; its ``*_table(lang)``
methods give report-ready tables in Korean or English and
:meth:`ReminderEvaluation.headline` the one-sentence answer for management.
Their counts go through :func:`crm_analysis.privacy.suppressed_mask`
(counts from 1 to 4 read ``<5``, with secondary suppression where a column adds
up to a published total), rates and estimates are hidden beside a hidden count,
and numbers are written by :func:`crm_analysis.number_format.format_number`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Any, Mapping

import numpy as np
import pandas as pd

from crm_analysis.cells import p_value_text
from crm_analysis.clinic import ClinicData
from crm_analysis.estimates import Estimate
from crm_analysis.exceptions import CrmAnalysisError, InsufficientDataError
from crm_analysis.i18n import check_lang, label
from crm_analysis.number_format import MISSING, format_number
from crm_analysis.privacy import DEFAULT_MIN_COUNT, suppressed_mask
from crm_analysis.reminders.adjusted import ReminderEffectModel, crude_effect, mantel_haenszel, period_masks
from crm_analysis.reminders.analysis_table import appointment_table
from crm_analysis.reminders.bookings import BOOKING_EFFECTS, BookingEffectModel
from crm_analysis.reminders.costs import cost_benefit, revenue_per_visit, step_cost_per_appointment
from crm_analysis.threads import one_blas_thread
from crm_analysis.reminders.pilot import PilotResult, pilot_analysis, plan_pilot
from crm_analysis.reminders.rollout import ITSResult, interrupted_time_series, plot_its
from crm_analysis.reminders.rules import load_rules, rules_within
from crm_analysis.reminders.schedules import schedule_comparison, step_value
from crm_analysis.sampling import PatientSample, patient_sample
from crm_analysis.sufficiency import require

__all__ = ["ReminderEvaluation", "evaluate_reminders", "evaluated_patients", "headline_sentence"]


@dataclass(frozen=True)
class ReminderEvaluation:
    """Everything the reminder evaluation found for one clinic.

    Attributes
    ----------
    as_of : Timestamp
    table : DataFrame
        The appointment-level analysis table.
    model : ReminderEffectModel
    crude : Estimate
    mantel_haenszel : Estimate or None
    adjusted : dict of str to (Estimate, Estimate)
        Standardised risk difference and risk ratio per roll-out period
        (eligible appointments of the period) and ``"reminded"`` (appointments
        that received a reminder).
    headline_key : str
        The entry of `adjusted` the headline reports.
    pilot : PilotResult or None
    its : ITSResult or None
    schedules : DataFrame or None
    step_2h : Estimate or None
    costs : DataFrame
        From :func:`~crm_analysis.reminders.costs.cost_benefit`.
    revenue_per_visit : float or None
    notes : tuple of str
        Label keys of what was skipped and why.
    rules : Mapping
    bookings : BookingEffectModel or None
        The per-booking model (None when it could not be fitted; a note says so).
    per_booking : dict of str to dict of str to Estimate
        Per planned schedule (roll-out period, or ``"sent"`` without roll-outs): the
        :meth:`BookingEffectModel.effects` over its resolved bookings, cancelled ones included
        (``"visits"``, ``"no_shows"``, ``"cancellations"``).
    per_booking_key : str or None
        The entry of `per_booking` the sentence reports (the current regime).
    sample : PatientSample or None
        Set when the clinic had more patients than the rules' ``model.max_patients`` and was evaluated on a
        random sample of them (:func:`crm_analysis.sampling.patient_sample`): the table, its counts and the
        costs are then the sample's; the effects and rates estimate the whole clinic's.
    """

    as_of: pd.Timestamp
    table: pd.DataFrame = field(repr=False)
    model: ReminderEffectModel = field(repr=False)
    crude: Estimate
    mantel_haenszel: Estimate | None
    adjusted: Mapping[str, tuple]
    headline_key: str
    pilot: PilotResult | None
    its: ITSResult | None
    schedules: pd.DataFrame | None = field(repr=False)
    step_2h: Estimate | None
    costs: pd.DataFrame = field(repr=False)
    revenue_per_visit: float | None
    notes: tuple = ()
    rules: Mapping[str, Any] = field(default_factory=dict, repr=False)
    bookings: BookingEffectModel | None = field(default=None, repr=False)
    per_booking: Mapping[str, Mapping[str, Estimate]] = field(default_factory=dict)
    per_booking_key: str | None = None
    sample: PatientSample | None = None

    # ------------------------------------------------------------ text
    def headline(self, lang: str = "ko") -> str:
        """One plain sentence for management: the adjusted effect and its CI."""
        rd, _ = self.adjusted[self.headline_key]
        return headline_sentence(rd, self.headline_key, lang)

    def visits_sentence(self, lang: str = "ko") -> str:
        """What the current reminders keep per 100 bookings, in one sentence: extra attended visits, with the
        no-shows they avoid and the cancellations they cause (or why it cannot be said)."""
        check_lang(lang)
        if self.per_booking_key is None:
            return label("rem_visits_unknown", lang)
        e = self.per_booking[self.per_booking_key]
        v, ns, c = e["visits"], e["no_shows"], e["cancellations"]
        who = label("rem_visits_who_sent" if self.per_booking_key == "sent" else "rem_visits_who_period", lang)
        key = "rem_visits_sentence" if self.bookings is not None and self.bookings.cancellation_ is not None \
            else "rem_visits_sentence_no_cancellations"
        text = label(key, lang).format(who=who.format(period=self.per_booking_key), level=f"{v.conf_level:.0%}",
                                       visits=v.estimate * 100, v_lo=v.ci_low * 100, v_hi=v.ci_high * 100,
                                       ns=ns.estimate * 100, ns_lo=ns.ci_low * 100, ns_hi=ns.ci_high * 100,
                                       c=c.estimate * 100, c_lo=c.ci_low * 100, c_hi=c.ci_high * 100)
        rho = v.extras.get("refill_rate", 0.0)
        if rho > 0:
            text += " " + label("rem_visits_refill", lang).format(rho=rho * 100)
        return text

    def visits_table(self, lang: str = "ko") -> pd.DataFrame:
        """Per planned schedule: bookings, extra attended visits, no-shows avoided and extra cancellations per
        100 bookings with their CIs (a one-cell note when the per-booking model could not be fitted)."""
        check_lang(lang)
        if not self.per_booking:
            return self._note_frame("rem_note_no_booking_model", lang)
        bookings = pd.DataFrame({"n": [int(e["visits"].n) for e in self.per_booking.values()]})
        hidden = _hidden(bookings, ["n"])["n"].to_numpy()
        rows = []
        for (key, e), n, h in zip(self.per_booking.items(), bookings["n"], hidden):
            row = {label("rem_planned", lang): label("rem_plan_sent", lang) if key == "sent" else key,
                   label("rem_bookings", lang): _count(n, h)}
            for name in BOOKING_EFFECTS:
                x = e[name]
                row[label(f"rem_per_100_{name}", lang)] = MISSING if h or math.isnan(x.estimate) else \
                    f"{x.estimate * 100:+.1f} ({x.ci_low * 100:+.1f} ~ {x.ci_high * 100:+.1f})"
            rows.append(row)
        return pd.DataFrame(rows)

    def note_texts(self, lang: str = "ko") -> list[str]:
        """The skipped analyses and data limits, as sentences (first, whether the clinic was sampled)."""
        return [self.sample_sentence(lang)] * (self.sample is not None) + [label(k, lang) for k in self.notes]

    def sample_sentence(self, lang: str = "ko") -> str:
        """What the patient sample kept, or "" when every patient was evaluated."""
        if self.sample is None:
            return ""
        s = self.sample
        return label("rem_note_sample", lang).format(patients=s.patients, of=s.of, share=s.fraction,
                                                     factor=1 / s.fraction)

    def explain_crude(self, lang: str = "ko") -> str:
        """One plain sentence on why the crude and adjusted estimates differ."""
        c = self.crude.extras
        rd, _ = self.adjusted["reminded"]
        text = label("rem_explain_crude", lang)
        return text.format(crude=self.crude.estimate * 100, adjusted=rd.estimate * 100,
                           base_reminded=rd.extras["mean_p_control"] * 100,
                           rate_not=c["rate_not_reminded"] * 100)

    # ----------------------------------------------------------- tables
    def comparison_table(self, lang: str = "ko") -> pd.DataFrame:
        """Crude, Mantel–Haenszel, adjusted and pilot estimates side by side (formatted text)."""
        check_lang(lang)
        rows = [("rem_row_crude", self.crude)]
        if self.mantel_haenszel is not None:
            rows.append(("rem_row_mh", self.mantel_haenszel))
        for key, (rd, rr) in self.adjusted.items():
            name = "rem_row_adjusted_reminded" if key == "reminded" else "rem_row_adjusted_period"
            rows.append((label(name, lang).format(period=key), rd))
        if self.pilot is not None:
            rows.append(("rem_row_pilot", self.pilot.risk_difference))
        out = []
        for key, e in rows:  # each estimate has its own population: no column adds up, so no secondary suppression
            h = _few(e.n)
            out.append({label("rem_analysis", lang): label(key, lang) if key.startswith("rem_") else key,
                        label("rem_scale", lang): label(f"rem_scale_{e.scale}", lang),
                        label("rem_estimate", lang): MISSING if h else _fmt(e.estimate, e.scale),
                        label("rem_ci", lang): MISSING if h else
                        f"{_fmt(e.ci_low, e.scale)} ~ {_fmt(e.ci_high, e.scale)}",
                        label("rem_p_value", lang): MISSING if h else p_value_text(e.p_value),
                        label("rem_n", lang): _count(e.n, h)})
        return pd.DataFrame(out)

    def _note_frame(self, key: str, lang: str) -> pd.DataFrame:
        return pd.DataFrame({label("rem_note", lang): [label(key, lang)]})

    def pilot_table(self, lang: str = "ko") -> pd.DataFrame:
        """The pilot's arms (a one-cell note without a pilot)."""
        if self.pilot is None:
            return self._note_frame("rem_note_no_pilot", lang)
        a = self.pilot.arms
        hidden = _hidden(a, ["appointments"])["appointments"].to_numpy()  # the arms add up to the pilot's n
        gone = hidden | _few(a["no_shows"]) | _few(a["appointments"] - a["no_shows"])
        return pd.DataFrame({
            label("rem_arm", lang): [label(f"rem_arm_{x}", lang) for x in a["arm"]],
            label("rem_appointments", lang): [_count(x, h) for x, h in zip(a["appointments"], hidden)],
            label("rem_no_show_rate", lang): [MISSING if g else format_number(x, "rate")
                                              for x, g in zip(a["no_show_rate"], gone)],
            label("rem_ci", lang): [MISSING if g else f"{format_number(lo, 'rate')} ~ {format_number(hi, 'rate')}"
                                    for lo, hi, g in zip(a["ci_low"], a["ci_high"], gone)]})

    def pilot_sentence(self, lang: str = "ko") -> str:
        """How the pilot's arms were read: as allocated (intention to treat) or from the reminders sent (per
        protocol); empty without a pilot."""
        if self.pilot is None:
            return ""
        return label("rem_pilot_itt" if self.pilot.by_allocation else "rem_pilot_per_protocol", lang)

    def planner_table(self, lang: str = "ko") -> pd.DataFrame:
        """Appointments per arm the next pilot needs, for a few effect sizes.

        The control rate is the pilot's control arm when there was a pilot,
        else the adjusted no-reminder rate of the headline population.
        """
        base = (self.pilot.risk_difference.extras["rate_control"] if self.pilot is not None
                else self.adjusted[self.headline_key][0].extras["mean_p_control"])
        effects = [e for e in (-0.02, -0.03, -0.05, -0.08) if 0 < base + e < 1]
        plan = plan_pilot(base, effects, rules=self.rules)
        return pd.DataFrame({label("rem_plan_effect", lang): [f"{x * 100:+.0f}%p" for x in plan["risk_difference"]],
                             label("rem_plan_rates", lang): [
                                 f"{format_number(a, 'rate')} → {format_number(b, 'rate')}"
                                 for a, b in zip(plan["control_rate"], plan["reminder_rate"])],
                             label("rem_plan_n", lang): [format_number(x, "count") for x in plan["n_per_arm"]]})

    def plot_its(self, lang: str = "ko", ax=None):
        """The ITS chart (observed, fitted, counterfactual); None without a time series."""
        if self.its is None:
            return None
        return plot_its(self.its, lang=lang, ax=ax)

    def its_table(self, lang: str = "ko") -> pd.DataFrame:
        """Level changes at each roll-out (a one-cell note without a time series)."""
        if self.its is None:
            key = next((k for k in self.notes if k.startswith("rem_note_its") or k == "rem_note_no_rollout"),
                       "rem_note_no_rollout")
            return self._note_frame(key, lang)
        out = []
        for name, e in self.its.level_changes.items():
            date = dict(self.its.rollouts)[name]
            out.append({label("rem_rollout", lang): f"{name} ({date:%Y-%m-%d})",
                        label("rem_level_change", lang): _fmt(e.estimate, e.scale),
                        label("rem_ci", lang): f"{_fmt(e.ci_low, e.scale)} ~ {_fmt(e.ci_high, e.scale)}",
                        label("rem_p_value", lang): p_value_text(e.p_value)})
        return pd.DataFrame(out)

    def schedule_table(self, lang: str = "ko") -> pd.DataFrame:
        """No-show rate per received schedule, crude and adjusted (a one-cell note when not estimable)."""
        if self.schedules is None:
            key = next((k for k in self.notes if k in ("rem_note_schedule_unknown", "rem_note_one_schedule")),
                       "rem_note_one_schedule")
            return self._note_frame(key, lang)
        s = self.schedules
        hidden = _hidden(s, ["appointments"])["appointments"].to_numpy()  # the schedules add up to the appointments
        no_shows = (s["crude_rate"] * s["appointments"]).round()
        gone = hidden | _few(no_shows) | _few(s["appointments"] - no_shows)

        def shown(values, text):
            return [MISSING if g or pd.isna(x) else text(x) for x, g in zip(values, gone)]

        return pd.DataFrame({
            label("rem_schedule", lang): [label("rem_none", lang) if x == "none" else x for x in s["schedule"]],
            label("rem_appointments", lang): [_count(x, h) for x, h in zip(s["appointments"], hidden)],
            label("rem_crude_rate", lang): shown(s["crude_rate"], lambda x: format_number(x, "rate")),
            label("rem_adjusted_rate", lang): shown(s["adjusted_rate"], lambda x: format_number(x, "rate")),
            label("rem_odds_ratio", lang): shown(s["odds_ratio"], lambda x: f"{x:.2f}"),
            label("rem_ci", lang): [MISSING if g or math.isnan(lo) else f"{lo:.2f} ~ {hi:.2f}"
                                    for lo, hi, g in zip(s["or_ci_low"], s["or_ci_high"], gone)]})

    def cost_effect_sentence(self, lang: str = "ko") -> str:
        """Which estimate the cost-benefit values the visits with (the rules' ``cost_effect``), in one sentence."""
        check_lang(lang)
        effect = self.costs.attrs.get("effect", "adjusted") if self.costs is not None else "adjusted"
        if effect == "pilot":
            return label("rem_cost_effect_pilot", lang).format(month=self.rules["pilot_month"])
        wanted = self.rules.get("cost_effect", "adjusted") if self.rules else "adjusted"
        return label("rem_cost_effect_adjusted" if wanted == "adjusted" else "rem_cost_effect_no_pilot", lang)

    def cost_table(self, lang: str = "ko") -> pd.DataFrame:
        """Monthly cost–benefit in KRW: extra attended visits with the extra cancellations beside them (revenue
        columns dropped when revenue is unknown; "–" for a month whose planned bookings are not known)."""
        check_lang(lang)
        c = self.costs
        # each column adds up over the months; a message's cost gives its count, a month's effects its bookings
        hidden = _hidden(c, ["bookings_planned", "messages"])
        booked, sent = hidden["bookings_planned"].to_numpy(), hidden["messages"].to_numpy()
        c = c.assign(**{col: c[col].astype("float64").mask(booked) for col in c.columns
                        if col.startswith(("extra_", "revenue_kept", "net_"))})

        def interval(x, lo, hi, fmt):
            return MISSING if pd.isna(x) else f"{x:{fmt}} ({lo:{fmt}} ~ {hi:{fmt}})"

        out = pd.DataFrame({
            label("rem_month", lang): c["month"],
            label("rem_bookings_planned", lang): [_count(x, h) for x, h in zip(c["bookings_planned"], booked)],
            label("rem_messages", lang): [_count(x, h) for x, h in zip(c["messages"], sent)],
            label("rem_message_cost", lang): [MISSING if h else format_number(x) for x, h in
                                              zip(c["message_cost"].round(), sent)],
            label("rem_extra_visits", lang): [interval(x, lo, hi, ",.1f") for x, lo, hi in
                                              zip(c["extra_visits"], c["extra_visits_ci_low"],
                                                  c["extra_visits_ci_high"])],
            label("rem_extra_cancellations", lang): [interval(x, lo, hi, ",.1f") for x, lo, hi in
                                                     zip(c["extra_cancellations"], c["extra_cancellations_ci_low"],
                                                         c["extra_cancellations_ci_high"])]})
        if self.revenue_per_visit is not None:
            out[label("rem_revenue_kept", lang)] = [format_number(round(x) if pd.notna(x) else x)
                                                    for x in c["revenue_kept"]]
            out[label("rem_net_benefit", lang)] = [interval(x, lo, hi, ",.0f") for x, lo, hi in
                                                   zip(c["net_benefit"], c["net_ci_low"], c["net_ci_high"])]
        return out

    def step_2h_sentence(self, lang: str = "ko") -> str:
        """Is the 2-hour message worth its cost? One sentence (or why it cannot be said)."""
        e = self.step_2h
        if e is None:
            return label("rem_no_2h", lang)
        if e.extras.get("n_informative", 0) < int(self.rules.get("min_informative_step", 300)):
            return label("rem_2h_too_few", lang).format(rd=e.estimate * 100, lo=e.ci_low * 100, hi=e.ci_high * 100,
                                                        n=e.extras.get("n_informative", 0))
        if "net_value_per_message" not in e.extras:
            return label("rem_2h_effect_only", lang).format(rd=e.estimate * 100, lo=e.ci_low * 100,
                                                             hi=e.ci_high * 100)
        x = e.extras
        return label("rem_2h_value", lang).format(rd=e.estimate * 100, lo=e.ci_low * 100, hi=e.ci_high * 100,
                                                   value=x["value_per_message"], cost=x["cost_per_message"],
                                                   net=x["net_value_per_message"], net_lo=x["net_value_ci_low"],
                                                   net_hi=x["net_value_ci_high"])

    def summary(self) -> pd.DataFrame:
        """Every estimate as one table (numbers, for analysts)."""
        rows = {"crude": self.crude}
        if self.mantel_haenszel is not None:
            rows["mantel_haenszel"] = self.mantel_haenszel
        for key, (rd, rr) in self.adjusted.items():
            rows[f"adjusted_rd[{key}]"] = rd
            rows[f"adjusted_rr[{key}]"] = rr
        if self.pilot is not None:
            rows["pilot_rd"] = self.pilot.risk_difference
            rows["pilot_rr"] = self.pilot.risk_ratio
        if self.its is not None:
            rows.update({f"its_level_change[{k}]": v for k, v in self.its.level_changes.items()})
        if self.step_2h is not None:
            rows["step_2h"] = self.step_2h
        for key, effects in self.per_booking.items():
            rows.update({f"per_booking_{name}[{key}]": e for name, e in effects.items()})
        from crm_analysis.estimates import estimates_frame

        return estimates_frame(rows, name="name")

    def _repr_html_(self) -> str:
        sample = f"<p>{escape(self.sample_sentence('en'))}</p>" if self.sample is not None else ""
        return (f"<h4>Reminder evaluation as of {self.as_of:%Y-%m-%d}</h4><p>{escape(self.headline('en'))}</p>"
                f"<p>{escape(self.visits_sentence('en'))}</p>{sample}"
                + self.comparison_table("en").to_html(index=False))


def _fmt(value: float, scale: str) -> str:
    if value is None or math.isnan(value):
        return "–"
    if scale == "risk_difference":
        return f"{value * 100:+.1f}%p"
    return f"{value:.2f}"


def _few(n) -> bool | np.ndarray:
    """Whether a count (or each of an array of counts) is small enough to hide: 1 to 4."""
    n = np.asarray(n, dtype=float)
    return (n >= 1) & (n < DEFAULT_MIN_COUNT)


def _hidden(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Which of `columns` to hide: small counts, and secondary suppression down each column (a column of a
    reminder table adds up to a total the report publishes: the pilot's arms, the schedules, the months)."""
    return suppressed_mask(table[columns].reset_index(drop=True), columns, DEFAULT_MIN_COUNT, additive="columns")


def _count(n, hidden: bool) -> str:
    """A count as the tables show it: ``<5`` when hidden, a dash when not known."""
    return format_number(None, "count", hidden_below=DEFAULT_MIN_COUNT) if hidden else format_number(n, "count")


def headline_sentence(rd: Estimate, period: str, lang: str = "ko") -> str:
    """The one-sentence answer for management, from a standardised risk difference.

    Parameters
    ----------
    rd : Estimate
        From :meth:`ReminderEffectModel.marginal_effect`.
    period : str
        The roll-out period's schedule (e.g. ``"3d+1d+2h"``) or ``"reminded"``.
    lang : {"ko", "en"}
    """
    check_lang(lang)
    p0, p1 = rd.extras["mean_p_control"] * 100, rd.extras["mean_p_treated"] * 100
    who = label("rem_who_reminded" if period in ("reminded", "all") else "rem_who_period", lang).format(period=period)
    if rd.ci_high < 0:
        key = "rem_headline_lower"
    elif rd.ci_low > 0:
        key = "rem_headline_higher"
    else:
        key = "rem_headline_unclear"
    return label(key, lang).format(who=who, rd=abs(rd.estimate) * 100, lo=abs(rd.ci_high) * 100,
                                   hi=abs(rd.ci_low) * 100, lo_signed=rd.ci_low * 100, hi_signed=rd.ci_high * 100,
                                   p0=p0, p1=p1, level=f"{rd.conf_level:.0%}")


def _effective_rules(table: pd.DataFrame, rules) -> tuple[Mapping, list[str]]:
    """Drop programme dates outside the data's window, with notes."""
    r, dropped = rules_within(rules, table["scheduled_at"].min(), table["scheduled_at"].max())
    return r, ["rem_note_rollouts_outside"] if dropped else []


def evaluate_reminders(clinic: ClinicData, as_of: str | pd.Timestamp, rules=None,
                       revenue: float | None = None, conf_level: float = 0.95) -> ReminderEvaluation:
    """Run every reminder analysis the data allows.

    Parameters
    ----------
    clinic : ClinicData
        Usually ``load_clinic(...).snapshot(as_of)``.
    as_of : str or Timestamp
    rules : path, mapping or None
        Reminder rules (``crm_analysis/rules/reminders.yaml`` by default).
    revenue : float, optional
        Revenue per attended visit (KRW); default the rules' value, else the
        mean charge per visit in the data.
    conf_level : float

    Returns
    -------
    ReminderEvaluation

    Raises
    ------
    MissingTableError
        Without an appointments table.
    CrmAnalysisError
        If no appointment ever received a reminder.

    Notes
    -----
    A clinic with more patients than the rules' ``model.max_patients``
    (100,000 by default) is evaluated on a random sample of that many
    patients with all their appointments (:func:`crm_analysis.sampling.patient_sample`;
    the same patients on every run). Each sampled patient's history is
    complete and errors are clustered by patient, so the effects, rates and
    their intervals estimate the whole clinic's; the counts and amounts are the
    sample's, and :attr:`ReminderEvaluation.sample` and the first of
    :meth:`ReminderEvaluation.note_texts` say so.
    """
    with one_blas_thread():  # tall, thin products: threaded BLAS costs many times the CPU on a busy machine
        return _evaluate(clinic, pd.Timestamp(as_of).normalize(), rules, revenue, conf_level)


def evaluated_patients(clinic: ClinicData, rules=None) -> tuple[ClinicData, PatientSample | None]:
    """The patients the reminder models are fitted on: the whole `clinic`, or above the rules'
    ``model.max_patients`` a random sample of that many with all their rows
    (:func:`crm_analysis.sampling.patient_sample`: the same patients for the evaluation, the no-show
    back-test and the cards' no-show model).

    Returns
    -------
    (ClinicData, PatientSample or None)
    """
    return patient_sample(clinic, load_rules(rules)["model"]["max_patients"])


def _evaluate(clinic: ClinicData, as_of: pd.Timestamp, rules, revenue: float | None,
              conf_level: float) -> ReminderEvaluation:
    require("reminders", clinic, as_of)
    clinic, sample = evaluated_patients(clinic, rules)
    table = appointment_table(clinic, as_of, rules)
    if not (table["analysed"] & table["reminded"]).any():
        raise InsufficientDataError(
            "reminders", "Reminder evaluation: no non-cancelled appointment up to as_of received a reminder, so there "
                         "is no reminder effect to evaluate; check that the reminders table is loaded (mapping file).",
            "예약 알림 평가: 기준일까지 알림을 받은 (취소되지 않은) 예약이 없어 효과를 평가할 수 없습니다. "
            "알림 발송 기록이 매핑되었는지 확인하세요.")
    r, notes = _effective_rules(table, rules)
    model = ReminderEffectModel(r, conf_level).fit(table)
    first = r["rollouts"][0]["date"] if r["rollouts"] else None
    crude = crude_effect(table, since=first, conf_level=conf_level)
    try:
        mh = mantel_haenszel(table, r, conf_level)
    except CrmAnalysisError:
        mh = None
    adjusted = {}
    for name, mask in period_masks(table, r).items():
        if name != "all" and mask.sum() > 0:
            adjusted[name] = model.marginal_effect(table, mask, estimand=f"eligible appointments, period {name}: "
                                                   "no-show rate with reminders as received minus none")
    reminded = (table["analysed"] & table["reminded"]).to_numpy()
    if first is not None:
        reminded &= (table["scheduled_at"] >= pd.Timestamp(first)).to_numpy()
    adjusted["reminded"] = model.marginal_effect(table, reminded, estimand="appointments that received a "
                                                 "reminder: no-show rate with reminders as received minus none")
    headline_key = next(iter(k for k in reversed(list(adjusted)) if k != "reminded"), "reminded")
    pilot = its = None
    if r["pilot_month"]:
        try:
            pilot = pilot_analysis(table, rules=r, conf_level=conf_level)
        except CrmAnalysisError:
            notes.append("rem_note_no_pilot")
    else:
        notes.append("rem_note_no_pilot")
    if r["rollouts"]:
        try:
            its = interrupted_time_series(table, r, conf_level)
            if its.plausibility_check:  # the monthly-rate model: its intervals are too narrow to be read as CIs
                notes.append("rem_note_its_plausibility")
        except CrmAnalysisError:
            notes.append("rem_note_its_short")
    else:
        notes.append("rem_note_no_rollout")
    received = table.loc[table["analysed"].to_numpy(), "schedule"].astype(str).value_counts()
    variants = [v for v in received.index if v != "none" and received[v] >= int(r["model"]["min_level_count"])]
    try:
        if len(variants) < 2:  # one schedule only: nothing to compare (and no second model to fit)
            raise CrmAnalysisError("one reminder schedule only")
        schedules, _ = schedule_comparison(table, reference_mask=period_masks(table, r)[headline_key]
                                           if headline_key != "reminded" else reminded, rules=r,
                                           conf_level=conf_level)
    except CrmAnalysisError:
        schedules = None
    if schedules is None:
        notes.append("rem_note_schedule_unknown" if variants == ["unknown"] else "rem_note_one_schedule")
    rev = revenue if revenue is not None else r["revenue_per_visit_krw"]
    if rev is None:
        rev = revenue_per_visit(clinic, as_of)
    if rev is None:
        notes.append("rem_note_no_revenue")
    step_2h = None
    if "rem_2h" in model.steps_:
        cost_2h = step_cost_per_appointment(clinic, "2h", as_of, r)
        step_2h = step_value(model, table, "2h", rev, cost_2h)
    bookings, per_booking = _per_booking(table, r, conf_level, notes)
    per_booking_key = headline_key if headline_key in per_booking else next(reversed(list(per_booking)), None)
    costs = cost_benefit(table, model, rev, r, bookings=bookings)
    return ReminderEvaluation(as_of, table, model, crude, mh, adjusted, headline_key, pilot, its, schedules, step_2h,
                              costs, rev, tuple(dict.fromkeys(notes)), r, bookings, per_booking, per_booking_key,
                              sample)


def _per_booking(table: pd.DataFrame, rules: Mapping, conf_level: float,
                 notes: list[str]) -> tuple[BookingEffectModel | None, dict]:
    """The per-booking model and its effects per planned schedule; notes on what limits them."""
    try:
        bookings = BookingEffectModel(rules, conf_level).fit(table)
        planned = bookings.planned(table).to_numpy()
        per_booking = {plan: bookings.effects(table, planned == plan, estimand=f"resolved bookings planned {plan} "
                                                                             "(cancelled ones included)")
                       for plan in bookings.plans_}
    except CrmAnalysisError:
        notes.append("rem_note_no_booking_model")
        return None, {}
    if bookings.cancellation_ is None:
        notes.append("rem_note_no_cancellations")
    elif bookings.planned_from_ == "sent":
        notes.append("rem_note_planned_from_sent")
    return bookings, per_booking
