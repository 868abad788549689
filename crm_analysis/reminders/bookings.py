"""What reminders keep per booking: attended visits, no-shows avoided and extra cancellations.

Revenue comes from attended visits. A reminder avoids some no-shows, but it
also makes some patients cancel ahead of time (in the demo clinic the
cancellation probability rises from 0.05 to 0.08 when a reminder arrives), and
a slot cancelled at short notice is often not filled again. The no-show effect
among non-cancelled appointments (:mod:`~crm_analysis.reminders.adjusted`)
therefore overstates what reminders keep. The revenue outcome is **attended
visits per booking**, over every booking, cancelled ones included.

Exposure: the schedule planned at booking
    A cancelled appointment's later reminders are never sent, so the reminders
    *received* are cut short by the very outcome studied (in the demo clinic
    70–85% of the cancelled eligible appointments have no reminder row at all).
    The exposure here is the schedule planned when the appointment was booked,
    from the roll-out history of the rules (``rollouts``): an eligible
    appointment (booked at least ``eligible_min_lead_days`` ahead) scheduled
    from a roll-out's date is planned that roll-out's schedule, any other
    appointment none. The contrast is intention-to-treat: unreachable patients
    and failed deliveries count where they were planned. Eligible appointments
    of a randomised pilot month are left out (the arm of a cancelled one is not
    in the data). Without a roll-out history in the data's window, the plan is
    "a message was sent" (``sent_any``), which misses appointments cancelled
    before their first message: the effect on cancellations is then
    understated, and :class:`~crm_analysis.reminders.ReminderEvaluation` says so.

Model: two logistic stages (continuation-ratio logits)
    ``c(x, s) = P(cancelled | x, s)`` over the resolved bookings and
    ``p(x, s) = P(no-show | not cancelled, x, s)`` over the non-cancelled ones,
    each the :class:`~crm_analysis.reminders.adjusted.ReminderEffectModel`
    design (lead-time spline, earlier no-shows and visits, weekday, hour,
    department, age band, month of year, trend; errors clustered by patient)
    with one indicator per planned schedule ``s``. A booking yields
    ``kept(x, s) = (1 − c)(1 − p) + ρ·c`` visits, ρ being the rules'
    ``slot_refill_rate`` (the share of cancelled slots another patient fills;
    0 by default). Over a group of bookings, per booking:

    * extra visits = mean kept(x, planned) − kept(x, none);
    * no-shows avoided = mean (1 − c₀)·p₀ − (1 − c₁)·p₁;
    * extra cancellations = mean c₁ − c₀;

    so that extra visits = no-shows avoided − (1 − ρ) × extra cancellations.
    One logistic model of "attended" instead would be misspecified (the product
    of the two stages is not a logistic curve) and, on the demo clinics,
    understates the gain by about a sixth. Confidence intervals come from the
    delta method; the two stages' likelihoods factorise (as for any
    continuation-ratio model), so their estimates are asymptotically
    independent and the covariance is block-diagonal. An export that records no
    cancellation at all (c = 0) gets the no-show stage only, and cannot show
    the cancellations reminders cause.
"""

from __future__ import annotations

import re
from html import escape

import numpy as np
import pandas as pd
from scipy import sparse, stats

from crm_analysis.estimates import Estimate
from crm_analysis.exceptions import CrmAnalysisError
from crm_analysis.reminders.adjusted import ReminderEffectModel
from crm_analysis.reminders.rules import load_rules

__all__ = ["planned_schedule", "BookingEffectModel", "BOOKING_EFFECTS"]

#: The three per-booking effects, in the order shown.
BOOKING_EFFECTS = ("visits", "no_shows", "cancellations")
#: Indicator columns of the planned schedules: they start with ``rem_``, as the model's step columns do.
_PLAN_PREFIX = "rem_plan_"


def _plan_column(label: str) -> str:
    return _PLAN_PREFIX + re.sub(r"\W", "_", str(label))


def planned_schedule(table: pd.DataFrame, rules=None) -> tuple[pd.Series, str]:
    """The reminder schedule planned for each appointment when it was booked.

    Parameters
    ----------
    table : DataFrame
        From :func:`~crm_analysis.reminders.analysis_table.appointment_table`.
    rules : path, mapping or None
        Reminder rules; their ``rollouts`` (and ``pilot_month``) should be
        those inside the data's window (:func:`~crm_analysis.reminders.rules.rules_within`).

    Returns
    -------
    (Series, str)
        The planned schedule of each row — a roll-out's schedule (or
        ``"from YYYY-MM-DD"`` when the roll-out names none), ``"none"``, or
        missing for an eligible appointment of the pilot month — and where the
        plan came from: ``"rollouts"``, or ``"sent"`` without roll-outs (then the
        plan is ``"sent"`` when a message was sent, else ``"none"``).
    """
    r = load_rules(rules)
    rollouts = list(r["rollouts"] or [])
    if not rollouts:
        labels = np.where(table["sent_any"].to_numpy(dtype=bool), "sent", "none").astype(object)
        return pd.Series(labels, index=table.index, name="planned"), "sent"
    labels = np.full(len(table), "none", dtype=object)
    eligible = table["eligible"].to_numpy(dtype=bool)
    at = table["scheduled_at"]
    dates = [pd.Timestamp(x["date"]) for x in rollouts] + [pd.Timestamp.max]
    for item, lo, hi in zip(rollouts, dates[:-1], dates[1:]):
        inside = ((at >= lo) & (at < hi)).to_numpy()
        labels[eligible & inside] = str(item.get("schedule") or f"from {lo:%Y-%m-%d}")
    if r["pilot_month"]:
        month = pd.Period(str(r["pilot_month"]), freq="M")
        pilot = ((at >= month.start_time) & (at < (month + 1).start_time)).to_numpy()
        labels[eligible & pilot] = None  # randomised: a cancelled appointment's arm is not in the data
    return pd.Series(labels, index=table.index, name="planned"), "rollouts"


class BookingEffectModel:
    """Reminders' effect per booking: attended visits, no-shows and cancellations, from two logistic stages.

    See the module docstring for the exposure (the schedule planned at
    booking), the two stages and the estimands.

    Parameters
    ----------
    rules : path, mapping or None
        Reminder rules: roll-outs and pilot month (those inside the data's
        window), the ``model`` section, and ``slot_refill_rate``.
    conf_level : float
        Level of every interval, default 0.95.

    Attributes
    ----------
    no_show_ : ReminderEffectModel
        P(no-show | not cancelled), fitted on the non-cancelled bookings with a known plan.
    cancellation_ : ReminderEffectModel or None
        P(cancelled), fitted on the resolved bookings with a known plan; None when the export records
        no cancellation.
    plans_ : list of str
        The planned schedules with an indicator in the model.
    planned_from_ : {"rollouts", "sent"}
        Where the plan came from (see :func:`planned_schedule`).
    refill_rate_ : float
        ρ, the share of cancelled slots filled again.
    n_bookings_, n_patients_ : int
        Resolved bookings with a known plan, and their patients.

    Examples
    --------
    >>> model = BookingEffectModel(rules).fit(table)            # doctest: +SKIP
    >>> model.effects(table)["visits"]                          # doctest: +SKIP
    """

    def __init__(self, rules=None, conf_level: float = 0.95):
        self.rules = load_rules(rules)
        self.conf_level = conf_level

    # ----------------------------------------------------------------- data
    def _frames(self, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, str]:
        """The two stages' input frames (the model's columns, with the plan as step indicators), the plan, its source.

        In each frame ``analysed`` marks the stage's rows and ``no_show`` holds its outcome (cancelled, or
        no-show), as :class:`ReminderEffectModel` reads them.
        """
        labels, source = planned_schedule(table, self.rules)
        known = labels.notna().to_numpy()
        cancelled = table["cancelled"].to_numpy(dtype=float)
        resolved = known & ~np.isnan(cancelled)
        base = ReminderEffectModel(self.rules, self.conf_level)
        columns = {c: table[c] for c in base.input_columns(table) if c not in ("analysed", "no_show")}
        plans = [x for x in dict.fromkeys(labels[known & (labels != "none").to_numpy()])]
        for plan in plans:
            columns[_plan_column(plan)] = (labels == plan).to_numpy().astype(np.int64)
        frame = pd.DataFrame(columns, index=table.index)
        cancel = frame.assign(analysed=resolved, no_show=np.where(resolved, cancelled, np.nan))
        attended = resolved & (cancelled == 0)
        no_show = frame.assign(analysed=attended, no_show=np.where(attended, table["no_show"].to_numpy(dtype=float),
                                                                   np.nan))
        return cancel, no_show, labels, source

    def bookings(self, table: pd.DataFrame) -> np.ndarray:
        """Resolved bookings (attended, no-show, cancelled or rescheduled) with a known plan: the model's rows."""
        labels, _ = planned_schedule(table, self.rules)
        return labels.notna().to_numpy() & table["cancelled"].notna().to_numpy()

    def planned(self, table: pd.DataFrame) -> pd.Series:
        """The schedule planned for each row of `table` (see :func:`planned_schedule`)."""
        return planned_schedule(table, self.rules)[0]

    # ------------------------------------------------------------------ fit
    def fit(self, table: pd.DataFrame) -> "BookingEffectModel":
        """Fit both stages on the bookings of `table` (an analysis table); returns self.

        Raises
        ------
        CrmAnalysisError
            If no resolved booking had a schedule planned, or a stage cannot be fitted
            (:class:`~crm_analysis.exceptions.InsufficientDataError` on thin data).
        """
        cancel, no_show, labels, source = self._frames(table)
        rows = cancel["analysed"].to_numpy()
        if not (rows & (labels != "none").to_numpy()).any():
            raise CrmAnalysisError("booking effect model: no resolved booking had a reminder planned, so there is "
                                   "nothing to compare; check the roll-out dates in the reminder rules")
        self.planned_from_ = source
        self.refill_rate_ = float(self.rules["slot_refill_rate"])
        self.no_show_ = ReminderEffectModel(self.rules, self.conf_level).fit(no_show)
        has_cancellations = np.nansum(cancel["no_show"].to_numpy()[rows]) > 0
        self.cancellation_ = ReminderEffectModel(self.rules, self.conf_level).fit(cancel) if has_cancellations else None
        steps = set(self.no_show_.steps_) | set(self.cancellation_.steps_ if self.cancellation_ is not None else ())
        self.plans_ = [p for p in dict.fromkeys(labels[rows]) if p != "none" and _plan_column(p) in steps]
        self.n_bookings_ = int(rows.sum())
        self.n_patients_ = int(table["patient_id"][rows].nunique())
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "no_show_"):
            raise CrmAnalysisError("BookingEffectModel is not fitted yet: call .fit(table) first")

    # ------------------------------------------------------------- effects
    def _stages(self, table: pd.DataFrame, mask) -> tuple[dict, np.ndarray]:
        """Per row of `mask` with a known plan and outcome, each stage's :meth:`ReminderEffectModel.contrast`
        (as planned against no reminder); and those rows."""
        cancel, no_show, labels, _ = self._frames(table)
        rows = cancel["analysed"].to_numpy() if mask is None else np.asarray(mask, dtype=bool) & cancel["analysed"].to_numpy()
        if not rows.any():
            raise CrmAnalysisError("booking effect: no resolved booking with a known plan among the rows asked for")
        stages = {"p": self.no_show_.contrast(no_show, None, 0, rows)}
        if self.cancellation_ is not None:
            stages["c"] = self.cancellation_.contrast(cancel, None, 0, rows)
        return stages, rows

    def _sums(self, stages: dict, codes: np.ndarray, n_groups: int) -> dict[str, tuple[np.ndarray, np.ndarray, tuple]]:
        """Per group: each effect summed over its bookings (planned minus none), its standard error, and the
        two scenarios' summed values."""
        p1, p0 = stages["p"][0], stages["p"][1]
        c1, c0 = (stages["c"][0], stages["c"][1]) if "c" in stages else (np.zeros_like(p1), np.zeros_like(p0))
        rho = self.refill_rate_
        # each effect as a value per booking under a scenario, with its derivatives in c and in p
        effects = {
            "visits": (lambda c, p: (1 - c) * (1 - p) + rho * c, lambda c, p: rho - (1 - p), lambda c, p: -(1 - c)),
            "no_shows": (lambda c, p: -(1 - c) * p, lambda c, p: p, lambda c, p: -(1 - c)),  # avoided: minus no-shows
            "cancellations": (lambda c, p: c, lambda c, p: np.ones_like(c), lambda c, p: np.zeros_like(p)),
        }
        onehot = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(n_groups, len(codes)))
        models = {"p": self.no_show_, "c": self.cancellation_}
        out = {}
        for name, (f, f_c, f_p) in effects.items():
            v1, v0 = f(c1, p1), f(c0, p0)
            var = np.zeros(n_groups)
            for key, d1, d0, q1, q0 in (("c", f_c(c1, p1), f_c(c0, p0), c1, c0),
                                        ("p", f_p(c1, p1), f_p(c0, p0), p1, p0)):
                if key not in stages:
                    continue
                _, _, xc, s1, s0 = stages[key]
                w1, w0 = d1 * q1 * (1 - q1), d0 * q0 * (1 - q0)  # d value / d linear predictor, each scenario
                grad = np.hstack([np.asarray(onehot @ (xc * (w1 - w0)[:, None])),
                                  np.asarray(onehot @ (s1 * w1[:, None]) - onehot @ (s0 * w0[:, None]))])
                var += np.einsum("ij,jk,ik->i", grad, models[key].result_.cov_params().to_numpy(), grad)
            out[name] = (np.asarray(onehot @ (v1 - v0)).ravel(), np.sqrt(np.maximum(var, 0.0)),
                         (np.asarray(onehot @ v1).ravel(), np.asarray(onehot @ v0).ravel()))
        if "c" not in stages:  # no cancellation recorded: their change cannot be seen (not zero)
            out["cancellations"] = tuple(np.full(n_groups, np.nan) for _ in range(2)) + \
                ((np.full(n_groups, np.nan), np.full(n_groups, np.nan)),)
        return out

    def effects(self, table: pd.DataFrame, mask=None, estimand: str = "") -> dict[str, Estimate]:
        """Per-booking effects of the planned reminders over the bookings in `mask`.

        Parameters
        ----------
        table : DataFrame
            The analysis table the model was fitted on (or a later one).
        mask : boolean array, optional
            Rows to average over (default: every resolved booking with a schedule planned); rows without a
            known plan or outcome are left out.
        estimand : str
            The bookings, in words (prefixed to each estimand).

        Returns
        -------
        dict of str to Estimate
            ``"visits"``: extra attended visits per booking (with the refilled share of cancelled slots),
            ``"no_shows"``: no-shows avoided per booking, ``"cancellations"``: extra cancellations per
            booking (a risk difference; NaN when the export records no cancellation). Extras hold ``per_booking_planned`` and ``per_booking_none`` (the
            two standardised means: visits, no-shows or cancellations per booking), ``refill_rate``,
            ``n_patients`` and ``planned_from``.
        """
        self._check_fitted()
        stages, rows = self._stages(table, self._default_mask(table) if mask is None else mask)
        n, n_patients = int(rows.sum()), int(table["patient_id"][rows].nunique())
        sums = self._sums(stages, np.zeros(n, dtype=np.int64), 1)
        z = float(stats.norm.ppf(0.5 + self.conf_level / 2))
        rho = self.refill_rate_
        words = {"visits": f"extra attended visits per booking (a refilled cancelled slot counts {rho:g})",
                 "no_shows": "no-shows avoided per booking",
                 "cancellations": "cancellation rate, reminders as planned minus none"}
        method = ("two logistic stages (cancellation; no-show if not cancelled) with the schedule planned at "
                  "booking, standardised, delta method, patient-clustered SE")
        out = {}
        for name in BOOKING_EFFECTS:
            total, se, (with_, without) = sums[name]
            est, se = float(total[0] / n), float(se[0] / n)
            planned, none = float(with_[0] / n), float(without[0] / n)
            if name == "no_shows":  # summed as minus no-shows
                planned, none = -planned, -none
            p_value = float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else float("nan")
            out[name] = Estimate(est, est - z * se, est + z * se, p_value, method, n,
                                 "risk_difference" if name == "cancellations" else "difference",
                                 f"{estimand}: {words[name]}" if estimand else words[name], self.conf_level,
                                 {"per_booking_planned": planned, "per_booking_none": none, "se": se,
                                  "refill_rate": rho, "n_patients": n_patients, "planned_from": self.planned_from_})
        return out

    def _default_mask(self, table: pd.DataFrame) -> np.ndarray:
        return (self.planned(table) != "none").to_numpy()

    def effects_by_group(self, table: pd.DataFrame, groups, mask=None) -> pd.DataFrame:
        """Extra visits, no-shows avoided and extra cancellations summed per group (e.g. month), with CIs.

        Parameters
        ----------
        table : DataFrame
        groups : array-like
            A label per row of `table`.
        mask : boolean array, optional
            Rows to count (default: resolved bookings with a schedule planned).

        Returns
        -------
        DataFrame
            Indexed by group: ``bookings``, and for each of ``extra_visits``, ``no_shows_avoided`` and
            ``extra_cancellations`` the sum with ``<name>_ci_low`` / ``<name>_ci_high`` (the cancellations
            NaN when the export records none).
        """
        self._check_fitted()
        stages, rows = self._stages(table, self._default_mask(table) if mask is None else mask)
        codes, labels = pd.factorize(pd.Series(np.asarray(groups)[rows]), sort=True)
        sums = self._sums(stages, codes, len(labels))
        z = float(stats.norm.ppf(0.5 + self.conf_level / 2))
        out = pd.DataFrame({"bookings": np.bincount(codes, minlength=len(labels)).astype(np.int64)},
                           index=pd.Index(labels))
        for name, column in (("visits", "extra_visits"), ("no_shows", "no_shows_avoided"),
                             ("cancellations", "extra_cancellations")):
            total, se, _ = sums[name]
            out[column], out[f"{column}_ci_low"], out[f"{column}_ci_high"] = total, total - z * se, total + z * se
        return out

    # ------------------------------------------------------------ outputs
    @property
    def summary(self) -> pd.DataFrame:
        """Odds ratios of each planned schedule in both stages (``stage``: cancellation, no_show)."""
        self._check_fitted()
        rows = []
        for stage, model in (("cancellation", self.cancellation_), ("no_show", self.no_show_)):
            if model is None:
                continue
            s = model.summary.loc[[c for c in model.steps_]]
            rows.append(s.assign(stage=stage, plan=[_label(c, self.plans_) for c in s.index]))
        return pd.concat(rows).reset_index(drop=True)[["stage", "plan", "coef", "se", "odds_ratio", "ci_low", "ci_high",
                                                       "p_value"]]

    def __repr__(self) -> str:
        if not hasattr(self, "no_show_"):
            return "BookingEffectModel(not fitted)"
        return (f"BookingEffectModel(bookings={self.n_bookings_:,}, plans={self.plans_}, "
                f"refill_rate={self.refill_rate_:g})")

    def _repr_html_(self) -> str:
        if not hasattr(self, "no_show_"):
            return "<p>BookingEffectModel (not fitted)</p>"
        return (f"<h4>BookingEffectModel</h4><p>{self.n_bookings_:,} bookings, {self.n_patients_:,} patients; "
                f"plan from {escape(self.planned_from_)}; slot refill rate {self.refill_rate_:g}</p>"
                + self.summary.round(3).to_html(index=False))


def _label(column: str, plans: list[str]) -> str:
    return next((p for p in plans if _plan_column(p) == column), column[len(_PLAN_PREFIX):])
